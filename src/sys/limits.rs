//! The open-file limit: raised at start as most servers do, and named when a spawn runs
//! out of file descriptors.

use std::io;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft limit on open files to the hard limit and returns the limit now in
/// force. Shells start programs with a soft limit of 1024 (256 on macOS) whatever the
/// hard limit allows, and each instance costs hlocal a few descriptors.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let target = settable(hard);
    if soft >= target {
        return Ok(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    let _ = SHELL_LIMITS.set((soft, hard));
    Ok(target)
}

/// The limits hlocal was started with, once it raised its own.
static SHELL_LIMITS: OnceLock<(u64, u64)> = OnceLock::new();

/// The app gets the open-file limit of the shell that started hlocal, not hlocal's
/// raised one: a program that closes every descriptor up to the limit, or uses
/// `select`, behaves as it does under foreman.
pub fn keep_shell_limit(command: &mut tokio::process::Command) {
    let Some(&(soft, hard)) = SHELL_LIMITS.get() else {
        return;
    };
    // SAFETY: between fork and exec only `setrlimit`, async-signal-safe, runs; it
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || Ok(setrlimit(Resource::RLIMIT_NOFILE, soft, hard)?));
    }
}

/// macOS refuses a soft limit above `OPEN_MAX` (10240 in `<sys/syslimits.h>`, not in
/// libc) even when the hard limit is unlimited (setrlimit(2)).
#[cfg(target_os = "macos")]
fn settable(hard: u64) -> u64 {
    const OPEN_MAX: u64 = 10240;
    hard.min(OPEN_MAX)
}

#[cfg(not(target_os = "macos"))]
fn settable(hard: u64) -> u64 {
    hard
}

/// The soft limit on open files in force now.
pub fn open_files_limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// For a spawn that failed for want of file descriptors or processes (`EMFILE`,
/// `ENFILE`, `EAGAIN`), a passing shortage of hlocal or the system rather than a fault
/// of the app: the limit that was reached, in words.
pub fn spawn_shortage(error: &io::Error) -> Option<String> {
    match Errno::from_raw(error.raw_os_error()?) {
        Errno::EMFILE => Some(match open_files_limit() {
            Some(limit) => format!("hlocal's open-file limit is {limit} (ulimit -n)"),
            None => "hlocal's open-file limit is reached (ulimit -n)".to_string(),
        }),
        Errno::ENFILE => Some("the system's open-file limit is reached".to_string()),
        Errno::EAGAIN => Some("the limit on processes is reached (ulimit -u)".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_and_process_shortages_are_told_from_other_spawn_failures() {
        let shortage = |errno: Errno| spawn_shortage(&io::Error::from_raw_os_error(errno as i32));
        let emfile = shortage(Errno::EMFILE).expect("EMFILE");
        assert!(
            emfile.starts_with("hlocal's open-file limit is "),
            "{emfile}"
        );
        assert!(shortage(Errno::ENFILE).is_some());
        assert!(
            shortage(Errno::EAGAIN)
                .expect("EAGAIN")
                .contains("ulimit -u")
        );
        assert_eq!(shortage(Errno::ENOENT), None);
        assert_eq!(spawn_shortage(&io::Error::other("no code")), None);
    }
}
