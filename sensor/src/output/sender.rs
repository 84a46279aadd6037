//! One thread per destination: it reads the queue at its cursor, delivers a batch, and
//! acknowledges it; on failure it counts a retry, backs off and reads the batch again from the
//! queue (so records the cap dropped meanwhile are not sent). Syslog and CEF receivers are
//! reached here; Kafka in [`super::kafka`].

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::dest::{SiemFormat, Transport};
use super::queue::{DestStats, Queue, Record, Topic};
use super::siem::{self, Origin};

/// Records per batch.
const BATCH: usize = 256;
/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Connecting and writing give up after this.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Delivers batches to one destination.
pub(crate) trait Deliver: Send {
    /// Delivers every record of `batch`, or fails; after a failure any of them may or may
    /// not have arrived (they are sent again: at-least-once).
    fn deliver(&mut self, batch: &[Record], abort: &AtomicBool) -> io::Result<()>;
}

/// What a sender thread needs.
pub(crate) struct SenderCtx {
    pub(crate) name: String,
    pub(crate) index: usize,
    pub(crate) queue: Arc<Queue>,
    pub(crate) stats: Arc<DestStats>,
    pub(crate) abort: Arc<AtomicBool>,
}

/// Sleeps `d`, waking early when `abort` is set.
pub(crate) fn nap(d: Duration, abort: &AtomicBool) {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() && !abort.load(Ordering::Relaxed) {
        std::thread::sleep(left.min(step));
        left = left.saturating_sub(step);
    }
}

/// The sender loop: until the queue is closed and this destination has everything, or
/// `abort`.
pub(crate) fn run(ctx: SenderCtx, mut d: Box<dyn Deliver>) {
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    while !ctx.abort.load(Ordering::Relaxed) {
        let batch = ctx.queue.fetch(ctx.index, BATCH, Duration::from_millis(200));
        let Some(last) = batch.last().map(|r| r.id) else {
            if ctx.queue.is_closed() && ctx.queue.backlog(ctx.index) == 0 {
                return;
            }
            continue;
        };
        match d.deliver(&batch, &ctx.abort) {
            Ok(()) => {
                if failing {
                    eprintln!("otsensor: output {}: delivering again", ctx.name);
                    failing = false;
                }
                backoff = MIN_BACKOFF;
                if let Err(e) = ctx.queue.ack(ctx.index, last) {
                    eprintln!("otsensor: error: output {}: saving its cursor: {e}", ctx.name);
                }
            }
            Err(e) => {
                ctx.stats.retried.fetch_add(1, Ordering::Relaxed);
                if !failing {
                    eprintln!("otsensor: warning: output {}: {e}; retrying (the records stay queued)", ctx.name);
                    failing = true;
                }
                nap(backoff, &ctx.abort);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
}

/// A syslog or CEF receiver.
pub(crate) struct Siem {
    pub(crate) format: SiemFormat,
    pub(crate) transport: Transport,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) origin: Origin,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
}

impl Siem {
    /// A receiver, not connected yet.
    pub(crate) fn new(
        format: SiemFormat,
        transport: Transport,
        host: String,
        port: u16,
        origin: Origin,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        Siem { format, transport, host, port, origin, tls, conn: None }
    }

    fn connect(&self) -> io::Result<Conn> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", self.host)))?;
        if self.transport == Transport::Udp {
            let local = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let s = UdpSocket::bind(local)?;
            s.connect(addr)?;
            return Ok(Conn::Udp(s));
        }
        let tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_nodelay(true)?;
        match (&self.tls, self.transport) {
            (Some(config), Transport::Tls) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                let conn = rustls::ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
                let mut s = rustls::StreamOwned::new(conn, tcp);
                // The handshake now, so that a bad certificate is reported as such.
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Ok(Conn::Tls(Box::new(s)))
            }
            (None, Transport::Tls) => Err(io::Error::other("TLS output without a TLS configuration")),
            _ => Ok(Conn::Tcp(tcp)),
        }
    }

    fn message(&self, r: &Record) -> Option<String> {
        // Syslog and CEF carry alerts only; asset and traffic records are Kafka's.
        if r.topic != Topic::Alerts {
            return None;
        }
        let alert: serde_json::Value = serde_json::from_slice(&r.payload).ok()?;
        Some(match self.format {
            SiemFormat::Syslog => siem::syslog(&alert, &r.payload, &self.origin, r.id),
            SiemFormat::Cef => siem::cef(&alert, &self.origin, r.id),
        })
    }
}

/// Whether the receiver closed the connection: syslog receivers never send, so a readable
/// end of stream means it went away (a write would still succeed once, and be lost).
fn closed(conn: &mut Conn) -> bool {
    let mut byte = [0u8; 1];
    let result = match conn {
        Conn::Udp(_) => return false,
        Conn::Tcp(s) => {
            if s.set_nonblocking(true).is_err() {
                return true;
            }
            let r = s.peek(&mut byte);
            let _ = s.set_nonblocking(false);
            r
        }
        Conn::Tls(s) => {
            if s.sock.set_nonblocking(true).is_err() {
                return true;
            }
            let r = s.read(&mut byte);
            let _ = s.sock.set_nonblocking(false);
            r
        }
    };
    match result {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

impl Deliver for Siem {
    fn deliver(&mut self, batch: &[Record], _abort: &AtomicBool) -> io::Result<()> {
        let messages: Vec<String> = batch.iter().filter_map(|r| self.message(r)).collect();
        if messages.is_empty() {
            return Ok(());
        }
        if self.conn.as_mut().is_some_and(closed) {
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        let mut conn = conn;
        let sent = send(&mut conn, &messages);
        if sent.is_ok() {
            self.conn = Some(conn);
        }
        sent
    }
}

/// The largest syslog datagram sent: what IPv4 UDP can carry. A longer message is cut (at
/// a character boundary) rather than refused for ever, which would stall the destination.
const MAX_DATAGRAM: usize = 65_507;

fn udp_datagram(m: &str) -> &[u8] {
    let mut end = m.len().min(MAX_DATAGRAM);
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    m.as_bytes().get(..end).unwrap_or_default()
}

fn send(conn: &mut Conn, messages: &[String]) -> io::Result<()> {
    match conn {
        Conn::Udp(s) => {
            for m in messages {
                s.send(udp_datagram(m))?;
            }
            Ok(())
        }
        Conn::Tcp(s) => {
            let bytes: Vec<u8> = messages.iter().flat_map(|m| siem::octet_counted(m)).collect();
            s.write_all(&bytes)?;
            s.flush()
        }
        Conn::Tls(s) => {
            let bytes: Vec<u8> = messages.iter().flat_map(|m| siem::octet_counted(m)).collect();
            s.write_all(&bytes)?;
            s.flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_too_long_for_udp_is_cut_at_a_character() {
        let long = "é".repeat(40_000);
        let d = udp_datagram(&long);
        assert_eq!(d.len(), 65_506);
        assert!(std::str::from_utf8(d).is_ok());
        assert_eq!(udp_datagram("short"), b"short");
    }
}
