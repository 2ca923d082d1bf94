//! The only OS-facing API in hlocal: process groups, signals, the watchdog that outlives
//! hlocal, inherited orphans, the open-file limit, listening sockets and TCP options, the
//! control socket's owner checks, foreground children, pseudo-terminals. Nothing outside `sys` imports `nix`, `libc`, `signal-hook` or
//! `std::os::unix`, and nothing outside `sys` names an operating system.
//!
//! The files here are the same on every Unix; what differs is asked of the platform's
//! folder through one set of functions (`os`): `linux/` reads `/proc` and sock_diag,
//! `macos/` calls libproc and `sysctl`. The logic around them (group membership, the
//! session mark, command lines, parsing libproc's records) is plain functions the Linux
//! tests run on recorded inputs (`table.rs`, `macos/fdinfo.rs`, `macos/procargs.rs`).

mod foreground;
mod limits;
mod net;
mod private;
mod process;
mod pty;
mod signal;
mod sockets;
mod stdio;
mod table;
mod watchdog;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

// Compiled into the Linux tests too: its parsers run there on recorded inputs.
#[cfg(any(target_os = "macos", test))]
mod macos;
#[cfg(target_os = "macos")]
use macos as os;

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
compile_error!("hlocal runs on Linux and macOS");

pub use foreground::run_foreground;
pub use limits::{keep_shell_limit, open_files_limit, raise_open_files_limit, spawn_shortage};
pub use net::{is_out_of_files, quick_ack};
pub use os::{become_subreaper, lower_thread_priority};
pub use private::{
    create_private_dir, peer_is_owner, private_temp_dir, remove_stale_socket, restrict_to_owner,
};
pub use process::{
    MergedOutput, SESSION_VAR, ShutdownSignals, arg_max, exit_code, group_alive, max_arg_bytes,
    merged_output, own_process_group, process_command, signal_group, stop_process, stop_session,
};
pub use pty::{PtyMaster, RawMode, WindowChanges, WindowSize, spawn_on_pty, terminal_size};
pub use signal::Signal;
pub use sockets::{
    PortHolder, group_listeners, group_listens_on, listening_ports, port_holders, port_owners,
};
pub use stdio::{FileIdentity, identity_of, own_output_files, write_stdout};
pub use watchdog::{WATCHDOG_COMMAND, Watchdog, run_watchdog};
