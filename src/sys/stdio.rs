//! hlocal's own stdout: writing to it whatever mode it was inherited in, and knowing which
//! files it (and stderr) point to, so the watcher does not take hlocal's output for a change.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{SFlag, fstat};

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

/// A file by device and inode: the portable way to tell that two names (or an open
/// descriptor and a name) are the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
}

/// The regular files hlocal's stdout and stderr write to (`hlocal start -w > out.txt`);
/// terminals and pipes are not files a watcher could see.
pub fn own_output_files() -> Vec<FileIdentity> {
    let mut files = Vec::new();
    for stat in [fstat(io::stdout().as_fd()), fstat(io::stderr().as_fd())]
        .into_iter()
        .flatten()
    {
        let is_file = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
        // Field widths differ between platforms (u32 device numbers on macOS).
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        let identity = FileIdentity {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
        };
        if is_file && !files.contains(&identity) {
            files.push(identity);
        }
    }
    files
}

/// The identity of the file at `path`, if it exists.
pub fn identity_of(path: &Path) -> Option<FileIdentity> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}
