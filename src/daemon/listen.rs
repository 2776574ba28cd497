//! The interfaces the daemon watches: per interface, the capture bound to it while it exists,
//! its addresses, and its filter; plus the batch buffers shared by all of them and the
//! pacing of reads under a flood.
//!
//! Invariants:
//! - Each interface follows its own lifecycle: one that is missing, down or failing never
//!   stops the others.
//! - A capture's filter always matches the interface's current addresses and the current
//!   doors: both are re-read on every netlink notification and the filter replaced (atomically,
//!   see [`Capture::set_filter`]) before the next packet is read.
//! - A failure that waiting can fix is retried with a growing pause (never a busy loop); one
//!   it cannot fix (no privilege, no packet sockets) is returned as [`Fatal`].

use crate::capture::{filter, Batch, Capture};
use crate::config::Door;
use crate::iface::{self, Addrs};
use crate::tracker::Rules;
use log::{error, info, warn};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A failure that waiting will not fix: the daemon must exit non-zero with this message.
#[derive(Debug)]
pub(super) struct Fatal(pub String);

/// First pause before retrying a capture that failed, doubled after each failure.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest pause between retries.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Under a flood, packets are left to gather for this long between two reads.
const NAP: Duration = Duration::from_millis(1);
/// Two reads closer than this count as a busy line...
const QUICK: Duration = Duration::from_micros(100);
/// ...and this many in a row as a flood (a knock sequence sent back to back is far shorter).
const QUICK_ROUNDS: u32 = 32;
/// In a flood, a nap that gathered fewer packets than this ends it.
const FLOOD_MIN: usize = 8;

/// One watched interface.
pub(super) struct Listener {
    /// Its name, as given (`-i`, `Interface`).
    pub(super) name: String,
    capture: Option<Capture>,
    /// Its addresses, as last read (empty while it does not exist).
    pub(super) addrs: Addrs,
    prog: Vec<filter::Insn>,
    /// When to try again after a failure, and the pause after that.
    retry: Option<(Instant, Duration)>,
    /// Whether "waiting for it" was said since it was last seen.
    missing_logged: bool,
}

/// The doors' side of every filter: what [`Interfaces::refresh`] builds programs from.
pub(super) struct Doors<'a> {
    pub(super) doors: &'a [Rc<Door>],
    pub(super) rules: Rules,
    pub(super) ipv6: bool,
    /// UDP ports of the SPA doors (sorted), aimed at the interface's own addresses.
    pub(super) spa: &'a [u16],
}

/// Every watched interface, the shared batch buffers, and the flood pacing.
pub(super) struct Interfaces {
    pub(super) list: Vec<Listener>,
    batch: Batch,
    last_read: Option<Instant>,
    quick: u32,
    flood: bool,
}

impl Interfaces {
    /// Interfaces named `names`, none bound yet.
    pub(super) fn new(names: &[String]) -> Interfaces {
        Interfaces {
            list: names.iter().map(|n| Listener::new(n)).collect(),
            batch: Batch::default(),
            last_read: None,
            quick: 0,
            flood: false,
        }
    }

    /// Replaces the list of interfaces (a reload named others); those kept keep their capture.
    pub(super) fn rename(&mut self, names: &[String]) {
        let mut old = std::mem::take(&mut self.list);
        for n in names {
            match old.iter().position(|l| &l.name == n) {
                Some(i) => self.list.push(old.swap_remove(i)),
                None => self.list.push(Listener::new(n)),
            }
        }
        for l in old {
            if l.capture.is_some() {
                info!("no longer listening on {}", l.name);
            }
        }
    }

    /// The names, for messages.
    pub(super) fn names(&self) -> String {
        let v: Vec<&str> = self.list.iter().map(|l| l.name.as_str()).collect();
        v.join(", ")
    }

    /// Binds, re-binds or releases every interface as it is now, re-reading its addresses
    /// and replacing its filter if anything changed. `force` retries failed ones at once.
    pub(super) fn refresh(&mut self, d: &Doors, now: Instant, force: bool) -> Result<(), Fatal> {
        for l in &mut self.list {
            if force || l.retry.is_none_or(|(at, _)| at <= now) {
                l.refresh(d, now)?;
            }
        }
        Ok(())
    }

    /// When the earliest failed interface is to be tried again.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.list.iter().filter_map(|l| l.retry.map(|r| r.0)).min()
    }

    /// The capture descriptors to poll (-1 for none), in list order; none while napping.
    pub(super) fn poll_fds(&self, out: &mut Vec<libc::pollfd>) {
        for l in &self.list {
            let fd = match &l.capture {
                Some(c) if !self.flood => c.raw_fd(),
                _ => -1,
            };
            out.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
    }

    /// While a flood is on, until when to leave packets gathering in the socket queues.
    pub(super) fn nap_until(&self) -> Option<Instant> {
        if self.flood {
            self.last_read.map(|t| t + NAP)
        } else {
            None
        }
    }

    /// Whether the interfaces should be read now without waiting for poll (the nap is over).
    pub(super) fn nap_over(&self, now: Instant) -> bool {
        self.nap_until().is_some_and(|t| t <= now)
    }

    /// Records a read round that found `n` packets at `now`: a long run of rounds close
    /// together starts a flood (reads paced by [`NAP`]); a nap that gathers little ends it.
    /// A quiet line is never paced: each packet is read the moment it arrives.
    pub(super) fn note_round(&mut self, n: usize, now: Instant) {
        if self.flood {
            if n < FLOOD_MIN {
                self.flood = false;
                self.quick = 0;
            }
        } else if n > 0 {
            let close = self
                .last_read
                .is_some_and(|t| now.duration_since(t) < QUICK);
            self.quick = if close { self.quick + 1 } else { 0 };
            self.flood = self.quick >= QUICK_ROUNDS;
        }
        self.last_read = Some(now);
    }

    /// Reads the next batch from interface `i` into the shared buffers; the packets are then
    /// [`Interfaces::packet`]. 0 when nothing is waiting. A failed read releases the capture
    /// (and schedules a retry) unless the link is merely down.
    pub(super) fn recv(&mut self, i: usize, now: Instant) -> usize {
        let Some(l) = self.list.get_mut(i) else {
            return 0;
        };
        let Some(cap) = &l.capture else { return 0 };
        match cap.recv_batch(&mut self.batch) {
            Ok(n) => n,
            Err(e) => {
                // ENETDOWN once after the link went down: the socket stays bound and works
                // again when the link is up. Anything else: start over with a fresh socket.
                warn!("capture on {}: {e}", l.name);
                if e.raw_os_error() != Some(libc::ENETDOWN) {
                    l.capture = None;
                    l.prog.clear();
                    l.retry = Some((now, RETRY_FIRST));
                }
                0
            }
        }
    }

    /// Packet `j` of the last batch: ethertype, packet type and bytes.
    pub(super) fn packet(&self, j: usize) -> Option<(crate::capture::Frame, &[u8])> {
        self.batch.get(j)
    }

    /// Packets the kernel dropped on every capture since the last call.
    pub(super) fn drops(&self) -> u64 {
        self.list
            .iter()
            .filter_map(|l| l.capture.as_ref())
            .map(Capture::drops)
            .sum()
    }
}

impl Listener {
    fn new(name: &str) -> Listener {
        Listener {
            name: name.to_string(),
            capture: None,
            addrs: Addrs::new(),
            prog: Vec::new(),
            retry: None,
            missing_logged: false,
        }
    }

    fn refresh(&mut self, d: &Doors, now: Instant) -> Result<(), Fatal> {
        let Some(index) = iface::index(&self.name) else {
            if self.capture.take().is_some() {
                warn!(
                    "interface {} is gone; waiting for it to come back",
                    self.name
                );
                self.missing_logged = true;
            } else if !self.missing_logged {
                warn!("interface {} does not exist yet; waiting for it", self.name);
                self.missing_logged = true;
            }
            self.addrs.clear();
            self.prog.clear();
            self.retry = None; // netlink says when it appears
            return Ok(());
        };
        self.missing_logged = false;
        match iface::addresses(index) {
            Ok(a) => self.addrs = a,
            Err(e) => {
                warn!("cannot read the addresses of {}: {e}", self.name);
                self.fail(now);
                return Ok(());
            }
        }
        let mut spec = filter::spec(d.doors, &d.rules, &self.addrs, d.ipv6);
        filter::add_spa(&mut spec, d.spa, &self.addrs, d.ipv6);
        let prog = filter::program(&spec, d.ipv6);
        if let Some(c) = self.capture.as_ref().filter(|c| c.ifindex == index) {
            if prog != self.prog {
                if let Err(e) = c.set_filter(&prog) {
                    // The old program stays attached; try again shortly.
                    error!("cannot update the capture filter on {}: {e}", self.name);
                    self.fail(now);
                    return Ok(());
                }
                self.prog = prog;
            }
            self.retry = None;
            return Ok(());
        }
        match Capture::open(index, &prog) {
            Ok(c) => {
                info!("listening on {} (index {index})", self.name);
                log::debug!("filter on {}: {} instructions", self.name, prog.len());
                self.capture = Some(c);
                self.prog = prog;
                self.retry = None;
                Ok(())
            }
            Err(e) if e.permanent.is_some() => {
                Err(Fatal(format!("cannot capture on {}: {e}", self.name)))
            }
            Err(e) => {
                error!("cannot capture on {}: {e}; trying again", self.name);
                self.capture = None;
                self.fail(now);
                Ok(())
            }
        }
    }

    /// Schedules the next try, each pause twice the last (up to [`RETRY_MAX`]).
    fn fail(&mut self, now: Instant) {
        let pause = self
            .retry
            .map_or(RETRY_FIRST, |(_, p)| (p * 2).min(RETRY_MAX));
        self.retry = Some((now + pause, pause));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sustained_flood_paces_the_reads() {
        let mut f = Interfaces::new(&["eth0".to_string()]);
        let t0 = Instant::now();
        // A knock sequence sent back to back: a few reads close together, never a nap.
        for i in 0..3 {
            f.note_round(1, t0 + Duration::from_micros(20 * i));
        }
        assert!(f.nap_until().is_none());
        // One packet every 10 µs (100,000/s), each read at once: a flood once 32 reads in a
        // row came less than 100 µs after the one before.
        let mut t = t0 + Duration::from_millis(10);
        for _ in 0..=QUICK_ROUNDS {
            assert!(f.nap_until().is_none());
            f.note_round(1, t);
            t += Duration::from_micros(10);
        }
        let nap = f.nap_until().expect("pacing under a flood");
        assert!(nap > t - Duration::from_micros(10) && !f.nap_over(nap - Duration::from_micros(1)));
        assert!(f.nap_over(nap));
        // While it lasts, each nap gathers many packets; one that gathers few ends it.
        f.note_round(100, nap);
        assert!(f.nap_until().is_some());
        f.note_round(FLOOD_MIN - 1, nap + NAP);
        assert!(f.nap_until().is_none());
        // Reads far apart never start one.
        for i in 0..100 {
            f.note_round(1, t + Duration::from_millis(i));
        }
        assert!(f.nap_until().is_none());
    }

    #[test]
    fn a_failing_interface_backs_off() {
        let mut l = Listener::new("eth0");
        let t0 = Instant::now();
        let mut pauses = Vec::new();
        for _ in 0..9 {
            l.fail(t0);
            pauses.push(l.retry.unwrap().1.as_secs());
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
