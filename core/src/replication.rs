//! [`Replication`]: applying writes made in other regions: last writer wins, per item, by [`Stamp`]
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
use crate::model::{Item, item_size};
use crate::stamp::{HlcTimestamp, HybridClock, Stamp};
use crate::storage::catalog::TableEntry;
use crate::storage::keys::{KeyRange, decode_item_key, table_prefix};
use crate::storage::{ItemsSnapshot, codec};
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

/// Appends `item` in the store's own binary item encoding: what regions send each other,
/// several times cheaper to write and read than DynamoDB JSON.
pub fn encode_item(out: &mut Vec<u8>, item: &Item) {
    codec::put_item(out, item);
}

/// Reads one item written by [`encode_item`] from the front of `input`, and moves `input`
/// past it.
///
/// # Errors
/// Corrupt when the bytes are truncated or are not an item.
pub fn decode_item(input: &mut &[u8]) -> Result<Item> {
    let mut reader = codec::Reader::new(input);
    let item = reader.item()?;
    *input = reader.rest();
    Ok(item)
}

/// Replicated writes and replica seeding over the store.
#[derive(Debug)]
pub struct Replication {
    store: Arc<Store>,
}

impl Replication {
    /// The replication of `store`.
    pub fn new(store: Arc<Store>) -> Replication {
        Replication { store }
    }

    /// Applies a change from another region if it wins over what is stored here. Returns the
    /// sequence of its change record, or `None` when the stored item is newer (or the same
    /// write was applied before).
    ///
    /// # Errors
    /// ResourceNotFound for an unknown table, Validation for a key that does not fit the
    /// table's schema, storage failures.
    pub fn apply_remote(&self, change: RemoteChange) -> Result<Option<ChangeSeq>> {
        let table = self.store.table(&change.table_name)?;
        table.shape.check_key(&change.keys)?;
        let target = Target::new(table, change.keys, Cause::Replica(change.stamp));
        let written = self
            .store
            .write_one(target, |_| Ok((Decision::Write(change.new_image), ())))?;
        Ok(written.last_seq)
    }

    /// Applies a batch of changes from another region, in order, each by last writer wins,
    /// and says what became of each. Changes to distinct items commit together (one batch per
    /// run of distinct keys), so a batch costs a few commits, not one per change.
    ///
    /// Nothing is applied for a change whose table does not exist here (it is reported
    /// [`Applied::NoTable`]): its table was deleted in this region, and a deleted replica
    /// takes no writes. A change this store cannot hold ([`Replication::refusal`]) is handed
    /// back as [`Applied::Refused`], and the others are applied: one bad change does not
    /// hold up a whole link.
    ///
    /// # Errors
    /// Storage failures (the changes before the failing run are applied, the rest are not).
    pub fn apply_remote_batch(&self, changes: Vec<RemoteChange>) -> Result<Vec<Applied>> {
        let mut outcomes = Vec::with_capacity(changes.len());
        let mut run: Vec<(Target, Option<Item>, Stamp)> = Vec::new();
        // Hashes of the run's item keys: a collision only ends a run early.
        let mut run_keys: HashSet<u64> = HashSet::new();
        for change in changes {
            let Some(table) = self.store.storage.table(&change.table_name) else {
                self.apply_run(std::mem::take(&mut run), &mut outcomes)?;
                run_keys.clear();
                outcomes.push(Applied::NoTable);
                continue;
            };
            if let Some(reason) = Replication::refusal(&table, &change) {
                // Outcomes are in the changes' order: the run before it goes first.
                self.apply_run(std::mem::take(&mut run), &mut outcomes)?;
                run_keys.clear();
                outcomes.push(Applied::Refused {
                    change: Box::new(change),
                    reason,
                });
                continue;
            }
            let target = Target::new(table, change.keys, Cause::Replica(change.stamp.clone()));
            let key_hash = xxhash_rust::xxh3::xxh3_64(&target.key_bytes);
            if !run_keys.insert(key_hash) {
                self.apply_run(std::mem::take(&mut run), &mut outcomes)?;
                run_keys.clear();
                run_keys.insert(key_hash);
            }
            run.push((target, change.new_image, change.stamp));
        }
        self.apply_run(run, &mut outcomes)?;
        Ok(outcomes)
    }

    /// Why this store cannot hold `change` to `table`, if it cannot: its key does not fit the
    /// table's key schema (no cell can be stored under it), or its stamp leaves the hybrid
    /// clock no reading after it. Nothing else refuses a replicated write: what a client
    /// request would be refused for (index key types, item and collection sizes) its region
    /// already accepted, and refusing it here would keep the regions apart for good.
    pub fn refusal(table: &TableEntry, change: &RemoteChange) -> Option<String> {
        if let Err(e) = table.shape.check_key(&change.keys) {
            return Some(format!(
                "its key does not fit the key schema of table {}: {e}",
                table.name
            ));
        }
        // The commit observes the stamp and ticks past it; a fresh clock tells whether that
        // reading exists, with the commit's own arithmetic.
        if let Err(e) = HybridClock::default().tick_observing(Some(change.stamp.hlc), 0) {
            return Some(format!("its stamp {} cannot be applied: {e}", change.stamp));
        }
        None
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
        let written = self.store.write(targets, move |targets, cells| {
            let mut decisions = Vec::with_capacity(writes.len());
            let mut applied = Vec::with_capacity(writes.len());
            for (((new, stamp), cell), target) in writes.into_iter().zip(cells).zip(targets) {
                applied.push(match Applied::judge(&stamp, cell.stamp.as_ref()) {
                    // Only a loser's key is kept, for whoever reports the conflict.
                    Applied::Lost { winner, .. } => Applied::Lost {
                        winner,
                        keys: target.keys.clone().unwrap_or_default(),
                    },
                    other => other,
                });
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
        let table = self.store.table(table_name)?;
        Ok(TableSnapshot {
            snapshot: self.store.storage.snapshot(),
            table,
        })
    }

    /// The next page of at most `limit` cells of `snapshot` after the storage key `after`
    /// (from the start when `None`), ending with the cell that brings its items' size to
    /// `max_bytes`, as changes a replica applies; and the key to resume after, `None` once
    /// the table is done.
    ///
    /// # Errors
    /// Storage failures or a corrupt cell.
    pub fn snapshot_page(
        &self,
        snapshot: &TableSnapshot,
        after: Option<Vec<u8>>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<SnapshotPage> {
        let mut range = KeyRange::prefix(&table_prefix(snapshot.table.id));
        if let Some(after) = after {
            range.resume_after(after, true);
        }
        let mut changes = Vec::new();
        let mut last = None;
        let mut size = 0;
        let cells = snapshot.snapshot.cells_in(range);
        for cell in cells {
            if changes.len() >= limit || size >= max_bytes {
                return Ok(SnapshotPage {
                    changes,
                    resume_after: last,
                });
            }
            let (key, cell) = cell?;
            let keys = match &cell.item {
                Some(item) => snapshot.table.shape.project_key(item),
                None => decode_item_key(&snapshot.table.shape, &key).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "an item key of table {:?} does not decode",
                        snapshot.table.name
                    ))
                })?,
            };
            size += item_size(&keys) + cell.item.as_ref().map_or(0, item_size);
            changes.push(RemoteChange {
                table_name: snapshot.table.name.clone(),
                keys,
                new_image: cell.item,
                stamp: cell.stamp,
            });
            last = Some(key);
        }
        Ok(SnapshotPage {
            changes,
            resume_after: None,
        })
    }
}

impl Replication {
    /// The next page of at most `limit` cells of `snapshot` after the storage key `after`
    /// (from the start when `None`), as anti-entropy compares them: each item's key in the
    /// table-independent part of its storage key (regions give a table different ids), the
    /// stamp of its last write and whether it is live; and the key to resume after, `None`
    /// once the table is done. Items are not decoded.
    ///
    /// # Errors
    /// Storage failures or a corrupt cell.
    pub fn cell_stamp_page(
        &self,
        snapshot: &TableSnapshot,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<CellStampPage> {
        let prefix = table_prefix(snapshot.table.id);
        let mut range = KeyRange::prefix(&prefix);
        if let Some(after) = after {
            range.resume_after(after, true);
        }
        let mut cells = Vec::new();
        for cell in snapshot.snapshot.cell_stamps_in(range) {
            if cells.len() >= limit {
                let resume_after = cells
                    .last()
                    .map(|last: &CellStamp| [prefix.as_slice(), &last.key].concat());
                return Ok(CellStampPage {
                    cells,
                    resume_after,
                });
            }
            let (key, stamp, live) = cell?;
            cells.push(CellStamp {
                key: key.get(prefix.len()..).unwrap_or_default().to_vec(),
                stamp,
                live,
            });
        }
        Ok(CellStampPage {
            cells,
            resume_after: None,
        })
    }

    /// The cells (live items and tombstones, with their stamps) of `table_name` at `keys`,
    /// given as [`CellStamp::key`]s, read from one snapshot, as changes another replica
    /// applies by last writer wins; keys with no cell are left out.
    ///
    /// # Errors
    /// ResourceNotFound, Validation for a key that is not one of the table's, storage
    /// failures.
    pub fn cells_at(&self, table_name: &str, keys: &[Vec<u8>]) -> Result<Vec<RemoteChange>> {
        let table = self.store.table(table_name)?;
        let snapshot = self.store.storage.snapshot();
        let prefix = table_prefix(table.id);
        let mut changes = Vec::with_capacity(keys.len());
        for key in keys {
            let storage_key = [prefix.as_slice(), key].concat();
            let attributes = decode_item_key(&table.shape, &storage_key).ok_or_else(|| {
                Error::Validation(format!(
                    "a key that is not one of table {}'s items",
                    table.name
                ))
            })?;
            let Some(cell) = snapshot.cell(&storage_key)? else {
                continue;
            };
            changes.push(RemoteChange {
                table_name: table.name.clone(),
                keys: attributes,
                new_image: cell.item,
                stamp: cell.stamp,
            });
        }
        Ok(changes)
    }

    /// The clock below which this node may have trimmed tombstones: every tombstone it
    /// removed had a stamp older than this (it went with its REMOVE record, whose commit
    /// clock is at or past the delete's stamp and before the oldest record kept). Zero when
    /// nothing was ever trimmed. Read it after taking a snapshot, so that it covers every
    /// tombstone missing from that snapshot.
    ///
    /// # Errors
    /// Storage failures or a corrupt record.
    pub fn trim_horizon(&self) -> Result<HlcTimestamp> {
        let oldest = self.store.oldest_retained_seq();
        if oldest <= ChangeSeq::ZERO.next() {
            return Ok(HlcTimestamp(0));
        }
        // Trimmed again meanwhile: no bound is known, so nothing absent here is vouched for.
        Ok(self
            .store
            .commit_clock_at(oldest)?
            .unwrap_or(HlcTimestamp(u64::MAX)))
    }
}

/// One cell as anti-entropy compares it (see [`Replication::cell_stamp_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellStamp {
    /// The item's storage key without the table's id: the same in every region.
    pub key: Vec<u8>,
    /// The stamp of the cell's last write.
    pub stamp: Stamp,
    /// True for a live item, false for a tombstone.
    pub live: bool,
}

/// One page of [`Replication::cell_stamp_page`].
#[derive(Debug)]
pub struct CellStampPage {
    /// The page's cells, in key order.
    pub cells: Vec<CellStamp>,
    /// Where the next page starts; `None` when this was the last.
    pub resume_after: Option<Vec<u8>>,
}

/// What became of one replicated change.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// It was newer than what was stored, and is now stored.
    Written,
    /// Nothing new: the same write was applied here before, or a later write of the same
    /// region is stored (its region overwrote it itself; it comes again only in a batch sent
    /// again, or in a seeding page, and was never in conflict with anything).
    Duplicate,
    /// A newer write of the item from another region (or this one) was already stored: the
    /// change was discarded.
    Lost {
        /// The stored write's stamp.
        winner: Stamp,
        /// The item's key attributes.
        keys: Item,
    },
    /// The table does not exist here.
    NoTable,
    /// This store cannot hold the change ([`Replication::refusal`]); nothing was applied, and
    /// the change is handed back, for its receiver to keep aside.
    Refused {
        /// The change, as it came.
        change: Box<RemoteChange>,
        /// Why it cannot be applied.
        reason: String,
    },
}

impl Applied {
    /// What last writer wins makes of `incoming` against the stored `stamp` (the same rule
    /// the write path applies, [`Stamp::wins_over`]). Losing to a later write of its own
    /// region is no conflict: a region orders its own writes.
    pub fn judge(incoming: &Stamp, stored: Option<&Stamp>) -> Applied {
        match stored {
            _ if incoming.wins_over(stored) => Applied::Written,
            Some(stored) if stored.region == incoming.region => Applied::Duplicate,
            Some(stored) => Applied::Lost {
                winner: stored.clone(),
                keys: Item::new(),
            },
            None => Applied::Written,
        }
    }
}

/// A consistent view of one table's cells (see [`Replication::snapshot_table`]).
pub struct TableSnapshot {
    snapshot: ItemsSnapshot,
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
    pub fn approximate_items(&self, replication: &Replication) -> u64 {
        u64::try_from(replication.store.storage.table_stats(self.table.id).items).unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;
    use crate::changes::{LogCursor, LogLimits};
    use crate::model::AttributeValue;
    use crate::ops::{CreateTableRequest, DeleteItemRequest, PutItemRequest};
    use crate::stamp::HlcTimestamp;
    use crate::{Durability, StoreConfig};

    fn open(dir: &std::path::Path) -> Engine {
        let mut config = StoreConfig::for_tests(dir);
        config.durability = Durability::Buffer;
        let store = Engine::open(config).unwrap();
        store
            .tables
            .create_table(CreateTableRequest::on_demand("ttt", "p", "S"))
            .unwrap();
        store
    }

    fn keys(k: &str) -> Item {
        [("p".to_string(), AttributeValue::S(k.into()))].into()
    }

    fn change(k: &str, value: Option<&str>, hlc: u64, region: &str) -> RemoteChange {
        RemoteChange {
            table_name: "ttt".into(),
            keys: keys(k),
            new_image: value.map(|v| {
                let mut item = keys(k);
                item.insert("v".into(), AttributeValue::S(v.into()));
                item
            }),
            stamp: Stamp {
                hlc: HlcTimestamp(hlc),
                region: region.into(),
            },
        }
    }

    fn visible_records(store: &Engine) -> usize {
        let mut cursor = LogCursor::node(ChangeSeq::ZERO);
        store
            .store
            .read_log(&mut cursor, LogLimits::records(1000))
            .unwrap()
            .len()
    }

    #[test]
    fn a_batch_applies_by_last_writer_wins_and_reports_each_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let outcomes = store
            .replication
            .apply_remote_batch(vec![
                change("a", Some("1"), 10, "eu"),
                change("a", Some("2"), 20, "eu"),
                change("a", Some("old"), 15, "us"),
                change("a", Some("2"), 20, "eu"),
                change("b", Some("1"), 5, "eu"),
                RemoteChange {
                    table_name: "missing".into(),
                    ..change("c", None, 5, "eu")
                },
            ])
            .unwrap();
        let twenty = Stamp {
            hlc: HlcTimestamp(20),
            region: "eu".into(),
        };
        assert_eq!(
            outcomes,
            [
                Applied::Written,
                Applied::Written,
                Applied::Lost {
                    winner: twenty,
                    keys: keys("a"),
                },
                Applied::Duplicate,
                Applied::Written,
                Applied::NoTable,
            ]
        );
        assert_eq!(visible_records(&store), 3, "one record per applied change");
    }

    #[test]
    fn an_index_key_of_another_type_is_applied_unindexed_where_a_client_put_is_refused() {
        use crate::model::{
            AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, Projection,
        };
        use crate::ops::{GetItemRequest, ScanRequest};
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .tables
            .create_table(CreateTableRequest {
                attribute_definitions: vec![
                    AttributeDefinition {
                        attribute_name: "p".into(),
                        attribute_type: "S".into(),
                    },
                    AttributeDefinition {
                        attribute_name: "g".into(),
                        attribute_type: "S".into(),
                    },
                ],
                global_secondary_indexes: vec![GlobalSecondaryIndex {
                    index_name: "by_g".into(),
                    key_schema: vec![KeySchemaElement {
                        attribute_name: "g".into(),
                        key_type: "HASH".into(),
                    }],
                    projection: Projection {
                        projection_type: Some("ALL".into()),
                        non_key_attributes: None,
                    },
                    provisioned_throughput: None,
                }],
                ..CreateTableRequest::on_demand("indexed", "p", "S")
            })
            .unwrap();
        let numbered = |k: &str| {
            let mut item = keys(k);
            item.insert("g".into(), AttributeValue::N(7.into()));
            item
        };
        let refused = store.store.put_item(PutItemRequest {
            table_name: "indexed".into(),
            item: numbered("client"),
            ..Default::default()
        });
        assert!(
            matches!(&refused, Err(Error::Validation(m)) if m.contains("Type mismatch for Index Key")),
            "{refused:?}"
        );
        let outcomes = store
            .replication
            .apply_remote_batch(vec![RemoteChange {
                table_name: "indexed".into(),
                keys: keys("replicated"),
                new_image: Some(numbered("replicated")),
                stamp: Stamp {
                    hlc: HlcTimestamp(10),
                    region: "eu".into(),
                },
            }])
            .unwrap();
        assert_eq!(outcomes, [Applied::Written]);
        let read = store
            .store
            .get_item(GetItemRequest {
                table_name: "indexed".into(),
                key: keys("replicated"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(read.item, Some(numbered("replicated")));
        let indexed = store
            .store
            .scan(ScanRequest {
                table_name: "indexed".into(),
                index_name: Some("by_g".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            indexed.count, 0,
            "an index key of another type is not indexed"
        );
    }

    #[test]
    fn a_change_the_store_cannot_hold_is_handed_back_and_the_rest_applied_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let bad_key = RemoteChange {
            keys: [("p".to_string(), AttributeValue::N(1.into()))].into(),
            ..change("x", Some("1"), 10, "eu")
        };
        let top_stamp = change("y", Some("1"), u64::MAX, "eu");
        let outcomes = store
            .replication
            .apply_remote_batch(vec![
                change("a", Some("1"), 10, "eu"),
                bad_key.clone(),
                change("b", Some("1"), 10, "eu"),
                top_stamp.clone(),
                change("c", Some("1"), 10, "eu"),
            ])
            .unwrap();
        let [
            Applied::Written,
            Applied::Refused {
                change: refused_key,
                reason: key_reason,
            },
            Applied::Written,
            Applied::Refused {
                change: refused_stamp,
                reason: stamp_reason,
            },
            Applied::Written,
        ] = outcomes.as_slice()
        else {
            panic!("outcomes {outcomes:?}");
        };
        assert_eq!(**refused_key, bad_key);
        assert!(key_reason.contains("key schema"), "{key_reason}");
        assert_eq!(**refused_stamp, top_stamp);
        assert!(stamp_reason.contains("top of its range"), "{stamp_reason}");
        assert_eq!(visible_records(&store), 3);
    }

    #[test]
    fn a_write_its_own_region_overwrote_since_is_no_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let first = store
            .replication
            .apply_remote_batch(vec![
                change("a", Some("1"), 10, "eu"),
                change("a", Some("2"), 20, "eu"),
            ])
            .unwrap();
        assert_eq!(first, [Applied::Written, Applied::Written]);
        // The first batch again (its answer was lost): eu's first write is no longer stored,
        // eu's own later one is.
        let again = store
            .replication
            .apply_remote_batch(vec![change("a", Some("1"), 10, "eu")])
            .unwrap();
        assert_eq!(again, [Applied::Duplicate]);
        // Another region's older write still loses as a conflict.
        let late = store
            .replication
            .apply_remote_batch(vec![change("a", Some("us"), 15, "us")])
            .unwrap();
        assert!(
            matches!(late.as_slice(), [Applied::Lost { winner, .. }] if winner.region == "eu"),
            "{late:?}"
        );
    }

    #[test]
    fn a_delete_of_an_item_never_seen_keeps_older_writes_out_and_shows_in_no_stream() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .replication
            .apply_remote_batch(vec![change("gone", None, 50, "eu")])
            .unwrap();
        assert_eq!(
            visible_records(&store),
            0,
            "nothing anyone could see changed"
        );
        let late = store
            .replication
            .apply_remote_batch(vec![change("gone", Some("zombie"), 40, "us")])
            .unwrap();
        assert!(matches!(late.as_slice(), [Applied::Lost { .. }]));
        assert_eq!(visible_records(&store), 0);
    }

    #[test]
    fn a_snapshot_holds_live_items_and_tombstones_with_their_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for k in ["a", "b", "c", "d", "e"] {
            store
                .store
                .put_item(PutItemRequest {
                    table_name: "ttt".into(),
                    item: keys(k),
                    ..Default::default()
                })
                .unwrap();
        }
        store
            .store
            .delete_item(DeleteItemRequest {
                table_name: "ttt".into(),
                key: keys("b"),
                ..Default::default()
            })
            .unwrap();
        let snapshot = store.replication.snapshot_table("ttt").unwrap();
        // Written after the snapshot: not in it.
        store
            .store
            .put_item(PutItemRequest {
                table_name: "ttt".into(),
                item: keys("f"),
                ..Default::default()
            })
            .unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .replication
                .snapshot_page(&snapshot, after, 2, usize::MAX)
                .unwrap();
            assert!(page.changes.len() <= 2);
            seen.extend(page.changes);
            match page.resume_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let listed: Vec<(String, bool)> = seen
            .iter()
            .map(|c| match c.keys.get("p") {
                Some(AttributeValue::S(k)) => (k.clone(), c.new_image.is_some()),
                other => panic!("key {other:?}"),
            })
            .collect();
        let expected: Vec<(String, bool)> = [
            ("a", true),
            ("b", false),
            ("c", true),
            ("d", true),
            ("e", true),
        ]
        .iter()
        .map(|(k, live)| (k.to_string(), *live))
        .collect();
        assert_eq!(listed, expected);
        // Applied elsewhere, the snapshot reproduces the cells, stamps included.
        let other_dir = tempfile::tempdir().unwrap();
        let other = open(other_dir.path());
        // A byte limit ends a page at the cell that reaches it.
        let page = store
            .replication
            .snapshot_page(&snapshot, None, 100, 1)
            .unwrap();
        assert_eq!(page.changes.len(), 1);
        assert!(page.resume_after.is_some());
        let applied = other.replication.apply_remote_batch(seen.clone()).unwrap();
        assert!(applied.iter().all(|a| *a == Applied::Written));
        let copy = other.replication.snapshot_table("ttt").unwrap();
        assert_eq!(
            other
                .replication
                .snapshot_page(&copy, None, 100, usize::MAX)
                .unwrap()
                .changes,
            seen
        );
    }

    #[test]
    fn cell_stamps_name_items_the_same_in_every_region_and_read_back_as_cells() {
        let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (store, other) = (open(dir.path()), open(other_dir.path()));
        // Another table first, so the two stores give "ttt" different ids.
        other
            .tables
            .create_table(CreateTableRequest::on_demand("zzz", "p", "S"))
            .unwrap();
        other.tables.delete_table("ttt").unwrap();
        other
            .tables
            .create_table(CreateTableRequest::on_demand("ttt", "p", "S"))
            .unwrap();
        let changes = vec![
            change("a", Some("1"), 10, "eu"),
            change("b", None, 20, "us"),
            change("c", Some("3"), 30, "eu"),
        ];
        for engine in [&store, &other] {
            engine
                .replication
                .apply_remote_batch(changes.clone())
                .unwrap();
        }
        let stamps = |engine: &Engine| {
            let snapshot = engine.replication.snapshot_table("ttt").unwrap();
            let (mut all, mut after) = (Vec::new(), None);
            loop {
                let page = engine
                    .replication
                    .cell_stamp_page(&snapshot, after, 2)
                    .unwrap();
                all.extend(page.cells);
                after = page.resume_after;
                if after.is_none() {
                    return all;
                }
            }
        };
        let mine = stamps(&store);
        assert_eq!(mine, stamps(&other), "the same cells compare equal");
        assert_eq!(
            mine.iter()
                .map(|c| (c.stamp.hlc.0, c.live))
                .collect::<Vec<_>>(),
            [(10, true), (20, false), (30, true)]
        );
        let keys: Vec<Vec<u8>> = mine.iter().map(|c| c.key.clone()).collect();
        assert_eq!(other.replication.cells_at("ttt", &keys).unwrap(), changes);
        assert!(matches!(
            store.replication.cells_at("ttt", &[vec![0xff]]),
            Err(Error::Validation(_))
        ));
        assert_eq!(
            store.replication.trim_horizon().unwrap(),
            HlcTimestamp(0),
            "nothing trimmed yet"
        );
    }
}
