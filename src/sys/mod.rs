//! The only OS-facing API in hlocal: process groups, signals, the watchdog that outlives
//! hlocal, listening sockets, foreground children. Nothing outside `sys` imports `nix`,
//! `libc`, `signal-hook` or `std::os::unix`; a macOS port replaces `unix.rs`'s `/proc`
//! readers and keeps these signatures.

mod foreground;
mod signal;
mod unix;

pub use foreground::run_foreground;
pub use signal::Signal;
pub use unix::{
    ShutdownSignals, Watchdog, exit_code, group_alive, group_holds_socket, listeners_on,
    own_process_group, process_command, signal_group, socket_holder,
};
