//! Writes the seed corpora: `cargo run --example seeds -- DIR` (from `fuzz/`) fills
//! `DIR/packet`, `DIR/config` and `DIR/hosts`. `scripts/test-fuzz` runs it before fuzzing.
//!
//! Packet seeds are real packets built with etherparse, framed the way the packet target
//! reads its input (see `latchkey_fuzz::frames`); each seed is run through the target once
//! here and must open exactly the doors it was written to open, so a change to the framing or
//! the fuzz world cannot silently turn the seeds into noise. Config seeds are the configs of
//! the end-to-end tests and knockd's own example; hosts seeds the documented examples.

use etherparse::PacketBuilder;
use latchkey::packet::ethertype::{IPV4, IPV6, QINQ, VLAN};
use latchkey::tracker::Rules;
use latchkey_fuzz::{push_frame, rules_byte};
use std::net::IpAddr;
use std::path::Path;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

const C4: [u8; 4] = [192, 0, 2, 2];
const S4: [u8; 4] = [192, 0, 2, 1];
const T4: [u8; 4] = [192, 0, 2, 50];
const C6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const S6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const T6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50,
];

/// A knock as the seeds describe it.
#[derive(Clone, Copy)]
enum K {
    Tcp(u16, u8),
    Udp(u16),
}

fn v4(src: [u8; 4], dst: [u8; 4], k: K) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src, dst, 64);
    let mut out = Vec::new();
    match k {
        K::Tcp(port, flags) => {
            let mut t = b.tcp(40000, port, 1, 64240);
            if flags & SYN != 0 {
                t = t.syn();
            }
            if flags & ACK != 0 {
                t = t.ack(1);
            }
            if flags & FIN != 0 {
                t = t.fin();
            }
            t.write(&mut out, &[]).unwrap();
        }
        K::Udp(port) => b.udp(40000, port).write(&mut out, &[0]).unwrap(),
    }
    out
}

fn v6(src: [u8; 16], dst: [u8; 16], k: K) -> Vec<u8> {
    let b = PacketBuilder::ipv6(src, dst, 64);
    let mut out = Vec::new();
    match k {
        K::Tcp(port, flags) => {
            let mut t = b.tcp(40000, port, 1, 64240);
            if flags & SYN != 0 {
                t = t.syn();
            }
            if flags & ACK != 0 {
                t = t.ack(1);
            }
            t.write(&mut out, &[]).unwrap();
        }
        K::Udp(port) => b.udp(40000, port).write(&mut out, &[0]).unwrap(),
    }
    out
}

/// A tag left in place by the kernel: TCI, inner ethertype, then the packet.
fn tagged(inner: u16, pkt: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00, 0x0a];
    out.extend(inner.to_be_bytes());
    out.extend(pkt);
    out
}

/// IPv4 with four bytes of NOP options (IHL 6).
fn with_options(mut pkt: Vec<u8>) -> Vec<u8> {
    pkt.splice(20..20, [1, 1, 1, 1]);
    pkt[0] = 0x46;
    let len = u16::from_be_bytes([pkt[2], pkt[3]]) + 4;
    pkt[2..4].copy_from_slice(&len.to_be_bytes());
    pkt
}

/// IPv6 with an 8-byte hop-by-hop header (PadN) before the transport header.
fn with_hop_by_hop(mut pkt: Vec<u8>) -> Vec<u8> {
    let next = pkt[6];
    pkt.splice(40..40, [next, 0, 1, 4, 0, 0, 0, 0]);
    pkt[6] = 0;
    let len = u16::from_be_bytes([pkt[4], pkt[5]]) + 8;
    pkt[4..6].copy_from_slice(&len.to_be_bytes());
    pkt
}

/// A later IPv4 fragment (offset 8 bytes): no ports in it.
fn later_fragment(mut pkt: Vec<u8>) -> Vec<u8> {
    pkt[6..8].copy_from_slice(&[0x00, 0x01]);
    pkt
}

const DEFAULT_RULES: Rules = Rules {
    sweep_guard: true,
    sweep_window: 16,
    tolerate_repeats: true,
};

struct Seed {
    name: &'static str,
    bytes: Vec<u8>,
    /// Doors (index in `latchkey_fuzz::DOORS`) the seed must open, in order.
    opens: Vec<usize>,
}

fn seed(name: &'static str, rules: Rules, opens: &[usize]) -> Seed {
    Seed {
        name,
        bytes: vec![rules_byte(rules)],
        opens: opens.to_vec(),
    }
}

impl Seed {
    /// A frame after `wait` tenths of a second.
    fn at(mut self, wait: u8, et: u16, pkt: &[u8]) -> Seed {
        push_frame(&mut self.bytes, et, 0, wait, pkt);
        self
    }
    fn v4(self, k: K) -> Seed {
        self.at(0, IPV4, &v4(C4, S4, k))
    }
    fn v6(self, k: K) -> Seed {
        self.at(0, IPV6, &v6(C6, S6, k))
    }
    fn raw(mut self, et: u16, pkttype: u8, pkt: &[u8]) -> Seed {
        push_frame(&mut self.bytes, et, pkttype, 0, pkt);
        self
    }
}

fn packet_seeds() -> Vec<Seed> {
    let r = DEFAULT_RULES;
    let plain = Rules {
        sweep_guard: false,
        tolerate_repeats: false,
        ..r
    };
    let ssh = [K::Tcp(7000, SYN), K::Udp(8000), K::Tcp(9000, SYN)];
    let mut seeds = Vec::new();
    let mut s = seed("ssh-v4", r, &[0]);
    for k in ssh {
        s = s.v4(k);
    }
    seeds.push(s);
    let mut s = seed("ssh-v6", r, &[0]);
    for k in ssh {
        s = s.v6(k);
    }
    seeds.push(s);
    let mut s = seed("ssh-vlan", r, &[0]);
    for k in ssh {
        s = s.at(0, VLAN, &tagged(IPV4, &v4(C4, S4, k)));
    }
    seeds.push(s);
    let mut s = seed("ssh-qinq-v6", r, &[0]);
    for k in ssh {
        s = s.at(0, QINQ, &tagged(IPV6, &v6(C6, S6, k)));
    }
    seeds.push(s);
    // Two tags left in place: one more than the kernel ever leaves; neither the filter nor
    // the parser looks that deep, so nothing opens.
    let mut s = seed("ssh-two-tags", r, &[]);
    for k in ssh {
        s = s.at(0, QINQ, &tagged(VLAN, &tagged(IPV4, &v4(C4, S4, k))));
    }
    seeds.push(s);
    let mut s = seed("ssh-options-hbh", r, &[0]);
    s = s.at(0, IPV4, &with_options(v4(C4, S4, ssh[0])));
    s = s.v4(ssh[1]);
    s = s.at(0, IPV6, &with_hop_by_hop(v6(C6, S6, ssh[0])));
    s = s.v4(ssh[2]).v6(ssh[1]);
    s = s.at(0, IPV6, &with_hop_by_hop(v6(C6, S6, ssh[2])));
    s.opens.push(0);
    seeds.push(s);
    // Slow: the window (5 s) passes before the last knock.
    seeds.push(seed("ssh-too-slow", r, &[]).v4(ssh[0]).v4(ssh[1]).at(
        51,
        IPV4,
        &v4(C4, S4, ssh[2]),
    ));
    seeds.push(
        seed("ssh-in-time", r, &[0])
            .v4(ssh[0])
            .at(20, IPV4, &v4(C4, S4, ssh[1]))
            .at(20, IPV4, &v4(C4, S4, ssh[2])),
    );
    // Wrong order; a retransmitted first knock (tolerated, then not).
    seeds.push(
        seed("ssh-wrong-order", r, &[])
            .v4(ssh[0])
            .v4(ssh[2])
            .v4(ssh[1]),
    );
    let s = seed("ssh-repeat", r, &[0]).v4(ssh[0]).v4(ssh[0]);
    seeds.push(s.v4(ssh[1]).v4(ssh[1]).v4(ssh[2]));
    let s = seed("ssh-repeat-plain", plain, &[0]).v4(ssh[0]).v4(ssh[0]);
    seeds.push(s.v4(ssh[1]).v4(ssh[2]));
    // Sweeps: SYNs across the ports, with and without the guard; established traffic.
    let mut s = seed("sweep", r, &[]).v4(ssh[0]).v4(ssh[1]);
    for p in (8990..9010).step_by(4) {
        s = s.v4(K::Tcp(p, SYN));
    }
    seeds.push(s.v4(ssh[2]));
    let mut s = seed("sweep-unguarded", plain, &[0]).v4(ssh[0]).v4(ssh[1]);
    for p in (8990..8999).step_by(4) {
        s = s.v4(K::Tcp(p, SYN));
    }
    seeds.push(s.v4(ssh[2]));
    let s = seed("established", r, &[0])
        .v4(ssh[0])
        .v4(K::Tcp(7001, ACK));
    seeds.push(s.v4(ssh[1]).v4(K::Tcp(8999, ACK | FIN)).v4(ssh[2]));
    // Other doors: reverse (no flags), one UDP knock, Target with a repeated port, IPv6 Target.
    let s = seed("reverse", r, &[1])
        .v4(K::Tcp(9000, ACK))
        .v4(K::Udp(8000));
    seeds.push(s.v4(K::Tcp(7000, FIN)));
    seeds.push(seed("dns", r, &[2, 2]).v4(K::Udp(53)).v6(K::Udp(53)));
    let mut s = seed("target", r, &[3]);
    for p in [1000, 1000, 2000] {
        s = s.at(0, IPV4, &v4(C4, T4, K::Tcp(p, SYN)));
    }
    seeds.push(s);
    let mut s = seed("target-six", r, &[4]);
    for k in [K::Udp(65535), K::Tcp(1, SYN), K::Tcp(65535, SYN)] {
        s = s.at(0, IPV6, &v6(C6, T6, k));
    }
    seeds.push(s);
    // A flood of first knocks from many sources into a 4-slot table, one knocker past stage 1.
    let mut s = seed("flood", r, &[0]).v4(ssh[0]).v4(ssh[1]);
    for i in 10..40u8 {
        s = s.at(0, IPV4, &v4([198, 51, 100, i], S4, ssh[0]));
    }
    seeds.push(s.v4(ssh[2]));
    // Things that are not knocks: outgoing, ARP, ICMP, a later fragment, cut short, junk.
    let icmp = {
        let mut out = Vec::new();
        PacketBuilder::ipv4(C4, S4, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut out, &[0; 8])
            .unwrap();
        out
    };
    let syn = v4(C4, S4, ssh[0]);
    let s = seed("not-knocks", r, &[])
        .raw(IPV4, latchkey_fuzz::PACKET_OUTGOING, &syn)
        .raw(0x0806, 0, &[0, 1, 8, 0, 6, 4, 0, 1])
        .raw(IPV4, 0, &icmp)
        .raw(IPV4, 0, &later_fragment(v4(C4, S4, ssh[1])))
        .raw(IPV4, 0, &syn[..30])
        .raw(IPV6, 0, &v6(C6, S6, ssh[0])[..41])
        .raw(VLAN, 0, &[0, 1, 8])
        .raw(0x86dd, 0, &syn);
    seeds.push(s);
    seeds
}

const KNOCKD_MAN_PAGE: &str = "\
[options]
      UseSyslog

[openSSH]
      sequence    = 7000,8000,9000
      seq_timeout = 5
      command     = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
      tcpflags    = syn

[closeSSH]
      sequence    = 9000,8000,7000
      seq_timeout = 5
      command     = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
      tcpflags    = syn

[openHTTPS]
      sequence    = 12345,54321,24680,13579
      seq_timeout = 5
      command     = /usr/local/sbin/knock_add -i -c INPUT -p tcp -d 443 -f %IP%
      tcpflags    = syn
";

/// knockd's example config as issue 3 gives it (tests/knockd-example.conf).
const KNOCKD_ISSUE: &str = include_str!("../../tests/knockd-example.conf");

const MATCHING: &str = "\
[options]
    interface = eth0
[order]
    sequence = 1000,1100,1200
    seq_timeout = 5
    cmd_timeout = 3
    start_command = iptables -I INPUT 1 -s %IP% -p tcp --dport 22 -m comment --comment order -j ACCEPT
    stop_command = iptables -D INPUT -s %IP% -p tcp --dport 22 -m comment --comment order -j ACCEPT
[udp]
    sequence = 2100:udp,2200:udp,2300:udp
[mixed]
    sequence = 2400:udp,2500:tcp,2600:UDP
[flags]
    sequence = 2700,2800
    tcpflags = fin,!ack
[six]
    sequence = 2900,3100
    start_command_6 = ip6tables -I INPUT 1 -s %IP% -p tcp --dport 22 -j ACCEPT
    stop_command_6 = ip6tables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
[target]
    sequence = 3200,3300
    target = 192.0.2.50
[onetime]
    sequence = 9
    one_time_sequences = ots-live
";

const OPTIONS: &str = "\
[options]
    UseSyslog = no
    PidFile = /var/run/latchkey.pid
    StateFile = /tmp/latchkey.state
    SweepGuard = yes
    SweepWindow = 32
    TolerateRepeats = off
    ExtendGrants = true
    CloseOnExit = 0
    MaxAttempts = 4096
    MaxGrants = 64
    MaxChildren = 4
[a]
    Sequence = 1 , 65535:UDP
    Timeout = 1
    Command_6 = true
    Stop_Command_6 =
    TCPFlags = syn, !ack, !rst
    Target = 2001:db8::1
";

const MISTAKES: &str = "\
stray = 1
[options]
    Nonsense = 1
    SweepWindow = 99999
[]
[bad
[door]
    sequence = 0,70000,7:icmp
    tcpflags = syn,!syn
    target = not-an-ip
    seq_timeout = 0
    what
[nosequence]
    command = x
[ots]
    one_time_sequences = ots-bad
[ots2]
    one_time_sequences = ots-missing-file
";

const HOSTS_DOCS: &str = "\
# ~/.config/latchkey/knock.conf
Host home router                 # one or more names
    HostName home.example.net    # default: the first name
    Sequence 7000, 8000:udp, 9000
    Delay    200                 # milliseconds between knocks (default 0)
    Family   any                 # 4, 6 or any (default any)
    Check    22                  # port to check afterwards (default: no check)

Host office
    HostName 198.51.100.7
    Sequence = 1234:udp,2345:udp # knockd.conf's \"Sequence = ...\" line pastes as is
";

const HOSTS_E2E: &str = "\
# saved hosts for the e2e test
Host home door
    HostName door.test
    Sequence 7061, 7062:udp, 7063
    Delay 100
    Family 4
    Check 2207
";

const HOSTS_SAMPLE: &str = "\
# saved hosts
Host home router
    HostName home.example.net
    Sequence 7000, 8000:udp ,9000
    Delay 200
    Family 6
    Check 22

host office
  sequence = 1234:UDP   # pasted from knockd.conf
  DELAY=0
  addressfamily=inet6
";

const HOSTS_BAD: &[&str] = &[
    "Host broken\n    Sequence 7061,99999\n",
    "Sequence 1\n",
    "Host a\n  Sequence 1\n  Sequence 2\n",
    "Host a\n Sequence 1\nHost b a\n",
    "Host *.lan\n",
    "Host a a\n",
    "Host a\n  HostName x\n",
];

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus".to_string());
    let dir = Path::new(&dir);
    let mut n = 0;
    for s in packet_seeds() {
        let opened: Vec<usize> = latchkey_fuzz::packet_path(&s.bytes)
            .into_iter()
            .map(|(door, _): (usize, IpAddr)| door)
            .collect();
        assert_eq!(opened, s.opens, "seed {} opened the wrong doors", s.name);
        write(dir, "packet", s.name, &s.bytes);
        n += 1;
    }
    let configs = [
        ("knockd-example", KNOCKD_MAN_PAGE),
        ("knockd-issue", KNOCKD_ISSUE),
        ("matching", MATCHING),
        ("options", OPTIONS),
        ("mistakes", MISTAKES),
        ("fuzz-world", latchkey_fuzz::DOORS),
    ];
    for (name, text) in configs {
        latchkey_fuzz::knockd_config(text.as_bytes());
        write(dir, "config", name, text.as_bytes());
        n += 1;
    }
    for (name, text) in [
        ("docs", HOSTS_DOCS),
        ("e2e", HOSTS_E2E),
        ("sample", HOSTS_SAMPLE),
    ] {
        latchkey_fuzz::saved_hosts(text.as_bytes());
        write(dir, "hosts", name, text.as_bytes());
        n += 1;
    }
    for (i, text) in HOSTS_BAD.iter().enumerate() {
        latchkey_fuzz::saved_hosts(text.as_bytes());
        write(dir, "hosts", &format!("bad-{i}"), text.as_bytes());
        n += 1;
    }
    n += spa_seeds(dir);
    println!("{n} seeds written to {}", dir.display());
}

/// SPA seeds: a valid packet for the fuzz door (mode 0), its plaintext to be sealed (mode 1),
/// and the real fwknop client's packets from tests/spa/vectors.txt (mode 0).
fn spa_seeds(dir: &Path) -> usize {
    use latchkey::config::Proto;
    use latchkey::spa::{wire, Access, Keys, Message};
    let cfg = latchkey::config::parse(Path::new("spa.conf"), latchkey_fuzz::SPA_DOOR).unwrap();
    let keys: &Keys = &cfg.spa[0].keys;
    let mut m = Message {
        timestamp: latchkey_fuzz::SPA_NOW,
        allow: [198, 18, 0, 9].into(),
        client_timeout: 30,
        ..Message::default()
    };
    m.user.push_str("alice").unwrap();
    m.access
        .push(Access {
            proto: Proto::Tcp,
            port: 22,
        })
        .unwrap();
    let mut n = 0;
    let valid = wire::encode(&m, keys, [7; 8]);
    let mut seed = vec![0u8];
    seed.extend_from_slice(valid.as_bytes());
    assert!(
        latchkey_fuzz::spa(&seed),
        "the valid SPA seed must open the door"
    );
    write(dir, "spa", "valid", &seed);
    let plain = format!(
        "1234567890123456:YWxpY2U:{}:3.0.0:1:MTk4LjE4LjAuOSx0Y3AvMjI",
        latchkey_fuzz::SPA_NOW
    );
    let digest = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(plain.as_bytes());
        wire::encode_key(&d).trim_end_matches('=').to_string()
    };
    let mut seed = vec![1u8];
    seed.extend_from_slice(format!("{plain}:{digest}").as_bytes());
    assert!(
        latchkey_fuzz::spa(&seed),
        "the sealed plaintext seed must open the door"
    );
    write(dir, "spa", "plaintext", &seed);
    n += 2;
    let vectors = include_str!("../../tests/spa/vectors.txt");
    for (i, line) in vectors
        .lines()
        .filter(|l| l.starts_with("payload "))
        .enumerate()
    {
        let mut seed = vec![0u8];
        seed.extend_from_slice(line["payload ".len()..].as_bytes());
        latchkey_fuzz::spa(&seed);
        write(dir, "spa", &format!("fwknop-{i}"), &seed);
        n += 1;
    }
    n
}
