//! One captured packet in, one candidate knock out.
//!
//! The capture socket is a cooked (`SOCK_DGRAM`) packet socket, so every link type (Ethernet,
//! VLAN, PPP, tun, WireGuard) hands over the bytes from the IP header on, with the ethertype
//! beside them. [`parse`] turns that into a [`Knock`] or says why the packet was dropped.
//!
//! Invariants: nothing in here panics or allocates, whatever the bytes; a packet whose headers
//! are cut short, inconsistent, or not TCP/UDP is reported as [`Dropped`], never trusted.

use crate::config::Proto;
use etherparse::{
    ip_number, IpNumber, Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice, TcpHeaderSlice,
    UdpHeaderSlice,
};
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

/// How many VLAN tags deep we look (as deep as the kernel filter does: the kernel itself
/// strips the outer tag before a packet socket sees it).
const MAX_TAGS: usize = 1;

/// Parses the bytes of a cooked capture (`bytes` starts at the network header) whose link
/// layer said `ethertype`.
pub fn parse(ethertype: u16, bytes: &[u8]) -> Result<Knock, Dropped> {
    let (src, dst, proto, rest) = transport(ethertype, bytes)?;
    let (proto, port, flags) = match proto {
        ip_number::TCP => {
            let tcp = TcpHeaderSlice::from_slice(rest).map_err(|_| Dropped::Malformed)?;
            (
                Proto::Tcp,
                tcp.destination_port(),
                tcp.slice().get(13).copied().unwrap_or(0),
            )
        }
        ip_number::UDP => {
            let udp = UdpHeaderSlice::from_slice(rest).map_err(|_| Dropped::Malformed)?;
            (Proto::Udp, udp.destination_port(), 0)
        }
        IpNumber(_) => return Err(Dropped::NotTransport),
    };
    Ok(Knock {
        src,
        dst,
        proto,
        port,
        flags,
    })
}

/// The addresses, transport protocol number and transport bytes of an IP packet (after at
/// most one VLAN tag the kernel left in place).
fn transport(
    mut ethertype: u16,
    mut bytes: &[u8],
) -> Result<(IpAddr, IpAddr, IpNumber, &[u8]), Dropped> {
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
    // Only the headers a knock needs are parsed (IP, IPv6 extensions, TCP or UDP): smaller
    // code than etherparse's whole-packet slicer, and nothing past the transport header.
    match ethertype {
        ethertype::IPV4 => {
            let ip = Ipv4HeaderSlice::from_slice(bytes).map_err(|_| Dropped::Malformed)?;
            if ip.fragments_offset().value() != 0 {
                return Err(Dropped::NotTransport); // a later fragment: no ports in it
            }
            let rest = &bytes[ip.slice().len()..];
            let (src, dst) = (ip.source_addr().into(), ip.destination_addr().into());
            Ok((src, dst, ip.protocol(), rest))
        }
        ethertype::IPV6 => {
            let ip = Ipv6HeaderSlice::from_slice(bytes).map_err(|_| Dropped::Malformed)?;
            let after = &bytes[ip.slice().len()..];
            let (exts, proto, rest) = Ipv6ExtensionsSlice::from_slice(ip.next_header(), after)
                .map_err(|_| Dropped::Malformed)?;
            if exts.is_fragmenting_payload() {
                return Err(Dropped::NotTransport);
            }
            let (src, dst) = (ip.source_addr().into(), ip.destination_addr().into());
            Ok((src, dst, proto, rest))
        }
        _ => Err(Dropped::NotIp),
    }
}

/// The payload of a UDP datagram (bounded by the UDP length field, so link padding is not
/// part of it), or `None` when the packet is not a whole UDP datagram. Used for SPA
/// packets, which carry their message in the payload.
pub fn udp_payload(ethertype: u16, bytes: &[u8]) -> Option<&[u8]> {
    let (_, _, proto, rest) = transport(ethertype, bytes).ok()?;
    if proto != ip_number::UDP {
        return None;
    }
    let udp = UdpHeaderSlice::from_slice(rest).ok()?;
    let end = usize::from(udp.length()).clamp(8, rest.len());
    rest.get(8..end)
}

#[cfg(test)]
pub(crate) mod tests;
