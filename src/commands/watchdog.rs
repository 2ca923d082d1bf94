//! `hlocal __watchdog GRACE_MS SESSION`, hidden from the help: the process `hlocal start`
//! starts beside itself so that nothing it ran outlives it (see `sys::Watchdog`).

use std::time::Duration;

use crate::cli::WatchdogArgs;
use crate::sys;

/// Runs until hlocal closes the pipe on stdin (however it ended), stops what is left,
/// and exits 0.
pub fn watchdog(args: &WatchdogArgs) -> i32 {
    sys::run_watchdog(Duration::from_millis(args.grace_ms), &args.session);
    0
}
