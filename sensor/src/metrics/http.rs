//! The `/metrics` and `/healthz` HTTP endpoint: a small HTTP/1.1 server written by hand over
//! tokio's `TcpListener`, on its own thread with a current-thread runtime.
//!
//! It answers one request per connection and closes it (`Connection: close`):
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /metrics` | 200, the [`Render`] closure's page as `text/plain; version=0.0.4` |
//! | `HEAD /metrics` | 200 with the same content type, without running the closure |
//! | `GET`/`HEAD /healthz` | 200 `ok` when [`Health`] says so, else 503 `unhealthy` |
//! | other path | 404 |
//! | other method on those paths | 405 with `Allow: GET, HEAD` |
//! | head not complete within 5 s | 408, closed |
//! | head over 8 KiB | 431, closed |
//! | not HTTP/1.x, malformed | 505 or 400 |
//!
//! Query strings are ignored. At most 64 connections are open at once; more wait in the
//! kernel's accept queue. The render closure runs only for a complete `GET /metrics` head, on
//! a blocking thread (it sums counters that other threads write); if it panics the answer is
//! 500 and the server goes on. No input makes the server panic: parsing works on the bytes
//! read, and every wait has a limit.
//!
//! ```no_run
//! use std::sync::Arc;
//! use otsensor::metrics::http::MetricsServer;
//!
//! let server = MetricsServer::start(
//!     "127.0.0.1:9464".parse().unwrap(),
//!     Arc::new(|| "# no metrics yet\n".to_string()),
//!     Arc::new(|| true),
//! )?;
//! println!("metrics on http://{}/metrics", server.local_addr());
//! server.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;

/// Builds the `/metrics` body at scrape time.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Answers `/healthz`: 200 `ok\n` when true, 503 `unhealthy\n` when false.
pub type Health = Arc<dyn Fn() -> bool + Send + Sync>;

/// The content type of the text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// How long the shutdown waits for a render closure still running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// The pause after a failed `accept` (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The server's limits; [`MetricsServer::start`] uses [`Limits::default`].
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// The bearer token `/metrics` requires, if any.
    pub(crate) token: Option<Arc<str>>,
    /// The longest request head (request line and headers) read; longer ones get 431.
    pub(crate) max_head_bytes: usize,
    /// The time a client has to send its whole head; slower ones get 408.
    pub(crate) head_timeout: Duration,
    /// The time a client has to take the whole answer.
    pub(crate) write_timeout: Duration,
    /// After answering, how long unread request bytes are drained before closing, so the
    /// close is not a reset that destroys the answer in flight (a 431 to a client still
    /// sending).
    pub(crate) linger: Duration,
    /// Connections served at once.
    pub(crate) max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            token: None,
            max_head_bytes: 8 * 1024,
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(1),
            max_connections: 64,
        }
    }
}

/// The running endpoint: its thread, its address, and the handle that stops it.
///
/// Dropping it without [`shutdown`](Self::shutdown) also stops the server, without waiting
/// for the thread.
#[must_use = "dropping the MetricsServer stops it"]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Binds `addr` (port 0 allowed) and serves on its own thread with a current-thread tokio
    /// runtime. Binding errors come back here, naming the address.
    pub fn start(addr: SocketAddr, render: Render, health: Health) -> io::Result<MetricsServer> {
        Self::start_with_token(addr, render, health, None)
    }

    /// [`start`](Self::start), answering `/metrics` only to requests that carry
    /// `Authorization: Bearer TOKEN` when `token` is set (401 otherwise); `/healthz` stays
    /// open for liveness probes and says nothing but ok or unhealthy.
    pub fn start_with_token(
        addr: SocketAddr,
        render: Render,
        health: Health,
        token: Option<String>,
    ) -> io::Result<MetricsServer> {
        let limits = Limits { token: token.map(|t| Arc::from(t.as_str())), ..Limits::default() };
        Self::start_with_limits(addr, render, health, limits)
    }

    /// [`start`](Self::start) with other limits (short timeouts for tests).
    pub(crate) fn start_with_limits(
        addr: SocketAddr,
        render: Render,
        health: Health,
        limits: Limits,
    ) -> io::Result<MetricsServer> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("metrics endpoint: cannot listen on {addr}: {e}"));
        // Everything that can fail happens here, on the caller's thread.
        let std_listener = std::net::TcpListener::bind(addr).map_err(named)?;
        std_listener.set_nonblocking(true).map_err(named)?;
        let local = std_listener.local_addr().map_err(named)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            // Renders and health checks; scrapes are rare, a few threads are plenty.
            .max_blocking_threads(4)
            .thread_name("otsensor-metrics-blocking")
            .build()?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(std_listener).map_err(named)?
        };
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new().name("otsensor-metrics".into()).spawn(move || {
            runtime.block_on(serve(listener, stopped, render, health, limits));
            // Cancels open connections; waits a little for a render still running.
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
        })?;
        Ok(MetricsServer { addr: local, stop, thread })
    }

    /// The address the server listens on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends the thread, waits for it.
    ///
    /// Connections being served are closed; a render closure still running gets a second to
    /// finish before the thread ends without it.
    pub fn shutdown(self) {
        // An error means the thread is already gone; joining tells the same.
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// `fut`, unless a stop comes first (`None`). Once this returns `None`, `stop` must not be
/// polled again.
async fn until_stopped<F: Future>(stop: &mut oneshot::Receiver<()>, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        // A dropped sender (the MetricsServer dropped) stops the server too.
        if Pin::new(&mut *stop).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

async fn serve(listener: TcpListener, mut stop: oneshot::Receiver<()>, render: Render, health: Health, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        // A slot first: connections past the limit wait in the accept queue, unread.
        let Some(Ok(permit)) = until_stopped(&mut stop, slots.clone().acquire_owned()).await else {
            return;
        };
        match until_stopped(&mut stop, listener.accept()).await {
            None => return,
            Some(Ok((stream, _peer))) => {
                tokio::spawn(connection(stream, permit, render.clone(), health.clone(), limits.clone()));
            }
            Some(Err(_)) => {
                // EMFILE and the like: wait rather than spin.
                drop(permit);
                if until_stopped(&mut stop, tokio::time::sleep(ACCEPT_BACKOFF)).await.is_none() {
                    return;
                }
            }
        }
    }
}

/// Serves one connection: reads one request head, answers, closes.
async fn connection(
    mut stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    render: Render,
    health: Health,
    limits: Limits,
) {
    let _ = stream.set_nodelay(true);
    let head = timeout(limits.head_timeout, read_head(&mut stream, limits.max_head_bytes)).await;
    let answer = match head {
        Err(_elapsed) => error_answer(408),
        Ok(Err(HeadError::TooLarge)) => error_answer(431),
        // The client went away before a whole head: nobody to answer.
        Ok(Err(HeadError::Closed)) => return,
        Ok(Ok(head)) => match parse_head(&head) {
            Ok(request) if !authorized(&head, &request, limits.token.as_deref()) => unauthorized(),
            Ok(request) => answer(route(&request), &render, &health).await,
            Err(status) => error_answer(status),
        },
    };
    if timeout(limits.write_timeout, stream.write_all(&answer)).await.is_ok_and(|written| written.is_ok()) {
        let _ = timeout(limits.write_timeout, stream.shutdown()).await;
        let _ = timeout(limits.linger, drain(&mut stream)).await;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    /// No empty line within the limit.
    TooLarge,
    /// End of stream or a read error before the head was complete.
    Closed,
}

/// Reads until the empty line that ends a request head; returns the head without it.
/// Bytes after it (a body) are left for [`drain`].
async fn read_head(stream: &mut TcpStream, max: usize) -> Result<Vec<u8>, HeadError> {
    let mut buf = vec![0u8; max];
    let mut len = 0;
    loop {
        let Some(free) = buf.get_mut(len..).filter(|free| !free.is_empty()) else {
            return Err(HeadError::TooLarge);
        };
        let n = match stream.read(free).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(n) => n,
        };
        // The end may straddle two reads: look again at the last bytes of the previous one.
        let from = len.saturating_sub(2);
        len += n;
        if let Some(end) = head_end(buf.get(from..len).unwrap_or_default()) {
            buf.truncate(from + end);
            return Ok(buf);
        }
    }
}

/// Where the first empty line starts (the offset of the `\n` ending the last header line),
/// accepting bare `\n` line ends as RFC 9112 section 2.2 allows.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().enumerate().find_map(|(i, &b)| {
        let rest = bytes.get(i + 1..)?;
        (b == b'\n' && (rest.starts_with(b"\n") || rest.starts_with(b"\r\n"))).then_some(i)
    })
}

/// Reads and discards what the client still sends, until it closes (bounded by the caller's
/// timeout).
async fn drain(stream: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Other,
}

#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    method: Method,
    /// The target without its query string.
    path: &'a str,
}

/// Parses a request head (request line and header lines, without the empty line). Header
/// values are not read, only checked to be headers. The error is the status to answer.
fn parse_head(head: &[u8]) -> Result<Request<'_>, u16> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let request_line = std::str::from_utf8(request_line).map_err(|_| 400u16)?;
    let mut words = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(400);
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(if version.starts_with("HTTP/") { 505 } else { 400 });
    }
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(400);
    }
    // Origin form only (`/path?query`): absolute form is for proxies, `*` for OPTIONS.
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(400);
    }
    for line in lines {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        // A line without a colon, a name with spaces, or an obsolete folded line.
        if name.len() == line.len() || name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err(400);
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    Ok(Request { method, path })
}

/// RFC 9110 section 5.6.2 `tchar`: the characters of methods and header names.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `GET /metrics`: the only route that runs the render closure.
    Metrics,
    /// `HEAD /metrics`.
    MetricsHead,
    /// `/healthz`, with or without the body.
    Health {
        send_body: bool,
    },
    NotFound,
    MethodNotAllowed,
}

fn route(request: &Request<'_>) -> Route {
    match (request.path, request.method) {
        ("/metrics", Method::Get) => Route::Metrics,
        ("/metrics", Method::Head) => Route::MetricsHead,
        ("/healthz", Method::Get) => Route::Health { send_body: true },
        ("/healthz", Method::Head) => Route::Health { send_body: false },
        ("/metrics" | "/healthz", Method::Other) => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// The whole answer, head and body, in one buffer (one write, no Nagle delay between two).
async fn answer(route: Route, render: &Render, health: &Health) -> Vec<u8> {
    match route {
        Route::Metrics => {
            let render = Arc::clone(render);
            match tokio::task::spawn_blocking(move || render()).await {
                Ok(page) => response(200, METRICS_CONTENT_TYPE, page.as_bytes(), true, ""),
                Err(_panicked) => error_answer(500),
            }
        }
        // RFC 9110 section 9.3.2 lets HEAD omit Content-Length; giving it would need a render.
        Route::MetricsHead => {
            let mut head = status_line(200);
            head.extend_from_slice(
                format!("Content-Type: {METRICS_CONTENT_TYPE}\r\nConnection: close\r\n\r\n").as_bytes(),
            );
            head
        }
        Route::Health { send_body } => {
            let health = Arc::clone(health);
            match tokio::task::spawn_blocking(move || health()).await {
                Ok(true) => response(200, TEXT_CONTENT_TYPE, b"ok\n", send_body, ""),
                Ok(false) => response(503, TEXT_CONTENT_TYPE, b"unhealthy\n", send_body, ""),
                Err(_panicked) => error_answer(500),
            }
        }
        Route::NotFound => error_answer(404),
        Route::MethodNotAllowed => error_answer(405),
    }
}

/// Whether `request` may be answered: anything but `/metrics` is; `/metrics` when no token
/// is set or the head carries `Authorization: Bearer TOKEN` (compared in constant time).
fn authorized(head: &[u8], request: &Request<'_>, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    if request.path != "/metrics" {
        return true;
    }
    let want = format!("bearer {token}");
    head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).skip(1).any(|line| {
        let Some(colon) = line.iter().position(|&b| b == b':') else { return false };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        name.eq_ignore_ascii_case(b"authorization") && value.len() == want.len() && {
            // The scheme is case-insensitive (RFC 9110 section 11.1); the token is not.
            let (scheme, tok) = value.split_at(7);
            let want_tok = want.as_bytes().get(7..).unwrap_or_default();
            let diff = tok.iter().zip(want_tok).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            scheme.eq_ignore_ascii_case(b"bearer ") & (diff == 0)
        }
    })
}

fn unauthorized() -> Vec<u8> {
    response(401, TEXT_CONTENT_TYPE, b"unauthorized\n", true, "WWW-Authenticate: Bearer\r\n")
}

fn error_answer(status: u16) -> Vec<u8> {
    let allow = if status == 405 { "Allow: GET, HEAD\r\n" } else { "" };
    let body = format!("{}\n", reason(status).to_ascii_lowercase());
    response(status, TEXT_CONTENT_TYPE, body.as_bytes(), true, allow)
}

fn response(status: u16, content_type: &str, body: &[u8], send_body: bool, extra_headers: &str) -> Vec<u8> {
    let mut out = status_line(status);
    out.reserve(body.len() + 128);
    out.extend_from_slice(
        format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    if send_body {
        out.extend_from_slice(body);
    }
    out
}

fn status_line(status: u16) -> Vec<u8> {
    format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream as StdStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Instant;

    const PAGE: &str = "# HELP otsensor_up_total x\n# TYPE otsensor_up_total counter\notsensor_up_total 1\n";

    /// A server on 127.0.0.1:0 whose render closure counts its runs.
    struct Fixture {
        server: MetricsServer,
        renders: Arc<AtomicUsize>,
        healthy: Arc<AtomicBool>,
    }

    fn quick_limits() -> Limits {
        Limits { head_timeout: Duration::from_millis(300), linger: Duration::from_millis(200), ..Limits::default() }
    }

    fn fixture(limits: Limits) -> Fixture {
        let renders = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let (r, h) = (renders.clone(), healthy.clone());
        let server = MetricsServer::start_with_limits(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(move || {
                r.fetch_add(1, Ordering::SeqCst);
                PAGE.to_string()
            }),
            Arc::new(move || h.load(Ordering::SeqCst)),
            limits,
        )
        .unwrap();
        Fixture { server, renders, healthy }
    }

    fn connect(addr: SocketAddr) -> StdStream {
        let s = StdStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    #[derive(Debug)]
    struct Answer {
        status_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    /// Reads until the server closes and splits the answer.
    fn read_answer(mut s: StdStream) -> Answer {
        let mut raw = vec![];
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_string(), v.to_string())
            })
            .collect();
        Answer { status_line, headers, body: raw[split + 4..].to_vec() }
    }

    fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
        let mut s = connect(addr);
        s.write_all(request).unwrap();
        read_answer(s)
    }

    #[test]
    fn serves_the_render_output_on_get_metrics() {
        let f = fixture(quick_limits());
        let a = exchange(f.server.local_addr(), b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n");
        assert_eq!(a.status_line, "HTTP/1.1 200 OK");
        assert_eq!(a.header("Content-Type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        assert_eq!(a.header("Content-Length"), Some(&*PAGE.len().to_string()));
        assert_eq!(a.header("Connection"), Some("close"));
        assert_eq!(a.body, PAGE.as_bytes());
        assert_eq!(f.renders.load(Ordering::SeqCst), 1);
        // A query string is ignored; bare line feeds and HTTP/1.0 are accepted.
        let a = exchange(f.server.local_addr(), b"GET /metrics?name[]=x HTTP/1.0\nHost: x\n\n");
        assert_eq!(a.status_line, "HTTP/1.1 200 OK");
        assert_eq!(a.body, PAGE.as_bytes());
        assert_eq!(f.renders.load(Ordering::SeqCst), 2);
        f.server.shutdown();
    }

    #[test]
    fn answers_a_head_request_without_rendering() {
        let f = fixture(quick_limits());
        let a = exchange(f.server.local_addr(), b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(a.status_line, "HTTP/1.1 200 OK");
        assert_eq!(a.header("Content-Type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        assert!(a.body.is_empty());
        assert_eq!(f.renders.load(Ordering::SeqCst), 0);
        f.server.shutdown();
    }

    #[test]
    fn healthz_answers_200_or_503_as_health_says() {
        let f = fixture(quick_limits());
        let a = exchange(f.server.local_addr(), b"GET /healthz HTTP/1.1\r\n\r\n");
        assert_eq!(a.status_line, "HTTP/1.1 200 OK");
        assert_eq!(a.body, b"ok\n");
        assert_eq!(a.header("Content-Length"), Some("3"));
        f.healthy.store(false, Ordering::SeqCst);
        let a = exchange(f.server.local_addr(), b"GET /healthz?x HTTP/1.1\r\n\r\n");
        assert_eq!(a.status_line, "HTTP/1.1 503 Service Unavailable");
        assert_eq!(a.body, b"unhealthy\n");
        let a = exchange(f.server.local_addr(), b"HEAD /healthz HTTP/1.1\r\n\r\n");
        assert_eq!(a.status_line, "HTTP/1.1 503 Service Unavailable");
        assert_eq!(a.header("Content-Length"), Some("10"));
        assert!(a.body.is_empty());
        assert_eq!(f.renders.load(Ordering::SeqCst), 0);
        f.server.shutdown();
    }

    #[test]
    fn other_paths_get_404_and_other_methods_405() {
        let f = fixture(quick_limits());
        let addr = f.server.local_addr();
        for (request, status) in [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], "HTTP/1.1 404 Not Found"),
            (b"GET /metrics/ HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
            (b"POST /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
            (b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 405 Method Not Allowed"),
            (b"get /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
            (b"DELETE /healthz HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
        ] {
            let a = exchange(addr, request);
            assert_eq!(a.status_line, status, "{}", String::from_utf8_lossy(request));
            if status.contains("405") {
                assert_eq!(a.header("Allow"), Some("GET, HEAD"));
            }
        }
        assert_eq!(f.renders.load(Ordering::SeqCst), 0);
        f.server.shutdown();
    }

    #[test]
    fn malformed_requests_get_400_or_505_and_never_render() {
        let f = fixture(quick_limits());
        let addr = f.server.local_addr();
        for (request, status) in [
            (&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n"[..], 400), // TLS hello
            (b"GET /metrics\r\n\r\n", 400),
            (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
            (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
            (b"GET http://x/metrics HTTP/1.1\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            (b"GET /met\x01rics HTTP/1.1\r\n\r\n", 400),
        ] {
            let a = exchange(addr, request);
            assert!(
                a.status_line.starts_with(&format!("HTTP/1.1 {status} ")),
                "{:?} -> {}",
                String::from_utf8_lossy(request),
                a.status_line
            );
        }
        // A head cut short by the client gets no answer and no render.
        let mut s = connect(addr);
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = vec![];
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        assert_eq!(f.renders.load(Ordering::SeqCst), 0);
        f.server.shutdown();
    }

    #[test]
    fn a_request_head_over_8_kib_gets_431() {
        let f = fixture(quick_limits());
        let addr = f.server.local_addr();
        // No end in sight, and a complete head just over the limit: both refused.
        let endless = format!("GET /metrics HTTP/1.1\r\nX-Fill: {}", "a".repeat(9000));
        let complete = format!("GET /metrics HTTP/1.1\r\nX-Fill: {}\r\n\r\n", "a".repeat(8 * 1024 - 34));
        assert_eq!(complete.len(), 8 * 1024 + 1);
        for request in [endless, complete] {
            let a = exchange(addr, request.as_bytes());
            assert_eq!(a.status_line, "HTTP/1.1 431 Request Header Fields Too Large");
        }
        // At the limit exactly it is served.
        let fits = format!("GET /metrics HTTP/1.1\r\nX-Fill: {}\r\n\r\n", "a".repeat(8 * 1024 - 35));
        assert_eq!(exchange(addr, fits.as_bytes()).status_line, "HTTP/1.1 200 OK");
        assert_eq!(f.renders.load(Ordering::SeqCst), 1);
        f.server.shutdown();
    }

    #[test]
    fn finds_the_end_of_a_head_split_across_reads() {
        let f = fixture(quick_limits());
        let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        // Every split inside the last header line and the empty line.
        for split in request.len() - 8..request.len() {
            let mut s = connect(f.server.local_addr());
            s.set_nodelay(true).unwrap();
            s.write_all(&request[..split]).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            s.write_all(&request[split..]).unwrap();
            assert_eq!(read_answer(s).status_line, "HTTP/1.1 200 OK", "split at {split}");
        }
        f.server.shutdown();
    }

    #[test]
    fn a_silent_client_is_answered_408_and_closed_after_the_head_timeout() {
        let f = fixture(quick_limits());
        let start = Instant::now();
        let a = read_answer(connect(f.server.local_addr()));
        let took = start.elapsed();
        assert_eq!(a.status_line, "HTTP/1.1 408 Request Timeout");
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "{took:?}");
        f.server.shutdown();
    }

    #[test]
    fn a_client_sending_its_head_byte_by_byte_is_cut_off_at_the_head_timeout() {
        // A long linger, so the bytes still sent after the 408 are drained, not reset.
        let f = fixture(Limits { linger: Duration::from_secs(2), ..quick_limits() });
        let mut s = connect(f.server.local_addr());
        let start = Instant::now();
        // A byte every 60 ms for 600 ms: each read is quick, the whole head is not.
        for &b in &b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"[..10] {
            s.write_all(&[b]).unwrap();
            std::thread::sleep(Duration::from_millis(60));
        }
        let a = read_answer(s);
        assert_eq!(a.status_line, "HTTP/1.1 408 Request Timeout");
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        assert_eq!(f.renders.load(Ordering::SeqCst), 0);
        f.server.shutdown();
    }

    #[test]
    fn connections_past_the_limit_wait_for_a_free_slot() {
        let f = fixture(Limits { max_connections: 2, head_timeout: Duration::from_secs(5), ..quick_limits() });
        let addr = f.server.local_addr();
        let idle: Vec<_> = (0..2).map(|_| connect(addr)).collect();
        std::thread::sleep(Duration::from_millis(100));
        let mut third = connect(addr);
        third.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
        third.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut byte = [0u8; 1];
        let waited = third.read(&mut byte).unwrap_err();
        assert!(matches!(waited.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "{waited}");
        drop(idle); // both slots free up
        third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let a = read_answer(third);
        assert_eq!(a.status_line, "HTTP/1.1 200 OK");
        f.server.shutdown();
    }

    #[test]
    fn a_panicking_render_gives_500_and_the_server_goes_on() {
        let server = MetricsServer::start_with_limits(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(|| panic!("render failed (expected by this test)")),
            Arc::new(|| true),
            quick_limits(),
        )
        .unwrap();
        let a = exchange(server.local_addr(), b"GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(a.status_line, "HTTP/1.1 500 Internal Server Error");
        let a = exchange(server.local_addr(), b"GET /healthz HTTP/1.1\r\n\r\n");
        assert_eq!(a.status_line, "HTTP/1.1 200 OK");
        server.shutdown();
    }

    #[test]
    fn shutdown_ends_the_thread_with_a_client_still_connected() {
        let f = fixture(Limits { head_timeout: Duration::from_secs(60), ..quick_limits() });
        let addr = f.server.local_addr();
        let idle = connect(addr);
        std::thread::sleep(Duration::from_millis(100));
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            f.server.shutdown();
            done.send(()).unwrap();
        });
        ended.recv_timeout(Duration::from_secs(5)).expect("shutdown returned");
        // The idle connection was closed and nothing listens any more.
        let mut rest = vec![];
        let _ = (&idle).read_to_end(&mut rest);
        assert!(rest.is_empty());
        assert_eq!(StdStream::connect(addr).unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn binding_a_taken_address_fails_naming_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = MetricsServer::start(addr, Arc::new(String::new), Arc::new(|| true)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn finds_the_end_of_a_head_across_line_end_styles() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n"), Some(15));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(head_end(b"\n"), None);
        assert_eq!(head_end(b""), None);
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics_and_only_get_metrics_renders(
            head in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Ok(request) = parse_head(&head) {
                if route(&request) == Route::Metrics {
                    prop_assert!(head.starts_with(b"GET /metrics"));
                }
            }
            let _ = head_end(&head);
        }

        #[test]
        fn parsing_request_like_text_never_panics(
            method in "(GET|HEAD|POST|[A-Z]{0,3})",
            target in "[ -~]{0,20}",
            version in "HTTP/1\\.[01]|HTTP/2|[a-z]{0,3}",
            headers in proptest::collection::vec("[ -~\t]{0,12}", 0..4),
        ) {
            let head = format!("{method} {target} {version}\r\n{}", headers.join("\r\n"));
            if let Ok(request) = parse_head(head.as_bytes()) {
                prop_assert!(request.path.starts_with('/'));
                if route(&request) == Route::Metrics {
                    prop_assert_eq!(method, "GET");
                    prop_assert!(target == "/metrics" || target.starts_with("/metrics?")
                        || target.starts_with("/metrics#"));
                }
            }
        }
    }

    #[test]
    fn with_a_token_metrics_needs_the_bearer_and_healthz_does_not() {
        let token = "s3cret-token-0123456789";
        let f = fixture(Limits { token: Some(Arc::from(token)), ..quick_limits() });
        let addr = f.server.local_addr();
        let none = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(none.status_line.starts_with("HTTP/1.1 401"), "{}", none.status_line);
        assert_eq!(none.header("WWW-Authenticate"), Some("Bearer"));
        let wrong = exchange(addr, b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret-token-0123456780\r\n\r\n");
        assert!(wrong.status_line.starts_with("HTTP/1.1 401"), "{}", wrong.status_line);
        let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.status_line.starts_with("HTTP/1.1 401"), "{}", head.status_line);
        assert_eq!(f.renders.load(Ordering::SeqCst), 0, "nothing rendered for the unauthorized");
        let right = format!("GET /metrics HTTP/1.1\r\nauthorization: bearer {token}\r\n\r\n");
        let ok = exchange(addr, right.as_bytes());
        assert!(ok.status_line.starts_with("HTTP/1.1 200"), "{}", ok.status_line);
        assert_eq!(ok.body, PAGE.as_bytes());
        let health = exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n");
        assert!(health.status_line.starts_with("HTTP/1.1 200"), "{}", health.status_line);
        f.server.shutdown();
    }
}
