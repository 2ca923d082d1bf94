//! Accepted connections: the accept loop, hyper's HTTP/1.1 server on each connection
//! (keep-alive, upgrades, the request limits hyper enforces itself), and the connection
//! task that forwards the connection's log lines to the printer and, after a `101`,
//! becomes the bridge between client and backend.
//!
//! Every task here lives in a `JoinSet` owned by its parent, so aborting `serve` ends
//! every connection. What happens to each request is `service`'s business.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Router;
use super::forward::{self, Bridge};
use super::headers;
use super::service::{self, ConnCtx, Event};
use crate::output::{LogSender, Record};

/// hyper rejects a request with more headers than this with a 431 before the router
/// sees it; up to it, the router applies Heroku's limit of 1000 itself and answers 400
/// (SPEC §6). Each parse allocates room for this many headers, so it stays modest.
const PARSED_HEADERS: usize = 2048;
/// The largest request head hyper buffers (default ~400 KiB): room for Heroku's limits
/// to be checked (and answered with 400) on heads of up to 1 MiB.
const MAX_HEAD: usize = 1 << 20;
/// After a failed `accept` (out of file descriptors, typically), wait before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) fn http_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.max_headers(PARSED_HEADERS).max_buf_size(MAX_HEAD);
    builder
}

pub(crate) fn listener(socket: std::net::TcpListener) -> io::Result<TcpListener> {
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket)
}

/// Accepts until aborted; each connection runs in a task of this loop's `JoinSet`.
pub(crate) async fn accept(listener: TcpListener, router: Arc<Router>, log: LogSender) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, Arc::clone(&router), log.clone()));
                }
                // A connection reset before it was accepted, or no file descriptors
                // left: nothing to report per connection; pause so EMFILE cannot spin.
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One client connection, from accept to close (or to the end of its upgrade bridge).
async fn connection(stream: TcpStream, peer: SocketAddr, router: Arc<Router>, log: LogSender) {
    // Nagle would hold small responses back for the client's delayed ACK.
    let _ = stream.set_nodelay(true);
    let (events, mut queue) = mpsc::unbounded_channel();
    let client = headers::ip_value(headers::client_ip(peer));
    let ctx = Arc::new(ConnCtx::new(Arc::clone(&router), client, events));
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&ctx);
        async move { Ok::<_, Infallible>(service::handle(ctx, req).await) }
    });
    let http = router
        .http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut bridge = drive(http, &mut queue, &log).await;
    // The connection is dropped: requests cut short have queued their H27 lines.
    while let Ok(event) = queue.try_recv() {
        on_event(event, &log, &mut bridge).await;
    }
    if let Some(bridge) = bridge {
        forward::bridge(bridge).await;
    }
}

/// Runs hyper's connection while passing its events on; returns the upgrade to bridge.
async fn drive<C: Future>(
    http: C,
    queue: &mut mpsc::UnboundedReceiver<Event>,
    log: &LogSender,
) -> Option<Bridge> {
    tokio::pin!(http);
    let mut bridge = None;
    loop {
        tokio::select! {
            biased;
            _done = &mut http => return bridge,
            Some(event) = queue.recv() => on_event(event, log, &mut bridge).await,
        }
    }
}

async fn on_event(event: Event, log: &LogSender, bridge: &mut Option<Bridge>) {
    match event {
        Event::Log(line) => log.send(Record::Router(line)).await,
        Event::Upgrade(b) => *bridge = Some(b),
    }
}
