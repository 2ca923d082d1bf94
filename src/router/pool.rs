//! What the supervisor tells the router: which `web` instances are `up`, and, when none
//! is, whether one is on its way (hold the request) or the app crashed (H10) or there
//! are no web processes at all (H14).

use std::net::SocketAddr;
use std::sync::Arc;

/// `--balance`: Heroku's router picks a dyno at random; round-robin is more predictable
/// locally, so it is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    #[default]
    RoundRobin,
    Random,
}

/// One `up` web instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `web.1`, for the `dyno=` field.
    pub name: Arc<str>,
    /// Where it listens (IPv4 or IPv6 loopback, as detected when it bound).
    pub addr: SocketAddr,
    /// Distinguishes two runs of the same instance (a restart, or preboot's overlap), so
    /// pooled connections to an old run are not reused for a new one.
    pub generation: u64,
}

/// Snapshot published by the supervisor on every change of a web instance's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backends {
    /// Instances ready for traffic, in instance order.
    pub up: Vec<Backend>,
    /// Some web instance is starting or waiting to restart: hold requests (then H20).
    pub starting: bool,
    /// Every web instance crashed and none will restart: H10.
    pub crashed: bool,
}
