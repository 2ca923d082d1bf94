//! Accepted connections: the accept loop, hyper's HTTP/1.1 server on each connection
//! (keep-alive, the request limits hyper enforces itself), and the connection task, which
//! stops reading requests while the worker's log batch is full (`batch`).
//!
//! The task takes the socket back from hyper whenever it can: after a `101`, to bridge
//! it to the backend, and after a moment without requests, to *park* it: an idle
//! keep-alive connection then costs a socket and this task, not hyper's buffers (16 KiB
//! and more), which is what keeps 1,000 open browser connections within a few MiB.
//! hyper is handed the socket again when the client next sends something.
//! A response whose last bytes still wait for a slow client to make room is not idle:
//! hyper would hand back the socket without them (`rewind::WriteBlocked` tells).
//!
//! Every task here lives in a `JoinSet` owned by its parent, so aborting `serve` ends
//! every connection. What happens to each request is `service`'s business.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::Router;
use super::body::RouterBody;
use super::client_conn::ClientConn;
use super::clients::Admitted;
use super::forward;
use super::front_h1::{self, PARK_AFTER, Round};
use super::headers;
use super::rewind::{Rewind, WriteBlocked};
use super::service;
use crate::sys;

/// hyper rejects a request with more headers than this with a 431 before the router
/// sees it; up to it, the router applies Heroku's limit of 1000 itself and answers 400
///. Each parse allocates room for this many headers, so it stays modest.
const PARSED_HEADERS: usize = 2048;
/// After a failed `accept` (out of file descriptors, typically), wait before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// hyper's server settings. No timer: the header timeout is `drive`'s (hyper's own arms
/// and cancels a boxed timer for every request).
pub(crate) fn http_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    // hyper's default buffer (~400 KiB) would refuse heads Heroku's limits allow.
    builder
        .max_headers(PARSED_HEADERS)
        .max_buf_size(headers::MAX_HEAD);
    builder
}

pub(crate) fn listener(socket: std::net::TcpListener) -> io::Result<TcpListener> {
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket)
}

/// Accepts until aborted; each connection runs in a task of this loop's `JoinSet`.
pub(crate) async fn accept(listener: TcpListener, router: Arc<Router>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Refused (closed) only when every connection is busy.
                    if let Some(place) = router.clients.admit() {
                        let router = Arc::clone(&router);
                        connections.spawn(connection(stream, peer, router, place));
                    }
                }
                // No file descriptors left: an idle connection makes room, else pause so
                // EMFILE cannot spin. A connection reset before it was accepted: nothing
                // to report.
                Err(e) if sys::is_out_of_files(&e) && router.clients.evict_oldest() => {
                    tokio::task::yield_now().await;
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The service hyper calls. Its future is boxed because taking the socket back from
/// hyper (`poll_without_shutdown`) needs an `Unpin` one; hyper boxes it anyway.
#[derive(Clone)]
struct Handler(Arc<ClientConn>);

type Reply = Pin<Box<dyn Future<Output = Result<Response<RouterBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<RouterBody>;
    type Error = Infallible;
    type Future = Reply;

    fn call(&self, req: Request<Incoming>) -> Reply {
        let ctx = Arc::clone(&self.0);
        Box::pin(async move { Ok(service::handle(ctx, req.map(Some)).await) })
    }
}

type Http = http1::Connection<TokioIo<Rewind>, Handler>;

/// How a round of hyper serving the socket ended.
enum Ended {
    /// The connection failed (the client left mid-request, a write failed): done.
    Failed,
    /// hyper finished cleanly: the client closed, or a `101` was sent, or hyper was
    /// asked to let go because the connection sat idle (`parked`).
    Finished { parked: bool },
}

/// What woke the connection's task.
enum Step {
    Ended(hyper::Result<()>),
    /// The worker's log lines wait for the printer: serve nothing more until they left.
    Backlog,
    Idle,
}

/// One client connection, from accept to close (or to the end of its upgrade bridge);
/// it holds its `place` among the worker's connections until then.
async fn connection(stream: TcpStream, peer: SocketAddr, router: Arc<Router>, _place: Admitted) {
    // Nagle would hold small responses back for the client's delayed ACK.
    let _ = stream.set_nodelay(true);
    let client = headers::ip_value(headers::client_ip(peer));
    let handler = Handler(Arc::new(ClientConn::new(Arc::clone(&router), client)));
    let mut socket = Rewind::new(stream);
    let blocked = socket.write_blocked();
    loop {
        // Parked: nothing of hyper's exists until the client sends (or closes, or the
        // connection is evicted to make room for a new one).
        if !socket.has_unread() && !router.clients.idle_until_readable(&socket.stream).await {
            return;
        }
        match front_h1::serve(&mut socket, &handler.0).await {
            Round::Parked => continue,
            Round::Closed => return,
            Round::Hyper => {}
        }
        // Boxed, as the bridge below: a task is allocated at the size of its largest
        // state, so these rare paths' futures would otherwise be part of every
        // connection's task, plain requests only or not.
        let released = Box::pin(hyper_round(socket, &handler, &blocked)).await;
        let bridge = handler.0.take_bridge();
        socket = match (released, bridge) {
            (Some((client, _)), Some(bridge)) => {
                return Box::pin(forward::bridge(client, bridge)).await;
            }
            (Some((socket, true)), None) => socket,
            _ => return,
        };
    }
}

/// Serves the connection with hyper until it ends or lets go of the socket: the socket
/// back (with what hyper read and did not use), and whether it was parked.
async fn hyper_round(
    socket: Rewind,
    handler: &Handler,
    blocked: &WriteBlocked,
) -> Option<(Rewind, bool)> {
    let mut http = handler
        .0
        .router
        .http
        .serve_connection(TokioIo::new(socket), handler.clone());
    match drive(&mut http, &handler.0, blocked).await {
        Ended::Finished { parked } => {
            let parts = http.into_parts();
            let mut socket = parts.io.into_inner();
            socket.unread(parts.read_buf);
            Some((socket, parked))
        }
        Ended::Failed => None,
    }
}

/// Runs hyper on the connection until the client leaves or hyper lets go of the socket:
/// after a `101`, or when asked to because the connection sat idle. While the printer is
/// behind, the client is slowed down rather than its log lines buffered without bound.
///
/// The header timeout: a connection that has waited `header_timeout` for a request head
/// (from its unparking byte, or from the end of its last request and the client taking
/// all of its response) is closed without an answer, whether nothing came or a head a
/// byte at a time. Checked on the idle ticks, so it is up to one tick late; a request in
/// progress is the request timeout's business.
async fn drive(http: &mut Http, ctx: &ClientConn, blocked: &WriteBlocked) -> Ended {
    let now = tokio::time::Instant::now();
    let mut idle = tokio::time::interval_at(now + PARK_AFTER, PARK_AFTER);
    let begun = ctx.requests();
    let mut seen = begun;
    let mut waiting_since = now;
    let mut parking = false;
    loop {
        let step = poll_fn(|cx| {
            if ctx.router.logs.is_full() {
                return Poll::Ready(Step::Backlog);
            }
            if let Poll::Ready(done) = http.poll_without_shutdown(cx) {
                return Poll::Ready(Step::Ended(done));
            }
            // A request in progress keeps the ticks going even while parking (hyper may
            // still take one it was reading): `forward::answer` relies on them.
            match parking && ctx.is_idle() {
                false => idle.poll_tick(cx).map(|_| Step::Idle),
                true => Poll::Pending,
            }
        })
        .await;
        match step {
            Step::Ended(Ok(())) => return Ended::Finished { parked: parking },
            Step::Ended(Err(_)) => return Ended::Failed,
            Step::Backlog => ctx.router.logs.room().await,
            Step::Idle => {
                let now = ctx.requests();
                if now != seen || !ctx.is_idle() || blocked.is_blocked() {
                    waiting_since = tokio::time::Instant::now();
                } else if waiting_since.elapsed() >= ctx.router.config.header_timeout {
                    return Ended::Failed;
                }
                // Parks only after this round served something and then nothing new:
                // hyper answers a request it is still reading with `Connection: close`.
                // Never while the client is slow to take the response's last bytes:
                // hyper would let go of the socket without writing them (only its
                // `poll_shutdown` flushes), and the client would wait for them forever.
                if now == seen && now > begun && ctx.is_idle() && !blocked.is_blocked() {
                    Pin::new(&mut *http).graceful_shutdown();
                    parking = true;
                }
                seen = now;
            }
        }
    }
}
