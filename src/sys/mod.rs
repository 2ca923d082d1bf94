//! The only OS-facing API in hlocal: process groups, signals, the watchdog that outlives
//! hlocal, inherited orphans, the open-file limit, listening sockets and TCP options,
//! foreground children. Nothing outside `sys` imports `nix`, `libc`, `signal-hook` or
//! `std::os::unix`; a macOS port replaces `unix.rs`'s and `orphans.rs`'s `/proc` readers
//! and keeps these signatures.

mod foreground;
mod limits;
mod net;
mod orphans;
mod procfs;
mod signal;
#[cfg(target_os = "linux")]
mod sockdiag;
mod stdio;
mod unix;

pub use foreground::run_foreground;
pub use limits::{keep_shell_limit, open_files_limit, raise_open_files_limit, spawn_shortage};
pub use net::{is_out_of_files, quick_ack};
pub use orphans::become_subreaper;
pub use signal::Signal;
pub use stdio::{FileIdentity, identity_of, own_output_files, write_stdout};
pub use unix::{
    MergedOutput, PortHolder, SESSION_VAR, ShutdownSignals, Watchdog, all_listeners, arg_max,
    exit_code, group_alive, group_holds_socket, group_listeners, listeners_on, merged_output,
    own_process_group, port_holders, process_command, signal_group, socket_holder, stop_process,
    stop_session,
};
