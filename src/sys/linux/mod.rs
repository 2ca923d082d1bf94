//! The Linux forms of `sys`'s platform questions: `/proc` for the process table and a
//! process's environment and fds, sock_diag netlink for the listening sockets,
//! `PR_SET_CHILD_SUBREAPER` for orphans. `sys/macos/` answers the same questions with
//! the same signatures.

mod orphans;
mod procfs;
mod sockdiag;
mod sockets;

use std::path::PathBuf;

pub use orphans::{become_subreaper, live_orphans, reap_orphans};
pub use procfs::{command_line, environ, group_members, process, process_table};
pub use sockets::{group_listeners, group_listens_on, listening_ports, port_owners};

/// Where a process lists its open descriptors.
pub const FD_DIR: &str = "/proc/self/fd";

/// The `si_code`s of a signal another process sent: `SI_USER` (`kill`), `SI_QUEUE`,
/// `SI_TKILL`. The terminal's come as `SI_KERNEL`.
pub const SENT_SIGNAL_CODES: &[i32] =
    &[nix::libc::SI_USER, nix::libc::SI_QUEUE, nix::libc::SI_TKILL];

/// The running binary, to start the watchdog from: `/proc/self/exe` names the file that
/// is running even when a rebuild has replaced it on disk meanwhile.
pub fn executable() -> std::io::Result<PathBuf> {
    Ok(PathBuf::from("/proc/self/exe"))
}

/// The calling thread yields to every other when the CPU is contended: Linux's nice
/// value is per thread, so `setpriority(PRIO_PROCESS, 0, 19)` concerns this thread only.
pub fn lower_thread_priority() {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let _ = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 19) };
}

/// Names the watchdog for `ps -o comm` (its binary is hlocal's, started as `exe`).
pub fn name_watchdog() {
    let _ = nix::sys::prctl::set_name(c"hlocal-watchdog");
}
