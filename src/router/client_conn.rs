//! One client connection's shared state: the router it belongs to, who the client is,
//! how many of its requests are in flight, and an upgrade waiting to be bridged. The
//! service (`service`), the proxy engine (`forward`), the bodies (`body`) and the
//! connection's task (`server`) all read it; it depends on none of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hyper::header::HeaderValue;
use hyper::upgrade::OnUpgrade;

use super::Router;
use super::codes::{self, Code, Entry};

/// The backend's side of a `101 Switching Protocols`, to be joined to the client's
/// socket once hyper lets go of it (`forward::bridge`).
pub(crate) struct Bridge {
    pub(crate) backend: OnUpgrade,
}

/// Per client connection: the router, who the client is, and a pending upgrade.
pub(crate) struct ClientConn {
    pub(crate) router: Arc<Router>,
    /// The client's address as a header value (`X-Forwarded-For`, `fwd=`).
    client: HeaderValue,
    /// A `101` to bridge once hyper has let go of the client connection. Requests run
    /// inside the connection's task (in hyper's connection), so the task finds it here
    /// when hyper returns: no channel, no extra wake-up.
    bridge: Mutex<Option<Bridge>>,
    /// Requests begun and finished (logged) on this connection: the connection is idle
    /// when they are equal, and may then be parked (`server`).
    begun: AtomicU64,
    finished: AtomicU64,
}

impl ClientConn {
    pub(crate) fn new(router: Arc<Router>, client: HeaderValue) -> ClientConn {
        ClientConn {
            router,
            client,
            bridge: Mutex::default(),
            begun: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        }
    }

    /// The client's address as a header value.
    pub(crate) fn client(&self) -> &HeaderValue {
        &self.client
    }

    fn pending_bridge(&self) -> MutexGuard<'_, Option<Bridge>> {
        self.bridge.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn log(&self, code: Option<Code>, entry: &Entry) {
        self.router.logs.push(codes::fields(code, entry));
    }

    pub(crate) fn bridge(&self, bridge: Bridge) {
        *self.pending_bridge() = Some(bridge);
    }

    /// The upgrade a request left, if any.
    pub(crate) fn take_bridge(&self) -> Option<Bridge> {
        self.pending_bridge().take()
    }

    pub(crate) fn begin(&self) {
        self.begun.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests begun so far.
    pub(crate) fn requests(&self) -> u64 {
        self.begun.load(Ordering::Relaxed)
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.finished.load(Ordering::Relaxed) == self.begun.load(Ordering::Relaxed)
    }
}
