//! The only OS-facing API in hlocal: process groups, signals, the watchdog, listening
//! sockets. Nothing outside `sys` imports `nix`, `libc` or `std::os::unix`.

mod signal;
pub use signal::{Signal, UnknownSignal};
