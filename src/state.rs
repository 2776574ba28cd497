//! The state file: live grants written down so that a grant left open by a crash (SIGKILL,
//! power loss of the daemon, OOM) is still closed after the next start.
//!
//! One line per grant: `boot_id deadline_ms door<TAB>knocker<TAB>stop command`, where the
//! deadline is on `CLOCK_BOOTTIME` (monotonic across restarts of the daemon, unaffected by
//! NTP jumps). After a restart in the same boot, a grant keeps its deadline; after a reboot
//! its stop command is due at once.
//!
//! The file holds commands that run as root, so it is never trusted blindly: it is written
//! mode 0600 through a fresh temporary file (`O_EXCL | O_NOFOLLOW`, then rename), and read
//! only if it is a regular file, not a symlink, owned by the daemon's user and not writable by
//! anyone else; otherwise it is refused (logged, nothing run). A grant leaves the file only
//! once its stop command has run.

use crate::grant::{expand, Grants, Phase};
use log::{error, warn};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The state file used when `StateFile` is not set: one per interface and network namespace,
/// so daemons in different namespaces (or on different interfaces) never share one. The
/// initial namespace has a plain name; any other is named by its cookie (`SO_NETNS_COOKIE`),
/// which, unlike the namespace's inode number, the kernel never hands to a later namespace.
pub fn default_path(iface: &str) -> PathBuf {
    PathBuf::from(match netns_key() {
        None => format!("/var/run/latchkey-{iface}.state"),
        Some(key) => format!("/var/run/latchkey-{iface}-{key}.state"),
    })
}

/// `None` in the initial network namespace, else a key no unrelated namespace shares.
fn netns_key() -> Option<String> {
    let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
    let own = ino("/proc/self/ns/net");
    if own.is_some() && own == ino("/proc/1/ns/net") {
        return None;
    }
    match netns_cookie() {
        Some(c) => Some(format!("ns{c}")),
        // Kernels before 5.14: the inode number, the best there is (it can be reused).
        None => Some(format!("ino{}", own.unwrap_or(0))),
    }
}

fn netns_cookie() -> Option<u64> {
    // SAFETY: a throw-away socket and getsockopt into a local u64; results checked.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut cookie: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        let r = libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            &mut cookie as *mut u64 as *mut libc::c_void,
            &mut len,
        );
        libc::close(fd);
        (r == 0).then_some(cookie)
    }
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

/// Writes every live grant of `grants` that has a stop command to `path` (removes the file
/// when there is none).
pub fn save(path: &Path, grants: &Grants, now: Instant) -> std::io::Result<()> {
    let boot = boot_id();
    let base = boottime();
    let mut text = String::new();
    for g in grants.iter() {
        let Some(stop) = g.door.stop_for(g.src) else {
            continue;
        };
        // A stop that was due already (running, or failed and waiting to be tried again) is
        // due at once next time.
        let due = g.phase == Phase::Stopping || g.stop_failures > 0;
        let deadline = if due {
            base
        } else {
            base + g.until.saturating_duration_since(now)
        };
        let stop = expand(stop, g.src).replace(['\n', '\t'], " ");
        text.push_str(&format!(
            "{boot} {} {}\t{}\t{stop}\n",
            crate::clock::millis(deadline),
            g.door.name,
            g.src
        ));
    }
    if text.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = path.with_extension("tmp");
    // A leftover (or planted) temporary file or symlink is removed, never followed.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

/// Reads the grants a previous run left in `path`. Lines that do not parse are skipped; a
/// file that anyone but the daemon's user could have written is refused whole (logged).
pub fn load(path: &Path) -> Vec<Recovered> {
    match read_trusted(path) {
        Ok(Some(text)) => parse(&text, &boot_id(), boottime()),
        Ok(None) => Vec::new(),
        Err(why) => {
            error!(
                "refusing state file {}: {why}; not running any command from it",
                path.display()
            );
            Vec::new()
        }
    }
}

/// The file's text if it may be trusted, `None` if there is no file.
fn read_trusted(path: &Path) -> Result<Option<String>, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    let mut f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err("it is a symlink".into()),
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let m = f.metadata().map_err(|e| format!("cannot stat it: {e}"))?;
    // SAFETY: geteuid has no failure mode.
    let me = unsafe { libc::geteuid() };
    if !m.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if m.uid() != me {
        return Err(format!("owned by uid {}, not {me}", m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!("writable by others (mode {:o})", m.mode() & 0o7777));
    }
    let mut text = String::new();
    if let Err(e) = f.read_to_string(&mut text) {
        warn!("cannot read state file {}: {e}", path.display());
        return Ok(None);
    }
    Ok(Some(text))
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
        let (Ok(ms), Ok(src)) = (crate::config::number(ms).ok_or(()), src.parse::<IpAddr>()) else {
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

    #[test]
    fn written_private_and_refused_when_others_could_write_it() {
        use crate::config::parse;
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lk-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("s.state");
        let conf = "[a]\nsequence=1\nstart_command=true\nstop_command=close %IP%\n";
        let cfg = parse(Path::new("t.conf"), conf).expect("valid");
        let mut g = Grants::new(4);
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let crate::grant::Opened::Start(id) = g.open(&cfg.doors[0], ip, now, true) else {
            panic!("opens");
        };
        g.started(id, crate::grant::Ended::Ok, now);
        // A planted symlink at the temporary name is replaced, not followed.
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").expect("victim");
        std::os::unix::fs::symlink(&victim, path.with_extension("tmp")).expect("symlink");
        save(&path, &g, now).expect("saved");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(&path).len(), 1);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(load(&path).is_empty(), "a file others can write is refused");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let link = dir.join("link.state");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(load(&link).is_empty(), "a symlink is refused");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
