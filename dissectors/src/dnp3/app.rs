//! DNP3 application layer (IEEE 1815-2012 clause 4.2.2): application control, function
//! codes and internal indications.

/// Application control octet (clause 4.2.2.4): FIR, FIN, CON, UNS and a 4-bit sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppControl(pub u8);

impl AppControl {
    /// First fragment of a message.
    pub fn fir(self) -> bool {
        self.0 & 0x80 != 0
    }
    /// Final fragment of a message.
    pub fn fin(self) -> bool {
        self.0 & 0x40 != 0
    }
    /// Confirmation requested.
    pub fn con(self) -> bool {
        self.0 & 0x20 != 0
    }
    /// Unsolicited response (or the confirm of one).
    pub fn uns(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// Sequence number, 0..=15.
    pub fn seq(self) -> u8 {
        self.0 & 0x0F
    }
}

/// Application function code 129: response.
pub const FUNC_RESPONSE: u8 = 129;
/// Application function code 130: unsolicited response.
pub const FUNC_UNSOLICITED_RESPONSE: u8 = 130;
/// Application function code 131: authentication response (SAv5).
pub const FUNC_AUTHENTICATE_RESP: u8 = 131;

/// Whether `func` is sent by an outstation (responses carry IIN after the function code).
pub fn is_response_function(func: u8) -> bool {
    matches!(func, FUNC_RESPONSE | FUNC_UNSOLICITED_RESPONSE | FUNC_AUTHENTICATE_RESP)
}

/// Name of an application function code (IEEE 1815-2012 table 4-1 and clause 7 for SAv5),
/// as Zeek's DNP3 analyzer and ICSNPP name them; `None` for codes the standard does not
/// define.
pub fn function_name(func: u8) -> Option<&'static str> {
    Some(match func {
        0 => "CONFIRM",
        1 => "READ",
        2 => "WRITE",
        3 => "SELECT",
        4 => "OPERATE",
        5 => "DIRECT_OPERATE",
        6 => "DIRECT_OPERATE_NR",
        7 => "IMMED_FREEZE",
        8 => "IMMED_FREEZE_NR",
        9 => "FREEZE_CLEAR",
        10 => "FREEZE_CLEAR_NR",
        11 => "FREEZE_AT_TIME",
        12 => "FREEZE_AT_TIME_NR",
        13 => "COLD_RESTART",
        14 => "WARM_RESTART",
        15 => "INITIALIZE_DATA",
        16 => "INITIALIZE_APPL",
        17 => "START_APPL",
        18 => "STOP_APPL",
        19 => "SAVE_CONFIG",
        20 => "ENABLE_UNSOLICITED",
        21 => "DISABLE_UNSOLICITED",
        22 => "ASSIGN_CLASS",
        23 => "DELAY_MEASURE",
        24 => "RECORD_CURRENT_TIME",
        25 => "OPEN_FILE",
        26 => "CLOSE_FILE",
        27 => "DELETE_FILE",
        28 => "GET_FILE_INFO",
        29 => "AUTHENTICATE_FILE",
        30 => "ABORT_FILE",
        31 => "ACTIVATE_CONFIG",
        32 => "AUTHENTICATE_REQ",
        33 => "AUTHENTICATE_ERR",
        129 => "RESPONSE",
        130 => "UNSOLICITED_RESPONSE",
        131 => "AUTHENTICATE_RESP",
        _ => return None,
    })
}

/// Whether a request with function `func` carries object data after its headers (write,
/// controls, file and authentication functions), rather than headers alone (read, freeze,
/// unsolicited and class functions). Responses always carry data.
pub fn request_has_data(func: u8) -> bool {
    !matches!(func, 1 | 7..=10 | 20..=22)
}

/// Names of the internal indication bits (clause 4.2.2.7.2), IIN1 in the high byte as
/// tshark numbers `dnp3.al.iin`: bit 15 is IIN1.7 (device restart), bit 0 is IIN2.0.
pub const IIN_NAMES: [(u16, &str); 16] = [
    (0x0100, "BROADCAST"),
    (0x0200, "CLASS_1_EVENTS"),
    (0x0400, "CLASS_2_EVENTS"),
    (0x0800, "CLASS_3_EVENTS"),
    (0x1000, "NEED_TIME"),
    (0x2000, "LOCAL_CONTROL"),
    (0x4000, "DEVICE_TROUBLE"),
    (0x8000, "DEVICE_RESTART"),
    (0x0001, "NO_FUNC_CODE_SUPPORT"),
    (0x0002, "OBJECT_UNKNOWN"),
    (0x0004, "PARAMETER_ERROR"),
    (0x0008, "EVENT_BUFFER_OVERFLOW"),
    (0x0010, "ALREADY_EXECUTING"),
    (0x0020, "CONFIG_CORRUPT"),
    (0x0040, "RESERVED_2"),
    (0x0080, "RESERVED_1"),
];

/// IIN2 bits that report a failed request: no function support, object unknown, parameter
/// error, already executing, configuration corrupt. Event buffer overflow is left out: it
/// reports lost events, not a rejected request.
pub const IIN_ERROR_MASK: u16 = 0x0001 | 0x0002 | 0x0004 | 0x0010 | 0x0020;

/// Names of the bits set in `iin`, IIN1 first.
pub fn iin_names(iin: u16) -> impl Iterator<Item = &'static str> {
    IIN_NAMES.iter().filter(move |(bit, _)| iin & bit != 0).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_function_of_the_standard() {
        let defined: Vec<u8> = (0..=33).chain(129..=131).collect();
        for f in 0..=255u8 {
            assert_eq!(function_name(f).is_some(), defined.contains(&f), "function {f}");
        }
        assert_eq!(function_name(5), Some("DIRECT_OPERATE"));
        assert_eq!(function_name(130), Some("UNSOLICITED_RESPONSE"));
    }

    #[test]
    fn decodes_application_control_bits() {
        // 0xD3: FIR=1, FIN=1, CON=0, UNS=1, SEQ=3.
        let ac = AppControl(0xD3);
        assert!(ac.fir() && ac.fin() && !ac.con() && ac.uns());
        assert_eq!(ac.seq(), 3);
    }

    #[test]
    fn names_iin_bits_in_order() {
        // IIN1 = 0x90 (device restart, need time), IIN2 = 0x04 (parameter error).
        let names: Vec<_> = iin_names(0x9004).collect();
        assert_eq!(names, ["NEED_TIME", "DEVICE_RESTART", "PARAMETER_ERROR"]);
        assert_eq!(0x9004 & IIN_ERROR_MASK, 0x0004);
        assert_eq!(0x0008 & IIN_ERROR_MASK, 0);
    }
}
