//! Knock attempts in progress: the per-source, per-door state machine.
//!
//! An attempt is keyed by (knocker address, door). It starts when a source hits the first
//! step of a door, advances on the next step, and ends when the sequence completes (the door
//! opens), a wrong knock arrives, or `seq_timeout` has passed since the first knock. Attempts
//! of different sources, and of different doors, never touch each other.
//!
//! Invariants:
//! - Storage is allocated once, in [`Tracker::new`]: a flood of new sources can fill the table
//!   but never grow it. Nothing on the packet path allocates.
//! - When the table is full, a new first knock evicts the oldest attempt still at stage 1;
//!   attempts past their first knock are never evicted by new ones. If every attempt is past
//!   stage 1, the new first knock is dropped instead.
//! - Expiry is on time: [`Tracker::next_deadline`] tells the daemon when to wake, and
//!   [`Tracker::expire`] ends every attempt whose window has passed.
//! - The hash index is keyed with per-process random keys, so spoofed sources cannot be chosen
//!   to collide.

use crate::config::{Door, Proto, Step};
use crate::packet::Knock;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

const NIL: u32 = u32::MAX;

/// The matching rules that differ from knockd's (each has an `[options]` switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Probes near a door's ports that could have been knocks on it count as wrong knocks
    /// (`SweepGuard`).
    pub sweep_guard: bool,
    /// Ports on each side of a sequence port that the guard watches (`SweepWindow`).
    pub sweep_window: u16,
    /// An exact repeat of the knock just accepted is ignored (`TolerateRepeats`).
    pub tolerate_repeats: bool,
}

/// What a knock or the passing of time did; the daemon logs and acts on these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `src` reached stage `stage` (1-based) of door `door`.
    Stage { door: usize, src: IpAddr, stage: u8 },
    /// `src` completed door `door`'s sequence.
    Open { door: usize, src: IpAddr },
    /// `src` sent a wrong knock at stage `stage`; the attempt is gone.
    Wrong { door: usize, src: IpAddr, stage: u8 },
    /// `src`'s window passed at stage `stage`.
    Timeout { door: usize, src: IpAddr, stage: u8 },
    /// The table was full: `src`'s stage-1 attempt was evicted for a newer one.
    Evicted { door: usize, src: IpAddr },
    /// The table was full of attempts past stage 1: `src`'s first knock was not recorded.
    Refused { door: usize, src: IpAddr },
}

#[derive(Clone, Copy)]
struct Links {
    prev: u32,
    next: u32,
}

const UNLINKED: Links = Links {
    prev: NIL,
    next: NIL,
};

#[derive(Clone, Copy)]
struct Slot {
    src: IpAddr,
    door: u16,
    /// Steps matched so far (1..len); 0 marks a free slot.
    stage: u8,
    hash: u32,
    deadline: Instant,
    /// Position in its door's list, oldest first (also deadline order: one timeout per door).
    by_door: Links,
    /// Position in the list of stage-1 attempts, oldest first; the free list reuses `next`.
    fresh: Links,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

type Sel = fn(&mut Slot) -> &mut Links;

fn by_door(s: &mut Slot) -> &mut Links {
    &mut s.by_door
}

fn fresh(s: &mut Slot) -> &mut Links {
    &mut s.fresh
}

/// The table of attempts in progress. See the module documentation for its invariants.
pub struct Tracker {
    rules: Rules,
    slots: Box<[Slot]>,
    free: u32,
    len: usize,
    /// Open addressing, linear probing: slot indexes, `NIL` where empty. Filled with `NIL`
    /// (not zero) so that every page is written, resident and counted from the start.
    index: Box<[u32]>,
    mask: usize,
    hasher: std::collections::hash_map::RandomState,
    doors: Vec<List>,
    fresh: List,
}

impl Tracker {
    /// A tracker for `doors` doors holding at most `capacity` attempts.
    pub fn new(rules: Rules, capacity: usize, doors: usize) -> Tracker {
        let capacity = capacity.clamp(1, (NIL - 1) as usize);
        let now = Instant::now();
        let blank = Slot {
            src: IpAddr::V4([0, 0, 0, 0].into()),
            door: 0,
            stage: 0,
            hash: 0,
            deadline: now,
            by_door: UNLINKED,
            fresh: UNLINKED,
        };
        let mut slots = vec![blank; capacity].into_boxed_slice();
        for (i, s) in slots.iter_mut().enumerate() {
            s.fresh.next = if i + 1 < capacity { i as u32 + 1 } else { NIL };
        }
        let size = (capacity * 2).next_power_of_two();
        Tracker {
            rules,
            slots,
            free: 0,
            len: 0,
            index: vec![NIL; size].into_boxed_slice(),
            mask: size - 1,
            hasher: Default::default(),
            doors: vec![EMPTY; doors],
            fresh: EMPTY,
        }
    }

    /// Attempts in progress.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no attempt is in progress.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// When the earliest attempt's window ends, if any attempt is in progress.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.doors
            .iter()
            .filter(|l| l.head != NIL)
            .map(|l| self.slots[l.head as usize].deadline)
            .min()
    }

    /// Ends every attempt whose window has passed by `now`.
    pub fn expire(&mut self, now: Instant, emit: &mut dyn FnMut(Event)) {
        for d in 0..self.doors.len() {
            while let Some(i) = Some(self.doors[d].head).filter(|&h| h != NIL) {
                let s = self.slots[i as usize];
                if s.deadline > now {
                    break;
                }
                emit(Event::Timeout {
                    door: d,
                    src: s.src,
                    stage: s.stage,
                });
                self.remove(i);
            }
        }
    }

    /// Feeds one candidate packet. `local` tells whether an address is one of the
    /// interface's own (for doors without `Target`).
    pub fn on_knock(
        &mut self,
        doors: &[Rc<Door>],
        local: &dyn Fn(IpAddr) -> bool,
        k: &Knock,
        now: Instant,
        emit: &mut dyn FnMut(Event),
    ) {
        let step = Step {
            proto: k.proto,
            port: k.port,
        };
        for (d, door) in doors.iter().enumerate() {
            if !door.is_live() || !aimed(door, local, k.dst) || !watches(door, &self.rules, k) {
                continue;
            }
            let seq = &door.sequence;
            let mut found = self.find(k.src, d);
            // A window that has passed is over, whether or not expire() has run yet (the
            // daemon reads a batch of packets between two calls).
            if let Some(i) = found.filter(|&i| self.slots[i as usize].deadline <= now) {
                let stage = self.slots[i as usize].stage;
                self.remove(i);
                emit(Event::Timeout {
                    door: d,
                    src: k.src,
                    stage,
                });
                found = None;
            }
            if let Some(i) = found {
                let stage = self.slots[i as usize].stage;
                if seq.get(stage as usize) == Some(&step) {
                    if stage as usize + 1 == seq.len() {
                        self.remove(i);
                        emit(Event::Open {
                            door: d,
                            src: k.src,
                        });
                        self.opened(d, door);
                    } else {
                        self.advance(i);
                        emit(Event::Stage {
                            door: d,
                            src: k.src,
                            stage: stage + 1,
                        });
                    }
                    continue;
                }
                // Checked: a stage beyond the sequence (which the door changes below rule
                // out) would end the attempt, never panic.
                let last = (stage as usize).checked_sub(1).and_then(|s| seq.get(s));
                let repeat = self.rules.tolerate_repeats && last == Some(&step);
                if repeat {
                    continue;
                }
                self.remove(i);
                emit(Event::Wrong {
                    door: d,
                    src: k.src,
                    stage,
                });
            }
            if seq.first() == Some(&step) {
                if seq.len() == 1 {
                    emit(Event::Open {
                        door: d,
                        src: k.src,
                    });
                    self.opened(d, door);
                } else if self.start(k.src, d, now + door.seq_timeout, emit) {
                    emit(Event::Stage {
                        door: d,
                        src: k.src,
                        stage: 1,
                    });
                }
            }
        }
    }

    /// A one-time door's sequence is used up once it opens: every other attempt on it ends
    /// (a source that mirrored part of the used sequence must not carry on into the next).
    fn opened(&mut self, d: usize, door: &Door) {
        if door.one_time.is_some() {
            self.end_door(d);
        }
    }

    /// Ends every attempt on door `d` (its sequence changed), without events.
    fn end_door(&mut self, d: usize) {
        while let Some(i) = self.doors.get(d).map(|l| l.head).filter(|&h| h != NIL) {
            self.remove(i);
        }
    }

    /// Takes new rules and doors after a reload. Attempts on a door whose sequence and
    /// matching rules did not change ([`Door::same_sequence`]) carry on (a logrotate SIGHUP
    /// must not break knocks in flight); every other attempt ends. The capacity stays what
    /// it was at start.
    pub fn reload(&mut self, rules: Rules, old: &[Rc<Door>], new: &[Rc<Door>]) {
        let mut next = Tracker::new(rules, self.slots.len(), new.len());
        next.hasher = self.hasher.clone();
        for (d, od) in old.iter().enumerate() {
            let Some(nd) = new.iter().position(|n| n.same_sequence(od)) else {
                continue;
            };
            let mut i = self.doors.get(d).map_or(NIL, |l| l.head);
            while i != NIL {
                let s = self.slots[i as usize];
                next.insert(s.src, nd, s.stage, s.deadline);
                i = s.by_door.next;
            }
        }
        *self = next;
    }

    fn hash(&self, src: IpAddr, door: usize) -> u32 {
        self.hasher.hash_one((src, door)) as u32
    }

    fn find(&self, src: IpAddr, door: usize) -> Option<u32> {
        let mut pos = self.hash(src, door) as usize & self.mask;
        loop {
            let e = self.index[pos];
            if e == NIL {
                return None;
            }
            let s = &self.slots[e as usize];
            if s.src == src && s.door as usize == door {
                return Some(e);
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Records a new stage-1 attempt; false if the table had no room for it.
    fn start(
        &mut self,
        src: IpAddr,
        door: usize,
        deadline: Instant,
        emit: &mut dyn FnMut(Event),
    ) -> bool {
        if self.free == NIL {
            let victim = self.fresh.head;
            if victim == NIL {
                emit(Event::Refused { door, src });
                return false;
            }
            let v = self.slots[victim as usize];
            emit(Event::Evicted {
                door: v.door as usize,
                src: v.src,
            });
            self.remove(victim);
        }
        self.insert(src, door, 1, deadline)
    }

    /// Records an attempt at `stage` in a free slot; false if there is none.
    fn insert(&mut self, src: IpAddr, door: usize, stage: u8, deadline: Instant) -> bool {
        let i = self.free;
        if i == NIL || door >= self.doors.len() {
            return false;
        }
        let hash = self.hash(src, door);
        let s = &mut self.slots[i as usize];
        self.free = s.fresh.next;
        *s = Slot {
            src,
            door: door as u16,
            stage,
            hash,
            deadline,
            by_door: UNLINKED,
            fresh: UNLINKED,
        };
        let mut pos = hash as usize & self.mask;
        while self.index[pos] != NIL {
            pos = (pos + 1) & self.mask;
        }
        self.index[pos] = i;
        let mut list = self.doors[door];
        push_back(&mut self.slots, &mut list, i, by_door);
        self.doors[door] = list;
        if stage == 1 {
            push_back(&mut self.slots, &mut self.fresh, i, fresh);
        }
        self.len += 1;
        true
    }

    fn advance(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        if s.stage == 1 {
            unlink(&mut self.slots, &mut self.fresh, i, fresh);
        }
        self.slots[i as usize].stage += 1;
    }

    fn remove(&mut self, i: u32) {
        let s = self.slots[i as usize];
        let mut list = self.doors[s.door as usize];
        unlink(&mut self.slots, &mut list, i, by_door);
        self.doors[s.door as usize] = list;
        if s.stage == 1 {
            unlink(&mut self.slots, &mut self.fresh, i, fresh);
        }
        // Backward-shift deletion keeps every probe chain unbroken without tombstones.
        let mut hole = s.hash as usize & self.mask;
        while self.index[hole] != i {
            hole = (hole + 1) & self.mask;
        }
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let e = self.index[j];
            if e == NIL {
                break;
            }
            let ideal = self.slots[e as usize].hash as usize & self.mask;
            let stays = if hole <= j {
                hole < ideal && ideal <= j
            } else {
                hole < ideal || ideal <= j
            };
            if !stays {
                self.index[hole] = e;
                hole = j;
            }
        }
        self.index[hole] = NIL;
        let slot = &mut self.slots[i as usize];
        slot.stage = 0;
        slot.fresh = Links {
            prev: NIL,
            next: self.free,
        };
        self.free = i;
        self.len -= 1;
    }
}

/// Whether `door` is aimed at destination `dst`: its `Target`, or else one of the
/// interface's own addresses (`local`).
pub fn aimed(door: &Door, local: &dyn Fn(IpAddr) -> bool, dst: IpAddr) -> bool {
    match door.target {
        Some(t) => t == dst,
        None => local(dst),
    }
}

/// Whether the tracker acts on `k` for `door` (given that it is aimed at the door): a TCP
/// packet must pass the door's `TCPFlags` (one that fails it is no knock at all), and its
/// port must be a port of the sequence of its protocol, or (with the sweep guard) within
/// `sweep_window` of one. A packet this says yes to, other than the expected next step, ends
/// the source's attempt: a sweep that could advance the door (same protocol, flags the door
/// accepts) always crosses such ports next to the door's, whatever kind of probe it uses (SYN,
/// ACK, SYN+ACK, FIN, UDP...). The kernel filter passes exactly these packets.
pub fn watches(door: &Door, rules: &Rules, k: &Knock) -> bool {
    if k.proto == Proto::Tcp && !door.flags.matches(k.flags) {
        return false;
    }
    let w = if rules.sweep_guard {
        rules.sweep_window
    } else {
        0
    };
    door.sequence
        .iter()
        .any(|s| s.proto == k.proto && s.port.abs_diff(k.port) <= w)
}

fn push_back(slots: &mut [Slot], list: &mut List, i: u32, sel: Sel) {
    *sel(&mut slots[i as usize]) = Links {
        prev: list.tail,
        next: NIL,
    };
    if list.tail == NIL {
        list.head = i;
    } else {
        sel(&mut slots[list.tail as usize]).next = i;
    }
    list.tail = i;
}

fn unlink(slots: &mut [Slot], list: &mut List, i: u32, sel: Sel) {
    let Links { prev, next } = *sel(&mut slots[i as usize]);
    if prev == NIL {
        list.head = next;
    } else {
        sel(&mut slots[prev as usize]).next = next;
    }
    if next == NIL {
        list.tail = prev;
    } else {
        sel(&mut slots[next as usize]).prev = prev;
    }
    *sel(&mut slots[i as usize]) = UNLINKED;
}

#[cfg(test)]
mod tests;
