use super::*;
use crate::config::{parse, Config};
use std::path::Path;
use std::time::Duration;

const SRV: &str = "192.0.2.1";

fn conf(text: &str) -> Config {
    parse(Path::new("t.conf"), text).expect("valid config")
}

fn rules() -> Rules {
    Rules {
        sweep_guard: true,
        sweep_window: 16,
        tolerate_repeats: true,
    }
}

struct Bench {
    cfg: Config,
    t: Tracker,
    now: Instant,
    events: Vec<Event>,
}

impl Bench {
    fn new(text: &str) -> Bench {
        Self::with(text, rules(), 64)
    }

    fn with(text: &str, r: Rules, cap: usize) -> Bench {
        let cfg = conf(text);
        let t = Tracker::new(r, cap, cfg.doors.len());
        Bench {
            cfg,
            t,
            now: Instant::now(),
            events: Vec::new(),
        }
    }

    fn send(&mut self, src: &str, proto: Proto, port: u16, flags: u8) {
        self.send_to(src, SRV, proto, port, flags)
    }

    fn send_to(&mut self, src: &str, dst: &str, proto: Proto, port: u16, flags: u8) {
        let k = Knock {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            port,
            flags,
        };
        let local = |ip: IpAddr| ip == SRV.parse::<IpAddr>().unwrap();
        let events = &mut self.events;
        self.t
            .on_knock(&self.cfg.doors, &local, &k, self.now, &mut |e| {
                events.push(e)
            });
    }

    fn syn(&mut self, src: &str, port: u16) {
        self.send(src, Proto::Tcp, port, flag::SYN)
    }

    fn wait(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
        let events = &mut self.events;
        self.t.expire(self.now, &mut |e| events.push(e));
    }

    fn opened(&self) -> Vec<(usize, IpAddr)> {
        self.events
            .iter()
            .filter_map(|e| match *e {
                Event::Open { door, src } => Some((door, src)),
                _ => None,
            })
            .collect()
    }
}

const SSH: &str = "[ssh]\nsequence = 7000,8000,9000\nseq_timeout = 5\ntcpflags = syn\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn right_sequence_opens_for_that_source_only() {
    let mut b = Bench::new(SSH);
    for p in [7000, 8000, 9000] {
        b.syn("192.0.2.2", p);
    }
    assert_eq!(b.opened(), [(0, ip("192.0.2.2"))]);
    assert!(b.t.is_empty());
    let stages: Vec<u8> = b
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Stage { stage, .. } => Some(*stage),
            _ => None,
        })
        .collect();
    assert_eq!(stages, [1, 2]);
}

#[test]
fn wrong_order_does_not_open() {
    let mut b = Bench::new(SSH);
    for p in [7000, 9000, 8000, 9000] {
        b.syn("192.0.2.2", p);
    }
    assert!(b.opened().is_empty());
}

#[test]
fn restarting_the_sequence_midway_works() {
    let mut b = Bench::new(SSH);
    for p in [7000, 8000, 7000, 8000, 9000] {
        b.syn("192.0.2.2", p);
    }
    assert_eq!(b.opened().len(), 1);
}

#[test]
fn too_slow_times_out_on_time() {
    let mut b = Bench::new(SSH);
    b.syn("192.0.2.2", 7000);
    b.syn("192.0.2.2", 8000);
    assert_eq!(b.t.next_deadline(), Some(b.now + Duration::from_secs(5)));
    b.wait(4.9);
    assert_eq!(b.t.len(), 1);
    b.wait(0.1);
    assert!(b.t.is_empty());
    assert!(b.events.contains(&Event::Timeout {
        door: 0,
        src: ip("192.0.2.2"),
        stage: 2
    }));
    b.syn("192.0.2.2", 9000);
    assert!(b.opened().is_empty());
}

#[test]
fn window_counts_from_first_knock() {
    let mut b = Bench::new(SSH);
    b.syn("192.0.2.2", 7000);
    b.wait(3.0);
    b.syn("192.0.2.2", 8000);
    b.wait(2.5);
    b.syn("192.0.2.2", 9000);
    assert!(b.opened().is_empty());
}

#[test]
fn sources_are_independent() {
    let mut b = Bench::new(SSH);
    b.syn("192.0.2.2", 7000);
    b.syn("192.0.2.3", 7000);
    b.syn("192.0.2.2", 8000);
    b.syn("192.0.2.3", 9000); // wrong for .3 only
    b.syn("192.0.2.2", 9000);
    assert_eq!(b.opened(), [(0, ip("192.0.2.2"))]);
}

#[test]
fn retransmitted_knock_is_tolerated_unless_switched_off() {
    let mut b = Bench::new(SSH);
    for p in [7000, 7000, 8000, 8000, 9000] {
        b.syn("192.0.2.2", p);
    }
    assert_eq!(b.opened().len(), 1);
    let mut strict = Bench::with(
        SSH,
        Rules {
            tolerate_repeats: false,
            ..rules()
        },
        64,
    );
    for p in [7000, 8000, 8000, 9000] {
        strict.syn("192.0.2.2", p);
    }
    assert!(strict.opened().is_empty());
}

#[test]
fn port_sweeps_open_nothing_unless_guard_is_off() {
    for (guard, expect) in [(true, 0), (false, 1)] {
        let r = Rules {
            sweep_guard: guard,
            ..rules()
        };
        let mut up = Bench::with(SSH, r, 64);
        for p in 6990..=9010 {
            up.syn("198.18.0.1", p);
        }
        assert_eq!(up.opened().len(), expect, "ascending, guard {guard}");
    }
    let desc = "[d]\nsequence = 9000,8000,7000\ntcpflags = syn\n";
    let mut down = Bench::new(desc);
    for p in (6990..=9010).rev() {
        down.syn("198.18.0.1", p);
    }
    assert!(down.opened().is_empty());
}

#[test]
fn tcp_flags_filter_and_negation() {
    let text = "[d]\nsequence = 7000,8000\ntcpflags = syn,!ack\n";
    let mut b = Bench::new(text);
    b.syn("192.0.2.2", 7000);
    // SYN+ACK fails !ack: ignored, neither advances nor resets.
    b.send("192.0.2.2", Proto::Tcp, 8000, flag::SYN | flag::ACK);
    assert_eq!(b.t.len(), 1);
    b.send("192.0.2.2", Proto::Tcp, 8000, flag::SYN);
    assert_eq!(b.opened().len(), 1);
    // A plain ACK never starts an attempt.
    let mut c = Bench::new(text);
    c.send("192.0.2.2", Proto::Tcp, 7000, flag::ACK);
    assert!(c.t.is_empty());
}

#[test]
fn udp_and_mixed_sequences_need_the_right_protocol() {
    let text = "[d]\nsequence = 7000:udp,8000:tcp,9000:udp\n";
    let mut b = Bench::new(text);
    b.send("192.0.2.2", Proto::Udp, 7000, 0);
    b.send("192.0.2.2", Proto::Tcp, 8000, flag::SYN);
    b.send("192.0.2.2", Proto::Udp, 9000, 0);
    assert_eq!(b.opened().len(), 1);
    // A TCP SYN on a UDP step's port is not the step. The sweep guard counts it as a wrong
    // knock; without the guard it is invisible, as in knockd.
    for (guard, opens) in [(true, 0), (false, 1)] {
        let r = Rules {
            sweep_guard: guard,
            ..rules()
        };
        let mut g = Bench::with(text, r, 64);
        g.send("192.0.2.2", Proto::Udp, 7000, 0);
        g.send("192.0.2.2", Proto::Tcp, 8000, flag::SYN);
        g.send("192.0.2.2", Proto::Tcp, 9000, flag::SYN);
        g.send("192.0.2.2", Proto::Udp, 9000, 0);
        assert_eq!(g.opened().len(), opens, "guard {guard}");
    }
    let mut c = Bench::new(text);
    c.send("192.0.2.2", Proto::Tcp, 7000, flag::SYN);
    assert!(c.t.is_empty());
}

#[test]
fn target_and_local_addresses() {
    let text = "[t]\nsequence = 7000,8000\ntarget = 192.0.2.99\n[l]\nsequence = 7000,8000\n";
    let mut b = Bench::new(text);
    b.send_to("192.0.2.2", "192.0.2.99", Proto::Tcp, 7000, flag::SYN);
    b.send_to("192.0.2.2", "192.0.2.99", Proto::Tcp, 8000, flag::SYN);
    assert_eq!(b.opened(), [(0, ip("192.0.2.2"))]);
    b.events.clear();
    b.send_to("192.0.2.2", "192.0.2.50", Proto::Tcp, 7000, flag::SYN);
    assert!(b.t.is_empty(), "not aimed at us nor at the target");
    b.syn("192.0.2.2", 7000);
    b.syn("192.0.2.2", 8000);
    assert_eq!(b.opened(), [(1, ip("192.0.2.2"))]);
}

#[test]
fn ipv6_knocks() {
    let mut b = Bench::new(SSH);
    for p in [7000, 8000, 9000] {
        b.send_to("2001:db8::2", "2001:db8::1", Proto::Tcp, p, flag::SYN);
    }
    assert!(
        b.opened().is_empty(),
        "2001:db8::1 is not local in this bench"
    );
    let text = "[d]\nsequence = 7000,8000\ntarget = 2001:db8::1\n";
    let mut c = Bench::new(text);
    for p in [7000, 8000] {
        c.send_to("2001:db8::2", "2001:db8::1", Proto::Tcp, p, flag::SYN);
    }
    assert_eq!(c.opened(), [(0, ip("2001:db8::2"))]);
}

#[test]
fn flood_of_first_knocks_cannot_evict_progress() {
    let mut b = Bench::with(SSH, rules(), 64);
    b.syn("192.0.2.2", 7000);
    b.syn("192.0.2.2", 8000); // stage 2: protected
    for i in 0..100_000u32 {
        let src = format!("198.18.{}.{}", (i >> 8) & 0xff, i & 0xff);
        b.syn(&src, 7000);
    }
    assert_eq!(b.t.len(), 64);
    b.syn("192.0.2.2", 9000);
    assert_eq!(b.opened(), [(0, ip("192.0.2.2"))]);
    // After the flood a newcomer still gets in (evicting the oldest stage-1 attempt).
    b.events.clear();
    for p in [7000, 8000, 9000] {
        b.syn("192.0.2.3", p);
    }
    assert_eq!(b.opened(), [(0, ip("192.0.2.3"))]);
}

#[test]
fn full_of_progress_refuses_newcomers() {
    let mut b = Bench::with(SSH, rules(), 16);
    for i in 0..16 {
        let src = format!("198.18.0.{i}");
        b.syn(&src, 7000);
        b.syn(&src, 8000);
    }
    b.syn("192.0.2.2", 7000);
    assert!(b.events.iter().any(|e| matches!(e, Event::Refused { .. })));
    assert_eq!(b.t.len(), 16);
}

#[test]
fn one_knock_door_opens_at_once() {
    let mut b = Bench::new("[d]\nsequence = 7000:udp\n");
    b.send("192.0.2.2", Proto::Udp, 7000, 0);
    assert_eq!(b.opened().len(), 1);
    assert!(b.t.is_empty());
}

#[test]
fn table_stays_consistent_under_churn() {
    // Many sources, interleaved, with removals in every order: every completed sequence opens.
    let mut b = Bench::with(SSH, rules(), 256);
    let n = 200u32;
    for p in [7000, 8000] {
        for i in 0..n {
            b.syn(&format!("198.18.1.{i}"), p);
        }
    }
    for i in (0..n).rev().step_by(2) {
        b.syn(&format!("198.18.1.{i}"), 9000);
    }
    assert_eq!(b.opened().len(), n as usize / 2);
    assert_eq!(b.t.len(), n as usize / 2);
    b.wait(6.0);
    assert!(b.t.is_empty());
    assert_eq!(b.t.next_deadline(), None);
}

/// A one-time door as the daemon has it: the config names the file; `swap` makes the next
/// line live the way the daemon does after an open.
fn one_time_bench(lines: &str, name: &str) -> (Bench, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("lk-tracker-{}-{name}", std::process::id()));
    std::fs::write(&path, lines).expect("write sequences");
    let text = format!(
        "[once]\none_time_sequences = {}\nseq_timeout = 5\n",
        path.display()
    );
    (Bench::new(&text), path)
}

fn swap(b: &mut Bench, seq: &[u16]) {
    let mut next = (*b.cfg.doors[0]).clone();
    next.sequence = seq
        .iter()
        .map(|&port| Step {
            proto: Proto::Tcp,
            port,
        })
        .collect();
    b.cfg.doors = vec![Rc::new(next)].into();
}

#[test]
fn a_one_time_open_ends_every_attempt_on_that_door() {
    let (mut b, path) = one_time_bench("7000,8000,9000\n5000,6000,9100\n", "mirror");
    // The eavesdropper mirrors the first two knocks while the owner knocks.
    b.syn("192.0.2.66", 7000);
    b.syn("192.0.2.66", 8000);
    for p in [7000, 8000, 9000] {
        b.syn("192.0.2.2", p);
    }
    assert_eq!(b.opened(), [(0, ip("192.0.2.2"))]);
    assert!(b.t.is_empty(), "the mirror's attempt ended with the open");
    swap(&mut b, &[5000, 6000, 9100]);
    // Only the last port of the unseen next line: it must not open.
    b.syn("192.0.2.66", 9100);
    assert_eq!(b.opened().len(), 1);
    std::fs::remove_file(&path).expect("cleanup");
}

#[test]
fn a_shorter_next_line_never_panics() {
    let (mut b, path) = one_time_bench("7000,8000,9000\n5000\n", "short");
    b.syn("192.0.2.66", 7000);
    b.syn("192.0.2.66", 8000);
    for p in [7000, 8000, 9000] {
        b.syn("192.0.2.2", p);
    }
    swap(&mut b, &[5000]);
    for p in [9000, 8000, 7000, 1] {
        b.syn("192.0.2.66", p);
    }
    assert_eq!(b.opened().len(), 1);
    b.syn("192.0.2.3", 5000);
    assert_eq!(b.opened().len(), 2, "the next line opens on its own");
    std::fs::remove_file(&path).expect("cleanup");
}

#[test]
fn a_reload_keeps_attempts_of_unchanged_doors_only() {
    let two = "[ssh]\nsequence = 7000,8000,9000\nseq_timeout = 5\n\
               [web]\nsequence = 1000,2000,3000\nseq_timeout = 5\n";
    let mut b = Bench::new(two);
    b.syn("192.0.2.2", 7000);
    b.syn("192.0.2.3", 1000);
    b.syn("192.0.2.3", 2000);
    // [web] changed its sequence; [ssh] moved but is the same door.
    let new = conf(
        "[web]\nsequence = 1000,2000,4000\nseq_timeout = 5\n\
         [ssh]\nsequence = 7000,8000,9000\nseq_timeout = 5\n",
    );
    b.t.reload(rules(), &b.cfg.doors, &new.doors);
    b.cfg = new;
    assert_eq!(b.t.len(), 1);
    b.syn("192.0.2.2", 8000);
    b.syn("192.0.2.2", 9000);
    assert_eq!(b.opened(), [(1, ip("192.0.2.2"))], "ssh carried on");
    b.syn("192.0.2.3", 4000);
    assert_eq!(b.opened().len(), 1, "web's attempt ended with its change");
    // The window still counts from the first knock before the reload.
    b.syn("192.0.2.4", 1000);
    b.wait(6.0);
    assert!(b.t.is_empty());
}
