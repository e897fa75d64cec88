//! The history window: change records older than the window are trimmed from the log, and a
//! delete's tombstone goes with its REMOVE record once no later write has replaced it.
//!
//! IMPORTANT: the newest record is never trimmed, because reopening derives the next change
//! sequence from the last key of the log.

use std::sync::Arc;

use fjall::Readable;

use super::catalog::TableEntry;
use super::codec;
use super::keys::{item_key, table_change_key};
use super::{Storage, seq_of};
use crate::OrFailure;
use tidemark_model::Result;
use tidemark_model::TableId;
use tidemark_model::changes::{ChangeKind, ChangeSeq};

/// Most removals per trimming batch.
const TRIM_BATCH: usize = 1024;

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
    pub fn trim_history(&self, cutoff_millis: u64) -> Result<TrimReport> {
        let mut report = TrimReport::default();
        let Some(newest) = self.ks.changes.last_key_value() else {
            return Ok(report);
        };
        let newest: ChangeSeq = seq_of(&newest.key().or_failure()?)?;
        // IMPORTANT: records a holder still needs stay, whatever their age; so does the
        // tombstone of every REMOVE among them, until every peer has passed it.
        let held_from = self.holds.lowest();
        loop {
            let snapshot = self.db.snapshot();
            let mut doomed = Vec::new();
            for guard in snapshot.iter(&self.ks.changes).take(TRIM_BATCH) {
                let (key, value) = guard.into_inner().or_failure()?;
                let seq = seq_of(&key)?;
                let record = codec::decode_record(seq, &value)?;
                if seq >= newest || seq >= held_from || record.commit_time_millis() >= cutoff_millis
                {
                    break;
                }
                doomed.push(record);
            }
            drop(snapshot);
            if doomed.is_empty() {
                return Ok(report);
            }
            let mut batch = self.db.batch();
            for record in &doomed {
                batch.remove(&self.ks.changes, record.seq.to_be_bytes());
                batch.remove(
                    &self.ks.table_changes,
                    table_change_key(record.table_id, record.seq),
                );
            }
            batch.commit().or_failure()?;
            if let Some(last) = doomed.last() {
                self.oldest_retained.advance_to(last.seq.next());
            }
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

    /// True when an item cell (live or tombstone) is stored at `key`.
    #[cfg(any(test, feature = "test-support"))]
    pub fn has_cell(&self, key: &[u8]) -> Result<bool> {
        Ok(self.ks.items.get(key).or_failure()?.is_some())
    }
}
