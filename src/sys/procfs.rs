//! What the process table and the socket tables say, in the shapes the rest of `sys`
//! reads them: `/proc/PID/stat`'s state and group, and a listening socket. A leaf of
//! `sys`: `unix`, `sockdiag` and `orphans` read through it and it uses none of them.

use std::fs;
use std::net::SocketAddr;

/// A TCP socket in LISTEN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    pub inode: u64,
}

pub(super) struct ProcStat {
    pub state: char,
    pub pgrp: u32,
}

/// Fields 3 and 5 of `/proc/PID/stat`; the command name (field 2) may hold spaces and
/// parentheses, so parsing starts after its last `)`.
pub(super) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(ProcStat { state, pgrp })
}

/// The state letter of `/proc/PID/stat` (`Z` for a zombie).
pub(super) fn proc_state(pid: u32) -> Option<char> {
    proc_stat(pid).map(|stat| stat.state)
}
