//! Property tests for the knock state machine (`latchkey::tracker`), on random doors, rules,
//! sources and interleavings, each run from a seed of a tiny xorshift generator (no crates):
//!
//! - `intent`: a source that sends its door's full sequence within the window, and nothing
//!   that counts as a wrong knock for that door, opens it; a source that is too slow, knocks
//!   out of order, stops short, or sends a wrong knock midway (a port of the sequence out of
//!   order, or with the sweep guard a TCP probe without ACK near a sequence port) does not.
//!   Every source also sends noise that does not concern its door, and that may concern others.
//! - `model`: the tracker's events, packet by packet and tick by tick, equal those of a plain
//!   reference model (a list of attempts, searched linearly) -- with a table large enough
//!   (no eviction) and with a tiny one (eviction: the oldest attempt still at stage 1 goes).
//! - `eviction`: under a flood of first knocks into a small table, attempts past stage 1 are
//!   never evicted, the table never grows, and a knocker past stage 1 still gets in.
//!
//! A failure prints the seed; `PROP_SEED=n cargo test --test prop_tracker` reruns only it, and
//! `PROP_CASES=n` runs more cases.

use latchkey::config::{self, flag, Door, Proto, Step};
use latchkey::packet::Knock;
use latchkey::tracker::{near, Event, Rules, Tracker};
use std::net::IpAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// xorshift64*: enough randomness for test cases, and the same cases on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// 0..n
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn cases() -> std::ops::Range<u64> {
    if let Some(s) = std::env::var("PROP_SEED").ok().and_then(|s| s.parse().ok()) {
        return s..s + 1;
    }
    let n = std::env::var("PROP_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    0..n
}

const LOCAL4: &str = "192.0.2.1";
const LOCAL6: &str = "2001:db8::1";
const TARGET4: &str = "192.0.2.50";
const TARGET6: &str = "2001:db8::50";
const ELSEWHERE: &str = "198.51.100.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn is_local(a: IpAddr) -> bool {
    a == ip(LOCAL4) || a == ip(LOCAL6)
}

/// Ports close together, so sequences share ports and sweeps cross several doors.
const POOL: [u16; 10] = [1, 20, 1000, 1001, 1002, 1005, 1010, 1030, 2000, 65535];

/// A random world: 1..=4 doors, each 1..=5 steps from the pool, some with `TCPFlags`, some
/// with a `Target`, timeouts of 1..=5 s; random rules.
fn world(rng: &mut Rng) -> (Rc<[Rc<Door>]>, Rules) {
    let mut text = String::from("[options]\n    interface = eth0\n");
    for d in 0..1 + rng.below(4) {
        let steps: Vec<String> = (0..1 + rng.below(5))
            .map(|_| {
                let p = rng.pick(&POOL);
                if rng.chance(30) {
                    format!("{p}:udp")
                } else {
                    format!("{p}")
                }
            })
            .collect();
        text += &format!(
            "[door{d}]\n    sequence = {}\n    seq_timeout = {}\n",
            steps.join(","),
            1 + rng.below(5)
        );
        match rng.below(5) {
            0 => text += "    tcpflags = syn\n",
            1 => text += "    tcpflags = syn,!ack\n",
            2 => text += "    tcpflags = fin,!ack\n",
            _ => {}
        }
        match rng.below(6) {
            0 => text += &format!("    target = {TARGET4}\n"),
            1 => text += &format!("    target = {TARGET6}\n"),
            _ => {}
        }
    }
    let cfg = config::parse(Path::new("prop.conf"), &text).expect("generated config is valid");
    let rules = Rules {
        sweep_guard: rng.chance(60),
        sweep_window: *rng.pick(&[0, 1, 4, 16]),
        tolerate_repeats: rng.chance(60),
    };
    (cfg.doors, rules)
}

/// The flag byte a knocker sends for `door`: its required flags (SYN when it asks for none).
fn good_flags(door: &Door) -> u8 {
    let f = if door.flags.set == 0 {
        flag::SYN
    } else {
        door.flags.set
    };
    f & !door.flags.clear
}

fn aimed(door: &Door, dst: IpAddr) -> bool {
    match door.target {
        Some(t) => t == dst,
        None => is_local(dst),
    }
}

/// Whether `k` concerns `door` at all: aimed at it, passing its flags, and either a step of
/// its sequence or (with the guard) a probe near one. Anything else leaves its attempts alone.
fn concerns(door: &Door, rules: &Rules, k: &Knock) -> bool {
    if !aimed(door, k.dst) || (k.proto == Proto::Tcp && !door.flags.matches(k.flags)) {
        return false;
    }
    let in_seq = door
        .sequence
        .iter()
        .any(|s| s.proto == k.proto && s.port == k.port);
    in_seq
        || (rules.sweep_guard
            && k.proto == Proto::Tcp
            && k.flags & flag::ACK == 0
            && near(door, k.port, rules.sweep_window))
}

// ---------------------------------------------------------------------------------------------
// The reference model: a plain list of attempts, written from the module documentation.
// ---------------------------------------------------------------------------------------------

struct Attempt {
    src: IpAddr,
    door: usize,
    stage: u8,
    deadline: Instant,
    /// Order in which attempts reached stage 1 (eviction takes the oldest still at stage 1).
    born: u64,
}

struct Model {
    rules: Rules,
    capacity: usize,
    attempts: Vec<Attempt>,
    born: u64,
}

impl Model {
    fn new(rules: Rules, capacity: usize) -> Model {
        Model {
            rules,
            capacity,
            attempts: Vec::new(),
            born: 0,
        }
    }

    fn expire(&mut self, doors: &[Rc<Door>], now: Instant, out: &mut Vec<Event>) {
        for d in 0..doors.len() {
            self.attempts.retain(|a| {
                let gone = a.door == d && a.deadline <= now;
                if gone {
                    out.push(Event::Timeout {
                        door: d,
                        src: a.src,
                        stage: a.stage,
                    });
                }
                !gone
            });
        }
    }

    fn on_knock(&mut self, doors: &[Rc<Door>], k: &Knock, now: Instant, out: &mut Vec<Event>) {
        let step = Step {
            proto: k.proto,
            port: k.port,
        };
        for (d, door) in doors.iter().enumerate() {
            if !aimed(door, k.dst) || (k.proto == Proto::Tcp && !door.flags.matches(k.flags)) {
                continue;
            }
            let seq = &door.sequence;
            let src = k.src;
            if let Some(i) = self
                .attempts
                .iter()
                .position(|a| a.src == src && a.door == d)
            {
                let stage = self.attempts[i].stage as usize;
                if seq[stage] == step {
                    if stage + 1 == seq.len() {
                        self.attempts.remove(i);
                        out.push(Event::Open { door: d, src });
                    } else {
                        self.attempts[i].stage += 1;
                        out.push(Event::Stage {
                            door: d,
                            src,
                            stage: stage as u8 + 1,
                        });
                    }
                    continue;
                }
                let repeat = self.rules.tolerate_repeats && seq[stage - 1] == step;
                let wrong = seq.contains(&step)
                    || (self.rules.sweep_guard
                        && k.proto == Proto::Tcp
                        && k.flags & flag::ACK == 0
                        && seq
                            .iter()
                            .any(|s| s.port.abs_diff(k.port) <= self.rules.sweep_window));
                if repeat || !wrong {
                    continue;
                }
                self.attempts.remove(i);
                out.push(Event::Wrong {
                    door: d,
                    src,
                    stage: stage as u8,
                });
            }
            if seq[0] != step {
                continue;
            }
            if seq.len() == 1 {
                out.push(Event::Open { door: d, src });
                continue;
            }
            if self.attempts.len() == self.capacity {
                let victim = self
                    .attempts
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.stage == 1)
                    .min_by_key(|(_, a)| a.born)
                    .map(|(i, _)| i);
                let Some(v) = victim else {
                    out.push(Event::Refused { door: d, src });
                    continue;
                };
                let a = self.attempts.remove(v);
                out.push(Event::Evicted {
                    door: a.door,
                    src: a.src,
                });
            }
            self.born += 1;
            self.attempts.push(Attempt {
                src,
                door: d,
                stage: 1,
                deadline: now + door.seq_timeout,
                born: self.born,
            });
            out.push(Event::Stage {
                door: d,
                src,
                stage: 1,
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Traffic: sources with an intent for one door, plus noise, on one time line.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intent {
    /// The whole sequence in order within the window (with retransmits if tolerated).
    Clean,
    /// The whole sequence, but the last knock at or after the window's end.
    TooSlow,
    /// The sequence's knocks in another order.
    WrongOrder,
    /// A strict prefix of the sequence.
    Incomplete,
    /// The sequence with a wrong knock somewhere after the first knock and before the last.
    WrongMidway,
    /// Only noise.
    Nothing,
}

struct Source {
    addr: IpAddr,
    door: usize,
    intent: Intent,
    /// Time (ms) of the intent's last knock.
    last_ms: u64,
    /// Index (in the sorted traffic) of the intent's last knock, filled when sorted.
    last_index: usize,
}

struct Packet {
    at_ms: u64,
    order: usize,
    knock: Knock,
    /// The intent's last knock for `Source` number `src` (for Clean: where it must open).
    last_of: Option<usize>,
}

fn knock(src: IpAddr, dst: IpAddr, step: Step, flags: u8) -> Knock {
    Knock {
        src,
        dst,
        proto: step.proto,
        port: step.port,
        flags: if step.proto == Proto::Udp { 0 } else { flags },
    }
}

/// A wrong knock for an attempt at `stage` (1-based, so `seq[stage]` is expected): a step of
/// the sequence that is neither expected, nor a tolerated repeat, nor the first step (which
/// would start over); or, with the guard, a probe near a sequence port. None if impossible.
fn wrong_knock(rng: &mut Rng, door: &Door, rules: &Rules, stage: usize) -> Option<(Step, u8)> {
    let seq = &door.sequence;
    let f = good_flags(door);
    let mut options: Vec<(Step, u8)> = seq
        .iter()
        .filter(|&&s| {
            s != seq[stage] && s != seq[0] && !(rules.tolerate_repeats && s == seq[stage - 1])
        })
        .map(|&s| (s, f))
        .collect();
    if rules.sweep_guard && f & flag::ACK == 0 {
        for s in seq.iter() {
            for p in [
                s.port.wrapping_sub(1),
                s.port.wrapping_add(rules.sweep_window),
            ] {
                let probe = Step {
                    proto: Proto::Tcp,
                    port: p,
                };
                if p != 0 && !seq.contains(&probe) && near(door, p, rules.sweep_window) {
                    options.push((probe, f));
                }
            }
        }
    }
    (!options.is_empty()).then(|| *rng.pick(&options))
}

/// Noise from `src` that does not concern door `door` (any door when `door` is None).
fn noise(
    rng: &mut Rng,
    doors: &[Rc<Door>],
    rules: &Rules,
    src: IpAddr,
    door: Option<usize>,
) -> Option<Knock> {
    for _ in 0..20 {
        let port = match rng.below(4) {
            0 => rng.next() as u16,
            1 => rng
                .pick(&POOL)
                .wrapping_add(rng.below(40) as u16)
                .wrapping_sub(20),
            _ => *rng.pick(&POOL),
        };
        let proto = if rng.chance(30) {
            Proto::Udp
        } else {
            Proto::Tcp
        };
        let junk = rng.next() as u8;
        let flags = *rng.pick(&[
            flag::SYN,
            flag::ACK,
            flag::SYN | flag::ACK,
            flag::FIN,
            flag::FIN | flag::ACK,
            flag::RST,
            0,
            junk,
        ]);
        let dst: &&str = rng.pick(&[LOCAL4, LOCAL6, TARGET4, TARGET6, ELSEWHERE]);
        let dst = ip(dst);
        let k = knock(src, dst, Step { proto, port }, flags);
        match door {
            Some(d) if concerns(&doors[d], rules, &k) => continue,
            _ => return Some(k),
        }
    }
    None
}

/// Builds the traffic of one case: sources, each with an intent for one door, and noise.
fn traffic(
    rng: &mut Rng,
    doors: &[Rc<Door>],
    rules: &Rules,
    n_sources: usize,
) -> (Vec<Source>, Vec<Packet>) {
    let mut sources = Vec::new();
    let mut packets = Vec::new();
    let mut order = 0;
    let mut push = |packets: &mut Vec<Packet>, at_ms, knock, last_of| {
        order += 1;
        packets.push(Packet {
            at_ms,
            order,
            knock,
            last_of,
        });
    };
    for n in 0..n_sources {
        let d = rng.below(doors.len() as u64) as usize;
        let door = &doors[d];
        let seq = &door.sequence;
        let v6 = match door.target {
            Some(t) => t.is_ipv6(),
            None => rng.chance(40),
        };
        let addr: IpAddr = if v6 {
            format!("2001:db8:1::{:x}", n + 1).parse().unwrap()
        } else {
            format!("203.0.113.{}", n + 1).parse().unwrap()
        };
        let dst = door.target.unwrap_or(ip(if v6 { LOCAL6 } else { LOCAL4 }));
        let f = good_flags(door);
        let mut intent = *rng.pick(&[
            Intent::Clean,
            Intent::Clean,
            Intent::Clean,
            Intent::TooSlow,
            Intent::WrongOrder,
            Intent::Incomplete,
            Intent::WrongMidway,
            Intent::Nothing,
        ]);
        let mut steps: Vec<(Step, u8)> = seq.iter().map(|&s| (s, f)).collect();
        match intent {
            Intent::WrongOrder => {
                // Swap two different steps, if there are any.
                let pairs: Vec<(usize, usize)> = (0..steps.len())
                    .flat_map(|i| (i + 1..steps.len()).map(move |j| (i, j)))
                    .filter(|&(i, j)| steps[i].0 != steps[j].0)
                    .collect();
                if pairs.is_empty() {
                    intent = Intent::Nothing;
                } else {
                    let &(i, j) = rng.pick(&pairs);
                    steps.swap(i, j);
                }
            }
            Intent::Incomplete if steps.len() > 1 => {
                steps.truncate(1 + rng.below(steps.len() as u64 - 1) as usize);
            }
            Intent::WrongMidway if steps.len() > 1 => {
                // After `stage` knocks, a wrong one.
                let stage = 1 + rng.below(steps.len() as u64 - 1) as usize;
                match wrong_knock(rng, door, rules, stage) {
                    Some(w) => steps.insert(stage, w),
                    None => intent = Intent::Nothing,
                }
            }
            Intent::Incomplete | Intent::WrongMidway => intent = Intent::Nothing,
            Intent::TooSlow if steps.len() == 1 => intent = Intent::Nothing,
            _ => {}
        }
        if intent == Intent::Nothing {
            steps.clear();
        }
        let window = door.seq_timeout.as_millis() as u64;
        let start = rng.below(20_000);
        // Times of the steps: strictly inside the window, or (TooSlow) the last one outside.
        let mut times: Vec<u64> = (0..steps.len())
            .map(|_| start + rng.below(window))
            .collect();
        times.sort_unstable();
        if let Some(t0) = times.first_mut() {
            *t0 = start;
        }
        if intent == Intent::TooSlow {
            *times.last_mut().unwrap() = start + window + rng.below(window);
        }
        let last = steps.len().checked_sub(1);
        for (i, (&(step, flags), &t)) in steps.iter().zip(&times).enumerate() {
            let k = knock(addr, dst, step, flags);
            push(&mut packets, t, k, (Some(i) == last).then_some(n));
            // A retransmit of a knock: harmless when repeats are tolerated (Clean only), unless
            // the next step is the same knock (then the copy is the next step).
            let next_differs = steps.get(i + 1).is_none_or(|n| n.0 != step);
            if intent == Intent::Clean && rules.tolerate_repeats && next_differs && rng.chance(15) {
                push(&mut packets, t, k, None);
            }
        }
        for _ in 0..rng.below(12) {
            let t = start.saturating_sub(2_000) + rng.below(window + 4_000);
            if let Some(k) = noise(rng, doors, rules, addr, Some(d)) {
                push(&mut packets, t, k, None);
            }
        }
        sources.push(Source {
            addr,
            door: d,
            intent,
            last_ms: times.last().copied().unwrap_or(0),
            last_index: usize::MAX,
        });
    }
    packets.sort_by_key(|p| (p.at_ms, p.order));
    for (i, p) in packets.iter().enumerate() {
        if let Some(n) = p.last_of {
            sources[n].last_index = i;
        }
    }
    (sources, packets)
}

/// Runs the traffic through the tracker (and the model, when given), calling `expire` at
/// every new millisecond before the packets of that millisecond, as the daemon's loop does.
/// Returns, per packet, the events it caused (ticks' events go with the next packet).
fn run(
    doors: &[Rc<Door>],
    t: &mut Tracker,
    mut model: Option<&mut Model>,
    packets: &[Packet],
    seed: u64,
) -> Vec<Vec<Event>> {
    let t0 = Instant::now();
    let mut clock = None;
    let mut out = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let now = t0 + Duration::from_millis(p.at_ms);
        let mut got = Vec::new();
        let mut want = Vec::new();
        if clock != Some(p.at_ms) {
            clock = Some(p.at_ms);
            t.expire(now, &mut |e| got.push(e));
            if let Some(m) = model.as_deref_mut() {
                m.expire(doors, now, &mut want);
            }
        }
        t.on_knock(doors, &is_local, &p.knock, now, &mut |e| got.push(e));
        if let Some(m) = model.as_deref_mut() {
            m.on_knock(doors, &p.knock, now, &mut want);
            let key = |e: &Event| format!("{e:?}");
            let (mut g, mut w) = (got.clone(), want);
            g.sort_by_key(key);
            w.sort_by_key(key);
            assert_eq!(
                g, w,
                "seed {seed}, packet {i} ({:?} at {} ms): tracker vs model",
                p.knock, p.at_ms
            );
            assert_eq!(t.len(), m.attempts.len(), "seed {seed}, packet {i}: len");
        }
        out.push(got);
    }
    out
}

fn opens(events: &[Vec<Event>], src: IpAddr, door: usize) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, es)| es.contains(&Event::Open { door, src }))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn intent() {
    let mut tally = [0usize; 6];
    for seed in cases() {
        let mut rng = Rng::new(seed);
        let (doors, rules) = world(&mut rng);
        let n = 1 + rng.below(16) as usize;
        let (sources, packets) = traffic(&mut rng, &doors, &rules, n);
        // Room for every (source, door) pair: nothing is ever evicted here.
        let mut t = Tracker::new(rules, n * doors.len(), doors.len());
        let events = run(&doors, &mut t, None, &packets, seed);
        for s in &sources {
            let got = opens(&events, s.addr, s.door);
            let ctx = || {
                format!(
                    "seed {seed}: {:?} source {} on door {:?} ({:?}, last knock at {} ms)",
                    s.intent, s.addr, doors[s.door].sequence, rules, s.last_ms
                )
            };
            match s.intent {
                Intent::Clean => {
                    assert!(!got.is_empty(), "{}: did not open", ctx());
                    assert_eq!(got[0], s.last_index, "{}: opened early", ctx());
                }
                Intent::Nothing => {}
                _ => assert!(got.is_empty(), "{}: opened at {got:?}", ctx()),
            }
            tally[s.intent as usize] += 1;
        }
        for es in &events {
            for e in es {
                assert!(
                    !matches!(e, Event::Evicted { .. } | Event::Refused { .. }),
                    "seed {seed}: {e:?} in a table with room"
                );
            }
        }
    }
    // The generator really produces every kind of source.
    let n = cases().end - cases().start;
    assert!(tally.iter().all(|&c| c > 0) || n < 50, "{tally:?}");
}

#[test]
fn model() {
    for seed in cases() {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let (doors, rules) = world(&mut rng);
        let n = 1 + rng.below(16) as usize;
        let (_, packets) = traffic(&mut rng, &doors, &rules, n);
        // Even seeds: room for all; odd seeds: a tiny table, so eviction and refusal happen.
        let cap = if seed % 2 == 0 {
            n * doors.len()
        } else {
            1 + rng.below(4) as usize
        };
        let mut t = Tracker::new(rules, cap, doors.len());
        let mut m = Model::new(rules, cap);
        run(&doors, &mut t, Some(&mut m), &packets, seed);
    }
}

#[test]
fn eviction() {
    for seed in cases() {
        let mut rng = Rng::new(seed ^ 0xf100d);
        let (doors, rules) = world(&mut rng);
        let n = 1 + rng.below(6) as usize;
        let (sources, mut packets) = traffic(&mut rng, &doors, &rules, n);
        // A flood of spoofed first knocks, from many sources, all along the time line.
        for i in 0..200 + rng.below(300) {
            let d = rng.below(doors.len() as u64) as usize;
            let door = &doors[d];
            let addr: IpAddr = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)
                .parse()
                .unwrap();
            let dst = door.target.unwrap_or(ip(LOCAL4));
            packets.push(Packet {
                at_ms: rng.below(30_000),
                order: packets.len() + 1,
                knock: knock(addr, dst, door.sequence[0], good_flags(door)),
                last_of: None,
            });
        }
        packets.sort_by_key(|p| (p.at_ms, p.order));
        // From a table that fits every real attempt to one that holds next to nothing.
        let cap = 1 + rng.below((sources.len() * doors.len()) as u64 + 2) as usize;
        let mut t = Tracker::new(rules, cap, doors.len());
        let events = run(&doors, &mut t, None, &packets, seed);
        // Replay the events: which attempts exist, at which stage.
        let mut live: Vec<(IpAddr, usize, u8)> = Vec::new();
        for (i, es) in events.iter().enumerate() {
            for &e in es {
                let at = |live: &Vec<(IpAddr, usize, u8)>, src, door| {
                    live.iter().position(|&(s, d, _)| s == src && d == door)
                };
                match e {
                    Event::Stage { door, src, stage } => match at(&live, src, door) {
                        Some(j) => live[j].2 = stage,
                        None => live.push((src, door, stage)),
                    },
                    Event::Open { door, src }
                    | Event::Wrong { door, src, .. }
                    | Event::Timeout { door, src, .. } => {
                        if let Some(j) = at(&live, src, door) {
                            live.remove(j);
                        }
                    }
                    Event::Evicted { door, src } => {
                        let j = at(&live, src, door).expect("evicted a known attempt");
                        assert_eq!(
                            live[j].2, 1,
                            "seed {seed}, packet {i}: evicted an attempt past stage 1"
                        );
                        live.remove(j);
                    }
                    Event::Refused { .. } => {
                        assert_eq!(live.len(), cap, "seed {seed}: refused with room");
                        assert!(live.iter().all(|a| a.2 > 1), "seed {seed}: refused");
                    }
                }
            }
            assert!(live.len() <= cap, "seed {seed}: table grew");
        }
        assert_eq!(live.len(), t.len(), "seed {seed}: events vs table");
        // A clean knocker whose attempt was never evicted nor refused opens, flood or not
        // (an attempt past stage 1 is never evicted: checked above).
        for s in sources.iter().filter(|s| s.intent == Intent::Clean) {
            let (door, src) = (s.door, s.addr);
            let pushed_out = events
                .iter()
                .flatten()
                .any(|e| *e == Event::Evicted { door, src } || *e == Event::Refused { door, src });
            if !pushed_out {
                assert!(
                    !opens(&events, src, door).is_empty(),
                    "seed {seed}: clean knocker {src} on door {door} did not open"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Doors that change mid-stream.
// ---------------------------------------------------------------------------------------------

fn random_sequence(rng: &mut Rng) -> config::Sequence {
    // Now and then empty: a one-time door whose file is used up.
    let len = if rng.chance(10) { 0 } else { 1 + rng.below(5) };
    (0..len)
        .map(|_| Step {
            proto: if rng.chance(30) {
                Proto::Udp
            } else {
                Proto::Tcp
            },
            port: *rng.pick(&POOL),
        })
        .collect()
}

fn with_sequence(door: &Door, seq: config::Sequence) -> Rc<Door> {
    let mut d = door.clone();
    d.sequence = seq;
    Rc::new(d)
}

/// Whether `seq` can be read, in order, within `sent`.
fn subsequence(seq: &[Step], sent: &[Step]) -> bool {
    let mut it = sent.iter();
    seq.iter().all(|s| it.any(|x| x == s))
}

/// One-time doors move to a new random sequence whenever they open (as the daemon does), and
/// reloads change some doors' sequences and keep the others'. Nothing panics, a used-up door
/// never opens, and a door whose sequence changed opens only for a source that sent the whole
/// new sequence after the change: no attempt survives a change of its door's sequence.
#[test]
fn door_changes() {
    for seed in cases() {
        let mut rng = Rng::new(seed ^ 0xc4a9);
        let (first, rules) = world(&mut rng);
        let mut doors: Vec<Rc<Door>> = first
            .iter()
            .map(|d| {
                if !rng.chance(50) {
                    return d.clone();
                }
                let mut x = (**d).clone();
                x.one_time = Some(config::OneTime {
                    path: "prop.seq".into(),
                    offset: Some(0),
                    first: b'1',
                    line: 1,
                });
                Rc::new(x)
            })
            .collect();
        let n = doors.len();
        let srcs: Vec<IpAddr> = (0..4).map(|i| ip(&format!("192.0.2.{}", 10 + i))).collect();
        let mut since = vec![vec![Vec::<Step>::new(); n]; srcs.len()];
        let mut changed = vec![false; n];
        let mut t = Tracker::new(rules, 1 + rng.below(32) as usize, n);
        let mut now = Instant::now();
        let mut sink = |_: Event| {};
        for _ in 0..400 {
            match rng.below(25) {
                0 => {
                    let new: Vec<Rc<Door>> = doors
                        .iter()
                        .enumerate()
                        .map(|(d, door)| {
                            if !rng.chance(40) {
                                return door.clone();
                            }
                            changed[d] = true;
                            for s in since.iter_mut() {
                                s[d].clear();
                            }
                            with_sequence(door, random_sequence(&mut rng))
                        })
                        .collect();
                    t.reload(rules, &doors, &new);
                    doors = new;
                }
                1 => {
                    now += Duration::from_millis(rng.below(3000));
                    t.expire(now, &mut sink);
                }
                _ => {
                    let s = rng.below(srcs.len() as u64) as usize;
                    let d = rng.below(n as u64) as usize;
                    let door = doors[d].clone();
                    let step = match door.sequence.first() {
                        Some(_) if rng.chance(85) => *rng.pick(&door.sequence),
                        _ => Step {
                            proto: Proto::Tcp,
                            port: *rng.pick(&POOL),
                        },
                    };
                    let dst = door.target.unwrap_or(ip(LOCAL4));
                    let k = knock(srcs[s], dst, step, good_flags(&door));
                    for sent in since[s].iter_mut() {
                        sent.push(step);
                    }
                    now += Duration::from_millis(rng.below(50));
                    let mut events = Vec::new();
                    let snapshot: Rc<[Rc<Door>]> = doors.clone().into();
                    t.on_knock(&snapshot, &is_local, &k, now, &mut |e| events.push(e));
                    for e in events {
                        let Event::Open { door: od, src } = e else {
                            continue;
                        };
                        let si = srcs.iter().position(|&x| x == src).expect("one of ours");
                        let seq = &snapshot[od].sequence;
                        assert!(!seq.is_empty(), "seed {seed}: a used-up door opened");
                        assert!(
                            !changed[od] || subsequence(seq, &since[si][od]),
                            "seed {seed}: door {od} {seq:?} opened for {src} after a change \
                             with only {:?} sent since",
                            since[si][od]
                        );
                        if snapshot[od].one_time.is_some() {
                            doors[od] = with_sequence(&snapshot[od], random_sequence(&mut rng));
                            changed[od] = true;
                            for s in since.iter_mut() {
                                s[od].clear();
                            }
                        }
                    }
                }
            }
        }
    }
}
