//! Files only the current user may use: the control socket (mode 0600), its fallback
//! directory (0700), and the check that a peer on the socket is the same user.

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
