//! The replay cache: keys of packets already seen, each kept until its packet could no
//! longer pass the age check anyway.
//!
//! Invariants: the capacity is fixed when the cache is made and never grows (the table is
//! allocated once); an entry is dropped only when `now > until`, i.e. once its packet is too
//! old to be accepted; a full cache whose entries are all still young refuses the new
//! packet ([`Refusal::CacheFull`]) rather than forget one. Pure: `now` is an argument,
//! and the text form ([`Cache::to_text`], [`Cache::load_text`]) is written and read by the
//! caller.

use super::Refusal;

/// One remembered packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// [`super::wire::Packet::replay_key`] of the packet.
    pub key: [u8; 32],
    /// Wall-clock unix time after which the packet would be refused as stale.
    pub until: i64,
}

/// A fixed-capacity set of replay keys.
#[derive(Clone, Debug)]
pub struct Cache {
    entries: Vec<Entry>,
    cap: usize,
}

impl Cache {
    /// An empty cache for `cap` packets (at least one).
    pub fn new(cap: usize) -> Cache {
        let cap = cap.max(1);
        Cache {
            entries: Vec::with_capacity(cap),
            cap,
        }
    }

    /// Whether `key` was seen.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.entries.iter().any(|e| &e.key == key)
    }

    /// Remembers `key` until `until`. When the table is full, entries already past their
    /// time at `now` make room; if there are none, the packet is refused.
    pub fn insert(&mut self, key: [u8; 32], until: i64, now: i64) -> Result<(), Refusal> {
        if self.contains(&key) {
            return Ok(());
        }
        if self.entries.len() >= self.cap {
            self.entries.retain(|e| e.until >= now);
        }
        if self.entries.len() >= self.cap {
            return Err(Refusal::CacheFull);
        }
        self.entries.push(Entry { key, until });
        Ok(())
    }

    /// Number of remembered packets.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The capacity fixed at creation.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// One line per entry still young at `now`: 64 hex digits, a space, `until`.
    pub fn to_text(&self, now: i64) -> String {
        let mut s = String::with_capacity(self.entries.len() * 80);
        for e in self.entries.iter().filter(|e| e.until >= now) {
            for b in e.key {
                for nibble in [b >> 4, b & 15] {
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            s.push(' ');
            s.push_str(&e.until.to_string());
            s.push('\n');
        }
        s
    }

    /// Adds the entries of a text written by [`Cache::to_text`] that are still young at
    /// `now`; malformed lines are skipped. Returns how many were taken.
    pub fn load_text(&mut self, text: &str, now: i64) -> usize {
        let mut n = 0;
        for line in text.lines() {
            let Some((hex, until)) = line.trim().split_once(' ') else {
                continue;
            };
            let (Some(key), Some(until)) = (
                unhex(hex),
                crate::config::number(until.trim()).and_then(|u| i64::try_from(u).ok()),
            ) else {
                continue;
            };
            if until >= now && self.insert(key, until, now).is_ok() {
                n += 1;
            }
        }
        n
    }
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}
