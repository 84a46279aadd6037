//! The durable output queue: records are appended once to checksummed, append-only segment
//! files under the state directory, and each destination reads them at its own cursor.
//!
//! ```text
//!  <state>/queue/seg-00000000000000000001.log   records 1..   (a new segment every 1 MiB)
//!  <state>/queue/seg-00000000000000004711.log   records 4711..
//!  <state>/queue/cursor-syslog_tcp_127.0.0.1_6514   the next record that destination needs
//! ```
//!
//! A record on disk is `len: u32 LE | crc32: u32 LE | id: u64 LE | enqueued (unix ms): u64 LE
//! | topic: u8 | payload (len bytes)`; the CRC covers everything after itself. On start the
//! segments are read back, and a torn or corrupt tail (a crash mid-write) is cut off at the
//! last good record.
//!
//! Guarantees: a record is delivered to each destination at least once, in order, unless
//! that destination falls more than `cap` records behind: then its oldest undelivered
//! records are dropped and counted (`dropped`), never silently. A cursor is saved after
//! each acknowledged batch, so a record delivered just before a crash may be delivered again
//! after the restart (at-least-once). Appending never waits on a destination: it writes to a
//! local file and returns. The undelivered records are also kept in memory (at most `cap`
//! per destination), so that senders never read the disk.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A new segment is started past this size.
const SEGMENT_BYTES: u64 = 1 << 20;
/// Bytes of a record's header.
const HEADER: usize = 4 + 4 + 8 + 8 + 1;
/// A record longer than this is refused (and, on disk, taken for corruption).
pub const MAX_RECORD: usize = 1 << 20;
/// With [`Fsync::Interval`], how often appended records are synced.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// What a record is, and so which Kafka topic it goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// An alert (`otsensor.alerts`; the only kind syslog, CEF and files carry).
    Alerts,
    /// An asset inventory snapshot (`otsensor.assets`).
    Assets,
    /// Per-pair traffic summaries of one minute (`otsensor.stats`).
    Stats,
}

impl Topic {
    fn byte(self) -> u8 {
        match self {
            Topic::Alerts => 0,
            Topic::Assets => 1,
            Topic::Stats => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Topic> {
        match b {
            0 => Some(Topic::Alerts),
            1 => Some(Topic::Assets),
            2 => Some(Topic::Stats),
            _ => None,
        }
    }
}

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// After every append: nothing acknowledged by `append` is lost to a power cut.
    Always,
    /// At most a second later (the default): a power cut loses at most the last second.
    Interval,
    /// When the operating system decides: a crash of the process loses nothing, a power cut may.
    Never,
}

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "interval" => Ok(Fsync::Interval),
            "never" => Ok(Fsync::Never),
            _ => Err(format!("fsync: {s:?} is not always, interval or never")),
        }
    }
}

/// One queued record.
#[derive(Clone, Debug)]
pub struct Record {
    /// Its number, from 1, never reused.
    pub id: u64,
    /// When it was appended, in milliseconds since the epoch (for the lag).
    pub enqueued_ms: u64,
    /// What it is.
    pub topic: Topic,
    /// The bytes (a JSON document).
    pub payload: Arc<[u8]>,
}

/// A destination's counters, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct DestStats {
    /// Records appended for it.
    pub queued: AtomicU64,
    /// Records it acknowledged.
    pub delivered: AtomicU64,
    /// Failed attempts (connect or send) that will be tried again.
    pub retried: AtomicU64,
    /// Records dropped because it fell more than the cap behind.
    pub dropped: AtomicU64,
    /// Age of its oldest undelivered record, in milliseconds (0 when caught up).
    pub lag_ms: AtomicU64,
}

struct Cursor {
    name: String,
    next: u64,
    stats: Arc<DestStats>,
    /// Whether its first drop was reported on stderr.
    warned: bool,
}

struct Segment {
    first: u64,
    path: PathBuf,
}

struct Inner {
    /// Records from the oldest any cursor needs to the newest.
    records: VecDeque<Record>,
    next_id: u64,
    segments: Vec<Segment>,
    writer: Option<BufWriter<File>>,
    /// A second handle on the segment being written, synced without the lock.
    file: Option<Arc<File>>,
    segment_bytes: u64,
    cursors: Vec<Cursor>,
    last_sync: Instant,
    unsynced: bool,
    closed: bool,
}

/// The queue; shared by the appender and one sender per destination.
pub struct Queue {
    dir: PathBuf,
    cap: usize,
    fsync: Fsync,
    inner: Mutex<Inner>,
    ready: Condvar,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("dir", &self.dir).field("cap", &self.cap).finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A file name for a destination's cursor: its name with anything but letters, digits, `.`
/// and `-` as `_`.
fn cursor_file(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    format!("cursor-{safe}")
}

fn encode(r: &Record, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(17 + r.payload.len());
    body.extend_from_slice(&r.id.to_le_bytes());
    body.extend_from_slice(&r.enqueued_ms.to_le_bytes());
    body.push(r.topic.byte());
    body.extend_from_slice(&r.payload);
    out.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// Reads the records of one segment; stops at the first torn or corrupt one and says how many
/// bytes were good.
fn decode_segment(bytes: &[u8], into: &mut Vec<Record>) -> usize {
    let mut at = 0;
    loop {
        let Some(head) = bytes.get(at..at + HEADER) else { return at };
        let word = |i: usize| head.get(i..i + 4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes);
        let (len, crc) = (word(0) as usize, word(4));
        if len > MAX_RECORD {
            return at;
        }
        let Some(body) = bytes.get(at + 8..at + HEADER + len) else { return at };
        if crc32fast::hash(body) != crc {
            return at;
        }
        let long = |i: usize| body.get(i..i + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
        let Some(topic) = body.get(16).copied().and_then(Topic::from_byte) else { return at };
        into.push(Record {
            id: long(0),
            enqueued_ms: long(8),
            topic,
            payload: body.get(17..).unwrap_or_default().into(),
        });
        at += HEADER + len;
    }
}

/// The segments of `dir` in order, and their records; a torn or corrupt tail is cut off (with
/// a warning) and an empty segment deleted.
fn load_segments(dir: &Path) -> io::Result<(Vec<Segment>, Vec<Record>)> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(Ok(first)) = name.strip_prefix("seg-").and_then(|n| n.strip_suffix(".log")).map(str::parse::<u64>) {
            segments.push(Segment { first, path });
        }
    }
    segments.sort_by_key(|s| s.first);
    let mut all = Vec::new();
    let mut kept = Vec::new();
    for seg in segments {
        let bytes = fs::read(&seg.path)?;
        let good = decode_segment(&bytes, &mut all);
        if good < bytes.len() {
            eprintln!(
                "otsensor: warning: {}: {} bytes after the last whole record cut off (an interrupted write)",
                seg.path.display(),
                bytes.len() - good
            );
            OpenOptions::new().write(true).open(&seg.path)?.set_len(good as u64)?;
        }
        if good == 0 {
            fs::remove_file(&seg.path)?;
        } else {
            kept.push(seg);
        }
    }
    Ok((kept, all))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Queue {
    /// Opens (or creates) the queue in `dir` for these destinations, each at most `cap`
    /// records behind. A destination new to the queue starts at its end; one it knew goes
    /// on from its saved cursor.
    pub fn open(dir: &Path, destinations: &[String], cap: usize, fsync: Fsync) -> io::Result<Arc<Queue>> {
        fs::create_dir_all(dir)?;
        let (segments, all) = load_segments(dir)?;
        let mut saved = Vec::new();
        for name in destinations {
            saved.push(read_cursor(&dir.join(cursor_file(name)))?);
        }
        // Numbers are never reused, even when every segment was delivered and deleted.
        let next_id = all
            .last()
            .map(|r| r.id + 1)
            .into_iter()
            .chain(segments.first().map(|s| s.first))
            .chain(saved.iter().flatten().copied())
            .max()
            .unwrap_or(1);
        let mut cursors = Vec::new();
        for (name, saved) in destinations.iter().zip(saved) {
            let next = match saved {
                Some(next) => next,
                None => {
                    // Saved at once: from now on the destination is known, and a restart
                    // before its first delivery still owes it everything after this point.
                    write_cursor(&dir.join(cursor_file(name)), next_id, true)?;
                    next_id
                }
            };
            cursors.push(Cursor { name: name.clone(), next, stats: Arc::default(), warned: false });
        }
        let oldest = cursors.iter().map(|c| c.next).min().unwrap_or(next_id);
        let records: VecDeque<Record> = all.into_iter().filter(|r| r.id >= oldest).collect();
        let q = Queue {
            dir: dir.to_path_buf(),
            cap: cap.max(1),
            fsync,
            inner: Mutex::new(Inner {
                records,
                next_id,
                segments,
                writer: None,
                file: None,
                segment_bytes: 0,
                cursors,
                last_sync: Instant::now(),
                unsynced: false,
                closed: false,
            }),
            ready: Condvar::new(),
        };
        {
            let mut inner = q.lock();
            q.enforce_cap(&mut inner);
            q.collect(&mut inner)?;
        }
        Ok(Arc::new(q))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A sender that panicked holding the lock leaves consistent data: every change to
        // `Inner` is complete before anything that could panic.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counters of destination `dest` (in the order given to [`Queue::open`]).
    pub fn stats(&self, dest: usize) -> Option<Arc<DestStats>> {
        self.lock().cursors.get(dest).map(|c| Arc::clone(&c.stats))
    }

    /// Records held for a destination, not yet acknowledged.
    pub fn backlog(&self, dest: usize) -> u64 {
        let inner = self.lock();
        inner.cursors.get(dest).map_or(0, |c| inner.next_id.saturating_sub(c.next))
    }

    /// Appends a record for every destination. Never waits on one; fails only when the
    /// disk does.
    pub fn append(&self, topic: Topic, payload: &[u8]) -> io::Result<()> {
        if payload.len() > MAX_RECORD {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "record longer than 1 MiB"));
        }
        let mut inner = self.lock();
        let r = Record { id: inner.next_id, enqueued_ms: now_ms(), topic, payload: payload.into() };
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        encode(&r, &mut bytes);
        self.writer(&mut inner, r.id)?.write_all(&bytes)?;
        inner.segment_bytes += bytes.len() as u64;
        inner.next_id += 1;
        inner.records.push_back(r);
        for c in &inner.cursors {
            c.stats.queued.fetch_add(1, Ordering::Relaxed);
        }
        inner.unsynced = true;
        let sync = self.to_sync(&mut inner, self.fsync == Fsync::Always)?;
        self.enforce_cap(&mut inner);
        drop(inner);
        self.ready.notify_all();
        // Synced without the lock: a sender's fetch or ack never waits on the disk, nor does
        // the next append.
        sync.map_or(Ok(()), |f| f.sync_data())
    }

    /// The segment being appended to, a new one when there is none or it is full.
    fn writer<'i>(&self, inner: &'i mut Inner, id: u64) -> io::Result<&'i mut BufWriter<File>> {
        if inner.segment_bytes >= SEGMENT_BYTES {
            if let Some(mut w) = inner.writer.take() {
                w.flush()?;
                w.get_ref().sync_data()?;
            }
        }
        if inner.writer.is_none() {
            // Every run and every full segment starts a new file: a segment is never
            // appended to after a restart, so a torn tail stays where it was cut.
            let path = self.dir.join(format!("seg-{id:020}.log"));
            inner.segments.push(Segment { first: id, path: path.clone() });
            inner.segment_bytes = 0;
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            sync_dir(&self.dir)?;
            inner.file = Some(Arc::new(f.try_clone()?));
            inner.writer = Some(BufWriter::new(f));
        }
        inner.writer.as_mut().ok_or_else(|| io::Error::other("no segment open"))
    }

    /// Writes what is buffered through to the file (a crash of the process then loses
    /// nothing) and, when a sync is `due`, returns the file to sync once the lock is released.
    fn to_sync(&self, inner: &mut Inner, due: bool) -> io::Result<Option<Arc<File>>> {
        if !inner.unsynced {
            return Ok(None);
        }
        if let Some(w) = inner.writer.as_mut() {
            w.flush()?;
        }
        if !due {
            return Ok(None);
        }
        inner.unsynced = false;
        inner.last_sync = Instant::now();
        Ok(inner.file.clone())
    }

    /// The interval policy's sync, when a second has passed since the last.
    fn sync_if_due(&self) -> io::Result<()> {
        let sync = {
            let mut inner = self.lock();
            let due = self.fsync == Fsync::Interval && inner.last_sync.elapsed() >= SYNC_EVERY;
            self.to_sync(&mut inner, due)?
        };
        sync.map_or(Ok(()), |f| f.sync_data())
    }

    /// Syncs what was appended (at the end of a run, whatever the policy).
    pub fn sync(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if let Some(w) = inner.writer.as_mut() {
            w.flush()?;
            w.get_ref().sync_data()?;
        }
        inner.unsynced = false;
        Ok(())
    }

    /// Moves every cursor more than `cap` behind forward, counting what it skips.
    fn enforce_cap(&self, inner: &mut Inner) {
        let head = inner.next_id;
        for c in &mut inner.cursors {
            let behind = head.saturating_sub(c.next);
            if behind > self.cap as u64 {
                let skip = behind - self.cap as u64;
                c.next += skip;
                c.stats.dropped.fetch_add(skip, Ordering::Relaxed);
                if !std::mem::replace(&mut c.warned, true) {
                    eprintln!(
                        "otsensor: warning: output {}: more than {} records behind: its oldest are being dropped \
                         (counted in otsensor_output_dropped_total)",
                        c.name, self.cap
                    );
                }
            }
        }
        let oldest = inner.cursors.iter().map(|c| c.next).min().unwrap_or(head);
        while inner.records.front().is_some_and(|r| r.id < oldest) {
            inner.records.pop_front();
        }
    }

    /// Up to `max` records destination `dest` has not acknowledged, waiting up to `wait`
    /// for the first; empty when there are none or the queue is closed.
    pub fn fetch(&self, dest: usize, max: usize, wait: Duration) -> Vec<Record> {
        let deadline = Instant::now() + wait;
        // Senders come here at least every `wait`: the interval policy's sync happens even
        // when nothing more is appended.
        if let Err(e) = self.sync_if_due() {
            eprintln!("otsensor: error: output queue: {e}");
        }
        let mut inner = self.lock();
        loop {
            let Some(next) = inner.cursors.get(dest).map(|c| c.next) else { return Vec::new() };
            let first = inner.records.front().map_or(inner.next_id, |r| r.id);
            let skip = next.saturating_sub(first) as usize;
            let out: Vec<Record> = inner.records.iter().skip(skip).take(max).cloned().collect();
            if let (Some(c), Some(r)) = (inner.cursors.get(dest), out.first()) {
                c.stats.lag_ms.store(now_ms().saturating_sub(r.enqueued_ms).max(1), Ordering::Relaxed);
            } else if let Some(c) = inner.cursors.get(dest) {
                c.stats.lag_ms.store(0, Ordering::Relaxed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !out.is_empty() || inner.closed || left.is_zero() {
                return out;
            }
            inner = self.ready.wait_timeout(inner, left).map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }

    /// Destination `dest` has delivered every record up to `through`: its cursor moves on
    /// (and is saved), and segments no destination needs any more are deleted.
    pub fn ack(&self, dest: usize, through: u64) -> io::Result<()> {
        let mut inner = self.lock();
        let Some(c) = inner.cursors.get_mut(dest) else { return Ok(()) };
        // Records dropped while they were being sent are already past the cursor.
        let delivered = (through + 1).saturating_sub(c.next);
        if delivered == 0 {
            return Ok(());
        }
        c.next = through + 1;
        c.stats.delivered.fetch_add(delivered, Ordering::Relaxed);
        let (path, next) = (self.dir.join(cursor_file(&c.name)), c.next);
        // Saved without the lock, so that an fsync never holds up `append`; only this
        // destination's sender writes its cursor, so saves cannot cross.
        drop(inner);
        write_cursor(&path, next, self.fsync != Fsync::Never)?;
        self.collect(&mut self.lock())
    }

    /// Drops from memory and disk what every destination is past.
    fn collect(&self, inner: &mut Inner) -> io::Result<()> {
        let oldest = inner.cursors.iter().map(|c| c.next).min().unwrap_or(inner.next_id);
        while inner.records.front().is_some_and(|r| r.id < oldest) {
            inner.records.pop_front();
        }
        // A segment can go when the next one starts at or before the oldest record needed.
        while inner.segments.len() > 1 && inner.segments.get(1).is_some_and(|s| s.first <= oldest) {
            let seg = inner.segments.remove(0);
            fs::remove_file(&seg.path)?;
        }
        // The last segment too, when everything is delivered and it is full (a new one
        // starts with the next record).
        if inner.segment_bytes >= SEGMENT_BYTES && oldest >= inner.next_id {
            if let Some(seg) = inner.segments.pop() {
                inner.writer = None;
                fs::remove_file(&seg.path)?;
            }
        }
        Ok(())
    }

    /// Wakes every sender waiting in [`Queue::fetch`]; later fetches do not wait.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Whether [`Queue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

fn read_cursor(path: &Path) -> io::Result<Option<u64>> {
    let mut b = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut b)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (Some(v), Some(c)) = (b.get(..8), b.get(8..12)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: cursor cut short", path.display())));
    };
    if c != crc32fast::hash(v).to_le_bytes() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: cursor checksum mismatch", path.display()),
        ));
    }
    Ok(v.try_into().ok().map(u64::from_le_bytes))
}

/// Saves a cursor atomically: a temporary file, then a rename.
fn write_cursor(path: &Path, next: u64, sync: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut b = next.to_le_bytes().to_vec();
    b.extend_from_slice(&crc32fast::hash(&next.to_le_bytes()).to_le_bytes());
    let mut f = File::create(&tmp)?;
    f.write_all(&b)?;
    if sync {
        f.sync_data()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("otsensor-queue-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn ids(rs: &[Record]) -> Vec<u64> {
        rs.iter().map(|r| r.id).collect()
    }

    #[test]
    fn each_destination_reads_at_its_own_cursor_and_a_restart_keeps_both() {
        let d = dir("cursors");
        let names = ["a".to_string(), "b".to_string()];
        let q = Queue::open(&d, &names, 100, Fsync::Always).expect("open");
        for i in 0..5 {
            q.append(Topic::Alerts, format!("{{\"n\":{i}}}").as_bytes()).expect("append");
        }
        assert_eq!(ids(&q.fetch(0, 10, Duration::ZERO)), [1, 2, 3, 4, 5]);
        q.ack(0, 3).expect("ack");
        assert_eq!(ids(&q.fetch(0, 10, Duration::ZERO)), [4, 5]);
        assert_eq!(ids(&q.fetch(1, 2, Duration::ZERO)), [1, 2]);
        drop(q);
        let q = Queue::open(&d, &names, 100, Fsync::Always).expect("reopen");
        assert_eq!(ids(&q.fetch(0, 10, Duration::ZERO)), [4, 5], "a goes on after what it acknowledged");
        let b = q.fetch(1, 10, Duration::ZERO);
        assert_eq!(ids(&b), [1, 2, 3, 4, 5], "b acknowledged nothing");
        assert_eq!(&*b[2].payload, b"{\"n\":2}");
        q.append(Topic::Stats, b"{}").expect("append after a restart");
        assert_eq!(q.fetch(1, 10, Duration::ZERO).last().map(|r| (r.id, r.topic)), Some((6, Topic::Stats)));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_destination_past_the_cap_loses_its_oldest_records_and_counts_them_exactly() {
        let d = dir("cap");
        let names = ["slow".to_string(), "fast".to_string()];
        let q = Queue::open(&d, &names, 3, Fsync::Never).expect("open");
        for i in 0..10u64 {
            q.append(Topic::Alerts, b"x").expect("append");
            q.ack(1, i + 1).expect("the fast one keeps up");
        }
        let stats = q.stats(0).expect("stats");
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 7);
        assert_eq!(ids(&q.fetch(0, 10, Duration::ZERO)), [8, 9, 10], "the newest three are kept");
        assert_eq!(q.stats(1).expect("stats").dropped.load(Ordering::Relaxed), 0);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_whole_record() {
        let d = dir("torn");
        let names = ["a".to_string()];
        let q = Queue::open(&d, &names, 100, Fsync::Always).expect("open");
        for _ in 0..3 {
            q.append(Topic::Alerts, b"{\"alert\":true}").expect("append");
        }
        drop(q);
        let seg = d.join(format!("seg-{:020}.log", 1));
        let len = fs::metadata(&seg).expect("segment").len();
        OpenOptions::new().write(true).open(&seg).expect("open").set_len(len - 5).expect("cut");
        let q = Queue::open(&d, &names, 100, Fsync::Always).expect("reopen");
        assert_eq!(ids(&q.fetch(0, 10, Duration::ZERO)), [1, 2]);
        q.append(Topic::Alerts, b"{}").expect("append");
        assert_eq!(ids(&q.fetch(0, 10, Duration::ZERO)), [1, 2, 3], "the torn record's number is reused");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn numbers_go_on_after_every_segment_was_delivered_and_deleted() {
        let d = dir("reuse");
        let names = ["a".to_string()];
        let q = Queue::open(&d, &names, 10_000, Fsync::Never).expect("open");
        let big = vec![b'x'; 600_000];
        for _ in 0..2 {
            q.append(Topic::Alerts, &big).expect("append");
        }
        q.ack(0, 2).expect("ack");
        drop(q);
        let q = Queue::open(&d, &names, 10_000, Fsync::Never).expect("reopen");
        q.append(Topic::Alerts, b"{}").expect("append");
        assert_eq!(ids(&q.fetch(0, 10, Duration::ZERO)), [3], "not 1: the cursor is at 3");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn delivered_segments_are_deleted() {
        let d = dir("segments");
        let names = ["a".to_string()];
        let q = Queue::open(&d, &names, 10_000, Fsync::Never).expect("open");
        let big = vec![b'x'; 100_000];
        for _ in 0..25 {
            q.append(Topic::Alerts, &big).expect("append");
        }
        let segs = || {
            fs::read_dir(&d)
                .expect("dir")
                .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("seg-")))
                .count()
        };
        assert!(segs() >= 3, "{} segments", segs());
        q.ack(0, 25).expect("ack");
        assert!(segs() <= 1, "{} segments left", segs());
        let _ = fs::remove_dir_all(&d);
    }
}
