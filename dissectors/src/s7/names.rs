//! Names of S7comm and S7comm-plus codes, as Wireshark's `packet-s7comm.c` and Thomas Wiens'
//! `packet-s7comm_plus.c` define them, in upper snake case for output.

/// Name of a PDU type (ROSCTR, header byte 1).
pub fn rosctr_name(rosctr: u8) -> &'static str {
    match rosctr {
        1 => "JOB",
        2 => "ACK",
        3 => "ACK_DATA",
        7 => "USERDATA",
        _ => "UNKNOWN",
    }
}

/// Name of a job or ack-data parameter function code (parameter byte 0).
pub fn function_name(func: u8) -> Option<&'static str> {
    Some(match func {
        0x00 => "CPU_SERVICES",
        0x01 => "MODE_TRANSITION",
        0x04 => "READ_VAR",
        0x05 => "WRITE_VAR",
        0x1a => "REQUEST_DOWNLOAD",
        0x1b => "DOWNLOAD_BLOCK",
        0x1c => "DOWNLOAD_ENDED",
        0x1d => "START_UPLOAD",
        0x1e => "UPLOAD",
        0x1f => "END_UPLOAD",
        0x28 => "PI_SERVICE",
        0x29 => "PLC_STOP",
        0xf0 => "SETUP_COMMUNICATION",
        _ => return None,
    })
}

/// Name of a header error class (ack and ack-data byte 10).
pub fn error_class_name(class: u8) -> &'static str {
    match class {
        0x00 => "NO_ERROR",
        0x81 => "APPLICATION_RELATIONSHIP",
        0x82 => "OBJECT_DEFINITION",
        0x83 => "NO_RESOURCES",
        0x84 => "SERVICE_PROCESSING",
        0x85 => "SUPPLIES",
        0x87 => "ACCESS",
        _ => "UNKNOWN",
    }
}

/// Name of a memory area of a variable specification (S7ANY byte 8).
pub fn area_name(area: u8) -> &'static str {
    match area {
        0x01 => "DATA_RECORD",
        0x03 => "SYSTEM_INFO_200",
        0x05 => "SYSTEM_FLAGS_200",
        0x06 => "ANALOG_INPUTS_200",
        0x07 => "ANALOG_OUTPUTS_200",
        0x1c => "COUNTERS",
        0x1d => "TIMERS",
        0x1e => "IEC_COUNTERS_200",
        0x1f => "IEC_TIMERS_200",
        0x80 => "PERIPHERAL",
        0x81 => "INPUTS",
        0x82 => "OUTPUTS",
        0x83 => "FLAGS",
        0x84 => "DATA_BLOCKS",
        0x85 => "INSTANCE_DATA_BLOCKS",
        0x86 => "LOCAL_DATA",
        0x87 => "PREVIOUS_LOCAL_DATA",
        _ => "UNKNOWN",
    }
}

/// Name of an item's syntax id (variable specification byte 2).
pub fn syntax_id_name(id: u8) -> &'static str {
    match id {
        0x10 => "S7ANY",
        0x11 => "PARAMETER_SHORT",
        0x12 => "PARAMETER_EXTENDED",
        0x13 => "PBC_R_ID",
        0x15 => "ALARM_LOCKFREE",
        0x16 => "ALARM_IND",
        0x19 => "ALARM_ACK",
        0x1a => "ALARM_QUERYREQ",
        0x1c => "NOTIFY_IND",
        0x82 => "NCK",
        0x83 => "NCK_METRIC",
        0x84 => "NCK_INCH",
        0xa2 => "DRIVEESANY",
        0xb0 => "DBREAD",
        0xb2 => "1200SYM",
        _ => "UNKNOWN",
    }
}

/// Name of an S7ANY transport size (element type).
pub fn transport_size_name(t: u8) -> &'static str {
    match t {
        1 => "BIT",
        2 => "BYTE",
        3 => "CHAR",
        4 => "WORD",
        5 => "INT",
        6 => "DWORD",
        7 => "DINT",
        8 => "REAL",
        9 => "DATE",
        10 => "TOD",
        11 => "TIME",
        12 => "S5TIME",
        15 => "DATE_AND_TIME",
        28 => "COUNTER",
        29 => "TIMER",
        30 => "IEC_COUNTER",
        31 => "IEC_TIMER",
        32 => "HS_COUNTER",
        _ => "UNKNOWN",
    }
}

/// Bits per element of an S7ANY transport size (0 when unknown).
pub fn transport_size_bits(t: u8) -> u32 {
    match t {
        1 => 1,
        2 | 3 => 8,
        4 | 5 | 9 | 12 | 28 | 29 => 16,
        6 | 7 | 8 | 10 | 11 | 30 | 31 | 32 => 32,
        15 => 64,
        _ => 0,
    }
}

/// Name of a data item transport size (data item byte 1).
pub fn data_transport_size_name(t: u8) -> &'static str {
    match t {
        0 => "NULL",
        3 => "BIT",
        4 => "BYTE_WORD_DWORD",
        5 => "INTEGER",
        6 => "DINTEGER",
        7 => "REAL",
        9 => "OCTET_STRING",
        17 => "NCK_ADDRESS1",
        18 => "NCK_ADDRESS2",
        _ => "UNKNOWN",
    }
}

/// Name of a data item return code.
pub fn return_code_name(rc: u8) -> &'static str {
    match rc {
        0x00 => "RESERVED",
        0x01 => "HARDWARE_ERROR",
        0x03 => "ACCESS_DENIED",
        0x05 => "INVALID_ADDRESS",
        0x06 => "DATA_TYPE_NOT_SUPPORTED",
        0x07 => "DATA_TYPE_INCONSISTENT",
        0x0a => "OBJECT_DOES_NOT_EXIST",
        0xff => "SUCCESS",
        _ => "UNKNOWN",
    }
}

/// Name of a block type given as two ASCII characters (`"08"` is OB).
pub fn block_type_name(t: [u8; 2]) -> &'static str {
    match &t {
        b"08" => "OB",
        b"09" => "CMOD",
        b"0A" => "DB",
        b"0B" => "SDB",
        b"0C" => "FC",
        b"0D" => "SFC",
        b"0E" => "FB",
        b"0F" => "SFB",
        _ => "UNKNOWN",
    }
}

/// Name of a userdata type (upper nibble of parameter byte 5).
pub fn userdata_type_name(t: u8) -> &'static str {
    match t {
        0 => "PUSH",
        4 => "REQUEST",
        8 => "RESPONSE",
        3 => "NC_PUSH",
        7 => "NC_REQUEST",
        0xb => "NC_RESPONSE",
        _ => "UNKNOWN",
    }
}

/// Name of a userdata function group (lower nibble of parameter byte 5).
pub fn userdata_group_name(g: u8) -> &'static str {
    match g {
        0 => "MODE_TRANSITION",
        1 => "PROGRAMMER_COMMANDS",
        2 => "CYCLIC_DATA",
        3 => "BLOCK_FUNCTIONS",
        4 => "CPU_FUNCTIONS",
        5 => "SECURITY",
        6 => "PBC_BSEND",
        7 => "TIME_FUNCTIONS",
        0xf => "NC_PROGRAMMING",
        _ => "UNKNOWN",
    }
}

/// Name of a userdata subfunction within its group.
pub fn userdata_subfunc_name(group: u8, sub: u8) -> Option<&'static str> {
    userdata_names(group, sub).map(|(s, _)| s)
}

/// `(subfunction name, function name)` of a userdata group and subfunction; the function name
/// prefixes the group so that codes of different groups never share a name.
pub(crate) fn userdata_names(group: u8, sub: u8) -> Option<(&'static str, &'static str)> {
    Some(match (group, sub) {
        (1, 0x01) => ("BLOCK_STATUS", "PROG_BLOCK_STATUS"),
        (1, 0x02) => ("VARIABLE_STATUS", "PROG_VARIABLE_STATUS"),
        (1, 0x03) => ("OUTPUT_ISTACK", "PROG_OUTPUT_ISTACK"),
        (1, 0x04) => ("OUTPUT_BSTACK", "PROG_OUTPUT_BSTACK"),
        (1, 0x05) => ("OUTPUT_LSTACK", "PROG_OUTPUT_LSTACK"),
        (1, 0x06) => ("TIME_MEASUREMENT", "PROG_TIME_MEASUREMENT"),
        (1, 0x07) => ("FORCE_SELECTION", "PROG_FORCE_SELECTION"),
        (1, 0x08) => ("MODIFY_VARIABLE", "PROG_MODIFY_VARIABLE"),
        (1, 0x09) => ("FORCE", "PROG_FORCE"),
        (1, 0x0a) => ("BREAKPOINT", "PROG_BREAKPOINT"),
        (1, 0x0b) => ("EXIT_HOLD", "PROG_EXIT_HOLD"),
        (1, 0x0c) => ("MEMORY_RESET", "PROG_MEMORY_RESET"),
        (1, 0x0d) => ("DISABLE_JOB", "PROG_DISABLE_JOB"),
        (1, 0x0e) => ("ENABLE_JOB", "PROG_ENABLE_JOB"),
        (1, 0x0f) => ("DELETE_JOB", "PROG_DELETE_JOB"),
        (1, 0x10) => ("READ_JOB_LIST", "PROG_READ_JOB_LIST"),
        (1, 0x11) => ("READ_JOB", "PROG_READ_JOB"),
        (1, 0x12) => ("REPLACE_JOB", "PROG_REPLACE_JOB"),
        (1, 0x13) => ("BLOCK_STATUS_V2", "PROG_BLOCK_STATUS_V2"),
        (1, 0x16) => ("FLASH_LED", "PROG_FLASH_LED"),
        (2, 0x01) => ("CYCLIC_TRANSFER", "CYCLIC_TRANSFER"),
        (2, 0x04) => ("UNSUBSCRIBE", "CYCLIC_UNSUBSCRIBE"),
        (2, 0x05) => ("CHANGE_DRIVEN_TRANSFER", "CYCLIC_CHANGE_DRIVEN_TRANSFER"),
        (2, 0x07) => ("CHANGE_DRIVEN_TRANSFER_MODIFY", "CYCLIC_CHANGE_DRIVEN_TRANSFER_MODIFY"),
        (2, 0x08) => ("RDREC", "CYCLIC_RDREC"),
        (3, 0x01) => ("LIST_BLOCKS", "BLOCK_LIST_BLOCKS"),
        (3, 0x02) => ("LIST_BLOCKS_OF_TYPE", "BLOCK_LIST_BLOCKS_OF_TYPE"),
        (3, 0x03) => ("GET_BLOCK_INFO", "BLOCK_GET_BLOCK_INFO"),
        (4, 0x01) => ("READ_SZL", "CPU_READ_SZL"),
        (4, 0x02) => ("MESSAGE_SERVICE", "CPU_MESSAGE_SERVICE"),
        (4, 0x03) => ("DIAGNOSTIC_MESSAGE", "CPU_DIAGNOSTIC_MESSAGE"),
        (4, 0x05) => ("ALARM_8_INDICATION", "CPU_ALARM_8_INDICATION"),
        (4, 0x06) => ("NOTIFY_INDICATION", "CPU_NOTIFY_INDICATION"),
        (4, 0x07) => ("ALARM_8_LOCK", "CPU_ALARM_8_LOCK"),
        (4, 0x08) => ("ALARM_8_UNLOCK", "CPU_ALARM_8_UNLOCK"),
        (4, 0x09) => ("SCAN_INDICATION", "CPU_SCAN_INDICATION"),
        (4, 0x0b) => ("ALARM_ACK", "CPU_ALARM_ACK"),
        (4, 0x0c) => ("ALARM_ACK_INDICATION", "CPU_ALARM_ACK_INDICATION"),
        (4, 0x0d) => ("ALARM_LOCK_INDICATION", "CPU_ALARM_LOCK_INDICATION"),
        (4, 0x0e) => ("ALARM_UNLOCK_INDICATION", "CPU_ALARM_UNLOCK_INDICATION"),
        (4, 0x10) => ("AR_SEND_INDICATION", "CPU_AR_SEND_INDICATION"),
        (4, 0x11) => ("ALARM_SQ_INDICATION", "CPU_ALARM_SQ_INDICATION"),
        (4, 0x12) => ("ALARM_S_INDICATION", "CPU_ALARM_S_INDICATION"),
        (4, 0x13) => ("ALARM_QUERY", "CPU_ALARM_QUERY"),
        (4, 0x16) => ("NOTIFY_8_INDICATION", "CPU_NOTIFY_8_INDICATION"),
        (5, 0x01) => ("PLC_PASSWORD", "SECURITY_PLC_PASSWORD"),
        (5, 0x02) => ("CLEAN_SESSION", "SECURITY_CLEAN_SESSION"),
        (7, 0x01) => ("READ_CLOCK", "TIME_READ_CLOCK"),
        (7, 0x02) => ("SET_CLOCK", "TIME_SET_CLOCK"),
        (7, 0x03) => ("READ_CLOCK_FOLLOWING", "TIME_READ_CLOCK_FOLLOWING"),
        (7, 0x04) => ("SET_CLOCK_2", "TIME_SET_CLOCK_2"),
        _ => return None,
    })
}

/// Name of a COTP TPDU code (upper nibble of the code byte; ISO 8073 section 13.1).
pub fn cotp_name(code: u8) -> &'static str {
    match code & 0xf0 {
        0xe0 => "COTP_CONNECTION_REQUEST",
        0xd0 => "COTP_CONNECTION_CONFIRM",
        0x80 => "COTP_DISCONNECT_REQUEST",
        0xc0 => "COTP_DISCONNECT_CONFIRM",
        0x70 => "COTP_ERROR",
        0xf0 => "COTP_DATA",
        0x10 => "COTP_EXPEDITED_DATA",
        0x60 => "COTP_DATA_ACK",
        0x20 => "COTP_EXPEDITED_DATA_ACK",
        0x50 => "COTP_REJECT",
        _ => "COTP_UNKNOWN",
    }
}

/// Name of an S7comm-plus opcode (data byte 0).
pub fn plus_opcode_name(op: u8) -> &'static str {
    match op {
        0x31 => "REQUEST",
        0x32 => "RESPONSE",
        0x33 => "NOTIFICATION",
        0x02 => "RESPONSE2",
        _ => "UNKNOWN",
    }
}

/// Name of an S7comm-plus PDU type / protocol version (header byte 1).
pub fn plus_version_name(v: u8) -> &'static str {
    match v {
        0x01 => "V1",
        0x02 => "V2",
        0x03 => "V3",
        0xfe => "SYSTEM_EVENT",
        0xff => "KEEP_ALIVE",
        _ => "UNKNOWN",
    }
}

/// Name of an S7comm-plus function code (data bytes 3-4).
pub fn plus_function_name(f: u16) -> Option<&'static str> {
    Some(match f {
        0x04b1 => "ERROR",
        0x04bb => "EXPLORE",
        0x04ca => "CREATE_OBJECT",
        0x04d4 => "DELETE_OBJECT",
        0x04f2 => "SET_VARIABLE",
        0x04fc => "GET_VARIABLE",
        0x0506 => "ADD_LINK",
        0x051a => "REMOVE_LINK",
        0x0524 => "GET_LINK",
        0x0542 => "SET_MULTI_VARIABLES",
        0x054c => "GET_MULTI_VARIABLES",
        0x0556 => "BEGIN_SEQUENCE",
        0x0560 => "END_SEQUENCE",
        0x056b => "INVOKE",
        0x057c => "SET_VAR_SUBSTREAMED",
        0x0586 => "GET_VAR_SUBSTREAMED",
        0x0590 => "GET_VARIABLES_ADDRESS",
        0x059a => "ABORT",
        0x05a9 => "ERROR2",
        0x05b3 => "INIT_SSL",
        _ => return None,
    })
}
