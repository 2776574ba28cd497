//! Shared by the fuzz targets and the seed generator (`examples/seeds.rs`): how a fuzz input is
//! cut into captured frames, the small fixed world the packet target knocks on, and the
//! checks each target makes.
//!
//! The targets themselves (`fuzz_targets/*.rs`) are one line each, so that a crash found by
//! libFuzzer reproduces with the same code under `cargo test`-style tools as well.

use latchkey::capture::filter;
use latchkey::config::{self, Door};
use latchkey::packet::{self, ethertype, Knock};
use latchkey::tracker::{self, Event, Rules, Tracker};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Frames: the packet target's input format.
// ---------------------------------------------------------------------------------------------

/// `PACKET_OUTGOING`: the daemon skips these before parsing, the filter drops them.
pub const PACKET_OUTGOING: u8 = 4;

/// One frame as the cooked capture hands it over, plus the time that passed before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The link layer's protocol field.
    pub ethertype: u16,
    /// `sll_pkttype` (0 = to us, 4 = outgoing, ...).
    pub pkttype: u8,
    /// Time that passes before this frame arrives.
    pub advance: Duration,
    /// Bytes from the network header on.
    pub bytes: &'a [u8],
}

/// Input layout: one rules byte, then frames. A frame is
/// `kind, amount, len, [ethertype hi, lo if kind&7 == 4], len bytes`, where `kind` bits 0-2
/// pick the ethertype (IPv4, IPv6, 802.1Q, 802.1ad, explicit, ARP, IPv4, IPv6), bits 3-5 are
/// the packet type and bits 6-7 the unit of `amount` (none, ms, 100 ms, s) for the time that
/// passes before the frame. `len` 255 means "the rest of the input". A frame cut short by the
/// end of the input is still fed, with what there is.
pub fn frames(data: &[u8]) -> (Rules, Vec<Frame<'_>>) {
    let Some((&r, mut rest)) = data.split_first() else {
        return (rules_from(0), Vec::new());
    };
    let mut out = Vec::new();
    while let [kind, amount, len, tail @ ..] = rest {
        let mut tail = tail;
        let et = match kind & 7 {
            0 | 6 => ethertype::IPV4,
            1 | 7 => ethertype::IPV6,
            2 => ethertype::VLAN,
            3 => ethertype::QINQ,
            4 => match tail {
                [hi, lo, t @ ..] => {
                    tail = t;
                    u16::from_be_bytes([*hi, *lo])
                }
                _ => break,
            },
            _ => 0x0806,
        };
        let unit = match kind >> 6 {
            0 => Duration::ZERO,
            1 => Duration::from_millis(1),
            2 => Duration::from_millis(100),
            _ => Duration::from_secs(1),
        };
        let n = if *len == 255 {
            tail.len()
        } else {
            (*len as usize).min(tail.len())
        };
        out.push(Frame {
            ethertype: et,
            pkttype: (kind >> 3) & 7,
            advance: unit * *amount as u32,
            bytes: &tail[..n],
        });
        rest = &tail[n..];
    }
    (rules_from(r), out)
}

/// Bit 0: sweep guard, bit 1: tolerate repeats, bits 2-7: sweep window (0..63).
pub fn rules_from(b: u8) -> Rules {
    Rules {
        sweep_guard: b & 1 != 0,
        tolerate_repeats: b & 2 != 0,
        sweep_window: (b >> 2) as u16,
    }
}

/// The inverse of [`rules_from`], for the seed generator.
pub fn rules_byte(r: Rules) -> u8 {
    (r.sweep_guard as u8)
        | ((r.tolerate_repeats as u8) << 1)
        | ((r.sweep_window.min(63) as u8) << 2)
}

/// Appends one frame in the layout [`frames`] reads (`advance` in whole 100 ms units).
pub fn push_frame(out: &mut Vec<u8>, et: u16, pkttype: u8, advance_100ms: u8, bytes: &[u8]) {
    let sel = match et {
        ethertype::IPV4 => 0,
        ethertype::IPV6 => 1,
        ethertype::VLAN => 2,
        ethertype::QINQ => 3,
        _ => 4,
    };
    let unit = if advance_100ms == 0 { 0 } else { 2 << 6 };
    assert!(bytes.len() < 255, "seed frames are short");
    out.extend([
        sel | ((pkttype & 7) << 3) | unit,
        advance_100ms,
        bytes.len() as u8,
    ]);
    if sel == 4 {
        out.extend(et.to_be_bytes());
    }
    out.extend(bytes);
}

// ---------------------------------------------------------------------------------------------
// The world the packet target knocks on.
// ---------------------------------------------------------------------------------------------

/// Doors with shared ports, a one-step door, a repeated port, `Target`s and IPv6, so every
/// branch of the state machine is a few mutations away.
pub const DOORS: &str = "\
[options]
    interface = eth0
[ssh]
    sequence = 7000,8000:udp,9000
    seq_timeout = 5
    tcpflags = syn
[reverse]
    sequence = 9000,8000:udp,7000
    seq_timeout = 3
[dns]
    sequence = 53:udp
[target]
    sequence = 1000,1000,2000
    tcpflags = syn,!ack
    target = 192.0.2.50
[six]
    sequence = 65535:udp,1,65535
    target = 2001:db8::50
";

/// The interface's own addresses.
pub const LOCAL: [&str; 2] = ["192.0.2.1", "2001:db8::1"];

/// Attempts the packet target's table holds: small, so floods evict.
pub const CAPACITY: usize = 4;

thread_local! {
    static WORLD: Rc<[Rc<Door>]> = config::parse(Path::new("fuzz.conf"), DOORS)
        .expect("the fuzz world's config is valid")
        .doors;
    static LOCAL_IPS: [IpAddr; 2] = LOCAL.map(|a| a.parse().unwrap());
}

/// The doors of [`DOORS`].
pub fn doors() -> Rc<[Rc<Door>]> {
    WORLD.with(Rc::clone)
}

/// Whether `ip` is one of [`LOCAL`].
pub fn is_local(ip: IpAddr) -> bool {
    LOCAL_IPS.with(|l| l.contains(&ip))
}

/// Whether the tracker would look at `k` at all for some door aimed at its destination (see
/// `tracker::watches`). The kernel filter must pass all of these.
pub fn counts(doors: &[Rc<Door>], rules: &Rules, k: &Knock) -> bool {
    doors
        .iter()
        .any(|d| d.is_live() && tracker::aimed(d, &is_local, k.dst) && tracker::watches(d, rules, k))
}

/// The event stream replayed into a map of attempts: what the tracker must hold.
#[derive(Default)]
pub struct Shadow {
    attempts: HashMap<(IpAddr, usize), u8>,
    /// Doors opened, in order.
    pub opened: Vec<(usize, IpAddr)>,
}

impl Shadow {
    /// Applies one event, checking it against what came before.
    pub fn apply(&mut self, doors: &[Rc<Door>], e: Event) {
        let len = |d: usize| doors[d].sequence.len();
        match e {
            Event::Stage { door, src, stage } => {
                let before = self.attempts.insert((src, door), stage).unwrap_or(0);
                assert!(
                    stage as usize >= 1 && (stage as usize) < len(door),
                    "{e:?}: stage out of range"
                );
                assert!(
                    stage == 1 || stage == before + 1,
                    "{e:?}: jumped from stage {before}"
                );
            }
            Event::Open { door, src } => {
                let was = self.attempts.remove(&(src, door)).unwrap_or(0);
                assert_eq!(was as usize + 1, len(door), "{e:?} from stage {was}");
                self.opened.push((door, src));
            }
            Event::Wrong { door, src, stage } | Event::Timeout { door, src, stage } => {
                let was = self.attempts.remove(&(src, door));
                assert_eq!(was, Some(stage), "{e:?} for an attempt at {was:?}");
            }
            Event::Evicted { door, src } => {
                let was = self.attempts.remove(&(src, door));
                assert_eq!(was, Some(1), "{e:?}: only stage-1 attempts may be evicted");
            }
            Event::Refused { .. } => {
                assert!(
                    self.attempts.values().all(|&s| s > 1),
                    "{e:?} while a stage-1 attempt could have been evicted"
                );
            }
        }
    }

    /// Attempts the events say are in progress.
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    /// Whether no attempt is in progress.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }
}

/// The packet target: every frame through the kernel filter's interpreter, the parser and the
/// state machine, with time passing, checking:
/// - nothing panics;
/// - the filter passes every incoming packet the tracker would count (one VLAN tag at most,
///   as the filter documents);
/// - the table never holds more than [`CAPACITY`] attempts, and its events tell a consistent
///   story (stages one by one, only stage-1 attempts evicted, opens only at the last step);
/// - after `expire(now)`, no deadline is in the past.
///
/// Returns the doors opened, for the seed generator's self-check.
pub fn packet_path(data: &[u8]) -> Vec<(usize, IpAddr)> {
    let (rules, frames) = frames(data);
    let doors = doors();
    let local = LOCAL_IPS.with(|l| *l);
    let prog = filter::program(&filter::spec(&doors, &rules, &local, true), true);
    let mut t = Tracker::new(rules, CAPACITY, doors.len());
    let mut shadow = Shadow::default();
    let mut now = Instant::now();
    for f in frames {
        if !f.advance.is_zero() {
            now += f.advance;
            let mut events = Vec::new();
            t.expire(now, &mut |e| events.push(e));
            events.into_iter().for_each(|e| shadow.apply(&doors, e));
            assert!(t.next_deadline().is_none_or(|d| d > now), "stale deadline");
        }
        let verdict = filter::run(&prog, f.ethertype, f.pkttype, f.bytes);
        let parsed = packet::parse(f.ethertype, f.bytes);
        if f.pkttype >= filter::PACKET_OTHERHOST {
            assert_eq!(verdict, 0, "the filter passed an outgoing or other host's packet");
            continue;
        }
        let Ok(k) = parsed else { continue };
        if verdict == 0 && counts(&doors, &rules, &k) {
            panic!("filter dropped a packet the tracker counts: {k:?} from {f:?}");
        }
        let mut events = Vec::new();
        t.on_knock(&doors, &is_local, &k, now, &mut |e| events.push(e));
        for e in events {
            if let Event::Refused { .. } = e {
                assert_eq!(shadow.len(), CAPACITY, "{e:?} with room in the table");
            }
            shadow.apply(&doors, e);
        }
        assert!(t.len() <= CAPACITY, "table grew past its capacity");
        assert_eq!(t.len(), shadow.len(), "events and table disagree");
    }
    shadow.opened
}

// ---------------------------------------------------------------------------------------------
// The knockd config target.
// ---------------------------------------------------------------------------------------------

/// One-time sequence files the config target points `One_Time_Sequences` at: whatever the
/// fuzzer writes there is replaced by one of these (it must never read /dev/zero or a FIFO).
pub const ONE_TIME: [(&str, &str); 4] = [
    ("ots-live", "# used\n2000,2001,2002\n3000:udp,3001\n"),
    ("ots-bad", "\n  1,2,99999\n"),
    ("ots-used", "# 1,2,3\n#4,5,6\n"),
    ("ots-missing", ""),
];

thread_local! {
    static CONFIG_DIR: PathBuf = {
        let dir = std::env::temp_dir().join(format!("latchkey-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (name, text) in &ONE_TIME[..3] {
            std::fs::write(dir.join(name), text).expect("one-time file");
        }
        dir
    };
}

/// Replaces the value of every `One_Time_Sequences` line with one of [`ONE_TIME`]'s files
/// (chosen by the value's length), keeping the number of lines.
pub fn pin_one_time(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for raw in text.lines() {
        let line = raw.trim();
        let key = line.split_once('=').map(|(k, _)| k.trim());
        match key {
            Some(k)
                if !line.starts_with('[')
                    && !line.starts_with('#')
                    && k.eq_ignore_ascii_case("one_time_sequences") =>
            {
                let v = line.len() % ONE_TIME.len();
                out.push_str(&format!("{k} = {}", ONE_TIME[v].0));
            }
            _ => out.push_str(raw),
        }
        out.push('\n');
    }
    out
}

/// The config target: `config::parse` on any text, checking that every error names the file
/// it is in and a line inside it, and that a config that parses keeps the documented
/// invariants (1..=32 steps, ports 1..=65535, positive timeouts) and assembles into a filter
/// the kernel accepts.
pub fn knockd_config(data: &[u8]) {
    let text = pin_one_time(&String::from_utf8_lossy(data));
    let dir = CONFIG_DIR.with(PathBuf::clone);
    let path = dir.join("knockd.conf");
    let lines = text.lines().count();
    match config::parse(&path, &text) {
        Err(errors) => {
            assert!(!errors.is_empty(), "Err with no error");
            for e in &errors {
                assert!(!e.message.is_empty(), "{e:?}: empty message");
                if e.file == path {
                    assert!(
                        (1..=lines).contains(&e.line),
                        "{e}: line {} outside 1..={lines}",
                        e.line
                    );
                    continue;
                }
                let name = e.file.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let Some((_, body)) = ONE_TIME.iter().find(|(n, _)| *n == name) else {
                    panic!("{e}: names a file the config did not");
                };
                let max = body.lines().count();
                assert!(e.line <= max, "{e}: line {} past {max}", e.line);
                assert!(
                    e.line > 0 || body.is_empty(),
                    "{e}: line 0 for a readable file"
                );
            }
        }
        Ok(cfg) => {
            for d in cfg.doors.iter() {
                assert!(d.sequence.len() <= config::MAX_STEPS, "{d:?}");
                assert!(d.sequence.iter().all(|s| s.port != 0), "{d:?}");
                assert!(!d.seq_timeout.is_zero(), "{d:?}");
                assert!(d.is_live() || d.one_time.is_some(), "{d:?}: no sequence");
                let _ = (d.flags.to_string(), d.start_for(IpAddr::from([0; 16])));
            }
            let o = &cfg.options;
            let rules = Rules {
                sweep_guard: o.sweep_guard,
                sweep_window: o.sweep_window,
                tolerate_repeats: o.tolerate_repeats,
            };
            let local = LOCAL_IPS.with(|l| *l);
            let spec = filter::spec(&cfg.doors, &rules, &local, true);
            for c in &spec.classes {
                let tcp = c.tcp.iter().map(|t| &t.1);
                for v in tcp.chain([&c.udp]) {
                    assert!(v.windows(2).all(|w| w[0].1 < w[1].0), "ranges not merged: {v:?}");
                }
            }
            let prog = filter::program(&spec, true);
            assert!(
                prog.len() <= filter::MAX_INSNS,
                "{} instructions",
                prog.len()
            );
            assert!((16..=1 << 20).contains(&o.max_attempts), "MaxAttempts");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The saved-hosts target.
// ---------------------------------------------------------------------------------------------

/// The hosts target: the client's saved-hosts parser on any text, checking that every error
/// starts with `FILE:LINE:` for a line inside the file, and that what parses is usable: names
/// unique and plain, sequences non-empty with ports 1..=65535, and `describe()` /
/// `format_list()` round-trip.
pub fn saved_hosts(data: &[u8]) {
    use latchkey::client::{hosts, sequence};
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    match hosts::parse("knock.conf", &text) {
        Err(e) => {
            let rest = e
                .strip_prefix("knock.conf:")
                .unwrap_or_else(|| panic!("{e:?}: no file name"));
            let (n, msg) = rest
                .split_once(':')
                .unwrap_or_else(|| panic!("{e:?}: no line"));
            let n: usize = n.parse().unwrap_or_else(|_| panic!("{e:?}: bad line"));
            assert!((1..=lines).contains(&n), "{e:?}: line outside 1..={lines}");
            assert!(!msg.trim().is_empty(), "{e:?}: no message");
        }
        Ok(hosts) => {
            let mut seen = std::collections::HashSet::new();
            let file = hosts::HostsFile {
                path: "knock.conf".into(),
                hosts: hosts.clone(),
            };
            for h in &hosts {
                assert!(
                    !h.names.is_empty() && (1..=lines).contains(&h.line),
                    "{h:?}"
                );
                for n in &h.names {
                    assert!(seen.insert(n.clone()), "{n} defined twice");
                    assert!(!n.is_empty() && !n.contains(char::is_whitespace), "{n:?}");
                }
                assert!(!h.hostname.is_empty(), "{h:?}");
                assert!(!h.sequence.is_empty(), "{h:?}");
                assert!(h.sequence.iter().all(|k| k.port != 0), "{h:?}");
                assert!(h.check != Some(0), "{h:?}");
                let listed = sequence::format_list(&h.sequence);
                assert_eq!(sequence::parse_list(&listed).as_ref(), Ok(&h.sequence));
                let _ = h.describe();
                assert_eq!(file.find(&h.names[0]), Some(h));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SPA: the decoder and the whole per-packet decision.
// ---------------------------------------------------------------------------------------------

/// The SPA door the `spa` target serves (and the seeds are made for).
pub const SPA_DOOR: &str = "[spa]\nSPA_Port = 62201\n\
    Key_Base64 = W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=\nHMAC_Key = fuzz-hmac-key\n\
    Open_Ports = tcp/22, udp/53\nMax_Timeout = 60\nRequire_Source_Address = no\n\
    Start_Command = open %IP% %PROTO% %PORT% %TIMEOUT%\n";
/// "now" for the `spa` target.
pub const SPA_NOW: i64 = 1_800_000_000;

/// Input: the first byte picks the mode. Even: the rest is a UDP payload as received. Odd:
/// the rest is a plaintext, sealed with the door's keys first (so the fuzzer reaches the
/// field parser behind the HMAC and the decryption). Either way it goes through
/// `spa::receive` twice: the second time must be a replay or a refusal, never a grant; a
/// grant must keep every invariant of the door. Returns whether the first pass opened.
pub fn spa(data: &[u8]) -> bool {
    use latchkey::spa::{self, replay::Cache, wire, Refusal, Wire};
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let cfg = config::parse(Path::new("spa.conf"), SPA_DOOR).expect("the fuzz door parses");
    let door = &cfg.spa[0];
    let sealed;
    let payload = if mode & 1 == 1 {
        sealed = wire::seal(rest, &door.keys, [mode; 8]);
        sealed.as_bytes()
    } else {
        rest
    };
    let w = Wire {
        src: IpAddr::from([192, 0, 2, 2]),
        dst: IpAddr::from([192, 0, 2, 1]),
        port: 62201,
    };
    let mut cache = Cache::new(4);
    let doors = cfg.spa.iter().map(|d| &**d);
    let first = spa::receive(doors, payload, w, SPA_NOW, &mut cache);
    if let Ok(a) = &first {
        let g = &a.grant;
        let open = door
            .rules
            .open_ports
            .as_ref()
            .expect("the door lists ports");
        assert!(g.access.iter().all(|x| open.contains(x)), "{g:?}");
        assert!(g.timeout >= 1 && g.timeout <= 60, "{g:?}");
        assert!((a.msg.timestamp - SPA_NOW).abs() <= 120, "{:?}", a.msg);
        assert!(!g.access.is_empty());
        let cmds = a.door.commands(g, w.src, w.dst, a.msg.timestamp);
        assert_eq!(cmds.len(), g.access.len());
        assert!(cmds.iter().all(|(o, _)| !o.contains('%')), "{cmds:?}");
    }
    let doors = cfg.spa.iter().map(|d| &**d);
    match spa::receive(doors, payload, w, SPA_NOW, &mut cache) {
        Ok(a) => panic!("accepted twice: {a:?}"),
        Err((_, e)) if first.is_ok() => assert_eq!(e, Refusal::Replay),
        Err(_) => {}
    }
    // The parts on their own: never panic.
    if let Ok(pk) = wire::Packet::parse(payload) {
        let _ = pk.decrypt(&door.keys.enc);
        let _ = pk.replay_key();
    }
    first.is_ok()
}
