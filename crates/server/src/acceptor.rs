//! The listening socket and its HTTP/1.1 connections, served by hyper with poem's endpoint.
//!
//! Slow clients cannot hold the server: each connection watches what it waits for, from the
//! socket's side, with one timer per connection (nothing per request):
//! - the request line and headers must all arrive within the header timeout of their first byte
//!   (of the connection's opening, for its first request);
//! - while a handler reads a request body, the body must progress within the body timeout, and so
//!   must a response the client is slow to take;
//! - a keep-alive connection between requests is closed after the idle timeout;
//! - a websocket, once upgraded, is none of these: its session pings and bounds its own queue.
//!
//! Past the cap on open connections (websockets included), a new connection is answered at once
//! with a 503 in the SPEC 1 format and closed, never queued. Nagle's algorithm is off on every
//! connection: small answers and websocket frames leave at once instead of waiting for the peer's
//! delayed ACK (up to 40 ms on Linux).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use poem::http::uri::Scheme;
use poem::http::StatusCode;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Request};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};

/// How long a connection may wait for what, and how many may be open.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// The connections open now (websockets included), for the `/metrics` gauge.
#[derive(Clone, Default)]
pub struct OpenConnections(Arc<AtomicUsize>);

impl OpenConnections {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One place of the cap, given back when the connection (or its websocket) ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `ep` on `listener` until `shutdown` completes; then stops accepting, lets the requests
/// in flight finish and closes idle connections, waiting up to `drain` before dropping the rest.
pub async fn serve<E>(
    listener: TcpListener,
    ep: E,
    limits: Limits,
    open: OpenConnections,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    E: Endpoint + 'static,
{
    let ep = Arc::new(ep);
    let refusal = refusal();
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    // Each connection's socket holds a sender, and keeps it after an upgrade, until the socket is
    // dropped: the channel closes when the last socket is gone, websockets included (they close
    // with 1001 on shutdown, which they must be given the time to write).
    let (done_tx, mut done_rx) = mpsc::channel::<Infallible>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or memory: wait instead of spinning on accept.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if open.0.fetch_add(1, Ordering::Relaxed) >= limits.max_connections {
            open.0.fetch_sub(1, Ordering::Relaxed);
            // The answer fits in the empty send buffer: written at once or not at all.
            let _ = stream.try_write(&refusal);
            metrics::counter!("switchboard_connections_refused_total").increment(1);
            continue;
        }
        let slot = Slot(open.0.clone());
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let local = match stream.local_addr() {
            Ok(a) => LocalAddr(a.into()),
            Err(_) => LocalAddr::default(),
        };
        let conn = Arc::new(Conn {
            ep: ep.clone(),
            local,
            remote: RemoteAddr(remote.into()),
            phase: AtomicU8::new(HEADERS),
        });
        let io = Guarded::new(stream, conn.clone(), limits, slot, done_tx.clone());
        tokio::spawn(serve_connection(io, conn, stop_rx.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(Stop::Draining);
    drop(done_tx);
    if tokio::time::timeout(drain, done_rx.recv()).await.is_err() {
        // Past the drain: HTTP connections are dropped at once; a websocket still open has had
        // its time, and goes with the process.
        let _ = stop_tx.send(Stop::Now);
        let _ = tokio::time::timeout(Duration::from_secs(1), done_rx.recv()).await;
    }
}

/// The 503 answered past the cap, in the SPEC 1 format.
fn refusal() -> Vec<u8> {
    use poem_openapi::types::ToJSON;
    let body = switchboard_api::error::ApiError::with_status(
        StatusCode::SERVICE_UNAVAILABLE,
        100,
        "The server has too many open connections; try again later.",
    )
    .body("PRT")
    .to_json_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Running,
    /// Finish the request in flight, then close.
    Draining,
    /// Close now.
    Now,
}

async fn serve_connection<E: Endpoint + 'static>(
    io: Guarded,
    conn: Arc<Conn<E>>,
    mut stop: watch::Receiver<Stop>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let conn = conn.clone();
        // Set before hyper reads on for the body (in the same poll), so that read waits with
        // the body timeout, not with what was set for the headers.
        conn.phase.store(BUSY, Ordering::Relaxed);
        async move {
            let req = Request::from((req, conn.local.clone(), conn.remote.clone(), Scheme::HTTP));
            let resp = conn.ep.get_response(req).await;
            let next = if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                UPGRADED
            } else {
                WAITING
            };
            conn.phase.store(next, Ordering::Relaxed);
            Ok::<_, Infallible>(hyper::Response::from(resp))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No read for end-of-file while a handler runs: a read the connection waits on is then
    // always for the next request or for the body a handler asked for, which is what the timers
    // of `Guarded` tell apart. A handler also finishes when its client leaves.
    builder.half_close(true).header_read_timeout(None);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stop.wait_for(|s| *s != Stop::Running) => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection => {}
        _ = stop.wait_for(|s| *s == Stop::Now) => {}
    }
}

/// What the connection's handler side knows, shared with its socket.
struct Conn<E> {
    ep: Arc<E>,
    local: LocalAddr,
    remote: RemoteAddr,
    /// One of [`WAITING`], [`HEADERS`], [`BUSY`], [`UPGRADED`].
    phase: AtomicU8,
}

/// Between requests: waiting for the first byte of the next one.
const WAITING: u8 = 0;
/// The first bytes of a request came; its headers are not all read.
const HEADERS: u8 = 1;
/// A handler has the request.
const BUSY: u8 = 2;
/// A websocket: no HTTP timeout applies.
const UPGRADED: u8 = 3;

/// What the connection's timer is set for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watch {
    Headers,
    Idle,
    Body,
    Write,
}

impl Watch {
    fn label(self) -> &'static str {
        match self {
            Self::Headers => "headers",
            Self::Idle => "idle",
            Self::Body => "body",
            Self::Write => "write",
        }
    }
}

/// A connection's socket with its timers and its place under the cap.
struct Guarded {
    stream: TcpStream,
    phase: Arc<dyn Phase>,
    timer: Pin<Box<Sleep>>,
    /// What the timer is set for (`None`: to be set at the next wait).
    watch: Option<Watch>,
    /// When the headers of the request being read began (the header timeout counts from it).
    headers_since: Instant,
    /// The last progress of what is watched, when it may move the deadline (body and write).
    progressed: Option<Instant>,
    limits: Limits,
    _slot: Slot,
    /// Held until the socket is dropped, whether served as HTTP or upgraded: the drain waits
    /// for it.
    _drain: mpsc::Sender<Infallible>,
}

/// The phase of a connection, read by its socket (the socket does not know the endpoint type).
trait Phase: Send + Sync {
    fn get(&self) -> u8;
    fn set(&self, phase: u8);
}

impl<E: Send + Sync> Phase for Conn<E> {
    fn get(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }
    fn set(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
    }
}

impl Guarded {
    fn new(
        stream: TcpStream,
        phase: Arc<dyn Phase>,
        limits: Limits,
        slot: Slot,
        drain: mpsc::Sender<Infallible>,
    ) -> Self {
        let now = Instant::now();
        Self {
            stream,
            phase,
            // A new connection has the header timeout for its first request.
            timer: Box::pin(tokio::time::sleep_until(now + limits.header_timeout)),
            watch: Some(Watch::Headers),
            headers_since: now,
            progressed: None,
            limits,
            _slot: slot,
            _drain: drain,
        }
    }

    fn duration(&self, watch: Watch) -> Duration {
        match watch {
            Watch::Headers => self.limits.header_timeout,
            Watch::Idle => self.limits.idle_timeout,
            Watch::Body | Watch::Write => self.limits.body_timeout,
        }
    }

    fn arm(&mut self, watch: Watch) {
        self.watch = Some(watch);
        self.progressed = None;
        let from = match watch {
            Watch::Headers => self.headers_since,
            _ => Instant::now(),
        };
        let deadline = from + self.duration(watch);
        self.timer.as_mut().reset(deadline);
    }

    fn read_progress(&mut self) {
        match self.phase.get() {
            WAITING => {
                // The first bytes of a request: its headers have the header timeout from now.
                // The timer is set only if the connection has to wait for more of them (most
                // requests come whole in one read).
                self.phase.set(HEADERS);
                self.headers_since = Instant::now();
                self.watch = None;
            }
            BUSY if self.watch == Some(Watch::Body) => self.progressed = Some(Instant::now()),
            _ => {}
        }
    }

    fn write_progress(&mut self) {
        if self.watch == Some(Watch::Write) {
            self.progressed = Some(Instant::now());
        }
    }

    /// The socket has nothing to give (or take): sets the timer for what the connection waits
    /// on, and fails the read or write once it has waited too long.
    fn waiting(&mut self, cx: &mut Context<'_>, writing: bool) -> Poll<io::Error> {
        let watch = match (self.phase.get(), writing) {
            (UPGRADED, _) => return Poll::Pending,
            (_, true) => Watch::Write,
            (WAITING, false) => Watch::Idle,
            (HEADERS, false) => Watch::Headers,
            (_, false) => Watch::Body,
        };
        if self.watch != Some(watch) {
            self.arm(watch);
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some(at) = self.progressed.take() {
                let deadline = at + self.duration(watch);
                if deadline > Instant::now() {
                    self.timer.as_mut().reset(deadline);
                    continue;
                }
            }
            timed_out(watch);
            return Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client was silent too long ({})", watch.label()),
            ));
        }
    }
}

fn timed_out(watch: Watch) {
    match watch {
        Watch::Headers => {
            metrics::counter!("switchboard_connections_timed_out_total", "wait" => "headers")
                .increment(1)
        }
        Watch::Idle => {
            metrics::counter!("switchboard_connections_timed_out_total", "wait" => "idle")
                .increment(1)
        }
        Watch::Body => {
            metrics::counter!("switchboard_connections_timed_out_total", "wait" => "body")
                .increment(1)
        }
        Watch::Write => {
            metrics::counter!("switchboard_connections_timed_out_total", "wait" => "write")
                .increment(1)
        }
    }
    tracing::debug!(
        wait = watch.label(),
        "connection closed: the client was too slow"
    );
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.read_progress();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.waiting(cx, false).map(Err),
            ready => ready,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.write_progress();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.waiting(cx, true).map(Err),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.write_progress();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.waiting(cx, true).map(Err),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
