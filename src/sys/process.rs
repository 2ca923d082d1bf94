//! Processes and process groups, the same on every Unix: spawning in a group of its own,
//! one pipe for stdout and stderr, signals, the stop sequence (TERM, grace, KILL), the
//! session mark, exit statuses. The process table itself is read by the platform's
//! folder (`sys::os`).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{self as nix_signal};
use nix::unistd::Pid;

use super::table;
use super::{Signal, os};

fn to_nix(signal: Signal) -> nix_signal::Signal {
    use nix_signal::Signal as N;
    match signal {
        Signal::Hup => N::SIGHUP,
        Signal::Int => N::SIGINT,
        Signal::Quit => N::SIGQUIT,
        Signal::Kill => N::SIGKILL,
        Signal::Usr1 => N::SIGUSR1,
        Signal::Usr2 => N::SIGUSR2,
        Signal::Term => N::SIGTERM,
        Signal::Winch => N::SIGWINCH,
    }
}

/// Puts the child in a process group of its own, so that a terminal's Ctrl-C reaches
/// hlocal alone (which then stops everyone in order) and so that one signal to the
/// group reaches the command's children and grandchildren too.
pub fn own_process_group(command: &mut tokio::process::Command) {
    command.process_group(0);
}

/// The reading end of a child's merged stdout+stderr pipe.
pub type MergedOutput = tokio::net::unix::pipe::Receiver;

/// Gives the child one pipe for both stdout and stderr, as foreman and Heroku's Logplex
/// do: two pipes cannot tell which of two quick writes came first, one pipe keeps every
/// line in the order the process wrote it. Call inside the runtime. Both ends are
/// close-on-exec (std's `pipe` uses `pipe2` where the platform has it, `pipe` and
/// `FD_CLOEXEC` on macOS), so no other child inherits them.
pub fn merged_output(command: &mut tokio::process::Command) -> io::Result<MergedOutput> {
    let (read_end, write_end) = io::pipe()?;
    let for_stderr = write_end.try_clone()?;
    command.stdout(write_end).stderr(for_stderr);
    MergedOutput::from_owned_fd(read_end.into())
}

/// A pid or process group id that may be signalled. Never 0 (`kill(0)` and `killpg(0)`
/// reach hlocal's own group), 1 (init; `kill(-1)` reaches every process of the user)
/// or beyond `i32` (would turn negative): such an id is a bug upstream, not a target.
fn signal_target(id: u32) -> Option<Pid> {
    i32::try_from(id)
        .ok()
        .filter(|&id| id > 1)
        .map(Pid::from_raw)
}

/// Sends `signal` to every process of group `pgid`. `false` when the group is gone.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    let Some(pgid) = signal_target(pgid) else {
        return false;
    };
    nix_signal::killpg(pgid, to_nix(signal)) != Err(Errno::ESRCH)
}

/// Whether any live (non-zombie) process is left in group `pgid`.
///
/// `kill(-pgid, 0)` answers in one syscall for the common case (the group is empty).
/// It also succeeds for zombies, and orphaned zombies linger where PID 1 does not reap
/// (containers), so a "yes" is confirmed against the process table.
pub fn group_alive(pgid: u32) -> bool {
    signal_group_probe(pgid) && !os::group_members(pgid).is_empty()
}

fn signal_group_probe(pgid: u32) -> bool {
    let Some(pgid) = signal_target(pgid) else {
        return false;
    };
    nix_signal::killpg(pgid, None) != Err(Errno::ESRCH)
}

/// The environment variable that marks every process hlocal starts, inherited by all
/// their descendants: it finds what escaped the process groups (a daemon that called
/// `setsid`) when everything must go.
pub const SESSION_VAR: &str = "HLOCAL_SESSION";

fn session_entry(token: &str) -> Vec<u8> {
    format!("{SESSION_VAR}={token}").into_bytes()
}

/// Live processes (other than this one) whose environment has `HLOCAL_SESSION=token`.
fn session_members(token: &str) -> Vec<u32> {
    let entry = session_entry(token);
    let processes = os::process_table();
    table::live_others(&processes, std::process::id())
        .filter(|&pid| os::environ(pid).is_some_and(|env| table::env_has(&env, &entry)))
        .collect()
}

/// Whether the environment of `pid` has `HLOCAL_SESSION=token`.
pub(super) fn in_session(pid: u32, token: &str) -> bool {
    os::environ(pid).is_some_and(|env| table::env_has(&env, &session_entry(token)))
}

/// Sends `signal` to one process. `false` when it is gone.
pub(super) fn signal_process(pid: u32, signal: Signal) -> bool {
    let Some(pid) = signal_target(pid) else {
        return false;
    };
    nix_signal::kill(pid, to_nix(signal)) != Err(Errno::ESRCH)
}

/// The command line of a process, for messages (`python3 -m http.server 5006`).
pub fn process_command(pid: u32) -> Option<String> {
    os::command_line(pid)
}

/// SIGTERM to one process, SIGKILL after `grace` if it is still there. Blocking.
pub fn stop_process(pid: u32, grace: Duration) {
    let alive = || {
        os::process(pid)
            .filter(|p| !p.zombie)
            .map(|p| p.pid)
            .into_iter()
            .collect()
    };
    term_wait_kill(alive, signal_process, grace);
}

/// The kernel's limit on the bytes of one execve's arguments and environment together
/// (sysconf's ARG_MAX: a quarter of the stack limit on Linux). Linux (4.13+) also caps
/// it at 6 MiB (3/4 of _STK_LIM) whatever the stack limit, which sysconf does not know.
pub fn arg_max() -> Option<usize> {
    const LINUX_CAP: usize = 6 * 1024 * 1024;
    let max = nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX).ok()??;
    let max = usize::try_from(max).ok()?;
    Some(if cfg!(target_os = "linux") {
        max.min(LINUX_CAP)
    } else {
        max
    })
}

/// The kernel's limit on one argument (or environment string) of an execve: Linux's
/// MAX_ARG_STRLEN, 32 pages. macOS has none beyond [`arg_max`].
pub fn max_arg_bytes() -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    usize::try_from(page).ok().map(|page| page * 32)
}

/// The status a shell would report: the exit code, or 128 + N for a death by signal N.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|n| 128 + n))
        .unwrap_or(1)
}

/// SIGTERM, a grace period while any is alive, SIGKILL: the same end as a shutdown.
/// `alive` lists what is left; `signal` reaches one of them (a group or a process).
pub(super) fn term_wait_kill(
    alive: impl Fn() -> Vec<u32>,
    signal: fn(u32, Signal) -> bool,
    grace: Duration,
) {
    let first = alive();
    if first.is_empty() {
        return;
    }
    for &target in &first {
        signal(target, Signal::Term);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !alive().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    for target in alive() {
        signal(target, Signal::Kill);
    }
}

/// Stops the processes marked with the session token (those that left their group):
/// the watchdog after hlocal died, the supervisor at the end of a shutdown. Blocking.
pub fn stop_session(token: &str, grace: Duration) {
    term_wait_kill(|| session_members(token), signal_process, grace);
}

/// hlocal's own shutdown signals, as a stream of events.
pub struct ShutdownSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> io::Result<ShutdownSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::Int,
            _ = self.term.recv() => Signal::Term,
            _ = self.hup.recv() => Signal::Hup,
        }
    }
}

/// hlocal's own process group (tests look for their own listeners through it).
#[cfg(test)]
pub fn own_group() -> u32 {
    nix::unistd::getpgrp().as_raw().cast_unsigned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_0_and_1_and_beyond_i32_are_never_signalled() {
        // Unguarded, each of these would succeed (SIGWINCH is harmless: ignored by
        // default) and report the target alive.
        for id in [0, 1, u32::MAX, 1 << 31] {
            assert!(!signal_group(id, Signal::Winch), "group {id}");
            assert!(!signal_process(id, Signal::Winch), "pid {id}");
            assert!(!group_alive(id), "group {id}");
        }
        assert!(signal_process(std::process::id(), Signal::Winch));
    }

    #[test]
    fn this_process_is_in_its_group_and_has_a_command_line() {
        assert!(group_alive(own_group()));
        assert!(process_command(std::process::id()).is_some());
    }
}
