//! The tamper-evident alert log: each record written to an alerts file carries its sequence
//! number (`seq`, from 1) and the SHA-256 of the record before it as written (`prev`, hex;
//! 64 zeros for the first), so that altering, removing, inserting or reordering a record,
//! or cutting the file short, breaks the chain where it happened. `otsensor verify-alerts`
//! finds the first break.
//!
//! The chain alone holds no secret: whoever can write the file can rewrite every record after
//! the one they changed. With a private key ([`Chain::signed`]), a checkpoint record is
//! written every N records and when the writer closes, signing (Ed25519) its own `seq` and
//! `prev`, and so, through `prev`, every record before it. `verify-alerts --key PUB` then
//! finds a rewritten chain at the first checkpoint after the change, and a file cut short at
//! a record boundary because it does not end with the closing checkpoint.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use super::json::JsonBuf;
use crate::keys::key_id;

/// Records between two signed checkpoints unless told otherwise.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 100;

/// Where the chain stands: the next record's number and the hash of the last one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    next_seq: u64,
    prev: [u8; 32],
    signer: Option<Checkpoints>,
}

impl Default for Chain {
    fn default() -> Self {
        Chain { next_seq: 1, prev: [0; 32], signer: None }
    }
}

/// `--alerts-key FILE` and `--checkpoint-every N`, resolved: the key that signs an alerts
/// file's checkpoints and the records between two of them.
#[derive(Clone, Debug)]
pub struct SignWith {
    /// The private key.
    pub key: SigningKey,
    /// Records between checkpoints.
    pub every: u64,
}

impl SignWith {
    /// Loads the key at `path` (refused when others can read or write it).
    pub fn load(path: &Path, every: u64) -> Result<SignWith, String> {
        Ok(SignWith { key: crate::keys::load_signing_key(path)?, every })
    }
}

/// The key that signs checkpoints, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Checkpoints {
    key: SigningKey,
    key_id: String,
    every: u64,
    since: u64,
}

/// What a checkpoint signs: its own place in the chain and whether it closes the file.
fn checkpoint_message(seq: u64, prev: &[u8; 32], closing: bool) -> Vec<u8> {
    let mut m = b"otsensor alerts checkpoint v1\0".to_vec();
    m.extend(seq.to_be_bytes());
    m.extend(prev);
    m.push(u8::from(closing));
    m
}

fn hex(h: &[u8; 32]) -> String {
    let mut s = String::with_capacity(64);
    for b in h {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl Chain {
    /// A new chain.
    pub fn new() -> Self {
        Chain::default()
    }

    /// The chain of an alerts file about to be appended to: it continues after its last
    /// record (a new chain for a missing or empty file). A file whose last record is not
    /// chained is refused: appending would hide the break.
    ///
    /// A last record cut short (a sensor killed in the middle of a write) is a torn tail: it
    /// is moved to `FILE.torn-SECONDS`, and a `torn_tail` notice record, chained, says so in
    /// the file itself, so that the sensor restarts unattended and the evidence stays.
    pub fn continue_file(path: &Path) -> io::Result<Chain> {
        let mut text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Chain::new()),
            Err(e) => return Err(e),
        };
        let torn =
            if text.is_empty() || text.ends_with(b"\n") { None } else { Some(set_torn_tail_aside(path, &mut text)?) };
        let mut chain = Chain::last_of(path, &text)?;
        if let Some((bytes, saved)) = torn {
            chain.append_torn_notice(path, bytes, &saved)?;
        }
        Ok(chain)
    }

    /// The chain after the last record of `text` (whole records only).
    fn last_of(path: &Path, text: &[u8]) -> io::Result<Chain> {
        if text.is_empty() {
            return Ok(Chain::new());
        }
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
        let body = text.get(..text.len() - 1).unwrap_or_default();
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let last = text.get(start..).unwrap_or_default();
        let seq = serde_json::from_slice::<serde_json::Value>(last)
            .ok()
            .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| bad("the last record carries no seq: not an otsensor alert chain"))?;
        Ok(Chain { next_seq: seq + 1, prev: Sha256::digest(last).into(), signer: None })
    }

    /// Appends (and syncs) the chained record saying that `bytes` of a torn record were moved
    /// to `saved`.
    fn append_torn_notice(&mut self, path: &Path, bytes: usize, saved: &Path) -> io::Result<()> {
        let mut buf = JsonBuf::new();
        buf.begin();
        buf.key_str("notice", "torn_tail");
        buf.key_u64("bytes", bytes as u64);
        buf.key_str("saved_to", &saved.display().to_string());
        self.stamp(&mut buf);
        buf.end_line();
        let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
        io::Write::write_all(&mut f, buf.as_bytes())?;
        f.sync_data()?;
        self.advance_only(buf.as_bytes());
        Ok(())
    }

    /// The same chain, signed as `with` says (unchanged for `None`).
    pub fn signed_with(self, with: Option<&SignWith>) -> Chain {
        match with {
            Some(w) => self.signed(w.key.clone(), w.every),
            None => self,
        }
    }

    /// The same chain, with a signed checkpoint every `every` records and one at close.
    pub fn signed(self, key: SigningKey, every: u64) -> Chain {
        let key_id = key_id(&key.verifying_key());
        Chain { signer: Some(Checkpoints { key, key_id, every: every.max(1), since: 0 }), ..self }
    }

    /// Writes the checkpoint due after the record just taken, if one is: into `out`, as a
    /// record of the chain. `closing` forces one (the writer is closing the file).
    pub fn checkpoint(&mut self, out: &mut JsonBuf, closing: bool) {
        let Some(s) = &mut self.signer else { return };
        if !closing && s.since < s.every {
            return;
        }
        s.since = 0;
        let sig = s.key.sign(&checkpoint_message(self.next_seq, &self.prev, closing));
        let start = out.len();
        out.begin();
        out.key_str("checkpoint", if closing { "close" } else { "periodic" });
        out.key_str("key_id", &s.key_id);
        out.key_u64("seq", self.next_seq);
        out.key_str("prev", &hex(&self.prev));
        out.key_hex("sig", &sig.to_bytes());
        out.end_line();
        self.advance_only(out.as_bytes().get(start..).unwrap_or_default());
    }

    /// Adds `seq` and `prev` to the record being written in `out` (before its end).
    pub fn stamp(&self, out: &mut JsonBuf) {
        out.key_u64("seq", self.next_seq);
        out.key_str("prev", &hex(&self.prev));
    }

    /// Takes the record just written (`line`, with its end of line) as the chain's last.
    pub fn advance(&mut self, line: &[u8]) {
        self.advance_only(line);
        if let Some(s) = &mut self.signer {
            s.since += 1;
        }
    }

    fn advance_only(&mut self, line: &[u8]) {
        self.prev = Sha256::digest(line).into();
        self.next_seq += 1;
    }
}

/// Moves the bytes after the last end of line of `path` (held in `text`) to
/// `PATH.torn-SECONDS`, synced, then cuts the file (and `text`) back to its last whole record.
fn set_torn_tail_aside(path: &Path, text: &mut Vec<u8>) -> io::Result<(usize, std::path::PathBuf)> {
    let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut saved = path.as_os_str().to_owned();
    saved.push(format!(".torn-{secs}"));
    let saved = std::path::PathBuf::from(saved);
    let tail = text.get(keep..).unwrap_or_default();
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&saved)?;
    io::Write::write_all(&mut f, tail)?;
    f.sync_all()?;
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_all()?;
    eprintln!(
        "otsensor: warning: {}: its last record was cut short ({} bytes, a write interrupted); moved to {}, and the \
         chain goes on after a torn_tail notice",
        path.display(),
        tail.len(),
        saved.display()
    );
    let n = tail.len();
    text.truncate(keep);
    Ok((n, saved))
}

/// What an intact file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// Records (lines), checkpoints included.
    pub records: u64,
    /// Signed checkpoints, verified when a key was given.
    pub checkpoints: u64,
    /// Whether the last record is a closing checkpoint.
    pub closed: bool,
}

/// Checks a checkpoint record (line `line_no`, chained correctly) against `key`; `since` is
/// the line of the checkpoint before it (0 for the start of the file).
fn verify_checkpoint(
    v: &serde_json::Value,
    line_no: u64,
    since: u64,
    expected: &Chain,
    key: &VerifyingKey,
) -> Result<(), String> {
    let closing = v.get("checkpoint").and_then(|c| c.as_str()) == Some("close");
    let named = v.get("key_id").and_then(|k| k.as_str()).unwrap_or("none");
    let want = key_id(key);
    if named != want {
        return Err(format!("line {line_no}: checkpoint signed by key {named}, not by the key given ({want})"));
    }
    let sig = v
        .get("sig")
        .and_then(|s| s.as_str())
        .and_then(unhex::<64>)
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| format!("line {line_no}: checkpoint without a readable signature: altered"))?;
    key.verify(&checkpoint_message(expected.next_seq, &expected.prev, closing), &sig).map_err(|_| {
        format!(
            "line {line_no}: checkpoint signature does not verify: the records after line {since} were rewritten \
             (altered, removed, inserted or reordered, with the chain recomputed)"
        )
    })
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Verifies a chained file, and with `key` its signed checkpoints: the first place it is
/// broken, or what it holds. With a key, a file that does not end with a closing checkpoint
/// is refused too: its tail is not signed (cut short, or still being written).
pub fn verify_signed(bytes: &[u8], key: Option<&VerifyingKey>) -> Result<Verified, String> {
    let mut found = Verified::default();
    let mut last_checkpoint = 0u64;
    walk(bytes, &mut |line_no, v, expected| {
        let is_checkpoint = v.get("checkpoint").is_some();
        if let (true, Some(key)) = (is_checkpoint, key) {
            verify_checkpoint(v, line_no, last_checkpoint, expected, key)?;
        }
        if is_checkpoint {
            found.checkpoints += 1;
            last_checkpoint = line_no;
        }
        found.closed = v.get("checkpoint").and_then(|c| c.as_str()) == Some("close");
        found.records = line_no;
        Ok(())
    })?;
    if key.is_some() && !found.closed {
        return Err(if found.checkpoints == 0 {
            "no signed checkpoint in the file: it was not written with a signing key".to_string()
        } else {
            format!(
                "the file does not end with a closing checkpoint: lines {} to {} are not signed (the file was cut \
                 short after line {last_checkpoint}, or the sensor is still writing it or was killed)",
                last_checkpoint + 1,
                found.records
            )
        });
    }
    Ok(found)
}

/// The first place a chained alerts file is broken, if any; else the number of records.
pub fn verify(bytes: &[u8]) -> Result<u64, String> {
    verify_signed(bytes, None).map(|v| v.records)
}

/// Walks the chain, calling `each` with every record that chains correctly (its line number,
/// the record, and the chain as it stood before it); stops at the first break.
fn walk(
    bytes: &[u8],
    each: &mut dyn FnMut(u64, &serde_json::Value, &Chain) -> Result<(), String>,
) -> Result<(), String> {
    let mut expected = Chain::new();
    let mut line_no = 0u64;
    let mut rest = bytes;
    while !rest.is_empty() {
        line_no += 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(format!("line {line_no}: cut short (no end of line): the file was truncated"));
        };
        let (line, tail) = rest.split_at(end + 1);
        rest = tail;
        let v: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| format!("line {line_no}: not a JSON record ({e}): altered"))?;
        let (Some(seq), Some(prev)) = (v.get("seq").and_then(|s| s.as_u64()), v.get("prev").and_then(|p| p.as_str()))
        else {
            return Err(format!("line {line_no}: no seq or prev: not a chained record (altered or inserted)"));
        };
        if seq != expected.next_seq {
            return Err(format!(
                "line {line_no}: record {seq} where {} was due: a record was removed, inserted or reordered",
                expected.next_seq
            ));
        }
        if prev != hex(&expected.prev) {
            let what = if line_no == 1 {
                "the first record does not start a chain".to_string()
            } else {
                format!("line {} was altered", line_no - 1)
            };
            return Err(format!("line {line_no}: does not chain to the record before it: {what}"));
        }
        each(line_no, &v, &expected)?;
        expected.advance(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chained file of `n` records `{"n":i,"seq":..,"prev":..}`.
    fn chained(n: u64) -> Vec<u8> {
        let mut chain = Chain::new();
        let mut out = Vec::new();
        for i in 0..n {
            let mut buf = JsonBuf::new();
            buf.begin();
            buf.key_u64("n", i);
            chain.stamp(&mut buf);
            buf.end_line();
            chain.advance(buf.as_bytes());
            out.extend_from_slice(buf.as_bytes());
        }
        out
    }

    fn lines(b: &[u8]) -> Vec<Vec<u8>> {
        b.split_inclusive(|&c| c == b'\n').map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chained(5)), Ok(5));
        assert_eq!(verify(b""), Ok(0));
    }

    #[test]
    fn every_kind_of_tampering_is_found_where_it_happened() {
        let good = lines(&chained(5));
        let join = |ls: &[Vec<u8>]| ls.concat();
        // Altered: a byte of record 2 changed (its own seq and prev still read right).
        let mut altered = good.clone();
        altered[1] = String::from_utf8(altered[1].clone()).unwrap().replacen("\"n\":1", "\"n\":7", 1).into_bytes();
        assert_eq!(
            verify(&join(&altered)),
            Err("line 3: does not chain to the record before it: line 2 was altered".into())
        );
        // Removed: record 3 gone.
        let removed: Vec<_> = good.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, l)| l.clone()).collect();
        assert!(verify(&join(&removed)).is_err_and(|e| e.starts_with("line 3: record 4 where 3 was due")));
        // Inserted: a copy of record 2 after it.
        let mut inserted = good.clone();
        inserted.insert(2, good[1].clone());
        assert!(verify(&join(&inserted)).is_err_and(|e| e.starts_with("line 3: record 2 where 3 was due")));
        // Reordered: records 2 and 3 swapped.
        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert!(verify(&join(&reordered)).is_err_and(|e| e.starts_with("line 2: record 3 where 2 was due")));
        // Truncated: the last record cut in the middle.
        let mut truncated = join(&good);
        truncated.truncate(truncated.len() - 10);
        assert_eq!(verify(&truncated), Err("line 5: cut short (no end of line): the file was truncated".into()));
    }

    #[test]
    fn appending_continues_the_chain_of_a_file() {
        let dir = std::env::temp_dir().join(format!("otsensor-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("alerts.jsonl");
        let first = chained(3);
        std::fs::write(&path, &first).expect("write");
        let chain = Chain::continue_file(&path).expect("continues");
        let mut buf = JsonBuf::new();
        buf.begin();
        buf.key_u64("n", 3);
        chain.stamp(&mut buf);
        buf.end_line();
        let mut all = first.clone();
        all.extend_from_slice(buf.as_bytes());
        assert_eq!(verify(&all), Ok(4));
        // A torn last record: set aside, noted in the chain, and the chain goes on.
        std::fs::write(&path, &first[..first.len() - 3]).expect("cut");
        let chain = Chain::continue_file(&path).expect("a torn tail is recovered");
        let text = std::fs::read(&path).expect("read");
        assert_eq!(verify(&text), Ok(3), "two whole records and the notice");
        let notice: serde_json::Value = serde_json::from_slice(lines(&text)[2].as_slice()).expect("notice");
        assert_eq!((notice["notice"].as_str(), notice["seq"].as_u64()), (Some("torn_tail"), Some(3)));
        let saved = notice["saved_to"].as_str().expect("saved_to");
        assert_eq!(std::fs::read(saved).expect("torn bytes kept"), lines(&first)[2][..lines(&first)[2].len() - 3]);
        assert_eq!(chain.next_seq, 4);
        std::fs::write(&path, b"{\"n\":1}\n").expect("unchained");
        assert!(Chain::continue_file(&path).is_err(), "an unchained file is not appended to");
        assert_eq!(Chain::continue_file(&dir.join("none.jsonl")).expect("a missing file starts a chain"), Chain::new());
        std::fs::remove_dir_all(&dir).ok();
    }
}
