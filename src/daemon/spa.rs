//! The daemon's SPA edge: UDP payloads to an SPA door's port go through
//! [`crate::spa::receive`] at the wall-clock time, grants become per-port doors for the
//! common grant table (so they close like knock grants, on time, across restarts), and the
//! replay cache is kept in a file.
//!
//! Wall clock only here: SPA timestamps are the client's wall clock, so the age check
//! needs ours. When it reads before 2024 (a router before NTP), that is logged clearly
//! instead of refusing every packet in silence. Everything else in the daemon stays
//! monotonic.
//!
//! Replay cache file: one `hex until` line per packet still young enough, written to a new
//! file (mode 0600, `O_NOFOLLOW|O_EXCL`) then renamed over the old one; read only if it is a
//! regular file owned by us and writable by nobody else. Without a cache file that could be
//! read, packets timestamped before the daemon started are refused (they might have been
//! seen by the previous run).

use super::actions::Actions;
use crate::config::{self, Door};
use crate::packet::{self, Knock};
use crate::spa::{self, replay, Refusal, Wire};
use log::{debug, info, warn};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// 2024-01-01T00:00:00Z: a wall clock before this has not been set.
const CLOCK_SANE: i64 = 1_704_067_200;

/// SPA state of the daemon.
pub(super) struct Spa {
    cache: replay::Cache,
    file: Option<PathBuf>,
    /// Packets older than this are refused (set when no cache file could be read).
    not_before: Option<i64>,
    clock_warned: Option<Instant>,
    /// SPA packets that opened something / that were refused.
    pub(super) accepted: u64,
    pub(super) refused: u64,
}

fn wall() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Spa {
    /// The SPA state for `cfg`, with the replay cache read from `file` if given.
    pub(super) fn new(cfg: &config::Config, file: Option<PathBuf>) -> Spa {
        let mut s = Spa {
            cache: replay::Cache::new(cfg.options.spa_replay_entries),
            file,
            not_before: None,
            clock_warned: None,
            accepted: 0,
            refused: 0,
        };
        if cfg.spa.is_empty() {
            return s;
        }
        let now = wall();
        match s.file.as_deref().map(load) {
            Some(Ok(text)) => {
                let n = s.cache.load_text(&text, now);
                info!("SPA replay cache: {n} packet(s) from {}", s.path_text());
            }
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                s.not_before = Some(now);
            }
            Some(Err(e)) => {
                warn!(
                    "SPA replay cache {} not read ({e}); refusing packets sent before now",
                    s.path_text()
                );
                s.not_before = Some(now);
            }
            None => s.not_before = Some(now),
        }
        s
    }

    fn path_text(&self) -> String {
        self.file
            .as_deref()
            .map_or("(memory only)".into(), |p| p.display().to_string())
    }

    /// UDP ports of the SPA doors, for the capture filter.
    pub(super) fn ports(cfg: &config::Config) -> Vec<u16> {
        let mut v: Vec<u16> = cfg.spa.iter().flat_map(|d| d.ports.clone()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Handles a captured packet `k` (bytes `frame` with `ethertype`) if it is UDP to an SPA
    /// door's port.
    pub(super) fn on_packet(
        &mut self,
        act: &mut Actions,
        ethertype: u16,
        frame: &[u8],
        k: &Knock,
        now: Instant,
    ) {
        if k.proto != config::Proto::Udp || !act.cfg.spa.iter().any(|d| d.ports.contains(&k.port)) {
            return;
        }
        let Some(payload) = packet::udp_payload(ethertype, frame) else {
            return;
        };
        let t = wall();
        if t < CLOCK_SANE
            && self
                .clock_warned
                .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(60))
        {
            self.clock_warned = Some(now);
            warn!(
                "the wall clock reads {t} (before 2024): it looks unset (no NTP yet?); SPA \
                 packets carry the sender's time and are refused as stale until it is right"
            );
        }
        let wire = Wire {
            src: k.src,
            dst: k.dst,
            port: k.port,
        };
        let spa_doors = act.cfg.spa.clone(); // a reference count, not a copy
        let before = self.cache.len();
        let result = spa::receive(
            spa_doors.iter().map(|d| &**d),
            payload,
            wire,
            t,
            &mut self.cache,
        );
        if self.cache.len() != before {
            self.save(t);
        }
        let a = match result {
            Ok(a) if self.not_before.is_some_and(|nb| a.msg.timestamp < nb) => {
                self.refused += 1;
                info!(
                    "{}: {}: SPA refused: sent before this daemon started, without a replay \
                     cache to check it against",
                    k.src, a.door.name
                );
                return;
            }
            Ok(a) => a,
            Err((_, Refusal::NotSpa)) => {
                debug!("{}: not an SPA packet ({} bytes)", k.src, payload.len());
                return;
            }
            Err((door, e)) => {
                self.refused += 1;
                let name = door.map_or("-", |d| d.name.as_str());
                // Unauthenticated packets (no door's HMAC key fits, or no door for them) are
                // what a flood is made of: they never reach the log at the default level, so
                // junk cannot fill a router's log. Authenticated refusals always do.
                if matches!(e, Refusal::BadMac | Refusal::NoDoor) {
                    debug!("{}: {name}: SPA refused: {e}", k.src);
                } else {
                    info!("{}: {name}: SPA refused: {e}", k.src);
                }
                return;
            }
        };
        self.accepted += 1;
        let mut ports = String::new();
        for x in &a.grant.access {
            if !ports.is_empty() {
                ports.push(',');
            }
            ports.push_str(x.proto.name());
            ports.push('/');
            ports.push_str(&x.port.to_string());
        }
        info!(
            "{}: {}: SPA accepted (user '{}'): opening {ports} for {} for {} s",
            k.src, a.door.name, a.msg.user, a.grant.ip, a.grant.timeout
        );
        for &access in &a.grant.access {
            let (open, close) = a
                .door
                .command(&a.grant, access, k.src, k.dst, a.msg.timestamp);
            // One grant per requested port: each closes on its own, through the same table,
            // runner and state file as knock doors.
            let d = Rc::new(Door {
                name: format!("{} {access}", a.door.name),
                sequence: config::Sequence::new(),
                one_time: None,
                seq_timeout: Duration::from_secs(1),
                cmd_timeout: Duration::from_secs(u64::from(a.grant.timeout)),
                start: Some(open),
                start6: None,
                stop: close,
                stop6: None,
                flags: Default::default(),
                target: None,
            });
            act.open(&d, a.grant.ip, now);
        }
    }

    fn save(&self, now: i64) {
        let Some(path) = &self.file else { return };
        if let Err(e) = save(path, &self.cache.to_text(now)) {
            warn!("cannot write SPA replay cache {}: {e}", path.display());
        }
    }
}

/// Writes `text` to `path` through a fresh private file and a rename.
fn save(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

/// Reads the cache file if it is safe to trust.
fn load(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let m = f.metadata()?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !m.file_type().is_file() || m.uid() != me || m.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(
            "not a regular file owned by this user and writable only by it",
        ));
    }
    // One bounded buffer: the cache holds at most SpaReplayEntries lines of 76 bytes.
    let mut buf = vec![0u8; (m.len() as usize).min(1 << 22)];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    buf.truncate(n);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_file_is_private_and_checked() {
        let dir = std::env::temp_dir().join(format!("latchkey-spa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("replay");
        save(&p, "x 1\n").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(load(&p).unwrap(), "x 1\n");
        // A symlink is not followed; a group-writable file is not trusted.
        let link = dir.join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(load(&link).is_err());
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o620)).unwrap();
        assert!(load(&p).is_err());
        // Writing replaces the file; a symlink at the temporary name is removed, not followed.
        std::os::unix::fs::symlink("/nonexistent", dir.join("replay.tmp")).unwrap();
        save(&p, "y 2\n").unwrap();
        assert_eq!(load(&p).unwrap(), "y 2\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
