//! Who is on the other end of an accepted socket, as far as the kernel can tell: for a
//! unix socket its credentials (`SO_PEERCRED`), for TCP the owner of the client's socket
//! in this network namespace's socket tables (`/proc/net/tcp`, `/proc/net/tcp6`).
//!
//! Deciding whether that peer may be served is the listener's job, not this module's.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;

/// The user behind a client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A process on this machine running as `uid`; unix sockets also say which process.
    Local { uid: u32, pid: Option<i32> },
    /// A client on another machine (or in another network namespace): its socket is in
    /// none of this machine's tables, so no local user can be named for it.
    Remote,
    /// The kernel's tables do not say who it is; the text says why.
    Unknown(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Local { uid, pid } => {
                write!(f, "uid {uid} ({})", crate::procfs::user_name(*uid))?;
                if let Some(pid) = pid {
                    let comm = crate::procfs::comm(*pid).unwrap_or_else(|_| "?".into());
                    write!(f, ", pid {pid} ({comm})")?;
                }
                Ok(())
            }
            Peer::Remote => write!(
                f,
                "a client on another machine, whose user latch cannot know"
            ),
            Peer::Unknown(why) => write!(f, "an unknown user ({why})"),
        }
    }
}

/// The credentials the kernel recorded when the client connected to our unix socket.
pub fn unix_peer(stream: &impl AsFd) -> Peer {
    match nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(cred) => Peer::Local {
            uid: cred.uid(),
            pid: (cred.pid() > 0).then_some(cred.pid()),
        },
        Err(err) => Peer::Unknown(format!("SO_PEERCRED failed: {err}")),
    }
}

/// The owner of the client's end of a TCP connection we accepted: `local` is our end's
/// address, `peer` the client's. Both ends of a connection made on this machine are in
/// its tables; the client's is the entry whose local address is `peer` and whose remote
/// address is `local`.
pub fn tcp_peer(local: SocketAddr, peer: SocketAddr) -> Peer {
    let mut tables = String::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(table) {
            Ok(text) => tables.push_str(&text),
            // A kernel without IPv6 has no tcp6; tcp itself missing is reported below.
            Err(err) if table.ends_with('6') => tracing::debug!("reading {table}: {err}"),
            Err(err) => return Peer::Unknown(format!("cannot read {table}: {err}")),
        }
    }
    match socket_owner(&tables, peer, local) {
        Owner::Live(uid) => Peer::Local { uid, pid: None },
        Owner::Gone => Peer::Unknown(format!(
            "its socket {peer} is closed or being closed, so /proc/net/tcp no longer names \
             its owner"
        )),
        Owner::NotFound if is_local(peer, local) => Peer::Unknown(format!(
            "no socket {peer} connected to {local} in /proc/net/tcp or /proc/net/tcp6"
        )),
        Owner::NotFound => Peer::Remote,
    }
}

/// A connection from loopback, or from the very address it reached, comes from this
/// machine: its socket must be in our tables, and not finding it is no reason to think
/// it remote.
fn is_local(peer: SocketAddr, local: SocketAddr) -> bool {
    let peer = peer.ip().to_canonical();
    peer.is_loopback() || peer == local.ip().to_canonical()
}

/// What the socket tables say about the socket bound to `address` and connected to
/// `remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// An open socket, owned by this uid.
    Live(u32),
    /// Only an entry with no socket behind it (inode 0): a connection closed by its
    /// process, in TIME_WAIT or orphaned. The kernel prints uid 0 for those, which must
    /// not be mistaken for root.
    Gone,
    NotFound,
}

/// Finds the owner of the socket `address` -> `remote` in the text of `/proc/net/tcp`
/// and/or `/proc/net/tcp6` (header lines are skipped). IPv4 addresses match their
/// IPv4-mapped IPv6 form and back, since a client's socket family need not be ours.
pub fn socket_owner(tables: &str, address: SocketAddr, remote: SocketAddr) -> Owner {
    let (address, remote) = (canonical(address), canonical(remote));
    let mut owner = Owner::NotFound;
    for entry in tables.lines().filter_map(TcpEntry::parse) {
        if canonical(entry.local) != address || canonical(entry.remote) != remote {
            continue;
        }
        if entry.inode == 0 {
            owner = Owner::Gone;
        } else {
            return Owner::Live(entry.uid);
        }
    }
    owner
}

fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

/// One line of `/proc/net/tcp{,6}`, the fields latch needs:
/// `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub uid: u32,
    pub inode: u64,
}

impl TcpEntry {
    /// None for the header and for any line not in the kernel's format.
    pub fn parse(line: &str) -> Option<TcpEntry> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 10 || !fields[0].ends_with(':') {
            return None;
        }
        Some(TcpEntry {
            local: parse_address(fields[1])?,
            remote: parse_address(fields[2])?,
            uid: fields[7].parse().ok()?,
            inode: fields[9].parse().ok()?,
        })
    }
}

/// `0100007F:1F90` (127.0.0.1:8080) or the 32-hex-digit IPv6 form. The kernel prints
/// each 32-bit word of the network-order address as a host-order integer, so the bytes
/// come back with `to_ne_bytes`; the port is printed as a plain number.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    // Lines as a little-endian kernel prints them (trailing fields shortened).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4A00 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:4A00 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:D431 0100007F:4A00 01 00000000:00000000 00:00000000 00000000 65534        0 1003 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:D432 0100007F:4A00 06 00000000:00000000 03:00000AA6 00000000     0        0 0 3 0000000000000000
   4: 0100007F:D433 0100007F:4A00 01 00000000:00000000 00:00000000 00000000 4294967294        0 1004 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn parses_ipv4_lines_and_skips_the_header() {
        let entries: Vec<TcpEntry> = TCP.lines().filter_map(TcpEntry::parse).collect();
        assert_eq!(entries.len(), 5);
        assert_eq!(
            entries[2],
            TcpEntry {
                local: addr("127.0.0.1:54321"),
                remote: addr("127.0.0.1:18944"),
                uid: 65534,
                inode: 1003,
            }
        );
        assert_eq!(entries[4].uid, u32::MAX - 1, "uids beyond 16 bits");
        assert_eq!(entries[0].remote, addr("0.0.0.0:0"));
    }

    #[test]
    fn finds_the_client_end_of_a_connection() {
        let (server, client) = (addr("127.0.0.1:18944"), addr("127.0.0.1:54321"));
        // Not our own end (uid 0, local = server), but the client's.
        assert_eq!(socket_owner(TCP, client, server), Owner::Live(65534));
        assert_eq!(socket_owner(TCP, server, client), Owner::Live(0));
        assert_eq!(
            socket_owner(TCP, addr("127.0.0.1:1"), server),
            Owner::NotFound
        );
    }

    #[test]
    fn a_closed_client_is_not_taken_for_root() {
        // TIME_WAIT: uid 0, inode 0. A client that connected, wrote and closed must not
        // pass for root.
        let client = addr("127.0.0.1:54322");
        assert_eq!(
            socket_owner(TCP, client, addr("127.0.0.1:18944")),
            Owner::Gone
        );
    }

    #[test]
    fn parses_ipv6_and_matches_ipv4_mapped_addresses() {
        // ::1 port 8080 -> 127.0.0.1 (mapped) port 40000, owned by uid 1000.
        let tcp6 = "  sl  local_address                         remote_address                        st ...
   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 2001 1 0000000000000000 20 4 30 10 -1
";
        let entry = tcp6.lines().find_map(TcpEntry::parse).unwrap();
        assert_eq!(entry.local, addr("[::1]:8080"));
        assert_eq!(entry.remote, addr("[::ffff:127.0.0.1]:40000"));
        assert_eq!(
            socket_owner(tcp6, addr("[::1]:8080"), addr("127.0.0.1:40000")),
            Owner::Live(1000)
        );
    }

    #[test]
    fn rejects_what_is_not_a_table_line() {
        for line in [
            "",
            "garbage",
            "   0: 0100007F:4A00 00000000:0000 0A",
            "   0: 0100007F 00000000:0000 0A 0:0 0:0 0 0 0 1 1",
            "   0: 0100007:4A00 00000000:0000 0A 0:0 0:0 0 0 0 1 1",
            "   0: 0100007F:4A00 00000000:0000 0A 0:0 0:0 0 x 0 1 1",
        ] {
            assert_eq!(TcpEntry::parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn a_socket_pair_names_this_process() {
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(
            unix_peer(&ours),
            Peer::Local {
                uid: nix::unistd::geteuid().as_raw(),
                pid: Some(std::process::id() as i32),
            }
        );
    }

    #[test]
    fn a_real_loopback_connection_is_found_in_the_tables() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, from) = listener.accept().unwrap();
        assert_eq!(from, client.local_addr().unwrap());
        assert_eq!(
            tcp_peer(accepted.local_addr().unwrap(), from),
            Peer::Local {
                uid: nix::unistd::geteuid().as_raw(),
                pid: None
            }
        );
    }
}
