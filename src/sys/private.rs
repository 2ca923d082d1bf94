//! Files only the current user may use: the control socket (mode 0600), its fallback
//! directory (0700), and the check that a peer on the socket is the same user.

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::Uid;
use tokio::net::UnixStream;

/// `$TMPDIR/hlocal-UID`: where sockets go whose app root cannot hold one.
pub fn private_temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("hlocal-{}", Uid::current()))
}

/// Creates `dir` (mode 0700) if missing; refuses one owned by someone else, since
/// whoever owns it could replace the socket inside.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, Permissions::from_mode(0o700)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir)?;
            if meta.uid() != Uid::current().as_raw() || !meta.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "exists and is not a directory of this user",
                ));
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Removes the socket at `path`, left by an hlocal that is gone; nothing there is fine.
/// Anything else at `path` (a file of the user's, a link) is kept, and is the error.
pub fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "something other than a socket is there; hlocal leaves it alone",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Read and write for the owner only.
pub fn restrict_to_owner(path: &Path) -> io::Result<()> {
    fs::set_permissions(path, Permissions::from_mode(0o600))
}

/// Whether the process at the other end of `stream` runs as the current user.
pub fn peer_is_owner(stream: &UnixStream) -> bool {
    stream
        .peer_cred()
        .is_ok_and(|cred| cred.uid() == Uid::current().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_socket_is_removed_as_stale() {
        let dir = std::env::temp_dir().join(format!("hlocal-stale-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("created");
        let file = dir.join("notes.txt");
        fs::write(&file, "mine").expect("written");
        assert!(remove_stale_socket(&file).is_err());
        assert_eq!(fs::read_to_string(&file).expect("kept"), "mine");
        let socket = dir.join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&socket).expect("bound"));
        remove_stale_socket(&socket).expect("removed");
        assert!(!socket.exists());
        remove_stale_socket(&socket).expect("nothing there is fine");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_private_dir_is_created_0700_and_reused() {
        let base = std::env::temp_dir().join(format!("hlocal-private-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        create_private_dir(&base).expect("created");
        let mode = fs::metadata(&base).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        create_private_dir(&base).expect("reused");
        let _ = fs::remove_dir_all(&base);
    }
}
