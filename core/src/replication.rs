//! Applying writes made in other regions: last writer wins, per item, by [`Stamp`]
//! ([`Stamp::wins_over`] is the whole decision).
//!
//! A replicated change goes through the same write protocol as a client's ([`crate::write`]):
//! under the item's key lock, it is compared with the stored cell (tombstones included) and
//! applied only when its stamp is newer; the commit keeps the stamp it came with, records the
//! change with cause [`Cause::Replica`] (so it shows in this region's stream but is never
//! shipped back), and moves this node's clock past it.

use std::collections::HashSet;
use std::sync::Arc;

use crate::changes::{Cause, ChangeSeq};
use crate::model::Item;
use crate::stamp::Stamp;
use crate::storage::catalog::TableEntry;
use crate::storage::codec;
use crate::storage::keys::{KeyRange, decode_item_key, table_prefix};
use crate::write::{Decision, Target};
use crate::{Error, Result, Store};

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

    /// Applies a batch of changes from another region, in order, each by last writer wins,
    /// and says what became of each. Changes to distinct items commit together (one batch per
    /// run of distinct keys), so a batch costs a few commits, not one per change.
    ///
    /// Nothing is applied for a change whose table does not exist here (it is reported
    /// [`Applied::NoTable`]): its table was deleted in this region, and a deleted replica
    /// takes no writes.
    ///
    /// # Errors
    /// Validation for a key that does not fit the table's schema; storage failures (the
    /// changes before the failing run are applied, the rest are not).
    pub fn apply_remote_batch(&self, changes: Vec<RemoteChange>) -> Result<Vec<Applied>> {
        let mut outcomes = Vec::with_capacity(changes.len());
        let mut run: Vec<(Target, Option<Item>, Stamp)> = Vec::new();
        let mut run_keys: HashSet<Vec<u8>> = HashSet::new();
        for change in changes {
            let Some(table) = self.storage.table(&change.table_name) else {
                self.apply_run(std::mem::take(&mut run), &mut outcomes)?;
                run_keys.clear();
                outcomes.push(Applied::NoTable);
                continue;
            };
            table.shape.check_key(&change.keys)?;
            let target = Target::new(table, change.keys, Cause::Replica(change.stamp.clone()));
            if !run_keys.insert(target.key_bytes.clone()) {
                self.apply_run(std::mem::take(&mut run), &mut outcomes)?;
                run_keys.clear();
                run_keys.insert(target.key_bytes.clone());
            }
            run.push((target, change.new_image, change.stamp));
        }
        self.apply_run(run, &mut outcomes)?;
        Ok(outcomes)
    }

    /// Commits one run of changes to distinct items as one write.
    fn apply_run(
        &self,
        run: Vec<(Target, Option<Item>, Stamp)>,
        outcomes: &mut Vec<Applied>,
    ) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        let mut targets = Vec::with_capacity(run.len());
        let mut writes = Vec::with_capacity(run.len());
        for (target, new, stamp) in run {
            targets.push(target);
            writes.push((new, stamp));
        }
        let written = self.write(targets, move |_, cells| {
            let mut decisions = Vec::with_capacity(writes.len());
            let mut applied = Vec::with_capacity(writes.len());
            for ((new, stamp), cell) in writes.into_iter().zip(cells) {
                applied.push(Applied::judge(&stamp, cell.stamp.as_ref()));
                decisions.push(Decision::Write(new));
            }
            Ok((decisions, applied))
        })?;
        outcomes.extend(written.value);
        Ok(())
    }

    /// A consistent snapshot of a table's cells, tombstones included, to seed a new replica
    /// with while writes go on.
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn snapshot_table(&self, table_name: &str) -> Result<TableSnapshot> {
        let table = self.table(table_name)?;
        Ok(TableSnapshot {
            snapshot: self.storage.snapshot(),
            table,
        })
    }

    /// The next page of at most `limit` cells of `snapshot` after the storage key `after`
    /// (from the start when `None`), as changes a replica applies; and the key to resume
    /// after, `None` once the table is done.
    ///
    /// # Errors
    /// Storage failures or a corrupt cell.
    pub fn snapshot_page(
        &self,
        snapshot: &TableSnapshot,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<SnapshotPage> {
        use fjall::Readable;
        let mut range = KeyRange::prefix(&table_prefix(snapshot.table.id));
        if let Some(after) = after {
            range.resume_after(after, true);
        }
        let mut changes = Vec::new();
        let mut last = None;
        for guard in snapshot
            .snapshot
            .range(&self.storage.ks.items, (range.lower, range.upper))
        {
            if changes.len() >= limit {
                return Ok(SnapshotPage {
                    changes,
                    resume_after: last,
                });
            }
            let (key, bytes) = guard.into_inner()?;
            let cell = codec::decode_cell(&bytes)?;
            let keys = match &cell.item {
                Some(item) => snapshot.table.shape.project_key(item),
                None => decode_item_key(&snapshot.table.shape, &key).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "an item key of table {:?} does not decode",
                        snapshot.table.name
                    ))
                })?,
            };
            changes.push(RemoteChange {
                table_name: snapshot.table.name.clone(),
                keys,
                new_image: cell.item,
                stamp: cell.stamp,
            });
            last = Some(key.to_vec());
        }
        Ok(SnapshotPage {
            changes,
            resume_after: None,
        })
    }
}

/// What became of one replicated change.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// It was newer than what was stored, and is now stored.
    Written,
    /// The same write was applied here before.
    Duplicate,
    /// A newer write of the item was already stored (made here, or replicated from elsewhere):
    /// the change was discarded. Its stamp is the winner's.
    Lost(Stamp),
    /// The table does not exist here.
    NoTable,
}

impl Applied {
    /// What last writer wins makes of `incoming` against the stored `stamp` (the same rule
    /// the write path applies, [`Stamp::wins_over`]).
    pub fn judge(incoming: &Stamp, stored: Option<&Stamp>) -> Applied {
        match stored {
            _ if incoming.wins_over(stored) => Applied::Written,
            Some(stored) if stored == incoming => Applied::Duplicate,
            Some(stored) => Applied::Lost(stored.clone()),
            None => Applied::Written,
        }
    }
}

/// A consistent view of one table's cells (see [`Store::snapshot_table`]).
pub struct TableSnapshot {
    snapshot: fjall::Snapshot,
    table: Arc<TableEntry>,
}

impl std::fmt::Debug for TableSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSnapshot")
            .field("table", &self.table.name)
            .finish()
    }
}

impl TableSnapshot {
    /// How many items the table held when the snapshot was taken (from its statistics, so
    /// approximate while writes go on): the denominator of a seeding's progress.
    pub fn approximate_items(&self, store: &Store) -> u64 {
        u64::try_from(store.storage.table_stats(self.table.id).items).unwrap_or(0)
    }
}

/// One page of a [`TableSnapshot`].
#[derive(Debug)]
pub struct SnapshotPage {
    /// The page's cells, as changes to apply (a tombstone is a delete with its stamp).
    pub changes: Vec<RemoteChange>,
    /// Where the next page starts; `None` when this was the last.
    pub resume_after: Option<Vec<u8>>,
}
