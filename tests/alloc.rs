//! The packet path allocates nothing: a counting global allocator watches `packet::parse` and
//! `Tracker::on_knock` (plus `expire` and `next_deadline`, which the loop calls between
//! packets) while they handle first knocks, stages, opens, wrong knocks, repeats, sweeps,
//! timeouts, evictions on a full table, refusals, IPv6, malformed and non-candidate packets.
//! Setup (config, tracker, buffers) happens before counting starts.

use latchkey::config::{parse as parse_config, Config};
use latchkey::packet::{self, ethertype, Dropped};
use latchkey::tracker::{Event, Rules, Tracker};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "common/counting.rs"]
mod counting;
use counting::{ALLOCS, ON};

const TCP: u8 = 6;
const UDP: u8 = 17;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// Writes an IPv4 TCP/UDP packet into `buf`; returns its length.
fn v4(buf: &mut [u8; 128], src: Ipv4Addr, dst: Ipv4Addr, proto: u8, port: u16, flags: u8) -> usize {
    let l4 = if proto == TCP { 20 } else { 8 };
    let total = 20 + l4;
    buf[..total].fill(0);
    buf[0] = 0x45;
    buf[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    buf[8] = 64;
    buf[9] = proto;
    buf[12..16].copy_from_slice(&src.octets());
    buf[16..20].copy_from_slice(&dst.octets());
    transport(&mut buf[20..total], proto, port, flags);
    total
}

/// Writes an IPv6 TCP/UDP packet into `buf`; returns its length.
fn v6(buf: &mut [u8; 128], src: Ipv6Addr, dst: Ipv6Addr, proto: u8, port: u16, flags: u8) -> usize {
    let l4 = if proto == TCP { 20 } else { 8 };
    let total = 40 + l4;
    buf[..total].fill(0);
    buf[0] = 0x60;
    buf[4..6].copy_from_slice(&(l4 as u16).to_be_bytes());
    buf[6] = proto;
    buf[7] = 64;
    buf[8..24].copy_from_slice(&src.octets());
    buf[24..40].copy_from_slice(&dst.octets());
    transport(&mut buf[40..total], proto, port, flags);
    total
}

fn transport(t: &mut [u8], proto: u8, port: u16, flags: u8) {
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&port.to_be_bytes());
    if proto == TCP {
        t[12] = 5 << 4;
        t[13] = flags;
    } else {
        let len = t.len() as u16;
        t[4..6].copy_from_slice(&len.to_be_bytes());
    }
}

fn spoofed(i: u32) -> Ipv4Addr {
    // 198.18.0.0/15, as the e2e flood uses.
    Ipv4Addr::from(0xc612_0000 + 1 + (i % 0x1_fffe))
}

#[derive(Default, Debug)]
struct Seen {
    stage: usize,
    open: usize,
    wrong: usize,
    timeout: usize,
    evicted: usize,
    refused: usize,
    dropped: usize,
    malformed: usize,
}

struct Fixture {
    cfg: Config,
    t: Tracker,
    seen: Seen,
    now: Instant,
}

const SRV4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SRV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

impl Fixture {
    /// The daemon's per-packet work, minus the socket: parse, then feed the tracker.
    fn feed(&mut self, et: u16, bytes: &[u8]) {
        let k = match packet::parse(et, bytes) {
            Ok(k) => k,
            Err(Dropped::Malformed) => {
                self.seen.malformed += 1;
                return;
            }
            Err(_) => {
                self.seen.dropped += 1;
                return;
            }
        };
        let local = |ip: IpAddr| ip == IpAddr::V4(SRV4) || ip == IpAddr::V6(SRV6);
        let seen = &mut self.seen;
        self.t
            .on_knock(&self.cfg.doors, &local, &k, self.now, &mut |e| {
                count(seen, e)
            });
    }

    fn tick(&mut self, by: Duration) {
        self.now += by;
        let seen = &mut self.seen;
        self.t.expire(self.now, &mut |e| count(seen, e));
        std::hint::black_box(self.t.next_deadline());
    }
}

fn count(s: &mut Seen, e: Event) {
    match e {
        Event::Stage { .. } => s.stage += 1,
        Event::Open { .. } => s.open += 1,
        Event::Wrong { .. } => s.wrong += 1,
        Event::Timeout { .. } => s.timeout += 1,
        Event::Evicted { .. } => s.evicted += 1,
        Event::Refused { .. } => s.refused += 1,
    }
}

const CONF: &str = "\
[ssh]
    sequence = 1000,1100,1200
    seq_timeout = 5
    tcpflags = syn
    start_command = /bin/true %IP%
[udp]
    sequence = 2000:udp,2100:udp,2200:udp
    seq_timeout = 5
    start_command = /bin/true %IP%
[target]
    sequence = 3000,3100:udp
    seq_timeout = 5
    target = 2001:db8::1
    start_command = /bin/true %IP%
[single]
    sequence = 4000
    start_command = /bin/true %IP%
";

#[test]
fn packet_path_allocates_nothing() {
    let cfg = parse_config(Path::new("alloc.conf"), CONF).expect("valid config");
    let rules = Rules {
        sweep_guard: true,
        sweep_window: 16,
        tolerate_repeats: true,
    };
    // A small table, so that floods fill it and evict.
    let t = Tracker::new(rules, 64, cfg.doors.len());
    let mut p = Fixture {
        cfg,
        t,
        seen: Seen::default(),
        now: Instant::now(),
    };
    let mut buf = [0u8; 128];
    let me = Ipv4Addr::new(192, 0, 2, 2);
    let me6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    // The counter works: one box is one allocation (and one free).
    ON.with(|c| c.set(true));
    drop(std::hint::black_box(Box::new(7u64)));
    ON.with(|c| c.set(false));
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        2,
        "the counting allocator is not in use"
    );

    ALLOCS.store(0, Ordering::Relaxed);
    ON.with(|c| c.set(true));
    for round in 0..200u32 {
        // A full knock with a retransmitted first step: stages, a repeat, an open.
        for (i, port) in [1000, 1000, 1100, 1200].into_iter().enumerate() {
            let n = v4(&mut buf, me, SRV4, TCP, port, SYN);
            p.feed(ethertype::IPV4, &buf[..n]);
            if i == 0 {
                p.tick(Duration::from_millis(1));
            }
        }
        // UDP door from IPv6, and the Target door.
        for port in [2000, 2100, 2200] {
            let n = v6(&mut buf, me6, SRV6, UDP, port, 0);
            p.feed(ethertype::IPV6, &buf[..n]);
        }
        let n = v6(&mut buf, me6, SRV6, TCP, 3000, SYN);
        p.feed(ethertype::IPV6, &buf[..n]);
        let n = v6(&mut buf, me6, SRV6, UDP, 3100, 0);
        p.feed(ethertype::IPV6, &buf[..n]);
        // A single-knock door.
        let n = v4(&mut buf, me, SRV4, TCP, 4000, SYN);
        p.feed(ethertype::IPV4, &buf[..n]);
        // Wrong knocks: out of order, and a sweep probe near a sequence port.
        let w = Ipv4Addr::new(192, 0, 2, 3);
        for (port, flags) in [(1000, SYN), (1200, SYN), (1000, SYN), (1005, SYN)] {
            let n = v4(&mut buf, w, SRV4, TCP, port, flags);
            p.feed(ethertype::IPV4, &buf[..n]);
        }
        // Non-candidates: ACKs, other ports, other destinations, not for us, VLAN-tagged.
        let n = v4(&mut buf, w, SRV4, TCP, 1100, ACK);
        p.feed(ethertype::IPV4, &buf[..n]);
        let n = v4(&mut buf, w, SRV4, UDP, 53, 0);
        p.feed(ethertype::IPV4, &buf[..n]);
        let n = v4(&mut buf, w, Ipv4Addr::new(192, 0, 2, 9), TCP, 1000, SYN);
        p.feed(ethertype::IPV4, &buf[..n]);
        let n = v4(&mut buf, w, SRV4, TCP, 50000 + round as u16, SYN);
        let mut tagged = [0u8; 132];
        tagged[..4].copy_from_slice(&[0, 7, 0x08, 0x00]);
        tagged[4..4 + n].copy_from_slice(&buf[..n]);
        p.feed(ethertype::VLAN, &tagged[..4 + n]);
        // Malformed and not-IP.
        p.feed(ethertype::IPV4, &buf[..n - 25]);
        p.feed(ethertype::IPV6, &buf[..n]);
        p.feed(0x0806, &buf[..28]);
        let mut icmp = buf;
        icmp[9] = 1;
        p.feed(ethertype::IPV4, &icmp[..n]);
        // A flood of first knocks from distinct spoofed sources: fills the table, evicts.
        for i in 0..200 {
            let n = v4(&mut buf, spoofed(round * 200 + i), SRV4, TCP, 1000, SYN);
            p.feed(ethertype::IPV4, &buf[..n]);
        }
        // Every few rounds: let windows pass (timeouts), and fill the table with attempts
        // past stage 1 so that new first knocks are refused.
        if round % 10 == 9 {
            p.tick(Duration::from_secs(6));
            for i in 0..70u32 {
                let src = spoofed(1_000_000 + round * 100 + i);
                for port in [1000, 1100] {
                    let n = v4(&mut buf, src, SRV4, TCP, port, SYN);
                    p.feed(ethertype::IPV4, &buf[..n]);
                }
            }
            p.tick(Duration::from_secs(6));
        }
    }
    ON.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let s = &p.seen;
    println!("{s:?}");
    // The test must have exercised what it claims to.
    assert!(
        s.stage > 0 && s.open >= 600 && s.wrong > 0 && s.timeout > 0,
        "{s:?}"
    );
    assert!(
        s.evicted > 0 && s.refused > 0 && s.dropped > 0 && s.malformed > 0,
        "{s:?}"
    );
    assert_eq!(allocs, 0, "the packet path allocated {allocs} times");
}
