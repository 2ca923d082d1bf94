//! The macOS forms of `sys`'s platform questions, with the signatures of `sys/linux/`:
//! libproc for the process table and the sockets a process holds (`proc_listallpids`,
//! `proc_listpgrppids`, `proc_pidinfo`, `proc_pidfdinfo`), `sysctl(KERN_PROCARGS2)`
//! for another process's arguments and environment. The table comes from libproc's
//! short BSD info rather than `sysctl(KERN_PROC)`: libc does not declare `kinfo_proc`,
//! and the four fields hlocal needs (pid, ppid, pgid, status) are the first four words
//! of `proc_bsdshortinfo`. macOS has no child subreaper: orphans go to launchd, and only
//! the process groups and the `HLOCAL_SESSION` mark find what an app left behind.
//!
//! `records` and `procargs` read the kernel's answers without system calls; they are
//! compiled into the Linux tests too, which run them on recorded inputs. `libproc`
//! makes the calls and is compiled on macOS only (CI type-checks it for both Apple
//! targets).

mod procargs;
mod records;

#[cfg(target_os = "macos")]
mod libproc;

#[cfg(target_os = "macos")]
pub use libproc::{
    FD_DIR, SENT_SIGNAL_CODES, become_subreaper, command_line, environ, executable,
    group_listeners, group_listens_on, group_members, listening_ports, live_orphans,
    lower_thread_priority, name_watchdog, port_owners, process, process_table, reap_orphans,
};
