//! What knock events do: open grants and run commands, close them, move one-time sequences
//! on, count. Kept apart from the tracker that emits the events, so both can be borrowed at
//! once in the packet loop.

use super::Settings;
use crate::config::{self, Config, Door};
use crate::grant::{expand, Ended, Grants, Next, Opened, STOP_TRIES};
use crate::logging::{KNOCK, OPEN};
use crate::runner::{Done, Job, Kind, Outcome, Runner};
use crate::tracker::{Event, Tracker};
use log::{debug, error, info, warn};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

/// Counters, logged on SIGUSR1 and at exit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Packets the filter let through.
    pub packets: u64,
    /// Knocks that advanced or completed a sequence.
    pub knocks: u64,
    /// Sequences completed.
    pub opens: u64,
    /// Packets dropped because their headers were cut short or inconsistent.
    pub malformed: u64,
    /// Stage-1 attempts evicted, or first knocks refused, because the table was full.
    pub evictions: u64,
    /// Packets the kernel dropped before we could read them (a flood outran us).
    pub kernel_drops: u64,
}

/// Everything the knock events act on (kept apart from the tracker that emits them).
pub(super) struct Actions {
    pub(super) cfg: Config,
    pub(super) settings: Settings,
    pub(super) grants: Grants,
    pub(super) runner: Runner,
    pub(super) counters: Counters,
    /// Doors whose one-time sequence moved on: the filter must be rebuilt.
    pub(super) doors_changed: bool,
    /// The grants changed: the state file must be rewritten.
    pub(super) grants_changed: bool,
    /// Shutting down past the grace period: no new command starts.
    pub(super) exiting: bool,
    /// One-time lines used but not marked in their file (the write failed): never live
    /// again, whatever the file says (path, byte offset of the line).
    pub(super) burned: Vec<(std::path::PathBuf, u64)>,
}

impl Actions {
    pub(super) fn on_event(&mut self, e: Event, now: Instant) {
        match e {
            Event::Stage { door, src, stage } => {
                self.counters.knocks += 1;
                info!(target: KNOCK, "{src}: {}: Stage {stage}", self.name(door));
            }
            Event::Open { door, src } => {
                self.counters.knocks += 1;
                self.counters.opens += 1;
                let Some(d) = self.cfg.doors.get(door).cloned() else {
                    return;
                };
                info!(target: OPEN, "{src}: {}: OPEN SESAME", d.name);
                self.open(&d, src, now);
                if d.one_time.is_some() {
                    self.next_one_time(door);
                }
            }
            Event::Wrong { door, src, stage } => {
                debug!(target: KNOCK, "{src}: {}: wrong knock at stage {stage}", self.name(door));
            }
            Event::Timeout { door, src, stage } => {
                info!(
                    target: KNOCK,
                    "{src}: {}: sequence timeout (stage {stage})",
                    self.name(door)
                );
            }
            Event::Evicted { door, src } => {
                self.counters.evictions += 1;
                debug!(target: KNOCK, "{src}: {}: attempt evicted (table full)", self.name(door));
            }
            Event::Refused { door, src } => {
                self.counters.evictions += 1;
                debug!(
                    target: KNOCK,
                    "{src}: {}: first knock refused (table full)",
                    self.name(door)
                );
            }
        }
    }

    pub(super) fn open(&mut self, d: &Rc<Door>, src: IpAddr, now: Instant) {
        let opened = self
            .grants
            .open(d, src, now, self.cfg.options.extend_grants);
        match opened {
            Opened::Start(id) | Opened::Refresh(id) => {
                if matches!(opened, Opened::Refresh(_)) {
                    info!(
                        target: KNOCK,
                        "{src}: {}: already open, extended by {} s; running its start command \
                         again (it renews the firewall's timeout)",
                        d.name,
                        d.cmd_timeout.as_secs()
                    );
                }
                // Only grants with a stop command are written down (the state file).
                self.grants_changed |= d.stop_for(src).is_some();
                match d.start_for(src) {
                    Some(cmd) => self.run(id, Kind::Start, &d.name, expand(cmd, src), now),
                    // Nothing to run: the door counts as opened (its stop will still run).
                    None => self.settle(
                        Done {
                            grant: id,
                            kind: Kind::Start,
                            outcome: Outcome::Exited(0),
                        },
                        now,
                    ),
                }
            }
            Opened::Extend => {
                info!(
                    target: KNOCK,
                    "{src}: {}: already open, extended by {} s",
                    d.name,
                    d.cmd_timeout.as_secs()
                );
                self.grants_changed = true;
            }
            Opened::Repeat => {
                info!(
                    target: KNOCK,
                    "{src}: {}: already open or opening, for as long as asked; nothing to run",
                    d.name
                );
            }
            Opened::Full => {
                self.runner.failures += 1;
                error!(target: OPEN, "{src}: {}: too many open grants; not opening", d.name);
            }
        }
    }

    /// Runs a grant's command, and settles it at once if it cannot even start.
    fn run(&mut self, grant: u32, kind: Kind, door: &str, cmd: String, now: Instant) {
        let job = Job {
            grant,
            kind,
            door: door.into(),
            cmd,
        };
        let mut failed = None;
        self.runner.submit(job, &mut |d| failed = Some(d));
        if let Some(d) = failed {
            self.settle(d, now);
        }
    }

    /// Reaps finished commands and moves their grants on.
    pub(super) fn reap(&mut self, now: Instant) {
        let mut ended = Vec::new();
        self.runner.reap(&mut |d| ended.push(d));
        for d in ended {
            self.settle(d, now);
        }
    }

    /// A grant's command ended: open the grant, close it, retry a stop, or forget it.
    pub(super) fn settle(&mut self, d: Done, now: Instant) {
        let Some(g) = self.grants.get(d.grant) else {
            return;
        };
        self.grants_changed |= g.has_stop();
        let (src, name, rerun) = (g.src, g.door.name.clone(), g.rerun);
        let how = match d.outcome {
            Outcome::Exited(0) => Ended::Ok,
            Outcome::Exited(_) | Outcome::NotStarted => Ended::Failed,
            Outcome::Signalled(_) | Outcome::TimedOut => Ended::Killed,
        };
        match d.kind {
            Kind::Start => {
                if how != Ended::Ok && rerun {
                    warn!("{src}: {name}: start command failed when run again; the grant stays open until its end, but the firewall may close it at its old timeout");
                } else if how != Ended::Ok {
                    warn!("{src}: {name}: start command failed; the door is not open (the next knock tries again)");
                }
                if let Next::Stop(id) = self.grants.started(d.grant, how, now) {
                    self.stop(id, now);
                }
            }
            Kind::Stop => {
                if self.grants.stopped(d.grant, how, now) {
                    error!("{src}: {name}: stop command failed {STOP_TRIES} times; giving up, the door may still be open");
                } else if how != Ended::Ok {
                    warn!("{src}: {name}: stop command failed; trying again later");
                }
            }
        }
    }

    /// Runs the stop command of grant `id` (already marked `Stopping`). At exit, after the
    /// grace period, nothing new is started: the state file keeps the grant for the next run.
    pub(super) fn stop(&mut self, id: u32, now: Instant) {
        if self.exiting {
            return;
        }
        let Some(g) = self.grants.get(id) else {
            return;
        };
        let Some(cmd) = g.door.stop_for(g.src) else {
            return;
        };
        let (cmd, name) = (expand(cmd, g.src), g.door.name.clone());
        self.run(id, Kind::Stop, &name, cmd, now);
    }

    /// Closes every grant whose time is up at `now`.
    pub(super) fn close_due(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.grants.take_due(Some(now), &mut |id| due.push(id));
        for id in due {
            if let Some(g) = self.grants.get(id) {
                info!("{}: {}: command timeout", g.src, g.door.name);
            }
            self.stop(id, now);
        }
    }

    /// Door `door`'s name (the tracker only hands out indexes of the doors it was given).
    fn name(&self, door: usize) -> &str {
        self.cfg.doors.get(door).map_or("?", |d| d.name.as_str())
    }

    /// Marks the used one-time sequence and makes the next one live. If marking fails the
    /// used line is refused all the same (kept in `burned`), and the error is logged.
    fn next_one_time(&mut self, door: usize) {
        let Some(d) = self.cfg.doors.get(door) else {
            return;
        };
        let Some(one) = &d.one_time else {
            return;
        };
        if let (Some(at), Err(e)) = (one.offset, config::mark_used(one)) {
            error!(
                "{}: cannot mark one-time sequence used in {} (line {}): {e}; \
                 it is refused all the same",
                d.name,
                one.path.display(),
                one.line
            );
            self.burned.push((one.path.clone(), at));
        }
        self.refresh_one_time(door);
    }

    /// Re-reads door `door`'s one-time file and makes its first unused line live.
    fn refresh_one_time(&mut self, door: usize) {
        let Some(d) = self.cfg.doors.get(door) else {
            return;
        };
        let Some(one) = &d.one_time else {
            return;
        };
        let used: Vec<u64> = self
            .burned
            .iter()
            .filter(|(p, _)| same_file(p, &one.path))
            .map(|&(_, at)| at)
            .collect();
        let mut next = (**d).clone();
        match config::OneTime::open_skipping(&one.path, &used) {
            Ok((one, seq)) => {
                if seq.is_empty() {
                    info!(
                        "{}: no one-time sequences left; door closed for good",
                        d.name
                    );
                }
                next.sequence = seq;
                next.one_time = Some(one);
            }
            Err(errors) => {
                for e in errors {
                    error!("{e}");
                }
                next.sequence = config::Sequence::new();
            }
        }
        let mut doors = self.cfg.doors.to_vec();
        doors[door] = Rc::new(next);
        self.cfg.doors = doors.into();
        self.doors_changed = true;
    }

    /// After a reload: a line whose marking failed earlier stays used.
    pub(super) fn reapply_burned(&mut self) {
        for i in 0..self.cfg.doors.len() {
            let d = &self.cfg.doors[i];
            let burned = d.one_time.as_ref().is_some_and(|one| {
                one.offset.is_some_and(|at| {
                    self.burned
                        .iter()
                        .any(|(p, a)| *a == at && same_file(p, &one.path))
                })
            });
            if burned {
                self.refresh_one_time(i);
            }
        }
    }

    pub(super) fn log_counters(&self, t: &Tracker) {
        let c = &self.counters;
        let o = &self.cfg.options;
        info!(
            "counters: packets {}, knocks {}, opens {}, malformed {}, evictions {}, \
             command failures {}, kernel drops {}, attempts {}/{}, grants {}/{}",
            c.packets,
            c.knocks,
            c.opens,
            c.malformed,
            c.evictions,
            self.runner.failures,
            c.kernel_drops,
            t.len(),
            o.max_attempts,
            self.grants.len(),
            o.max_grants
        );
    }
}

/// Whether two one-time file paths, both taken from the config text, name the same file: a
/// byte comparison (`Path`'s component-wise `==` costs 700 B on mips for nothing here).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    a.as_os_str() == b.as_os_str()
}
