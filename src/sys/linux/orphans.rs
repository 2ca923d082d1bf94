//! Orphans: processes that left their process group *and* cleared their environment
//! (`setsid env -i daemon`), so neither a group signal nor the `HLOCAL_SESSION` mark
//! finds them. As a child subreaper hlocal inherits them when their parent dies; they
//! are then hlocal's children that tokio does not wait for.

use std::collections::HashSet;
use std::fs;

use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// Makes hlocal the reaper of its descendants' orphans (Linux's
/// `PR_SET_CHILD_SUBREAPER`): a process whose parent dies is re-parented to hlocal
/// instead of init, where hlocal can still stop it. Best effort: without it (an old
/// kernel) orphans go to init as before.
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// hlocal's direct children, from each thread's `/proc/self/task/T/children` (a child
/// belongs to the thread that forked it, an inherited orphan to any thread), each with
/// whether it is a zombie; `None` where the kernel does not offer the lists.
fn own_children() -> Option<Vec<(u32, bool)>> {
    let mut children = Vec::new();
    for task in fs::read_dir("/proc/self/task").ok()?.flatten() {
        let list = fs::read_to_string(task.path().join("children")).ok()?;
        children.extend(
            list.split_ascii_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    Some(
        children
            .into_iter()
            .filter_map(|pid| Some((pid, super::procfs::process(pid)?.zombie)))
            .collect(),
    )
}

/// Inherited children: every child but those in `own` (the runs tokio waits for, the
/// watchdog).
fn inherited(own: &HashSet<u32>) -> Vec<(u32, bool)> {
    own_children()
        .unwrap_or_default()
        .into_iter()
        .filter(|(pid, _)| !own.contains(pid))
        .collect()
}

/// Inherited children still running.
pub fn live_orphans(own: &HashSet<u32>) -> Vec<u32> {
    inherited(own)
        .into_iter()
        .filter(|&(_, zombie)| !zombie)
        .map(|(pid, _)| pid)
        .collect()
}

/// Reaps inherited children that exited, each by its pid: `waitpid(-1)` would also take
/// the statuses of the runs, which tokio waits for.
pub fn reap_orphans(own: &HashSet<u32>) {
    for (pid, zombie) in inherited(own) {
        if zombie {
            let pid = i32::try_from(pid).map(Pid::from_raw);
            if let Ok(pid) = pid {
                let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
            }
        }
    }
}
