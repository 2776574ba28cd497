//! Logging from the packet path allocates nothing: a counting global allocator watches the
//! logger while it writes knock lines to a LogFile and syslog (no syslog daemon here, so every
//! syslog line is dropped and counted), holds knock and open lines back over their limits, and
//! reports the held-back lines; a line too long for its buffer is cut, not dropped. Setup (the logger, the file, one line to load the time zone)
//! happens before counting starts.
#![cfg(target_os = "linux")]

use latchkey::logging::{self, BURST, KNOCK, OPEN};
use log::{info, warn, LevelFilter};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

#[path = "common/counting.rs"]
mod counting;
use counting::{ALLOCS, ON};

#[test]
fn knock_lines_and_their_limit_allocate_nothing() {
    let dir = std::env::temp_dir().join(format!("latchkey-log-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("knockd.log");
    logging::init(LevelFilter::Warn, "latchkey");
    logging::configure(Some(&path), true).unwrap();
    info!("warm-up: the time zone is loaded on the first line");
    let long = "x".repeat(3000);

    ON.with(|on| on.set(true));
    for i in 0..(BURST * 3) {
        let src = IpAddr::V4(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8));
        info!(target: KNOCK, "{src}: openSSH: Stage {}", 1 + i % 3);
    }
    for i in 0..(BURST * 2) {
        let src = IpAddr::V4(Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8));
        info!(target: OPEN, "{src}: one: OPEN SESAME");
    }
    info!("openSSH: running command: /sbin/iptables -I INPUT 1 -s 192.0.2.2 -j ACCEPT");
    warn!("openSSH: command returned non-zero status code (1)");
    info!("long: running command: {long}");
    logging::flush();
    ON.with(|on| on.set(false));

    let n = ALLOCS.load(Ordering::Relaxed);
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(n, 0, "allocations while logging");
    let stages = text.lines().filter(|l| l.contains(": Stage ")).count();
    assert_eq!(stages, BURST as usize, "{text}");
    assert!(text.contains("too many knock lines"), "{text}");
    let opens = text.lines().filter(|l| l.contains("OPEN SESAME")).count();
    assert_eq!(opens, BURST as usize, "{text}");
    assert!(text.contains("too many open lines"), "{text}");
    assert!(text.contains("running command"), "{text}");
    let cut = text
        .lines()
        .find(|l| l.contains("long: running command: xxx"));
    assert!(
        cut.is_some_and(|l| l.len() > 2000 && l.ends_with("xxx [cut]")),
        "{text}"
    );
    for (kind, n) in [("knock", BURST * 2), ("open", BURST)] {
        let want = format!("{n} {kind} log lines suppressed");
        assert!(text.contains(&want), "{want} not in {text}");
    }
}
