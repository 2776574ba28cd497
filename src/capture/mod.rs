//! The capture socket: one cooked `AF_PACKET` socket bound to the interface, with the
//! filter from [`filter`] attached before it sees a single packet.
//!
//! Cooked (`SOCK_DGRAM`) means the kernel strips the link header whatever the link is
//! (Ethernet, VLAN, PPP, tun, WireGuard) and reports the ethertype beside the bytes.

pub mod filter;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What [`Capture::recv`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Ethertype from the link layer (`sll_protocol`), host order.
    pub ethertype: u16,
    /// `PACKET_HOST`, `PACKET_OUTGOING`, ...
    pub pkttype: u8,
    /// Bytes copied into the buffer (the packet may have been longer).
    pub len: usize,
}

/// An open capture on one interface.
pub struct Capture {
    fd: OwnedFd,
    /// The interface index it is bound to.
    pub ifindex: u32,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Capture {
    /// Opens a capture on `ifindex` with `prog` attached.
    pub fn open(ifindex: u32, prog: &[filter::Insn]) -> io::Result<Capture> {
        // Protocol 0 first: the socket receives nothing until bind, so no packet can slip in
        // before the filter is attached.
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `fd` is a fresh descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let cap = Capture { fd, ifindex };
        cap.set_filter(prog)?;
        let rcvbuf: libc::c_int = 512 * 1024;
        // SAFETY: the option value points at a live c_int of the given size.
        unsafe {
            libc::setsockopt(
                cap.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &rcvbuf as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length matches it.
        check(unsafe {
            libc::bind(
                cap.fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(cap)
    }

    /// Replaces the filter (the doors changed: reload, one-time sequence used).
    pub fn set_filter(&self, prog: &[filter::Insn]) -> io::Result<()> {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `filter::Insn` has the layout of `sock_filter`; the kernel copies the
        // program during the call, while `prog` is alive.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                &fprog as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    /// Reads one packet into `buf`; `Ok(None)` when nothing is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Frame>> {
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` and `sll` are valid for writes of the lengths given.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut sll as *mut _ as *mut libc::sockaddr,
                &mut len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(Frame {
            ethertype: u16::from_be(sll.sll_protocol),
            pkttype: sll.sll_pkttype,
            len: (n as usize).min(buf.len()),
        }))
    }

    /// Packets the kernel dropped because the socket's queue was full, since the last call
    /// (the kernel resets the count when it is read).
    pub fn drops(&self) -> u64 {
        // SAFETY: tpacket_stats is plain data; the length passed matches it.
        let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut st as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if r == 0 {
            st.tp_drops as u64
        } else {
            0
        }
    }

    /// The descriptor, for poll(2).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
