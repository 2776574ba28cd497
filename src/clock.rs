//! Durations as whole milliseconds in a `u64`. `Duration::as_millis` gives a `u128`, and its
//! division and formatting cost about 3 KB of code on 32-bit MIPS, where the daemon must fit
//! its flash budget; a `u64` of milliseconds lasts 584 million years.

use std::time::Duration;

/// `d` in whole milliseconds, rounded down (saturating).
pub fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// `d` in whole milliseconds, rounded up (saturating): a timeout that never wakes early.
pub fn millis_up(d: Duration) -> u64 {
    let down = millis(d);
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        down.saturating_add(1)
    } else {
        down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_as_documented() {
        assert_eq!(millis(Duration::from_micros(1999)), 1);
        assert_eq!(millis_up(Duration::from_micros(1999)), 2);
        assert_eq!(millis_up(Duration::from_millis(7)), 7);
        assert_eq!(millis_up(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
