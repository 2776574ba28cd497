//! The interface we listen on: its index, its addresses, and a netlink watch that says when
//! either may have changed (DHCP renew, PPPoE reconnect, link deleted and re-created).
//!
//! knockd reads the addresses once at start and goes deaf after a change; here every link or
//! address notification leads to a fresh read.

use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The most addresses remembered for one interface.
pub const MAX_ADDRS: usize = 64;

/// The interface's addresses (fixed capacity: checked on every knock without allocating).
pub type Addrs = heapless::Vec<IpAddr, MAX_ADDRS>;

/// The interface index of `name`, if it exists now.
pub fn index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// The IPv4 and IPv6 addresses currently on the interface with index `ifindex`, asked of the
/// kernel over netlink. Addresses are matched by index, not by name, so IPv4 addresses with a
/// label (`ip addr add 192.0.2.9/24 dev eth0 label eth0:1`) count as the interface's, as
/// knockd's do. On a point-to-point link the local address is taken, never the peer's.
pub fn addresses(ifindex: u32) -> io::Result<Addrs> {
    let fd = netlink_socket()?;
    // struct nlmsghdr (16 bytes) + struct ifaddrmsg (8 bytes): dump every address.
    let mut req = [0u8; 24];
    req[0..4].copy_from_slice(&24u32.to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETADDR.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = libc::AF_UNSPEC as u8;
    // SAFETY: `req` is valid for reads of its length.
    let r = unsafe {
        libc::send(
            fd.as_raw_fd(),
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Addrs::new();
    let mut buf = vec![0u8; 16384];
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(out);
        }
        if parse_addr_dump(buf.get(..n as usize).unwrap_or_default(), ifindex, &mut out)? {
            return Ok(out);
        }
    }
}

/// Reads one datagram of an `RTM_GETADDR` dump, adding the addresses of `ifindex` to `out`;
/// `Ok(true)` once the dump is done. Never panics, whatever the bytes.
fn parse_addr_dump(mut msg: &[u8], ifindex: u32, out: &mut Addrs) -> io::Result<bool> {
    let u16_at = |b: &[u8], i: usize| {
        b.get(i..i + 2)
            .map_or(0, |v| u16::from_ne_bytes([v[0], v[1]]))
    };
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .map_or(0, |v| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
    };
    while msg.len() >= 16 {
        let len = u32_at(msg, 0) as usize;
        let kind = u16_at(msg, 4);
        if len < 16 || len > msg.len() {
            break;
        }
        let body = &msg[16..len];
        match kind as libc::c_int {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => {
                let code = u32_at(body, 0) as i32;
                return if code == 0 {
                    Ok(true)
                } else {
                    Err(io::Error::from_raw_os_error(-code))
                };
            }
            _ if kind == libc::RTM_NEWADDR && body.len() >= 8 && u32_at(body, 4) == ifindex => {
                let family = body[0] as libc::c_int;
                let (mut local, mut address) = (None, None);
                let mut attrs = &body[8..];
                while attrs.len() >= 4 {
                    let alen = u16_at(attrs, 0) as usize;
                    let atype = u16_at(attrs, 2);
                    if alen < 4 || alen > attrs.len() {
                        break;
                    }
                    let data = &attrs[4..alen];
                    let ip = match (family, data.len()) {
                        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(
                            data[0], data[1], data[2], data[3],
                        ))),
                        (libc::AF_INET6, 16) => {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(data);
                            Some(IpAddr::V6(Ipv6Addr::from(o)))
                        }
                        _ => None,
                    };
                    match atype {
                        libc::IFA_LOCAL => local = ip,
                        libc::IFA_ADDRESS => address = ip,
                        _ => {}
                    }
                    attrs = attrs.get((alen + 3) & !3..).unwrap_or_default();
                }
                // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on a
                // point-to-point link and the same as IFA_LOCAL elsewhere (IPv6 gives only it).
                if let Some(ip) = local.or(address) {
                    if !out.contains(&ip) && out.push(ip).is_err() {
                        log::warn!(
                            "more than {MAX_ADDRS} addresses on one interface; ignoring {ip}"
                        );
                    }
                }
            }
            _ => {}
        }
        msg = msg.get((len + 3) & !3..).unwrap_or_default();
    }
    Ok(false)
}

fn netlink_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; checked below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A netlink socket subscribed to link and address notifications.
pub struct Watch {
    fd: OwnedFd,
}

const RTMGRP_LINK: u32 = 1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

impl Watch {
    /// Subscribes to link and address changes.
    pub fn open() -> io::Result<Watch> {
        // SAFETY: plain socket(2) call; checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
        // SAFETY: `sa` is a valid sockaddr_nl and the length matches it.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Watch { fd })
    }

    /// Reads every pending notification; true if any was about a link or an address. An
    /// overrun (ENOBUFS) counts as "everything may have changed".
    pub fn drain(&self) -> bool {
        let mut changed = false;
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::ENOBUFS) {
                    changed = true;
                    continue;
                }
                return changed;
            }
            let mut msg = &buf[..n as usize];
            while msg.len() >= 16 {
                let len = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
                let kind = u16::from_ne_bytes([msg[4], msg[5]]);
                changed |= matches!(
                    kind,
                    libc::RTM_NEWLINK | libc::RTM_DELLINK | libc::RTM_NEWADDR | libc::RTM_DELADDR
                );
                let step = (len + 3) & !3;
                if len < 16 || step > msg.len() {
                    break;
                }
                msg = &msg[step..];
            }
        }
    }

    /// The descriptor, for poll(2).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One RTM_NEWADDR message: family, interface index, and (type, bytes) attributes.
    fn newaddr(family: u8, index: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![family, 24, 0, 0];
        body.extend(index.to_ne_bytes());
        for (t, data) in attrs {
            body.extend((4 + data.len() as u16).to_ne_bytes());
            body.extend(t.to_ne_bytes());
            body.extend(*data);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend(libc::RTM_NEWADDR.to_ne_bytes());
        m.extend([0; 10]);
        m.extend(body);
        m
    }

    #[test]
    fn dump_keeps_the_interface_addresses_by_index_labelled_or_not() {
        let label: &[u8] = b"eth0:1\0";
        let v6: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        let mut msg = newaddr(
            2,
            7,
            &[
                (libc::IFA_ADDRESS, &[192, 0, 2, 1]),
                (libc::IFA_LOCAL, &[192, 0, 2, 1]),
            ],
        );
        // A labelled address: same index, its own label.
        msg.extend(newaddr(
            2,
            7,
            &[(libc::IFA_LOCAL, &[192, 0, 2, 9]), (libc::IFA_LABEL, label)],
        ));
        // Point-to-point: IFA_ADDRESS is the peer, IFA_LOCAL ours.
        msg.extend(newaddr(
            2,
            7,
            &[
                (libc::IFA_ADDRESS, &[192, 0, 2, 202]),
                (libc::IFA_LOCAL, &[192, 0, 2, 201]),
            ],
        ));
        msg.extend(newaddr(10, 7, &[(libc::IFA_ADDRESS, &v6)]));
        // Another interface's address.
        msg.extend(newaddr(2, 8, &[(libc::IFA_LOCAL, &[192, 0, 2, 66])]));
        let mut out = Addrs::new();
        assert!(!parse_addr_dump(&msg, 7, &mut out).unwrap());
        let want: Vec<IpAddr> = ["192.0.2.1", "192.0.2.9", "192.0.2.201", "2001:db8::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(out.as_slice(), want.as_slice());
        let mut done = 20u32.to_ne_bytes().to_vec();
        done.extend((libc::NLMSG_DONE as u16).to_ne_bytes());
        done.extend([0; 14]);
        assert!(parse_addr_dump(&done, 7, &mut out).unwrap());
        // Cut anywhere: never panics, never reads a torn attribute.
        for n in 0..msg.len() {
            let mut o = Addrs::new();
            let _ = parse_addr_dump(&msg[..n], 7, &mut o);
        }
    }
}
