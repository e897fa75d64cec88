//! Applying writes made in other regions: last writer wins, per item, by [`Stamp`]
//! ([`Stamp::wins_over`] is the whole decision).
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
