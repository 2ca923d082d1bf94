//! A foreground child for `hlocal run`: it shares hlocal's terminal, stdin and process
//! group, so the terminal's Ctrl-C, Ctrl-\ and hang-up reach it directly.
//!
//! hlocal therefore only has to survive those signals and wait (as `just` does in
//! `signal_handler.rs`): it installs handlers rather than ignoring them, because ignored
//! signals stay ignored across `exec` and the child would inherit that. The same signals
//! sent by another process (`kill`, `timeout`, an editor, systemd) reach hlocal alone, as
//! the command's own pid would get them under `foreman run`, which execs it: those are
//! passed on to the child, told from the terminal's by the signal's `si_code`, unless
//! the sender is in hlocal's own process group: a shell script's `kill 0` or GNU
//! `timeout` signal the whole group, the child included, which must not get it twice.
//! SIGTERM, which no terminal sends, is passed on whatever its origin. SIGUSR1 and
//! SIGUSR2 (which would otherwise end hlocal and orphan the command) are passed on as
//! the terminal's signals are: when sent from outside hlocal's group.

use std::io;
use std::process::Command;

use nix::unistd::{Pid, getpgid, getpgrp};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithRawSiginfo;

use super::Signal;
use super::os::SENT_SIGNAL_CODES;

/// Runs `command` in the foreground and returns its status as a shell reports it.
pub fn run_foreground(mut command: Command) -> io::Result<i32> {
    let caught = [SIGINT, SIGQUIT, SIGHUP, SIGTERM, SIGUSR1, SIGUSR2];
    let mut signals = SignalsInfo::<WithRawSiginfo>::new(caught)?;
    let mut child = command.spawn()?;
    let pid = child.id();
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for info in signals.forever() {
            let sent = SENT_SIGNAL_CODES.contains(&info.si_code)
                // SAFETY: for a signal another process sent (its `si_code` says so), the
                // union's `si_pid` is the sender's pid: a plain integer.
                && !in_our_group(unsafe { info.si_pid() });
            if let Some(signal) = passed_on(info.si_signo, sent) {
                super::process::signal_process(pid, signal);
            }
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forwarder.join();
    Ok(super::exit_code(status?))
}

/// The sender is (still) in hlocal's process group, so what it sent reached the group.
fn in_our_group(sender: i32) -> bool {
    getpgid(Some(Pid::from_raw(sender))).is_ok_and(|group| group == getpgrp())
}

/// The signal to pass on to the child, if any: what another process `sent` hlocal alone.
fn passed_on(signal: i32, sent: bool) -> Option<Signal> {
    match signal {
        SIGTERM => Some(Signal::Term),
        SIGINT if sent => Some(Signal::Int),
        SIGQUIT if sent => Some(Signal::Quit),
        SIGHUP if sent => Some(Signal::Hup),
        SIGUSR1 if sent => Some(Signal::Usr1),
        SIGUSR2 if sent => Some(Signal::Usr2),
        _ => None,
    }
}
