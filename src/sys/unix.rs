//! Unix implementation of `sys`: process groups and signals through `nix`, listening
//! sockets and process tables from Linux's `/proc`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{self as nix_signal, SigHandler};
use nix::unistd::{ForkResult, Pid};

use super::Signal;
use super::procfs::{Listener, proc_stat, proc_state};

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
/// line in the order the process wrote it. Call inside the runtime.
pub fn merged_output(command: &mut tokio::process::Command) -> io::Result<MergedOutput> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let for_stderr = write_end.try_clone()?;
    command
        .stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::from(for_stderr));
    MergedOutput::from_owned_fd(read_end)
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
    signal_group_probe(pgid) && !group_members(pgid).is_empty()
}

fn signal_group_probe(pgid: u32) -> bool {
    let Some(pgid) = signal_target(pgid) else {
        return false;
    };
    nix_signal::killpg(pgid, None) != Err(Errno::ESRCH)
}

/// Live members of a process group, from `/proc/*/stat`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(proc_stat(pid), Some(s) if s.pgrp == pgid && s.state != 'Z'))
        .collect()
}

/// The environment variable that marks every process hlocal starts, inherited by all
/// their descendants: it finds what escaped the process groups (a daemon that called
/// `setsid`) when everything must go.
pub const SESSION_VAR: &str = "HLOCAL_SESSION";

/// Live processes (other than this one) whose environment has `HLOCAL_SESSION=token`.
fn session_members(token: &str) -> Vec<u32> {
    let own = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|&pid| in_session(pid, token))
        .filter(|&pid| matches!(proc_state(pid), Some(state) if state != 'Z'))
        .collect()
}

/// Whether the environment of `pid` has `HLOCAL_SESSION=token`.
fn in_session(pid: u32, token: &str) -> bool {
    let needle = format!("{SESSION_VAR}={token}");
    fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
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
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    if words.is_empty() {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .map(|c| c.trim().to_string())
    } else {
        Some(words.join(" "))
    }
}

/// Every TCP listener on `port`, IPv4 and IPv6, read from the kernel's socket tables:
/// no connection is made, so the app sees no traffic and logs nothing.
pub fn listeners_on(port: u16) -> Vec<Listener> {
    all_listeners()
        .into_iter()
        .filter(|l| l.addr.port() == port)
        .collect()
}

/// Every listening TCP socket: from sock_diag (fast), else from `/proc/net` (where
/// netlink is not allowed).
pub fn all_listeners() -> Vec<Listener> {
    super::sockdiag::listeners().unwrap_or_else(|_| proc_listeners())
}

fn proc_listeners() -> Vec<Listener> {
    let mut found = Vec::new();
    for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(table) = fs::read_to_string(path) {
            found.extend(parse_tcp_table(&table, v6));
        }
    }
    found
}

const TCP_LISTEN: &str = "0A";

fn parse_tcp_table(table: &str, v6: bool) -> impl Iterator<Item = Listener> + '_ {
    table.lines().skip(1).filter_map(move |line| {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.get(3) != Some(&TCP_LISTEN) {
            return None;
        }
        let addr = parse_socket_addr(fields.get(1)?, v6)?;
        let inode = fields.get(9)?.parse().ok()?;
        Some(Listener { addr, inode })
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6). The kernel prints each
/// 32-bit word of the address in host byte order, the port in network order.
fn parse_socket_addr(text: &str, v6: bool) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = text.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = if v6 {
        if ip_hex.len() != 32 {
            return None;
        }
        let mut octets = [0u8; 16];
        for word in 0..4 {
            let w = u32::from_str_radix(&ip_hex[word * 8..word * 8 + 8], 16).ok()?;
            octets[word * 4..word * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(octets))
    } else {
        let w = u32::from_str_radix(ip_hex, 16).ok()?;
        IpAddr::V4(Ipv4Addr::from(w.to_ne_bytes()))
    };
    Some(SocketAddr::new(ip, port))
}

/// The process holding socket `inode` open, if it can be seen (other users' processes
/// cannot). Scans every process's fds: only used on error paths.
pub fn socket_holder(inode: u64) -> Option<u32> {
    let target = format!("socket:[{inode}]");
    fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&pid| process_holds(pid, &target))
}

/// Where the processes of group `pgid` listen (TCP), whatever the port. Blocking: reads
/// the group's fds and the socket tables once each.
pub fn group_listeners(pgid: u32) -> Vec<SocketAddr> {
    let inodes: HashSet<u64> = group_members(pgid)
        .into_iter()
        .flat_map(socket_inodes)
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    all_listeners()
        .into_iter()
        .filter(|l| inodes.contains(&l.inode))
        .map(|l| l.addr)
        .collect()
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let text = link.to_str()?;
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// A process holding a listener on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    pub pid: u32,
    pub command: Option<String>,
    /// It carries this session's `HLOCAL_SESSION` mark: one of hlocal's own processes.
    pub ours: bool,
}

/// Who holds the listeners on `port`, each once (a server often listens on IPv4 and
/// IPv6): `None` for one whose holder cannot be seen (another user's process).
/// Blocking: scans every process's fds, only when a listener is found.
pub fn port_holders(port: u16, session: &str) -> Vec<Option<PortHolder>> {
    let mut pids: Vec<Option<u32>> = listeners_on(port)
        .iter()
        .map(|l| socket_holder(l.inode))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .map(|pid| {
            pid.map(|pid| PortHolder {
                pid,
                command: process_command(pid),
                ours: in_session(pid, session),
            })
        })
        .collect()
}

/// SIGTERM to one process, SIGKILL after `grace` if it is still there. Blocking.
pub fn stop_process(pid: u32, grace: Duration) {
    let alive = || {
        Some(pid)
            .filter(|&p| matches!(proc_state(p), Some(state) if state != 'Z'))
            .into_iter()
            .collect()
    };
    term_wait_kill(alive, signal_process, grace);
}

/// Whether a process of group `pgid` holds socket `inode`.
pub fn group_holds_socket(pgid: u32, inode: u64) -> bool {
    let target = format!("socket:[{inode}]");
    group_members(pgid)
        .into_iter()
        .any(|pid| process_holds(pid, &target))
}

fn process_holds(pid: u32, target: &str) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .any(|link| link.as_os_str() == OsStr::new(target))
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

/// The status a shell would report: the exit code, or 128 + N for a death by signal N.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|n| 128 + n))
        .unwrap_or(1)
}

/// Number of threads of this process (the watchdog must be forked while it is one).
fn thread_count() -> usize {
    fs::read_dir("/proc/self/task").map_or(1, Iterator::count)
}

/// The watchdog: a forked copy of hlocal that outlives it by a moment, so that no
/// process is left behind even when hlocal itself is killed with SIGKILL.
///
/// Process groups alone are not enough: when hlocal dies abruptly nobody signals them,
/// and `PR_SET_PDEATHSIG` reaches only a direct child (not its children) and fires when
/// the *thread* that forked it exits, which in a thread pool is not hlocal's death. So
/// hlocal forks this watchdog before starting any thread, in a process group of its own
/// (a terminal's Ctrl-C or `kill -9 -PGID` on hlocal's group does not reach it), keeps
/// the write end of a pipe to it, and reports every process group it creates (`+PGID`)
/// and every one that is gone (`-PGID`). The pipe's write end is close-on-exec, so only
/// hlocal holds it: end-of-file on the watchdog's side means hlocal is gone, however it
/// died. The watchdog then sends SIGTERM to the groups still listed, waits the grace
/// period, sends SIGKILL to what is left, and exits. A group created in the instant
/// between `fork` and the report could escape; nothing else can short of cgroups.
///
/// It also keeps hlocal's own list of the groups (each group's leader is a run's `sh`,
/// hlocal's direct child that tokio waits for), so that every *other* child of hlocal —
/// an orphan inherited as subreaper — can be stopped and reaped without taking a run's
/// exit status from tokio.
#[derive(Debug)]
pub struct Watchdog {
    pipe: fs::File,
    pid: u32,
    groups: Mutex<HashSet<u32>>,
}

impl Watchdog {
    /// Forks the watchdog. Must run before any thread is started. `session` is the
    /// `HLOCAL_SESSION` token of hlocal's processes, for those that left their group.
    pub fn spawn(grace: Duration, session: &str) -> io::Result<Watchdog> {
        if thread_count() > 1 {
            return Err(io::Error::other(
                "watchdog must be started before any thread",
            ));
        }
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        // SAFETY: the process is single-threaded (checked above), so the child may run
        // arbitrary code, including allocation, after fork.
        match unsafe { nix::unistd::fork() }? {
            ForkResult::Child => {
                drop(write_end);
                watchdog_main(read_end, grace, session)
            }
            ForkResult::Parent { child } => Ok(Watchdog {
                pipe: fs::File::from(write_end),
                pid: child.as_raw().unsigned_abs(),
                groups: Mutex::new(HashSet::new()),
            }),
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
        super::orphans::reap_orphans(&own);
    }

    /// Stops the inherited orphans still running (SIGTERM, `grace`, SIGKILL) and reaps
    /// them: what left its group and cleared its environment. Blocking.
    pub fn stop_orphans(&self, grace: Duration) {
        let alive = || super::orphans::live_orphans(&self.own_children(&self.lock_groups()));
        term_wait_kill(alive, signal_process, grace);
        self.reap_orphans();
    }

    /// The children that are not orphans: the groups' leaders and the watchdog.
    fn own_children(&self, groups: &HashSet<u32>) -> HashSet<u32> {
        groups.iter().copied().chain([self.pid]).collect()
    }

    /// A panic while the list was held cannot leave it half-changed (one insert or
    /// remove), so a poisoned lock is still good.
    fn lock_groups(&self) -> MutexGuard<'_, HashSet<u32>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes under PIPE_BUF bytes are atomic, so callers on several threads never
    /// interleave. A failed write means the watchdog is gone; nothing else can be done.
    fn tell(&self, message: &str) {
        let _ = (&self.pipe).write_all(message.as_bytes());
    }
}

fn watchdog_main(commands: OwnedFd, grace: Duration, session: &str) -> ! {
    detach_watchdog(&commands);
    let mut groups = HashSet::new();
    for line in BufReader::new(fs::File::from(commands)).lines() {
        let Ok(line) = line else { break };
        apply_watchdog_command(&mut groups, &line);
    }
    stop_groups(&groups, grace);
    stop_session(session, grace);
    // SAFETY: `_exit` skips atexit handlers and stdio flushing, which belong to hlocal.
    unsafe { nix::libc::_exit(0) }
}

/// Own process group, deaf to terminal and shutdown signals, no inherited fds: the
/// watchdog ends only when the pipe does. Named so `ps -o comm` tells it from hlocal.
fn detach_watchdog(keep: &OwnedFd) {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let _ = nix::sys::prctl::set_name(c"hlocal-watchdog");
    for sig in [
        nix_signal::Signal::SIGINT,
        nix_signal::Signal::SIGTERM,
        nix_signal::Signal::SIGHUP,
        nix_signal::Signal::SIGQUIT,
        nix_signal::Signal::SIGPIPE,
        nix_signal::Signal::SIGTSTP,
        nix_signal::Signal::SIGTTIN,
        nix_signal::Signal::SIGTTOU,
    ] {
        // SAFETY: installing SIG_IGN has no handler code to be unsafe in.
        let _ = unsafe { nix_signal::signal(sig, SigHandler::SigIgn) };
    }
    if let Ok(null) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    close_fds_except(keep.as_raw_fd());
}

fn close_fds_except(keep: i32) {
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2 && fd != keep)
        .collect();
    for fd in fds {
        // SAFETY: closing fds in the single-threaded watchdog, which owns none of them.
        unsafe { nix::libc::close(fd) };
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

/// SIGTERM, a grace period while any is alive, SIGKILL: the same end as a shutdown.
/// `alive` lists what is left; `signal` reaches one of them (a group or a process).
fn term_wait_kill(alive: impl Fn() -> Vec<u32>, signal: fn(u32, Signal) -> bool, grace: Duration) {
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

fn stop_groups(groups: &HashSet<u32>, grace: Duration) {
    let alive = || groups.iter().copied().filter(|&g| group_alive(g)).collect();
    term_wait_kill(alive, signal_group, grace);
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

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 778 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_ipv4_listeners_only() {
        let found: Vec<Listener> = parse_tcp_table(TCP, false).collect();
        assert_eq!(
            found,
            [Listener {
                addr: "127.0.0.1:8080".parse().expect("addr"),
                inode: 4242
            }]
        );
    }

    #[test]
    fn parses_ipv6_wildcard_and_loopback() {
        let found: Vec<SocketAddr> = parse_tcp_table(TCP6, true).map(|l| l.addr).collect();
        assert_eq!(
            found,
            [
                "[::]:8080".parse::<SocketAddr>().expect("addr"),
                "[::1]:8082".parse().expect("addr")
            ]
        );
    }

    #[test]
    fn finds_a_real_listener_and_its_holder() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let found = listeners_on(port);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(socket_holder(found[0].inode), Some(std::process::id()));
    }

    #[test]
    fn a_port_holder_is_named_once_and_not_taken_for_ours() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = v4.local_addr().expect("addr").port();
        let _v6 = std::net::TcpListener::bind(("::1", port));
        let holders = port_holders(port, "no-such-session");
        assert_eq!(holders.len(), 1, "{holders:?}");
        let holder = holders[0].as_ref().expect("visible");
        assert_eq!(holder.pid, std::process::id());
        assert!(!holder.ours);
    }

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
