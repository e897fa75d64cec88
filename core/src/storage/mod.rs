//! Storage: the only module that knows fjall.
//!
//! One fjall database per node, with these keyspaces:
//! - `items`: `table id | pk | sk` → item cell (item + LWW stamp, or a stamped tombstone);
//! - `changes`: change sequence (u64 BE) → change record: the node-wide change log;
//! - `table_changes`: `table id | sequence` → nothing: each table's slice of the log;
//! - `catalog`: table definitions (JSON) and the next table id;
//! - `stats`: `table id` → exact item count and bytes.
//!
//! Every item write is one atomic batch across `items`, `changes`, `table_changes` and `stats`
//! (see [`commit`]). Read-check-write atomicity comes from striped per-key locks held around
//! the read of the old item and the commit.

pub(crate) mod catalog;
pub(crate) mod codec;
pub(crate) mod commit;
pub(crate) mod history;
pub(crate) mod index;
pub(crate) mod keys;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::Arc;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::{Mutex, MutexGuard};

use crate::changes::{ChangeRecord, ChangeSeq};
use crate::clock::Clock;
use crate::model::{Item, TableDefinition, item_size};
use crate::stamp::HybridClock;
use crate::{Error, Result};
use catalog::{Catalog, NEXT_TABLE_ID_KEY, TableEntry};
use commit::{CommitPipeline, Durability, Mutation, Sequencer, TableStats};

const MIB: u64 = 1024 * 1024;
/// Most journal bytes kept before fjall flushes memtables to let old journals go.
const MAX_JOURNAL_BYTES: u64 = 128 * MIB;

/// Number of striped key locks; a power of two well above the number of concurrent writers.
const KEY_LOCK_STRIPES: usize = 4096;

/// Handles to every keyspace.
#[derive(Clone)]
pub(crate) struct Keyspaces {
    pub(crate) items: Keyspace,
    pub(crate) changes: Keyspace,
    pub(crate) table_changes: Keyspace,
    pub(crate) catalog: Keyspace,
    pub(crate) stats: Keyspace,
    pub(crate) indexes: Keyspace,
}

/// The node's storage: database, keyspaces, catalog, key locks and the commit path.
pub(crate) struct Storage {
    pub(crate) db: Database,
    pub(crate) ks: Keyspaces,
    pub(crate) catalog: Catalog,
    pub(crate) pipeline: CommitPipeline,
    /// Serialises table creation and deletion.
    pub(crate) ddl: Mutex<()>,
    key_locks: Box<[Mutex<()>]>,
    lock_hasher: std::collections::hash_map::RandomState,
    durability: Durability,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Storage {
    pub(crate) fn open(
        dir: &Path,
        durability: Durability,
        region: String,
        cache_bytes: u64,
        clock: Arc<dyn Clock>,
    ) -> Result<Storage> {
        // Memory is the block cache plus the memtables, which are sized by role: items are
        // read back often, the change log is read sequentially and mostly from its tail, its
        // per-table index is tiny. The journal cap makes fjall flush before journals pile up.
        let db = Database::builder(dir)
            .cache_size(cache_bytes)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()?;
        let memtable =
            |bytes: u64| move || KeyspaceCreateOptions::default().max_memtable_size(bytes);
        let ks = Keyspaces {
            items: db.keyspace("items", memtable(32 * MIB))?,
            changes: db.keyspace("changes", memtable(16 * MIB))?,
            table_changes: db.keyspace("table_changes", memtable(4 * MIB))?,
            catalog: db.keyspace("catalog", memtable(MIB))?,
            stats: db.keyspace("stats", memtable(MIB))?,
            indexes: db.keyspace("indexes", memtable(16 * MIB))?,
        };

        let catalog = Catalog::default();
        for guard in ks.catalog.prefix(b"table/") {
            let (_, value) = guard.into_inner()?;
            let definition: TableDefinition = serde_json::from_slice(&value)
                .map_err(|e| Error::Internal(format!("corrupt table definition: {e}")))?;
            let shape = definition.key_shape()?;
            let entry = Arc::new(TableEntry::new(definition, shape)?);
            catalog.tables.write().insert(entry.name.clone(), entry);
        }
        let mut stats = HashMap::new();
        for guard in ks.stats.iter() {
            let (key, value) = guard.into_inner()?;
            let id = <[u8; 8]>::try_from(&*key)
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            stats.insert(id, TableStats::decode(&value));
        }

        let (last_seq, last_hlc) = match ks.changes.last_key_value() {
            Some(guard) => {
                let (key, value) = guard.into_inner()?;
                let seq = <[u8; 8]>::try_from(&*key)
                    .map(u64::from_be_bytes)
                    .map_err(|_| Error::Internal("corrupt change log key".into()))?;
                let record = codec::decode_record(seq, &value)?;
                (seq, record.stamp.hlc)
            }
            None => (0, Default::default()),
        };
        let sequencer = Sequencer {
            next_seq: last_seq + 1,
            hlc: HybridClock::starting_after(last_hlc),
            stats,
        };
        let pipeline = CommitPipeline::start(&db, durability, sequencer, region, clock)?;
        let key_locks = (0..KEY_LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        Ok(Storage {
            db,
            ks,
            catalog,
            pipeline,
            ddl: Mutex::new(()),
            key_locks,
            lock_hasher: Default::default(),
            durability,
        })
    }

    fn stripe(&self, key: &[u8]) -> usize {
        (self.lock_hasher.hash_one(key) as usize) & (KEY_LOCK_STRIPES - 1)
    }

    /// Locks the stripes of the given item keys, in stripe order (no deadlock between writers
    /// locking overlapping sets).
    pub(crate) fn lock_keys<'a>(&'a self, keys: &[&[u8]]) -> Vec<MutexGuard<'a, ()>> {
        let mut stripes: Vec<usize> = keys.iter().map(|k| self.stripe(k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .filter_map(|i| self.key_locks.get(i))
            .map(|m| m.lock())
            .collect()
    }

    /// Index entries (projected items) whose keys lie in `range`, in key order or reverse.
    pub(crate) fn index_items_in(
        &self,
        range: keys::KeyRange,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Item>> + '_> {
        let iter = self.ks.indexes.range((range.lower, range.upper));
        let entries: Box<dyn Iterator<Item = fjall::Guard>> = if reverse {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        Box::new(entries.map(|guard| {
            let bytes = guard.value()?;
            codec::Reader::new(&bytes).item()
        }))
    }

    /// Live items whose storage keys lie in `range`, in key order or reverse, read from the
    /// iterator's own snapshot (streamed, never loaded whole); tombstones are skipped.
    pub(crate) fn items_in(
        &self,
        range: keys::KeyRange,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Item>> + '_> {
        let iter = self.ks.items.range((range.lower, range.upper));
        let cells: Box<dyn Iterator<Item = fjall::Guard>> = if reverse {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        Box::new(cells.filter_map(|guard| match guard.value() {
            Ok(bytes) => codec::decode_cell_item(&bytes).transpose(),
            Err(e) => Some(Err(e.into())),
        }))
    }

    /// The live item at `key` (`None` when absent or a tombstone).
    pub(crate) fn read_item(&self, key: &[u8]) -> Result<Option<Item>> {
        match self.ks.items.get(key)? {
            Some(bytes) => codec::decode_cell_item(&bytes),
            None => Ok(None),
        }
    }

    /// A consistent view of every item as of now, for reads that must agree with each other.
    pub(crate) fn snapshot(&self) -> fjall::Snapshot {
        self.db.snapshot()
    }

    /// The live item at `key` as of `snapshot`.
    pub(crate) fn read_item_at(
        &self,
        snapshot: &fjall::Snapshot,
        key: &[u8],
    ) -> Result<Option<Item>> {
        use fjall::Readable;
        match snapshot.get(&self.ks.items, key)? {
            Some(bytes) => codec::decode_cell_item(&bytes),
            None => Ok(None),
        }
    }

    pub(crate) fn commit(&self, mutations: &[Mutation]) -> Result<ChangeSeq> {
        self.pipeline.commit(&self.db, &self.ks, mutations)
    }

    pub(crate) fn table(&self, name: &str) -> Option<Arc<TableEntry>> {
        self.catalog.tables.read().get(name).cloned()
    }

    pub(crate) fn table_stats(&self, id: u64) -> TableStats {
        self.pipeline
            .sequencer
            .lock()
            .stats
            .get(&id)
            .copied()
            .unwrap_or_default()
    }

    pub(crate) fn next_table_id(&self) -> Result<u64> {
        let stored = self.ks.catalog.get(NEXT_TABLE_ID_KEY)?;
        Ok(stored
            .and_then(|v| <[u8; 8]>::try_from(&*v).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    /// Writes catalog changes in one batch, durable before returning in `sync` mode.
    pub(crate) fn write_catalog(
        &self,
        puts: &[(Vec<u8>, Vec<u8>)],
        removes: &[Vec<u8>],
    ) -> Result<()> {
        let mut batch = self.db.batch();
        for (k, v) in puts {
            batch.insert(&self.ks.catalog, k.as_slice(), v.as_slice());
        }
        for k in removes {
            batch.remove(&self.ks.catalog, k.as_slice());
        }
        if self.durability == Durability::Sync {
            batch = batch.durability(Some(PersistMode::SyncData));
        }
        batch.commit()?;
        Ok(())
    }

    /// Removes every stored item and index entry of a dropped table, in bounded batches.
    pub(crate) fn purge_table_items(&self, table_id: u64, index_ids: &[u64]) -> Result<()> {
        for &index_id in index_ids {
            self.purge_index(index_id)?;
        }
        self.purge_prefix(&self.ks.items, &keys::table_prefix(table_id))?;
        let mut batch = self.db.batch();
        batch.remove(&self.ks.stats, table_id.to_be_bytes());
        batch.commit()?;
        Ok(())
    }

    /// Writes the entries of every item of `table` into a new index, in chunks.
    ///
    /// IMPORTANT: a chunk's items are read and their entries committed under their key locks,
    /// so a concurrent write (which maintains the index itself) is never overwritten by a
    /// stale entry; entries a write already made are skipped, so the statistics count each
    /// entry once, also when a backfill resumes after a restart. Each chunk commits its
    /// entries and the index statistics in one batch, under the sequencer lock like the commit
    /// path, so the persisted statistics never go backwards.
    pub(crate) fn backfill_index(
        &self,
        table: &TableEntry,
        index: &index::IndexInfo,
    ) -> Result<u64> {
        let prefix = keys::table_prefix(table.id);
        let mut indexed = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut range = keys::KeyRange::prefix(&prefix);
            if let Some(key) = after.take() {
                range.resume_after(key, true);
            }
            let chunk: Vec<Vec<u8>> = self
                .ks
                .items
                .range((range.lower, range.upper))
                .take(1024)
                .map(|g| g.key().map(|k| k.to_vec()))
                .collect::<fjall::Result<_>>()?;
            let Some(last) = chunk.last().cloned() else {
                break;
            };
            let chunk_keys: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            let _locks = self.lock_keys(&chunk_keys);
            let mut added = TableStats::default();
            let mut batch = self.db.batch();
            for key in &chunk {
                let Some(item) = self.read_item(key)? else {
                    continue;
                };
                let Some(entry_key) = index.entry_key(&table.shape, &item) else {
                    continue;
                };
                if self.ks.indexes.contains_key(&entry_key)? {
                    continue;
                }
                let projected = index.project(&table.shape, &item);
                let mut value = Vec::with_capacity(64);
                codec::put_item(&mut value, &projected);
                batch.insert(&self.ks.indexes, entry_key, value);
                added.items += 1;
                added.bytes += item_size(&projected) as i64;
            }
            {
                let mut sequencer = self.pipeline.sequencer.lock();
                let stats = sequencer.stats.entry(index.id).or_default();
                stats.items += added.items;
                stats.bytes += added.bytes;
                batch.insert(&self.ks.stats, index.id.to_be_bytes(), stats.encode());
                batch.commit()?;
            }
            indexed += added.items as u64;
            after = Some(last);
        }
        if self.durability == Durability::Sync {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(indexed)
    }

    /// Removes every entry and the statistics of an index.
    pub(crate) fn purge_index(&self, index_id: u64) -> Result<()> {
        self.purge_prefix(&self.ks.indexes, &index_id.to_be_bytes())?;
        self.pipeline.sequencer.lock().stats.remove(&index_id);
        self.ks.stats.remove(index_id.to_be_bytes())?;
        Ok(())
    }

    /// Removes every key of `keyspace` that starts with `prefix`, in bounded batches.
    pub(crate) fn purge_prefix(&self, keyspace: &Keyspace, prefix: &[u8]) -> Result<()> {
        loop {
            let keys: Vec<_> = keyspace
                .prefix(prefix)
                .take(10_000)
                .map(|g| g.key())
                .collect::<fjall::Result<_>>()?;
            if keys.is_empty() {
                break;
            }
            let mut batch = self.db.batch();
            for key in keys {
                batch.remove(keyspace, key);
            }
            batch.commit()?;
        }
        Ok(())
    }

    /// Change records from `from` (inclusive) up to the durable watermark, at most `limit`.
    pub(crate) fn read_changes(&self, from: ChangeSeq, limit: usize) -> Result<Vec<ChangeRecord>> {
        let durable = self.pipeline.durable().durable_seq();
        if from > durable {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for guard in self
            .ks
            .changes
            .range(from.to_be_bytes()..=durable.to_be_bytes())
            .take(limit)
        {
            let (key, value) = guard.into_inner()?;
            let seq = <[u8; 8]>::try_from(&*key)
                .map(u64::from_be_bytes)
                .map_err(|_| Error::Internal("corrupt change log key".into()))?;
            out.push(codec::decode_record(seq, &value)?);
        }
        Ok(out)
    }

    pub(crate) fn persist(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.pipeline.shutdown();
    }
}
