//! hlocal's own stdout: writing to it whatever mode it was inherited in, and knowing which
//! files it (and stderr) point to, so the watcher does not take hlocal's output for a change.

use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Writes all of `bytes` to stdout, bypassing std's buffer. An `O_NONBLOCK` stdout (left
/// so by another program, or by a CI runner) is not a closed one: on `EAGAIN` this waits
/// until it takes more, so a line is never torn. Errors mean stdout is gone (`EPIPE`).
pub fn write_stdout(mut bytes: &[u8]) -> io::Result<()> {
    let stdout = io::stdout();
    let fd = stdout.as_fd();
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => wait_writable(fd)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn wait_writable(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::NONE) {
        // POLLERR / POLLHUP come back as ready: the next write reports the error.
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
