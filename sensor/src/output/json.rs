//! The `otsensor dissect` JSON-lines schema: one object per PDU, in capture order.
//!
//! Every PDU has `ts`, `pkt`, `proto`, `src_ip`, `src_port`, `dst_ip`, `dst_port`,
//! `is_request`, `func`, `func_name`, `flags` and `flow`; each protocol adds its own keys (see
//! the README for the whole schema).

use std::io::{self, Write};
use std::net::IpAddr;

use otsensor_dissectors::event::{Endpoint, FuncName, Pdu, PduBody, Protocol, Timestamp, Transport};

/// A JSON text being built in a reused buffer. Writers call the `key_*` methods in order; the
/// buffer takes care of commas.
#[derive(Debug, Default)]
pub struct JsonBuf {
    buf: Vec<u8>,
    first: bool,
    /// The endpoint keys of recent flows' PDUs, as [`write_pdu`] wrote them (empty until then).
    flows: Vec<Memo<FlowKey>>,
    /// Members memoised by the protocols' writers (see [`JsonBuf::memo`]; empty until used),
    /// in slots chosen by a hash of the key: the keys (0 for none) apart from the texts, so
    /// that a lookup reads one small array.
    memo_keys: Vec<u128>,
    memo_texts: Vec<MemoText>,
    /// The whole seconds of the last timestamp written, rendered.
    ts_secs: TsSecs,
}

/// The integer part of the last timestamp [`JsonBuf::key_ts`] wrote, with its sign and the
/// point after it: consecutive PDUs share their second by the thousand, and rendering its
/// ten digits anew was most of a timestamp's cost.
#[derive(Debug, Default)]
struct TsSecs {
    /// Whether the number is negative and its magnitude; `None` before the first.
    key: Option<(bool, u64)>,
    /// The text, in the first `len` bytes: a `-`, twenty digits and a `.` at most.
    text: [u8; 24],
    len: usize,
}

impl TsSecs {
    /// Appends the integer part `-`(if `negative`)`secs` and the point to `buf`.
    #[inline(always)]
    fn write(&mut self, buf: &mut Vec<u8>, negative: bool, secs: u64) {
        if self.key != Some((negative, secs)) {
            self.render(negative, secs);
        }
        // The whole array, then cut: a copy of constant size is a few stores, not a call.
        let len = buf.len();
        buf.extend_from_slice(&self.text);
        buf.truncate(len + self.len);
    }

    #[inline(never)]
    fn render(&mut self, negative: bool, secs: u64) {
        let mut text = Vec::with_capacity(32);
        if negative {
            text.push(b'-');
        }
        push_u64(&mut text, secs);
        text.push(b'.');
        self.text = [0; 24];
        self.len = text.len().min(self.text.len());
        if let (Some(to), Some(from)) = (self.text.get_mut(..self.len), text.get(..self.len)) {
            to.copy_from_slice(from);
        }
        self.key = Some((negative, secs));
    }
}

/// Members rendered once and copied for as long as what they render stays the same: the
/// text of keys that repeat from one PDU to the next (here a flow's endpoints), copied at the
/// cost of one memcpy instead of being written key by key.
#[derive(Debug)]
struct Memo<K> {
    /// What `text` renders; `None` before the first use.
    key: Option<K>,
    text: MemoText,
}

impl<K> Default for Memo<K> {
    fn default() -> Self {
        Memo { key: None, text: MemoText::default() }
    }
}

/// Members rendered for a memo, padded with zeros to whole chunks of [`CHUNK`] bytes so that
/// a short text (most: a DNP3 point's group and variation, an object header, an S7 item) is
/// copied by a store or two of constant size rather than by a call to memcpy.
#[derive(Debug, Default)]
struct MemoText {
    /// The members, then the padding.
    padded: Vec<u8>,
    /// Bytes of members.
    len: usize,
}

/// Bytes copied at a time from a [`MemoText`].
const CHUNK: usize = 32;

/// Texts longer than this (a flow's endpoints) are copied by memcpy, which moves them faster
/// than a loop over chunks.
const CHUNKED_AT_MOST: usize = 2 * CHUNK;

impl MemoText {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps `members`.
    fn set(&mut self, members: &[u8]) {
        self.padded.clear();
        self.padded.extend_from_slice(members);
        self.padded.resize(members.len().next_multiple_of(CHUNK), 0);
        self.len = members.len();
    }

    /// Appends the members to `buf`.
    #[inline(always)]
    fn append_to(&self, buf: &mut Vec<u8>) {
        if self.padded.len() > CHUNKED_AT_MOST {
            buf.extend_from_slice(self.padded.get(..self.len).unwrap_or_default());
            return;
        }
        let start = buf.len();
        for chunk in self.padded.chunks_exact(CHUNK) {
            if let Ok(chunk) = <&[u8; CHUNK]>::try_from(chunk) {
                buf.extend_from_slice(chunk);
            }
        }
        buf.truncate(start + self.len);
    }
}

impl<K: PartialEq> Memo<K> {
    /// Writes the members `render` writes for `key` into `out`, rendering them only if `key`
    /// differs from the last one's. `render` must depend on `key` alone.
    #[inline]
    fn write(&mut self, out: &mut JsonBuf, key: K, render: impl FnOnce(&mut JsonBuf)) {
        if self.key.as_ref() == Some(&key) {
            out.memo_text(&self.text);
        } else {
            out.render_into(&mut self.text, render);
            self.key = Some(key);
        }
    }
}

/// What the endpoint keys of a PDU's line (`proto` to `flow`) are a function of.
#[derive(Clone, Copy, Debug, PartialEq)]
struct FlowKey {
    protocol: Protocol,
    src: Endpoint,
    dst: Endpoint,
    transport: Transport,
    flow: u64,
}

/// Entries of the protocols' memo table (a power of two), in sets of [`MEMO_WAYS`] chosen by a
/// hash of the key.
const MEMOS: usize = 2048;
/// Entries per set of the memo table: with one, the two keys of a pair that hashed alike
/// evicted each other at every use (a fifth of an S7 plant's items, though the table was a
/// quarter full).
const MEMO_WAYS: usize = 2;

/// Flows whose endpoint keys are kept rendered, in slots chosen by the flow's id: enough for
/// a plant's connections polled in turn; a flow that shares a slot re-renders its keys.
const FLOW_MEMOS: usize = 256;

impl JsonBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        JsonBuf {
            buf: Vec::with_capacity(1 << 16),
            first: true,
            flows: Vec::new(),
            memo_keys: Vec::new(),
            memo_texts: Vec::new(),
            ts_secs: TsSecs::default(),
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets everything written.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.first = true;
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes the buffer to `w` and clears it.
    pub fn flush_to(&mut self, w: &mut dyn Write) -> io::Result<()> {
        w.write_all(&self.buf)?;
        self.clear();
        Ok(())
    }

    /// Opens an object.
    pub fn begin(&mut self) {
        self.sep();
        self.buf.push(b'{');
        self.first = true;
    }

    /// Closes an object.
    pub fn end(&mut self) {
        self.buf.push(b'}');
        self.first = false;
    }

    /// Closes a top-level object and ends the line.
    pub fn end_line(&mut self) {
        self.buf.extend_from_slice(b"}\n");
        self.first = true;
    }

    /// Opens an array under `k`.
    #[inline(always)]
    pub fn begin_array(&mut self, k: &str) {
        self.key_then(k, b"[");
        self.first = true;
    }

    /// Writes an empty array under `k`.
    #[inline(always)]
    pub fn empty_array(&mut self, k: &str) {
        self.key_then(k, b"[]");
        self.first = false;
    }

    /// Closes an array.
    pub fn end_array(&mut self) {
        self.buf.push(b']');
        self.first = false;
    }

    /// Opens an object under `k`.
    pub fn begin_object(&mut self, k: &str) {
        self.key(k);
        self.buf.push(b'{');
        self.first = true;
    }

    // The small writers are `#[inline]`: each PDU's line is a few dozen of them with constant
    // keys, which the compiler then copies with a few moves rather than calls to memcpy.
    #[inline(always)]
    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    /// Writes `"k":` (keys are static identifiers and need no escaping).
    #[inline(always)]
    pub fn key(&mut self, k: &str) {
        self.key_then(k, b"");
        self.first = true;
    }

    /// Writes `"k":` and then `tail` (constant text, no escaping), leaving `first` to the
    /// caller. With the writers' constant keys, the whole text (and the comma before it
    /// unless first) is a constant that one copy of fixed size writes: apart, the comma, the
    /// key and the colon each cost a check of the capacity and an update of the length.
    #[inline(always)]
    fn key_then(&mut self, k: &str, tail: &[u8]) {
        match key_text(k, tail) {
            // A first member (rare but for `ts`) drops the comma out of line: inlined, it
            // made the compiler select between the two texts at every key.
            Some((text, n)) if self.first => self.first_key_text(text, n),
            Some((text, n)) => self.key_text(text, n),
            None => {
                self.key_parts(k);
                self.buf.extend_from_slice(tail);
            }
        }
    }

    /// Writes the first `n` bytes of a text from [`key_text`].
    #[inline(always)]
    fn key_text(&mut self, (lo, hi): (u128, u128), n: usize) {
        let mut words = [0u8; KEY_TEXT];
        let (a, b) = words.split_at_mut(16);
        a.copy_from_slice(&lo.to_le_bytes());
        b.copy_from_slice(&hi.to_le_bytes());
        let len = self.buf.len();
        self.buf.extend_from_slice(&words);
        self.buf.truncate(len + n);
    }

    /// As [`JsonBuf::key_text`], without the comma the text starts with.
    #[inline(never)]
    fn first_key_text(&mut self, (lo, hi): (u128, u128), n: usize) {
        self.key_text((lo >> 8 | hi << 120, hi >> 8), n - 1);
    }

    /// Writes `"k":` piece by piece: keys too long for one copy.
    #[inline(never)]
    fn key_parts(&mut self, k: &str) {
        if self.first {
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(b",\"");
        }
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.first = true;
    }

    /// Writes the members `render` writes, or copies them if they were written before for the
    /// same `key`. `render` must depend on `key` alone, and the key's top byte must be a
    /// non-zero tag of its writer's own, so that two writers never share an entry. A key that
    /// finds both entries of its set taken by others is rendered anew, in place of the one
    /// used least recently.
    pub fn memo(&mut self, key: u128, render: impl FnOnce(&mut JsonBuf)) {
        if self.memo_keys.is_empty() {
            self.memo_keys.resize(MEMOS, 0);
            self.memo_texts.resize_with(MEMOS, MemoText::default);
        }
        debug_assert!(key >> 120 != 0, "a memo key carries its writer's tag");
        let set = memo_set(key) * MEMO_WAYS;
        let JsonBuf { buf, first, memo_keys, memo_texts, .. } = self;
        let (Some(keys), Some(texts)) =
            (memo_keys.get_mut(set..set + MEMO_WAYS), memo_texts.get_mut(set..set + MEMO_WAYS))
        else {
            // Not reached (the set is below MEMOS), but written out rather than lost if it were.
            render(self);
            return;
        };
        // The first entry of a set is its most recently used: a key found second moves to the
        // front, and a key found in neither takes the front, which the one in front leaves
        // for the second place (evicting the least recently used).
        if keys.first() != Some(&key) {
            keys.swap(0, 1);
            texts.swap(0, 1);
        }
        let (Some(k), Some(text)) = (keys.first_mut(), texts.first_mut()) else { return };
        if *k == key {
            // As `members` does, with the text borrowed apart from the buffer.
            if !text.is_empty() {
                if !*first {
                    buf.push(b',');
                }
                *first = false;
                text.append_to(buf);
            }
            return;
        }
        *k = key;
        let mut text = std::mem::take(text);
        self.render_into(&mut text, render);
        if let Some(t) = self.memo_texts.get_mut(set) {
            *t = text;
        }
    }

    /// Runs `render` on this buffer and keeps in `text` the members it wrote, without the
    /// comma it put before the first.
    fn render_into(&mut self, text: &mut MemoText, render: impl FnOnce(&mut JsonBuf)) {
        let start = self.buf.len() + usize::from(!self.first);
        render(self);
        text.set(self.buf.get(start..).unwrap_or_default());
    }

    /// As [`JsonBuf::members`], from a memo.
    #[inline(always)]
    fn memo_text(&mut self, text: &MemoText) {
        if text.is_empty() {
            return;
        }
        self.sep();
        text.append_to(&mut self.buf);
    }

    /// Members already written (`"a":1,"b":2`, as another buffer wrote them after its `{`),
    /// copied as they are.
    #[inline]
    pub fn members(&mut self, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        self.sep();
        self.buf.extend_from_slice(text);
    }

    /// An unsigned number as an array element.
    #[inline(always)]
    pub fn u64(&mut self, v: u64) {
        match u32::try_from(v) {
            Ok(v) if v < 1_000_000 => self.short_element(v),
            _ => self.wide_element(false, v),
        }
    }

    /// A signed number as an array element.
    #[inline(always)]
    pub fn i64(&mut self, v: i64) {
        match u32::try_from(v) {
            Ok(v) if v < 1_000_000 => self.short_element(v),
            _ => self.wide_element(v < 0, v.unsigned_abs()),
        }
    }

    /// An array element below 10^6 (every byte and word of a PDU's values), with its
    /// separator: both in one store of a word, inlined into the writers' loops over values.
    /// Its digits come from [`DIGITS3`], three at a time: computed, the digits of a word
    /// cost three times those of a byte, and the values of a PDU mix both.
    #[inline(always)]
    fn short_element(&mut self, v: u32) {
        let (high, low) = (digits3(v / 1000), digits3(v % 1000));
        let (digits, n) = if v < 1000 {
            unpadded(low)
        } else {
            let (high, n) = unpadded(high);
            (high | u64::from(low & 0xff_ffff) << (8 * n), n + 3)
        };
        let (word, n) = if self.first { (digits, n) } else { (digits << 8 | u64::from(b','), n + 1) };
        self.first = false;
        let len = self.buf.len();
        self.buf.extend_from_slice(&word.to_le_bytes());
        self.buf.truncate(len + n);
    }

    /// An array element of any size, `-` before it if `negative`.
    #[inline(never)]
    fn wide_element(&mut self, negative: bool, v: u64) {
        self.sep();
        if negative {
            self.buf.push(b'-');
        }
        push_u64(&mut self.buf, v);
    }

    /// A floating-point number as an array element, in the shortest form that reads back to
    /// the same value (`single` prints it as the IEEE single it was on the wire: 1.1, not
    /// 1.100000023841858); `null` for NaN and infinities, which JSON cannot hold.
    pub fn f64(&mut self, v: f64, single: bool) {
        self.sep();
        if !v.is_finite() {
            self.buf.extend_from_slice(b"null");
        } else if single {
            // Debug is the shortest round-trip form, with an exponent for very large and
            // small magnitudes (`1e300`, `1e-7`), which JSON allows.
            let _ = write!(self.buf, "{:?}", v as f32);
        } else {
            let _ = write!(self.buf, "{v:?}");
        }
    }

    /// A string as an array element.
    #[inline]
    pub fn str(&mut self, s: &str) {
        self.sep();
        self.escaped(s.as_bytes());
    }

    /// `"k":v`.
    #[inline(always)]
    pub fn key_u64(&mut self, k: &str, v: u64) {
        self.key(k);
        self.u64(v);
    }

    /// `"k":v` or `"k":null`.
    #[inline(always)]
    pub fn key_opt_u64(&mut self, k: &str, v: Option<u64>) {
        match v {
            Some(v) => self.key_u64(k, v),
            None => self.key_null(k),
        }
    }

    /// `"k":null`.
    #[inline(always)]
    pub fn key_null(&mut self, k: &str) {
        self.key_then(k, b"null");
        self.first = false;
    }

    /// `"k":true|false`.
    #[inline(always)]
    pub fn key_bool(&mut self, k: &str, v: bool) {
        if v {
            self.key_then(k, b"true");
        } else {
            self.key_then(k, b"false");
        }
        self.first = false;
    }

    /// `"k":"s"`, escaped.
    #[inline(always)]
    pub fn key_str(&mut self, k: &str, s: &str) {
        self.key(k);
        self.str(s);
    }

    // The keyed writers below are inlined for their keys' sake (see `key_then`), and call
    // the writers of their values.

    /// `"k":"..."` from bytes, invalid UTF-8 replaced.
    #[inline(always)]
    pub fn key_bytes_lossy(&mut self, k: &str, b: &[u8]) {
        self.key(k);
        self.bytes_lossy(b);
    }

    /// A string from bytes, invalid UTF-8 replaced, as a value.
    fn bytes_lossy(&mut self, b: &[u8]) {
        self.sep();
        self.escaped(String::from_utf8_lossy(b).as_bytes());
    }

    /// `"k":"<hex>"`.
    #[inline(always)]
    pub fn key_hex(&mut self, k: &str, b: &[u8]) {
        self.key(k);
        self.hex(b);
    }

    /// `"<hex>"` as a value.
    fn hex(&mut self, b: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.sep();
        self.buf.push(b'"');
        for &x in b {
            self.buf.push(HEX[usize::from(x >> 4)]);
            self.buf.push(HEX[usize::from(x & 15)]);
        }
        self.buf.push(b'"');
    }

    /// `"k":<secs>.<fraction>` with every digit the capture recorded. Before the epoch the
    /// sign applies to the whole number (-1.5 s is `secs` -2 and `nanos` 500,000,000, written
    /// `-1.500000`).
    #[inline(always)]
    pub fn key_ts(&mut self, k: &str, ts: Timestamp) {
        self.key_then(k, b"");
        self.first = false;
        let (secs, nanos) = if ts.secs < 0 && ts.nanos > 0 {
            // -(secs + nanos/1e9) = (-secs - 1) + (1e9 - nanos)/1e9, both non-negative.
            (ts.secs.unsigned_abs() - 1, 1_000_000_000 - ts.nanos.min(999_999_999))
        } else {
            (ts.secs.unsigned_abs(), ts.nanos)
        };
        self.ts_secs.write(&mut self.buf, ts.secs < 0, secs);
        if nanos % 1000 == 0 {
            push_padded(&mut self.buf, nanos / 1000 % 1_000_000, 6);
        } else {
            // Nine digits: the first, then eight (`nanos` is below 10^9).
            self.buf.push(b'0' + (nanos / 100_000_000 % 10) as u8);
            push_padded(&mut self.buf, nanos % 100_000_000, 8);
        }
    }

    /// `"k":"a.b.c.d"` or an IPv6 address.
    #[inline(always)]
    pub fn key_ip(&mut self, k: &str, ip: IpAddr) {
        self.key(k);
        self.ip(ip);
    }

    /// `"a.b.c.d"` or an IPv6 address as a value.
    fn ip(&mut self, ip: IpAddr) {
        self.sep();
        self.buf.push(b'"');
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                push_u64(&mut self.buf, u64::from(a));
                for o in [b, c, d] {
                    self.buf.push(b'.');
                    push_u64(&mut self.buf, u64::from(o));
                }
            }
            IpAddr::V6(v6) => {
                let _ = write!(self.buf, "{v6}");
            }
        }
        self.buf.push(b'"');
    }

    fn escaped(&mut self, s: &[u8]) {
        self.buf.push(b'"');
        // Names and most values need no escaping: one check, one copy.
        if is_plain(s) {
            self.buf.extend_from_slice(s);
            self.buf.push(b'"');
            return;
        }
        for &c in s {
            match c {
                b'"' => self.buf.extend_from_slice(b"\\\""),
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                0..=0x1f => {
                    let _ = write!(self.buf, "\\u{c:04x}");
                }
                _ => self.buf.push(c),
            }
        }
        self.buf.push(b'"');
    }
}

/// Bytes of `,"k":` and the text after it written with one copy.
const KEY_TEXT: usize = 32;

/// `,"k":` and `tail` in the first bytes of two words (little-endian, the first byte in the
/// lowest), and how many they are; `None` if they do not fit. The writers' keys and tails are
/// constants: the compiler computes it.
#[inline(always)]
fn key_text(k: &str, tail: &[u8]) -> Option<((u128, u128), usize)> {
    let mut text = [0u8; KEY_TEXT];
    let mut n = 0;
    for part in [b",\"".as_slice(), k.as_bytes(), b"\":", tail] {
        text.get_mut(n..n + part.len())?.copy_from_slice(part);
        n += part.len();
    }
    let (lo, hi) = text.split_at(16);
    Some(((u128::from_le_bytes(lo.try_into().ok()?), u128::from_le_bytes(hi.try_into().ok()?)), n))
}

/// The memo set of `key`: Fibonacci hashing of its two halves, the low one multiplied before
/// they are folded together. Folding them with a plain XOR let fields packed at the same bit
/// positions of the two halves cancel out (an S7 item's length against its data length, its
/// syntax id against its return code), so that distinct keys shared a set more often.
#[inline]
fn memo_set(key: u128) -> usize {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    const SETS: usize = MEMOS / MEMO_WAYS;
    let hash = ((key as u64).wrapping_mul(K) ^ (key >> 64) as u64).wrapping_mul(K);
    (hash >> (64 - SETS.trailing_zeros())) as usize
}

/// Whether no byte of `s` needs escaping, tested eight bytes at a time: a byte is below 0x20,
/// or equal to `"` or `\\`, if subtracting it from the bound (or the character XOR-ed in)
/// borrows into its high bit while its own high bit is clear (the bit hacks `hasless` and
/// `haszero`, exact as a yes or no for any word).
#[inline]
fn is_plain(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let special = control | (quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash);
        if special & HIGH != 0 {
            return false;
        }
    }
    !chunks.remainder().iter().any(|&c| needs_escape(c))
}

/// Whether `c` cannot stand for itself inside a JSON string (RFC 8259 section 7).
#[inline]
fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// Appends `v` in decimal.
///
/// The digits are computed together in a word, eight at a time, and each word is copied whole
/// with the unused tail cut off: a copy of constant size is one store, where a copy of the
/// digits' length is a call to memcpy, and digits stored a byte at a time into an array then
/// read back as a word stall the store forwarding (each cost more than the digits themselves).
#[inline(always)]
fn push_u64(buf: &mut Vec<u8>, v: u64) {
    const E8: u64 = 100_000_000;
    if v < 10 {
        buf.push(b'0' + v as u8);
    } else if v < 1000 {
        // Most values, ports and counts: three digits at most, in a word from the table.
        let (word, n) = unpadded(digits3(v as u32));
        let len = buf.len();
        buf.extend_from_slice(&word.to_le_bytes());
        buf.truncate(len + n);
    } else if v < E8 {
        push_word(buf, digits8(v), true);
    } else if v < E8 * E8 {
        push_word(buf, digits8(v / E8), true);
        push_word(buf, digits8(v % E8), false);
    } else {
        buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

/// The three digits of every number below 1000, padded with zeros, in the low three bytes
/// (the first digit in the lowest), and how many of them the number has in the top byte.
static DIGITS3: [u32; 1000] = {
    let mut table = [0u32; 1000];
    let mut i = 0;
    while i < 1000 {
        let n = if i >= 100 {
            3
        } else if i >= 10 {
            2
        } else {
            1
        };
        let (h, t, o) = ((i / 100) as u32, (i / 10 % 10) as u32, (i % 10) as u32);
        table[i] = 0x30_3030 | h | t << 8 | o << 16 | n << 24;
        i += 1;
    }
    table
};

/// The entry of [`DIGITS3`] for `v` (below 1000).
#[inline(always)]
fn digits3(v: u32) -> u32 {
    DIGITS3.get(v as usize).copied().unwrap_or(0)
}

/// The digits of a [`DIGITS3`] entry without their leading zeros, in the low bytes of a word,
/// and how many there are.
#[inline(always)]
fn unpadded(entry: u32) -> (u64, usize) {
    let n = entry >> 24;
    (u64::from(entry & 0xff_ffff) >> (8 * (3 - n.min(3))), n as usize)
}

/// The eight decimal digits of `v` (below 10^8, with leading zeros) as ASCII in a word, the
/// first digit in the lowest byte so that the word's little-endian bytes read in order.
///
/// Each step splits every lane of the word in two at once (4 + 4 digits, then 2 + 2, then
/// 1 + 1), dividing by multiplying with a reciprocal that is exact over the lane's range.
#[inline(always)]
fn digits8(v: u64) -> u64 {
    // 32-bit lanes: the first four digits, the last four.
    let a = (v / 10_000) | ((v % 10_000) << 32);
    // 16-bit lanes: n / 100 is (n * 10486) >> 20 for n below 10^4.
    let hundreds = ((a * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let b = hundreds | ((a - hundreds * 100) << 16);
    // 8-bit lanes: n / 10 is (n * 103) >> 10 for n below 100.
    let tens = ((b * 103) >> 10) & 0x000f_000f_000f_000f;
    let c = tens | ((b - tens * 10) << 8);
    c | 0x3030_3030_3030_3030
}

/// Appends the eight digits of `word` (from [`digits8`]), without their leading zeros if
/// `trim` (the number is then at least 1).
#[inline(always)]
fn push_word(buf: &mut Vec<u8>, word: u64, trim: bool) {
    // A leading zero digit is the byte 0x30: its low nibble is zero.
    // At most seven: the caller's number is not zero.
    let zeros = if trim { ((word & 0x0f0f_0f0f_0f0f_0f0f).trailing_zeros() / 8).min(7) as usize } else { 0 };
    let len = buf.len();
    buf.extend_from_slice(&(word >> (8 * zeros)).to_le_bytes());
    buf.truncate(len + 8 - zeros);
}

/// Appends `v` (below 10^8) in decimal, padded with zeros to `width` digits (at most 8).
#[inline]
fn push_padded(buf: &mut Vec<u8>, v: u32, width: usize) {
    let word = digits8(u64::from(v)) >> (8 * (8 - width.min(8)));
    let len = buf.len();
    buf.extend_from_slice(&word.to_le_bytes());
    buf.truncate(len + width.min(8));
}

/// Writes `pdu` as one JSON line.
pub fn write_pdu(out: &mut JsonBuf, pdu: &Pdu<'_>) {
    out.begin();
    out.key_ts("ts", pdu.ts);
    out.key_u64("pkt", pdu.pkt);
    write_endpoints(out, pdu);
    let (is_request, func, name) = (pdu.is_request(), pdu.body.func(), pdu.body.func_name());
    match name {
        // Tag 6: the name is a static string, known by its address and length.
        FuncName::Known(n) if n.len() <= usize::from(u16::MAX) => {
            let key = 6u128 << 120
                | (n.as_ptr() as usize as u128) << 48
                | (n.len() as u128) << 32
                | u128::from(func) << 8
                | u128::from(is_request);
            out.memo(key, |out| write_func(out, is_request, func, name));
        }
        _ => write_func(out, is_request, func, name),
    }
    let flags = pdu.body.flags();
    // Most PDUs have none: no walk over the names of all the flags.
    if flags.is_empty() {
        out.empty_array("flags");
    } else {
        out.begin_array("flags");
        for f in flags.iter() {
            out.str(f);
        }
        out.end_array();
    }
    match &pdu.body {
        PduBody::Modbus(m) => super::json_modbus::write(out, m),
        PduBody::Dnp3(d) => super::json_dnp3::write(out, d),
        PduBody::S7(s) => super::json_s7::write(out, s),
        PduBody::S7Plus(s) => super::json_s7::write_plus(out, s),
    }
    out.end_line();
}

/// `is_request`, `func` and `func_name`.
fn write_func(out: &mut JsonBuf, is_request: bool, func: u16, name: FuncName) {
    out.key_bool("is_request", is_request);
    out.key_u64("func", u64::from(func));
    match name {
        FuncName::Known(n) => out.key_str("func_name", n),
        FuncName::Unknown(n) => {
            out.key("func_name");
            out.sep();
            out.buf.extend_from_slice(b"\"unknown-");
            push_u64(&mut out.buf, u64::from(n));
            out.buf.push(b'"');
        }
    }
}

/// `proto`, `src_ip`, `src_port`, `dst_ip`, `dst_port`, `transport` and `flow`: the same for
/// every PDU of a flow in one direction, so rendered once per flow and direction and copied.
fn write_endpoints(out: &mut JsonBuf, pdu: &Pdu<'_>) {
    let key = FlowKey {
        protocol: pdu.body.protocol(),
        src: pdu.src,
        dst: pdu.dst,
        transport: pdu.transport,
        flow: pdu.flow_id,
    };
    let mut flows = std::mem::take(&mut out.flows);
    if flows.is_empty() {
        flows.resize_with(FLOW_MEMOS, Memo::default);
    }
    // Both directions of a flow share its id: the direction picks one of two adjacent slots.
    let slot = (pdu.flow_id as usize).wrapping_mul(2) + usize::from(pdu.src > pdu.dst);
    if let Some(memo) = flows.get_mut(slot % FLOW_MEMOS) {
        memo.write(out, key, |b| {
            b.key_str("proto", key.protocol.name());
            b.key_ip("src_ip", key.src.ip);
            b.key_u64("src_port", u64::from(key.src.port));
            b.key_ip("dst_ip", key.dst.ip);
            b.key_u64("dst_port", u64::from(key.dst.port));
            b.key_str(
                "transport",
                match key.transport {
                    Transport::Tcp => "tcp",
                    Transport::Udp => "udp",
                },
            );
            b.key_u64("flow", key.flow);
        });
    }
    out.flows = flows;
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// serde_json's escaping of `s` with the two escapes it writes short (`\b`, `\f`) spelt as
    /// `\u00XX`, as this writer (and the expected outputs) always spelt them.
    fn serde_escaped(s: &str) -> String {
        let json = serde_json::to_string(s).unwrap();
        let mut out = String::with_capacity(json.len());
        let mut chars = json.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('b') => out.push_str("\\u0008"),
                Some('f') => out.push_str("\\u000c"),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            }
        }
        out
    }

    /// Strings rich in what needs escaping, at every length around the eight-byte words.
    fn tricky_strings() -> impl Strategy<Value = String> {
        let c = prop_oneof![any::<char>(), (0u8..0x20).prop_map(char::from), Just('"'), Just('\\'), Just('\u{7f}')];
        proptest::collection::vec(c, 0..40).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn escapes_any_string_as_serde_json_does(s in tricky_strings()) {
            let mut b = JsonBuf::new();
            b.str(&s);
            prop_assert_eq!(std::str::from_utf8(b.as_bytes()).unwrap(), serde_escaped(&s));
        }

        #[test]
        fn writes_any_number_as_display_does(v in any::<u64>(), w in any::<i64>()) {
            let mut b = JsonBuf::new();
            b.u64(v);
            b.first = true;
            b.i64(w);
            prop_assert_eq!(String::from_utf8(b.as_bytes().to_vec()).unwrap(), format!("{v}{w}"));
        }
    }

    #[test]
    fn writes_every_number_below_two_million_as_display_does() {
        let mut b = JsonBuf::new();
        let mut expected = String::new();
        for v in 0..2_000_000u64 {
            b.u64(v);
            expected.push_str(&format!("{}{v}", if v == 0 { "" } else { "," }));
        }
        assert_eq!(std::str::from_utf8(b.as_bytes()).unwrap(), expected);
    }

    #[test]
    fn writes_numbers_at_every_digit_count_boundary() {
        let mut b = JsonBuf::new();
        let mut expected = String::new();
        for d in 0..20u32 {
            let p = 10u64.pow(d);
            for v in [p - 1, p, p + 1, p.saturating_mul(9)] {
                b.u64(v);
                expected.push_str(&format!("{}{v}", if expected.is_empty() { "" } else { "," }));
            }
        }
        b.u64(u64::MAX);
        expected.push_str(&format!(",{}", u64::MAX));
        assert_eq!(std::str::from_utf8(b.as_bytes()).unwrap(), expected);
    }

    #[test]
    fn a_memoised_member_list_reads_as_first_written_wherever_it_is_copied() {
        let ab = |b: &mut JsonBuf| {
            b.key_u64("a", 1);
            b.key_str("b", "x");
        };
        let mut b = JsonBuf::new();
        let mut flows = Memo::default();
        for _ in 0..2 {
            b.begin();
            b.memo(7 << 120, ab); // first member: no comma before it
            b.key_u64("c", 2);
            b.memo(8 << 120, |b| b.key_null("d")); // after another: a comma
            b.memo(9 << 120, |_| {}); // nothing: no comma either
            flows.write(&mut b, 1u8, ab);
            b.end_line();
        }
        let line = "{\"a\":1,\"b\":\"x\",\"c\":2,\"d\":null,\"a\":1,\"b\":\"x\"}\n";
        assert_eq!(std::str::from_utf8(b.as_bytes()).unwrap(), format!("{line}{line}"));
    }

    #[test]
    fn writes_timestamps_with_every_recorded_digit() {
        let mut b = JsonBuf::new();
        b.begin();
        b.key_ts("a", Timestamp { secs: 1_500_000_000, nanos: 120_000 });
        b.key_ts("b", Timestamp { secs: 1, nanos: 5 });
        b.end_line();
        assert_eq!(b.as_bytes(), b"{\"a\":1500000000.000120,\"b\":1.000000005}\n");
    }

    #[test]
    fn writes_timestamps_before_the_epoch_with_the_sign_on_the_whole_number() {
        let mut b = JsonBuf::new();
        b.begin();
        b.key_ts("a", Timestamp::from_nanos(-1_500_000_000)); // secs -2, nanos 500,000,000
        b.key_ts("b", Timestamp::from_nanos(-2_000_000_000)); // secs -2, nanos 0
        b.key_ts("c", Timestamp::from_nanos(-1)); // secs -1, nanos 999,999,999
        b.key_ts("d", Timestamp::from_nanos(-500_000_000)); // secs -1, nanos 500,000,000
        b.end_line();
        assert_eq!(b.as_bytes(), &b"{\"a\":-1.500000,\"b\":-2.000000,\"c\":-0.000000001,\"d\":-0.500000}\n"[..]);
        let v: serde_json::Value = serde_json::from_slice(b.as_bytes()).unwrap();
        assert_eq!(v["a"].as_f64(), Some(-1.5));
    }

    #[test]
    fn writes_floats_exactly_and_non_finite_as_null() {
        let mut b = JsonBuf::new();
        b.begin();
        b.begin_array("l");
        b.f64(f64::from(1.1f32), true); // the single-precision 1.1 on the wire
        b.f64(-2.5, false);
        b.f64(1e300, false);
        b.f64(f64::NAN, false);
        b.end_array();
        b.end_line();
        assert_eq!(b.as_bytes(), &b"{\"l\":[1.1,-2.5,1e300,null]}\n"[..]);
    }

    #[test]
    fn escapes_strings_and_nests() {
        let mut b = JsonBuf::new();
        b.begin();
        b.key_str("s", "a\"b\\\n\u{1}");
        b.begin_array("l");
        b.u64(1);
        b.u64(2);
        b.end_array();
        b.begin_object("o");
        b.key_null("n");
        b.end();
        b.end_line();
        let v: serde_json::Value = serde_json::from_slice(b.as_bytes()).unwrap();
        assert_eq!(v["s"], "a\"b\\\n\u{1}");
        assert_eq!(v["l"], serde_json::json!([1, 2]));
        assert!(v["o"]["n"].is_null());
    }
}
