//! Keep-alive HTTP/1.1 connections to backends: connect (TCP_NODELAY, and TCP_QUICKACK
//! where needed), hyper's client handshake, and a small pool of idle connections keyed by
//! instance *and* generation, so a restarted instance never receives a request on its
//! predecessor's connection.
//!
//! Each connection is driven by its own task (hyper's `Connection` future, with upgrades
//! so WebSockets can be bridged); the pool holds only the sending halves. A connection
//! leaves the pool when checked out and comes back only after a response ended cleanly
//! (`body::Exchange::finish`), so one in trouble is simply dropped, which closes it.
//! Which backend to use is `balancer`'s decision. [`ReqBody`] is what a backend connection
//! sends: the client's body, passed through while the connection's [`Wire`] notes whether
//! it is still being sent (H18 when the backend leaves before it is).
//!
//! Single-threaded backends (`python -m http.server` with HTTP/1.1, WEBrick) serve one
//! connection at a time: an idle pooled connection occupies their only thread, and a
//! request on any other connection waits for it to close. So idle connections close
//! after [`IDLE_TIMEOUT`], and a request that waits [`STALL`] for its answer closes the
//! idle connections to its backend in every worker ([`Stalls`]) unless the backend
//! answered other requests meanwhile: a stuck backend gets its thread back, a busy one
//! keeps its warm connections.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::backend_h1::RawConn;
use super::balancer::Backend;
use crate::sys;

/// Idle connections kept in all; past that the oldest idle one closes. A pool holds at
/// most what its load had in flight at once (then `IDLE_TIMEOUT` empties it), so this
/// only bounds a burst: at 128, a steady load of 256 connections closed and reopened
/// about one backend connection per 130 requests (its handshakes and the ACKs of each
/// new connection's first answers: 6 % of the router's CPU per request). The router's
/// connections hold no buffer while idle; hyper's hold ~16 KiB.
const MAX_IDLE: usize = 1024;
/// An idle connection closes after this long unused: long enough to serve a page's
/// burst of requests warm, short enough that a single-threaded backend is not held long.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// A request still without an answer after this long may be queued behind an idle
/// connection of a single-threaded backend: the idle ones to its backend close (again
/// every `STALL` while it waits).
pub(crate) const STALL: Duration = Duration::from_millis(100);

/// Which run of which instance a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    addr: SocketAddr,
    generation: u64,
}

impl Key {
    pub(crate) fn of(backend: &Backend) -> Key {
        Key {
            addr: backend.addr,
            generation: backend.generation,
        }
    }
}

/// Backends with a stalled request, shared by every worker: each closes its own idle
/// connections to them.
#[derive(Clone)]
pub(crate) struct Stalls(Arc<watch::Sender<Option<Key>>>);

impl Default for Stalls {
    fn default() -> Stalls {
        Stalls(Arc::new(watch::Sender::new(None)))
    }
}

impl Stalls {
    pub(crate) fn report(&self, key: Key) {
        self.0.send_replace(Some(key));
    }
}

/// What a request on a connection tells the forwarding code about it.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    /// The request body has not been sent in full yet.
    pub(crate) body_pending: AtomicBool,
}

/// One connection to a backend, ready for a request.
pub(crate) struct BackendConn {
    pub(crate) link: Link,
    /// Taken from the pool rather than just made: it may have been closed meanwhile.
    pub(crate) reused: bool,
}

/// Who speaks HTTP on a backend connection.
pub(crate) enum Link {
    /// The router itself, for requests without a body or upgrade (`backend_h1`).
    Raw(RawConn),
    /// hyper's client, since a request with a body or an upgrade needed it.
    Hyper(HyperLink),
}

pub(crate) struct HyperLink {
    pub(crate) sender: SendRequest<ReqBody>,
    pub(crate) wire: Arc<Wire>,
}

impl BackendConn {
    /// A connection the router has just given back after a clean response.
    pub(crate) fn returned(conn: RawConn) -> BackendConn {
        BackendConn {
            link: Link::Raw(conn),
            reused: false,
        }
    }

    fn is_closed(&self) -> bool {
        match &self.link {
            Link::Raw(conn) => conn.is_closed(),
            Link::Hyper(hyper) => hyper.sender.is_closed(),
        }
    }

    fn is_ready(&self) -> bool {
        match &self.link {
            Link::Raw(_) => true,
            Link::Hyper(hyper) => hyper.sender.is_ready(),
        }
    }
}

impl Link {
    /// hyper's client on this connection, handing it over first if the router had it.
    pub(crate) async fn into_hyper(self) -> io::Result<HyperLink> {
        match self {
            Link::Hyper(hyper) => Ok(hyper),
            Link::Raw(conn) => handshake(conn.into_io()).await,
        }
    }
}

struct Idle {
    key: Key,
    conn: BackendConn,
    since: Instant,
}

pub(crate) struct ConnPool {
    idle: Mutex<VecDeque<Idle>>,
    /// When each backend last answered a request of this worker (a response head).
    heard: Mutex<Vec<(Key, Instant)>>,
    /// The pool went from empty to not: `tend` starts watching for idle timeouts.
    filled: Notify,
    stalls: Stalls,
}

impl ConnPool {
    pub(crate) fn new(stalls: Stalls) -> ConnPool {
        ConnPool {
            idle: Mutex::default(),
            heard: Mutex::default(),
            filled: Notify::new(),
            stalls,
        }
    }

    fn idle(&self) -> MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection to `key` that can take a request now.
    /// Connections the backend has closed are discarded on the way.
    pub(crate) fn checkout(&self, key: Key) -> Option<BackendConn> {
        let mut idle = self.idle();
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let entry = &idle[i];
            if entry.conn.is_closed() {
                idle.swap_remove_back(i);
            } else if entry.key == key && entry.conn.is_ready() {
                return idle.swap_remove_back(i).map(|Idle { mut conn, .. }| {
                    conn.reused = true;
                    conn
                });
            }
        }
        None
    }

    /// Returns a connection whose response ended cleanly.
    pub(crate) fn checkin(&self, key: Key, conn: BackendConn) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.is_empty() {
            self.filled.notify_one();
        }
        if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        let since = Instant::now();
        idle.push_back(Idle { key, conn, since });
    }

    fn heard(&self) -> MutexGuard<'_, Vec<(Key, Instant)>> {
        self.heard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `key` answered a request: it is not stuck behind an idle connection.
    pub(crate) fn heard_from(&self, key: Key) {
        let now = Instant::now();
        let mut heard = self.heard();
        match heard.iter_mut().find(|(k, _)| *k == key) {
            Some((_, at)) => *at = now,
            None => {
                // Keys carry the run's generation: forget the old ones, or every restart
                // of a web instance would leave an entry behind.
                heard.retain(|(_, at)| now.duration_since(*at) < STALL);
                heard.push((key, now));
            }
        }
    }

    /// A request to `key` has waited [`STALL`] for its answer: unless the backend answered
    /// other requests meanwhile (half a `STALL`), tells every worker to close their idle
    /// connections to it. A backend that answers in parallel but is merely busy (under a
    /// benchmark's load, many requests wait that long) thus keeps its warm connections;
    /// flushing them made every worker reconnect and slowed it further.
    pub(crate) fn stalled(&self, key: Key) {
        let heard = self.heard();
        let lately = heard
            .iter()
            .any(|&(k, at)| k == key && at.elapsed() < STALL / 2);
        drop(heard);
        if !lately {
            self.stalls.report(key);
        }
    }

    /// Closes idle connections as they time out or as requests stall, until aborted.
    pub(crate) async fn tend(&self) {
        let mut stalls = self.stalls.0.subscribe();
        // Made once: a stream of stall reports must not keep postponing the sweep.
        let mut sweep = tokio::time::interval(IDLE_TIMEOUT / 2);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let pooled = !self.idle().is_empty();
            tokio::select! {
                changed = stalls.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if let Some(key) = *stalls.borrow_and_update() {
                        self.idle().retain(|i| i.key != key);
                    }
                }
                _ = sweep.tick(), if pooled => {
                    let now = Instant::now();
                    self.idle().retain(|i| now.duration_since(i.since) < IDLE_TIMEOUT);
                    // Old runs' keys would otherwise pile up restart after restart.
                    self.heard().retain(|&(_, at)| now.duration_since(at) < IDLE_TIMEOUT);
                }
                () = self.filled.notified(), if !pooled => {}
            }
        }
    }

    /// A new connection to `backend`, spoken on by the router until a request needs
    /// hyper's client.
    pub(crate) async fn connect(backend: &Backend) -> io::Result<BackendConn> {
        let stream = TcpStream::connect(backend.addr).await?;
        stream.set_nodelay(true)?;
        Ok(BackendConn {
            link: Link::Raw(RawConn::new(QuickAck::new(stream))),
            reused: false,
        })
    }
}

/// hyper's client on `io`, its connection task spawned.
async fn handshake(io: QuickAck) -> io::Result<HyperLink> {
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(io::Error::other)?;
    // Ends when the backend closes, when the sender is dropped while idle, or when a
    // request in flight is abandoned (hyper closes the connection then).
    tokio::spawn(async move {
        let _closed = connection.with_upgrades().await;
    });
    Ok(HyperLink {
        sender,
        wire: Arc::default(),
    })
}

/// A backend socket that acknowledges what it reads at once, as long as its backend may
/// need that. A backend that writes a response's head and body separately with Nagle on
/// (Python's `http.server`, WEBrick) holds the body until the head is acknowledged, and
/// on a reused connection Linux would delay that ACK by 40 ms: every request would take
/// 40 ms. Such a backend's answers come in more than one read. So every read is
/// acknowledged until the connection has brought [`PROBATION`] answers each in a single
/// read (by then Linux has switched to delayed ACKs, and a splitting backend would have
/// split one), and for good once any answer came in pieces: a backend that answers in
/// one write (nginx, most servers) then costs no system call per request.
pub(crate) struct QuickAck {
    stream: TcpStream,
    /// Reads that brought data since the last write (the last request).
    reads: u8,
    /// Answers that came in a single read so far (up to [`PROBATION`]).
    whole: u8,
    /// An answer came in pieces: acknowledge every read from now on.
    pieces: bool,
}

/// Answers in one read each after which a connection's reads are no longer acknowledged.
const PROBATION: u8 = 4;

impl QuickAck {
    fn new(stream: TcpStream) -> QuickAck {
        QuickAck {
            stream,
            reads: 0,
            whole: 0,
            pieces: false,
        }
    }

    /// Readable now (data or the backend's close), without a system call.
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_read_ready(cx)
    }

    fn read_some(&mut self) {
        self.reads = self.reads.saturating_add(1);
        self.pieces |= self.reads > 1;
        if self.pieces || self.whole < PROBATION {
            sys::quick_ack(&self.stream);
        }
    }

    fn wrote(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(1..))) {
            if self.reads == 1 {
                self.whole = self.whole.saturating_add(1);
            }
            self.reads = 0;
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.read_some();
        }
        read
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(&written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(&written);
        written
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

/// A client's request body on its way to a backend.
pub(crate) struct ReqBody {
    /// `None`: no body (a request replayed on a new connection, see `forward::send`).
    inner: Option<Incoming>,
    wire: Option<Arc<Wire>>,
}

impl ReqBody {
    /// The client's body, if the request has one it is still to read.
    pub(crate) fn new(inner: Option<Incoming>) -> ReqBody {
        ReqBody { inner, wire: None }
    }

    pub(crate) fn empty() -> ReqBody {
        ReqBody {
            inner: None,
            wire: None,
        }
    }

    /// Ties the body to the connection it is sent on, which then knows whether the body
    /// is still being sent.
    pub(crate) fn send_on(&mut self, wire: &Arc<Wire>) {
        let pending = !self.is_end_stream();
        wire.body_pending.store(pending, Ordering::Relaxed);
        self.wire = pending.then(|| Arc::clone(wire));
    }

    fn sent(&mut self) {
        if let Some(wire) = self.wire.take() {
            wire.body_pending.store(false, Ordering::Relaxed);
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(&mut *inner).poll_frame(cx));
        if frame.is_none() || inner.is_end_stream() {
            this.sent();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A load of more than the old limit of 128 keeps every connection it needed.
    #[tokio::test]
    async fn the_pool_keeps_what_a_busy_load_needed() {
        const BUSY: usize = 300;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("UNWRAP: bind loopback");
        let addr = listener.local_addr().expect("UNWRAP: bound");
        let key = Key::of(&Backend {
            name: Arc::from("web.1"),
            addr,
            generation: 1,
        });
        let pool = ConnPool::new(Stalls::default());
        let mut peers = Vec::new();
        for _ in 0..BUSY {
            let stream = TcpStream::connect(addr).await.expect("UNWRAP: connect");
            peers.push(listener.accept().await.expect("UNWRAP: accept"));
            let conn = RawConn::new(QuickAck::new(stream));
            pool.checkin(key, BackendConn::returned(conn));
        }
        let kept = std::iter::from_fn(|| pool.checkout(key)).count();
        assert_eq!(kept, BUSY);
    }
}
