//! Last-writer-wins stamps: a hybrid logical clock reading plus the region that made the write.
//!
//! Stamps order every write of every region totally: first by clock, then by region name, so
//! two regions that resolve the same conflict always pick the same winner.

use std::cmp::Ordering;
use std::fmt;

/// Bits of an HLC reading that hold the logical counter; the rest hold physical milliseconds.
const LOGICAL_BITS: u32 = 16;

/// A hybrid logical clock reading: physical milliseconds in the high 48 bits, a logical counter
/// in the low 16, so readings compare as plain integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HlcTimestamp(pub u64);

impl HlcTimestamp {
    /// The physical part, in milliseconds since the Unix epoch.
    pub fn physical_millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u16 {
        (self.0 & ((1 << LOGICAL_BITS) - 1)) as u16
    }
}

/// The stamp of one write: when (HLC) and where (origin region).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Hybrid logical clock reading at the write.
    pub hlc: HlcTimestamp,
    /// Region whose node accepted the write (the change's origin).
    pub region: String,
}

impl Stamp {
    /// True when a write stamped `self` wins over a cell stamped `current` (last writer
    /// wins): it is newer, or the cell was never written (or its tombstone is gone). Stamps
    /// order totally (clock, then region), so every region picks the same winner.
    pub fn wins_over(&self, current: Option<&Stamp>) -> bool {
        current.is_none_or(|current| self > current)
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.hlc
            .cmp(&other.hlc)
            .then_with(|| self.region.cmp(&other.region))
    }
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}@{}",
            self.hlc.physical_millis(),
            self.hlc.logical(),
            self.region
        )
    }
}

/// The largest wall-clock reading a stamp can hold, in milliseconds since the Unix epoch
/// (2^48 − 1: in the year 10889).
pub const MAX_PHYSICAL_MILLIS: u64 = u64::MAX >> LOGICAL_BITS;

/// Why the hybrid clock cannot give another reading; the write that asked for one is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The wall clock reads past the largest time a stamp can hold.
    #[error(
        "the wall clock reads {now_millis} ms since the epoch, past the largest time a stamp can hold ({MAX_PHYSICAL_MILLIS} ms)"
    )]
    WallClockOutOfRange {
        /// The wall clock's reading.
        now_millis: u64,
    },
    /// The clock's last reading (observed from a stamp) is the largest there is.
    #[error(
        "the hybrid clock is at the top of its range ({physical_millis} ms since the epoch): no stamp after it exists"
    )]
    Exhausted {
        /// The physical part of the last reading.
        physical_millis: u64,
    },
}

/// The node's hybrid logical clock: never goes backwards, even when the wall clock does.
#[derive(Debug, Default, Clone, Copy)]
pub struct HybridClock {
    last: HlcTimestamp,
}

impl HybridClock {
    /// A clock that will never issue a reading at or below `last`.
    pub fn starting_after(last: HlcTimestamp) -> Self {
        HybridClock { last }
    }

    /// The next reading, given the wall clock's `now_millis`; the clock is unchanged when
    /// there is none.
    ///
    /// # Errors
    /// The wall clock is past [`MAX_PHYSICAL_MILLIS`], or the last reading is the largest.
    pub fn tick(&mut self, now_millis: u64) -> Result<HlcTimestamp, ClockError> {
        if now_millis > MAX_PHYSICAL_MILLIS {
            return Err(ClockError::WallClockOutOfRange { now_millis });
        }
        let physical = HlcTimestamp(now_millis << LOGICAL_BITS);
        self.last = if physical > self.last {
            physical
        } else {
            let next = self.last.0.checked_add(1).ok_or(ClockError::Exhausted {
                physical_millis: self.last.physical_millis(),
            })?;
            HlcTimestamp(next)
        };
        Ok(self.last)
    }

    /// The next reading after observing `seen` (a replicated write's stamp), given the wall
    /// clock's `now_millis`; when there is none, the clock neither observes nor ticks, so a
    /// stamp at the top of the range refuses only the write that brought it.
    ///
    /// # Errors
    /// As [`HybridClock::tick`], after the observation.
    pub fn tick_observing(
        &mut self,
        seen: Option<HlcTimestamp>,
        now_millis: u64,
    ) -> Result<HlcTimestamp, ClockError> {
        let mut next = *self;
        if let Some(seen) = seen {
            next.observe(seen);
        }
        let reading = next.tick(now_millis)?;
        *self = next;
        Ok(reading)
    }

    /// Moves the clock past a reading seen from another region, so later local writes win
    /// over writes they have observed.
    pub fn observe(&mut self, seen: HlcTimestamp) {
        if seen > self.last {
            self.last = seen;
        }
    }

    /// The last reading issued or observed.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let mut clock = HybridClock::default();
        let a = clock.tick(1000).unwrap();
        let b = clock.tick(999).unwrap();
        let c = clock.tick(1000).unwrap();
        assert!(a < b && b < c);
        assert_eq!(a.physical_millis(), 1000);
        assert_eq!(b.logical(), 1);
        clock.observe(HlcTimestamp(5000 << 16));
        assert!(clock.tick(1001).unwrap().physical_millis() == 5000);
    }

    #[test]
    fn the_top_of_the_range_refuses_instead_of_wrapping() {
        let mut clock = HybridClock::default();
        let top = clock.tick(MAX_PHYSICAL_MILLIS).unwrap();
        assert_eq!(top.physical_millis(), MAX_PHYSICAL_MILLIS);
        assert_eq!(
            clock.tick(MAX_PHYSICAL_MILLIS + 1),
            Err(ClockError::WallClockOutOfRange {
                now_millis: MAX_PHYSICAL_MILLIS + 1
            })
        );
        assert_eq!(
            clock.last(),
            top,
            "a refused tick leaves the clock as it was"
        );

        clock.observe(HlcTimestamp(u64::MAX - 1));
        assert_eq!(clock.tick(1000), Ok(HlcTimestamp(u64::MAX)));
        assert_eq!(
            clock.tick(1000),
            Err(ClockError::Exhausted {
                physical_millis: MAX_PHYSICAL_MILLIS
            })
        );
        assert_eq!(clock.last(), HlcTimestamp(u64::MAX));
    }

    #[test]
    fn a_stamp_at_the_top_is_neither_observed_nor_ticked_past() {
        let mut clock = HybridClock::default();
        let before = clock.tick(1000).unwrap();
        assert!(
            clock
                .tick_observing(Some(HlcTimestamp(u64::MAX)), 1000)
                .is_err()
        );
        assert_eq!(clock.last(), before, "the refused stamp was not observed");
        let after = clock
            .tick_observing(Some(HlcTimestamp(7000 << 16)), 1000)
            .unwrap();
        assert_eq!(after, HlcTimestamp((7000 << 16) + 1));
    }

    fn stamp(hlc: u64, region: &str) -> Stamp {
        Stamp {
            hlc: HlcTimestamp(hlc),
            region: region.into(),
        }
    }

    #[test]
    fn newer_stamps_win_and_ties_go_to_the_greater_region() {
        assert!(stamp(1, "eu").wins_over(None));
        assert!(stamp(2, "eu").wins_over(Some(&stamp(1, "us"))));
        assert!(!stamp(1, "us").wins_over(Some(&stamp(2, "eu"))));
        assert!(stamp(2, "us").wins_over(Some(&stamp(2, "eu"))));
        assert!(!stamp(2, "eu").wins_over(Some(&stamp(2, "us"))));
        assert!(!stamp(2, "eu").wins_over(Some(&stamp(2, "eu"))));
    }

    #[test]
    fn ties_break_on_region() {
        let a = Stamp {
            hlc: HlcTimestamp(7),
            region: "eu-west-1".into(),
        };
        let b = Stamp {
            hlc: HlcTimestamp(7),
            region: "us-east-1".into(),
        };
        assert!(a < b);
    }
}
