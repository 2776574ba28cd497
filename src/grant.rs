//! Open doors: a grant is one door opened for one knocker, from its start command to the end
//! of its stop command. This module is the grant's state machine; it runs nothing itself.
//!
//! ```text
//!   open() ──▶ Starting ──start ok──▶ Open ──until passed──▶ Stopping ──stop ok──▶ (gone)
//!                 │                    ▲                        │
//!                 │ start failed       └──── stop failed, ──────┘
//!                 ▼                          retried later (a few times)
//!              (gone; a start that was killed or timed out is closed anyway: Stopping)
//! ```
//!
//! A knock on an `Open` grant whose start command sets a kernel timeout ([`Door::refreshes`])
//! sends it back to `Starting` to run that command again (a re-run: however it ends, it
//! goes back to `Open`, or on to `Stopping` if its time is up).
//!
//! Invariants:
//! - The table never holds more than its capacity (fixed at start, never grows).
//! - A grant has at most one command pending (queued or running) at a time, and its next
//!   command is only asked for once the previous one has ended: one grant's commands run in
//!   order (a stop never overtakes its own start).
//! - A grant counts as open only once its start command succeeded. A failed start leaves no
//!   grant behind, so the knocker's next attempt runs the start command again.
//! - A grant whose door has a stop command stays in the table, and in the state file, until
//!   that stop command has run successfully (or has failed [`STOP_TRIES`] times).
//! - A door without a stop command still gets a record, for its window (`seq_timeout`, at most
//!   `cmd_timeout`): while it lasts, a repeat of the same door by the same knocker runs nothing (no fork storm from
//!   a flood, one command for a retransmitted knock).
//! - Grants are identified by a number; a repeat knock finds its grant by door
//!   ([`Door::same_grant`]) and knocker, never by name alone.

use crate::config::Door;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How often a failing stop command is tried before the grant is given up (and logged).
pub const STOP_TRIES: u8 = 3;

/// Delay before a failed stop command is tried again, by the number of failures so far.
fn retry_delay(failures: u8) -> Duration {
    Duration::from_secs(5 << failures.min(4))
}

/// Where a grant is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The start command is queued or running; nothing is known to be open yet.
    Starting,
    /// The start command succeeded; the stop command is due at `until`.
    Open,
    /// The stop command is queued or running.
    Stopping,
}

/// One door opened for one knocker.
#[derive(Clone, Debug)]
pub struct Grant {
    /// Unique among the table's grants for the daemon's lifetime; commands name it.
    pub id: u32,
    /// The door (as it was when the grant started: a reload does not change its commands).
    pub door: Rc<Door>,
    /// The knocker.
    pub src: IpAddr,
    /// When the stop command is due (or, without one, when the record lapses).
    pub until: Instant,
    /// Where the grant is in its life.
    pub phase: Phase,
    /// The stop is wanted as soon as the start has ended (shutdown while starting).
    pub close_asap: bool,
    /// Stop commands that failed so far.
    pub stop_failures: u8,
    /// The start command pending runs again for a grant that was open already (see
    /// [`Opened::Refresh`]): however it ends, the grant stays open.
    pub rerun: bool,
}

impl Grant {
    /// Whether this grant has a stop command to run (else it is only a hold-down record).
    pub fn has_stop(&self) -> bool {
        self.door.stop_for(self.src).is_some()
    }
}

/// What [`Grants::open`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// A new grant: run its start command, then report with [`Grants::started`].
    Start(u32),
    /// The knocker's grant was still open; it now lasts longer and nothing runs.
    Extend,
    /// The knocker's grant was still open and its start command sets a timeout in the kernel
    /// ([`Door::refreshes`]): it now lasts longer, and its start command runs again to move
    /// that timeout along; report with [`Grants::started`] (the grant stays open either way).
    Refresh(u32),
    /// A repeat of a door that is starting, or that has no stop command and ran its start
    /// command less than its window (`seq_timeout`, at most `cmd_timeout`) ago: nothing runs.
    Repeat,
    /// No room to remember the grant: the door is not opened.
    Full,
}

/// What to do after a command of a grant ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing more to run now.
    Nothing,
    /// Run the grant's stop command now (its phase is `Stopping`).
    Stop(u32),
}

/// How a command ended, as far as the grant cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Exit status 0.
    Ok,
    /// It ran and said it failed (a non-zero exit status), or could not be started.
    Failed,
    /// It was killed (by its time limit, or by a signal): what it did is unknown.
    Killed,
}

/// The table of live grants. Storage is allocated once, in [`Grants::new`].
pub struct Grants {
    list: Vec<Grant>,
    capacity: usize,
    next_id: u32,
}

impl Grants {
    /// A table for at most `capacity` live grants.
    pub fn new(capacity: usize) -> Grants {
        Grants {
            list: Vec::with_capacity(capacity),
            capacity,
            next_id: 1,
        }
    }

    /// Opens `door` for `src` at `now`. With `extend`, a live grant of the same door and
    /// knocker is pushed back to `now + cmd_timeout` instead of starting again (knockd runs
    /// the start command every time, piling up firewall rules). A door whose start command
    /// sets a kernel timeout ([`Door::refreshes`]) is pushed back whatever `extend` says (its
    /// grants would share one element, and the first to end would close it for all), to the
    /// later end, and its start command runs again; at most once a second.
    pub fn open(&mut self, door: &Rc<Door>, src: IpAddr, now: Instant, extend: bool) -> Opened {
        let has_stop = door.stop_for(src).is_some();
        let until = now
            + if has_stop {
                door.cmd_timeout
            } else {
                // The door's window, but never longer than what the command opens for (a UCI
                // door's firewall element lapses after cmd_timeout: a new knock must refresh it).
                door.seq_timeout.min(door.cmd_timeout)
            };
        if let Some(g) = self
            .list
            .iter_mut()
            .find(|g| g.src == src && g.phase != Phase::Stopping && g.door.same_grant(door))
        {
            if g.phase == Phase::Open && door.refreshes(src) {
                if until < g.until + Duration::from_secs(1) {
                    return Opened::Repeat;
                }
                g.until = until;
                g.door = door.clone();
                g.phase = Phase::Starting;
                g.rerun = true;
                return Opened::Refresh(g.id);
            }
            if !has_stop || g.phase == Phase::Starting {
                return Opened::Repeat;
            }
            if extend {
                g.until = g.until.max(until);
                return Opened::Extend;
            }
        }
        if self.list.len() >= self.capacity && !self.evict_record() {
            return Opened::Full;
        }
        let id = self.fresh_id();
        self.list.push(Grant {
            id,
            door: door.clone(),
            src,
            until,
            phase: Phase::Starting,
            close_asap: false,
            stop_failures: 0,
            rerun: false,
        });
        Opened::Start(id)
    }

    /// Takes over a grant a previous run left open: its start has run, its stop is due at
    /// `until`. Returns its id, or `None` when the table is full.
    pub fn adopt(&mut self, door: Rc<Door>, src: IpAddr, until: Instant) -> Option<u32> {
        if self.list.len() >= self.capacity {
            return None;
        }
        let id = self.fresh_id();
        self.list.push(Grant {
            id,
            door,
            src,
            until,
            phase: Phase::Open,
            close_asap: false,
            stop_failures: 0,
            rerun: false,
        });
        Some(id)
    }

    /// Makes room by forgetting the oldest hold-down record (a door without stop command
    /// whose start has ended): it only suppresses repeats, nothing depends on it.
    fn evict_record(&mut self) -> bool {
        let oldest = (0..self.list.len())
            .filter(|&i| self.list[i].phase == Phase::Open && !self.list[i].has_stop())
            .min_by_key(|&i| self.list[i].until);
        match oldest {
            Some(i) => {
                self.list.swap_remove(i);
                true
            }
            None => false,
        }
    }

    fn fresh_id(&mut self) -> u32 {
        let id = self.next_id;
        // Ids only need to differ among live grants; 0 is never used.
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }

    fn find(&mut self, id: u32) -> Option<usize> {
        self.list.iter().position(|g| g.id == id)
    }

    /// The grant `id`, if it is live.
    pub fn get(&self, id: u32) -> Option<&Grant> {
        self.list.iter().find(|g| g.id == id)
    }

    /// The start command of grant `id` ended.
    pub fn started(&mut self, id: u32, how: Ended, now: Instant) -> Next {
        let Some(i) = self.find(id) else {
            return Next::Nothing;
        };
        let g = &mut self.list[i];
        // Run again for an open grant: whatever it did, the grant stays open until its end.
        let how = if std::mem::take(&mut g.rerun) {
            Ended::Ok
        } else {
            how
        };
        match how {
            Ended::Ok if g.close_asap || (g.has_stop() && g.until <= now) => {
                g.phase = Phase::Stopping;
                Next::Stop(id)
            }
            Ended::Ok => {
                g.phase = Phase::Open;
                Next::Nothing
            }
            // It may have opened something before it was killed: close it, to be safe.
            Ended::Killed if g.has_stop() => {
                g.phase = Phase::Stopping;
                Next::Stop(id)
            }
            Ended::Killed | Ended::Failed => {
                self.list.swap_remove(i);
                Next::Nothing
            }
        }
    }

    /// The stop command of grant `id` ended. A failed stop is tried again later, up to
    /// [`STOP_TRIES`] times; the returned flag says the grant was given up.
    pub fn stopped(&mut self, id: u32, how: Ended, now: Instant) -> bool {
        let Some(i) = self.find(id) else {
            return false;
        };
        let g = &mut self.list[i];
        if how == Ended::Ok {
            self.list.swap_remove(i);
            return false;
        }
        g.stop_failures += 1;
        if g.stop_failures >= STOP_TRIES {
            self.list.swap_remove(i);
            return true;
        }
        g.phase = Phase::Open;
        g.until = now + retry_delay(g.stop_failures);
        false
    }

    /// Live grants, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.list.iter()
    }

    /// Number of live grants (and hold-down records).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no grant is live.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// When the next stop command (or record lapse) is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.list
            .iter()
            .filter(|g| g.phase == Phase::Open)
            .map(|g| g.until)
            .min()
    }

    /// Hands over the id of every open grant whose stop is due by `now` (every open grant
    /// with `now = None`, for shutdown) and marks it `Stopping`. Lapsed records of doors
    /// without stop command are dropped. With `now = None`, grants still starting are
    /// marked to close as soon as their start ends.
    pub fn take_due(&mut self, now: Option<Instant>, out: &mut dyn FnMut(u32)) {
        let mut i = 0;
        while i < self.list.len() {
            let g = &mut self.list[i];
            if now.is_none() && g.phase == Phase::Starting {
                g.close_asap = true;
            }
            if g.phase != Phase::Open || now.is_some_and(|t| g.until > t) {
                i += 1;
                continue;
            }
            if g.has_stop() {
                g.phase = Phase::Stopping;
                out(g.id);
                i += 1;
            } else {
                self.list.swap_remove(i);
            }
        }
    }
}

/// Replaces every `%IP%` in `cmd` with the knocker's address.
pub fn expand(cmd: &str, src: IpAddr) -> String {
    cmd.replace("%IP%", &src.to_string())
}

#[cfg(test)]
mod tests;
