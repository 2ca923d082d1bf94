//! libproc's answers read as bytes: the list of a process's descriptors
//! (`PROC_PIDLISTFDS`), a process's short BSD info (`PROC_PIDT_SHORTBSDINFO`) and a
//! socket's description (`PROC_PIDFDSOCKETINFO`, `struct socket_fdinfo` of
//! `<sys/proc_info.h>`). libc declares the calls but not the socket structs, so the
//! fields are read at their offsets here: plain code the Linux tests run, with the
//! layout checked against a `#[repr(C)]` transcription of the header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::sys::table::ProcEntry;

/// `struct proc_fileinfo` comes first; `struct socket_info` follows.
const SOCKET_INFO: usize = 24;
const SOI_KIND: usize = SOCKET_INFO + 232;
/// `soi_proto`, the union whose `pri_tcp` is a `struct tcp_sockinfo`, which starts with
/// a `struct in_sockinfo`.
const IN_SOCKINFO: usize = SOCKET_INFO + 240;
const INSI_LPORT: usize = IN_SOCKINFO + 4;
const INSI_VFLAG: usize = IN_SOCKINFO + 24;
const INSI_LADDR: usize = IN_SOCKINFO + 48;
const TCPSI_STATE: usize = IN_SOCKINFO + 80;

const SOCKINFO_TCP: i32 = 2;
const TSI_S_LISTEN: i32 = 1;
const INI_IPV4: u8 = 0x1;
const INI_IPV6: u8 = 0x2;

/// `struct proc_fdinfo`: the descriptor, then its type.
const PROC_FDINFO_SIZE: usize = 8;
const PROX_FDTYPE_SOCKET: u32 = 2;

/// `p_stat` of a process that exited and was not reaped yet.
const SZOMB: u32 = 5;

fn u32_at(record: &[u8], at: usize) -> Option<u32> {
    let bytes = record.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn i32_at(record: &[u8], at: usize) -> Option<i32> {
    u32_at(record, at).map(u32::cast_signed)
}

/// The socket descriptors in a `PROC_PIDLISTFDS` answer.
pub fn socket_fds(list: &[u8]) -> Vec<i32> {
    list.chunks_exact(PROC_FDINFO_SIZE)
        .filter(|entry| u32_at(entry, 4) == Some(PROX_FDTYPE_SOCKET))
        .filter_map(|entry| i32_at(entry, 0))
        .collect()
}

/// A `struct proc_bsdshortinfo`: pid, ppid, pgid and status are its first four words.
pub fn short_info(record: &[u8]) -> Option<ProcEntry> {
    Some(ProcEntry {
        pid: u32_at(record, 0)?,
        ppid: u32_at(record, 4)?,
        pgid: u32_at(record, 8)?,
        zombie: u32_at(record, 12)? == SZOMB,
    })
}

/// Where a socket listens, if it is a TCP socket in LISTEN state. The local port is kept
/// in network byte order in the low half of an `int`; an IPv4 address sits in the last
/// four bytes of the 16-byte address (`struct in4in6_addr`).
pub fn listening_addr(record: &[u8]) -> Option<SocketAddr> {
    if i32_at(record, SOI_KIND)? != SOCKINFO_TCP || i32_at(record, TCPSI_STATE)? != TSI_S_LISTEN {
        return None;
    }
    let port = u16::from_be_bytes(record.get(INSI_LPORT..INSI_LPORT + 2)?.try_into().ok()?);
    let addr: [u8; 16] = record.get(INSI_LADDR..INSI_LADDR + 16)?.try_into().ok()?;
    let vflag = *record.get(INSI_VFLAG)?;
    let ip = if vflag & INI_IPV6 != 0 {
        IpAddr::V6(Ipv6Addr::from(addr))
    } else if vflag & INI_IPV4 != 0 {
        IpAddr::V4(Ipv4Addr::new(addr[12], addr[13], addr[14], addr[15]))
    } else {
        return None;
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    /// `sizeof(struct socket_fdinfo)` on both macOS targets (64-bit).
    const SOCKET_FDINFO_SIZE: usize = 792;

    /// `<sys/proc_info.h>`'s socket structs, field by field, so the compiler computes the
    /// offsets the parser uses (the unions are represented by their largest member).
    #[allow(dead_code)]
    mod header {
        #[repr(C)]
        pub struct ProcFileinfo {
            pub fi_openflags: u32,
            pub fi_status: u32,
            pub fi_offset: i64,
            pub fi_type: i32,
            pub fi_guardflags: u32,
        }
        #[repr(C)]
        pub struct VinfoStat {
            pub vst_dev: u32,
            pub vst_mode: u16,
            pub vst_nlink: u16,
            pub vst_ino: u64,
            pub vst_uid: u32,
            pub vst_gid: u32,
            pub vst_times: [i64; 8],
            pub vst_size: i64,
            pub vst_blocks: i64,
            pub vst_blksize: i32,
            pub vst_flags: u32,
            pub vst_gen: u32,
            pub vst_rdev: u32,
            pub vst_qspare: [i64; 2],
        }
        #[repr(C)]
        pub struct SockbufInfo {
            pub sbi_cc: u32,
            pub sbi_hiwat: u32,
            pub sbi_mbcnt: u32,
            pub sbi_mbmax: u32,
            pub sbi_lowat: u32,
            pub sbi_flags: i16,
            pub sbi_timeo: i16,
        }
        #[repr(C)]
        pub struct InSockinfo {
            pub insi_fport: i32,
            pub insi_lport: i32,
            pub insi_gencnt: u64,
            pub insi_flags: u32,
            pub insi_flow: u32,
            pub insi_vflag: u8,
            pub insi_ip_ttl: u8,
            pub rfu_1: u32,
            pub insi_faddr: [u32; 4],
            pub insi_laddr: [u32; 4],
            pub insi_v4: u8,
            pub insi_v6: InsiV6,
        }
        #[repr(C)]
        pub struct InsiV6 {
            pub in6_hlim: u8,
            pub in6_cksum: i32,
            pub in6_ifindex: u16,
            pub in6_hops: i16,
        }
        #[repr(C)]
        pub struct TcpSockinfo {
            pub tcpsi_ini: InSockinfo,
            pub tcpsi_state: i32,
            pub tcpsi_timer: [i32; 4],
            pub tcpsi_mss: i32,
            pub tcpsi_flags: u32,
            pub rfu_1: u32,
            pub tcpsi_tp: u64,
        }
        /// `struct un_sockinfo`, the union's largest member: two pointers and two
        /// `SOCK_MAXADDRLEN` (255) byte addresses.
        #[repr(C)]
        pub struct UnSockinfo {
            pub unsi_conn_so: u64,
            pub unsi_conn_pcb: u64,
            pub unsi_addrs: [u8; 510],
        }
        #[repr(C)]
        pub struct SocketInfo {
            pub soi_stat: VinfoStat,
            pub soi_so: u64,
            pub soi_pcb: u64,
            pub soi_type: i32,
            pub soi_protocol: i32,
            pub soi_family: i32,
            pub soi_shorts: [i16; 7],
            pub soi_error: u16,
            pub soi_oobmark: u32,
            pub soi_rcv: SockbufInfo,
            pub soi_snd: SockbufInfo,
            pub soi_kind: i32,
            pub rfu_1: u32,
            pub soi_proto: UnSockinfo,
        }
        #[repr(C)]
        pub struct SocketFdinfo {
            pub pfi: ProcFileinfo,
            pub psi: SocketInfo,
        }
    }

    #[test]
    fn offsets_match_the_header() {
        use header::*;
        let proto = offset_of!(SocketFdinfo, psi) + offset_of!(SocketInfo, soi_proto);
        assert_eq!(size_of::<SocketFdinfo>(), SOCKET_FDINFO_SIZE);
        assert_eq!(offset_of!(SocketFdinfo, psi), SOCKET_INFO);
        assert_eq!(SOCKET_INFO + offset_of!(SocketInfo, soi_kind), SOI_KIND);
        assert_eq!(proto, IN_SOCKINFO);
        assert_eq!(proto + offset_of!(InSockinfo, insi_lport), INSI_LPORT);
        assert_eq!(proto + offset_of!(InSockinfo, insi_vflag), INSI_VFLAG);
        assert_eq!(proto + offset_of!(InSockinfo, insi_laddr), INSI_LADDR);
        assert_eq!(proto + offset_of!(TcpSockinfo, tcpsi_state), TCPSI_STATE);
    }

    /// A socket record as the kernel fills it for `kind`/`state`, listening at `addr`.
    fn record(kind: i32, state: i32, addr: SocketAddr) -> Vec<u8> {
        let mut r = vec![0u8; SOCKET_FDINFO_SIZE];
        r[SOI_KIND..SOI_KIND + 4].copy_from_slice(&kind.to_ne_bytes());
        r[TCPSI_STATE..TCPSI_STATE + 4].copy_from_slice(&state.to_ne_bytes());
        r[INSI_LPORT..INSI_LPORT + 2].copy_from_slice(&addr.port().to_be_bytes());
        let (vflag, octets) = match addr.ip() {
            IpAddr::V4(v4) => (INI_IPV4, v4.to_ipv6_compatible().octets()),
            IpAddr::V6(v6) => (INI_IPV6, v6.octets()),
        };
        r[INSI_VFLAG] = vflag;
        r[INSI_LADDR..INSI_LADDR + 16].copy_from_slice(&octets);
        r
    }

    #[test]
    fn tcp_listeners_are_read_with_their_address() {
        for text in ["127.0.0.1:5006", "0.0.0.0:80", "[::]:8080", "[::1]:65535"] {
            let addr: SocketAddr = text.parse().expect("addr");
            let found = listening_addr(&record(SOCKINFO_TCP, TSI_S_LISTEN, addr));
            assert_eq!(found, Some(addr), "{text}");
        }
    }

    #[test]
    fn other_sockets_and_short_records_are_skipped() {
        let addr: SocketAddr = "127.0.0.1:5006".parse().expect("addr");
        let established = 4;
        assert_eq!(
            listening_addr(&record(SOCKINFO_TCP, established, addr)),
            None
        );
        let unix_socket = 3;
        assert_eq!(
            listening_addr(&record(unix_socket, TSI_S_LISTEN, addr)),
            None
        );
        let full = record(SOCKINFO_TCP, TSI_S_LISTEN, addr);
        for len in [0, 10, TCPSI_STATE, INSI_LADDR + 15] {
            assert_eq!(listening_addr(&full[..len]), None, "{len} bytes");
        }
        let mut no_family = full;
        no_family[INSI_VFLAG] = 0;
        assert_eq!(listening_addr(&no_family), None);
    }

    #[test]
    fn socket_descriptors_are_picked_from_the_fd_list() {
        let vnode = 1u32;
        let mut list = Vec::new();
        for (fd, kind) in [
            (0i32, vnode),
            (3, PROX_FDTYPE_SOCKET),
            (7, PROX_FDTYPE_SOCKET),
        ] {
            list.extend_from_slice(&fd.to_ne_bytes());
            list.extend_from_slice(&kind.to_ne_bytes());
        }
        assert_eq!(socket_fds(&list), [3, 7]);
        assert_eq!(
            socket_fds(&list[..20]),
            [3],
            "a torn last entry is left out"
        );
    }

    #[test]
    fn short_info_gives_the_table_entry() {
        let mut r = Vec::new();
        for word in [4242u32, 1, 4200, SZOMB] {
            r.extend_from_slice(&word.to_ne_bytes());
        }
        r.extend_from_slice(&[0; 48]);
        let entry = short_info(&r).expect("entry");
        assert_eq!((entry.pid, entry.ppid, entry.pgid), (4242, 1, 4200));
        assert!(entry.zombie);
        assert_eq!(short_info(&r[..15]), None);
    }
}
