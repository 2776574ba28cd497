use super::*;
use crate::config::flag;
use etherparse::PacketBuilder;

/// An IPv4 TCP SYN from 192.0.2.2 to 192.0.2.1:`port`, from the IP header on.
pub(crate) fn syn4(port: u16) -> Vec<u8> {
    let b = PacketBuilder::ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64)
        .tcp(40000, port, 1, 1024)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

pub(crate) fn udp4(port: u16) -> Vec<u8> {
    let b = PacketBuilder::ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64).udp(40000, port);
    let mut v = Vec::new();
    b.write(&mut v, &[0]).unwrap();
    v
}

pub(crate) fn syn6(port: u16) -> Vec<u8> {
    let src = "2001:db8::2"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let dst = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let b = PacketBuilder::ipv6(src, dst, 64)
        .tcp(40000, port, 1, 1024)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

/// The same SYN behind a hop-by-hop options header (8 bytes: next header, length 0, padding).
pub(crate) fn syn6_hop_by_hop(port: u16) -> Vec<u8> {
    let mut v = syn6(port);
    let next = v[6];
    v[6] = 0; // hop-by-hop
    let plen = u16::from_be_bytes([v[4], v[5]]) + 8;
    v[4..6].copy_from_slice(&plen.to_be_bytes());
    let ext = [next, 0, 1, 4, 0, 0, 0, 0];
    v.splice(40..40, ext);
    v
}

#[test]
fn tcp_udp_v4_v6() {
    let k = parse(ethertype::IPV4, &syn4(7000)).unwrap();
    assert_eq!(k.src, "192.0.2.2".parse::<IpAddr>().unwrap());
    assert_eq!(k.dst, "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!((k.proto, k.port, k.flags), (Proto::Tcp, 7000, flag::SYN));
    let k = parse(ethertype::IPV4, &udp4(8000)).unwrap();
    assert_eq!((k.proto, k.port, k.flags), (Proto::Udp, 8000, 0));
    let k = parse(ethertype::IPV6, &syn6(9000)).unwrap();
    assert_eq!(k.src, "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!((k.proto, k.port), (Proto::Tcp, 9000));
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let k = parse(ethertype::IPV6, &syn6_hop_by_hop(9000)).unwrap();
    assert_eq!((k.proto, k.port), (Proto::Tcp, 9000));
}

#[test]
fn vlan_tag_left_in_place() {
    let mut v = vec![0x00, 0x05, 0x08, 0x00];
    v.extend(syn4(7000));
    assert_eq!(parse(ethertype::VLAN, &v).unwrap().port, 7000);
    assert_eq!(parse(ethertype::VLAN, &v[..3]), Err(Dropped::Malformed));
}

#[test]
fn truncated_and_inconsistent_packets_are_malformed() {
    let p = syn4(7000);
    for cut in [0, 1, 10, 19, 20, 25, 39] {
        assert!(parse(ethertype::IPV4, &p[..cut]).is_err(), "cut at {cut}");
    }
    for cut in [1, 25, 39, 20] {
        assert_eq!(
            parse(ethertype::IPV4, &p[..cut]),
            Err(Dropped::Malformed),
            "cut {cut}"
        );
    }
    // Ethertype says IPv6, bytes say IPv4.
    assert_eq!(parse(ethertype::IPV6, &p), Err(Dropped::Malformed));
    // Header length field below the minimum.
    let mut bad = p.clone();
    bad[0] = 0x41;
    assert_eq!(parse(ethertype::IPV4, &bad), Err(Dropped::Malformed));
    assert_eq!(parse(0x0806, &p), Err(Dropped::NotIp));
}

#[test]
fn later_fragments_and_icmp_are_not_knocks() {
    let mut frag = udp4(7000);
    frag[6] = 0x00;
    frag[7] = 0x10; // fragment offset 16 (x 8 bytes)
    assert_eq!(parse(ethertype::IPV4, &frag), Err(Dropped::NotTransport));
    let icmp = PacketBuilder::ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64).icmpv4_echo_request(1, 1);
    let mut v = Vec::new();
    icmp.write(&mut v, &[]).unwrap();
    assert_eq!(parse(ethertype::IPV4, &v), Err(Dropped::NotTransport));
}

#[test]
fn every_prefix_and_bit_flip_is_handled() {
    for p in [syn4(7000), udp4(7000), syn6(7000), syn6_hop_by_hop(7000)] {
        for cut in 0..=p.len() {
            let _ = parse(ethertype::IPV4, &p[..cut]);
            let _ = parse(ethertype::IPV6, &p[..cut]);
        }
        for i in 0..p.len() * 8 {
            let mut q = p.clone();
            q[i / 8] ^= 1 << (i % 8);
            let _ = parse(ethertype::IPV4, &q);
            let _ = parse(ethertype::IPV6, &q);
        }
    }
}

/// An IPv4 UDP datagram to `port` carrying `payload`.
pub(crate) fn udp4_with(port: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64).udp(40000, port);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// An IPv6 UDP datagram to `port` carrying `payload`.
pub(crate) fn udp6_with(port: u16, payload: &[u8]) -> Vec<u8> {
    let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let b = PacketBuilder::ipv6(src, dst, 64).udp(40000, port);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

#[test]
fn udp_payload_is_bounded_by_the_udp_length() {
    let mut p = udp4_with(62201, b"hello");
    assert_eq!(udp_payload(ethertype::IPV4, &p), Some(&b"hello"[..]));
    p.extend_from_slice(&[0; 6]); // link padding after the datagram
    assert_eq!(udp_payload(ethertype::IPV4, &p), Some(&b"hello"[..]));
    let p6 = udp6_with(62201, b"spa");
    assert_eq!(udp_payload(ethertype::IPV6, &p6), Some(&b"spa"[..]));
    assert_eq!(udp_payload(ethertype::IPV4, &syn4(22)), None);
    assert_eq!(udp_payload(ethertype::IPV4, &p[..25]), None);
}
