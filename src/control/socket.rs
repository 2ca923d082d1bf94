//! Where an app's control socket lives, and claiming it at start.
//!
//! The socket is `.hlocal.sock` in the app root, so two apps in two directories never
//! meet and every client finds it from `-d` alone. `--socket PATH` and `HLOCAL_SOCKET`
//! move it. A root too deep for a unix socket path (the kernel's limit is about 100
//! bytes) or one hlocal cannot write to falls back to a per-user directory under the
//! temporary directory, named after the root, which clients compute the same way.
//!
//! A socket file that exists but refuses connections is left by an hlocal that died
//! (SIGKILL, a reboot): it is replaced without a word. One that answers belongs to a
//! running hlocal: starting is refused, naming its pid. overmind's stale
//! `.overmind.sock` after a crash is the failure this avoids.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::protocol::{Answer, Command, request_line};
use crate::error::Error;
use crate::sys;

/// The socket's name in the app root.
pub const SOCKET_NAME: &str = ".hlocal.sock";
/// Longest socket path used as is: `sun_path` holds 108 bytes on Linux and 104 on macOS,
/// terminator included.
const MAX_SOCKET_PATH: usize = 100;
/// How long a live hlocal has to say who it is before it is named without a pid.
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the socket of the app at `root` is, in the order clients try them: the path
/// given (`--socket`, `HLOCAL_SOCKET`), else `.hlocal.sock` in the root, then the
/// fallback under the temporary directory.
pub fn candidates(root: &Path, given: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = given {
        return vec![path.to_path_buf()];
    }
    let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let in_root = absolute.join(SOCKET_NAME);
    let mut paths = Vec::with_capacity(2);
    if in_root.as_os_str().len() <= MAX_SOCKET_PATH {
        paths.push(in_root);
    }
    paths.push(fallback(&absolute));
    paths
}

/// `$TMPDIR/hlocal-UID/NAME-HASH.sock`: short, per user, and one per app root.
fn fallback(root: &Path) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    root.hash(&mut hasher);
    let name: String = root
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect()
        })
        .unwrap_or_default();
    sys::private_temp_dir().join(format!("{name}-{:016x}.sock", hasher.finish()))
}

/// The socket file of a running `hlocal start`, removed when this is dropped (on every
/// exit hlocal controls; after a SIGKILL the next start finds it stale).
#[derive(Debug)]
pub struct SocketFile {
    pub path: PathBuf,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the first usable candidate, replacing a stale socket; another live hlocal on
/// any candidate is an error naming its pid.
pub async fn claim(root: &Path, given: Option<&Path>) -> Result<(UnixListener, SocketFile), Error> {
    let paths = candidates(root, given);
    for path in &paths {
        refuse_if_live(path).await?;
    }
    let mut last = None;
    for path in paths {
        match bind(&path) {
            Ok(listener) => return Ok((listener, SocketFile { path })),
            Err(e) => last = Some((path, e)),
        }
    }
    let (path, e) = last.unwrap_or_else(|| (PathBuf::new(), io::ErrorKind::NotFound.into()));
    Err(Error::io("cannot create the control socket", &path, e))
}

/// Binds `path` (replacing a stale socket, never anything else) and makes it reachable
/// by its owner only.
fn bind(path: &Path) -> io::Result<UnixListener> {
    if path.parent() == Some(sys::private_temp_dir().as_path()) {
        sys::create_private_dir(&sys::private_temp_dir())?;
    }
    sys::remove_stale_socket(path)?;
    let listener = UnixListener::bind(path)?;
    sys::restrict_to_owner(path)?;
    Ok(listener)
}

/// An error when a running hlocal answers on `path`; nothing when no one does.
async fn refuse_if_live(path: &Path) -> Result<(), Error> {
    let Ok(stream) = UnixStream::connect(path).await else {
        return Ok(());
    };
    let pid = tokio::time::timeout(HELLO_TIMEOUT, hello_pid(stream))
        .await
        .ok()
        .flatten();
    let who = pid.map_or_else(
        || "another hlocal".to_string(),
        |pid| format!("another hlocal (pid {pid})"),
    );
    Err(Error::AlreadyRunning {
        who,
        socket: crate::error::display_path(path),
    })
}

/// The pid a live hlocal gives in answer to `hello`.
async fn hello_pid(stream: UnixStream) -> Option<u64> {
    let (read, mut write) = stream.into_split();
    write
        .write_all(&request_line(0, &Command::Hello))
        .await
        .ok()?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await.ok()?;
    let answer: Answer = serde_json::from_str(&line).ok()?;
    answer.result?.get("pid")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_root_keeps_its_socket_with_a_fallback_after() {
        let paths = candidates(Path::new("/srv/app"), None);
        assert_eq!(paths[0], Path::new("/srv/app/.hlocal.sock"));
        assert_eq!(paths.len(), 2);
        assert!(paths[1].to_string_lossy().ends_with(".sock"));
    }

    #[test]
    fn a_deep_root_uses_the_fallback_only() {
        let deep = format!("/{}", "d".repeat(120));
        let paths = candidates(Path::new(&deep), None);
        assert_eq!(paths.len(), 1);
        assert!(
            paths[0].as_os_str().len() <= MAX_SOCKET_PATH,
            "{:?}",
            paths[0]
        );
    }

    #[test]
    fn the_fallback_is_one_per_root() {
        let a = fallback(Path::new("/srv/one/app"));
        let b = fallback(Path::new("/srv/two/app"));
        assert_ne!(a, b);
        assert_eq!(a, fallback(Path::new("/srv/one/app")));
    }

    #[test]
    fn a_given_path_is_the_only_candidate() {
        let paths = candidates(Path::new("/srv/app"), Some(Path::new("/tmp/x.sock")));
        assert_eq!(paths, vec![PathBuf::from("/tmp/x.sock")]);
    }
}
