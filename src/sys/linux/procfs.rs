//! What `/proc` says: the process table (`/proc/PID/stat`), a process's environment,
//! command line and sockets, and the TCP socket tables (`/proc/net/tcp`, the fallback
//! where netlink is not allowed). A leaf of `sys::linux`: `sockets`, `sockdiag` and
//! `orphans` read through it and it uses none of them.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::sys::table::{self, ProcEntry};

/// A TCP socket in LISTEN state, and the inode that names it in `/proc/PID/fd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    pub inode: u64,
}

/// Every process `/proc` lists (those that exit meanwhile are left out).
pub fn process_table() -> Vec<ProcEntry> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(process)
        .collect()
}

/// The live members of group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    table::group_members(&process_table(), pgid)
}

/// One process, from `/proc/PID/stat`.
pub fn process(pid: u32) -> Option<ProcEntry> {
    parse_stat(pid, &fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Fields 3 (state), 4 (ppid) and 5 (pgrp) of `/proc/PID/stat`; the command name
/// (field 2) may hold spaces and parentheses, so parsing starts after its last `)`.
fn parse_stat(pid: u32, text: &str) -> Option<ProcEntry> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(ProcEntry {
        pid,
        ppid,
        pgid,
        zombie: state == "Z",
    })
}

/// The environment of `pid`, NUL-separated (readable for the user's own processes).
pub fn environ(pid: u32) -> Option<Vec<u8>> {
    fs::read(format!("/proc/{pid}/environ")).ok()
}

/// The command line of a process, or its name where the command line is empty.
pub fn command_line(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    table::command_words(&raw).or_else(|| {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .map(|c| c.trim().to_string())
    })
}

/// The inodes of the sockets process `pid` holds open.
pub fn socket_inodes(pid: u32) -> Vec<u64> {
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

/// Every listening socket of `/proc/net/tcp` and `/proc/net/tcp6`.
pub fn tcp_listeners() -> Vec<Listener> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_tricky_command_name() {
        let text = "4242 (my) (server) S 4000 4100 4000 0 -1 4194560 ...";
        let entry = parse_stat(4242, text).expect("parsed");
        assert_eq!((entry.ppid, entry.pgid, entry.zombie), (4000, 4100, false));
        assert!(parse_stat(1, "1 (z) Z 0 7 7").expect("parsed").zombie);
        assert_eq!(parse_stat(1, "garbage"), None);
    }

    #[test]
    fn this_process_is_in_the_table() {
        let own = std::process::id();
        assert!(process_table().iter().any(|p| p.pid == own && !p.zombie));
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
}
