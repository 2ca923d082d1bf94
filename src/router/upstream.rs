//! Keep-alive HTTP/1.1 connections to backends: connect (TCP_NODELAY), hyper's client
//! handshake, and a small pool of idle connections keyed by instance *and* generation,
//! so a restarted instance never receives a request on its predecessor's connection.
//!
//! Each connection is driven by its own task (hyper's `Connection` future, with upgrades
//! so WebSockets can be bridged); the pool holds only the sending halves. A connection
//! leaves the pool when checked out and comes back only after a response ended cleanly
//! (`body::Exchange::finish`), so one in trouble is simply dropped, which closes it.
//! Which backend to use is `pool`'s decision.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::ReqBody;
use super::pool::Backend;

/// Idle connections kept in all (each holds hyper's buffers, ~16 KiB): enough for the
/// backends of a 128-connection load to stay warm; past that the oldest idle one closes.
const MAX_IDLE: usize = 128;

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

/// What a request on a connection tells the forwarding code about it.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    /// The request body has not been sent in full yet.
    pub(crate) body_pending: AtomicBool,
}

/// One connection to a backend, ready for a request.
pub(crate) struct Conn {
    pub(crate) sender: SendRequest<ReqBody>,
    pub(crate) wire: Arc<Wire>,
    /// Taken from the pool rather than just made: it may have been closed meanwhile.
    pub(crate) reused: bool,
}

#[derive(Default)]
pub(crate) struct Upstream {
    idle: Mutex<Vec<(Key, Conn)>>,
}

impl Upstream {
    /// The most recently used idle connection to `key` that can take a request now.
    /// Connections the backend has closed are discarded on the way.
    pub(crate) fn checkout(&self, key: Key) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let (k, conn) = &idle[i];
            if conn.sender.is_closed() {
                idle.swap_remove(i);
            } else if *k == key && conn.sender.is_ready() {
                let (_, mut conn) = idle.swap_remove(i);
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection whose response ended cleanly.
    pub(crate) fn checkin(&self, key: Key, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push((key, conn));
    }

    /// A new connection to `backend`, its hyper client task spawned.
    pub(crate) async fn connect(backend: &Backend) -> io::Result<Conn> {
        let stream = TcpStream::connect(backend.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        // Ends when the backend closes, when the sender is dropped while idle, or when a
        // request in flight is abandoned (hyper closes the connection then).
        tokio::spawn(async move {
            let _closed = connection.with_upgrades().await;
        });
        Ok(Conn {
            sender,
            wire: Arc::default(),
            reused: false,
        })
    }
}
