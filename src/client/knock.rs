//! Sending one knock: a single TCP SYN or a single one-byte UDP datagram.
//!
//! A TCP knock must be exactly one packet. A blocking connect to a port the server drops would
//! retransmit the SYN (after 1 s, 3 s, ...), and knockd counts each copy as a fresh hit, which
//! can break the sequence it belongs to or the next one. So the socket is made non-blocking,
//! connect() puts the SYN on the wire, and the socket is closed before any answer: a socket in
//! SYN-SENT is dropped silently (no RST, no retransmission). The operating-system specific part
//! is the one function `tcp_syn`, with one version per platform family.

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

/// Unix: non-blocking connect, then close at once.
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

/// Elsewhere (Windows): std's connect with a timeout far below the first SYN retransmission
/// (1 s or more on every Windows stack), so one SYN leaves and the socket is dropped before a
/// second one would. A short wait rather than an immediate close because Windows may still be
/// queueing the SYN when connect() returns.
#[cfg(not(unix))]
fn tcp_syn(addr: SocketAddr) -> io::Result<()> {
    use std::net::TcpStream;
    use std::time::Duration;

    match TcpStream::connect_timeout(&addr, Duration::from_millis(50)) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};
    use std::time::Duration;

    #[test]
    fn sockaddr_round_trip() {
        let (s, len) = sockaddr("192.0.2.1:7000".parse().unwrap());
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in>());
        // SAFETY: just written as a sockaddr_in.
        let sin = unsafe { &*(&s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
        assert_eq!(u16::from_be(sin.sin_port), 7000);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [192, 0, 2, 1]);
    }

    #[test]
    fn tcp_knock_reaches_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        send(l.local_addr().unwrap(), Proto::Tcp).unwrap();
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
