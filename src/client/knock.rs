//! Sending one knock: a single TCP SYN or a single one-byte UDP datagram.
//!
//! A TCP knock must be one SYN. A blocking connect to a port the server drops would
//! retransmit the SYN (after 1 s, 3 s, ...), and knockd counts each copy as a fresh hit, which
//! can break the sequence it belongs to or the next one. So the socket is made non-blocking,
//! connect() puts the SYN on the wire, and the socket is closed at once with an abortive close
//! (SO_LINGER {1, 0}): a socket in SYN-SENT is dropped silently (no RST, no retransmission).
//!
//! What reaches the wire, then (checked from a capture in tests/e2e/client-wire.sh): to a
//! port that is closed (the server answers RST) or filtered (no answer), one SYN and nothing
//! else. To a port something listens on, the server answers SYN-ACK and the client's kernel
//! cannot stay silent: if the SYN-ACK came before the close (a LAN), ACK then RST; if after
//! (a longer path), one RST in answer to it, one round trip after the SYN. Never a FIN, data
//! or a second SYN. No unprivileged socket option avoids that answer.
//!
//! The operating-system specific part is the one function `tcp_syn`, with one version per
//! platform family: on Windows the close comes after a short wait, see `SYN_WAIT`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use super::sequence::Proto;

/// Sends one knock to `addr` over `proto`.
pub fn send(addr: SocketAddr, proto: Proto) -> io::Result<()> {
    match proto {
        Proto::Tcp => tcp_syn(addr),
        Proto::Udp => udp_datagram(addr),
    }
}

/// One datagram with one zero byte, as knock sends: some daemons ignore empty datagrams.
fn udp_datagram(addr: SocketAddr) -> io::Result<()> {
    // A fresh socket per knock: an ICMP "port unreachable" caused by one knock would otherwise
    // surface as an error on the next send and drop that knock.
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.send_to(&[0], addr)?;
    Ok(())
}

/// Unix: non-blocking connect, then an abortive close at once.
#[cfg(unix)]
fn tcp_syn(addr: SocketAddr) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns. Owning it means it is closed
    // on every path out of this function; that close is what stops the retransmissions.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0
        || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // An abortive close (SO_LINGER {1, 0}): if the port answered before the close (a listener
    // on a LAN answers within microseconds, before connect() has even returned), the
    // connection ends with one RST rather than a FIN exchange that would send more packets to
    // the knock port (and hold the socket in FIN-WAIT for a minute).
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a struct linger of the size passed, on a descriptor we own.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast::<libc::c_void>(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a sockaddr_in/sockaddr_in6 of length `len`.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc == 0 {
        // Connected at once (only seen on loopback): the SYN went out all the same.
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // EINPROGRESS is the normal case: the SYN has left (or waits for ARP/ND in the kernel's
    // queue, which survives the close) and the handshake would go on without us.
    if err.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Builds the C socket address for `addr`, field by field because some Unixes (the BSDs) add
/// a length field that a struct literal would have to name.
#[cfg(unix)]
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// How long a Windows TCP knock waits for an answer before its socket is torn down.
///
/// Far below the first SYN re-send on every Windows stack (after a refusal Winsock retries the
/// SYN after about 500 ms, KB 175523; a silent port waits the initial RTO, 1 s or 3 s), so the
/// wait can never cost a second SYN; it only keeps a SYN that Windows may still be queueing
/// (for instance behind ARP/neighbour discovery) from being thrown away with the socket.
#[cfg(windows)]
const SYN_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Windows: the same non-blocking connect, then an abortive close (SO_LINGER {1, 0}).
///
/// A pending connect left to itself re-sends its SYN, and even after a refusal Winsock tries
/// again. std cannot do this: `connect_timeout` creates and closes its socket inside, with a
/// graceful close, and `set_linger` is unstable and needs a connected stream. So the socket is
/// made here (windows-sys), then wrapped in a `TcpStream`, whose drop is the `closesocket`.
/// A hard close deletes the connection attempt at once; in SYN-SENT it sends nothing (RFC 793's
/// ABORT), and under wine (Linux's stack) the capture shows no RST.
#[cfg(windows)]
fn tcp_syn(addr: SocketAddr) -> io::Result<()> {
    use std::net::TcpStream;
    use std::os::windows::io::{AsRawSocket, FromRawSocket, RawSocket};
    use windows_sys::Win32::Networking::WinSock as ws;

    winsock_init()?;
    let family = match addr {
        SocketAddr::V4(_) => ws::AF_INET,
        SocketAddr::V6(_) => ws::AF_INET6,
    };
    // SAFETY: plain socket() call; the result is checked before use.
    let raw = unsafe { ws::socket(family.into(), ws::SOCK_STREAM, ws::IPPROTO_TCP) };
    if raw == ws::INVALID_SOCKET {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh socket that nothing else owns. The stream closes it on every
    // path out of this function; that close is what ends the connection attempt.
    let stream = unsafe { TcpStream::from_raw_socket(raw as RawSocket) };
    let s = stream.as_raw_socket() as ws::SOCKET;
    stream.set_nonblocking(true)?;
    let linger = ws::LINGER {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a LINGER of the size passed.
    let rc = unsafe {
        ws::setsockopt(
            s,
            ws::SOL_SOCKET,
            ws::SO_LINGER,
            (&linger as *const ws::LINGER).cast::<u8>(),
            std::mem::size_of::<ws::LINGER>() as i32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let (sa, len) = sockaddr(addr);
    // SAFETY: `sa` holds a SOCKADDR_IN/SOCKADDR_IN6 of length `len`.
    let rc = unsafe {
        ws::connect(
            s,
            (&sa as *const ws::SOCKADDR_INET).cast::<ws::SOCKADDR>(),
            len,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(ws::WSAEWOULDBLOCK) => {}
            // Refused before connect() even returned: the SYN was sent and answered.
            Some(ws::WSAECONNREFUSED) => return Ok(()),
            _ => return Err(err),
        }
        // The SYN is on its way. Wait for an answer (SYN-ACK, or a refusal where the stack
        // reports one) or SYN_WAIT, whichever comes first. The outcome does not matter: the
        // knock has been sent either way, so select's result is not looked at.
        let mut set = ws::FD_SET {
            fd_count: 1,
            fd_array: [0; 64],
        };
        set.fd_array[0] = s;
        let mut except = set;
        let timeout = ws::TIMEVAL {
            tv_sec: 0,
            tv_usec: SYN_WAIT.as_micros() as i32,
        };
        // SAFETY: both sets and the timeout are valid for the call; nfds is ignored on Windows.
        unsafe { ws::select(0, std::ptr::null_mut(), &mut set, &mut except, &timeout) };
    }
    Ok(())
}

/// Starts Winsock once (std does the same lazily, but only inside its own socket calls).
#[cfg(windows)]
fn winsock_init() -> io::Result<()> {
    use std::sync::OnceLock;
    use windows_sys::Win32::Networking::WinSock as ws;

    static STARTED: OnceLock<i32> = OnceLock::new();
    let rc = *STARTED.get_or_init(|| {
        // SAFETY: all-zero bytes are a valid WSADATA, which WSAStartup fills in.
        let mut data: ws::WSADATA = unsafe { std::mem::zeroed() };
        // SAFETY: `data` is a valid out-pointer; version 2.2.
        unsafe { ws::WSAStartup(0x0202, &mut data) }
    });
    match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Builds the Winsock address for `addr`.
#[cfg(windows)]
fn sockaddr(addr: SocketAddr) -> (windows_sys::Win32::Networking::WinSock::SOCKADDR_INET, i32) {
    use windows_sys::Win32::Networking::WinSock as ws;

    let mut sa = ws::SOCKADDR_INET::default();
    let len = match addr {
        SocketAddr::V4(a) => {
            sa.Ipv4 = ws::SOCKADDR_IN {
                sin_family: ws::AF_INET,
                sin_port: a.port().to_be(),
                sin_addr: ws::IN_ADDR {
                    S_un: ws::IN_ADDR_0 {
                        S_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                },
                sin_zero: [0; 8],
            };
            std::mem::size_of::<ws::SOCKADDR_IN>()
        }
        SocketAddr::V6(a) => {
            sa.Ipv6 = ws::SOCKADDR_IN6 {
                sin6_family: ws::AF_INET6,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: ws::IN6_ADDR {
                    u: ws::IN6_ADDR_0 {
                        Byte: a.ip().octets(),
                    },
                },
                Anonymous: ws::SOCKADDR_IN6_0 {
                    sin6_scope_id: a.scope_id(),
                },
            };
            std::mem::size_of::<ws::SOCKADDR_IN6>()
        }
    };
    (sa, len as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};
    use std::time::Duration;

    #[cfg(unix)]
    #[test]
    fn sockaddr_round_trip() {
        let (s, len) = sockaddr("192.0.2.1:7000".parse().unwrap());
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in>());
        // SAFETY: just written as a sockaddr_in.
        let sin = unsafe { &*(&s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
        assert_eq!(u16::from_be(sin.sin_port), 7000);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [192, 0, 2, 1]);
    }

    #[cfg(windows)]
    #[test]
    fn sockaddr_round_trip() {
        let (sa, len) = sockaddr("192.0.2.1:7000".parse().unwrap());
        assert_eq!(len, 16);
        // SAFETY: just written as the Ipv4 member.
        let sin = unsafe { sa.Ipv4 };
        assert_eq!(u16::from_be(sin.sin_port), 7000);
        // SAFETY: S_addr is the whole of the union.
        assert_eq!(
            unsafe { sin.sin_addr.S_un.S_addr }.to_ne_bytes(),
            [192, 0, 2, 1]
        );
        let (sa, len) = sockaddr("[2001:db8::1%3]:7000".parse().unwrap());
        assert_eq!(len, 28);
        // SAFETY: just written as the Ipv6 member.
        let sin6 = unsafe { sa.Ipv6 };
        assert_eq!(sin6.sin6_family, 23);
        assert_eq!(u16::from_be(sin6.sin6_port), 7000);
        // SAFETY: plain integers and bytes in the unions.
        let (addr, scope) = unsafe { (sin6.sin6_addr.u.Byte, sin6.Anonymous.sin6_scope_id) };
        assert_eq!(addr[..2], [0x20, 0x01]);
        assert_eq!(scope, 3);
    }

    #[test]
    fn tcp_knock_reaches_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        send(l.local_addr().unwrap(), Proto::Tcp).unwrap();
    }

    #[test]
    fn tcp_knock_to_a_closed_port_is_not_an_error() {
        // Bind then drop: the port is closed, the SYN is answered with a reset.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        send(addr, Proto::Tcp).unwrap();
    }

    #[test]
    fn udp_knock_is_one_zero_byte() {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        r.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        send(r.local_addr().unwrap(), Proto::Udp).unwrap();
        let mut buf = [0xffu8; 8];
        let (n, _) = r.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0]);
    }
}
