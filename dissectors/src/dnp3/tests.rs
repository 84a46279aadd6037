use proptest::prelude::*;

use super::link::build_frame;
use super::*;

/// What a test needs of a PDU, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    is_request: bool,
    func: u16,
    src: u16,
    dst: u16,
    iin: Option<u16>,
    objects: Vec<(u8, u8, u8, Range)>,
    frames: u16,
    flags: Vec<&'static str>,
}

fn seen(p: &Dnp3Pdu<'_>) -> Seen {
    Seen {
        is_request: p.is_request,
        func: p.func_code(),
        src: p.link.src,
        dst: p.link.dst,
        iin: p.iin(),
        objects: p.objects().map(|h| (h.group, h.variation, h.qualifier, h.range)).collect(),
        frames: p.frames,
        flags: p.flags.iter().collect(),
    }
}

fn run(s: &mut Dnp3Stream, data: &[u8], dir: Direction) -> (Vec<Seen>, Parsed) {
    let mut out = Vec::new();
    let parsed = s.parse(data, dir, &mut |b| {
        if let PduBody::Dnp3(p) = b {
            out.push(seen(p));
        }
    });
    (out, parsed)
}

/// Feeds `data` in the chunks given by `cuts`, keeping unconsumed bytes as the engine does.
fn run_split(data: &[u8], cuts: &[usize], dir: Direction) -> Vec<Seen> {
    let mut s = Dnp3Stream::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&data.len())) {
        pending.extend_from_slice(&data[last..c]);
        last = c;
        let (mut got, parsed) = run(&mut s, &pending, dir);
        out.append(&mut got);
        pending.drain(..parsed.consumed);
    }
    out
}

/// Master (1) to outstation (10): DIR=1, PRM=1, unconfirmed user data.
const MASTER: u8 = 0xC4;
/// Outstation (10) to master (1): DIR=0, PRM=1, unconfirmed user data.
const OUTSTATION: u8 = 0x44;

fn test_link() -> LinkHeader {
    LinkHeader { len: 5, control: MASTER, dst: 10, src: 1 }
}

/// One frame carrying a whole fragment (transport FIR+FIN, sequence `seq`).
fn frame(control: u8, dst: u16, src: u16, seq: u8, app: &[u8]) -> Vec<u8> {
    let mut user = vec![0xC0 | (seq & 0x3F)];
    user.extend_from_slice(app);
    let mut f = Vec::new();
    build_frame(control, dst, src, &user, &mut f);
    f
}

/// A fragment cut into transport segments of at most `seg` application bytes.
fn segments(control: u8, dst: u16, src: u16, first_seq: u8, app: &[u8], seg: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = app.chunks(seg).collect();
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let mut th = (first_seq.wrapping_add(i as u8)) & 0x3F;
        if i == 0 {
            th |= 0x40;
        }
        if i + 1 == chunks.len() {
            th |= 0x80;
        }
        let mut user = vec![th];
        user.extend_from_slice(c);
        build_frame(control, dst, src, &user, &mut out);
    }
    out
}

/// READ class 1, 2, 3 and 0 data.
const READ_CLASS_0123: [u8; 14] = [
    0xC1, // application control: FIR, FIN, sequence 1
    0x01, // function: READ
    0x3C, 0x02, 0x06, // g60v2 (class 1), qualifier 0x06: all
    0x3C, 0x03, 0x06, // g60v3 (class 2)
    0x3C, 0x04, 0x06, // g60v4 (class 3)
    0x3C, 0x01, 0x06, // g60v1 (class 0)
];

/// DIRECT_OPERATE one CROB, index 3, LATCH_ON, count 1, on 100 ms, off 200 ms.
const DIRECT_OPERATE_CROB: [u8; 18] = [
    0xC2, // application control: FIR, FIN, sequence 2
    0x05, // function: DIRECT_OPERATE
    0x0C, 0x01, // g12v1: control relay output block
    0x28, // qualifier: 2-byte index prefix, 2-byte count
    0x01, 0x00, // count 1
    0x03, 0x00, // index 3
    0x03, // control code: LATCH_ON
    0x01, // count 1
    0x64, 0x00, 0x00, 0x00, // on time 100 ms
    0xC8, 0x00, 0x00, // off time 200 ms (first three bytes)
];

fn direct_operate_crob() -> Vec<u8> {
    let mut v = DIRECT_OPERATE_CROB.to_vec();
    v.extend_from_slice(&[
        0x00, // off time, last byte
        0x00, // status
    ]);
    v
}

/// RESPONSE with IIN 0x9004 and four 16-bit analog inputs with flags (g30v2, 0..3).
fn response_analogs() -> Vec<u8> {
    vec![
        0xC1, // application control: FIR, FIN, sequence 1
        0x81, // function: RESPONSE
        0x90, 0x04, // IIN1 0x90 (device restart, need time), IIN2 0x04 (parameter error)
        0x1E, 0x02, // g30v2: 16-bit analog input with flag
        0x00, // qualifier: 1-byte start/stop
        0x00, 0x03, // start 0, stop 3
        0x01, 0x0A, 0x00, // index 0: online, 10
        0x01, 0x14, 0x00, // index 1: online, 20
        0x01, 0xFF, 0xFF, // index 2: online, -1
        0x01, 0x00, 0x80, // index 3: online, -32768
    ]
}

#[test]
fn decodes_a_read_request_with_class_objects() {
    let f = frame(MASTER, 10, 1, 0, &READ_CLASS_0123);
    let (pdus, parsed) = run(&mut Dnp3Stream::new(), &f, Direction::ToServer);
    assert_eq!(parsed, Parsed { consumed: f.len(), skipped: 0 });
    assert_eq!(pdus.len(), 1);
    let p = &pdus[0];
    assert!(p.is_request);
    assert_eq!((p.func, p.src, p.dst, p.iin, p.frames), (1, 1, 10, None, 1));
    let groups: Vec<_> = p.objects.iter().map(|o| (o.0, o.1, o.3)).collect();
    assert_eq!(groups, [(60, 2, Range::All), (60, 3, Range::All), (60, 4, Range::All), (60, 1, Range::All)]);
    assert!(p.flags.is_empty(), "{:?}", p.flags);
}

#[test]
fn decodes_response_iin_and_analog_values() {
    let f = frame(OUTSTATION, 1, 10, 0, &response_analogs());
    let mut vals = Vec::new();
    let mut iin = None;
    let mut err = None;
    Dnp3Stream::new().parse(&f, Direction::ToClient, &mut |b| {
        if let PduBody::Dnp3(p) = b {
            iin = p.iin();
            err = p.error_code();
            assert!(!p.is_request);
            assert_eq!(p.func_name(), FuncName::Known("RESPONSE"));
            p.for_each_value(&mut |v| vals.push((v.index, v.value)));
        }
    });
    assert_eq!(iin, Some(0x9004));
    assert_eq!(err, Some(0x0004));
    assert_eq!(iin_names(0x9004).collect::<Vec<_>>(), ["NEED_TIME", "DEVICE_RESTART", "PARAMETER_ERROR"]);
    assert_eq!(vals, [(0, 10), (1, 20), (2, -1), (3, -32768)]);
}

#[test]
fn decodes_a_crob_with_its_values_and_points() {
    let f = frame(MASTER, 10, 1, 0, &direct_operate_crob());
    let mut crobs = Vec::new();
    let mut points = Vec::new();
    let mut values = Vec::new();
    let mut meta = None;
    Dnp3Stream::new().parse(&f, Direction::ToServer, &mut |b| {
        if let PduBody::Dnp3(p) = b {
            crobs.extend(p.crobs());
            p.for_each_point(&mut |r| points.push(r));
            p.for_each_value(&mut |v| values.push(v));
            meta = Some((p.class(), p.critical(), p.flags().is_empty()));
        }
    });
    assert_eq!(crobs, [Crob { index: 3, code: 3, count: 1, on_ms: 100, off_ms: 200, status: 0 }]);
    assert_eq!(crobs[0].op_name(), "LATCH_ON");
    let space = Space::Dnp3 { group: 12, variation: 1 };
    assert_eq!(points, [PointRange { space, start: 3, count: 1, access: Access::Write }]);
    assert_eq!(values, [PointValue { space, index: 3, value: 1, access: Access::Write }]);
    assert_eq!(meta, Some((FunctionClass::Control, None, true)));
}

#[test]
fn crob_values_follow_the_control_code() {
    let c = |code| Crob { index: 0, code, count: 1, on_ms: 0, off_ms: 0, status: 0 };
    assert_eq!(c(0x41).value(), 1); // close, pulse on
    assert_eq!(c(0x81).value(), 0); // trip, pulse on
    assert_eq!(c(0x04).value(), 0); // latch off
    assert_eq!(c(0x01).value(), 1); // pulse on
    assert_eq!(c(0x00).value(), 0); // nul: the raw code
    assert!(!c(0x0F).is_valid());
    assert!(!c(0xC1).is_valid());
}

#[test]
fn flags_an_undefined_crob_control_code() {
    let mut app = direct_operate_crob();
    app[9] = 0x0F; // control code: operation type 15, undefined
    let f = frame(MASTER, 10, 1, 0, &app);
    let (pdus, _) = run(&mut Dnp3Stream::new(), &f, Direction::ToServer);
    assert_eq!(pdus[0].flags, ["bad_crob"]);
}

#[test]
fn decodes_an_analog_output_block() {
    let app = [
        0xC3, // application control: FIR, FIN, sequence 3
        0x03, // function: SELECT
        0x29, 0x02, // g41v2: 16-bit analog output block
        0x17, // qualifier: 1-byte index prefix, 1-byte count
        0x01, // count 1
        0x07, // index 7
        0xE8, 0x03, // value 1000
        0x00, // status
    ];
    let f = frame(MASTER, 10, 1, 0, &app);
    let mut got = Vec::new();
    let mut vals = Vec::new();
    Dnp3Stream::new().parse(&f, Direction::ToServer, &mut |b| {
        if let PduBody::Dnp3(p) = b {
            got.extend(p.analog_outputs());
            p.for_each_value(&mut |v| vals.push((v.index, v.value)));
        }
    });
    assert_eq!(got, [AnalogOutput { index: 7, variation: 2, value: 1000.0, status: 0 }]);
    assert_eq!(vals, [(7, 1000)]);
}

#[test]
fn walks_every_qualifier_code() {
    // WRITE, so objects follow their headers; every header carries g30v4 (2-byte analogs
    // without flag) or a size-prefixed g70 file object.
    let app: Vec<u8> = [
        &[0xC4, 0x02][..],                               // application control, WRITE
        &[30, 4, 0x00, 5, 6, 1, 0, 2, 0],                // 0x00: 1-byte start 5, stop 6; two objects
        &[30, 4, 0x01, 1, 0, 1, 0, 3, 0],                // 0x01: 2-byte start 1, stop 1; one object
        &[60, 1, 0x06],                                  // 0x06: all (class 0, no data)
        &[30, 4, 0x07, 1, 4, 0],                         // 0x07: 1-byte count 1
        &[30, 4, 0x08, 1, 0, 5, 0],                      // 0x08: 2-byte count 1
        &[30, 4, 0x17, 1, 9, 6, 0],                      // 0x17: 1-byte count, 1-byte index 9
        &[30, 4, 0x28, 1, 0, 0x10, 0x27, 7, 0],          // 0x28: 2-byte count, 2-byte index 10000
        &[30, 4, 0x39, 1, 0, 0, 0, 0x01, 0, 1, 0, 8, 0], // 0x39: 4-byte count, 4-byte index 65537
        &[70, 5, 0x5B, 1, 3, 0, 0xAA, 0xBB, 0xCC],       // 0x5B: 1-byte count, 2-byte size 3
    ]
    .concat();
    let pdu = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, &app, Flags::new(FLAG_NAMES));
    let hs: Vec<_> = pdu.objects().map(|h| (h.qualifier, h.range, h.data.len())).collect();
    assert_eq!(
        hs,
        [
            (0x00, Range::StartStop { start: 5, stop: 6 }, 4),
            (0x01, Range::StartStop { start: 1, stop: 1 }, 2),
            (0x06, Range::All, 0),
            (0x07, Range::Count(1), 2),
            (0x08, Range::Count(1), 2),
            (0x17, Range::Count(1), 3),
            (0x28, Range::Count(1), 4),
            (0x39, Range::Count(1), 6),
            (0x5B, Range::Count(1), 5),
        ]
    );
    assert!(pdu.flags.is_empty(), "{:?}", pdu.flags);
    let mut points = Vec::new();
    pdu.for_each_point(&mut |r| points.push((r.start, r.count)));
    assert_eq!(points, [(5, 2), (1, 1), (0, 0), (0, 1), (0, 1), (9, 1), (10000, 1), (65537, 1), (0, 1)]);
}

#[test]
fn reads_by_index_carry_indexes_but_no_objects() {
    let app = [
        0xC5, 0x01, // application control, READ
        0x01, 0x02, // g1v2: binary input with flags
        0x17, // qualifier: 1-byte count, 1-byte index prefix
        0x02, // count 2
        0x04, 0x09, // indexes 4 and 9, no objects in a read
        0x32, 0x01, 0x07, 0x01, // g50v1 time, count 1 (no object in a read)
    ];
    let pdu = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, &app, Flags::new(FLAG_NAMES));
    let mut it = pdu.objects();
    let hs: Vec<_> = it.by_ref().map(|h| (h.group, h.variation, h.range)).collect();
    assert_eq!(it.error, None);
    assert_eq!(hs, [(1, 2, Range::Count(2)), (50, 1, Range::Count(1))]);
    let mut points = Vec::new();
    pdu.for_each_point(&mut |r| points.push((r.start, r.count, r.access)));
    assert_eq!(points, [(4, 1, Access::Read), (9, 1, Access::Read), (0, 1, Access::Read)]);
    assert!(pdu.flags.is_empty());
}

#[test]
fn reports_malformed_object_headers_then_stops() {
    let cases: [(&[u8], &str); 4] = [
        (&[0xC0, 0x02, 0x1E, 0x04, 0x00, 0x05, 0x06, 0x01], "truncated_object"), // two analogs, one byte
        (&[0xC0, 0x02, 0x1E, 0x04, 0x00, 0x06, 0x05], "bad_range"),              // stop below start
        (&[0xC0, 0x02, 0x1E, 0x04, 0x0A, 0x00], "bad_qualifier"),                // range code 0xA reserved
        (&[0xC0, 0x02, 0xFE, 0x01, 0x07, 0x01, 0x00, 0x1E, 0x04, 0x06], "unknown_object"), // g254v1
    ];
    for (app, flag) in cases {
        let pdu = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, app, Flags::new(FLAG_NAMES));
        assert_eq!(pdu.flags.iter().collect::<Vec<_>>(), [flag], "{app:02x?}");
        // The malformed header itself is reported, nothing after it.
        assert_eq!(pdu.objects().count(), 1, "{app:02x?}");
    }
}

#[test]
fn names_functions_classes_and_critical_operations() {
    let cases = [
        (0u8, "CONFIRM", FunctionClass::Diagnostic, None),
        (1, "READ", FunctionClass::Read, None),
        (2, "WRITE", FunctionClass::Write, None),
        (6, "DIRECT_OPERATE_NR", FunctionClass::Control, None),
        (7, "IMMED_FREEZE", FunctionClass::Diagnostic, None),
        (13, "COLD_RESTART", FunctionClass::Program, Some(CriticalOp::ColdRestart)),
        (14, "WARM_RESTART", FunctionClass::Program, Some(CriticalOp::WarmRestart)),
        (15, "INITIALIZE_DATA", FunctionClass::Program, Some(CriticalOp::Initialize)),
        (16, "INITIALIZE_APPL", FunctionClass::Program, Some(CriticalOp::Initialize)),
        (18, "STOP_APPL", FunctionClass::Program, Some(CriticalOp::StopApplication)),
        (21, "DISABLE_UNSOLICITED", FunctionClass::Diagnostic, Some(CriticalOp::DisableUnsolicited)),
        (25, "OPEN_FILE", FunctionClass::Program, Some(CriticalOp::FileOperation)),
        (30, "ABORT_FILE", FunctionClass::Program, Some(CriticalOp::FileOperation)),
    ];
    for (func, name, class, critical) in cases {
        let frag = [0xC0, func];
        let pdu = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, &frag, Flags::new(FLAG_NAMES));
        assert_eq!(pdu.func_name(), FuncName::Known(name));
        assert_eq!(pdu.class(), class, "{name}");
        assert_eq!(pdu.critical(), critical, "{name}");
        assert!(pdu.is_request);
    }
    let frag = [0xC0, 0x70];
    let unknown = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, &frag, Flags::new(FLAG_NAMES));
    assert_eq!(unknown.func_name(), FuncName::Unknown(0x70));
    assert!(unknown.flags.contains("unknown_function"));
}

#[test]
fn unsolicited_responses_and_master_confirms_set_is_request_from_content() {
    let unsol = [0xF0, 0x82, 0x00, 0x00]; // FIR, FIN, CON, UNS, seq 0; UNSOLICITED_RESPONSE; IIN 0
    let pdu = Dnp3Pdu::parse_fragment(
        LinkHeader { control: OUTSTATION, ..test_link() },
        0xC0,
        1,
        &unsol,
        Flags::new(FLAG_NAMES),
    );
    assert!(!pdu.is_request && pdu.flags.is_empty());
    assert_eq!(pdu.func_name(), FuncName::Known("UNSOLICITED_RESPONSE"));
    let confirm = [0xD0, 0x00]; // FIR, FIN, UNS, seq 0; CONFIRM
    let pdu = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, &confirm, Flags::new(FLAG_NAMES));
    assert!(pdu.is_request && pdu.flags.is_empty());
    // A response sent with DIR=1 is flagged.
    let pdu = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, &unsol, Flags::new(FLAG_NAMES));
    assert_eq!(pdu.flags.iter().collect::<Vec<_>>(), ["direction_mismatch"]);
}

#[test]
fn link_only_frames_are_pdus_with_link_function_names() {
    let mut f = Vec::new();
    build_frame(0xC9, 10, 1, &[], &mut f); // DIR, PRM, request link status
    build_frame(0x0B, 1, 10, &[], &mut f); // secondary, link status
    build_frame(0xC0, 10, 1, &[], &mut f); // DIR, PRM, reset link states
    let mut got = Vec::new();
    Dnp3Stream::new().parse(&f, Direction::ToServer, &mut |b| {
        if let PduBody::Dnp3(p) = b {
            got.push((p.func_code(), p.func_name(), p.is_request, p.app.is_none()));
        }
    });
    assert_eq!(
        got,
        [
            (281, FuncName::Known("LINK_REQUEST_LINK_STATUS"), true, true),
            (267, FuncName::Known("LINK_STATUS"), false, true),
            (272, FuncName::Known("LINK_RESET_LINK_STATES"), true, true),
        ]
    );
}

#[test]
fn reassembles_a_fragment_from_several_frames() {
    // A response of 60 analogs: 4 + 5 + 60 * 3 = 189 bytes, cut into 3 segments.
    let mut app = vec![0xC0, 0x81, 0x00, 0x00, 0x1E, 0x02, 0x00, 0x00, 59];
    for i in 0..60u8 {
        app.extend_from_slice(&[0x01, i, 0x00]);
    }
    let data = segments(OUTSTATION, 1, 10, 62, &app, 80);
    let (pdus, parsed) = run(&mut Dnp3Stream::new(), &data, Direction::ToClient);
    assert_eq!(parsed.consumed, data.len());
    assert_eq!(pdus.len(), 1);
    assert_eq!(pdus[0].frames, 3);
    assert_eq!(pdus[0].objects, [(30, 2, 0x00, Range::StartStop { start: 0, stop: 59 })]);
    assert!(pdus[0].flags.is_empty(), "{:?}", pdus[0].flags);
}

#[test]
fn flags_a_transport_sequence_gap() {
    let app = response_analogs();
    let mut data = segments(OUTSTATION, 1, 10, 5, &app, 8);
    // Rebuild with the second segment numbered 9 instead of 6.
    let chunks: Vec<&[u8]> = app.chunks(8).collect();
    data.clear();
    for (i, (c, seq)) in chunks.iter().zip([0x45u8, 9, 10]).enumerate() {
        let th = seq | if i == 2 { 0x80 } else { 0 };
        let mut user = vec![th];
        user.extend_from_slice(c);
        build_frame(OUTSTATION, 1, 10, &user, &mut data);
    }
    let (pdus, _) = run(&mut Dnp3Stream::new(), &data, Direction::ToClient);
    assert_eq!(pdus.len(), 1);
    assert_eq!(pdus[0].flags, ["bad_transport_sequence"]);
    assert_eq!(pdus[0].iin, Some(0x9004));
}

#[test]
fn flags_a_segment_without_a_first_one() {
    let mut data = Vec::new();
    build_frame(OUTSTATION, 1, 10, &[0x83, 0xC0, 0x81, 0, 0], &mut data); // FIN without FIR
    let (pdus, _) = run(&mut Dnp3Stream::new(), &data, Direction::ToClient);
    assert_eq!(pdus.len(), 1);
    assert_eq!(pdus[0].flags, ["missing_first_segment"]);
    assert_eq!(pdus[0].func, 256 + 16 + 4);
}

#[test]
fn flags_and_truncates_a_fragment_over_2048_bytes() {
    // A WRITE of 700 g30v4 objects (2 bytes each) is 1409 bytes; of 1100, 2209.
    let mut app = vec![0xC0, 0x02, 0x1E, 0x04, 0x08, 0x4C, 0x04]; // count 1100
    app.extend(std::iter::repeat_n(0x11, 2200));
    let data = segments(MASTER, 10, 1, 0, &app, 249);
    let (pdus, _) = run(&mut Dnp3Stream::new(), &data, Direction::ToServer);
    assert_eq!(pdus.len(), 1);
    assert!(pdus[0].flags.contains(&"fragment_too_long"), "{:?}", pdus[0].flags);
    assert!(pdus[0].flags.contains(&"truncated_object"));
}

#[test]
fn drops_a_frame_with_a_bad_data_crc_and_resyncs_after_a_bad_header() {
    let good = frame(MASTER, 10, 1, 0, &READ_CLASS_0123);
    let mut bad_data = frame(MASTER, 10, 1, 1, &READ_CLASS_0123);
    let n = bad_data.len();
    bad_data[n - 1] ^= 0xFF; // last block CRC
    let mut bad_header = frame(MASTER, 10, 1, 2, &READ_CLASS_0123);
    bad_header[8] ^= 0xFF; // header CRC
    let data = [&b"junk"[..], &bad_data, &bad_header, &good].concat();
    let mut s = Dnp3Stream::new();
    let (pdus, parsed) = run(&mut s, &data, Direction::ToServer);
    assert_eq!(parsed.consumed, data.len());
    // The junk and the frame with the bad header are skipped, to the good frame.
    assert_eq!(parsed.skipped, 4 + bad_header.len());
    assert_eq!(pdus.len(), 2);
    assert_eq!(pdus[0].flags, ["bad_data_crc"]);
    assert_eq!(pdus[0].func, 256 + 16 + 4);
    assert_eq!(pdus[1].func, 1);
    assert!(pdus[1].flags.is_empty());
    assert_eq!((s.counters.data_crc_errors, s.counters.header_crc_errors), (1, 1));
}

#[test]
fn a_gap_drops_the_fragment_in_progress() {
    let app = response_analogs();
    let data = segments(OUTSTATION, 1, 10, 0, &app, 8);
    let first = LinkHeader::parse(&data).unwrap().frame_len();
    let mut s = Dnp3Stream::new();
    let (pdus, _) = run(&mut s, &data[..first], Direction::ToClient);
    assert!(pdus.is_empty());
    s.gap(Direction::ToClient);
    // The two remaining segments have no first segment: each is a flagged link-level PDU.
    let (pdus, _) = run(&mut s, &data[first..], Direction::ToClient);
    assert_eq!(pdus.len(), 2);
    assert!(pdus.iter().all(|p| p.flags == ["missing_first_segment"] && p.func == 256 + 16 + 4));
    assert_eq!(s.counters.fragments_lost_to_gaps, 1);
}

#[test]
fn keeps_directions_apart() {
    let app = response_analogs();
    let resp = segments(OUTSTATION, 1, 10, 0, &app, 8);
    let first = LinkHeader::parse(&resp).unwrap().frame_len();
    let req = frame(MASTER, 10, 1, 0, &READ_CLASS_0123);
    let mut s = Dnp3Stream::new();
    run(&mut s, &resp[..first], Direction::ToClient);
    let (a, _) = run(&mut s, &req, Direction::ToServer);
    let (b, _) = run(&mut s, &resp[first..], Direction::ToClient);
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(b[0].flags.is_empty());
}

#[test]
fn one_frame_over_two_segments() {
    let f = frame(MASTER, 10, 1, 0, &direct_operate_crob());
    let mut s = Dnp3Stream::new();
    let (pdus, parsed) = run(&mut s, &f[..15], Direction::ToServer);
    assert!(pdus.is_empty());
    assert_eq!(parsed.consumed, 0);
    let (pdus, parsed) = run(&mut s, &f, Direction::ToServer);
    assert_eq!(pdus.len(), 1);
    assert_eq!(parsed.consumed, f.len());
}

#[test]
fn two_frames_in_one_segment() {
    let data = [frame(MASTER, 10, 1, 0, &READ_CLASS_0123), frame(MASTER, 10, 1, 1, &direct_operate_crob())].concat();
    let (pdus, parsed) = run(&mut Dnp3Stream::new(), &data, Direction::ToServer);
    assert_eq!(parsed, Parsed { consumed: data.len(), skipped: 0 });
    assert_eq!(pdus.iter().map(|p| p.func).collect::<Vec<_>>(), [1, 5]);
}

#[test]
fn a_datagram_keeps_reassembly_but_drops_a_partial_frame() {
    let app = response_analogs();
    let data = segments(OUTSTATION, 1, 10, 0, &app, 8);
    let first = LinkHeader::parse(&data).unwrap().frame_len();
    let mut s = Dnp3Stream::new();
    let mut n = 0;
    let p = s.parse_datagram(&data[..first + 3], Direction::ToClient, &mut |_| n += 1);
    assert_eq!(p, Parsed { consumed: first + 3, skipped: 3 });
    let p = s.parse_datagram(&data[first..], Direction::ToClient, &mut |b| {
        if let PduBody::Dnp3(d) = b {
            assert!(d.flags.is_empty());
            n += 1;
        }
    });
    assert_eq!(p.skipped, 0);
    assert_eq!(n, 1);
}

#[test]
fn probes_strictly() {
    let f = frame(MASTER, 10, 1, 0, &READ_CLASS_0123);
    assert_eq!(probe(&f), Probe::Yes);
    assert_eq!(probe(&f[..9]), Probe::NeedMore);
    assert_eq!(probe(&[0x05]), Probe::NeedMore);
    assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Probe::No);
    let mut bad = f.clone();
    bad[8] ^= 1;
    assert_eq!(probe(&bad), Probe::No);
}

fn corpus() -> Vec<u8> {
    let app = response_analogs();
    [
        frame(MASTER, 10, 1, 0, &READ_CLASS_0123),
        segments(OUTSTATION, 1, 10, 0, &app, 8),
        b"\x05\x64 noise".to_vec(),
        frame(MASTER, 10, 1, 1, &direct_operate_crob()),
        {
            let mut f = Vec::new();
            build_frame(0xC9, 10, 1, &[], &mut f);
            f
        },
    ]
    .concat()
}

/// The points and values of `p` from one walk of its objects, and from two.
fn points_and_values(p: &Dnp3Pdu<'_>) -> [(Vec<PointRange>, Vec<PointValue>); 2] {
    let (mut one_p, mut one_v, mut two_p, mut two_v) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    p.for_each_point_and_value(&mut |r| one_p.push(r), &mut |v| one_v.push(v));
    p.for_each_point(&mut |r| two_p.push(r));
    p.for_each_value(&mut |v| two_v.push(v));
    [(one_p, one_v), (two_p, two_v)]
}

#[test]
fn one_walk_of_the_objects_gives_the_points_and_values_of_two() {
    let mut s = Dnp3Stream::new();
    let (mut points, mut values) = (0, 0);
    s.parse(&corpus(), Direction::ToServer, &mut |b| {
        if let PduBody::Dnp3(p) = b {
            let [one, two] = points_and_values(p);
            assert_eq!(one, two);
            (points, values) = (points + one.0.len(), values + one.1.len());
        }
    });
    // The corpus's read names ranges, its CROB both, its response carries analogs.
    assert!(points >= 4 && values >= 2, "{points} points, {values} values");
}

proptest! {
    #[test]
    fn one_walk_agrees_with_two_on_any_fragment(
        func in prop::sample::select(vec![1u8, 2, 3, 4, 5, 6, 129, 130]),
        (group, variation) in prop::sample::select(vec![(1u8, 2u8), (20, 1), (30, 1), (30, 5), (12, 1), (41, 2), (41, 3)]),
        (start, more) in (0u8..50, 0u8..6),
        rest in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        // Application control (FIR, FIN), function, then (responses) IIN; an object header
        // with a 1-byte start/stop range (qualifier 0x00), then anything: the objects' bytes
        // and whatever follows them.
        let mut frag = vec![0xC0, func];
        if func >= 129 {
            frag.extend_from_slice(&[0, 0]);
        }
        frag.extend_from_slice(&[group, variation, 0x00, start, start + more]);
        frag.extend_from_slice(&rest);
        let pdu = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, &frag, Flags::new(FLAG_NAMES));
        let [one, two] = points_and_values(&pdu);
        prop_assert_eq!(one, two);
    }

    #[test]
    fn every_split_point_gives_the_same_pdus(a in 0usize..400, b in 0usize..400) {
        let data = corpus();
        let whole = run_split(&data, &[], Direction::ToServer);
        prop_assert_eq!(whole.len(), 4);
        let mut cuts = [a % (data.len() + 1), b % (data.len() + 1)];
        cuts.sort_unstable();
        prop_assert_eq!(run_split(&data, &cuts, Direction::ToServer), whole);
    }

    #[test]
    fn never_panics_and_always_progresses(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut s = Dnp3Stream::new();
        let mut n = 0usize;
        let p = s.parse(&data, Direction::ToServer, &mut |b| {
            if let PduBody::Dnp3(d) = b {
                d.for_each_point(&mut |_| {});
                d.for_each_value(&mut |_| {});
                n += d.crobs().count() + d.analog_outputs().count() + d.objects().count();
            }
        });
        prop_assert!(p.consumed <= data.len());
        prop_assert!(p.skipped <= p.consumed);
        // Whatever is left is at most one partial frame.
        prop_assert!(data.len() - p.consumed < 10 + 250 + 32);
    }

    #[test]
    fn random_user_data_in_valid_frames_never_panics(
        frames in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..250)), 1..12)
    ) {
        // Valid link frames (CRCs right) around random transport and application bytes, so the
        // transport and application layers see arbitrary input.
        let mut data = Vec::new();
        for (control, user) in &frames {
            let control = if control & 1 == 0 { 0xC4 } else { *control };
            build_frame(control, 10, 1, user, &mut data);
        }
        let mut s = Dnp3Stream::new();
        let mut n = 0usize;
        let p = s.parse(&data, Direction::ToServer, &mut |b| {
            if let PduBody::Dnp3(d) = b {
                d.for_each_point(&mut |_| {});
                d.for_each_value(&mut |_| {});
                n += 1 + d.crobs().count() + d.analog_outputs().count() + d.objects().count();
                let _ = (d.func_name(), d.class(), d.critical(), d.error_code());
            }
        });
        prop_assert_eq!(p, Parsed { consumed: data.len(), skipped: 0 });
    }

    #[test]
    fn application_parser_never_panics(frag in proptest::collection::vec(any::<u8>(), 0..300)) {
        let pdu = Dnp3Pdu::parse_fragment(test_link(), 0xC0, 1, &frag, Flags::new(FLAG_NAMES));
        pdu.for_each_point(&mut |_| {});
        pdu.for_each_value(&mut |_| {});
        let _ = (pdu.crobs().count(), pdu.analog_outputs().count(), pdu.error_code(), pdu.class());
    }
}

#[test]
fn the_engine_dissects_dnp3_over_tcp_20000() {
    use crate::testutil::{run, tcp_packet, ACK, PSH_ACK, SYN};
    let req = frame(MASTER, 10, 1, 0, &READ_CLASS_0123);
    let resp = segments(OUTSTATION, 1, 10, 0, &response_analogs(), 8);
    let (a, b) = resp.split_at(20); // the response's first frame split across two segments
    let packets = [
        tcp_packet(1, 40000, 2, 20000, 100, SYN, &[]),
        tcp_packet(2, 20000, 1, 40000, 500, SYN | ACK, &[]),
        tcp_packet(1, 40000, 2, 20000, 101, PSH_ACK, &req),
        tcp_packet(2, 20000, 1, 40000, 501, PSH_ACK, a),
        tcp_packet(2, 20000, 1, 40000, 501 + a.len() as u32, PSH_ACK, b),
    ];
    let c = run(&packets);
    let got: Vec<_> = c.pdus.iter().map(|p| (p.pkt, p.request, p.func, p.flags.is_empty())).collect();
    assert_eq!(got, [(3, true, 1, true), (5, false, 129, true)]);
}

#[test]
fn the_engine_dissects_dnp3_over_udp_with_fragments_across_datagrams() {
    use crate::testutil::{run, udp_packet};
    let resp = segments(OUTSTATION, 1, 10, 0, &response_analogs(), 8);
    let first = LinkHeader::parse(&resp).unwrap().frame_len();
    let packets = [
        udp_packet(1, 20000, 2, 20000, &frame(MASTER, 10, 1, 0, &READ_CLASS_0123)),
        udp_packet(2, 20000, 1, 20000, &resp[..first]),
        udp_packet(2, 20000, 1, 20000, &resp[first..]),
    ];
    let c = run(&packets);
    let got: Vec<_> = c.pdus.iter().map(|p| (p.pkt, p.request, p.func, p.flags.is_empty())).collect();
    assert_eq!(got, [(1, true, 1, true), (3, false, 129, true)]);
}

#[test]
fn the_engine_finds_dnp3_by_content_on_another_port() {
    use crate::event::NoticeKind;
    use crate::testutil::{run, tcp_packet, PSH_ACK};
    let req = frame(MASTER, 10, 1, 0, &direct_operate_crob());
    let c = run(&[tcp_packet(1, 40000, 2, 4000, 1, PSH_ACK, &req)]);
    assert_eq!(c.pdus.len(), 1);
    assert_eq!(c.pdus[0].func, 5);
    assert!(c.notices.contains(&NoticeKind::UnexpectedPort { found: Protocol::Dnp3 }));
    // Not DNP3: no header CRC, so nothing is identified.
    let c = run(&[tcp_packet(1, 40000, 2, 4000, 1, PSH_ACK, b"\x05\x64\x05\xc9\x01\x00\x00\x04\x00\x00")]);
    assert!(c.pdus.is_empty());
}

#[test]
fn follows_application_sequence_numbers() {
    let read = |seq: u8| frame(MASTER, 10, 1, 0, &[0xC0 | seq, 0x01, 0x3C, 0x01, 0x06]);
    let resp = |seq: u8, con: bool| frame(OUTSTATION, 1, 10, 0, &[0xC0 | seq | if con { 0x20 } else { 0 }, 0x81, 0, 0]);
    let confirm = |seq: u8| frame(MASTER, 10, 1, 0, &[0xC0 | seq, 0x00]);
    let mut s = Dnp3Stream::new();
    let mut flags = Vec::new();
    let mut step = |s: &mut Dnp3Stream, data: Vec<u8>, dir| {
        let (p, _) = run(s, &data, dir);
        flags.push(p[0].flags.contains(&"unexpected_app_sequence"));
    };
    // A response before any request is not judged (capture started mid-exchange).
    step(&mut s, resp(9, false), Direction::ToClient);
    step(&mut s, read(3), Direction::ToServer);
    step(&mut s, resp(3, true), Direction::ToClient); // echoes the request, asks a confirm
    step(&mut s, confirm(2), Direction::ToServer); // confirms the wrong fragment
    step(&mut s, read(4), Direction::ToServer);
    step(&mut s, read(5), Direction::ToServer); // the master gave up on 4
    step(&mut s, resp(4, false), Direction::ToClient); // late, but answers a request sent
    step(&mut s, resp(5, false), Direction::ToClient);
    step(&mut s, resp(5, false), Direction::ToClient); // a second answer: replayed or injected
    step(&mut s, confirm(7), Direction::ToServer); // no confirm was asked for: not judged
    assert_eq!(flags, [false, false, false, true, false, false, false, false, true, false]);
}

#[test]
fn user_data_under_an_invalid_link_function_is_flagged_and_decoded() {
    let mut f = Vec::new();
    let mut user = vec![0xC0]; // transport: FIR, FIN, sequence 0
    user.extend_from_slice(&READ_CLASS_0123); // a READ of all four classes
    build_frame(0xCE, 10, 1, &user, &mut f); // DIR, PRM, link function 14: not defined
    build_frame(0xC0, 10, 1, &user, &mut f); // DIR, PRM, link function 0 (reset link states): carries no data
    let (pdus, _) = run(&mut Dnp3Stream::new(), &f, Direction::ToServer);
    let got: Vec<_> = pdus.iter().map(|p| (p.func, p.objects.len(), p.flags.clone())).collect();
    assert_eq!(
        got,
        [(1, 4, vec!["unexpected_user_data", "unknown_link_function"]), (1, 4, vec!["unexpected_user_data"]),]
    );
}
