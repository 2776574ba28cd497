use super::*;
use crate::config::{parse, Config};
use std::path::Path;
use std::time::Duration;

fn doors(text: &str) -> Config {
    parse(Path::new("t.conf"), text).expect("valid")
}

const CONF: &str = "[a]\nsequence=1,2\ncmd_timeout=10\nstart_command=open %IP%\n\
                    stop_command=close %IP% %IP%\n[b]\nsequence=3\nseq_timeout=4\ncommand=mail %IP%\n";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn started(o: Opened) -> u32 {
    match o {
        Opened::Start(id) => id,
        other => panic!("expected a start, got {other:?}"),
    }
}

fn ids(g: &mut Grants, now: Option<Instant>) -> Vec<u32> {
    let mut out = Vec::new();
    g.take_due(now, &mut |id| out.push(id));
    out
}

#[test]
fn extends_instead_of_starting_twice() {
    let c = doors(CONF);
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let a = ip("192.0.2.7");
    let id = started(g.open(&c.doors[0], a, t0, true));
    assert_eq!(
        g.open(&c.doors[0], a, t0, true),
        Opened::Repeat,
        "still starting"
    );
    assert_eq!(g.started(id, Ended::Ok, t0), Next::Nothing);
    let t1 = t0 + Duration::from_secs(5);
    assert_eq!(g.open(&c.doors[0], a, t1, true), Opened::Extend);
    assert_eq!(g.next_deadline(), Some(t1 + Duration::from_secs(10)));
    // ExtendGrants = no: knockd's way, a second grant (once the first has opened).
    started(g.open(&c.doors[0], a, t1, false));
    assert_eq!(g.len(), 2);
}

/// A knockd door whose commands go through latchkey's firewall helper (as README suggests),
/// and a UCI door (no stop command: the element's kernel timeout closes it).
const FW: &str = "[h]\nsequence=1\ncmd_timeout=10\n\
                  start_command=/usr/share/latchkey/fw open %IP% tcp 22 10\n\
                  stop_command=/usr/share/latchkey/fw close %IP% tcp 22\n\
                  [u]\nsequence=2\nseq_timeout=15\ncmd_timeout=10\n\
                  start_command=/usr/share/latchkey/fw open %IP% tcp 22 10\n";

#[test]
fn extending_runs_the_start_again_for_kernel_timed_doors_only() {
    let (c, fw) = (doors(CONF), doors(FW));
    let a = ip("192.0.2.7");
    assert!(!c.doors[0].refreshes(a) && fw.doors[0].refreshes(a) && fw.doors[1].refreshes(a));
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let s = Duration::from_secs;
    // A plain knockd door: extended, its start command does not run again.
    let plain = started(g.open(&c.doors[0], a, t0, true));
    g.started(plain, Ended::Ok, t0);
    assert_eq!(g.open(&c.doors[0], a, t0 + s(5), true), Opened::Extend);
    assert_eq!(
        g.open(&c.doors[0], a, t0 + s(5), false),
        Opened::Start(plain + 1)
    );
    let mut g = Grants::new(4);
    // The helper's door: extended, and its start runs again (it renews the kernel's timeout).
    let id = started(g.open(&fw.doors[0], a, t0, true));
    g.started(id, Ended::Ok, t0);
    assert_eq!(
        g.open(&fw.doors[0], a, t0 + s(5), true),
        Opened::Refresh(id)
    );
    // While it runs, nothing more runs and nothing closes, even past the first end.
    assert_eq!(g.open(&fw.doors[0], a, t0 + s(6), true), Opened::Repeat);
    assert!(ids(&mut g, Some(t0 + s(12))).is_empty());
    // A re-run that fails leaves the grant open until its new end, then its stop runs.
    assert_eq!(g.started(id, Ended::Failed, t0 + s(6)), Next::Nothing);
    assert_eq!(g.get(id).map(|x| x.phase), Some(Phase::Open));
    assert!(ids(&mut g, Some(t0 + s(14))).is_empty());
    // At most once a second (a flood of knocks is not a fork storm).
    assert_eq!(
        g.open(&fw.doors[0], a, t0 + s(5) + s(1) / 2, true),
        Opened::Repeat
    );
    // ExtendGrants = no makes no second grant on the same element (its stop would close it).
    assert_eq!(
        g.open(&fw.doors[0], a, t0 + s(7), false),
        Opened::Refresh(id)
    );
    g.started(id, Ended::Killed, t0 + s(7));
    assert_eq!(ids(&mut g, Some(t0 + s(17))), vec![id]);
    assert!(!g.stopped(id, Ended::Ok, t0 + s(17)));
    // A UCI door (no stop command): a knock within its window runs the start again too.
    let id = started(g.open(&fw.doors[1], a, t0, true));
    g.started(id, Ended::Ok, t0);
    assert_eq!(g.open(&fw.doors[1], a, t0 + s(1) / 2, true), Opened::Repeat);
    assert_eq!(
        g.open(&fw.doors[1], a, t0 + s(3), true),
        Opened::Refresh(id)
    );
    g.started(id, Ended::Ok, t0 + s(3));
    assert!(ids(&mut g, Some(t0 + s(12))).is_empty());
    assert_eq!(g.len(), 1);
    assert!(ids(&mut g, Some(t0 + s(13))).is_empty());
    assert!(g.is_empty(), "the record lapses at its new end");
}

#[test]
fn an_spa_grant_asked_again_for_another_time_is_one_grant_to_the_later_end() {
    // The SPA firewall action's door for one port: the timeout is part of the open command.
    let door = |secs: u64| {
        let mut d = (*doors(FW).doors[0]).clone();
        d.start = Some(format!("/usr/share/latchkey/fw open %IP% tcp 22 {secs}"));
        d.cmd_timeout = Duration::from_secs(secs);
        Rc::new(d)
    };
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let a = ip("192.0.2.7");
    let id = started(g.open(&door(60), a, t0, true));
    g.started(id, Ended::Ok, t0);
    // Asking for less than is left: nothing runs, the grant keeps its end.
    assert_eq!(g.open(&door(10), a, t0 + s(5), true), Opened::Repeat);
    assert_eq!(g.next_deadline(), Some(t0 + s(60)));
    // Asking for more: the same grant, run with the new time, ending later.
    assert_eq!(g.open(&door(300), a, t0 + s(5), true), Opened::Refresh(id));
    assert_eq!(
        g.get(id).and_then(|x| x.door.start.clone()).as_deref(),
        Some("/usr/share/latchkey/fw open %IP% tcp 22 300")
    );
    // At shutdown, the re-run's end is followed by the stop.
    assert!(ids(&mut g, None).is_empty());
    assert_eq!(g.started(id, Ended::Ok, t0 + s(6)), Next::Stop(id));
    assert_eq!(g.len(), 1);
    // A grant taken over from the state file (its door has no start command) is the same
    // grant too: a new packet extends it, instead of a second grant that its close would end.
    let mut g = Grants::new(4);
    let mut adopted = (*door(60)).clone();
    adopted.start = None;
    let id = g.adopt(Rc::new(adopted), a, t0 + s(20)).unwrap();
    assert_eq!(g.open(&door(10), a, t0, true), Opened::Repeat);
    assert_eq!(g.open(&door(30), a, t0, true), Opened::Refresh(id));
    assert_eq!(g.len(), 1);
}

#[test]
fn a_failed_start_leaves_no_grant_and_the_next_knock_starts_again() {
    let c = doors(CONF);
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let a = ip("192.0.2.7");
    let id = started(g.open(&c.doors[0], a, t0, true));
    assert_eq!(g.started(id, Ended::Failed, t0), Next::Nothing);
    assert!(g.is_empty(), "no phantom grant");
    started(g.open(&c.doors[0], a, t0, true));
}

#[test]
fn a_killed_start_is_closed_anyway() {
    let c = doors(CONF);
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let id = started(g.open(&c.doors[0], ip("192.0.2.7"), t0, true));
    assert_eq!(g.started(id, Ended::Killed, t0), Next::Stop(id));
    assert_eq!(g.get(id).map(|x| x.phase), Some(Phase::Stopping));
    assert!(!g.stopped(id, Ended::Ok, t0));
    assert!(g.is_empty());
}

#[test]
fn a_stop_never_runs_before_its_start_has_ended() {
    let c = doors(CONF);
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let id = started(g.open(&c.doors[0], ip("192.0.2.7"), t0, true));
    // Long past cmd_timeout, the start still runs: nothing is due yet.
    assert!(ids(&mut g, Some(t0 + Duration::from_secs(60))).is_empty());
    assert!(ids(&mut g, None).is_empty(), "shutdown marks it instead");
    // When the start ends, the stop follows at once.
    assert_eq!(
        g.started(id, Ended::Ok, t0 + Duration::from_secs(61)),
        Next::Stop(id)
    );
}

#[test]
fn a_failed_stop_is_retried_then_given_up() {
    let c = doors(CONF);
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let id = started(g.open(&c.doors[0], ip("192.0.2.7"), t0, true));
    g.started(id, Ended::Ok, t0);
    let mut t = t0 + Duration::from_secs(10);
    for try_no in 1..=STOP_TRIES {
        assert_eq!(ids(&mut g, Some(t)), vec![id], "stop due (try {try_no})");
        let gave_up = g.stopped(id, Ended::Failed, t);
        assert_eq!(gave_up, try_no == STOP_TRIES);
        if let Some(next) = g.next_deadline() {
            assert!(next > t, "retried later, not at once");
            t = next;
        }
    }
    assert!(g.is_empty());
}

#[test]
fn stop_less_doors_hold_off_repeats_and_yield_their_room() {
    let c = doors(CONF);
    let mut g = Grants::new(1);
    let t0 = Instant::now();
    let (a, b) = (ip("192.0.2.7"), ip("192.0.2.8"));
    let id = started(g.open(&c.doors[1], a, t0, true));
    g.started(id, Ended::Ok, t0);
    // A flood of the same door from the same source runs nothing more.
    assert_eq!(g.open(&c.doors[1], a, t0, true), Opened::Repeat);
    assert_eq!(g.open(&c.doors[1], a, t0, false), Opened::Repeat);
    // A door with a stop command takes the record's room.
    let id = started(g.open(&c.doors[0], a, t0, true));
    assert_eq!(g.open(&c.doors[0], b, t0, true), Opened::Full);
    g.started(id, Ended::Ok, t0);
    assert!(ids(&mut g, Some(t0)).is_empty());
    assert_eq!(ids(&mut g, Some(t0 + Duration::from_secs(10))), vec![id]);
    // After its window (seq_timeout) the record of a stop-less door lapses: its start may
    // run again.
    let mut g = Grants::new(2);
    let id = started(g.open(&c.doors[1], a, t0, true));
    g.started(id, Ended::Ok, t0);
    assert!(ids(&mut g, Some(t0 + Duration::from_secs(3))).is_empty());
    assert_eq!(g.len(), 1);
    assert!(ids(&mut g, Some(t0 + Duration::from_secs(4))).is_empty());
    assert!(g.is_empty());
    started(g.open(&c.doors[1], a, t0 + Duration::from_secs(4), true));
    // ... or after cmd_timeout if that is shorter (what the command opened has lapsed).
    let short = doors("[b]\nsequence=3\nseq_timeout=10\ncmd_timeout=2\ncommand=fw open %IP%\n");
    let mut g = Grants::new(2);
    let id = started(g.open(&short.doors[0], a, t0, true));
    g.started(id, Ended::Ok, t0);
    assert!(ids(&mut g, Some(t0 + Duration::from_secs(2))).is_empty());
    started(g.open(&short.doors[0], a, t0 + Duration::from_secs(2), true));
}

#[test]
fn grants_are_told_apart_by_door_not_by_name() {
    let c = doors(CONF);
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let a = ip("192.0.2.7");
    let id = started(g.open(&c.doors[0], a, t0, true));
    g.started(id, Ended::Ok, t0);
    // Same name, other commands (a reload changed the door): a new grant, so that the new
    // start command runs and each stop command closes what its own start opened.
    let mut other = (*c.doors[0]).clone();
    other.start = Some("open2 %IP%".into());
    started(g.open(&Rc::new(other), a, t0, true));
    // The unchanged door of a reloaded config still finds its grant.
    let again = doors(CONF);
    assert_eq!(g.open(&again.doors[0], a, t0, true), Opened::Extend);
}

#[test]
fn adopted_grants_are_kept_one_by_one() {
    let c = doors(CONF);
    let mut g = Grants::new(2);
    let t0 = Instant::now();
    let a = ip("192.0.2.7");
    assert!(g.adopt(c.doors[0].clone(), a, t0).is_some());
    assert!(g.adopt(c.doors[0].clone(), a, t0).is_some(), "not merged");
    assert!(g.adopt(c.doors[0].clone(), a, t0).is_none(), "bounded");
    assert_eq!(ids(&mut g, Some(t0)).len(), 2);
}

#[test]
fn expands_every_ip() {
    let ip: IpAddr = "2001:db8::5".parse().unwrap();
    assert_eq!(expand("a %IP% b %IP%", ip), "a 2001:db8::5 b 2001:db8::5");
}
