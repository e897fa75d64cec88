//! Applying writes made in other regions: last writer wins, per item, by [`Stamp`].
//!
//! A replicated change goes through the same write protocol as a client's ([`crate::write`]):
//! under the item's key lock, it is compared with the stored cell (tombstones included) and
//! applied only when its stamp is newer; the commit keeps the stamp it came with, records the
//! change with cause [`Cause::Replica`] (so it shows in this region's stream but is never
//! shipped back), and moves this node's clock past it.

use crate::changes::{Cause, ChangeSeq};
use crate::model::Item;
use crate::stamp::Stamp;
use crate::write::{Decision, Target};
use crate::{Result, Store};

/// True when a write stamped `incoming` wins over the cell's `current` stamp: it is newer, or
/// the cell was never written (or its tombstone is gone). Stamps order totally (clock, then
/// region), so every region picks the same winner.
pub fn remote_wins(incoming: &Stamp, current: Option<&Stamp>) -> bool {
    current.is_none_or(|current| incoming > current)
}

/// One change made in another region, as shipped to this one.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteChange {
    /// The table, by name (regions map tables by name).
    pub table_name: String,
    /// The item's key attributes.
    pub keys: Item,
    /// The item after the change, or `None` for a delete.
    pub new_image: Option<Item>,
    /// The stamp the write was made with in its region.
    pub stamp: Stamp,
}

impl Store {
    /// Applies a change from another region if it wins over what is stored here. Returns the
    /// sequence of its change record, or `None` when the stored item is newer (or the same
    /// write was applied before).
    ///
    /// # Errors
    /// ResourceNotFound for an unknown table, Validation for a key that does not fit the
    /// table's schema, storage failures.
    pub fn apply_remote(&self, change: RemoteChange) -> Result<Option<ChangeSeq>> {
        let table = self.table(&change.table_name)?;
        table.shape.check_key(&change.keys)?;
        let target = Target::new(table, change.keys, Cause::Replica(change.stamp));
        let written = self.write_one(target, |_| Ok((Decision::Write(change.new_image), ())))?;
        Ok(written.last_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::HlcTimestamp;

    fn stamp(hlc: u64, region: &str) -> Stamp {
        Stamp {
            hlc: HlcTimestamp(hlc),
            region: region.into(),
        }
    }

    #[test]
    fn newer_stamps_win_and_ties_go_to_the_greater_region() {
        assert!(remote_wins(&stamp(1, "eu"), None));
        assert!(remote_wins(&stamp(2, "eu"), Some(&stamp(1, "us"))));
        assert!(!remote_wins(&stamp(1, "us"), Some(&stamp(2, "eu"))));
        assert!(remote_wins(&stamp(2, "us"), Some(&stamp(2, "eu"))));
        assert!(!remote_wins(&stamp(2, "eu"), Some(&stamp(2, "us"))));
        assert!(!remote_wins(&stamp(2, "eu"), Some(&stamp(2, "eu"))));
    }
}
