//! Pseudo-terminals: a `tty = true` instance runs on a pty of its own, whose master hlocal
//! reads (the log) and writes (`hlocal attach`); and the attach client's side of a
//! terminal (raw mode, its window size, SIGWINCH).
//!
//! The child becomes a session leader (`setsid`) with the pty as its controlling
//! terminal (`TIOCSCTTY`), so its pid is also its process group's id: stopping the group
//! works as without a pty, and job-control signals typed on the pty (Ctrl-C, Ctrl-Z)
//! reach the child's foreground group, never hlocal.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::libc;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, ReadBuf};

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

impl WindowSize {
    /// What a program gets when hlocal has no terminal to copy: the VT100's.
    pub const DEFAULT: WindowSize = WindowSize { rows: 24, cols: 80 };

    fn to_winsize(self) -> libc::winsize {
        libc::winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

/// The size of the terminal on stdout or stderr (the first that is one), else
/// [`WindowSize::DEFAULT`].
pub fn terminal_size() -> WindowSize {
    [io::stdout().as_fd(), io::stderr().as_fd()]
        .into_iter()
        .find_map(size_of)
        .unwrap_or(WindowSize::DEFAULT)
}

/// The size of the terminal on `fd`; `None` when it is not a terminal (or reports 0x0).
fn size_of(fd: std::os::fd::BorrowedFd<'_>) -> Option<WindowSize> {
    let mut size = WindowSize::DEFAULT.to_winsize();
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a
    // live, writable `winsize`; `fd` is borrowed, so it is open for the call.
    let done = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &raw mut size) };
    (done == 0 && size.ws_row > 0 && size.ws_col > 0).then_some(WindowSize {
        rows: size.ws_row,
        cols: size.ws_col,
    })
}

/// The master side of an instance's pty: read for its output, written for its input.
#[derive(Debug)]
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

/// Opens a pty of `size` and makes it `command`'s stdin, stdout, stderr and controlling
/// terminal, in a session of its own. The slave's descriptors live in `command`: drop
/// it once spawned, so that reading the master ends when the child's side closes.
/// Call inside the runtime.
pub fn spawn_on_pty(
    command: &mut tokio::process::Command,
    size: WindowSize,
) -> io::Result<PtyMaster> {
    let pty = nix::pty::openpty(&size.to_winsize(), None)?;
    // openpty has no close-on-exec flag: set it at once so no other child inherits
    // either end (a leaked slave would keep the master from ever reading end-of-file).
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    command
        .stdin(pty.slave.try_clone()?)
        .stdout(pty.slave.try_clone()?)
        .stderr(pty.slave);
    // SAFETY: between fork and exec only `setsid` and `ioctl`, both async-signal-safe;
    // nothing is allocated and no lock is taken. Stdin is the slave by then (std sets up
    // the child's stdio before running `pre_exec` hooks).
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()?;
            if libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY as _, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    set_nonblocking(&pty.master)?;
    // SAFETY: an `OwnedFd` is a valid open descriptor that stays open, and names the
    // same one, for as long as it is owned, here by the `AsyncFd`.
    let fd = unsafe { AsyncFd::register(pty.master) }.map_err(|e| e.into_parts().1)?;
    Ok(PtyMaster { fd })
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

impl PtyMaster {
    /// Sets the terminal's size; the kernel sends SIGWINCH to its foreground group.
    pub fn set_size(&self, size: WindowSize) {
        let size = size.to_winsize();
        // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which points at a
        // live `winsize`; the descriptor is owned by `self`, so it is open. A failure
        // (the child's side closed) leaves nothing to resize.
        unsafe {
            libc::ioctl(
                self.fd.get_ref().as_raw_fd(),
                libc::TIOCSWINSZ,
                &raw const size,
            )
        };
    }

    /// Writes all of `bytes` to the program's input.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), bytes)?)) {
                Ok(written) => bytes = &bytes[written?..],
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// A reader of the program's output; at its end (the child's side closed) it reads
    /// end-of-file.
    pub fn reader(self: &Arc<Self>) -> PtyReader {
        PtyReader(Arc::clone(self))
    }
}

/// [`PtyMaster`]'s output as an [`AsyncRead`].
pub struct PtyReader(Arc<PtyMaster>);

impl AsyncRead for PtyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| read_master(fd.get_ref(), unfilled)) {
                Ok(Ok(read)) => {
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

/// One read of the master. Linux answers EIO once every slave descriptor is closed and
/// what the child wrote was read: that is the end of its output, not an error.
fn read_master(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    match nix::unistd::read(fd, buf) {
        Err(Errno::EIO) => Ok(0),
        result => Ok(result?),
    }
}

/// The caller's terminal in raw mode (every key to the program, no echo, no signals
/// from Ctrl-C) until dropped, which puts the saved settings back.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal.
    pub fn enter() -> io::Result<Option<RawMode>> {
        let stdin = io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return Ok(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw)?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// SIGWINCH, as a stream: the terminal hlocal (or the attach client) runs in was resized.
pub struct WindowChanges(tokio::signal::unix::Signal);

impl WindowChanges {
    pub fn install() -> io::Result<WindowChanges> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(WindowChanges(signal(SignalKind::window_change())?))
    }

    /// The new size of the caller's terminal, once it changes.
    pub async fn next(&mut self) -> Option<WindowSize> {
        self.0.recv().await?;
        Some(terminal_size())
    }
}
