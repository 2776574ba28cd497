//! One captured packet in, one candidate knock out.
//!
//! The capture socket is a cooked (`SOCK_DGRAM`) packet socket, so every link type (Ethernet,
//! VLAN, PPP, tun, WireGuard) hands over the bytes from the IP header on, with the ethertype
//! beside them. [`parse`] turns that into a [`Knock`] or says why the packet was dropped.
//!
//! Invariants: nothing in here panics or allocates, whatever the bytes; a packet whose headers
//! are cut short, inconsistent, or not TCP/UDP is reported as [`Dropped`], never trusted.

use crate::config::Proto;
use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use std::net::IpAddr;

/// Ethertypes the capture deals with.
pub mod ethertype {
    /// IPv4
    pub const IPV4: u16 = 0x0800;
    /// IPv6
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q VLAN tag (seen when the kernel did not strip it, e.g. the inner tag of QinQ).
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag.
    pub const QINQ: u16 = 0x88a8;
}

/// A TCP or UDP packet that might be a knock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knock {
    /// Sender: the knocker.
    pub src: IpAddr,
    /// Destination address (the interface's own, or a door's `Target`).
    pub dst: IpAddr,
    /// Transport protocol.
    pub proto: Proto,
    /// Destination port.
    pub port: u16,
    /// TCP flag byte (0 for UDP).
    pub flags: u8,
}

/// Why a packet was not a candidate knock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Neither IPv4 nor IPv6 (ARP, LLDP, ...): not counted as malformed.
    NotIp,
    /// IP, but not a whole TCP or UDP header (ICMP, a later fragment): not malformed either.
    NotTransport,
    /// Headers cut short or inconsistent: counted as malformed.
    Malformed,
}

/// How many VLAN tags deep we look before giving up.
const MAX_TAGS: usize = 2;

/// Parses the bytes of a cooked capture (`bytes` starts at the network header) whose link
/// layer said `ethertype`.
pub fn parse(mut ethertype: u16, mut bytes: &[u8]) -> Result<Knock, Dropped> {
    for _ in 0..MAX_TAGS {
        if ethertype != ethertype::VLAN && ethertype != ethertype::QINQ {
            break;
        }
        // A tag left in place: 2 bytes TCI, 2 bytes inner ethertype, then the payload.
        let Some(tag) = bytes.get(..4) else {
            return Err(Dropped::Malformed);
        };
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        bytes = &bytes[4..];
    }
    let version = match ethertype {
        ethertype::IPV4 => 4,
        ethertype::IPV6 => 6,
        _ => return Err(Dropped::NotIp),
    };
    if bytes.first().map(|b| b >> 4) != Some(version) {
        return Err(Dropped::Malformed);
    }
    let sliced = LaxSlicedPacket::from_ip(bytes).map_err(|_| Dropped::Malformed)?;
    let (src, dst) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
            )
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
            )
        }
        _ => return Err(Dropped::Malformed),
    };
    match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            let flags = tcp.header_slice().get(13).copied().unwrap_or(0);
            Ok(Knock {
                src,
                dst,
                proto: Proto::Tcp,
                port: tcp.destination_port(),
                flags,
            })
        }
        Some(TransportSlice::Udp(udp)) => Ok(Knock {
            src,
            dst,
            proto: Proto::Udp,
            port: udp.destination_port(),
            flags: 0,
        }),
        Some(_) => Err(Dropped::NotTransport),
        // Cut short inside the transport header, or a header etherparse refused: malformed.
        // A later fragment carries no transport header by design: not malformed.
        None if sliced.stop_err.is_some() => Err(Dropped::Malformed),
        None => Err(Dropped::NotTransport),
    }
}

#[cfg(test)]
pub(crate) mod tests;
