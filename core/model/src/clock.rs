//! Time, injected: the node reads wall-clock milliseconds only through [`Clock`], so TTL and
//! replication tests can drive time by hand with [`ManualClock`].

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// A clock reading `millis`.
    pub fn new(millis: u64) -> Self {
        ManualClock {
            millis: AtomicU64::new(millis),
        }
    }

    /// Sets the time.
    pub fn set(&self, millis: u64) {
        self.millis.store(millis, Ordering::SeqCst);
    }

    /// Moves the time forward by `millis`.
    pub fn advance(&self, millis: u64) {
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.millis.load(Ordering::SeqCst)
    }
}

/// Another clock shifted by a fixed number of milliseconds: a node whose clock runs ahead
/// (positive) or behind (negative), for tests of what a group does with such a node.
#[derive(Debug)]
pub struct OffsetClock<C> {
    inner: C,
    offset_millis: i64,
}

impl<C: Clock> OffsetClock<C> {
    /// `inner` shifted by `offset_millis`.
    pub fn new(inner: C, offset_millis: i64) -> Self {
        OffsetClock {
            inner,
            offset_millis,
        }
    }
}

impl<C: Clock> Clock for OffsetClock<C> {
    fn now_millis(&self) -> u64 {
        self.inner
            .now_millis()
            .saturating_add_signed(self.offset_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_reads_its_inner_clock_shifted_without_wrapping() {
        assert_eq!(
            OffsetClock::new(ManualClock::new(1_000), 250).now_millis(),
            1_250
        );
        assert_eq!(
            OffsetClock::new(ManualClock::new(1_000), -250).now_millis(),
            750
        );
        assert_eq!(OffsetClock::new(ManualClock::new(10), -250).now_millis(), 0);
    }
}
