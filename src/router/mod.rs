//! The local router: Heroku's HTTP routing in front of the `web` instances (SPEC §6).
//!
//! Interface used by the rest of hlocal (the router issue fills in the body):
//! - [`bind`] binds the public port on IPv4 and IPv6 loopback, before anything starts;
//! - [`serve`] accepts connections until its task is aborted, routing to the `up`
//!   backends published by the supervisor in a `watch` channel, and logging each request
//!   as a [`crate::output::RouterLog`].

pub mod pool;

use std::time::Duration;

use tokio::sync::watch;

use crate::error::Error;
use crate::output::LogSender;
pub use pool::{Backend, Backends, Balance};

#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The public port (`-p`): what clients connect to, and `X-Forwarded-Port`.
    pub port: u16,
    /// H12 after this long without a response byte; H20 after this long waiting for a
    /// web instance to come up.
    pub request_timeout: Duration,
    pub balance: Balance,
}

/// The bound listening sockets, bound synchronously so a busy port is an input error.
#[derive(Debug)]
pub struct Listeners {
    pub sockets: Vec<std::net::TcpListener>,
}

/// Binds `127.0.0.1:port` and `[::1]:port` (the latter only where IPv6 exists).
pub fn bind(port: u16) -> Result<Listeners, Error> {
    let _ = port;
    Err(Error::input("the router is not built yet"))
}

/// Serves until the task is aborted.
pub async fn serve(
    listeners: Listeners,
    config: RouterConfig,
    backends: watch::Receiver<Backends>,
    log: LogSender,
) {
    let _ = (listeners, config, backends, log);
}
