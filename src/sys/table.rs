//! The process table in one shape for every platform, and the pure questions asked of
//! it: who is in a process group, who carries the session mark, what a command line
//! reads. The platform folders (`linux/`, `macos/`) fill the shapes from `/proc` or
//! from libproc and `KERN_PROCARGS2`; this file makes no system call, so the Linux test
//! suite runs it on recorded inputs for both.

/// One process as the table reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcEntry {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// Exited, waiting to be reaped: it holds no resources and cannot be stopped.
    pub zombie: bool,
}

/// The live (non-zombie) members of group `pgid`.
pub fn group_members(table: &[ProcEntry], pgid: u32) -> Vec<u32> {
    table
        .iter()
        .filter(|p| p.pgid == pgid && !p.zombie)
        .map(|p| p.pid)
        .collect()
}

/// The live processes other than `own` (hlocal itself, or the watchdog).
pub fn live_others(table: &[ProcEntry], own: u32) -> impl Iterator<Item = u32> + '_ {
    table
        .iter()
        .filter(move |p| p.pid != own && !p.zombie)
        .map(|p| p.pid)
}

/// Whether a NUL-separated environment block holds exactly `entry` (`NAME=value`).
pub fn env_has(block: &[u8], entry: &[u8]) -> bool {
    block.split(|&b| b == 0).any(|var| var == entry)
}

/// NUL-separated words (`/proc/PID/cmdline`, the arguments of `KERN_PROCARGS2`) as one
/// line for messages; `None` when there are none (a kernel thread, a zombie).
pub fn command_words(block: &[u8]) -> Option<String> {
    let words: Vec<String> = block
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: u32, pgid: u32, zombie: bool) -> ProcEntry {
        ProcEntry {
            pid,
            ppid: 1,
            pgid,
            zombie,
        }
    }

    #[test]
    fn a_group_is_its_live_members() {
        let table = [
            entry(10, 10, false),
            entry(11, 10, false),
            entry(12, 10, true),
            entry(20, 20, false),
        ];
        assert_eq!(group_members(&table, 10), [10, 11]);
        assert_eq!(group_members(&table, 30), Vec::<u32>::new());
        assert_eq!(live_others(&table, 11).collect::<Vec<_>>(), [10, 20]);
    }

    #[test]
    fn the_session_mark_matches_whole_entries_only() {
        let block = b"PATH=/bin\0HLOCAL_SESSION=42-7\0HOME=/h\0";
        assert!(env_has(block, b"HLOCAL_SESSION=42-7"));
        assert!(!env_has(block, b"HLOCAL_SESSION=42"));
        assert!(!env_has(b"XHLOCAL_SESSION=42-7\0", b"HLOCAL_SESSION=42-7"));
        assert!(!env_has(b"", b"HLOCAL_SESSION=42-7"));
    }

    #[test]
    fn command_lines_join_their_words() {
        assert_eq!(
            command_words(b"python3\0-m\0http.server\0").as_deref(),
            Some("python3 -m http.server")
        );
        assert_eq!(command_words(b"\0\0"), None);
        assert_eq!(command_words(b"caf\xe9\0").as_deref(), Some("caf\u{fffd}"));
    }
}
