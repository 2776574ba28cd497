//! Open doors: a grant is one door opened for one knocker, waiting for its stop command.
//!
//! Invariants: the table never holds more than its capacity (fixed at start); at most one
//! grant per (door name, knocker) when grants are extended; a grant is only recorded when
//! its door has a stop command for the knocker's address family (otherwise there is nothing
//! to run later). Doors are shared (`Rc`) so a grant survives a reload that changed them.

use crate::config::Door;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

/// One door opened for one knocker.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The door (as it was when the grant started).
    pub door: Rc<Door>,
    /// The knocker.
    pub src: IpAddr,
    /// When the stop command is due.
    pub until: Instant,
}

/// What [`Grants::open`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Run the start command (and, if recorded, the stop command at `until`).
    Start,
    /// The knocker's grant was still open; it now lasts longer and nothing runs.
    Extend,
    /// No room to remember the stop command: the door is not opened.
    Full,
}

/// The table of live grants.
pub struct Grants {
    list: Vec<Grant>,
    capacity: usize,
}

impl Grants {
    /// A table for at most `capacity` live grants.
    pub fn new(capacity: usize) -> Grants {
        Grants {
            list: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Opens `door` for `src` at `now`. With `extend`, a live grant of the same door and
    /// knocker is pushed back to `now + cmd_timeout` instead of starting again (knockd runs
    /// the start command every time, piling up firewall rules).
    pub fn open(&mut self, door: &Rc<Door>, src: IpAddr, now: Instant, extend: bool) -> Opened {
        let until = now + door.cmd_timeout;
        if extend {
            if let Some(g) = self
                .list
                .iter_mut()
                .find(|g| g.src == src && g.door.name == door.name)
            {
                g.until = g.until.max(until);
                return Opened::Extend;
            }
        }
        if door.stop_for(src).is_none() {
            return Opened::Start;
        }
        if self.list.len() >= self.capacity {
            return Opened::Full;
        }
        self.list.push(Grant {
            door: door.clone(),
            src,
            until,
        });
        Opened::Start
    }

    /// Live grants, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.list.iter()
    }

    /// Number of live grants.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no grant is live.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// When the next stop command is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|g| g.until).min()
    }

    /// Removes and hands over every grant due by `now` (all of them with `now = None`).
    pub fn take_due(&mut self, now: Option<Instant>, out: &mut dyn FnMut(Grant)) {
        let mut i = 0;
        while i < self.list.len() {
            if now.is_none_or(|t| self.list[i].until <= t) {
                out(self.list.swap_remove(i));
            } else {
                i += 1;
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
