//! When an instance counts as `up`: a `web` instance once something of its
//! process group listens on its `PORT`, other types once spawned, or what hlocal.toml's
//! `ready = …` says (a log line matching a regex, an HTTP path answering).
//!
//! The port check reads the kernel's socket tables instead of connecting, so the app
//! sees no probe traffic and its logs stay clean. It polls every 20 ms: `up` is reported
//! well under 100 ms after the bind, for IPv4, IPv6 and dual-stack `[::]` listeners.
//! The scans (netlink, `/proc`) block, so they run on tokio's blocking threads, never on
//! the runtime's workers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use regex::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::sys;

#[derive(Debug, Clone)]
pub enum Readiness {
    /// Up as soon as the process is spawned.
    Spawned,
    /// Up once the process group listens on `PORT`.
    Port,
    /// Up once a line of its output matches.
    Log(Regex),
    /// Up once `GET path` on `PORT` answers 2xx or 3xx.
    Http(String),
}

/// How often a booting `web` instance's port is checked.
pub const PORT_POLL: Duration = Duration::from_millis(20);
/// When a booting web instance that listens elsewhere is pointed out, at the latest (half
/// its boot timeout if that is sooner).
pub const HINT_AFTER: Duration = Duration::from_secs(10);
/// How often, from then on, it is looked for until it shows or the boot timeout comes.
pub const HINT_POLL: Duration = Duration::from_millis(500);
/// How often a web instance that listens elsewhere is checked for a late bind on `PORT`.
pub const LATE_BIND_POLL: Duration = Duration::from_secs(1);
const HTTP_POLL: Duration = Duration::from_millis(100);

/// Waits until a process of group `pgid` listens on `port`, checking `every` so often;
/// returns where to reach it.
pub async fn port_bound(port: u16, pgid: u32, every: Duration) -> SocketAddr {
    loop {
        if let Some(addr) = blocking(move || bound_by_group(port, pgid)).await {
            return addr;
        }
        tokio::time::sleep(every).await;
    }
}

/// A port the group listens on other than its `PORT` (the lowest), if any.
pub async fn listening_elsewhere(pgid: u32) -> Option<u16> {
    blocking(move || {
        sys::group_listeners(pgid)
            .iter()
            .map(SocketAddr::port)
            .min()
    })
    .await
}

/// Runs a blocking scan (`/proc`, netlink) off the runtime's worker threads.
pub(super) async fn blocking<T: Send + 'static>(
    scan: impl FnOnce() -> Option<T> + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(scan).await.ok().flatten()
}

/// A listener on `port` held by the group. One whose holder cannot be seen (another
/// user's process, in another PID namespace) is taken as the app's: the port was free
/// when the instance started.
fn bound_by_group(port: u16, pgid: u32) -> Option<SocketAddr> {
    sys::group_listens_on(pgid, port).map(reachable)
}

/// The address to connect to for a listener: wildcards become loopback, IPv4-mapped
/// IPv6 addresses become IPv4. `[::]` is reached on `[::1]`, which works whether or not
/// the socket also accepts IPv4.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        other => other,
    };
    SocketAddr::new(ip, listen.port())
}

/// Waits until `GET path` on the port answers with a 2xx or 3xx status.
pub async fn http_answers(port: u16, path: &str) -> SocketAddr {
    let candidates = [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ];
    loop {
        for addr in candidates {
            let attempt = tokio::time::timeout(Duration::from_secs(2), probe(addr, path));
            if let Ok(Some(status)) = attempt.await
                && (200..400).contains(&status)
            {
                return addr;
            }
        }
        tokio::time::sleep(HTTP_POLL).await;
    }
}

/// One `GET` with `Connection: close`; the status code of the answer, if any.
async fn probe(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nUser-Agent: hlocal-ready-check\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 32];
    let mut filled = 0;
    while filled < 12 {
        let n = stream.read(&mut head[filled..]).await.ok()?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    status_code(&head[..filled])
}

/// `HTTP/1.1 200 OK` → 200.
fn status_code(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head.get(..12)?).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_reached_on_loopback() {
        let cases = [
            ("0.0.0.0:80", "127.0.0.1:80"),
            ("127.0.0.1:80", "127.0.0.1:80"),
            ("[::]:80", "[::1]:80"),
            ("[::1]:80", "[::1]:80"),
            ("[::ffff:127.0.0.1]:80", "127.0.0.1:80"),
        ];
        for (listen, want) in cases {
            let listen: SocketAddr = listen.parse().expect("addr");
            assert_eq!(reachable(listen), want.parse().expect("addr"), "{listen}");
        }
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 503 Service"), Some(503));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(status_code(b"HTTP"), None);
    }

    #[tokio::test]
    async fn detects_our_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let own_group = nix::unistd::getpgrp().as_raw().cast_unsigned();
        let addr = tokio::time::timeout(
            Duration::from_secs(5),
            port_bound(port, own_group, PORT_POLL),
        )
        .await
        .expect("detected");
        assert_eq!(addr, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }

    #[tokio::test]
    async fn finds_where_our_group_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let own_group = nix::unistd::getpgrp().as_raw().cast_unsigned();
        let found = blocking(move || Some(sys::group_listeners(own_group))).await;
        assert!(found.is_some_and(|addrs| addrs.iter().any(|a| a.port() == port)));
    }
}
