//! What knock events do: open grants and run commands, close them, move one-time sequences
//! on, count. Kept apart from the tracker that emits the events, so both can be borrowed at
//! once in the packet loop.

use super::Settings;
use crate::config::{self, Config, Door};
use crate::grant::{expand, Grant, Grants, Opened};
use crate::logging::{KNOCK, OPEN};
use crate::runner::Runner;
use crate::tracker::{Event, Tracker};
use log::{debug, error, info};
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
}

impl Actions {
    pub(super) fn on_event(&mut self, e: Event, now: Instant) {
        match e {
            Event::Stage { door, src, stage } => {
                self.counters.knocks += 1;
                info!(target: KNOCK, "{src}: {}: Stage {stage}", self.cfg.doors[door].name);
            }
            Event::Open { door, src } => {
                self.counters.knocks += 1;
                self.counters.opens += 1;
                let d = self.cfg.doors[door].clone();
                info!(target: OPEN, "{src}: {}: OPEN SESAME", d.name);
                self.open(&d, src, now);
                if d.one_time.is_some() {
                    self.next_one_time(door);
                }
            }
            Event::Wrong { door, src, stage } => {
                debug!(
                    target: KNOCK,
                    "{src}: {}: wrong knock at stage {stage}",
                    self.cfg.doors[door].name
                );
            }
            Event::Timeout { door, src, stage } => {
                info!(
                    target: KNOCK,
                    "{src}: {}: sequence timeout (stage {stage})",
                    self.cfg.doors[door].name
                );
            }
            Event::Evicted { door, src } => {
                self.counters.evictions += 1;
                debug!(
                    target: KNOCK,
                    "{src}: {}: attempt evicted (table full)",
                    self.cfg.doors[door].name
                );
            }
            Event::Refused { door, src } => {
                self.counters.evictions += 1;
                debug!(
                    target: KNOCK,
                    "{src}: {}: first knock refused (table full)",
                    self.cfg.doors[door].name
                );
            }
        }
    }

    fn open(&mut self, d: &Rc<Door>, src: IpAddr, now: Instant) {
        match self
            .grants
            .open(d, src, now, self.cfg.options.extend_grants)
        {
            Opened::Start => {
                if let Some(cmd) = d.start_for(src) {
                    self.runner.submit(&d.name, expand(cmd, src));
                }
                self.grants_changed = true;
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
            Opened::Full => {
                self.runner.failures += 1;
                error!(target: OPEN, "{src}: {}: too many open grants; not opening", d.name);
            }
        }
    }

    pub(super) fn close(&mut self, g: Grant, why: &str) {
        info!("{}: {}: {why}", g.src, g.door.name);
        if let Some(cmd) = g.door.stop_for(g.src) {
            self.runner.submit(&g.door.name, expand(cmd, g.src));
        }
        self.grants_changed = true;
    }

    /// Marks the used one-time sequence and makes the next one live.
    fn next_one_time(&mut self, door: usize) {
        let d = &self.cfg.doors[door];
        let Some(one) = &d.one_time else {
            return;
        };
        if let Err(e) = config::mark_used(one) {
            error!(
                "{}: cannot mark one-time sequence used in {}: {e}",
                d.name,
                one.path.display()
            );
        }
        let mut next = (**d).clone();
        match config::OneTime::open(&one.path) {
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
