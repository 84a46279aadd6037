//! Tests of the S7 dissector on byte arrays, one comment per field.

// Case tables are tuples read row by row; naming each tuple type would hide the rows' shape.
#![allow(clippy::type_complexity)]

use proptest::prelude::*;

use super::*;
use crate::event::{Access, CriticalOp, FunctionClass, PointRange, PointValue, Space};

/// What a test looks at in a PDU, owned.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    name: String,
    request: bool,
    rosctr: u8,
    pdu_ref: u16,
    flags: Vec<&'static str>,
    error: Option<u16>,
    critical: Option<CriticalOp>,
    class: FunctionClass,
    points: Vec<PointRange>,
    values: Vec<PointValue>,
    szl: Option<(u16, u16)>,
    block: Option<(&'static str, u32)>,
    pi: String,
    filename: String,
    setup: Option<Setup>,
    matched: bool,
    userdata: Option<(u8, u8, u8)>,
    cotp: Option<(Vec<u8>, Vec<u8>, Option<(u8, u8)>)>,
    plus: Option<(u8, Option<u8>, Option<u16>, Option<u32>, Fragment)>,
}

fn seen(b: &PduBody<'_>) -> Seen {
    let mut points = Vec::new();
    b.for_each_point(&mut |p| points.push(p));
    let mut values = Vec::new();
    b.for_each_value(&mut |v| values.push(v));
    let mut s = Seen {
        name: b.func_name().to_string(),
        request: b.is_request(),
        rosctr: 0,
        pdu_ref: 0,
        flags: b.flags().iter().collect(),
        error: b.error_code(),
        critical: b.critical(),
        class: b.class(),
        points,
        values,
        szl: None,
        block: None,
        pi: String::new(),
        filename: String::new(),
        setup: None,
        matched: false,
        userdata: None,
        cotp: None,
        plus: None,
    };
    match b {
        PduBody::S7(p) => {
            s.rosctr = p.rosctr;
            s.pdu_ref = p.pdu_ref;
            s.szl = p.szl;
            s.block = p.block.map(|b| (b.type_name(), b.number));
            s.pi = String::from_utf8_lossy(p.pi_service).into_owned();
            s.filename = String::from_utf8_lossy(p.filename).into_owned();
            s.setup = p.setup;
            s.matched = p.matched;
            s.userdata = p.userdata.map(|u| (u.utype, u.group, u.subfunc));
            s.cotp = p.cotp.map(|c| (c.src_tsap.to_vec(), c.dst_tsap.to_vec(), c.rack_slot()));
        }
        PduBody::S7Plus(p) => s.plus = Some((p.version, p.opcode, p.seq, p.session_id, p.fragment)),
        _ => {}
    }
    s
}

fn feed(st: &mut S7Stream, dir: Direction, bytes: &[u8]) -> (Vec<Seen>, Parsed) {
    let mut v = Vec::new();
    let parsed = st.parse(bytes, dir, &mut |b| v.push(seen(b)));
    (v, parsed)
}

fn one(st: &mut S7Stream, dir: Direction, bytes: &[u8]) -> Seen {
    let (mut v, parsed) = feed(st, dir, bytes);
    assert_eq!(parsed, Parsed { consumed: bytes.len(), skipped: 0 });
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

/// Wraps a TSDU in a TPKT and a COTP class 0 data TPDU with EOT.
fn dt(tsdu: &[u8]) -> Vec<u8> {
    dt_eot(tsdu, true)
}

fn dt_eot(tsdu: &[u8], eot: bool) -> Vec<u8> {
    let len = (tsdu.len() + 7) as u16;
    let mut v = vec![
        0x03,
        0x00, // TPKT version 3, reserved
        (len >> 8) as u8,
        len as u8,                     // TPKT length, header included
        0x02,                          // COTP length indicator
        0xf0,                          // DT
        if eot { 0x80 } else { 0x00 }, // EOT bit, TPDU number 0
    ];
    v.extend_from_slice(tsdu);
    v
}

const CR: [u8; 22] = [
    0x03, 0x00, 0x00, 0x16, // TPKT version 3, length 22
    0x11, // LI 17
    0xe0, // CR, credit 0
    0x00, 0x00, // destination reference
    0x00, 0x01, // source reference
    0x00, // class 0
    0xc0, 0x01, 0x0a, // TPDU size 1024
    0xc1, 0x02, 0x01, 0x00, // calling TSAP 0x0100
    0xc2, 0x02, 0x01, 0x02, // called TSAP: PG connection, rack 0, slot 2
];

const SETUP_JOB: [u8; 18] = [
    0x32, 0x01, // S7comm, job
    0x00, 0x00, // redundancy id
    0xff, 0xff, // PDU reference
    0x00, 0x08, // parameter length
    0x00, 0x00, // data length
    0xf0, 0x00, // setup communication, reserved
    0x00, 0x01, // max AMQ calling
    0x00, 0x01, // max AMQ called
    0x01, 0xe0, // PDU size 480
];

const SETUP_ACK: [u8; 20] = [
    0x32, 0x03, // S7comm, ack-data
    0x00, 0x00, // redundancy id
    0xff, 0xff, // PDU reference
    0x00, 0x08, // parameter length
    0x00, 0x00, // data length
    0x00, 0x00, // error class, code
    0xf0, 0x00, // setup communication, reserved
    0x00, 0x01, // max AMQ calling
    0x00, 0x01, // max AMQ called
    0x00, 0xf0, // PDU size 240
];

const READ_JOB: [u8; 36] = [
    0x32, 0x01, 0x00, 0x00, // S7comm, job, redundancy id
    0x00, 0x05, // PDU reference 5
    0x00, 0x1a, // parameter length 26
    0x00, 0x00, // data length 0
    0x04, 0x02, // read var, 2 items
    0x12, 0x0a, 0x10, // variable specification, length 10, S7ANY
    0x02, // transport size BYTE
    0x00, 0x04, // 4 elements
    0x00, 0x01, // DB 1
    0x84, // area DB
    0x00, 0x00, 0x50, // address: byte 10, bit 0
    0x12, 0x0a, 0x10, // variable specification, length 10, S7ANY
    0x01, // transport size BIT
    0x00, 0x01, // 1 element
    0x00, 0x00, // DB 0
    0x83, // area flags (M)
    0x00, 0x00, 0x1b, // address: byte 3, bit 3
];

const READ_ACK: [u8; 27] = [
    0x32, 0x03, 0x00, 0x00, // S7comm, ack-data, redundancy id
    0x00, 0x05, // PDU reference 5
    0x00, 0x02, // parameter length
    0x00, 0x0d, // data length 13
    0x00, 0x00, // no error
    0x04, 0x02, // read var, 2 items
    0xff, 0x04, 0x00, 0x20, // success, BYTE/WORD/DWORD, 32 bits
    0x01, 0x02, 0x03, 0x04, // the 4 bytes
    0xff, 0x03, 0x00, 0x01, // success, BIT, 1 bit
    0x01, // the bit (last item: no padding)
];

const READ_ACK_FAILED: [u8; 23] = [
    0x32, 0x03, 0x00, 0x00, // S7comm, ack-data, redundancy id
    0x00, 0x05, // PDU reference 5
    0x00, 0x02, // parameter length
    0x00, 0x09, // data length 9
    0x00, 0x00, // no error
    0x04, 0x02, // read var, 2 items
    0x0a, 0x00, 0x00, 0x00, // object does not exist, no data
    0xff, 0x03, 0x00, 0x01, // success, BIT, 1 bit
    0x00, // the bit
];

const WRITE_JOB: [u8; 30] = [
    0x32, 0x01, 0x00, 0x00, // S7comm, job, redundancy id
    0x00, 0x06, // PDU reference 6
    0x00, 0x0e, // parameter length 14
    0x00, 0x06, // data length 6
    0x05, 0x01, // write var, 1 item
    0x12, 0x0a, 0x10, // variable specification, length 10, S7ANY
    0x05, // transport size INT
    0x00, 0x01, // 1 element
    0x00, 0x01, // DB 1
    0x84, // area DB
    0x00, 0x00, 0x10, // address: byte 2, bit 0
    0x00, 0x04, 0x00, 0x10, // return code 0, BYTE/WORD/DWORD, 16 bits
    0xff, 0x38, // -200
];

const WRITE_ACK: [u8; 15] = [
    0x32, 0x03, 0x00, 0x00, // S7comm, ack-data, redundancy id
    0x00, 0x06, // PDU reference 6
    0x00, 0x02, // parameter length
    0x00, 0x01, // data length 1
    0x00, 0x00, // no error
    0x05, 0x01, // write var, 1 item
    0x05, // return code: invalid address
];

#[test]
fn decodes_a_cotp_connection_request_with_rack_and_slot() {
    let mut st = S7Stream::new();
    let s = one(&mut st, Direction::ToServer, &CR);
    assert_eq!(s.name, "COTP_CONNECTION_REQUEST");
    assert!(s.request);
    assert_eq!(s.cotp, Some((vec![0x01, 0x00], vec![0x01, 0x02], Some((0, 2)))));
    assert_eq!(s.class, FunctionClass::Other);
}

#[test]
fn decodes_a_cotp_connection_confirm_and_disconnect() {
    let cc = [
        0x03, 0x00, 0x00, 0x0b, // TPKT, length 11
        0x06, // LI 6
        0xd0, // CC
        0x00, 0x01, // destination reference
        0x44, 0x31, // source reference
        0x00, // class 0
    ];
    let dr = [
        0x03, 0x00, 0x00, 0x0b, // TPKT, length 11
        0x06, // LI 6
        0x80, // DR
        0x44, 0x31, // destination reference
        0x00, 0x01, // source reference
        0x80, // reason: normal disconnect
    ];
    let mut st = S7Stream::new();
    let s = one(&mut st, Direction::ToClient, &cc);
    assert_eq!((s.name.as_str(), s.request), ("COTP_CONNECTION_CONFIRM", false));
    let s = one(&mut st, Direction::ToServer, &dr);
    assert_eq!((s.name.as_str(), s.request), ("COTP_DISCONNECT_REQUEST", true));
}

#[test]
fn decodes_setup_communication_and_matches_its_ack() {
    let mut st = S7Stream::new();
    let job = one(&mut st, Direction::ToServer, &dt(&SETUP_JOB));
    assert_eq!((job.name.as_str(), job.rosctr, job.pdu_ref), ("SETUP_COMMUNICATION", 1, 0xffff));
    assert_eq!(job.setup, Some(Setup { amq_calling: 1, amq_called: 1, pdu_size: 480 }));
    assert_eq!(job.class, FunctionClass::Diagnostic);
    let ack = one(&mut st, Direction::ToClient, &dt(&SETUP_ACK));
    assert!(!ack.request && ack.matched && ack.flags.is_empty());
    assert_eq!(ack.setup.map(|s| s.pdu_size), Some(240));
    assert_eq!(ack.error, None);
}

#[test]
fn read_var_items_give_ranges_in_bits_and_the_response_their_values() {
    let mut st = S7Stream::new();
    let job = one(&mut st, Direction::ToServer, &dt(&READ_JOB));
    assert_eq!(job.name, "READ_VAR");
    assert_eq!(job.class, FunctionClass::Read);
    let db1 = Space::S7 { area: 0x84, db: 1 };
    let m = Space::S7 { area: 0x83, db: 0 };
    let ranges = vec![
        PointRange { space: db1, start: 80, count: 32, access: Access::Read },
        PointRange { space: m, start: 27, count: 1, access: Access::Read },
    ];
    assert_eq!(job.points, ranges);
    assert!(job.values.is_empty());
    let ack = one(&mut st, Direction::ToClient, &dt(&READ_ACK));
    assert!(ack.matched && ack.flags.is_empty(), "{ack:?}");
    assert_eq!(ack.points, ranges);
    let v = |space, index, value| PointValue { space, index, value, access: Access::Read };
    assert_eq!(ack.values, [v(db1, 80, 1), v(db1, 88, 2), v(db1, 96, 3), v(db1, 104, 4), v(m, 27, 1)]);
    assert_eq!(ack.error, None);
}

#[test]
fn a_failed_read_item_is_the_error_code_and_gives_no_values() {
    let mut st = S7Stream::new();
    one(&mut st, Direction::ToServer, &dt(&READ_JOB));
    let ack = one(&mut st, Direction::ToClient, &dt(&READ_ACK_FAILED));
    assert_eq!(ack.error, Some(0x0a));
    assert_eq!(ack.values.len(), 1);
}

#[test]
fn write_var_gives_written_values_and_the_ack_its_return_code() {
    let mut st = S7Stream::new();
    let job = one(&mut st, Direction::ToServer, &dt(&WRITE_JOB));
    let db1 = Space::S7 { area: 0x84, db: 1 };
    assert_eq!(job.name, "WRITE_VAR");
    assert_eq!(job.class, FunctionClass::Write);
    assert_eq!(job.points, [PointRange { space: db1, start: 16, count: 16, access: Access::Write }]);
    assert_eq!(job.values, [PointValue { space: db1, index: 16, value: -200, access: Access::Write }]);
    let ack = one(&mut st, Direction::ToClient, &dt(&WRITE_ACK));
    assert_eq!(ack.error, Some(5));
    assert!(ack.values.is_empty());
}

#[test]
fn an_ack_with_an_error_class_reports_class_and_code() {
    let ack = [
        0x32, 0x02, 0x00, 0x00, // S7comm, ack, redundancy id
        0x00, 0x07, // PDU reference 7
        0x00, 0x00, // no parameters
        0x00, 0x00, // no data
        0x81, 0x04, // application relationship error, code 4
    ];
    let mut st = S7Stream::new();
    let s = one(&mut st, Direction::ToClient, &dt(&ack));
    assert_eq!((s.name.as_str(), s.error), ("ACK", Some(0x8104)));
    // No job was seen yet: the capture may have begun between job and ack.
    assert!(s.flags.is_empty());
}

#[test]
fn a_response_without_its_job_is_flagged() {
    let mut st = S7Stream::new();
    one(&mut st, Direction::ToServer, &dt(&SETUP_JOB));
    let s = one(&mut st, Direction::ToClient, &dt(&READ_ACK));
    assert_eq!(s.flags, ["response_without_request"]);
    assert!(!s.matched);
}

#[test]
fn request_download_is_a_program_download_of_its_block() {
    let job = [
        0x32, 0x01, 0x00, 0x00, // S7comm, job, redundancy id
        0xbd, 0x0a, // PDU reference
        0x00, 0x20, // parameter length 32
        0x00, 0x00, // data length
        0x1a, // request download
        0x00, // function status
        0x01, 0x00, // unknown
        0x00, 0x00, 0x00, 0x00, // unknown
        0x09, b'_', b'0', b'8', b'0', b'0', b'0', b'0', b'1', b'P', // file name _0800001P: OB 1
        0x0d, b'1', b'0', b'0', b'0', b'3', b'3', b'2', b'0', b'0', b'0', b'2', b'1', b'2', // lengths
    ];
    let mut st = S7Stream::new();
    let s = one(&mut st, Direction::ToServer, &dt(&job));
    assert_eq!(s.name, "REQUEST_DOWNLOAD");
    assert_eq!(s.critical, Some(CriticalOp::ProgramDownload));
    assert_eq!(s.class, FunctionClass::Program);
    assert_eq!(s.block, Some(("OB", 1)));
    assert_eq!(s.filename, "_0800001P");
    let ack = [
        0x32, 0x03, 0x00, 0x00, // S7comm, ack-data, redundancy id
        0xbd, 0x0a, // PDU reference
        0x00, 0x01, // parameter length
        0x00, 0x00, // data length
        0x00, 0x00, // no error
        0x1a, // request download
    ];
    let a = one(&mut st, Direction::ToClient, &dt(&ack));
    assert_eq!((a.name.as_str(), a.block, a.critical), ("REQUEST_DOWNLOAD", Some(("OB", 1)), None));
}

#[test]
fn download_ended_names_its_block() {
    let job = [
        0x32, 0x01, 0x00, 0x00, // S7comm, job, redundancy id
        0xbf, 0x00, // PDU reference
        0x00, 0x12, // parameter length 18
        0x00, 0x00, // data length
        0x1c, // download ended
        0x00, // function status
        0x00, 0x00, // error code
        0x00, 0x00, 0x00, 0x00, // unknown
        0x09, b'_', b'0', b'8', b'0', b'0', b'0', b'0', b'1', b'P', // file name _0800001P
    ];
    let s = one(&mut S7Stream::new(), Direction::ToServer, &dt(&job));
    assert_eq!((s.name.as_str(), s.block, s.critical), ("DOWNLOAD_ENDED", Some(("OB", 1)), None));
}

#[test]
fn start_upload_is_a_program_upload_and_end_upload_is_not() {
    let start = [
        0x32, 0x01, 0x00, 0x00, // S7comm, job, redundancy id
        0x00, 0x10, // PDU reference
        0x00, 0x12, // parameter length 18
        0x00, 0x00, // data length
        0x1d, // start upload
        0x00, // function status
        0x00, 0x00, // unknown
        0x00, 0x00, 0x00, 0x00, // upload id
        0x09, b'_', b'0', b'A', b'0', b'0', b'0', b'0', b'1', b'A', // file name _0A00001A: DB 1
    ];
    let end = [
        0x32, 0x01, 0x00, 0x00, // S7comm, job, redundancy id
        0x00, 0x11, // PDU reference
        0x00, 0x08, // parameter length 8
        0x00, 0x00, // data length
        0x1f, // end upload
        0x00, // function status
        0x00, 0x00, // error code
        0x00, 0x00, 0x00, 0x07, // upload id
    ];
    let mut st = S7Stream::new();
    let s = one(&mut st, Direction::ToServer, &dt(&start));
    assert_eq!(
        (s.name.as_str(), s.critical, s.block),
        ("START_UPLOAD", Some(CriticalOp::ProgramUpload), Some(("DB", 1)))
    );
    let e = one(&mut st, Direction::ToServer, &dt(&end));
    assert_eq!((e.name.as_str(), e.critical, e.class), ("END_UPLOAD", None, FunctionClass::Program));
}

/// A PI service job with `params` and `name`.
fn pi(params: &[u8], name: &[u8]) -> Vec<u8> {
    let plen = 1 + 7 + 2 + params.len() + 1 + name.len();
    let mut v = vec![
        0x32,
        0x01,
        0x00,
        0x00, // S7comm, job, redundancy id
        0x00,
        0x20, // PDU reference
        0x00,
        plen as u8, // parameter length
        0x00,
        0x00, // data length
        0x28, // PI service
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0xfd, // unknown
        0x00,
        params.len() as u8, // parameter block length
    ];
    v.extend_from_slice(params);
    v.push(name.len() as u8); // service name length
    v.extend_from_slice(name);
    v
}

#[test]
fn pi_services_map_to_their_critical_operations() {
    // Block count 1, 0x00, then type, number and file system.
    let ob1 = [0x01, 0x00, b'0', b'8', b'0', b'0', b'0', b'0', b'1', b'P'];
    let sdb2000 = [0x01, 0x00, b'0', b'B', b'0', b'2', b'0', b'0', b'0', b'A'];
    let cases: [(&[u8], &[u8], Option<CriticalOp>, Option<(&str, u32)>); 6] = [
        (&ob1, b"_INSE", Some(CriticalOp::ProgramDownload), Some(("OB", 1))),
        (&sdb2000, b"_DELE", Some(CriticalOp::BlockDelete), Some(("SDB", 2000))),
        (&[], b"P_PROGRAM", Some(CriticalOp::PlcStart), None),
        (b"EP", b"_MODU", Some(CriticalOp::MemoryOperation), None),
        (&[], b"_GARB", Some(CriticalOp::MemoryOperation), None),
        (&[], b"_N_LOGIN_", None, None),
    ];
    for (params, name, critical, block) in cases {
        let s = one(&mut S7Stream::new(), Direction::ToServer, &dt(&pi(params, name)));
        assert_eq!(s.name, "PI_SERVICE");
        assert_eq!(s.pi.as_bytes(), name);
        assert_eq!((s.critical, s.block), (critical, block), "{}", s.pi);
        assert_eq!(s.class, FunctionClass::Program);
    }
}

#[test]
fn plc_stop_is_critical() {
    let job = [
        0x32, 0x01, 0x00, 0x00, // S7comm, job, redundancy id
        0x35, 0x00, // PDU reference
        0x00, 0x10, // parameter length 16
        0x00, 0x00, // data length
        0x29, // PLC stop
        0x00, 0x00, 0x00, 0x00, 0x00, // unknown
        0x09, b'P', b'_', b'P', b'R', b'O', b'G', b'R', b'A', b'M', // service P_PROGRAM
    ];
    let mut st = S7Stream::new();
    let s = one(&mut st, Direction::ToServer, &dt(&job));
    assert_eq!((s.name.as_str(), s.critical, s.pi.as_str()), ("PLC_STOP", Some(CriticalOp::PlcStop), "P_PROGRAM"));
    let ack = [
        0x32, 0x03, 0x00, 0x00, // S7comm, ack-data, redundancy id
        0x35, 0x00, // PDU reference
        0x00, 0x01, // parameter length
        0x00, 0x00, // data length
        0x00, 0x00, // no error
        0x29, // PLC stop
    ];
    let a = one(&mut st, Direction::ToClient, &dt(&ack));
    assert_eq!((a.name.as_str(), a.critical, a.matched), ("PLC_STOP", None, true));
}

/// A userdata PDU with a 4-byte parameter tail (method, type|group, subfunction, sequence) and
/// `data`.
fn userdata(type_group: u8, subfunc: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0x32,
        0x07,
        0x00,
        0x00, // S7comm, userdata, redundancy id
        0x05,
        0x00, // PDU reference
        0x00,
        0x08, // parameter length
        0x00,
        data.len() as u8, // data length
        0x00,
        0x01,
        0x12,                                           // parameter head
        0x04,                                           // parameter length 4
        if type_group >> 4 == 8 { 0x12 } else { 0x11 }, // method
        type_group,                                     // type (upper nibble), function group (lower nibble)
        subfunc,                                        // subfunction
        0x00,                                           // sequence number
    ];
    v.extend_from_slice(data);
    v
}

#[test]
fn userdata_subfunctions_have_names_classes_and_fields() {
    // Return code, transport size, length, then the subfunction's data.
    let szl = [0xff, 0x09, 0x00, 0x04, 0x01, 0x32, 0x00, 0x04]; // SZL id 0x0132, index 4
    let password = [0xff, 0x09, 0x00, 0x08, 0x21, 0x3a, 0x1b, 0x1d, 0x6e, 0x68, 0x1b, 0x1d];
    let block_info = [0xff, 0x09, 0x00, 0x08, b'0', b'B', b'0', b'0', b'0', b'0', b'1', b'A']; // SDB 1
    let empty = [0x0a, 0x00, 0x00, 0x00];
    let cases: [(u8, u8, &[u8], &str, FunctionClass, Option<CriticalOp>); 9] = [
        (0x44, 0x01, &szl, "CPU_READ_SZL", FunctionClass::Diagnostic, None),
        (0x45, 0x01, &password, "SECURITY_PLC_PASSWORD", FunctionClass::Program, Some(CriticalOp::ProtectionChange)),
        (0x47, 0x01, &empty, "TIME_READ_CLOCK", FunctionClass::Diagnostic, None),
        (0x47, 0x02, &empty, "TIME_SET_CLOCK", FunctionClass::Diagnostic, None),
        (0x43, 0x01, &empty, "BLOCK_LIST_BLOCKS", FunctionClass::Diagnostic, None),
        (0x43, 0x03, &block_info, "BLOCK_GET_BLOCK_INFO", FunctionClass::Diagnostic, None),
        (0x42, 0x01, &empty, "CYCLIC_TRANSFER", FunctionClass::Read, None),
        (0x41, 0x02, &empty, "PROG_VARIABLE_STATUS", FunctionClass::Diagnostic, None),
        (0x41, 0x0c, &empty, "PROG_MEMORY_RESET", FunctionClass::Program, Some(CriticalOp::MemoryOperation)),
    ];
    for (tg, sub, data, name, class, critical) in cases {
        let s = one(&mut S7Stream::new(), Direction::ToServer, &dt(&userdata(tg, sub, data)));
        assert_eq!(s.name, name);
        assert!(s.request, "{name}");
        assert_eq!((s.class, s.critical), (class, critical), "{name}");
        assert_eq!(s.userdata, Some((4, tg & 0x0f, sub)));
        assert!(s.flags.is_empty(), "{name}: {:?}", s.flags);
        if name == "CPU_READ_SZL" {
            assert_eq!(s.szl, Some((0x0132, 4)));
        }
        if name == "BLOCK_GET_BLOCK_INFO" {
            assert_eq!(s.block, Some(("SDB", 1)));
        }
    }
}

#[test]
fn userdata_responses_and_pushes_are_not_requests() {
    let response = [
        0x32, 0x07, 0x00, 0x00, // S7comm, userdata, redundancy id
        0x06, 0x00, // PDU reference
        0x00, 0x0c, // parameter length 12
        0x00, 0x04, // data length
        0x00, 0x01, 0x12, // parameter head
        0x08, // parameter length 8
        0x12, // method: response
        0x85, // type response, group security
        0x01, // subfunction PLC password
        0x01, // sequence number
        0x00, // data unit reference
        0x00, // last data unit
        0x00, 0x00, // error code
        0x0a, 0x00, 0x00, 0x00, // return code: object does not exist
    ];
    let s = one(&mut S7Stream::new(), Direction::ToClient, &dt(&response));
    assert_eq!((s.name.as_str(), s.request, s.critical, s.error), ("SECURITY_PLC_PASSWORD", false, None, Some(0x0a)));
    let push = userdata(0x04, 0x03, &[0xff, 0x09, 0x00, 0x00]);
    let p = one(&mut S7Stream::new(), Direction::ToClient, &dt(&push));
    assert_eq!((p.name.as_str(), p.request, p.userdata), ("CPU_DIAGNOSTIC_MESSAGE", false, Some((0, 4, 3))));
}

#[test]
fn szl_ids_are_read_from_first_response_units_only() {
    let response = |unit_ref: u8| {
        vec![
            0x32, 0x07, 0x00, 0x00, // S7comm, userdata, redundancy id
            0x07, 0x00, // PDU reference
            0x00, 0x0c, // parameter length 12
            0x00, 0x08, // data length 8
            0x00, 0x01, 0x12, 0x08, 0x12, // head, length 8, response
            0x84, 0x01, 0x01, // type response, CPU functions, read SZL, sequence 1
            unit_ref, 0x00, // data unit reference, last data unit
            0x00, 0x00, // error code
            0xff, 0x09, 0x00, 0x04, // success, octet string, 4 bytes
            0x01, 0x32, 0x00, 0x04, // SZL 0x0132 index 4, or records of a continued list
        ]
    };
    // A follow-up request: it names the data unit reference of the list it continues.
    let followup = [
        0x32, 0x07, 0x00, 0x00, // S7comm, userdata, redundancy id
        0x08, 0x00, // PDU reference
        0x00, 0x0c, // parameter length 12
        0x00, 0x04, // data length 4
        0x00, 0x01, 0x12, 0x08, 0x12, // head, length 8, request type 0x12 (follow-up)
        0x44, 0x01, 0x02, // type request, CPU functions, read SZL, sequence 2
        0x05, 0x00, // data unit reference 5, last data unit
        0x00, 0x00, // error code
        0x0a, 0x00, 0x00, 0x00, // no data
    ];
    let first = one(&mut S7Stream::new(), Direction::ToClient, &dt(&response(0)));
    assert_eq!(first.szl, Some((0x0132, 4)));
    // The first unit of a list that continues carries a reference too: it still opens the list.
    let first_of_many = one(&mut S7Stream::new(), Direction::ToClient, &dt(&response(5)));
    assert_eq!(first_of_many.szl, Some((0x0132, 4)));
    let mut st = S7Stream::new();
    let _ = feed(&mut st, Direction::ToServer, &dt(&followup));
    let (continued, _) = feed(&mut st, Direction::ToClient, &dt(&response(5)));
    assert_eq!(continued.first().map(|s| s.szl), Some(None), "the answer to a follow-up continues the list");
}

#[test]
fn a_tsdu_split_over_two_data_tpdus_is_reassembled() {
    let (a, b) = READ_JOB.split_at(15);
    let mut bytes = dt_eot(a, false);
    bytes.extend(dt_eot(b, true));
    let s = one(&mut S7Stream::new(), Direction::ToServer, &bytes);
    assert_eq!((s.name.as_str(), s.points.len()), ("READ_VAR", 2));
}

#[test]
fn an_oversized_tsdu_is_dropped_and_the_next_one_decoded() {
    let mut st = S7Stream::new();
    let chunk = dt_eot(&[0u8; 60_000], false);
    for _ in 0..2 {
        let (v, p) = feed(&mut st, Direction::ToServer, &chunk);
        assert!(v.is_empty() && p.consumed == chunk.len());
    }
    assert_eq!(st.counters.reassembly_overflows, 1);
    // The end of the dropped TSDU, then a whole one.
    let mut bytes = dt_eot(&[0u8; 10], true);
    bytes.extend(dt(&SETUP_JOB));
    let (v, _) = feed(&mut st, Direction::ToServer, &bytes);
    assert_eq!(v.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["SETUP_COMMUNICATION"]);
}

#[test]
fn one_tpkt_over_two_segments_waits_for_the_second() {
    let bytes = dt(&READ_JOB);
    let mut st = S7Stream::new();
    let (v, p) = feed(&mut st, Direction::ToServer, &bytes[..20]);
    assert!(v.is_empty());
    assert_eq!(p, Parsed { consumed: 0, skipped: 0 });
    let s = one(&mut st, Direction::ToServer, &bytes);
    assert_eq!(s.name, "READ_VAR");
}

#[test]
fn two_tpkts_in_one_segment_give_two_pdus() {
    let mut bytes = dt(&READ_JOB);
    bytes.extend(dt(&WRITE_JOB));
    let (v, p) = feed(&mut S7Stream::new(), Direction::ToServer, &bytes);
    assert_eq!(p.consumed, bytes.len());
    assert_eq!(v.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["READ_VAR", "WRITE_VAR"]);
}

#[test]
fn garbage_is_skipped_up_to_the_next_valid_tpkt() {
    let mut bytes = vec![0x03, 0x00, 0x00, 0x02, 0xde, 0xad, 0xbe, 0xef, 0x99];
    let garbage = bytes.len();
    bytes.extend(dt(&SETUP_JOB));
    let (v, p) = feed(&mut S7Stream::new(), Direction::ToServer, &bytes);
    assert_eq!(p, Parsed { consumed: bytes.len(), skipped: garbage });
    assert_eq!(v.len(), 1);
}

#[test]
fn after_a_gap_the_stream_resynchronises_on_the_next_header() {
    let mut st = S7Stream::new();
    st.gap(Direction::ToServer);
    let first = dt(&READ_JOB);
    let mut bytes = first.get(9..).unwrap_or_default().to_vec(); // the tail of a lost TPKT
    let tail = bytes.len();
    bytes.extend(dt(&WRITE_JOB));
    let (v, p) = feed(&mut st, Direction::ToServer, &bytes);
    assert_eq!(p, Parsed { consumed: bytes.len(), skipped: tail });
    assert_eq!(v.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["WRITE_VAR"]);
}

#[test]
fn probe_is_strict() {
    assert_eq!(probe(&CR), Probe::Yes);
    assert_eq!(probe(&dt(&SETUP_JOB)), Probe::Yes);
    assert_eq!(probe(&[0x03, 0x00]), Probe::NeedMore);
    assert_eq!(probe(&[0x03, 0x00, 0x00, 0x16, 0x11]), Probe::NeedMore);
    // HTTP, TLS, a TPKT of version 2, a length below 7, a bad TPDU code, an LI past the end.
    for bad in [
        &b"GET / HTTP/1.1"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00],
        &[0x02, 0x00, 0x00, 0x16, 0x11, 0xe0, 0x00],
        &[0x03, 0x00, 0x00, 0x06, 0x02, 0xf0, 0x80],
        &[0x03, 0x00, 0x00, 0x07, 0x02, 0x30, 0x80],
        &[0x03, 0x00, 0x00, 0x07, 0x05, 0xf0, 0x80],
    ] {
        assert_eq!(probe(bad), Probe::No, "{bad:02x?}");
    }
}

/// An S7comm-plus PDU: header, optional integrity part (version 3), data, trailer.
fn plus(version: u8, data: &[u8], trailer: bool) -> Vec<u8> {
    let integrity = if version == 3 { 33 } else { 0 };
    let dlen = (integrity + data.len()) as u16;
    let mut v = vec![0x72, version, (dlen >> 8) as u8, dlen as u8]; // protocol id, version, data length
    if version == 3 {
        v.push(0x20); // digest length 32
        v.extend([0u8; 32]); // digest, not verified
    }
    v.extend_from_slice(data);
    if trailer {
        v.extend([0x72, version, 0x00, 0x00]); // trailer
    }
    v
}

#[test]
fn s7comm_plus_request_header_fields_are_read() {
    let data = [
        0x31, // opcode request
        0x00, 0x00, // reserved
        0x04, 0xca, // function CreateObject
        0x00, 0x00, // reserved
        0x00, 0x01, // sequence number 1
        0x00, 0x00, 0x01, 0x20, // session id 0x120
        0x36, // transport flags
        0xaa, 0xbb, // request body
    ];
    let mut st = S7Stream::new();
    let s = one(&mut st, Direction::ToServer, &dt(&plus(1, &data, true)));
    assert_eq!(s.name, "CREATE_OBJECT");
    assert!(s.request);
    assert_eq!(s.plus, Some((1, Some(0x31), Some(1), Some(0x120), Fragment::Whole)));
    assert!(s.flags.is_empty());
}

#[test]
fn s7_1200_stop_and_run_requests_are_critical() {
    for (state, op) in [(1u8, CriticalOp::PlcStop), (3, CriticalOp::PlcStart)] {
        let data = [
            0x31, // opcode request
            0x00, 0x00, // reserved
            0x04, 0xf2, // function SetVariable
            0x00, 0x00, // reserved
            0x00, 0x09, // sequence number
            0x00, 0x00, 0x03, 0x8c, // session id
            0x34, // transport flags
            0x00, 0x00, 0x00, 0x34, // object: CPU execution unit
            0x01, // one item
            0x90, 0x77, // attribute 2167 CPUexecUnit.operatingStateREQ
            0x00, 0x08, state, // value flags, DInt, the state
            0x00, 0x00, 0x04, 0xe8, // object qualifier follows
        ];
        let s = one(&mut S7Stream::new(), Direction::ToServer, &dt(&plus(3, &data, true)));
        assert_eq!((s.name.as_str(), s.critical, s.class), ("SET_VARIABLE", Some(op), FunctionClass::Program));
    }
}

#[test]
fn s7comm_plus_fragments_carry_their_first_fragment_header() {
    let first = [
        0x32, // opcode response
        0x00, 0x00, // reserved
        0x05, 0x4c, // function GetMultiVariables
        0x00, 0x00, // reserved
        0x00, 0x07, // sequence number 7
        0x00, // transport flags
    ];
    let mut bytes = dt(&plus(2, &first, false));
    bytes.extend(dt(&plus(2, &[0xaa; 10], false)));
    bytes.extend(dt(&plus(2, &[0xbb; 10], true)));
    let (v, p) = feed(&mut S7Stream::new(), Direction::ToClient, &bytes);
    assert_eq!(p.consumed, bytes.len());
    let frags: Vec<_> = v.iter().map(|s| (s.name.as_str(), s.plus.map(|p| (p.2, p.4)))).collect();
    assert_eq!(
        frags,
        [
            ("GET_MULTI_VARIABLES", Some((Some(7), Fragment::First))),
            ("GET_MULTI_VARIABLES", Some((Some(7), Fragment::Inner))),
            ("GET_MULTI_VARIABLES", Some((Some(7), Fragment::Last))),
        ]
    );
}

#[test]
fn s7comm_plus_keep_alives_and_garbage_never_lose_the_stream() {
    let mut bytes = dt(&[0x72, 0xff, 0x03, 0x00]); // keep-alive, sequence 3
    bytes.extend(dt(&[0x72, 0x03, 0xff, 0xff, 0x01])); // V3 with a length and digest that cannot be
    bytes.extend(dt(&SETUP_JOB));
    let (v, p) = feed(&mut S7Stream::new(), Direction::ToServer, &bytes);
    assert_eq!(p, Parsed { consumed: bytes.len(), skipped: 0 });
    let names: Vec<_> = v.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["KEEP_ALIVE", "unknown-65535", "SETUP_COMMUNICATION"]);
    assert_eq!(v.get(1).map(|s| s.flags.clone()), Some(vec!["plus_length_mismatch", "plus_bad_integrity_part"]));
}

/// A connection's client bytes: COTP CR, setup, read, write, userdata, S7comm-plus.
fn conversation() -> Vec<u8> {
    let mut v = CR.to_vec();
    for t in [
        &SETUP_JOB[..],
        &READ_JOB,
        &WRITE_JOB,
        &userdata(0x44, 0x01, &[0xff, 0x09, 0x00, 0x04, 0x00, 0x11, 0x00, 0x00]),
    ] {
        v.extend(dt(t));
    }
    let (a, b) = READ_JOB.split_at(20);
    v.extend(dt_eot(a, false));
    v.extend(dt_eot(b, true));
    v.extend(dt(&plus(2, &[0x31, 0, 0, 0x05, 0x4c, 0, 0, 0, 2, 0, 0, 0, 1, 0], true)));
    v
}

/// Feeds `chunks` as the engine does: unconsumed bytes are kept and offered again with more.
fn feed_split(bytes: &[u8], split: usize) -> Vec<Seen> {
    let mut st = S7Stream::new();
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for chunk in [&bytes[..split], &bytes[split..]] {
        pending.extend_from_slice(chunk);
        let p = st.parse(&pending, Direction::ToServer, &mut |b| out.push(seen(b)));
        assert_eq!(p.skipped, 0);
        pending.drain(..p.consumed);
    }
    assert!(pending.is_empty());
    out
}

proptest! {
    #[test]
    fn every_split_point_gives_the_same_pdus(split in 0usize..400) {
        let bytes = conversation();
        let split = split.min(bytes.len());
        prop_assert_eq!(feed_split(&bytes, split), feed_split(&bytes, bytes.len()));
    }

    #[test]
    fn never_panics_and_always_progresses(data in proptest::collection::vec(any::<u8>(), 0..600), to_client in any::<bool>()) {
        let dir = if to_client { Direction::ToClient } else { Direction::ToServer };
        let mut st = S7Stream::new();
        let p = st.parse(&data, dir, &mut |b| { seen(b); });
        prop_assert!(p.consumed <= data.len() && p.skipped <= p.consumed);
        // Whatever is left is a possible header prefix, shorter than a TPKT can be long.
        prop_assert!(data.len() - p.consumed <= 65_535);
    }
}
