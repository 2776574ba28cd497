use super::*;
use crate::config::{flag, parse};
use crate::packet::tests::{syn4, syn6, syn6_hop_by_hop, udp4};
use crate::packet::{self, ethertype};
use crate::tracker::{aimed, watches};
use etherparse::PacketBuilder;
use std::path::Path;

const SRV4: &str = "192.0.2.1";
const SRV6: &str = "2001:db8::1";

fn rules(guard: bool) -> Rules {
    Rules {
        sweep_guard: guard,
        sweep_window: 16,
        tolerate_repeats: true,
    }
}

fn local() -> Vec<IpAddr> {
    vec![SRV4.parse().unwrap(), SRV6.parse().unwrap()]
}

fn prog_at(text: &str, guard: bool, ipv6: bool, local: &[IpAddr]) -> Vec<Insn> {
    let cfg = parse(Path::new("t.conf"), text).unwrap();
    program(&spec(&cfg.doors, &rules(guard), local, ipv6), ipv6)
}

fn prog(text: &str, guard: bool, ipv6: bool) -> Vec<Insn> {
    prog_at(text, guard, ipv6, &local())
}

/// A TCP (flags `Some`) or UDP packet from `src` to `dst`:`port`, IPv4 or IPv6.
fn pkt(src: &str, dst: &str, port: u16, flags: Option<u8>) -> (u16, Vec<u8>) {
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let (et, b) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (
            ethertype::IPV4,
            PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => (
            ethertype::IPV6,
            PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        ),
        _ => panic!("mixed families"),
    };
    let mut v = Vec::new();
    match flags {
        Some(f) => {
            let off = if et == ethertype::IPV4 { 20 } else { 40 };
            b.tcp(40000, port, 1, 1024).write(&mut v, &[]).unwrap();
            v[off + 13] = f;
        }
        None => b.udp(40000, port).write(&mut v, &[0]).unwrap(),
    }
    (et, v)
}

fn pass(f: &[Insn], (et, p): &(u16, Vec<u8>)) -> bool {
    run(f, *et, HOST, p) != 0
}

const DOORS: &str = "[a]\nsequence = 7000,8000:udp\n[b]\nsequence = 9000:udp,7010\n";
const HOST: u8 = 0;

fn with_flags(mut p: Vec<u8>, flags: u8) -> Vec<u8> {
    p[20 + 13] = flags;
    p
}

#[test]
fn candidates_pass_and_the_rest_is_dropped() {
    let f = prog(DOORS, false, true);
    assert!(f.len() < 200);
    let v4 = ethertype::IPV4;
    assert_eq!(run(&f, v4, HOST, &syn4(7000)), ACCEPT);
    assert_eq!(run(&f, v4, HOST, &syn4(7010)), ACCEPT);
    assert_eq!(run(&f, v4, HOST, &udp4(8000)), ACCEPT);
    assert_eq!(run(&f, v4, HOST, &udp4(9000)), ACCEPT);
    assert_eq!(run(&f, v4, HOST, &syn4(8000)), 0, "tcp to a udp step");
    assert_eq!(run(&f, v4, HOST, &udp4(7000)), 0, "udp to a tcp step");
    assert_eq!(run(&f, v4, HOST, &udp4(53)), 0);
    assert_eq!(run(&f, v4, HOST, &syn4(22)), 0);
    assert_eq!(run(&f, v4, 4, &syn4(7000)), 0, "outgoing");
    assert_eq!(
        run(&f, v4, 3, &syn4(7000)),
        0,
        "for another MAC (PACKET_OTHERHOST)"
    );
    assert_eq!(run(&f, v4, 5, &syn4(7000)), 0, "a loopback copy");
    assert_eq!(run(&f, v4, 1, &syn4(7000)), ACCEPT, "broadcast");
    assert_eq!(run(&f, v4, 2, &syn4(7000)), ACCEPT, "multicast");
    assert_eq!(run(&f, ethertype::IPV6, HOST, &syn6(7000)), ACCEPT);
    assert_eq!(run(&f, ethertype::IPV6, HOST, &syn6(7001)), 0);
    assert_eq!(run(&f, ethertype::IPV6, HOST, &syn6_hop_by_hop(22)), ACCEPT);
    assert_eq!(run(&f, 0x0806, HOST, &[0; 28]), 0);
}

#[test]
fn only_ipv4_with_dash_4() {
    let f = prog(DOORS, false, false);
    assert_eq!(run(&f, ethertype::IPV6, HOST, &syn6(7000)), 0);
    assert_eq!(run(&f, ethertype::IPV4, HOST, &syn4(7000)), ACCEPT);
}

#[test]
fn guard_passes_probes_near_sequence_ports_of_their_protocol() {
    let f = prog(DOORS, true, true);
    let v4 = ethertype::IPV4;
    assert_eq!(run(&f, v4, HOST, &syn4(7001)), ACCEPT);
    assert_eq!(run(&f, v4, HOST, &syn4(6984)), ACCEPT);
    assert_eq!(run(&f, v4, HOST, &syn4(6983)), 0);
    assert_eq!(run(&f, v4, HOST, &syn4(22)), 0);
    assert_eq!(
        run(&f, v4, HOST, &syn4(9016)),
        0,
        "near a udp step port only"
    );
    assert_eq!(
        run(&f, v4, HOST, &udp4(9016)),
        ACCEPT,
        "udp near a udp step"
    );
    assert_eq!(
        run(&f, v4, HOST, &udp4(7001)),
        0,
        "udp near a tcp step only"
    );
    // Doors without TCPFlags take any TCP packet as a knock, so ACK sweeps are watched.
    for fl in [flag::ACK, flag::FIN, flag::FIN | flag::ACK, 0, flag::RST] {
        assert_eq!(
            run(&f, v4, HOST, &with_flags(syn4(7001), fl)),
            ACCEPT,
            "{fl:#x}"
        );
    }
}

#[test]
fn tcp_flags_of_the_doors_using_a_port_are_checked_in_the_kernel() {
    let text = "[s]\nsequence = 7000,8000\ntcpflags = syn,!ack\n\
                [y]\nsequence = 7100\ntcpflags = syn\n\
                [a]\nsequence = 7200,8000\n";
    for guard in [false, true] {
        let f = prog(text, guard, true);
        let t = |port, fl| pass(&f, &pkt("192.0.2.2", SRV4, port, Some(fl)));
        let t6 = |port, fl| pass(&f, &pkt("2001:db8::2", SRV6, port, Some(fl)));
        assert!(t(7000, flag::SYN) && t6(7000, flag::SYN));
        for fl in [
            flag::ACK,
            flag::RST,
            flag::SYN | flag::ACK,
            flag::RST | flag::ACK,
            0,
        ] {
            assert!(!t(7000, fl) && !t6(7000, fl), "{fl:#x} to a syn,!ack port");
        }
        assert!(
            t(7000, flag::SYN | flag::PSH),
            "bits outside the test are free"
        );
        assert!(t(7100, flag::SYN) && t(7100, flag::SYN | flag::ACK));
        assert!(!t(7100, flag::ACK) && !t(7100, flag::FIN));
        assert!(t(7200, flag::ACK) && t(7200, flag::RST));
        // 8000 is used by a syn,!ack door and a door without flags: either passes it.
        assert!(t(8000, flag::SYN) && t(8000, flag::ACK));
        assert_eq!(t(7005, flag::SYN), guard);
        assert!(!t(7005, flag::ACK), "guard window of a syn,!ack door");
        assert_eq!(
            t(7205, flag::ACK),
            guard,
            "guard window of a door without flags"
        );
    }
}

#[test]
fn only_the_interface_addresses_or_the_target_pass() {
    let text = "[l]\nsequence = 7000,8000\n\
                [t]\nsequence = 7100,8100:udp\ntarget = 192.0.2.50\n\
                [t6]\nsequence = 7200\ntarget = 2001:db8::50\n";
    let f = prog(text, false, true);
    let syn = |dst: &str, port| {
        pass(
            &f,
            &pkt(
                if dst.contains(':') {
                    "2001:db8::2"
                } else {
                    "192.0.2.2"
                },
                dst,
                port,
                Some(flag::SYN),
            ),
        )
    };
    assert!(syn(SRV4, 7000) && syn(SRV6, 7000));
    assert!(
        !syn("192.0.2.99", 7000),
        "an address that is not the interface's"
    );
    assert!(!syn("2001:db8::99", 7000));
    assert!(!syn("192.0.2.50", 7000), "a Target is not a local address");
    assert!(syn("192.0.2.50", 7100) && !syn(SRV4, 7100));
    assert!(pass(&f, &pkt("192.0.2.2", "192.0.2.50", 8100, None)));
    assert!(!pass(&f, &pkt("192.0.2.2", SRV4, 8100, None)));
    assert!(syn("2001:db8::50", 7200) && !syn(SRV6, 7200) && !syn("2001:db8::50", 7000));
    // An IPv6 address that differs in its last word only.
    assert!(!syn("2001:db8::1:1", 7000));
    // Extension headers still reach the parser, but only when sent to a watched address.
    assert_eq!(run(&f, ethertype::IPV6, HOST, &syn6_hop_by_hop(22)), ACCEPT);
    let mut other = syn6_hop_by_hop(22);
    other[39] = 0x99;
    assert_eq!(run(&f, ethertype::IPV6, HOST, &other), 0);
    // With no address yet (a PPP link still coming up) only Targets are watched.
    let none = prog_at(text, false, true, &[]);
    assert!(!pass(&none, &pkt("192.0.2.2", SRV4, 7000, Some(flag::SYN))));
    assert!(pass(
        &none,
        &pkt("192.0.2.2", "192.0.2.50", 7100, Some(flag::SYN))
    ));
    // A Target that is also a local address gets both doors' ports.
    let both = "[l]\nsequence = 7000\n[t]\nsequence = 7100\ntarget = 192.0.2.1\n";
    let f = prog(both, false, true);
    assert!(pass(&f, &pkt("192.0.2.2", SRV4, 7000, Some(0))));
    assert!(pass(&f, &pkt("192.0.2.2", SRV4, 7100, Some(0))));
}

#[test]
fn a_new_program_follows_an_address_change() {
    let before = prog_at(DOORS, true, true, &["192.0.2.1".parse().unwrap()]);
    let after = prog_at(
        DOORS,
        true,
        true,
        &["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()],
    );
    let to = |dst: &str| {
        pkt(
            if dst == "2001:db8::7" {
                "2001:db8::2"
            } else {
                "192.0.2.2"
            },
            dst,
            7000,
            Some(flag::SYN),
        )
    };
    assert!(pass(&before, &to("192.0.2.1")) && !pass(&before, &to("192.0.2.7")));
    assert!(!pass(&after, &to("192.0.2.1")) && pass(&after, &to("192.0.2.7")));
    assert!(!pass(&before, &to("2001:db8::7")) && pass(&after, &to("2001:db8::7")));
}

/// The filter passes exactly what the tracker acts on, packet for packet: every protocol,
/// flag byte, port around the doors' ports, and destination, for several door mixes.
#[test]
fn the_filter_passes_exactly_what_the_tracker_watches() {
    let text = "[a]\nsequence = 7000,7050:udp,7100\n\
                [b]\nsequence = 7100,7140\ntcpflags = syn,!ack\n\
                [c]\nsequence = 7200:udp,7000\ntcpflags = fin,urg\ntarget = 192.0.2.60\n\
                [d]\nsequence = 65530,1\ntcpflags = !rst\ntarget = 2001:db8::60\n";
    let cfg = parse(Path::new("t.conf"), text).unwrap();
    let lo = local();
    let is_local = |ip: IpAddr| lo.contains(&ip);
    let dsts = [
        "192.0.2.1",
        "192.0.2.60",
        "192.0.2.61",
        SRV6,
        "2001:db8::60",
        "2001:db8::61",
    ];
    let ports: Vec<u16> = (6980..7230)
        .step_by(3)
        .chain([1, 2, 17, 18, 65514, 65535, 65513])
        .collect();
    for guard in [false, true] {
        let r = rules(guard);
        let f = program(&spec(&cfg.doors, &r, &lo, true), true);
        for dst in dsts {
            let src = if dst.contains(':') {
                "2001:db8::2"
            } else {
                "192.0.2.2"
            };
            for &port in &ports {
                let kinds = (0..64u8).map(Some).chain([None]);
                for fl in kinds {
                    let p = pkt(src, dst, port, fl);
                    let k = packet::parse(p.0, &p.1).unwrap();
                    let want = cfg
                        .doors
                        .iter()
                        .any(|d| aimed(d, &is_local, k.dst) && watches(d, &r, &k));
                    assert_eq!(pass(&f, &p), want, "guard {guard}: {k:?}");
                }
            }
        }
    }
}

#[test]
fn ipv4_options_fragments_and_vlan() {
    let f = prog(DOORS, false, true);
    // A 24-byte IPv4 header (one NOP-padded option word): ports are found after it.
    let mut p = syn4(7000);
    p[0] = 0x46;
    p.splice(20..20, [1, 1, 1, 0]);
    assert_eq!(run(&f, ethertype::IPV4, HOST, &p), ACCEPT);
    let mut frag = udp4(8000);
    frag[7] = 0x10;
    assert_eq!(run(&f, ethertype::IPV4, HOST, &frag), 0);
    let mut tagged = vec![0, 5, 0x08, 0x00];
    tagged.extend(syn4(7000));
    assert_eq!(run(&f, ethertype::VLAN, HOST, &tagged), ACCEPT);
    let mut tagged = vec![0, 5, 0x08, 0x00];
    tagged.extend(syn4(22));
    assert_eq!(run(&f, ethertype::VLAN, HOST, &tagged), 0);
}

#[test]
fn short_packets_are_dropped_not_misread() {
    let f = prog(DOORS, true, true);
    let p = syn4(7000);
    for cut in 0..22 {
        assert_eq!(run(&f, ethertype::IPV4, HOST, &p[..cut]), 0, "cut {cut}");
    }
}

#[test]
fn large_configs_still_assemble_with_short_jumps() {
    let mut text = String::new();
    for d in 0..40 {
        let ports: Vec<String> = (0..32).map(|i| (1000 + d * 40 + i).to_string()).collect();
        text.push_str(&format!("[d{d}]\nsequence = {}\n", ports.join(",")));
    }
    let f = prog(&text, true, true);
    assert!(f.len() < MAX_INSNS, "{} instructions", f.len());
    assert_eq!(
        run(&f, ethertype::IPV4, HOST, &syn4(1000 + 39 * 40 + 31)),
        ACCEPT
    );
    assert_eq!(run(&f, ethertype::IPV4, HOST, &udp4(1000)), 0);
}

#[test]
fn too_many_ports_fall_back_to_all_tcp_and_udp() {
    let mut text = String::new();
    for d in 0..80 {
        let ports: Vec<String> = (0..32)
            .map(|i| (1000 + d * 100 + i * 3).to_string())
            .collect();
        text.push_str(&format!("[d{d}]\nsequence = {}\n", ports.join(",")));
    }
    let f = prog(&text, false, true);
    assert!(f.len() < 200, "{} instructions", f.len());
    assert_eq!(run(&f, ethertype::IPV4, HOST, &udp4(53)), ACCEPT);
    assert_eq!(run(&f, ethertype::IPV4, 4, &udp4(53)), 0);
    // The destination is still checked when only the ports would not fit.
    let mut udp = udp4(53);
    udp[19] = 99;
    assert_eq!(run(&f, ethertype::IPV4, HOST, &udp), 0);
}

#[test]
fn spa_ports_pass_only_what_can_be_spa() {
    use crate::packet::tests::{udp4_with, udp6_with};
    let cfg = parse(Path::new("t.conf"), DOORS).unwrap();
    let r = Rules {
        sweep_guard: false,
        sweep_window: 16,
        tolerate_repeats: true,
    };
    let mut sp = spec(&cfg.doors, &r, &local(), true);
    add_spa(&mut sp, &[40001, 62201], &local(), true);
    let f = program(&sp, true);
    let v4 = ethertype::IPV4;
    let spa = |first: u8, len: usize| {
        let mut v = vec![b'A'; len];
        v[0] = first;
        v
    };
    for first in [b'8', b'9', b'+', b'/', b'U'] {
        assert_eq!(
            run(&f, v4, HOST, &udp4_with(62201, &spa(first, 204))),
            ACCEPT
        );
    }
    assert_eq!(
        run(&f, v4, HOST, &udp4_with(40001, &spa(b'/', 140))),
        ACCEPT
    );
    assert_eq!(
        run(&f, v4, HOST, &udp4_with(40001, &spa(b'/', 1500))),
        ACCEPT
    );
    assert_eq!(
        run(
            &f,
            ethertype::IPV6,
            HOST,
            &udp6_with(62201, &spa(b'+', 204))
        ),
        ACCEPT
    );
    assert_eq!(
        run(&f, v4, HOST, &udp4_with(62201, &spa(b'A', 204))),
        0,
        "first byte"
    );
    assert_eq!(
        run(&f, v4, HOST, &udp4_with(62201, &spa(b'/', 139))),
        0,
        "too short"
    );
    assert_eq!(
        run(&f, v4, HOST, &udp4_with(62201, &spa(b'/', 1501))),
        0,
        "too long"
    );
    assert_eq!(
        run(&f, v4, HOST, &udp4_with(62202, &spa(b'/', 204))),
        0,
        "other port"
    );
    assert_eq!(run(&f, v4, HOST, &syn4(62201)), 0, "tcp");
    // The knock doors are still served by the same program.
    assert_eq!(run(&f, v4, HOST, &udp4(8000)), ACCEPT);
    assert_eq!(run(&f, v4, HOST, &syn4(7000)), ACCEPT);
}

#[test]
fn spa_alone_is_aimed_at_the_interface_s_own_addresses() {
    use crate::packet::tests::udp4_with;
    let cfg = parse(Path::new("t.conf"), "[options]\ninterface = eth0\n").unwrap();
    let mut sp = spec(&cfg.doors, &rules(true), &local(), true);
    assert!(sp.classes.is_empty(), "no knock door: nothing to watch");
    add_spa(&mut sp, &[62201], &local(), true);
    let f = program(&sp, true);
    let mut payload = vec![b'A'; 204];
    payload[0] = b'+';
    let to_us = udp4_with(62201, &payload);
    assert_eq!(run(&f, ethertype::IPV4, HOST, &to_us), ACCEPT);
    // The same datagram to an address that is not the interface's.
    let mut elsewhere = to_us.clone();
    elsewhere[19] = 99;
    assert_eq!(run(&f, ethertype::IPV4, HOST, &elsewhere), 0);
    // Routed traffic for another host never wakes the daemon.
    assert_eq!(run(&f, ethertype::IPV4, PACKET_OTHERHOST, &to_us), 0);
}
