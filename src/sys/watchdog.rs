//! The watchdog: a second hlocal process that outlives hlocal by a moment, so that no
//! process is left behind even when hlocal itself is killed with SIGKILL.
//!
//! Process groups alone are not enough: when hlocal dies abruptly nobody signals them,
//! and `PR_SET_PDEATHSIG` reaches only a direct child (not its children) and fires when
//! the *thread* that forked it exits, which in a thread pool is not hlocal's death. So
//! hlocal starts its own binary again as `hlocal __watchdog` (a hidden subcommand), in a
//! process group of its own (a terminal's Ctrl-C or `kill -9 -PGID` on hlocal's group
//! does not reach it), with the read end of a pipe as its stdin. hlocal keeps the write
//! end and reports every process group it creates (`+PGID`) and every one that is gone
//! (`-PGID`). The write end is close-on-exec, so only hlocal holds it: end-of-file on
//! the watchdog's side means hlocal is gone, however it died. The watchdog then sends
//! SIGTERM to the groups still listed, waits the grace period, sends SIGKILL to what is
//! left, stops the processes carrying the session mark, and exits. A group created in
//! the instant between its spawn and the report could escape; nothing else can short of
//! cgroups.
//!
//! Starting a fresh binary rather than `fork()`ing hlocal means no rule about threads
//! (a fork copies only the calling thread, so it had to come before any other existed)
//! and no `unsafe` around it.
//!
//! At a controlled exit hlocal closes the pipe itself and waits for the watchdog's last
//! sweep to end ([`Watchdog::finish`]), so that when hlocal has exited its watchdog has
//! too: nothing of hlocal's is left for a script that checks right after it.
//!
//! hlocal also keeps its own list of the groups (each group's leader is a run's `sh`,
//! hlocal's direct child that tokio waits for), so that every *other* child of hlocal —
//! an orphan inherited as subreaper, on Linux — can be stopped and reaped without taking
//! a run's exit status from tokio.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufRead, PipeWriter, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal as NixSignal};

use super::os;
use super::process::{self, group_alive, signal_group, signal_process, term_wait_kill};

/// The hidden subcommand that runs the watchdog: `hlocal __watchdog GRACE_MS SESSION`.
pub const WATCHDOG_COMMAND: &str = "__watchdog";

#[derive(Debug)]
pub struct Watchdog {
    /// `None` once [`Watchdog::finish`] closed it.
    pipe: Mutex<Option<PipeWriter>>,
    child: Mutex<Child>,
    /// How long [`Watchdog::finish`] waits for its last sweep: the grace and a second.
    finish_bound: Duration,
    pid: u32,
    groups: Mutex<HashSet<u32>>,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finish();
    }
}

/// How often [`Watchdog::finish`] looks whether the watchdog has exited.
const FINISH_POLL: Duration = Duration::from_millis(2);

impl Watchdog {
    /// Starts the watchdog. `session` is the `HLOCAL_SESSION` token of hlocal's
    /// processes, for those that left their group.
    pub fn spawn(grace: Duration, session: &str) -> io::Result<Watchdog> {
        let (read_end, write_end) = io::pipe()?;
        let grace_ms = grace.as_millis().to_string();
        let child = Command::new(os::executable()?)
            .arg0("hlocal-watchdog")
            .args([WATCHDOG_COMMAND, &grace_ms, session])
            .stdin(read_end)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Watchdog {
            pipe: Mutex::new(Some(write_end)),
            finish_bound: grace + Duration::from_secs(1),
            pid: child.id(),
            child: Mutex::new(child),
            groups: Mutex::new(HashSet::new()),
        })
    }

    /// hlocal's controlled exit: closes the pipe (the watchdog sweeps for anything left
    /// and exits) and waits for it to end, a grace period and a second at most.
    /// Blocking. Dropping the watchdog does it too (at once, if done already), so that an
    /// early error return cannot leave it unreaped: a zombie until init takes it.
    pub fn finish(&self) {
        lock(&self.pipe).take();
        let deadline = Instant::now() + self.finish_bound;
        let mut child = lock(&self.child);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(FINISH_POLL);
        }
    }

    /// Spawns a process group with `spawn` (which returns the child and its pid, the
    /// group's id) and watches it. The list stays locked meanwhile, so the orphan reaper
    /// never takes a run that exited at once for an orphan and steals its status.
    pub fn spawn_group<T>(&self, spawn: impl FnOnce() -> io::Result<(T, u32)>) -> io::Result<T> {
        let mut groups = self.lock_groups();
        let (child, pgid) = spawn()?;
        groups.insert(pgid);
        self.tell(&format!("+{pgid}\n"));
        Ok(child)
    }

    /// The group is gone and its leader reaped.
    pub fn forget_group(&self, pgid: u32) {
        self.lock_groups().remove(&pgid);
        self.tell(&format!("-{pgid}\n"));
    }

    /// Reaps the inherited orphans that exited (zombies otherwise). Blocking.
    pub fn reap_orphans(&self) {
        let own = self.own_children(&self.lock_groups());
        os::reap_orphans(&own);
    }

    /// Stops the inherited orphans still running (SIGTERM, `grace`, SIGKILL) and reaps
    /// them: what left its group and cleared its environment. Blocking.
    pub fn stop_orphans(&self, grace: Duration) {
        let alive = || os::live_orphans(&self.own_children(&self.lock_groups()));
        term_wait_kill(alive, signal_process, grace);
        self.reap_orphans();
    }

    /// The children that are not orphans: the groups' leaders and the watchdog.
    fn own_children(&self, groups: &HashSet<u32>) -> HashSet<u32> {
        groups.iter().copied().chain([self.pid]).collect()
    }

    fn lock_groups(&self) -> MutexGuard<'_, HashSet<u32>> {
        lock(&self.groups)
    }

    /// One write, under PIPE_BUF bytes, per report. A failed write means the watchdog is
    /// gone; nothing else can be done. After `finish`, nothing is sent.
    fn tell(&self, message: &str) {
        if let Some(pipe) = lock(&self.pipe).as_mut() {
            let _ = pipe.write_all(message.as_bytes());
        }
    }
}

/// A panic while one of these locks was held cannot leave its value half-changed (one
/// insert or remove, one write), so a poisoned lock is still good.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The watchdog process itself (`hlocal __watchdog`): follows the reports on stdin until
/// hlocal is gone, then stops what is left. Blocking.
pub fn run_watchdog(grace: Duration, session: &str) {
    detach_watchdog();
    let mut groups = HashSet::new();
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        apply_watchdog_command(&mut groups, &line);
    }
    stop_groups(&groups, grace);
    process::stop_session(session, grace);
}

/// Deaf to terminal and shutdown signals, no inherited fds: the watchdog ends only when
/// the pipe does. The signals are blocked rather than ignored: blocking needs no
/// handler, so no `unsafe`, and a blocked signal is never delivered.
fn detach_watchdog() {
    os::name_watchdog();
    let mut deaf = SigSet::empty();
    for signal in [
        NixSignal::SIGINT,
        NixSignal::SIGTERM,
        NixSignal::SIGHUP,
        NixSignal::SIGQUIT,
        NixSignal::SIGPIPE,
        NixSignal::SIGTSTP,
        NixSignal::SIGTTIN,
        NixSignal::SIGTTOU,
    ] {
        deaf.add(signal);
    }
    let _ = deaf.thread_block();
    close_inherited_fds();
}

/// Closes what hlocal inherited without close-on-exec (a descriptor its own parent
/// leaked): held by the watchdog, it would outlive hlocal, and a parent waiting for
/// end-of-file on it would wait for the watchdog too.
fn close_inherited_fds() {
    let Ok(entries) = fs::read_dir(os::FD_DIR) else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // The directory's own descriptor is among them, already closed: EBADF.
        let _ = nix::unistd::close(fd);
    }
}

fn apply_watchdog_command(groups: &mut HashSet<u32>, line: &str) {
    let (op, pgid) = line.split_at(line.len().min(1));
    let Ok(pgid) = pgid.parse::<u32>() else {
        return;
    };
    match op {
        "+" => {
            groups.insert(pgid);
        }
        "-" => {
            groups.remove(&pgid);
        }
        _ => {}
    }
}

fn stop_groups(groups: &HashSet<u32>, grace: Duration) {
    let alive = || groups.iter().copied().filter(|&g| group_alive(g)).collect();
    term_wait_kill(alive, signal_group, grace);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_commands() {
        let mut groups = HashSet::new();
        apply_watchdog_command(&mut groups, "+12");
        apply_watchdog_command(&mut groups, "+13");
        apply_watchdog_command(&mut groups, "-12");
        apply_watchdog_command(&mut groups, "garbage");
        apply_watchdog_command(&mut groups, "");
        assert_eq!(groups, HashSet::from([13]));
    }
}
