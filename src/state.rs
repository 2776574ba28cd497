//! The state file: live grants written down so that a grant left open by a crash (SIGKILL,
//! power loss of the daemon, OOM) is still closed after the next start.
//!
//! One line per grant: `boot_id deadline_ms door<TAB>knocker<TAB>stop command`, where the
//! deadline is on `CLOCK_BOOTTIME` (monotonic across restarts of the daemon, unaffected by
//! NTP jumps). After a restart in the same boot, a grant keeps its deadline; after a reboot
//! its stop command is due at once. The file is replaced atomically (write, then rename).

use crate::grant::{expand, Grants};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The state file used when `StateFile` is not set: one per interface and network namespace,
/// so daemons in different namespaces (or on different interfaces) never share one.
pub fn default_path(iface: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino());
    PathBuf::from(format!("/var/run/latchkey-{iface}-{ns}.state"))
}

/// A grant found in the state file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Door name.
    pub door: String,
    /// Knocker.
    pub src: IpAddr,
    /// The stop command, already expanded.
    pub stop: String,
    /// Time left until the stop command is due (zero: now).
    pub left: Duration,
}

fn boottime() -> Duration {
    // SAFETY: clock_gettime writes into a local timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Writes every live grant of `grants` to `path` (removes the file when there is none).
pub fn save(path: &Path, grants: &Grants, now: Instant) -> std::io::Result<()> {
    if grants.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let boot = boot_id();
    let base = boottime();
    let mut text = String::new();
    for g in grants.iter() {
        let Some(stop) = g.door.stop_for(g.src) else {
            continue;
        };
        let deadline = base + g.until.saturating_duration_since(now);
        let stop = expand(stop, g.src).replace(['\n', '\t'], " ");
        text.push_str(&format!(
            "{boot} {} {}\t{}\t{stop}\n",
            deadline.as_millis(),
            g.door.name,
            g.src
        ));
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

/// Reads the grants a previous run left in `path`. Lines that do not parse are skipped.
pub fn load(path: &Path) -> Vec<Recovered> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    parse(&text, &boot_id(), boottime())
}

fn parse(text: &str, boot: &str, now: Duration) -> Vec<Recovered> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(b), Some(ms), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mut fields = rest.splitn(3, '\t');
        let (Some(door), Some(src), Some(stop)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(ms), Ok(src)) = (ms.parse::<u64>(), src.parse::<IpAddr>()) else {
            continue;
        };
        let left = if b == boot {
            Duration::from_millis(ms).saturating_sub(now)
        } else {
            Duration::ZERO
        };
        out.push(Recovered {
            door: door.to_string(),
            src,
            stop: stop.to_string(),
            left,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_boot_keeps_deadline_other_boot_is_due_now() {
        let text = "b1 5000 ssh\t192.0.2.9\tiptables -D INPUT -s 192.0.2.9 -j ACCEPT\n\
                    b0 5000 ssh\t192.0.2.9\tx\ngarbage\n";
        let r = parse(text, "b1", Duration::from_millis(2000));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].left, Duration::from_millis(3000));
        assert_eq!(r[0].stop, "iptables -D INPUT -s 192.0.2.9 -j ACCEPT");
        assert_eq!(r[1].left, Duration::ZERO);
    }
}
