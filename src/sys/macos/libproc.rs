//! The system calls behind `sys` on macOS. Each call sits in one small function with
//! the buffer it fills; what the answers mean is read in `records` and `procargs`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::ptr;

use nix::libc::{self, c_int, c_void};

use super::{procargs, records};
use crate::sys::table::{self, ProcEntry};

/// Where a process lists its open descriptors.
pub const FD_DIR: &str = "/dev/fd";

/// The `si_code`s of a signal another process sent: `SI_USER` and `SI_QUEUE` of
/// `<sys/signal.h>` (not in libc).
pub const SENT_SIGNAL_CODES: &[i32] = &[0x10001, 0x10002];

/// `PROC_PIDFDSOCKETINFO` of `<sys/proc_info.h>` (not in libc).
const PROC_PIDFDSOCKETINFO: c_int = 3;
/// A `struct proc_bsdshortinfo` is 64 bytes; room to spare costs nothing.
const SHORT_INFO_SIZE: usize = 128;
/// The buffer for one `struct socket_fdinfo` (792 bytes): the kernel refuses a smaller
/// one and fills only the struct's size of a larger one, so the margin costs nothing
/// and guards against a miscounted size; the fields `records` reads are in the first
/// half.
const SOCKET_RECORD_ROOM: usize = 1024;

/// A byte count as libproc's `int` buffer sizes take it.
fn c_len(buffer: &[u8]) -> c_int {
    c_int::try_from(buffer.len()).unwrap_or(c_int::MAX)
}

/// The pids `proc_listallpids` or `proc_listpgrppids` (`group`) returns.
fn list_pids(group: Option<u32>) -> Vec<u32> {
    // Room for the processes that start between the count and the list.
    const SLACK: usize = 64;
    let mut pids: Vec<c_int> = vec![0; 1024];
    loop {
        let bytes = c_int::try_from(pids.len() * size_of::<c_int>()).unwrap_or(c_int::MAX);
        let buffer = pids.as_mut_ptr().cast::<c_void>();
        let count = match group.map(c_int::try_from) {
            // SAFETY: `buffer` holds `bytes` bytes of `int`s; the call writes at most
            // that many and returns how many pids it wrote.
            None => unsafe { libc::proc_listallpids(buffer, bytes) },
            // SAFETY: as above.
            Some(Ok(pgid)) => unsafe { libc::proc_listpgrppids(pgid, buffer, bytes) },
            Some(Err(_)) => return Vec::new(),
        };
        let Ok(count) = usize::try_from(count) else {
            return Vec::new();
        };
        if count < pids.len() {
            pids.truncate(count);
            return pids
                .into_iter()
                .filter_map(|p| u32::try_from(p).ok())
                .collect();
        }
        pids.resize(pids.len() * 2 + SLACK, 0);
    }
}

/// `proc_pidinfo(pid, flavor)` into `buffer`; the bytes written (0 when refused: the
/// process is gone, a zombie, or another user's). With an empty buffer: the size the
/// answer needs. Never more than the buffer holds, so callers can slice by it.
fn pid_info(pid: u32, flavor: c_int, buffer: &mut [u8]) -> usize {
    let Ok(pid) = c_int::try_from(pid) else {
        return 0;
    };
    let size = c_len(buffer);
    let out = if buffer.is_empty() {
        ptr::null_mut()
    } else {
        buffer.as_mut_ptr().cast::<c_void>()
    };
    // SAFETY: `out` is null (asking for the size) or holds `size` writable bytes.
    let written = unsafe { libc::proc_pidinfo(pid, flavor, 0, out, size) };
    let written = usize::try_from(written).unwrap_or(0);
    if buffer.is_empty() {
        written
    } else {
        written.min(buffer.len())
    }
}

/// `proc_pidfdinfo(pid, fd, PROC_PIDFDSOCKETINFO)`: the socket's record.
fn socket_info(pid: c_int, fd: c_int, buffer: &mut [u8; SOCKET_RECORD_ROOM]) -> usize {
    let size = c_len(buffer);
    let out = buffer.as_mut_ptr().cast::<c_void>();
    // SAFETY: `out` holds `size` writable bytes, more than a `struct socket_fdinfo`.
    let written = unsafe { libc::proc_pidfdinfo(pid, fd, PROC_PIDFDSOCKETINFO, out, size) };
    usize::try_from(written).unwrap_or(0).min(buffer.len())
}

/// `sysctl(mib)` into `buffer`; the bytes written.
fn sysctl_read(mib: &mut [c_int], buffer: &mut [u8]) -> Option<usize> {
    let mut len = buffer.len();
    let levels = u32::try_from(mib.len()).ok()?;
    // SAFETY: `mib` holds `levels` ints; `buffer` holds `len` writable bytes and the
    // kernel writes back how many it used; nothing is set (null new value).
    let status = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            levels,
            buffer.as_mut_ptr().cast::<c_void>(),
            &raw mut len,
            ptr::null_mut(),
            0,
        )
    };
    (status == 0).then_some(len.min(buffer.len()))
}

/// One process, from `PROC_PIDT_SHORTBSDINFO`.
pub fn process(pid: u32) -> Option<ProcEntry> {
    let mut buffer = [0u8; SHORT_INFO_SIZE];
    let written = pid_info(pid, libc::PROC_PIDT_SHORTBSDINFO, &mut buffer);
    records::short_info(&buffer[..written])
}

/// Every process the user may see.
pub fn process_table() -> Vec<ProcEntry> {
    list_pids(None).into_iter().filter_map(process).collect()
}

/// The live members of group `pgid`: one call for the list, one per member.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let listed: Vec<ProcEntry> = list_pids(Some(pgid))
        .into_iter()
        .filter_map(process)
        .collect();
    table::group_members(&listed, pgid)
}

/// The `KERN_PROCARGS2` buffer of `pid`, as large as `KERN_ARGMAX` allows.
fn procargs_buffer(pid: u32) -> Option<Vec<u8>> {
    let mut argmax = [0u8; size_of::<c_int>()];
    sysctl_read(&mut [libc::CTL_KERN, libc::KERN_ARGMAX], &mut argmax)?;
    let argmax = usize::try_from(c_int::from_ne_bytes(argmax)).ok()?;
    let mut buffer = vec![0u8; argmax];
    let pid = c_int::try_from(pid).ok()?;
    let written = sysctl_read(
        &mut [libc::CTL_KERN, libc::KERN_PROCARGS2, pid],
        &mut buffer,
    )?;
    buffer.truncate(written);
    Some(buffer)
}

/// The environment of `pid`, NUL-separated.
pub fn environ(pid: u32) -> Option<Vec<u8>> {
    let buffer = procargs_buffer(pid)?;
    Some(procargs::parse(&buffer)?.env.to_vec())
}

/// The command line of a process.
pub fn command_line(pid: u32) -> Option<String> {
    let buffer = procargs_buffer(pid)?;
    table::command_words(procargs::parse(&buffer)?.args)
}

/// Where process `pid` listens (TCP), from each of its sockets' records.
fn tcp_listeners(pid: u32) -> Vec<SocketAddr> {
    let needed = pid_info(pid, libc::PROC_PIDLISTFDS, &mut []);
    // Room for the descriptors opened between the size and the list.
    let mut list = vec![0u8; needed + 32 * 8];
    let written = pid_info(pid, libc::PROC_PIDLISTFDS, &mut list);
    let Ok(pid) = c_int::try_from(pid) else {
        return Vec::new();
    };
    let mut record = [0u8; SOCKET_RECORD_ROOM];
    records::socket_fds(&list[..written])
        .into_iter()
        .filter_map(|fd| {
            let written = socket_info(pid, fd, &mut record);
            records::listening_addr(&record[..written])
        })
        .collect()
}

/// Every visible process's listeners. Other users' processes cannot be asked: their
/// listeners are not seen (a server of theirs on a wanted port shows at bind time).
fn all_listeners() -> HashMap<u32, Vec<SocketAddr>> {
    list_pids(None)
        .into_iter()
        .map(|pid| (pid, tcp_listeners(pid)))
        .filter(|(_, found)| !found.is_empty())
        .collect()
}

/// The ports something of this user listens on.
pub fn listening_ports() -> HashSet<u16> {
    all_listeners()
        .values()
        .flatten()
        .map(SocketAddr::port)
        .collect()
}

/// The processes listening on `port`; every one is visible here (see `all_listeners`).
pub fn port_owners(port: u16) -> Vec<Option<u32>> {
    let mut owners: Vec<Option<u32>> = all_listeners()
        .into_iter()
        .filter(|(_, found)| found.iter().any(|a| a.port() == port))
        .map(|(pid, _)| Some(pid))
        .collect();
    owners.sort_unstable();
    owners
}

/// Where the processes of group `pgid` listen, whatever the port.
pub fn group_listeners(pgid: u32) -> Vec<SocketAddr> {
    group_members(pgid)
        .into_iter()
        .flat_map(tcp_listeners)
        .collect()
}

/// A listener on `port` held by group `pgid`.
pub fn group_listens_on(pgid: u32, port: u16) -> Option<SocketAddr> {
    group_listeners(pgid).into_iter().find(|a| a.port() == port)
}

/// macOS has no subreaper: orphans go to launchd.
pub fn become_subreaper() {}

/// Never any: without a subreaper hlocal inherits no orphans.
pub fn live_orphans(_own: &HashSet<u32>) -> Vec<u32> {
    Vec::new()
}

/// Nothing to reap (see `live_orphans`).
pub fn reap_orphans(_own: &HashSet<u32>) {}

/// The running binary, to start the watchdog from.
pub fn executable() -> io::Result<PathBuf> {
    std::env::current_exe()
}

/// The watchdog's `argv[0]` already names it for `ps`.
pub fn name_watchdog() {}

/// The calling thread runs as a background thread (lowest CPU and I/O priority).
pub fn lower_thread_priority() {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let _ = unsafe { libc::setpriority(libc::PRIO_DARWIN_THREAD, 0, libc::PRIO_DARWIN_BG) };
}
