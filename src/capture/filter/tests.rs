use super::*;
use crate::config::parse;
use crate::packet::ethertype;
use crate::packet::tests::{syn4, syn6, syn6_hop_by_hop, udp4};
use std::path::Path;

fn prog(text: &str, guard: bool, ipv6: bool) -> Vec<Insn> {
    let cfg = parse(Path::new("t.conf"), text).unwrap();
    let r = Rules {
        sweep_guard: guard,
        sweep_window: 16,
        tolerate_repeats: true,
    };
    program(&ports(&cfg.doors, &r), ipv6)
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
fn guard_passes_probes_near_sequence_ports_but_not_established_traffic() {
    let f = prog(DOORS, true, true);
    let v4 = ethertype::IPV4;
    assert_eq!(run(&f, v4, HOST, &syn4(7001)), ACCEPT);
    assert_eq!(run(&f, v4, HOST, &syn4(6984)), ACCEPT);
    assert_eq!(
        run(&f, v4, HOST, &syn4(9016)),
        ACCEPT,
        "near a udp step port"
    );
    assert_eq!(run(&f, v4, HOST, &syn4(6983)), 0);
    assert_eq!(run(&f, v4, HOST, &syn4(22)), 0);
    assert_eq!(run(&f, v4, HOST, &with_flags(syn4(7001), 0x10)), 0, "ACK");
    assert_eq!(
        run(&f, v4, HOST, &with_flags(syn4(7001), 0x01)),
        ACCEPT,
        "FIN scan"
    );
    assert_eq!(run(&f, v4, HOST, &udp4(7001)), 0, "udp never guarded");
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
        let ports: Vec<String> = (0..32).map(|i| (1000 + d * 40 + i).to_string()).collect();
        text.push_str(&format!("[d{d}]\nsequence = {}\n", ports.join(",")));
    }
    let f = prog(&text, true, true);
    assert!(f.len() < 100);
    assert_eq!(run(&f, ethertype::IPV4, HOST, &udp4(53)), ACCEPT);
    assert_eq!(run(&f, ethertype::IPV4, 4, &udp4(53)), 0);
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
    let mut p = ports(&cfg.doors, &r);
    p.spa = vec![62201, 40001];
    let f = program(&p, true);
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
