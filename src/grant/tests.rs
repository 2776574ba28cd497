use super::*;
use crate::config::{parse, Config};
use std::path::Path;
use std::time::Duration;

fn doors(text: &str) -> Config {
    parse(Path::new("t.conf"), text).expect("valid")
}

const CONF: &str = "[a]\nsequence=1,2\ncmd_timeout=10\nstart_command=open %IP%\n\
                    stop_command=close %IP% %IP%\n[b]\nsequence=3\ncommand=mail %IP%\n";

#[test]
fn extends_instead_of_starting_twice() {
    let c = doors(CONF);
    let mut g = Grants::new(4);
    let t0 = Instant::now();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    assert_eq!(g.open(&c.doors[0], ip, t0, true), Opened::Start);
    let t1 = t0 + Duration::from_secs(5);
    assert_eq!(g.open(&c.doors[0], ip, t1, true), Opened::Extend);
    assert_eq!(g.next_deadline(), Some(t1 + Duration::from_secs(10)));
    assert_eq!(g.open(&c.doors[0], ip, t1, false), Opened::Start);
    assert_eq!(g.len(), 2);
}

#[test]
fn door_without_stop_is_not_tracked_and_table_is_bounded() {
    let c = doors(CONF);
    let mut g = Grants::new(1);
    let t0 = Instant::now();
    let a: IpAddr = "192.0.2.7".parse().unwrap();
    let b: IpAddr = "192.0.2.8".parse().unwrap();
    assert_eq!(g.open(&c.doors[1], a, t0, true), Opened::Start);
    assert!(g.is_empty());
    assert_eq!(g.open(&c.doors[0], a, t0, true), Opened::Start);
    assert_eq!(g.open(&c.doors[0], b, t0, true), Opened::Full);
    let mut due = Vec::new();
    g.take_due(Some(t0), &mut |x| due.push(x));
    assert!(due.is_empty());
    g.take_due(Some(t0 + Duration::from_secs(10)), &mut |x| due.push(x));
    assert_eq!(due.len(), 1);
    assert!(g.is_empty());
}

#[test]
fn expands_every_ip() {
    let ip: IpAddr = "2001:db8::5".parse().unwrap();
    assert_eq!(expand("a %IP% b %IP%", ip), "a 2001:db8::5 b 2001:db8::5");
}
