//! The capture socket: one cooked `AF_PACKET` socket bound to the interface, with the
//! filter from [`filter`] attached before it sees a single packet.
//!
//! Cooked (`SOCK_DGRAM`) means the kernel strips the link header whatever the link is
//! (Ethernet, VLAN, PPP, tun, WireGuard) and reports the ethertype beside the bytes.
//!
//! Packets are read in batches ([`Batch`], one `recvmmsg` call for up to [`BATCH`] packets)
//! into buffers allocated and written once at start: a flood costs one system call per batch
//! rather than per packet, and no memory is touched for the first time under it. A lone
//! packet is still read the moment poll(2) says it is there.

pub mod filter;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Packets read by one [`Capture::recv_batch`] call, at most.
pub const BATCH: usize = 16;
/// Bytes kept of each packet: an Ethernet MTU's worth plus a VLAN tag the kernel left in place
/// (knocks need only the headers; an SPA packet fits whole).
pub const SLOT: usize = 1536;
/// The socket's receive queue, in bytes of kernel memory (see [`Capture::open`]).
const RCVBUF: libc::c_int = 2 << 20;

/// Why a capture could not be opened, and whether waiting can help.
#[derive(Debug)]
pub struct OpenError {
    /// The system's error.
    pub error: io::Error,
    /// What it means for the daemon, when waiting will not help (no privilege, no packet
    /// sockets in this kernel, a filter the kernel refuses): `None` for errors that may pass
    /// (the interface vanished, memory was short).
    pub permanent: Option<&'static str>,
}

impl OpenError {
    fn new(error: io::Error) -> OpenError {
        let permanent = match error.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Some("packet capture needs root or CAP_NET_RAW"),
            Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::ESOCKTNOSUPPORT) => {
                Some("this kernel has no packet sockets (CONFIG_PACKET)")
            }
            Some(libc::EINVAL) => Some("the kernel refused the capture filter"),
            _ => None,
        };
        OpenError { error, permanent }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.permanent {
            Some(why) => write!(f, "{} ({why})", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

/// What [`Capture::recv_batch`] read, per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Ethertype from the link layer (`sll_protocol`), host order.
    pub ethertype: u16,
    /// `PACKET_HOST`, `PACKET_OUTGOING`, ...
    pub pkttype: u8,
    /// Bytes kept (the packet may have been longer).
    pub len: usize,
}

/// Buffers for [`Capture::recv_batch`]: allocated and written once, reused for every batch.
pub struct Batch {
    bufs: Box<[[u8; SLOT]]>,
    iov: Box<[libc::iovec; BATCH]>,
    addrs: Box<[libc::sockaddr_ll; BATCH]>,
    hdrs: Box<[libc::mmsghdr; BATCH]>,
    len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        // SAFETY: iovec, sockaddr_ll and mmsghdr are plain data; zeroed is a valid value
        // (recv_batch fills them in before each use).
        let (iov, addrs, hdrs) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed(), std::mem::zeroed()) };
        Batch {
            // Written, not just allocated: the pages are resident from the start, so a flood
            // does not grow the daemon's memory. Built on the heap (a Box::new of an array
            // would pass it through the stack, whose pages would then stay resident too).
            bufs: vec![[0xff; SLOT]; BATCH].into_boxed_slice(),
            iov: Box::new(iov),
            addrs: Box::new(addrs),
            hdrs: Box::new(hdrs),
            len: 0,
        }
    }
}

impl Batch {
    /// Packets read by the last [`Capture::recv_batch`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last read found nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Packet `i` of the last read (`None` past the end): what the link layer said, and the
    /// bytes kept.
    pub fn get(&self, i: usize) -> Option<(Frame, &[u8])> {
        if i >= self.len {
            return None;
        }
        let sll = self.addrs.get(i)?;
        let len = (self.hdrs.get(i)?.msg_len as usize).min(SLOT);
        let frame = Frame {
            ethertype: u16::from_be(sll.sll_protocol),
            pkttype: sll.sll_pkttype,
            len,
        };
        Some((frame, self.bufs.get(i)?.get(..len)?))
    }
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

/// Checks that packet sockets can be opened at all (privilege, kernel support), so that a
/// daemon whose interfaces do not exist yet fails at start rather than when one appears.
pub fn probe() -> Result<(), OpenError> {
    // SAFETY: plain socket(2) call; the descriptor is closed at once.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(OpenError::new(io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor we own, dropped (closed) here.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

impl Capture {
    /// Opens a capture on `ifindex` with `prog` attached.
    pub fn open(ifindex: u32, prog: &[filter::Insn]) -> Result<Capture, OpenError> {
        Self::try_open(ifindex, prog).map_err(OpenError::new)
    }

    fn try_open(ifindex: u32, prog: &[filter::Insn]) -> io::Result<Capture> {
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
        // The queue a flood fills while the daemon is busy or not scheduled: 2 MiB of kernel
        // memory (libpcap's ring for knockd is as large, and in its resident memory), a few
        // milliseconds of a 200,000 packets/s flood. SO_RCVBUFFORCE passes rmem_max (root
        // has CAP_NET_ADMIN); without it, as much as rmem_max allows.
        let rcvbuf: libc::c_int = RCVBUF;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: the option value points at a live c_int of the given size.
            let r = unsafe {
                libc::setsockopt(
                    cap.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    &rcvbuf as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
        }
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

    /// Replaces the filter (the doors or the addresses changed). The kernel swaps programs
    /// atomically: every packet meets either the old program or the new one, never none.
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

    /// Reads the packets waiting, up to [`BATCH`], into `batch`; 0 when none is waiting.
    pub fn recv_batch(&self, batch: &mut Batch) -> io::Result<usize> {
        let b = &mut *batch;
        let slots = b.bufs.iter_mut().zip(b.iov.iter_mut());
        for ((buf, iov), (addr, hdr)) in slots.zip(b.addrs.iter_mut().zip(b.hdrs.iter_mut())) {
            *iov = libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: SLOT,
            };
            // SAFETY: msghdr is plain data; zeroed is a valid value, filled in below.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_name = addr as *mut _ as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            *hdr = libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            };
        }
        b.len = 0;
        // SAFETY: every header points at live buffers of `batch` of the lengths given; the
        // kernel writes at most BATCH messages (the length of `hdrs`).
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                b.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        b.len = (n as usize).min(BATCH);
        Ok(b.len)
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
