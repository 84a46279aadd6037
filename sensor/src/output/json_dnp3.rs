//! DNP3 keys of the dissect schema.
//!
//! Required: `link_src`, `link_dst`, `iin` (responses, else null) and `objects` (a list of
//! `{group, variation, qualifier, start, stop, count}`, null where the qualifier has no
//! range or count). Also: the link control (`link_func`, `link_func_name`, `dir`, `prm`,
//! `fcb`, `fcv`), the transport (`tp_fir`, `tp_fin`, `tp_seq`, `frames`), the application
//! control (`fir`, `fin`, `con`, `uns`, `seq`), `iin_names`, `objects_error`, and decoded
//! `crobs`, `analog_outputs`, `file_names` (g70v3), `times_ms` (g50v1/v3, milliseconds since
//! the epoch) and point `values`. Link-only frames have `func` 256 + 16 * PRM +
//! link function and a `LINK_...` `func_name`, with the application keys null.

use otsensor_dissectors::dnp3::objects::{control_status_name, Float};
use otsensor_dissectors::dnp3::{iin_names, Dnp3Pdu, ObjectError, Range};
use otsensor_dissectors::event::Space;

use super::json::JsonBuf;

/// Values written per PDU at most, so that one huge response cannot blow up a line.
const MAX_VALUES: usize = 256;

pub(super) fn write(out: &mut JsonBuf, d: &Dnp3Pdu<'_>) {
    let l = d.link;
    // The link keys depend on the addresses and the control octet only (tag 2).
    let key = 2u128 << 120 | u128::from(l.src) << 32 | u128::from(l.dst) << 16 | u128::from(l.control);
    out.memo(key, |out| {
        out.key_u64("link_src", u64::from(l.src));
        out.key_u64("link_dst", u64::from(l.dst));
        out.key_u64("link_func", u64::from(l.function()));
        match l.link_function().name() {
            Some(n) => out.key_str("link_func_name", n),
            None => out.key_null("link_func_name"),
        }
        out.key_bool("dir", l.dir());
        out.key_bool("prm", l.prm());
        out.key_bool("fcb", l.fcb());
        out.key_bool("fcv", l.fcv_dfc());
    });
    // The transport keys and `frames` (tag 4): the transport octet cycles through 64 values.
    let key = 4u128 << 120 | u128::from(d.transport.is_some()) << 24 | u128::from(d.transport.unwrap_or(0)) << 16;
    out.memo(key | u128::from(d.frames), |out| {
        match d.transport {
            Some(t) => {
                out.key_bool("tp_fir", t & 0x40 != 0);
                out.key_bool("tp_fin", t & 0x80 != 0);
                out.key_u64("tp_seq", u64::from(t & 0x3F));
            }
            None => {
                out.key_null("tp_fir");
                out.key_null("tp_fin");
                out.key_null("tp_seq");
            }
        }
        out.key_u64("frames", u64::from(d.frames));
    });
    let Some(app) = d.app else {
        for k in ["fir", "fin", "con", "uns", "seq", "iin"] {
            out.key_null(k);
        }
        out.begin_array("objects");
        out.end_array();
        return;
    };
    let c = app.control;
    // The application control and IIN keys (tag 5), from the control octet and the IIN.
    let key = 5u128 << 120 | u128::from(app.iin.is_some()) << 24 | u128::from(app.iin.unwrap_or(0)) << 8;
    out.memo(key | u128::from(c.0), |out| {
        out.key_bool("fir", c.fir());
        out.key_bool("fin", c.fin());
        out.key_bool("con", c.con());
        out.key_bool("uns", c.uns());
        out.key_u64("seq", u64::from(c.seq()));
        out.key_opt_u64("iin", app.iin.map(u64::from));
        if let Some(iin) = app.iin {
            out.begin_array("iin_names");
            for n in iin_names(iin) {
                out.str(n);
            }
            out.end_array();
        }
    });
    out.begin_array("objects");
    let mut headers = d.objects();
    // Which of the decoded lists below can have entries, so that the PDUs without them (most)
    // do not walk the object headers once more for each list.
    let mut lists = Lists::default();
    for h in headers.by_ref() {
        lists.note(h.group, h.variation, h.has_objects);
        out.begin();
        out.memo(header_key(h.group, h.variation, h.qualifier, h.range), |out| {
            out.key_u64("group", u64::from(h.group));
            out.key_u64("variation", u64::from(h.variation));
            out.key_u64("qualifier", u64::from(h.qualifier));
            let (start, stop, count) = match h.range {
                Range::StartStop { start, stop } => (Some(start), Some(stop), Some(h.range.count())),
                Range::Count(n) => (None, None, Some(u64::from(n))),
                Range::All => (None, None, None),
            };
            out.key_opt_u64("start", start.map(u64::from));
            out.key_opt_u64("stop", stop.map(u64::from));
            out.key_opt_u64("count", count);
        });
        out.end();
    }
    out.end_array();
    if let Some(e) = headers.error {
        out.key_str(
            "objects_error",
            match e {
                ObjectError::Unknown { .. } => "unknown_object",
                ObjectError::BadQualifier { .. } => "bad_qualifier",
                ObjectError::Truncated { .. } => "truncated",
                ObjectError::BadRange { .. } => "bad_range",
                ObjectError::TooManyHeaders => "too_many_headers",
            },
        );
    }
    let mut crobs = d.crobs().peekable();
    if lists.crobs && crobs.peek().is_some() {
        out.begin_array("crobs");
        for c in crobs.take(MAX_VALUES) {
            out.begin();
            out.key_u64("index", u64::from(c.index));
            out.key_u64("code", u64::from(c.code));
            out.key_str("op", c.op_name());
            out.key_u64("count", u64::from(c.count));
            out.key_u64("on_ms", u64::from(c.on_ms));
            out.key_u64("off_ms", u64::from(c.off_ms));
            out.key_u64("status", u64::from(c.status));
            out.key_str("status_name", control_status_name(c.status));
            out.end();
        }
        out.end_array();
    }
    let mut aos = d.analog_outputs().peekable();
    if lists.analog_outputs && aos.peek().is_some() {
        out.begin_array("analog_outputs");
        for a in aos.take(MAX_VALUES) {
            out.begin();
            out.key_u64("index", u64::from(a.index));
            out.key_u64("variation", u64::from(a.variation));
            // The value as the wire carries it: an integer for variations 1 and 2, the float
            // for 3 (single) and 4 (double).
            out.key("value");
            match a.variation {
                3 | 4 => out.f64(a.value, a.variation == 3),
                _ => out.i64(a.value as i64),
            }
            out.key_u64("status", u64::from(a.status));
            out.key_str("status_name", control_status_name(a.status));
            out.end();
        }
        out.end_array();
    }
    let mut names = d.file_names().peekable();
    if lists.file_names && names.peek().is_some() {
        out.begin_array("file_names");
        for n in names.take(MAX_VALUES) {
            out.str(&String::from_utf8_lossy(n));
        }
        out.end_array();
    }
    let mut times = d.times_ms().peekable();
    if lists.times && times.peek().is_some() {
        out.begin_array("times_ms");
        for t in times.take(MAX_VALUES) {
            out.u64(t);
        }
        out.end_array();
    }
    // Values come from headers that carry objects: none in most requests and polls, whose
    // headers need then no second walk.
    if !lists.any {
        return;
    }
    let mut n = 0usize;
    d.for_each_value_exact(&mut |v, exact| {
        if n >= MAX_VALUES {
            return;
        }
        if n == 0 {
            out.begin_array("values");
        }
        n += 1;
        let Space::Dnp3 { group, variation } = v.space else { return };
        out.begin();
        // `"group":G,"variation":V` (tag 10): the same for a run of points of one object type.
        out.memo(10u128 << 120 | u128::from(group) << 8 | u128::from(variation), |b| {
            b.key_u64("group", u64::from(group));
            b.key_u64("variation", u64::from(variation));
        });
        out.key_u64("index", u64::from(v.index));
        out.key("value");
        // Floating-point analogs print as the float they are, integers as integers.
        match exact {
            Some(Float::Single(x)) => out.f64(f64::from(x), true),
            Some(Float::Double(x)) => out.f64(x, false),
            None => out.i64(v.value),
        }
        out.end();
    });
    if n > 0 {
        out.end_array();
    }
}

/// The memo key of an object header (tag 3): a poll repeats the same few headers.
fn header_key(group: u8, variation: u8, qualifier: u8, range: Range) -> u128 {
    let (kind, a, b) = match range {
        Range::StartStop { start, stop } => (1u128, start, stop),
        Range::Count(n) => (2, n, 0),
        Range::All => (3, 0, 0),
    };
    3u128 << 120
        | u128::from(group) << 96
        | u128::from(variation) << 88
        | u128::from(qualifier) << 80
        | kind << 64
        | u128::from(a) << 32
        | u128::from(b)
}

/// The decoded lists of a PDU that can have entries, from its object headers: a list is
/// written only if one of its headers carries objects.
#[derive(Default)]
struct Lists {
    /// Whether any header carries objects (the point values come from those).
    any: bool,
    crobs: bool,
    analog_outputs: bool,
    file_names: bool,
    times: bool,
}

impl Lists {
    /// Notes a header, with the same tests `Dnp3Pdu::crobs` and the others apply.
    fn note(&mut self, group: u8, variation: u8, has_objects: bool) {
        if has_objects {
            self.any = true;
            self.crobs |= group == 12 && variation == 1;
            self.analog_outputs |= group == 41;
            self.file_names |= group == 70 && variation == 3;
            self.times |= group == 50 && matches!(variation, 1 | 3);
        }
    }
}

#[cfg(test)]
mod tests {
    use otsensor_dissectors::dnp3::link::build_frame;
    use otsensor_dissectors::dnp3::Dnp3Stream;
    use otsensor_dissectors::event::{Direction, PduBody};
    use otsensor_dissectors::stream::StreamDissector;
    use serde_json::{json, Value};

    use super::*;

    fn lines(control: u8, dst: u16, src: u16, user: &[u8], dir: Direction) -> Vec<Value> {
        let mut frame = Vec::new();
        build_frame(control, dst, src, user, &mut frame);
        let mut out = Vec::new();
        Dnp3Stream::new().parse(&frame, dir, &mut |b| {
            if let PduBody::Dnp3(d) = b {
                let mut buf = JsonBuf::new();
                buf.begin();
                write(&mut buf, d);
                buf.end_line();
                out.push(serde_json::from_slice(buf.as_bytes()).expect("valid JSON"));
            }
        });
        out
    }

    #[test]
    fn writes_the_required_keys_of_a_request() {
        let user = [
            0xC0, // transport: FIR, FIN, sequence 0
            0xC3, 0x05, // application control (FIR, FIN, seq 3), DIRECT_OPERATE
            0x0C, 0x01, 0x17, 0x01, 0x02, // g12v1, qualifier 0x17, count 1, index 2
            0x81, 0x01, 0x64, 0, 0, 0, 0, 0, 0, 0, 0x00, // TRIP_PULSE_ON, count 1, on 100 ms
            0x3C, 0x01, 0x06, // g60v1, all
        ];
        let v = lines(0xC4, 10, 1, &user, Direction::ToServer);
        assert_eq!(v.len(), 1);
        let v = &v[0];
        assert_eq!((v["link_src"].clone(), v["link_dst"].clone()), (json!(1), json!(10)));
        assert!(v["iin"].is_null());
        assert_eq!((v["fir"].clone(), v["fin"].clone(), v["seq"].clone()), (json!(true), json!(true), json!(3)));
        assert_eq!(
            v["objects"],
            json!([
                {"group": 12, "variation": 1, "qualifier": 0x17, "start": null, "stop": null, "count": 1},
                {"group": 60, "variation": 1, "qualifier": 6, "start": null, "stop": null, "count": null},
            ])
        );
        assert_eq!(v["crobs"][0]["op"], "TRIP_PULSE_ON");
        assert_eq!(v["crobs"][0]["index"], 2);
        assert_eq!(v["values"], json!([{"group": 12, "variation": 1, "index": 2, "value": 0}]));
    }

    #[test]
    fn writes_iin_and_ranges_of_a_response() {
        let user = [
            0xC0, // transport: FIR, FIN, sequence 0
            0xC1, 0x81, 0x80, 0x02, // application control, RESPONSE, IIN 0x8002
            0x1E, 0x04, 0x00, 0x05, 0x06, 0x10, 0x00, 0x20, 0x00, // g30v4 5..6: 16, 32
        ];
        let v = &lines(0x44, 1, 10, &user, Direction::ToClient)[0];
        assert_eq!(v["iin"], 0x8002);
        assert_eq!(v["iin_names"], json!(["DEVICE_RESTART", "OBJECT_UNKNOWN"]));
        assert_eq!(
            v["objects"],
            json!([{"group": 30, "variation": 4, "qualifier": 0, "start": 5, "stop": 6, "count": 2}])
        );
        assert_eq!(
            v["values"],
            json!([
                {"group": 30, "variation": 4, "index": 5, "value": 16},
                {"group": 30, "variation": 4, "index": 6, "value": 32},
            ])
        );
    }

    #[test]
    fn writes_file_names_and_times() {
        let mut user = vec![
            0xC0, // transport: FIR, FIN, sequence 0
            0xC1, 0x19, // application control, OPEN_FILE
            0x46, 0x03, 0x5B, 0x01, 0x1E, 0x00, // g70v3, qualifier 0x5B, count 1, size 30
            0x1A, 0x00, 0x04, 0x00, // name offset 26, name size 4
        ];
        user.extend([0u8; 22]); // time, permissions, key, size, mode, block size, request id
        user.extend(b"a.cf"); // the name
        let v = &lines(0xC4, 10, 1, &user, Direction::ToServer)[0];
        assert_eq!(v["file_names"], json!(["a.cf"]));
        let user = [
            0xC0, // transport: FIR, FIN, sequence 0
            0xC2, 0x02, // application control, WRITE
            0x32, 0x01, 0x07, 0x01, // g50v1, count 1
            0xE0, 0x92, 0x7C, 0x4E, 0x4C, 0x01, // 1427313462496 ms (2015-03-25)
        ];
        let v = &lines(0xC4, 10, 1, &user, Direction::ToServer)[0];
        assert_eq!(v["times_ms"], json!([0x014C_4E7C_92E0u64]));
    }

    #[test]
    fn writes_link_only_frames_with_null_application_keys() {
        let v = &lines(0x0B, 1, 10, &[], Direction::ToClient)[0];
        assert_eq!(v["link_func_name"], "LINK_STATUS");
        assert!(v["iin"].is_null() && v["seq"].is_null() && v["tp_fir"].is_null());
        assert_eq!(v["objects"], json!([]));
    }

    #[test]
    fn writes_floating_point_analogs_as_floats() {
        let user = [
            0xC0, // transport: FIR, FIN, sequence 0
            0xC1, 0x81, 0x00, 0x00, // application control, RESPONSE, IIN 0
            0x1E, 0x05, 0x00, 0x01, 0x01, // g30v5 (single float with flags), start-stop 1..1
            0x01, 0xcd, 0xcc, 0x8c, 0x3f, // online, 1.1f32
            0x1E, 0x06, 0x00, 0x02, 0x02, // g30v6 (double float with flags), 2..2
            0x01, 0, 0, 0, 0, 0, 0, 0xf8, 0xbf, // online, -1.5
        ];
        let v = &lines(0x44, 1, 10, &user, Direction::ToClient)[0];
        assert_eq!(
            v["values"],
            json!([
                {"group": 30, "variation": 5, "index": 1, "value": 1.1},
                {"group": 30, "variation": 6, "index": 2, "value": -1.5},
            ])
        );
    }

    #[test]
    fn writes_a_floating_point_analog_output_as_a_float() {
        let user = [
            0xC0, // transport: FIR, FIN, sequence 0
            0xC1, 0x05, // application control, DIRECT_OPERATE
            0x29, 0x03, 0x17, 0x01, 0x04, // g41v3 (single float), qualifier 0x17, count 1, index 4
            0x00, 0x00, 0x20, 0x40, 0x00, // 2.5f32, status 0
        ];
        let v = &lines(0xC4, 10, 1, &user, Direction::ToServer)[0];
        assert_eq!(v["analog_outputs"][0]["value"], json!(2.5));
        assert!(v["analog_outputs"][0].get("value_text").is_none());
        assert_eq!(v["values"], json!([{"group": 41, "variation": 3, "index": 4, "value": 2.5}]));
    }
}
