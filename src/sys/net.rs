//! What the router needs of sockets beyond std and tokio: TCP options, and whether an
//! accept failed for want of file descriptors.

use std::io;

use nix::errno::Errno;
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

/// Did this fail for want of file descriptors (the process's or the system's)?
pub fn is_out_of_files(error: &io::Error) -> bool {
    let errno = error.raw_os_error().map(Errno::from_raw);
    matches!(errno, Some(Errno::EMFILE | Errno::ENFILE))
}
