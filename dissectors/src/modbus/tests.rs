//! Modbus/TCP tests on byte arrays, one comment per field.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use proptest::prelude::*;

use super::*;
use crate::testutil::{run, tcp_packet, Seen, ACK, PSH_ACK, SYN};

/// A decoded PDU, owned, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Got {
    request: bool,
    tid: u16,
    unit: u8,
    func: u8,
    exception: Option<u8>,
    address: Option<u16>,
    quantity: Option<u16>,
    sub: Option<u16>,
    values: Vec<u16>,
    flags: Vec<&'static str>,
}

/// Parses a request stream then a response stream through one connection's state.
fn exchange(req: &[u8], resp: &[u8]) -> Vec<Got> {
    let mut s = ModbusStream::new();
    let mut out = Vec::new();
    for (bytes, dir) in [(req, Direction::ToServer), (resp, Direction::ToClient)] {
        let mut emit = |b: &mut PduBody<'_>| {
            let PduBody::Modbus(m) = b else { panic!("not modbus") };
            out.push(Got {
                request: m.is_request,
                tid: m.tid,
                unit: m.unit,
                func: m.func.raw(),
                exception: m.exception_code,
                address: m.address,
                quantity: m.quantity,
                sub: m.sub_function,
                values: m.values.iter().collect(),
                flags: m.flags.iter().collect(),
            });
        };
        let p = s.parse(bytes, dir, &mut emit);
        assert_eq!(p.consumed, bytes.len(), "whole stream consumed");
    }
    out
}

#[test]
fn read_holding_registers_response_carries_its_requests_address() {
    let req = [
        0x00, 0x01, // transaction 1
        0x00, 0x00, // protocol 0
        0x00, 0x06, // length 6
        0x11, // unit 17
        0x03, // Read Holding Registers
        0x00, 0x6b, // address 107
        0x00, 0x03, // quantity 3
    ];
    let resp = [
        0x00, 0x01, 0x00, 0x00, 0x00, 0x09, 0x11, // MBAP, length 9, unit 17
        0x03, // function
        0x06, // byte count 6
        0x02, 0x2b, 0x00, 0x00, 0x00, 0x64, // 555, 0, 100
    ];
    let got = exchange(&req, &resp);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].address, got[0].quantity, got[0].request), (Some(107), Some(3), true));
    assert_eq!((got[1].address, got[1].quantity, got[1].request), (Some(107), Some(3), false));
    assert_eq!(got[1].values, [555, 0, 100]);
    assert!(got[1].flags.is_empty());
}

#[test]
fn read_coils_response_unpacks_the_requested_number_of_bits() {
    let req = [
        0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01, // MBAP, unit 1
        0x01, // Read Coils
        0x00, 0x13, // address 19
        0x00, 0x0a, // quantity 10
    ];
    let resp = [
        0x00, 0x02, 0x00, 0x00, 0x00, 0x05, 0x01, // MBAP, length 5
        0x01, // function
        0x02, // byte count 2
        0xcd, 0x01, // coils 19..28: 1,0,1,1,0,0,1,1, 1,0
    ];
    let got = exchange(&req, &resp);
    assert_eq!(got[1].values, [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]);
    assert_eq!(got[1].quantity, Some(10));
}

#[test]
fn read_discrete_inputs_and_input_registers_decode() {
    let req = [
        0x00, 0x03, 0x00, 0x00, 0x00, 0x06, 0x01, // MBAP
        0x04, // Read Input Registers
        0x00, 0x08, // address 8
        0x00, 0x01, // quantity 1
    ];
    let resp = [
        0x00, 0x03, 0x00, 0x00, 0x00, 0x05, 0x01, // MBAP
        0x04, 0x02, // function, byte count
        0x00, 0x0a, // 10
    ];
    assert_eq!(exchange(&req, &resp)[1].values, [10]);
    let req = [
        0x00, 0x04, 0x00, 0x00, 0x00, 0x06, 0x01, /* MBAP */ 0x02, /* FC2 */ 0x00, 0xc4, 0x00,
        0x16, /* 196, 22 */
    ];
    let resp = [
        0x00, 0x04, 0x00, 0x00, 0x00, 0x06, 0x01, /* MBAP */ 0x02, 0x03, /* FC2, 3 bytes */ 0xac, 0xdb, 0x35,
    ];
    let got = exchange(&req, &resp);
    assert_eq!(got[1].values.len(), 22);
    assert!(got[1].flags.is_empty());
}

#[test]
fn write_single_coil_accepts_only_ff00_and_0000() {
    let req = [
        0x00, 0x05, 0x00, 0x00, 0x00, 0x06, 0x01, // MBAP
        0x05, // Write Single Coil
        0x00, 0xac, // address 172
        0xff, 0x00, // ON
    ];
    let got = exchange(&req, &req);
    assert_eq!((got[0].address, got[0].values.clone()), (Some(172), vec![1]));
    assert_eq!(got[1].values, [1]);
    let bad = [0x00, 0x06, 0x00, 0x00, 0x00, 0x06, 0x01, 0x05, 0x00, 0xac, /* value */ 0x12, 0x34];
    assert_eq!(exchange(&bad, &[])[0].flags, ["bad_coil_value"]);
}

#[test]
fn write_single_register_echo_keeps_the_value() {
    let req = [
        0x00, 0x07, 0x00, 0x00, 0x00, 0x06, 0x01, // MBAP
        0x06, // Write Single Register
        0x00, 0x01, // address 1
        0x00, 0x03, // value 3
    ];
    let got = exchange(&req, &req);
    assert_eq!((got[0].address, got[0].values.clone()), (Some(1), vec![3]));
    assert_eq!((got[1].address, got[1].values.clone()), (Some(1), vec![3]));
}

#[test]
fn read_exception_status_and_comm_event_counter_decode() {
    let req = [0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x01, /* MBAP, length 2 */ 0x07 /* FC7 */];
    let resp = [0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0x01, /* MBAP */ 0x07, 0x6d /* status */];
    assert_eq!(exchange(&req, &resp)[1].values, [0x6d]);
    let req = [0x00, 0x09, 0x00, 0x00, 0x00, 0x02, 0x01, /* MBAP */ 0x0b /* FC11 */];
    let resp = [
        0x00, 0x09, 0x00, 0x00, 0x00, 0x06, 0x01, // MBAP
        0x0b, // Get Comm Event Counter
        0xff, 0xff, // status: busy
        0x01, 0x08, // event count 264
    ];
    assert_eq!(exchange(&req, &resp)[1].values, [0xffff, 264]);
}

#[test]
fn diagnostics_restart_is_a_critical_operation() {
    let req = [
        0x00, 0x0a, 0x00, 0x00, 0x00, 0x06, 0x01, // MBAP
        0x08, // Diagnostics
        0x00, 0x01, // sub-function 1: restart communications
        0xff, 0x00, // clear the event log
    ];
    let mut s = ModbusStream::new();
    let mut ops = Vec::new();
    s.parse(&req, Direction::ToServer, &mut |b| {
        if let PduBody::Modbus(m) = b {
            ops.push((m.sub_function, m.critical(), m.class()));
        }
    });
    assert_eq!(ops, [(Some(1), Some(CriticalOp::ColdRestart), FunctionClass::Program)]);
    let listen = [0x00, 0x0b, 0x00, 0x00, 0x00, 0x06, 0x01, 0x08, /* sub 4 */ 0x00, 0x04, 0x00, 0x00];
    let mut crit = None;
    s.parse(&listen, Direction::ToServer, &mut |b| crit = b.critical());
    assert_eq!(crit, Some(CriticalOp::ListenOnly));
}

#[test]
fn get_comm_event_log_and_report_server_id_check_byte_counts() {
    let req = [0x00, 0x0c, 0x00, 0x00, 0x00, 0x02, 0x01, /* MBAP */ 0x0c /* FC12 */];
    let resp = [
        0x00, 0x0c, 0x00, 0x00, 0x00, 0x0b, 0x01, // MBAP, length 11
        0x0c, // Get Comm Event Log
        0x07, // byte count 7 (announced) but 8 follow
        0x00, 0x00, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00, // status, events, messages, 2 events
    ];
    assert_eq!(exchange(&req, &resp)[1].flags, ["byte_count_mismatch"]);
    let req = [0x00, 0x0d, 0x00, 0x00, 0x00, 0x02, 0x01, /* MBAP */ 0x11 /* FC17 */];
    let resp = [
        0x00, 0x0d, 0x00, 0x00, 0x00, 0x05, 0x01, // MBAP
        0x11, // Report Server ID
        0x02, // byte count
        0x42, 0xff, // server id, run indicator ON
    ];
    assert!(exchange(&req, &resp)[1].flags.is_empty());
}

#[test]
fn write_multiple_coils_and_registers_check_byte_count_against_quantity() {
    let coils = [
        0x00, 0x0e, 0x00, 0x00, 0x00, 0x09, 0x01, // MBAP, length 9
        0x0f, // Write Multiple Coils
        0x00, 0x13, // address 19
        0x00, 0x0a, // quantity 10
        0x02, // byte count 2
        0xcd, 0x01, // values
    ];
    let got = exchange(&coils, &[]);
    assert_eq!((got[0].address, got[0].quantity), (Some(19), Some(10)));
    assert_eq!(got[0].values, [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]);
    assert!(got[0].flags.is_empty());
    let regs = [
        0x00, 0x0f, 0x00, 0x00, 0x00, 0x0b, 0x01, // MBAP, length 11
        0x10, // Write Multiple Registers
        0x00, 0x01, // address 1
        0x00, 0x02, // quantity 2
        0x03, // byte count 3: wrong, 2 registers are 4 bytes
        0x00, 0x0a, 0x01, 0x02, // values
    ];
    assert_eq!(exchange(&regs, &[])[0].flags, ["byte_count_mismatch"]);
    let resp = [0x00, 0x0f, 0x00, 0x00, 0x00, 0x06, 0x01, /* MBAP */ 0x10, 0x00, 0x01, 0x00, 0x02 /* echo */];
    let got = exchange(&regs, &resp);
    assert_eq!((got[1].address, got[1].quantity), (Some(1), Some(2)));
}

#[test]
fn file_record_functions_check_their_byte_counts() {
    let read = [
        0x00, 0x10, 0x00, 0x00, 0x00, 0x0a, 0x01, // MBAP, length 10
        0x14, // Read File Record
        0x07, // byte count 7
        0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, // reference 6, file 4, record 1, length 2
    ];
    assert!(exchange(&read, &[])[0].flags.is_empty());
    let write = [
        0x00, 0x11, 0x00, 0x00, 0x00, 0x0e, 0x01, // MBAP, length 14
        0x15, // Write File Record
        0x0b, // byte count 11 (announced), 9 follow
        0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x06, 0xaf, // sub-request with one register
        0x00, 0x00, // two more bytes: total 11 after all
    ];
    assert!(exchange(&write, &[])[0].flags.is_empty());
}

#[test]
fn mask_write_register_keeps_both_masks() {
    let req = [
        0x00, 0x12, 0x00, 0x00, 0x00, 0x08, 0x01, // MBAP, length 8
        0x16, // Mask Write Register
        0x00, 0x04, // address 4
        0x00, 0xf2, // AND mask
        0x00, 0x25, // OR mask
    ];
    let got = exchange(&req, &req);
    assert_eq!((got[0].address, got[0].values.clone()), (Some(4), vec![0xf2, 0x25]));
}

#[test]
fn read_write_multiple_registers_reads_and_writes() {
    let req = [
        0x00, 0x13, 0x00, 0x00, 0x00, 0x0f, 0x01, // MBAP, length 15
        0x17, // Read/Write Multiple Registers
        0x00, 0x03, // read address 3
        0x00, 0x06, // read quantity 6
        0x00, 0x0e, // write address 14
        0x00, 0x02, // write quantity 2 (but 3 announced below: see byte count)
        0x04, // write byte count 4
        0x00, 0xff, 0x00, 0xff, // values
    ];
    let resp = [
        0x00, 0x13, 0x00, 0x00, 0x00, 0x0f, 0x01, // MBAP, length 15
        0x17, 0x0c, // function, byte count 12
        0x00, 0xfe, 0x0a, 0xcd, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0d, 0x00, 0xff, // six registers
    ];
    let got = exchange(&req, &resp);
    assert_eq!((got[0].address, got[0].quantity, got[0].values.clone()), (Some(3), Some(6), vec![255, 255]));
    assert_eq!(got[1].values.len(), 6);
    assert!(got[1].flags.is_empty());
}

#[test]
fn read_fifo_queue_returns_its_registers() {
    let req = [0x00, 0x14, 0x00, 0x00, 0x00, 0x04, 0x01, /* MBAP */ 0x18, 0x04, 0xde /* pointer 1246 */];
    let resp = [
        0x00, 0x14, 0x00, 0x00, 0x00, 0x0a, 0x01, // MBAP, length 10
        0x18, // Read FIFO Queue
        0x00, 0x06, // byte count 6
        0x00, 0x02, // FIFO count 2
        0x01, 0xb8, 0x12, 0x84, // 440, 4740
    ];
    let got = exchange(&req, &resp);
    assert_eq!((got[1].address, got[1].values.clone()), (Some(1246), vec![440, 4740]));
    assert!(got[1].flags.is_empty());
}

#[test]
fn read_device_identification_lists_its_objects() {
    let req = [
        0x00, 0x15, 0x00, 0x00, 0x00, 0x05, 0x01, // MBAP, length 5
        0x2b, // Encapsulated Interface Transport
        0x0e, // MEI 14: read device identification
        0x01, // basic
        0x00, // from object 0
    ];
    let resp = [
        0x00, 0x15, 0x00, 0x00, 0x00, 0x14, 0x01, // MBAP, length 20
        0x2b, 0x0e, 0x01, // function, MEI, code
        0x01, // conformity
        0x00, 0x00, // more follows, next object
        0x02, // two objects
        0x00, 0x04, b'A', b'c', b'm', b'e', // VendorName "Acme"
        0x01, 0x04, b'P', b'L', b'C', b'1', // ProductCode "PLC1"
    ];
    let mut s = ModbusStream::new();
    s.parse(&req, Direction::ToServer, &mut |_| {});
    let mut objs = Vec::new();
    s.parse(&resp, Direction::ToClient, &mut |b| {
        if let PduBody::Modbus(m) = b {
            assert!(m.flags.is_empty(), "{:?}", m.flags);
            objs.extend(m.device_identification().unwrap().map(|(id, v)| (id, v.to_vec())));
        }
    });
    assert_eq!(objs, [(0, b"Acme".to_vec()), (1, b"PLC1".to_vec())]);
}

#[test]
fn canopen_general_reference_is_mei_13() {
    let req = [0x00, 0x16, 0x00, 0x00, 0x00, 0x05, 0x01, /* MBAP */ 0x2b, 0x0d, /* MEI 13 */ 0x01, 0x02];
    assert_eq!(exchange(&req, &[])[0].sub, Some(13));
    let bad = [0x00, 0x17, 0x00, 0x00, 0x00, 0x03, 0x01, /* MBAP */ 0x2b, 0x05 /* MEI 5: undefined */];
    assert_eq!(exchange(&bad, &[])[0].flags, ["bad_mei_type"]);
}

#[test]
fn exception_response_keeps_the_function_and_its_code() {
    let req = [0x00, 0x18, 0x00, 0x00, 0x00, 0x06, 0x01, /* MBAP */ 0x03, 0x27, 0x10, 0x00, 0x01];
    let resp = [
        0x00, 0x18, 0x00, 0x00, 0x00, 0x03, 0x01, // MBAP, length 3
        0x83, // Read Holding Registers | 0x80
        0x02, // ILLEGAL_DATA_ADDRESS
    ];
    let got = exchange(&req, &resp);
    assert_eq!((got[1].func, got[1].exception, got[1].address), (3, Some(2), Some(10000)));
    assert!(got[1].flags.is_empty());
}

#[test]
fn unknown_and_user_defined_codes_are_kept_raw() {
    let req = [0x00, 0x19, 0x00, 0x00, 0x00, 0x04, 0x01, /* MBAP */ 0x41, /* user-defined 65 */ 0xde, 0xad];
    let got = exchange(&req, &[]);
    assert_eq!((got[0].func, got[0].flags.len()), (65, 0));
    assert_eq!(FunctionCode(0xc8).name().to_string(), "unknown-200");
    assert_eq!(FunctionCode(3).name().to_string(), "READ_HOLDING_REGISTERS");
}

#[test]
fn flags_a_non_zero_protocol_id_and_a_response_without_request() {
    let req = [0x00, 0x1a, 0x12, 0x34, 0x00, 0x06, 0x01, /* protocol 0x1234 */ 0x03, 0x00, 0x00, 0x00, 0x01];
    let resp = [0x00, 0x99, 0x00, 0x00, 0x00, 0x05, 0x01, /* tid 0x99: no request */ 0x03, 0x02, 0x00, 0x01];
    let got = exchange(&req, &resp);
    assert_eq!(got[0].flags, ["bad_protocol_id"]);
    assert_eq!(got[1].flags, ["response_without_request"]);
}

#[test]
fn flags_a_response_whose_function_differs_from_its_request() {
    let req = [0x00, 0x1b, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01];
    let resp = [0x00, 0x1b, 0x00, 0x00, 0x00, 0x05, 0x01, /* FC4 answering FC3 */ 0x04, 0x02, 0x00, 0x01];
    assert_eq!(exchange(&req, &resp)[1].flags, ["function_mismatch"]);
}

#[test]
fn responses_find_their_requests_in_any_order_whichever_is_held_inline() {
    // Three requests pending (the oldest held inline, the others on the heap); tid 2 is
    // sent twice, the second copy (address 9) replacing the first.
    let read = |tid: u8, addr: u8| [0x00, tid, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, addr, 0x00, 0x01];
    let answer = |tid: u8| [0x00, tid, 0x00, 0x00, 0x00, 0x05, 0x01, 0x03, 0x02, 0x00, 0x2a];
    let req = [read(1, 5), read(2, 6), read(3, 7), read(2, 9)].concat();
    let resp = [answer(2), answer(1), answer(3), answer(2)].concat();
    let got = exchange(&req, &resp);
    let answered: Vec<_> = got[4..].iter().map(|g| (g.tid, g.address, g.flags.clone())).collect();
    let unmatched = vec!["response_without_request"];
    assert_eq!(answered, [(2, Some(9), vec![]), (1, Some(5), vec![]), (3, Some(7), vec![]), (2, None, unmatched)]);
}

#[test]
fn rejects_mbap_length_below_two_and_resynchronises() {
    let mut stream = vec![0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x03]; // length 1: cannot frame
    stream.extend([0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01]); // a good ADU
    let mut s = ModbusStream::new();
    let mut n = 0;
    let p = s.parse(&stream, Direction::ToServer, &mut |_| n += 1);
    assert_eq!(n, 1);
    assert_eq!(p.skipped, 8);
    assert_eq!(p.consumed, stream.len());
}

#[test]
fn incomplete_adu_consumes_nothing() {
    let part = [0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00];
    let p = ModbusStream::new().parse(&part, Direction::ToServer, &mut |_| panic!("no PDU yet"));
    assert_eq!(p, Parsed { consumed: 0, skipped: 0 });
}

#[test]
fn probe_refuses_http_on_port_502() {
    assert_eq!(probe(b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n"), Probe::No);
    assert_eq!(probe(&[0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01]), Probe::Yes);
    assert_eq!(probe(&[0x00, 0x01, 0x00]), Probe::NeedMore);
}

// --- Through the engine: TCP segmentation ---------------------------------------------------

/// Three requests and their responses on one connection, as two byte streams.
fn conversation() -> (Vec<u8>, Vec<u8>) {
    let mut req = Vec::new();
    let mut resp = Vec::new();
    for tid in 1..=3u16 {
        req.extend(tid.to_be_bytes()); // transaction
        req.extend([0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x10]); // protocol, length, unit, FC3, address 16
        req.extend([0x00, 0x02]); // quantity 2
        resp.extend(tid.to_be_bytes());
        resp.extend([0x00, 0x00, 0x00, 0x07, 0x01, 0x03, 0x04]); // length 7, unit, FC3, byte count 4
        resp.extend([0x00, tid as u8, 0x01, 0x00]); // registers
    }
    (req, resp)
}

/// Sends `req` split at `cuts` from client to server after a handshake, then `resp` whole.
fn segmented(req: &[u8], resp: &[u8], cuts: &[usize]) -> Vec<Seen> {
    let mut pkts = vec![tcp_packet(1, 40000, 2, 502, 99, SYN, &[]), tcp_packet(2, 502, 1, 40000, 499, SYN | ACK, &[])];
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < req.len()));
    bounds.push(req.len());
    bounds.sort_unstable();
    bounds.dedup();
    for w in bounds.windows(2) {
        pkts.push(tcp_packet(1, 40000, 2, 502, 100 + w[0] as u32, PSH_ACK, &req[w[0]..w[1]]));
    }
    pkts.push(tcp_packet(2, 502, 1, 40000, 500, PSH_ACK, resp));
    run(&pkts)
        .pdus
        .into_iter()
        .map(|mut s| {
            s.pkt = 0;
            s
        })
        .collect()
}

#[test]
fn one_adu_over_two_segments_and_two_adus_in_one_segment() {
    let (req, resp) = conversation();
    let whole = segmented(&req, &resp, &[]);
    assert_eq!(whole.len(), 6);
    assert_eq!(segmented(&req, &resp, &[5]), whole); // first ADU split inside its header
    assert_eq!(segmented(&req, &resp, &[12]), whole); // ADU boundary
    assert!(whole[3..].iter().all(|s| s.address == Some(16) && !s.request));
}

proptest! {
    #[test]
    fn every_split_point_gives_the_same_pdus(a in 0usize..36, b in 0usize..36) {
        let (req, resp) = conversation();
        let whole = segmented(&req, &resp, &[]);
        prop_assert_eq!(segmented(&req, &resp, &[a, b]), whole);
    }
}

#[test]
fn function_code_zero_is_emitted_with_a_flag() {
    let req = [
        0x00, 0x01, // transaction 1
        0x00, 0x00, // protocol 0
        0x00, 0x02, // length 2
        0x01, // unit 1
        0x00, // function 0: no such function
    ];
    let resp = [
        0x00, 0x01, // transaction 1
        0x00, 0x00, // protocol 0
        0x00, 0x03, // length 3
        0x01, // unit 1
        0x80, // exception to function 0
        0x01, // ILLEGAL_FUNCTION
    ];
    let got = exchange(&req, &resp);
    assert_eq!((got[0].func, got[0].flags.clone()), (0, vec!["unknown_function"]));
    assert_eq!((got[1].func, got[1].exception, got[1].flags.clone()), (0, Some(1), vec!["unknown_function"]));
    assert_eq!(FunctionCode(0).name().to_string(), "unknown-0");
}

#[test]
fn probe_accepts_an_unknown_function_only_when_the_adu_fills_the_segment() {
    let fc0 = [
        0x00, 0x07, // transaction 7
        0x00, 0x00, // protocol 0
        0x00, 0x04, // length 4
        0xff, // unit 255
        0x00, // function 0
        0x12, 0x34, // data
    ];
    assert_eq!(probe(&fc0), Probe::Yes);
    assert_eq!(probe(&fc0[..9]), Probe::No, "an unknown function cut short is no evidence");
    let mut two = fc0.to_vec();
    two.extend([0x00, 0x08, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01]); // FC3 request
    assert_eq!(probe(&two), Probe::Yes, "followed by a known header");
    let mut junk = fc0.to_vec();
    junk.extend(b"junk after it");
    assert_eq!(probe(&junk), Probe::No);
}

#[test]
fn a_fuzzers_first_probe_opens_the_flow_and_is_seen() {
    let fc0 = [0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00]; // MBAP tid 1, length 2, unit 1; function 0
    let fc3 = [0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01]; // tid 2, FC3 address 0 quantity 1
    let c = run(&[
        tcp_packet(1, 40000, 2, 502, 99, SYN, &[]),
        tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &fc0),
        tcp_packet(1, 40000, 2, 502, 108, PSH_ACK, &fc3),
    ]);
    let funcs: Vec<_> = c.pdus.iter().map(|p| (p.func, p.flags.clone())).collect();
    assert_eq!(funcs, [(0, vec!["unknown_function"]), (3, vec![])]);
}

#[test]
fn resynchronisation_finds_an_unknown_function_that_fills_the_segment() {
    let mut s = ModbusStream::new();
    s.gap(Direction::ToServer);
    let data = [
        0xde, 0xad, // two bytes left of a lost ADU
        0x00, 0x09, 0x00, 0x00, 0x00, 0x03, 0x01, // MBAP tid 9, length 3, unit 1
        0x63, // function 99: unknown
        0x00, // data
    ];
    let mut funcs = Vec::new();
    let p = s.parse(&data, Direction::ToServer, &mut |b| funcs.push(b.func()));
    assert_eq!((funcs, p.skipped), (vec![99], 2));
}

#[test]
fn flags_a_device_identification_that_repeats_an_object() {
    let resp = [
        0x00, 0x15, 0x00, 0x00, 0x00, 0x14, 0x01, // MBAP tid 21, length 20, unit 1
        0x2b, 0x0e, 0x01, // function 43, MEI 14, basic
        0x01, // conformity
        0x00, 0x00, // more follows, next object
        0x02, // two objects
        0x00, 0x04, b'A', b'c', b'm', b'e', // VendorName "Acme"
        0x00, 0x04, b'E', b'v', b'i', b'l', // VendorName again, "Evil"
    ];
    let got = exchange(&[], &resp);
    assert_eq!(got[0].flags, ["duplicate_device_id_object"]);
}
