//! Microbenchmark of the daemon's packet path without the socket: `packet::parse` then
//! `Tracker::on_knock`, in nanoseconds per packet, for the traffic mixes of `scripts/bench`;
//! and `spa::receive` for the garbage of `scripts/bench-spa` (random base64 at the SPA port).
//!
//!   cargo bench --bench packet_path            (plain std::time loop, no criterion)
//!
//! Each figure is the median of several rounds over a prepared batch of packets.

use latchkey::config::{parse as parse_config, Config};
use latchkey::packet::{self, ethertype};
use latchkey::tracker::{Event, Rules, Tracker};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

const TCP: u8 = 6;
const UDP: u8 = 17;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const SRV: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

const CONF: &str = "\
[ssh]
    sequence = 7000,8000,9000
    seq_timeout = 5
    tcpflags = syn
    start_command = /bin/true %IP%
";

fn v4(src: Ipv4Addr, proto: u8, port: u16, flags: u8) -> Vec<u8> {
    let l4 = if proto == TCP { 20 } else { 8 };
    let mut b = vec![0u8; 20 + l4];
    b[0] = 0x45;
    b[2..4].copy_from_slice(&((20 + l4) as u16).to_be_bytes());
    b[8] = 64;
    b[9] = proto;
    b[12..16].copy_from_slice(&src.octets());
    b[16..20].copy_from_slice(&SRV.octets());
    b[20..22].copy_from_slice(&40000u16.to_be_bytes());
    b[22..24].copy_from_slice(&port.to_be_bytes());
    if proto == TCP {
        b[32] = 5 << 4;
        b[33] = flags;
    } else {
        b[24..26].copy_from_slice(&(l4 as u16).to_be_bytes());
    }
    b
}

fn spoofed(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_0000 + 1 + (i % 0x1_fffe))
}

struct Run {
    cfg: Config,
    t: Tracker,
    events: u64,
}

impl Run {
    fn new(capacity: usize) -> Run {
        let cfg = parse_config(Path::new("bench.conf"), CONF).expect("valid config");
        let rules = Rules {
            sweep_guard: true,
            sweep_window: 16,
            tolerate_repeats: true,
        };
        let t = Tracker::new(rules, capacity, cfg.doors.len());
        Run { cfg, t, events: 0 }
    }

    #[inline(never)]
    fn batch(&mut self, pkts: &[Vec<u8>], now: Instant) {
        let local = |ip: IpAddr| ip == IpAddr::V4(SRV);
        for p in pkts {
            if let Ok(k) = packet::parse(ethertype::IPV4, black_box(p)) {
                let ev = &mut self.events;
                self.t
                    .on_knock(&self.cfg.doors, &local, &k, now, &mut |e: Event| {
                        *ev += door_of(black_box(e)) as u64 + 1
                    });
            }
        }
    }
}

fn door_of(e: Event) -> usize {
    match e {
        Event::Stage { door, .. }
        | Event::Open { door, .. }
        | Event::Wrong { door, .. }
        | Event::Timeout { door, .. }
        | Event::Evicted { door, .. }
        | Event::Refused { door, .. } => door,
    }
}

/// Median ns per packet over `rounds` rounds of the whole batch.
fn measure(name: &str, pkts: &[Vec<u8>], capacity: usize, rounds: usize) {
    let mut r = Run::new(capacity);
    let now = Instant::now() + Duration::from_secs(1);
    r.batch(pkts, now); // warm-up: caches, and a full table for the flood case
    let mut ns: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            r.batch(pkts, now);
            t.elapsed().as_nanos() as f64 / pkts.len() as f64
        })
        .collect();
    ns.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name:<52} {:>7.1} ns/packet  (min {:.1}, {} packets x {rounds} rounds, {} events)",
        ns[rounds / 2],
        ns[0],
        pkts.len(),
        r.events
    );
}

/// Median ns per payload of `spa::receive` over `rounds` rounds: garbage that passes the
/// kernel's pre-check (random base64, 204 bytes, first byte '/'), refused at the HMAC.
fn measure_spa(pkts: &[Vec<u8>], rounds: usize) {
    let cfg = parse_config(
        Path::new("bench.conf"),
        "[spa]\n    SPA_Port = 62201\n    Key_Base64 = W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=\n    \
         HMAC_Key_Base64 = hmfIlOFc+JJkhrxebwuC3cU8GYXcxvOkzt5VxRp0Ry2erOnlGpB0PY/tzxL+kjIHqiI\
         X977kYCFK+3i9MT9now==\n",
    )
    .expect("valid config");
    let mut cache = latchkey::spa::replay::Cache::new(1024);
    let wire = latchkey::spa::Wire {
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        dst: IpAddr::V4(SRV),
        port: 62201,
    };
    let mut refused = 0u64;
    let mut round = || {
        let t = Instant::now();
        for p in pkts {
            let r = latchkey::spa::receive(
                cfg.spa.iter().map(|d| &**d),
                black_box(p),
                wire,
                0,
                &mut cache,
            );
            refused += r.is_err() as u64;
        }
        t.elapsed().as_nanos() as f64 / pkts.len() as f64
    };
    round();
    let mut ns: Vec<f64> = (0..rounds).map(|_| round()).collect();
    ns.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{:<52} {:>7.1} ns/packet  (min {:.1}, {} packets x {rounds} rounds, {refused} refused)",
        "SPA garbage (spa::receive, refused at the HMAC)",
        ns[rounds / 2],
        ns[0],
        pkts.len(),
    );
}

fn main() {
    // `cargo test --benches` runs this once too; keep that quick.
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    let (n, rounds) = if quick { (1000, 3) } else { (200_000, 15) };
    let c = Ipv4Addr::new(192, 0, 2, 2);

    // What the kernel filter would normally keep away: ACKs, UDP and SYNs to other ports.
    let noise: Vec<_> = (0..n as u32)
        .map(|i| match i % 3 {
            0 => v4(c, UDP, 1024 + (i % 5000) as u16, 0),
            1 => v4(c, TCP, 30000 + (i % 5000) as u16, ACK),
            _ => v4(c, TCP, 20000 + (i % 5000) as u16, SYN),
        })
        .collect();
    measure(
        "non-candidate (parse, no door matches)",
        &noise,
        2048,
        rounds,
    );

    // First knocks from distinct spoofed sources: the table fills, then every knock evicts.
    let flood: Vec<_> = (0..n as u32)
        .map(|i| v4(spoofed(i), TCP, 7000, SYN))
        .collect();
    measure(
        "candidate: first knocks, distinct sources (evicting)",
        &flood,
        2048,
        rounds,
    );

    // Full sequences from distinct sources: stage 1, 2, open.
    let full: Vec<_> = (0..(n / 3) as u32)
        .flat_map(|i| [7000, 8000, 9000].map(|p| v4(spoofed(i), TCP, p, SYN)))
        .collect();
    measure(
        "candidate: whole sequences (stage, stage, open)",
        &full,
        2048,
        rounds,
    );

    // Wrong knocks: a second step out of order after a first.
    let wrong: Vec<_> = (0..(n / 2) as u32)
        .flat_map(|i| [7000, 9000].map(|p| v4(spoofed(i), TCP, p, SYN)))
        .collect();
    measure(
        "candidate: first knock then a wrong one",
        &wrong,
        2048,
        rounds,
    );

    // Random base64 to the SPA port (an xorshift, so the batch is the same every run).
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<Vec<u8>> = (0..n / 20)
        .map(|_| {
            let mut p = vec![b'/'];
            p.extend((0..203).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % 64) as usize]
            }));
            p
        })
        .collect();
    measure_spa(&garbage, rounds);
}
