//! TCP options std and tokio do not set.

use tokio::net::TcpStream;

/// Sends an ACK the kernel is delaying now, and leaves delayed-ACK mode for a while
/// (Linux `TCP_QUICKACK`, which does not stay on by itself). Elsewhere: nothing.
#[cfg(target_os = "linux")]
pub fn quick_ack(stream: &TcpStream) {
    // Best effort: a socket that refuses only keeps the kernel's usual ACK timing.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
pub fn quick_ack(_stream: &TcpStream) {}
