//! The tamper-evident alert log: each record written to an alerts file carries its sequence
//! number (`seq`, from 1) and the SHA-256 of the record before it as written (`prev`, hex;
//! 64 zeros for the first), so that altering, removing, inserting or reordering a record,
//! or cutting the file short, breaks the chain where it happened. `otsensor verify-alerts`
//! finds the first break.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::json::JsonBuf;

/// Where the chain stands: the next record's number and the hash of the last one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    next_seq: u64,
    prev: [u8; 32],
}

impl Default for Chain {
    fn default() -> Self {
        Chain { next_seq: 1, prev: [0; 32] }
    }
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
    /// record (a new chain for a missing or empty file). A file whose last record is cut short
    /// or not chained is refused: appending would hide the break.
    pub fn continue_file(path: &Path) -> io::Result<Chain> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Chain::new()),
            Err(e) => return Err(e),
        };
        if text.is_empty() {
            return Ok(Chain::new());
        }
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
        if !text.ends_with(b"\n") {
            return Err(bad("the last record is cut short (no end of line); run otsensor verify-alerts"));
        }
        let body = text.get(..text.len() - 1).unwrap_or_default();
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let last = text.get(start..).unwrap_or_default();
        let seq = serde_json::from_slice::<serde_json::Value>(last)
            .ok()
            .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| bad("the last record carries no seq: not an otsensor alert chain"))?;
        Ok(Chain { next_seq: seq + 1, prev: Sha256::digest(last).into() })
    }

    /// Adds `seq` and `prev` to the record being written in `out` (before its end).
    pub fn stamp(&self, out: &mut JsonBuf) {
        out.key_u64("seq", self.next_seq);
        out.key_str("prev", &hex(&self.prev));
    }

    /// Takes the record just written (`line`, with its end of line) as the chain's last.
    pub fn advance(&mut self, line: &[u8]) {
        self.prev = Sha256::digest(line).into();
        self.next_seq += 1;
    }
}

/// The first place a chained alerts file is broken, if any; else the number of records.
pub fn verify(bytes: &[u8]) -> Result<u64, String> {
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
        expected.advance(line);
    }
    Ok(line_no)
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
        std::fs::write(&path, &first[..first.len() - 3]).expect("cut");
        assert!(Chain::continue_file(&path).is_err(), "a cut file is not appended to");
        assert_eq!(Chain::continue_file(&dir.join("none.jsonl")).expect("a missing file starts a chain"), Chain::new());
        std::fs::remove_dir_all(&dir).ok();
    }
}
