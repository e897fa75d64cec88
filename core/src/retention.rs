//! Named retention holds: how every reader that must not miss a change keeps the log from
//! being trimmed under it. A hold is a [`HoldName`] (one kind per holder: a Kafka publisher, a
//! replica region, a restore, a point-in-time recovery window, ...) and the first sequence its
//! holder still needs; the trimmer never removes a record at or past the lowest hold, whatever
//! the history window says. A delete's tombstone goes only with its REMOVE record, so it stays
//! until every hold, every peer's included, has passed that REMOVE: a replica that has not
//! seen the delete can never bring the item back.
//!
//! Holds persist in the catalog. Setting and releasing one is durable before it returns;
//! advancing one is not synced, because losing an advance in a crash only keeps more history.
//! A hold that belongs to a table goes when the table is deleted.

use crate::changes::ChangeSeq;
pub use crate::storage::holds::{Hold, HoldName};
use crate::storage::holds::{encode_hold, hold_key};
use crate::{Result, Store, TableId};

impl Store {
    /// Sets the hold `name` at `from` (creating it, or moving it either way), durably.
    ///
    /// # Errors
    /// Storage failures.
    pub fn set_hold(
        &self,
        name: &HoldName,
        table_id: Option<TableId>,
        from: ChangeSeq,
    ) -> Result<()> {
        let hold = Hold {
            name: name.clone(),
            from,
            table_id,
        };
        let mut holds = self.storage.holds.by_name.lock();
        self.storage
            .write_catalog(&[(hold_key(name), encode_hold(&hold))], &[])?;
        holds.insert(hold.name.clone(), hold);
        Ok(())
    }

    /// Moves the hold `name` forward to `from` (never backwards). Not synced: an advance lost
    /// in a crash only keeps more history. Returns false when there is no such hold.
    ///
    /// # Errors
    /// Storage failures.
    pub fn advance_hold(&self, name: &HoldName, from: ChangeSeq) -> Result<bool> {
        let mut holds = self.storage.holds.by_name.lock();
        let Some(hold) = holds.get_mut(name) else {
            return Ok(false);
        };
        if from <= hold.from {
            return Ok(true);
        }
        let moved = Hold {
            from,
            ..hold.clone()
        };
        self.storage
            .put_catalog_buffered(hold_key(name), encode_hold(&moved))?;
        *hold = moved;
        Ok(true)
    }

    /// Releases the hold `name`, durably (nothing happens when there is none).
    ///
    /// # Errors
    /// Storage failures.
    pub fn release_hold(&self, name: &HoldName) -> Result<()> {
        let mut holds = self.storage.holds.by_name.lock();
        if holds.contains_key(name) {
            self.storage.write_catalog(&[], &[hold_key(name)])?;
            holds.remove(name);
        }
        Ok(())
    }

    /// The hold `name`, if set.
    pub fn hold(&self, name: &HoldName) -> Option<Hold> {
        self.storage.holds.by_name.lock().get(name).cloned()
    }

    /// Every hold, by name.
    pub fn holds(&self) -> Vec<Hold> {
        self.storage
            .holds
            .by_name
            .lock()
            .values()
            .cloned()
            .collect()
    }

    /// Releases every hold that belongs to table `table_id` (its deletion).
    pub(crate) fn release_table_holds(&self, table_id: TableId) -> Result<()> {
        let names: Vec<HoldName> = self
            .holds()
            .into_iter()
            .filter(|h| h.table_id == Some(table_id))
            .map(|h| h.name)
            .collect();
        for name in names {
            self.release_hold(&name)?;
        }
        Ok(())
    }
}
