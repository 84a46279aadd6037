//! Modbus function codes (Modbus Application Protocol Specification V1.1b3, section 5.1 and
//! section 6), named as Zeek's ICSNPP modbus logs name them.

use crate::types::{FuncName, FunctionClass};

/// A Modbus function code, with the 0x80 exception bit removed. Unknown and user-defined
/// codes are kept with their raw value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionCode(pub u8);

impl FunctionCode {
    /// 0x01 Read Coils (6.1).
    pub const READ_COILS: FunctionCode = FunctionCode(1);
    /// 0x02 Read Discrete Inputs (6.2).
    pub const READ_DISCRETE_INPUTS: FunctionCode = FunctionCode(2);
    /// 0x03 Read Holding Registers (6.3).
    pub const READ_HOLDING_REGISTERS: FunctionCode = FunctionCode(3);
    /// 0x04 Read Input Registers (6.4).
    pub const READ_INPUT_REGISTERS: FunctionCode = FunctionCode(4);
    /// 0x05 Write Single Coil (6.5).
    pub const WRITE_SINGLE_COIL: FunctionCode = FunctionCode(5);
    /// 0x06 Write Single Register (6.6).
    pub const WRITE_SINGLE_REGISTER: FunctionCode = FunctionCode(6);
    /// 0x07 Read Exception Status, serial line only (6.7).
    pub const READ_EXCEPTION_STATUS: FunctionCode = FunctionCode(7);
    /// 0x08 Diagnostics, with a sub-function (6.8).
    pub const DIAGNOSTICS: FunctionCode = FunctionCode(8);
    /// 0x0B Get Comm Event Counter (6.9).
    pub const GET_COMM_EVENT_COUNTER: FunctionCode = FunctionCode(11);
    /// 0x0C Get Comm Event Log (6.10).
    pub const GET_COMM_EVENT_LOG: FunctionCode = FunctionCode(12);
    /// 0x0F Write Multiple Coils (6.11).
    pub const WRITE_MULTIPLE_COILS: FunctionCode = FunctionCode(15);
    /// 0x10 Write Multiple Registers (6.12).
    pub const WRITE_MULTIPLE_REGISTERS: FunctionCode = FunctionCode(16);
    /// 0x11 Report Server ID (6.13).
    pub const REPORT_SLAVE_ID: FunctionCode = FunctionCode(17);
    /// 0x14 Read File Record (6.14).
    pub const READ_FILE_RECORD: FunctionCode = FunctionCode(20);
    /// 0x15 Write File Record (6.15).
    pub const WRITE_FILE_RECORD: FunctionCode = FunctionCode(21);
    /// 0x16 Mask Write Register (6.16).
    pub const MASK_WRITE_REGISTER: FunctionCode = FunctionCode(22);
    /// 0x17 Read/Write Multiple Registers (6.17).
    pub const READ_WRITE_MULTIPLE_REGISTERS: FunctionCode = FunctionCode(23);
    /// 0x18 Read FIFO Queue (6.18).
    pub const READ_FIFO_QUEUE: FunctionCode = FunctionCode(24);
    /// 0x2B Encapsulated Interface Transport, MEI types 13 and 14 (6.19-6.21).
    pub const ENCAP_INTERFACE_TRANSPORT: FunctionCode = FunctionCode(43);
    /// 0x5A Schneider Electric UMAS (vendor function, carried inside Modbus).
    pub const UMAS: FunctionCode = FunctionCode(90);

    /// The raw code (without the exception bit).
    pub const fn raw(self) -> u8 {
        self.0
    }

    /// The name as ICSNPP logs it, or `None` for an unknown code.
    pub const fn known_name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "READ_COILS",
            2 => "READ_DISCRETE_INPUTS",
            3 => "READ_HOLDING_REGISTERS",
            4 => "READ_INPUT_REGISTERS",
            5 => "WRITE_SINGLE_COIL",
            6 => "WRITE_SINGLE_REGISTER",
            7 => "READ_EXCEPTION_STATUS",
            8 => "DIAGNOSTICS",
            9 => "PROGRAM_484",
            10 => "POLL_484",
            11 => "GET_COMM_EVENT_COUNTER",
            12 => "GET_COMM_EVENT_LOG",
            13 => "PROGRAM_584_984",
            14 => "POLL_584_984",
            15 => "WRITE_MULTIPLE_COILS",
            16 => "WRITE_MULTIPLE_REGISTERS",
            17 => "REPORT_SLAVE_ID",
            18 => "PROGRAM_884_U84",
            19 => "RESET_COMM_LINK_884_U84",
            20 => "READ_FILE_RECORD",
            21 => "WRITE_FILE_RECORD",
            22 => "MASK_WRITE_REGISTER",
            23 => "READ_WRITE_MULTIPLE_REGISTERS",
            24 => "READ_FIFO_QUEUE",
            40 => "PROGRAM_CONCEPT",
            43 => "ENCAP_INTERFACE_TRANSPORT",
            90 => "UMAS",
            125 => "FIRMWARE_REPLACEMENT",
            126 => "PROGRAM_584_984_2",
            127 => "REPORT_LOCAL_ADDRESS",
            _ => return None,
        })
    }

    /// The name of the exception response to this function, as ICSNPP logs it.
    pub const fn exception_name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "READ_COILS_EXCEPTION",
            2 => "READ_DISCRETE_INPUTS_EXCEPTION",
            3 => "READ_HOLDING_REGISTERS_EXCEPTION",
            4 => "READ_INPUT_REGISTERS_EXCEPTION",
            5 => "WRITE_SINGLE_COIL_EXCEPTION",
            6 => "WRITE_SINGLE_REGISTER_EXCEPTION",
            7 => "READ_EXCEPTION_STATUS_EXCEPTION",
            8 => "DIAGNOSTICS_EXCEPTION",
            11 => "GET_COMM_EVENT_COUNTER_EXCEPTION",
            12 => "GET_COMM_EVENT_LOG_EXCEPTION",
            15 => "WRITE_MULTIPLE_COILS_EXCEPTION",
            16 => "WRITE_MULTIPLE_REGISTERS_EXCEPTION",
            17 => "REPORT_SLAVE_ID_EXCEPTION",
            20 => "READ_FILE_RECORD_EXCEPTION",
            21 => "WRITE_FILE_RECORD_EXCEPTION",
            22 => "MASK_WRITE_REGISTER_EXCEPTION",
            23 => "READ_WRITE_MULTIPLE_REGISTERS_EXCEPTION",
            24 => "READ_FIFO_QUEUE_EXCEPTION",
            43 => "ENCAP_INTERFACE_TRANSPORT_EXCEPTION",
            _ => return None,
        })
    }

    /// The name, `unknown-<n>` for an unknown code.
    pub fn name(self) -> FuncName {
        match self.known_name() {
            Some(n) => FuncName::Known(n),
            None => FuncName::Unknown(u16::from(self.0)),
        }
    }

    /// Whether the code is one the specification defines for Modbus/TCP, or a legacy or
    /// vendor code seen in the field. Used to judge plausibility while resynchronising.
    pub const fn is_known(self) -> bool {
        self.known_name().is_some() || self.is_user_defined()
    }

    /// Whether the code is in the ranges the specification reserves for users (65-72,
    /// 100-110; section 5.1).
    pub const fn is_user_defined(self) -> bool {
        matches!(self.0, 65..=72 | 100..=110)
    }

    /// Whether the function changes state in the server (writes, diagnostics that restart
    /// or silence it, file writes, vendor programming functions).
    pub const fn is_write(self) -> bool {
        matches!(self.0, 5 | 6 | 15 | 16 | 21 | 22 | 23)
    }

    /// The class of operation, for scoring: control/write, read, diagnostic, other.
    pub const fn class(self) -> FunctionClass {
        match self.0 {
            5 | 6 | 15 | 16 | 21 | 22 | 23 => FunctionClass::Write,
            8 => FunctionClass::Diagnostic,
            1 | 2 | 3 | 4 | 20 | 24 => FunctionClass::Read,
            7 | 11 | 12 | 17 | 43 => FunctionClass::Diagnostic,
            9 | 10 | 13 | 14 | 18 | 19 | 40 | 90 | 125 | 126 | 127 => FunctionClass::Program,
            _ => FunctionClass::Other,
        }
    }
}

/// Name of a Modbus exception code (section 7).
pub const fn exception_code_name(code: u8) -> &'static str {
    match code {
        1 => "ILLEGAL_FUNCTION",
        2 => "ILLEGAL_DATA_ADDRESS",
        3 => "ILLEGAL_DATA_VALUE",
        4 => "SERVER_DEVICE_FAILURE",
        5 => "ACKNOWLEDGE",
        6 => "SERVER_DEVICE_BUSY",
        8 => "MEMORY_PARITY_ERROR",
        10 => "GATEWAY_PATH_UNAVAILABLE",
        11 => "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
        _ => "UNKNOWN",
    }
}

/// Name of a Diagnostics (FC 8) sub-function (section 6.8.1).
pub const fn diagnostic_subfunction_name(sub: u16) -> &'static str {
    match sub {
        0 => "RETURN_QUERY_DATA",
        1 => "RESTART_COMMUNICATIONS_OPTION",
        2 => "RETURN_DIAGNOSTIC_REGISTER",
        3 => "CHANGE_ASCII_INPUT_DELIMITER",
        4 => "FORCE_LISTEN_ONLY_MODE",
        10 => "CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER",
        11 => "RETURN_BUS_MESSAGE_COUNT",
        12 => "RETURN_BUS_COMMUNICATION_ERROR_COUNT",
        13 => "RETURN_BUS_EXCEPTION_ERROR_COUNT",
        14 => "RETURN_SERVER_MESSAGE_COUNT",
        15 => "RETURN_SERVER_NO_RESPONSE_COUNT",
        16 => "RETURN_SERVER_NAK_COUNT",
        17 => "RETURN_SERVER_BUSY_COUNT",
        18 => "RETURN_BUS_CHARACTER_OVERRUN_COUNT",
        20 => "CLEAR_OVERRUN_COUNTER_AND_FLAG",
        _ => "UNKNOWN",
    }
}

/// Name of a Read Device Identification object id (section 6.21, table 2).
pub const fn device_id_object_name(id: u8) -> &'static str {
    match id {
        0 => "VendorName",
        1 => "ProductCode",
        2 => "MajorMinorRevision",
        3 => "VendorUrl",
        4 => "ProductName",
        5 => "ModelName",
        6 => "UserApplicationName",
        0x07..=0x7F => "Reserved",
        _ => "Private",
    }
}
