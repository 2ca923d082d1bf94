//! Listening sockets in portable terms: ports, addresses and pids. How a platform finds
//! them (sock_diag and `/proc` inodes on Linux, libproc on macOS) stays in its folder.

use super::{os, process};

pub use os::{group_listeners, group_listens_on, listening_ports, port_owners};

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
/// Blocking: scans every process's sockets, only when a listener is found.
pub fn port_holders(port: u16, session: &str) -> Vec<Option<PortHolder>> {
    port_owners(port)
        .into_iter()
        .map(|pid| {
            pid.map(|pid| PortHolder {
                pid,
                command: process::process_command(pid),
                ours: process::in_session(pid, session),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn our_group_listens_where_we_bound() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let group = process::own_group();
        assert_eq!(group_listens_on(group, addr.port()), Some(addr));
        assert!(group_listeners(group).contains(&addr));
    }
}
