//! A foreground child for `hlocal run`: it shares hlocal's terminal, stdin and process
//! group, so the terminal's Ctrl-C, Ctrl-\ and hang-up reach it directly.
//!
//! hlocal therefore only has to survive those signals and wait (as `just` does in
//! `signal_handler.rs`): it installs handlers rather than ignoring them, because ignored
//! signals stay ignored across `exec` and the child would inherit that. SIGTERM is sent
//! to hlocal alone (by `kill`, an editor, systemd), so it is forwarded to the child.

use std::io;
use std::process::Command;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

/// Runs `command` in the foreground and returns its status as a shell reports it.
pub fn run_foreground(mut command: Command) -> io::Result<i32> {
    let mut signals = Signals::new([SIGINT, SIGQUIT, SIGHUP, SIGTERM])?;
    let mut child = command.spawn()?;
    let pid = child.id();
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGTERM {
                super::process::signal_process(pid, super::Signal::Term);
            }
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forwarder.join();
    Ok(super::exit_code(status?))
}
