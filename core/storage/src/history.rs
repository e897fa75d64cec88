//! The history window: change records older than the window are trimmed from the log, table
//! by table as far as that table's retention holds allow, and a delete's tombstone goes with
//! its REMOVE record once no later write has replaced it.
//!
//! IMPORTANT: the newest record is never trimmed, because reopening derives the next change
//! sequence from the last key of the log.

use std::sync::Arc;

use fjall::Readable;

use super::catalog::TableEntry;
use super::codec;
use super::keys::{item_key, table_change_key};
use super::{Storage, seq_of, table_id_of};
use crate::OrFailure;
use tidemark_model::TableId;
use tidemark_model::changes::{ChangeKind, ChangeSeq};
use tidemark_model::{Error, Result};

/// Most removals per trimming batch.
const TRIM_BATCH: usize = 1024;

/// Catalog key prefix of where each table's trimmed records end.
pub(crate) const TRIMMED_PREFIX: &str = "trimmed/";

/// The catalog key of where table `table_id`'s trimmed records end (its first retained
/// sequence, 8 bytes big-endian).
pub(crate) fn trimmed_key(table_id: TableId) -> Vec<u8> {
    let mut key = TRIMMED_PREFIX.as_bytes().to_vec();
    key.extend_from_slice(&table_id.to_be_bytes());
    key
}

/// What one trimming pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrimReport {
    /// Change records removed.
    pub records: u64,
    /// Tombstones removed.
    pub tombstones: u64,
}

impl Storage {
    /// The live table with internal id `id`.
    pub fn table_by_id(&self, id: TableId) -> Option<Arc<TableEntry>> {
        self.catalog
            .tables
            .read()
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// Removes change records committed before `cutoff_millis` (never the newest one), and the
    /// tombstones their REMOVE records left, when still in place.
    ///
    /// Each table's records are trimmed on their own (through the per-table index): a hold
    /// that belongs to a table keeps only that table's records, a hold of no table keeps
    /// every table's. Each table's trimmed records are a prefix of its records (the cutoff
    /// and the holds only move forward), and where that prefix ends is kept with the
    /// removals ([`Storage::oldest_retained_of`]).
    pub fn trim_history(&self, cutoff_millis: u64) -> Result<TrimReport> {
        let mut report = TrimReport::default();
        let Some(newest) = self.ks.changes.last_key_value() else {
            return Ok(report);
        };
        let newest: ChangeSeq = seq_of(&newest.key().or_failure()?)?;
        // IMPORTANT: records a holder still needs stay, whatever their age; so does the
        // tombstone of every REMOVE among them, until every peer has passed it.
        let held = self.holds.held_from();
        let mut table_id = self.next_logged_table(None)?;
        while let Some(id) = table_id {
            let until = newest.min(held.of(id));
            self.trim_table(id, until, cutoff_millis, &mut report)?;
            table_id = self.next_logged_table(Some(id))?;
        }
        if let Some(first) = self.ks.changes.first_key_value() {
            self.oldest_retained
                .advance_to(seq_of(&first.key().or_failure()?)?);
        }
        self.forget_passed_marks()?;
        Ok(report)
    }

    /// Drops the trimmed-prefix marks the whole log's start has passed: they say nothing
    /// more, and a deleted table's would otherwise stay for ever.
    fn forget_passed_marks(&self) -> Result<()> {
        let oldest = self.oldest_retained.load();
        let mut marks = self.trimmed_to.lock();
        let passed: Vec<TableId> = marks
            .iter()
            .filter(|(_, to)| **to <= oldest)
            .map(|(id, _)| *id)
            .collect();
        if passed.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for id in &passed {
            batch.remove(&self.ks.catalog, trimmed_key(*id));
        }
        batch.commit().or_failure()?;
        for id in passed {
            marks.remove(&id);
        }
        Ok(())
    }

    /// The first table after `after` (from the start when `None`) with records in the log.
    fn next_logged_table(&self, after: Option<TableId>) -> Result<Option<TableId>> {
        let from = match after {
            Some(id) if id.get() == u64::MAX => return Ok(None),
            Some(id) => table_change_key(TableId::new(id.get() + 1), ChangeSeq::ZERO),
            None => table_change_key(TableId::new(0), ChangeSeq::ZERO),
        };
        match self.ks.table_changes.range(from..).next() {
            Some(guard) => {
                let key = guard.key().or_failure()?;
                Ok(Some(table_id_of(key.get(..8).unwrap_or_default())?))
            }
            None => Ok(None),
        }
    }

    /// Trims table `table_id`'s records before `until` committed before `cutoff_millis`.
    fn trim_table(
        &self,
        table_id: TableId,
        until: ChangeSeq,
        cutoff_millis: u64,
        report: &mut TrimReport,
    ) -> Result<()> {
        loop {
            let snapshot = self.db.snapshot();
            let range =
                table_change_key(table_id, ChangeSeq::ZERO)..table_change_key(table_id, until);
            let mut doomed = Vec::new();
            for guard in snapshot
                .range(&self.ks.table_changes, range)
                .take(TRIM_BATCH)
            {
                let key = guard.key().or_failure()?;
                let seq = seq_of(key.get(8..).unwrap_or_default())?;
                let Some(value) = snapshot
                    .get(&self.ks.changes, seq.to_be_bytes())
                    .or_failure()?
                else {
                    return Err(Error::Corrupt(format!(
                        "the log index of table {table_id} names change {seq}, which is not in the log"
                    )));
                };
                let record = codec::decode_record(seq, &value)?;
                // Commit clocks grow with sequences: every later record is as recent.
                if record.commit_time_millis() >= cutoff_millis {
                    break;
                }
                doomed.push(record);
            }
            drop(snapshot);
            let Some(last) = doomed.last() else {
                return Ok(());
            };
            let mut batch = self.db.batch();
            for record in &doomed {
                batch.remove(&self.ks.changes, record.seq.to_be_bytes());
                batch.remove(
                    &self.ks.table_changes,
                    table_change_key(record.table_id, record.seq),
                );
            }
            // Where the table's trimmed prefix ends, with the removals: a reader of the table
            // before it has lost records, whatever other tables' records are still kept.
            let trimmed_to = last.seq.next();
            batch.insert(
                &self.ks.catalog,
                trimmed_key(table_id),
                trimmed_to.to_be_bytes(),
            );
            batch.commit().or_failure()?;
            self.trimmed_to.lock().insert(table_id, trimmed_to);
            report.records += doomed.len() as u64;
            for record in doomed.iter().filter(|r| r.kind == ChangeKind::Remove) {
                let Some(table) = self.table_by_id(record.table_id) else {
                    continue;
                };
                let key = item_key(table.id, &table.shape, &record.keys);
                // Under the key lock, so a concurrent write to the item is never undone.
                let _lock = self.lock_keys(&[&key]);
                let Some(bytes) = self.ks.items.get(&key).or_failure()? else {
                    continue;
                };
                let cell = codec::decode_cell(&bytes)?;
                if cell.item.is_none() && cell.stamp == record.stamp {
                    self.ks.items.remove(key).or_failure()?;
                    report.tombstones += 1;
                }
            }
        }
    }

    /// The first change of table `table_id` that is not trimmed: every earlier record of the
    /// table is gone, whatever other tables' records before it are still kept.
    pub fn oldest_retained_of(&self, table_id: TableId) -> ChangeSeq {
        let table = self.trimmed_to.lock().get(&table_id).copied();
        let node = self.oldest_retained.load();
        table.map_or(node, |table| table.max(node))
    }

    /// True when an item cell (live or tombstone) is stored at `key`.
    #[cfg(any(test, feature = "test-support"))]
    pub fn has_cell(&self, key: &[u8]) -> Result<bool> {
        Ok(self.ks.items.get(key).or_failure()?.is_some())
    }
}
