//! Listening sockets and who holds them, on Linux: the socket tables name each listener
//! by inode (sock_diag, else `/proc/net/tcp`), and a process's `/proc/PID/fd` links name
//! the inodes it holds. Inodes stay in this file; `sys` hands out addresses and pids.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::procfs::{self, Listener};

/// Every listening TCP socket: from sock_diag (fast), else from `/proc/net` (where
/// netlink is not allowed).
fn listeners() -> Vec<Listener> {
    super::sockdiag::listeners().unwrap_or_else(|_| procfs::tcp_listeners())
}

fn listeners_on(port: u16) -> Vec<Listener> {
    listeners()
        .into_iter()
        .filter(|l| l.addr.port() == port)
        .collect()
}

/// The ports something listens on (TCP, IPv4 or IPv6), from one read of the tables.
pub fn listening_ports() -> HashSet<u16> {
    listeners().iter().map(|l| l.addr.port()).collect()
}

/// The process holding each listener on `port`, each once; `None` for a holder that
/// cannot be seen (another user's process). Scans every process's fds: only used on
/// error paths and before a restart.
pub fn port_owners(port: u16) -> Vec<Option<u32>> {
    let mut owners: Vec<Option<u32>> = listeners_on(port)
        .iter()
        .map(|l| socket_holder(l.inode))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    owners
}

/// The process holding socket `inode` open, if it can be seen.
fn socket_holder(inode: u64) -> Option<u32> {
    procfs::process_table()
        .into_iter()
        .map(|p| p.pid)
        .find(|&pid| procfs::socket_inodes(pid).contains(&inode))
}

/// The sockets the live members of group `pgid` hold.
fn group_sockets(pgid: u32) -> HashSet<u64> {
    procfs::group_members(pgid)
        .into_iter()
        .flat_map(procfs::socket_inodes)
        .collect()
}

/// Where the processes of group `pgid` listen, whatever the port.
pub fn group_listeners(pgid: u32) -> Vec<SocketAddr> {
    let sockets = group_sockets(pgid);
    if sockets.is_empty() {
        return Vec::new();
    }
    listeners()
        .into_iter()
        .filter(|l| sockets.contains(&l.inode))
        .map(|l| l.addr)
        .collect()
}

/// A listener on `port` held by group `pgid`. One whose holder cannot be seen (another
/// user's process, another PID namespace) is taken as the group's: the port was free
/// when the group started.
pub fn group_listens_on(pgid: u32, port: u16) -> Option<SocketAddr> {
    let on_port = listeners_on(port);
    if on_port.is_empty() {
        return None;
    }
    let sockets = group_sockets(pgid);
    on_port
        .iter()
        .find(|l| sockets.contains(&l.inode))
        .or_else(|| on_port.iter().find(|l| socket_holder(l.inode).is_none()))
        .map(|l| l.addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_listener_is_found_with_its_holder() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let found = listeners_on(addr.port());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(socket_holder(found[0].inode), Some(std::process::id()));
        assert!(listening_ports().contains(&addr.port()));
        assert_eq!(port_owners(addr.port()), [Some(std::process::id())]);
    }
}
