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
use crate::Result;
use crate::changes::{ChangeKind, ChangeSeq};

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
    pub(crate) fn table_by_id(&self, id: u64) -> Option<Arc<TableEntry>> {
        self.catalog
            .tables
            .read()
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// Removes change records committed before `cutoff_millis` (never the newest one), and the
    /// tombstones their REMOVE records left, when still in place.
    pub(crate) fn trim_history(&self, cutoff_millis: u64) -> Result<TrimReport> {
        let mut report = TrimReport::default();
        let Some(newest) = self.ks.changes.last_key_value() else {
            return Ok(report);
        };
        let newest: ChangeSeq = seq_of(&newest.key()?)?;
        // IMPORTANT: records a holder still needs stay, whatever their age; so does the
        // tombstone of every REMOVE among them, until every peer has passed it.
        let held_from = self.holds.lowest();
        loop {
            let snapshot = self.db.snapshot();
            let mut doomed = Vec::new();
            for guard in snapshot.iter(&self.ks.changes).take(TRIM_BATCH) {
                let (key, value) = guard.into_inner()?;
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
            batch.commit()?;
            if let Some(last) = doomed.last() {
                self.oldest_retained
                    .fetch_max(last.seq + 1, std::sync::atomic::Ordering::AcqRel);
            }
            report.records += doomed.len() as u64;
            for record in doomed.iter().filter(|r| r.kind == ChangeKind::Remove) {
                let Some(table) = self.table_by_id(record.table_id) else {
                    continue;
                };
                let key = item_key(table.id, &table.shape, &record.keys);
                // Under the key lock, so a concurrent write to the item is never undone.
                let _lock = self.lock_keys(&[&key]);
                let Some(bytes) = self.ks.items.get(&key)? else {
                    continue;
                };
                let cell = codec::decode_cell(&bytes)?;
                if cell.item.is_none() && cell.stamp == record.stamp {
                    self.ks.items.remove(key)?;
                    report.tombstones += 1;
                }
            }
        }
    }

    /// True when an item cell (live or tombstone) is stored at `key`.
    #[cfg(test)]
    pub(crate) fn has_cell(&self, key: &[u8]) -> Result<bool> {
        Ok(self.ks.items.get(key)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::model::{AttributeValue, Item};
    use crate::ops::{CreateTableRequest, DeleteItemRequest, PutItemRequest};
    use crate::storage::keys::item_key;
    use crate::{Engine, ManualClock, StoreConfig};

    #[test]
    fn trimming_removes_old_records_and_their_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let mut config = StoreConfig::new(dir.path());
        config.history_window = std::time::Duration::from_secs(60);
        let store = Engine::open_with_clock(config, clock.clone()).unwrap();
        store
            .tables
            .create_table(CreateTableRequest::on_demand("tbl", "p", "S"))
            .unwrap();
        let key: Item = [("p".to_string(), AttributeValue::S("a".into()))].into();
        store
            .store
            .put_item(PutItemRequest {
                table_name: "tbl".into(),
                item: key.clone(),
                ..Default::default()
            })
            .unwrap();
        store
            .store
            .delete_item(DeleteItemRequest {
                table_name: "tbl".into(),
                key: key.clone(),
                ..Default::default()
            })
            .unwrap();
        let table = store.store.storage.table("tbl").unwrap();
        let stored_key = item_key(table.id, &table.shape, &key);
        assert!(
            store.store.storage.has_cell(&stored_key).unwrap(),
            "tombstone kept"
        );

        assert_eq!(
            store.trim_history().unwrap().records,
            0,
            "nothing is older than the window yet"
        );
        clock.advance(61_000);
        let other: Item = [("p".to_string(), AttributeValue::S("b".into()))].into();
        store
            .store
            .put_item(PutItemRequest {
                table_name: "tbl".into(),
                item: other,
                ..Default::default()
            })
            .unwrap();
        let report = store.trim_history().unwrap();
        assert_eq!((report.records, report.tombstones), (2, 1));
        assert!(!store.store.storage.has_cell(&stored_key).unwrap());
        let left: Vec<u64> = store
            .store
            .read_changes(1, 10)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(left, [3]);
    }
}
