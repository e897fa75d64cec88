//! tidemark-storage: the only crate that knows fjall. tidemark-core depends on this crate and
//! not on fjall, so fjall stays behind the typed API below (keyspace handles are private to
//! this crate); fjall's errors leave it as tidemark-model's opaque [`StorageFailure`].
//!
//! One fjall database per node, with these keyspaces:
//! - `items`: `table id | pk | sk` → item cell (item + LWW stamp, or a stamped tombstone);
//! - `changes`: change sequence (u64 BE) → change record: the node-wide change log;
//! - `table_changes`: `table id | sequence` → the key's partition hash byte, the change's
//!   cause and the table's running count of changes: each table's slice of the log (streams
//!   split it into shards by that byte; filters read the cause without the record);
//! - `catalog`: table definitions (`table/`), stream descriptors (`stream/`), retention holds
//!   (`hold/`), backup records (`backup/`), export and import records (`doc/<kind>/<id>`), and
//!   the `meta/` keys (the next table id, the formats of `table_changes` and `collections`);
//! - `stats`: `table id` → exact item count and bytes;
//! - `indexes`: secondary-index entries;
//! - `ttl`: `table id | expiry second | item key` → nothing (see [`ttl_index`]);
//! - `collections`: `table id | partition key` → bytes of that item collection, for tables
//!   with local secondary indexes (see [`collections`]);
//! - `backup.<id hex>.<attempt hex>`: one per backup, its items (see [`image`]).
//!
//! Every item write is one atomic batch across `items`, `changes`, `table_changes`, `indexes`,
//! `ttl`, `stats` and `collections` (see [`commit`]). Read-check-write atomicity comes from
//! per-key locks (`key_locks.rs`: by the key's 64-bit hash) held around the read of the old
//! item and the commit.
#![deny(missing_docs)]

pub mod catalog;
pub mod codec;
pub mod collections;
pub mod commit;
pub mod group_commit;
pub mod history;
pub mod holds;
pub mod image;
pub mod index;
mod journal;
mod key_locks;
pub mod keys;
pub mod log;
pub mod positions;
pub mod ttl_index;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use fjall::config::PartitioningPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::Mutex;

use catalog::{Catalog, NEXT_TABLE_ID_KEY, TableEntry};
use commit::{CommitPipeline, Mutation, Sequencer, TableStats};
use group_commit::Durability;
use holds::Holds;
use key_locks::{KeyGuard, KeyLocks};
use log::AtomicChangeSeq;
use tidemark_model::TableId;
use tidemark_model::changes::ChangeSeq;
use tidemark_model::clock::Clock;
use tidemark_model::model::{Item, TableDefinition, item_size};
use tidemark_model::stamp::HybridClock;
use tidemark_model::stream_log::StreamInfo;
use tidemark_model::{Error, Halt, Result, StorageFailure};

/// fjall's results as the store's: a fjall error becomes [`Error::Storage`], fatal when fjall
/// is poisoned. (The orphan rule forbids `From<fjall::Error>` for a type of tidemark-model.)
pub(crate) trait OrFailure<T> {
    /// The value, or fjall's error as a storage failure.
    fn or_failure(self) -> Result<T>;
}

impl<T> OrFailure<T> for fjall::Result<T> {
    fn or_failure(self) -> Result<T> {
        self.map_err(failure)
    }
}

/// fjall's error as a storage failure.
pub(crate) fn failure(error: fjall::Error) -> Error {
    let fatal = matches!(error, fjall::Error::Poisoned);
    Error::Storage(StorageFailure::new(error, fatal))
}

const MIB: u64 = 1024 * 1024;
/// Most journal bytes kept before fjall flushes memtables to let old journals go.
const MAX_JOURNAL_BYTES: u64 = 128 * MIB;

/// What is stored for one item key: the live item, a tombstone (`item: None` with a stamp),
/// or nothing at all (no stamp: never written, or its tombstone was trimmed). Reads that
/// decide a write see this (re-exported as `tidemark_core::write::Cell`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// The live item, or `None` for a tombstone or an empty cell.
    pub item: Option<Item>,
    /// The stamp of the write that left the cell, if any write did.
    pub stamp: Option<tidemark_model::stamp::Stamp>,
}

/// Handles to every keyspace: private to storage (its submodules see them), so every other
/// module goes through storage's typed functions.
#[derive(Clone)]
pub(crate) struct Keyspaces {
    items: Keyspace,
    changes: Keyspace,
    table_changes: Keyspace,
    catalog: Keyspace,
    stats: Keyspace,
    indexes: Keyspace,
    ttl: Keyspace,
    collections: Keyspace,
    /// Per log partition of a cluster region, the next offset to apply.
    positions: Keyspace,
}

/// The node's storage: database, keyspaces, catalog, key locks and the commit path.
pub struct Storage {
    db: Database,
    ks: Keyspaces,
    /// The live tables and streams, as the catalog keyspace holds them.
    pub catalog: Catalog,
    /// The commit path: sequencer, batch commit and group commit.
    pub pipeline: CommitPipeline,
    /// Serialises table creation and deletion.
    pub ddl: Mutex<()>,
    /// The oldest change sequence still in the log.
    pub oldest_retained: AtomicChangeSeq,
    /// Named retention holds: trimming stops below the lowest.
    pub holds: Holds,
    /// Per table, the first change not trimmed, once some of its records were
    /// ([`Storage::oldest_retained_of`]).
    trimmed_to: Mutex<HashMap<TableId, ChangeSeq>>,
    key_locks: KeyLocks,
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
    /// Opens (or creates) the database in `dir`, recovers the catalog, the holds and the
    /// commit sequencer, and starts the commit path.
    pub fn open(
        dir: &Path,
        (durability, background_sync): (Durability, std::time::Duration),
        region: String,
        cache_bytes: u64,
        collection_limit: u64,
        clock: Arc<dyn Clock>,
        halt: Halt,
    ) -> Result<Storage> {
        // Memory is the block cache plus the memtables, which are sized by role: items are
        // read back often, the change log is read sequentially and mostly from its tail, its
        // per-table index is tiny. The journal cap makes fjall flush before journals pile up.
        //
        // IMPORTANT for write latency: every flush and compaction installs its new table set
        // under the keyspace's version lock with four fsyncs, and every commit waits for that
        // lock (so does every commit behind it in the journal). Keyspaces written on every
        // commit (`stats`, `table_changes`) hold only a few bytes per write but would still
        // flush twice a second with small memtables, so they get room for many seconds of
        // writes. Sizes apply to keyspaces a database creates; fjall keeps them after that.
        let db = Database::builder(dir)
            .cache_size(cache_bytes)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()
            .or_failure()?;
        // Below level 1, a table's index and bloom filter are partitioned: its top-level index
        // stays in memory and a lookup reads one small partition of each. Unpartitioned, a
        // lookup that misses the cache reads, checksums and parses the table's whole index
        // block (hundreds of KB for a 64 MB table); at 10M items that halved GetItem.
        let options = |memtable_bytes: u64| {
            move || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(memtable_bytes)
                    .index_block_partitioning_policy(PartitioningPolicy::new([false, false, true]))
                    .filter_block_partitioning_policy(PartitioningPolicy::new([false, true]))
            }
        };
        let ks = Keyspaces {
            items: db.keyspace("items", options(32 * MIB)).or_failure()?,
            changes: db.keyspace("changes", options(16 * MIB)).or_failure()?,
            table_changes: db
                .keyspace("table_changes", options(16 * MIB))
                .or_failure()?,
            catalog: db.keyspace("catalog", options(MIB)).or_failure()?,
            stats: db.keyspace("stats", options(16 * MIB)).or_failure()?,
            indexes: db.keyspace("indexes", options(16 * MIB)).or_failure()?,
            ttl: db.keyspace("ttl", options(4 * MIB)).or_failure()?,
            collections: db.keyspace("collections", options(4 * MIB)).or_failure()?,
            positions: db.keyspace("positions", options(4 * MIB)).or_failure()?,
        };

        let catalog = Catalog::default();
        for guard in ks.catalog.prefix(b"table/") {
            let (_, value) = guard.into_inner().or_failure()?;
            let definition: TableDefinition = serde_json::from_slice(&value)
                .map_err(|e| Error::Corrupt(format!("a table definition: {e}")))?;
            let shape = definition.key_shape()?;
            let entry = Arc::new(TableEntry::new(definition, shape)?);
            catalog.tables.write().insert(entry.name.clone(), entry);
        }
        for guard in ks.catalog.prefix(b"stream/") {
            let (_, value) = guard.into_inner().or_failure()?;
            let stream: StreamInfo = serde_json::from_slice(&value)
                .map_err(|e| Error::Corrupt(format!("a stream descriptor: {e}")))?;
            catalog
                .streams
                .write()
                .insert((stream.table_id, stream.label.clone()), Arc::new(stream));
        }
        let holds = Holds::default();
        for guard in ks.catalog.prefix(b"hold/") {
            let (key, value) = guard.into_inner().or_failure()?;
            let hold = holds::decode_hold(&key, &value)?;
            holds.by_name.lock().insert(hold.name.clone(), hold);
        }
        let mut trimmed_to = HashMap::new();
        for guard in ks.catalog.prefix(history::TRIMMED_PREFIX.as_bytes()) {
            let (key, value) = guard.into_inner().or_failure()?;
            let table_id =
                table_id_of(key.get(history::TRIMMED_PREFIX.len()..).unwrap_or_default())?;
            trimmed_to.insert(table_id, seq_of(&value)?);
        }
        let mut stats = HashMap::new();
        for guard in ks.stats.iter() {
            let (key, value) = guard.into_inner().or_failure()?;
            stats.insert(table_id_of(&key)?, TableStats::decode(&value)?);
        }

        // The clock restarts after the last record's commit clock: commit clocks grow with
        // the sequence and each is past the stamp its commit applied, local or replicated.
        let (last_seq, last_clock) = match ks.changes.last_key_value() {
            Some(guard) => {
                let (key, value) = guard.into_inner().or_failure()?;
                let header = codec::decode_record_header(&value)?;
                (seq_of(&key)?, header.commit_clock)
            }
            None => (ChangeSeq::ZERO, Default::default()),
        };
        let oldest_retained = match ks.changes.first_key_value() {
            Some(guard) => seq_of(&guard.key().or_failure()?)?,
            None => last_seq.next(),
        };
        log::migrate_table_changes(&db, &ks)?;
        let table_ids: Vec<TableId> = catalog.tables.read().values().map(|t| t.id).collect();
        let sequencer = Sequencer {
            next_seq: last_seq.next(),
            hlc: HybridClock::starting_after(last_clock),
            stats,
            ordinals: log::last_ordinals(&ks, table_ids.into_iter())?,
            collection_limit,
        };
        let pipeline = CommitPipeline::start(
            &db,
            dir,
            (durability, background_sync),
            sequencer,
            region,
            clock,
            halt,
        )?;
        let storage = Storage {
            db,
            ks,
            catalog,
            pipeline,
            ddl: Mutex::new(()),
            oldest_retained: AtomicChangeSeq::new(oldest_retained),
            holds,
            trimmed_to: Mutex::new(trimmed_to),
            key_locks: KeyLocks::new(),
            durability,
        };
        storage.migrate_collections()?;
        Ok(storage)
    }

    /// Locks the given item keys until the guard is dropped ([`KeyLocks`]).
    pub fn lock_keys(&self, keys: &[&[u8]]) -> KeyGuard<'_> {
        self.key_locks.lock(keys)
    }

    /// Index entries (projected items) whose keys lie in `range`, in key order or reverse.
    pub fn index_items_in(
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
            let bytes = guard.value().or_failure()?;
            codec::Reader::new(&bytes).item()
        }))
    }

    /// Live items whose storage keys lie in `range`, in key order or reverse, read from the
    /// iterator's own snapshot (streamed, never loaded whole); tombstones are skipped.
    pub fn items_in(
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
            Err(e) => Some(Err(failure(e))),
        }))
    }

    /// The live item at `key` (`None` when absent or a tombstone).
    pub fn read_item(&self, key: &[u8]) -> Result<Option<Item>> {
        match self.ks.items.get(key).or_failure()? {
            Some(bytes) => codec::decode_cell_item(&bytes),
            None => Ok(None),
        }
    }

    /// What is stored at `key`: the live item or a tombstone, with the stamp of the write that
    /// left it; an empty cell when nothing was ever written there (or its tombstone trimmed).
    pub fn read_cell(&self, key: &[u8]) -> Result<Cell> {
        match self.ks.items.get(key).or_failure()? {
            Some(bytes) => {
                let cell = codec::decode_cell(&bytes)?;
                Ok(Cell {
                    item: cell.item,
                    stamp: Some(cell.stamp),
                })
            }
            None => Ok(Cell::default()),
        }
    }

    /// A consistent view of every item as of now, for reads that must agree with each other.
    pub fn snapshot(&self) -> ItemsSnapshot {
        ItemsSnapshot {
            snapshot: self.db.snapshot(),
            items: self.ks.items.clone(),
        }
    }

    /// Commits `mutations` atomically; [`Storage::wait_durable`] waits for them to be
    /// durable.
    pub fn commit(&self, mutations: &[Mutation]) -> Result<ChangeSeq> {
        self.pipeline.commit(&self.db, &self.ks, mutations)
    }

    /// Waits until the change `seq` is durable in the node's mode.
    pub fn wait_durable(&self, seq: ChangeSeq) -> Result<()> {
        self.pipeline.durable().wait_durable(seq)
    }

    /// The live table `name`, if any.
    pub fn table(&self, name: &str) -> Option<Arc<TableEntry>> {
        self.catalog.tables.read().get(name).cloned()
    }

    /// Every live table, as the catalog holds them now.
    pub fn live_tables(&self) -> Vec<Arc<TableEntry>> {
        self.catalog.tables.read().values().cloned().collect()
    }

    /// The exact item count and bytes of table `id`.
    pub fn table_stats(&self, id: TableId) -> TableStats {
        self.pipeline
            .sequencer
            .lock()
            .stats
            .get(&id)
            .copied()
            .unwrap_or_default()
    }

    /// The id the next created table gets.
    pub fn next_table_id(&self) -> Result<TableId> {
        match self.ks.catalog.get(NEXT_TABLE_ID_KEY).or_failure()? {
            Some(stored) => table_id_of(&stored),
            None => Ok(TableId::new(1)),
        }
    }

    /// Writes catalog changes in one batch, durable before returning in `sync` mode.
    pub fn write_catalog(&self, puts: &[(Vec<u8>, Vec<u8>)], removes: &[Vec<u8>]) -> Result<()> {
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
        batch.commit().or_failure()?;
        Ok(())
    }

    /// Takes a dropped table out of the catalog in memory and removes its items, index
    /// entries and statistics.
    pub fn forget_table(&self, entry: &TableEntry) -> Result<()> {
        self.catalog.tables.write().remove(&entry.name);
        let index_ids: Vec<TableId> = entry.indexes().iter().map(|i| i.id).collect();
        self.purge_table_items(entry.id, &index_ids)?;
        self.pipeline.sequencer.lock().stats.remove(&entry.id);
        Ok(())
    }

    /// The values of the catalog keys that start with `prefix`, in key order.
    pub fn catalog_values(&self, prefix: &[u8]) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.ks
            .catalog
            .prefix(prefix)
            .map(|guard| Ok(guard.value().or_failure()?.to_vec()))
    }

    /// Bytes the database occupies on disk.
    pub fn disk_space(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// Bytes on disk of each keyspace (items, the change log and its per-table index,
    /// secondary indexes), after writing what is still in memory to disk.
    pub fn disk_usage(&self) -> Result<Vec<(&'static str, u64)>> {
        let ks = &self.ks;
        let mut usage = Vec::new();
        for (name, keyspace) in [
            ("items", &ks.items),
            ("changes", &ks.changes),
            ("table_changes", &ks.table_changes),
            ("indexes", &ks.indexes),
        ] {
            keyspace.rotate_memtable_and_wait().or_failure()?;
            usage.push((name, keyspace.disk_space()));
        }
        Ok(usage)
    }

    /// Writes one catalog entry without waiting for it to be durable (what may be lost in a
    /// crash is only the move of a retention hold, which then keeps more history).
    pub fn put_catalog_buffered(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.ks.catalog.insert(key, value).or_failure()?;
        Ok(())
    }

    /// Removes every stored item and index entry of a dropped table, in bounded batches.
    pub(crate) fn purge_table_items(&self, table_id: TableId, index_ids: &[TableId]) -> Result<()> {
        for &index_id in index_ids {
            self.purge_index(index_id)?;
        }
        self.purge_prefix(&self.ks.items, &keys::table_prefix(table_id))?;
        self.purge_prefix(&self.ks.ttl, &keys::table_prefix(table_id))?;
        self.purge_prefix(&self.ks.collections, &keys::table_prefix(table_id))?;
        let mut batch = self.db.batch();
        batch.remove(&self.ks.stats, table_id.to_be_bytes());
        batch.commit().or_failure()?;
        Ok(())
    }

    /// Walks every stored item of a table in chunks of keys, calling `f` with each chunk while
    /// holding the chunk's key locks, so what `f` reads and commits cannot race a write to
    /// those items (writes maintain derived entries themselves). Stops early when `f` returns
    /// false; at the end makes everything written durable in `sync` mode.
    fn for_each_locked_chunk(
        &self,
        table_id: TableId,
        mut f: impl FnMut(&[Vec<u8>]) -> Result<bool>,
    ) -> Result<()> {
        let prefix = keys::table_prefix(table_id);
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
                .collect::<fjall::Result<_>>()
                .or_failure()?;
            let Some(last) = chunk.last().cloned() else {
                break;
            };
            let chunk_keys: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            let _locks = self.lock_keys(&chunk_keys);
            if !f(&chunk)? {
                break;
            }
            after = Some(last);
        }
        self.sync_if_durable()
    }

    /// Writes the entries of every item of `table` into a new index, in chunks.
    ///
    /// IMPORTANT: a chunk's items are read and their entries committed under their key locks,
    /// so a concurrent write (which maintains the index itself) is never overwritten by a
    /// stale entry; entries a write already made are skipped, so the statistics count each
    /// entry once, also when a backfill resumes after a restart. Each chunk commits its
    /// entries and the index statistics in one batch, under the sequencer lock like the commit
    /// path, so the persisted statistics never go backwards.
    pub fn backfill_index(&self, table: &TableEntry, index: &index::IndexInfo) -> Result<u64> {
        let mut indexed = 0;
        self.for_each_locked_chunk(table.id, |chunk| {
            let mut added = TableStats::default();
            let mut batch = self.db.batch();
            for key in chunk {
                let Some(item) = self.read_item(key)? else {
                    continue;
                };
                let Some(entry_key) = index.entry_key(&table.shape, &item) else {
                    continue;
                };
                if self.ks.indexes.contains_key(&entry_key).or_failure()? {
                    continue;
                }
                let projected = index.project(&table.shape, &item);
                let mut value = Vec::with_capacity(64);
                codec::put_item(&mut value, &projected);
                batch.insert(&self.ks.indexes, entry_key, value);
                added.items += 1;
                added.bytes += item_size(&projected) as i64;
            }
            let mut sequencer = self.pipeline.sequencer.lock();
            let stats = sequencer.stats.entry(index.id).or_default();
            stats.items += added.items;
            stats.bytes += added.bytes;
            batch.insert(&self.ks.stats, index.id.to_be_bytes(), stats.encode());
            batch.commit().or_failure()?;
            indexed += added.items as u64;
            metrics::gauge!("tidemark_backfill_items", "table" => table.name.clone(), "index" => index.name.clone())
                .set(indexed as f64);
            Ok(true)
        })?;
        Ok(indexed)
    }

    /// Indexes the TTL values of every item of `table` (after TTL was enabled), in chunks
    /// under the items' key locks; entries are keyed by value, so indexing twice is harmless.
    /// Stops if TTL is disabled meanwhile.
    pub fn backfill_ttl(&self, table: &TableEntry) -> Result<()> {
        self.for_each_locked_chunk(table.id, |chunk| {
            let Some(attribute) = table.ttl_attribute() else {
                return Ok(false);
            };
            let mut batch = self.db.batch();
            for key in chunk {
                let Some(item) = self.read_item(key)? else {
                    continue;
                };
                if let Some(second) = ttl_index::expiry_second(&item, &attribute) {
                    batch.insert(&self.ks.ttl, ttl_index::ttl_key(table.id, second, key), []);
                }
            }
            batch.commit().or_failure()?;
            Ok(true)
        })
    }

    /// Removes every entry and the statistics of an index.
    pub fn purge_index(&self, index_id: TableId) -> Result<()> {
        self.purge_prefix(&self.ks.indexes, &index_id.to_be_bytes())?;
        self.pipeline.sequencer.lock().stats.remove(&index_id);
        self.ks.stats.remove(index_id.to_be_bytes()).or_failure()?;
        Ok(())
    }

    /// Removes every key of `keyspace` that starts with `prefix`, in bounded batches.
    fn purge_prefix(&self, keyspace: &Keyspace, prefix: &[u8]) -> Result<()> {
        loop {
            let keys: Vec<_> = keyspace
                .prefix(prefix)
                .take(10_000)
                .map(|g| g.key())
                .collect::<fjall::Result<_>>()
                .or_failure()?;
            if keys.is_empty() {
                break;
            }
            let mut batch = self.db.batch();
            for key in keys {
                batch.remove(keyspace, key);
            }
            batch.commit().or_failure()?;
        }
        Ok(())
    }

    /// The next change sequence, read under the sequencer.
    pub fn next_seq(&self) -> ChangeSeq {
        self.pipeline.sequencer.lock().next_seq
    }

    /// The last clock reading this node issued, read under the sequencer: every write of
    /// its own stamped at or before it is committed (a stamp is issued and its batch
    /// committed in one critical section).
    pub fn last_clock(&self) -> tidemark_model::HlcTimestamp {
        self.pipeline.sequencer.lock().hlc.last()
    }

    /// Runs `f` with the next change sequence while no commit can take it, so that what `f`
    /// records (a stream boundary) splits the log exactly: every later commit gets a sequence
    /// at or above it.
    pub fn with_sequence_boundary<T>(&self, f: impl FnOnce(ChangeSeq) -> Result<T>) -> Result<T> {
        let sequencer = self.pipeline.sequencer.lock();
        f(sequencer.next_seq)
    }

    /// Writes stream descriptors (durably in `sync` mode) and then installs them in memory.
    pub fn save_streams(
        &self,
        changed: Vec<StreamInfo>,
        removed: &[(TableId, String)],
    ) -> Result<()> {
        let puts = changed
            .iter()
            .map(stream_catalog_entry)
            .collect::<Result<Vec<_>>>()?;
        let removes: Vec<Vec<u8>> = removed.iter().map(|(id, l)| stream_key(*id, l)).collect();
        self.write_catalog(&puts, &removes)?;
        self.install_streams(changed, removed);
        Ok(())
    }

    /// Installs stream descriptors already written to the catalog.
    pub fn install_streams(&self, changed: Vec<StreamInfo>, removed: &[(TableId, String)]) {
        let mut streams = self.catalog.streams.write();
        for key in removed {
            streams.remove(key);
        }
        for stream in changed {
            streams.insert((stream.table_id, stream.label.clone()), Arc::new(stream));
        }
    }

    /// Syncs everything written so far to disk.
    pub fn persist(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll).or_failure()?;
        Ok(())
    }
}

/// A consistent view of every item cell as of when it was taken ([`Storage::snapshot`]).
pub struct ItemsSnapshot {
    snapshot: fjall::Snapshot,
    items: Keyspace,
}

impl std::fmt::Debug for ItemsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemsSnapshot").finish_non_exhaustive()
    }
}

impl ItemsSnapshot {
    /// The live item at `key` (`None` when absent or a tombstone).
    pub fn item(&self, key: &[u8]) -> Result<Option<Item>> {
        use fjall::Readable;
        match self.snapshot.get(&self.items, key).or_failure()? {
            Some(bytes) => codec::decode_cell_item(&bytes),
            None => Ok(None),
        }
    }

    /// The cells (live items and tombstones) whose storage keys lie in `range`, in key
    /// order, with their keys.
    pub fn cells_in(
        &self,
        range: keys::KeyRange,
    ) -> impl Iterator<Item = Result<(Vec<u8>, codec::ItemCell)>> + '_ {
        use fjall::Readable;
        self.snapshot
            .range(&self.items, (range.lower, range.upper))
            .map(|guard| {
                let (key, bytes) = guard.into_inner().or_failure()?;
                Ok((key.to_vec(), codec::decode_cell(&bytes)?))
            })
    }
}

impl ItemsSnapshot {
    /// The stamps of the cells whose storage keys lie in `range`, in key order, with their
    /// keys and whether each holds a live item; the items themselves are not decoded.
    pub fn cell_stamps_in(
        &self,
        range: keys::KeyRange,
    ) -> impl Iterator<Item = Result<(Vec<u8>, tidemark_model::stamp::Stamp, bool)>> + '_ {
        use fjall::Readable;
        self.snapshot
            .range(&self.items, (range.lower, range.upper))
            .map(|guard| {
                let (key, bytes) = guard.into_inner().or_failure()?;
                let (stamp, live) = codec::decode_cell_stamp(&bytes)?;
                Ok((key.to_vec(), stamp, live))
            })
    }

    /// The cell at `key` (live item or tombstone), if any.
    pub fn cell(&self, key: &[u8]) -> Result<Option<codec::ItemCell>> {
        use fjall::Readable;
        match self.snapshot.get(&self.items, key).or_failure()? {
            Some(bytes) => codec::decode_cell(&bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// The catalog entry of a stream descriptor.
pub fn stream_catalog_entry(stream: &StreamInfo) -> Result<(Vec<u8>, Vec<u8>)> {
    let json = serde_json::to_vec(stream).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((stream_key(stream.table_id, &stream.label), json))
}

/// A number (an id or a count) stored as 8 bytes big-endian.
pub(crate) fn u64_of(key: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Corrupt(format!("expected 8 bytes, found {}", key.len())))
}

/// A table (or index) id stored as 8 bytes big-endian.
pub(crate) fn table_id_of(key: &[u8]) -> Result<TableId> {
    u64_of(key).map(TableId::new)
}

/// A change sequence stored as 8 bytes big-endian.
pub(crate) fn seq_of(key: &[u8]) -> Result<ChangeSeq> {
    u64_of(key).map(ChangeSeq::new)
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.pipeline.shutdown();
    }
}

/// A stream's catalog key: `stream/` + table id (hex) + `/` + label.
fn stream_key(table_id: TableId, label: &str) -> Vec<u8> {
    format!("stream/{table_id:016x}/{label}").into_bytes()
}
