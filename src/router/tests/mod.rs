//! End-to-end tests of the router: `serve` on an ephemeral port (IPv4 and IPv6) in front
//! of in-process backends published through a `watch` channel, with the log channel
//! read back. Each file covers one concern; `support` is the rig.

mod bench;
mod errors;
mod keepalive;
mod limits;
mod routing;
mod streaming;
mod support;
