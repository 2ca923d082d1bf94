//! The local router: Heroku's HTTP routing in front of the `web` instances.
//!
//! Interface used by the rest of hlocal:
//! - [`bind`] binds the public port on IPv4 and IPv6 loopback, before anything starts;
//! - [`serve`] accepts connections until its task is aborted, routing to the `up`
//!   backends published by the supervisor in a `watch` channel, and logging each request
//!   as a [`crate::output::RouterLog`].
//!
//! Inside, the routing decision and the proxy engine are kept apart (pingora's
//! `upstream_peer` vs. the proxy phases): `balancer` decides which instance, `conn_pool` owns
//! backend connections, `forward` moves requests and responses, `server` runs accepted
//! connections on the router's own threads (`workers`), within a cap that evicts idle
//! ones first (`clients`), `service` ties one request together, `client_conn` is a client
//! connection's shared state; `headers` and `codes` are pure.
//! Nothing outside this module imports hyper.

mod backend_h1;
mod balancer;
mod batch;
mod body;
mod client_conn;
mod clients;
mod codes;
mod conn_pool;
mod forward;
mod front_h1;
mod headers;
mod rewind;
mod server;
mod service;
mod workers;

#[cfg(test)]
mod tests;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::options::Balance;
use crate::output::{Level, LogSender};
pub(crate) use balancer::Picker;
pub use balancer::{Backend, Backends};
use batch::LogBatch;
use clients::{Clients, WorkerClients};
use conn_pool::{ConnPool, Stalls};

#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The public port (`-p`): what clients connect to, and `X-Forwarded-Port`.
    pub port: u16,
    /// H12 after this long without a response byte; H20 after this long waiting for a
    /// web instance to come up.
    pub request_timeout: Duration,
    /// A connection whose request head takes longer than this to arrive is closed.
    pub header_timeout: Duration,
    pub balance: Balance,
}

/// The bound listening sockets, bound synchronously so a busy port is an input error.
#[derive(Debug)]
pub struct Listeners {
    pub sockets: Vec<std::net::TcpListener>,
}

#[cfg(test)]
impl Listeners {
    /// The port actually bound (the tests bind port 0).
    pub fn port(&self) -> Option<u16> {
        self.sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .map(|a| a.port())
    }
}

/// Pending connections the kernel queues per listener; std's 128 drops SYNs when a
/// browser or a benchmark opens hundreds of connections at once.
const BACKLOG: i32 = 1024;
/// Port 0 picks a free IPv4 port that may be taken on IPv6: try again this many times.
const BIND_ATTEMPTS: usize = 16;

/// Binds `127.0.0.1:port` and `[::1]:port` (the latter only where IPv6 exists).
pub fn bind(port: u16) -> Result<Listeners, Error> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let v4_listener = listen(v4).map_err(|e| bind_error(port, v4, &e))?;
        let chosen = v4_listener.local_addr().map_or(port, |a| a.port());
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, chosen));
        match listen_v6(v6) {
            Ok(Some(v6_listener)) => {
                return Ok(Listeners {
                    sockets: vec![v4_listener, v6_listener],
                });
            }
            Ok(None) => {
                return Ok(Listeners {
                    sockets: vec![v4_listener],
                });
            }
            Err(e) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(bind_error(port, v6, &e)),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse));
    Err(bind_error(
        port,
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        &e,
    ))
}

fn bind_error(port: u16, addr: SocketAddr, e: &io::Error) -> Error {
    Error::startup(
        format!("cannot listen on port {port} ({addr})"),
        e.to_string(),
    )
}

/// `Ok(None)`: this host has no IPv6 (no IPv6 sockets, or no `::1`).
fn listen_v6(addr: SocketAddr) -> io::Result<Option<std::net::TcpListener>> {
    let Ok(socket) = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)) else {
        return Ok(None);
    };
    socket.set_only_v6(true)?;
    match bind_and_listen(socket, addr) {
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => Ok(None),
        other => other.map(Some),
    }
}

fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    bind_and_listen(socket, addr)
}

/// socket2 creates sockets close-on-exec, so app processes never inherit the port.
fn bind_and_listen(socket: Socket, addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    // As std does for listeners: rebinding works while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves until the task is aborted (which stops every connection with it), on the
/// router's own worker threads (`workers`).
pub async fn serve(
    listeners: Listeners,
    config: RouterConfig,
    backends: watch::Receiver<Backends>,
    log: LogSender,
) {
    workers::run(listeners.sockets, config, backends, log).await;
}

/// What every worker shares: the picker, so round-robin is one rotation across all of
/// them; news of stalled requests, so each closes its idle connections to a backend
/// that serves one connection at a time (`conn_pool`); and the client connections'
/// count and idle list, so the cap is the router's, not a worker's, and the oldest
/// idle connection of all makes room.
#[derive(Clone)]
pub(crate) struct Shared {
    picker: Arc<Picker>,
    stalls: Stalls,
    clients: Arc<Clients>,
}

impl Shared {
    /// `client_cap`: the client connections all workers together may hold.
    pub(crate) fn new(balance: Balance, client_cap: usize) -> Shared {
        Shared {
            picker: Arc::new(Picker::new(balance)),
            stalls: Stalls::default(),
            clients: Arc::new(Clients::new(client_cap)),
        }
    }
}

/// Serves on the calling runtime: what each worker thread runs.
pub(crate) async fn serve_here(
    sockets: Vec<std::net::TcpListener>,
    config: RouterConfig,
    backends: watch::Receiver<Backends>,
    shared: Shared,
    log: LogSender,
) {
    let router = Arc::new(Router::new(config, backends, shared));
    let mut accepting = JoinSet::new();
    for socket in sockets {
        match server::listener(socket) {
            Ok(listener) => {
                accepting.spawn(server::accept(listener, Arc::clone(&router)));
            }
            Err(e) => {
                log.message_at(Level::Error, None, format!("router: {e}"))
                    .await
            }
        }
    }
    let printing = router.logs.send_all(&log);
    let tending = router.conn_pool.tend();
    let accepted_all = async { while accepting.join_next().await.is_some() {} };
    // The batch sender and the pool's tending never end by themselves; serving ends when
    // every listener has.
    tokio::select! {
        () = printing => {}
        () = tending => {}
        () = accepted_all => {}
    }
}

/// What every connection shares.
pub(crate) struct Router {
    config: RouterConfig,
    backends: watch::Receiver<Backends>,
    picker: Arc<Picker>,
    conn_pool: ConnPool,
    /// `X-Forwarded-Port`, made once.
    forwarded_port: HeaderValue,
    http: http1::Builder,
    /// This worker's log lines on their way to the printer.
    logs: LogBatch,
    clients: WorkerClients,
}

impl Router {
    fn new(config: RouterConfig, backends: watch::Receiver<Backends>, shared: Shared) -> Router {
        Router {
            picker: shared.picker,
            forwarded_port: HeaderValue::from(config.port),
            http: server::http_builder(),
            config,
            backends,
            conn_pool: ConnPool::new(shared.stalls),
            clients: shared.clients.join(),
            logs: LogBatch::default(),
        }
    }
}
