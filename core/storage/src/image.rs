//! Tables as they were at a past change sequence, backup copies of them, and the bulk load
//! that builds a restored table.
//!
//! A table as of sequence `at` is read from one fjall snapshot: every item the snapshot
//! holds, except that an item changed after `at` takes the old image of its FIRST later
//! change (absent: the item did not exist at `at`). Every change record carries its old
//! image, so no base copy is needed: restoring to a point in time costs a walk of the table
//! plus a walk of its changes since that point, which a retention hold keeps. The changes are
//! read in parts on several threads when there are many.
//!
//! Backups are copies in their own keyspace (`backup.<id hex>.<attempt hex>`), written by fjall's ingestion
//! (sorted runs straight to disk, no journal), so they outlive the table and the history, and
//! deleting one drops its keyspace.
//!
//! A restored table is built by [`Storage::load_table`], which writes item cells, index
//! entries and statistics but no change records: the table is new, nobody can read or write
//! it until it is built (it is CREATING), and its history starts when it becomes ACTIVE.

use super::collections::{collection_bytes, collection_key, encode_size, has_local_index};
use std::collections::BTreeMap;

use fjall::{Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use super::catalog::TableEntry;
use super::codec;
use super::commit::TableStats;
use super::group_commit::Durability;
use super::keys::{item_key, table_change_key, table_prefix};
use super::{Storage, seq_of};
use crate::OrFailure;
use tidemark_model::TableId;
use tidemark_model::changes::ChangeSeq;
use tidemark_model::model::{Item, KeyShape, item_size};
use tidemark_model::{Error, Result};

/// One item of a table image or a backup: its storage key without the table prefix (the
/// encoded partition and sort key), and the item.
pub type ImageItem = (Vec<u8>, Item);

/// Fewest changes worth a thread of their own when a restore reads what it must undo.
const UNDO_PART_MIN: usize = 20_000;

/// Items per batch of a table being built, and bytes of items.
const LOAD_BATCH: usize = 5_000;
const LOAD_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// `items` in the batches a table being built is written in, bounded by count and by bytes.
/// An error ends the batches: it is the last thing returned.
pub fn load_batches(
    items: impl Iterator<Item = Result<ImageItem>>,
) -> impl Iterator<Item = Result<Vec<ImageItem>>> {
    let mut items = items.fuse();
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let (mut batch, mut bytes) = (Vec::with_capacity(LOAD_BATCH), 0);
        for item in items.by_ref() {
            let (key, item) = match item {
                Ok(item) => item,
                Err(e) => {
                    failed = true;
                    return Some(Err(e));
                }
            };
            bytes += key.len() + item_size(&item);
            batch.push((key, item));
            if batch.len() >= LOAD_BATCH || bytes >= LOAD_BATCH_BYTES {
                break;
            }
        }
        (!batch.is_empty()).then_some(Ok(batch))
    })
}

/// The live items of one table as of a change sequence, in key order ([module docs](self)).
pub struct TableImage {
    items: fjall::Iter,
    undo: std::iter::Peekable<std::collections::btree_map::IntoIter<Vec<u8>, Option<Item>>>,
    /// The next stored cell (key and encoded cell), decoded only if it is taken.
    next_item: Option<(Vec<u8>, fjall::Slice)>,
    items_done: bool,
}

impl std::fmt::Debug for TableImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableImage")
            .field("undone", &self.undone())
            .finish_non_exhaustive()
    }
}

impl TableImage {
    /// How many keys take their image from the change log.
    pub fn undone(&self) -> usize {
        self.undo.len()
    }

    fn new(
        snapshot: &fjall::Snapshot,
        items: &Keyspace,
        table_id: TableId,
        undo: BTreeMap<Vec<u8>, Option<Item>>,
    ) -> TableImage {
        TableImage {
            items: snapshot.prefix(items, table_prefix(table_id)),
            undo: undo.into_iter().peekable(),
            next_item: None,
            items_done: false,
        }
    }

    fn load_next_item(&mut self) -> Result<()> {
        if self.next_item.is_some() || self.items_done {
            return Ok(());
        }
        match self.items.next() {
            Some(guard) => {
                let (key, value) = guard.into_inner().or_failure()?;
                self.next_item = Some((key.to_vec(), value));
            }
            None => self.items_done = true,
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Option<Item>)>> {
        self.load_next_item()?;
        let (take_undo, shadowed) = match (&self.next_item, self.undo.peek()) {
            (None, None) => return Ok(None),
            (Some(_), None) => (false, false),
            (None, Some(_)) => (true, false),
            (Some((item_key, _)), Some((undo_key, _))) => {
                (undo_key <= item_key, undo_key == item_key)
            }
        };
        if shadowed {
            // The item as stored now is replaced by what it was then.
            self.next_item = None;
        }
        Ok(match take_undo {
            true => self.undo.next(),
            false => match self.next_item.take() {
                Some((key, cell)) => Some((key, codec::decode_cell_item(&cell)?)),
                None => None,
            },
        })
    }
}

impl Iterator for TableImage {
    type Item = Result<ImageItem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some((_, None))) => continue,
                Ok(Some((key, Some(item)))) => {
                    let suffix = key.get(8..).map(<[u8]>::to_vec).unwrap_or_default();
                    return Some(Ok((suffix, item)));
                }
            }
        }
    }
}

/// One batch of a table being built: the cells to write, and the index entries and
/// statistics that go with them.
struct Load<'a> {
    storage: &'a Storage,
    table: &'a TableEntry,
    indexes: std::sync::Arc<Vec<super::index::IndexInfo>>,
    /// Every cell is stamped now, by this node.
    stamp: tidemark_model::stamp::Stamp,
    deltas: BTreeMap<TableId, TableStats>,
    /// Bytes added to each item collection (tables with local indexes only).
    collections: BTreeMap<Vec<u8>, i64>,
}

impl<'a> Load<'a> {
    fn new(storage: &'a Storage, table: &'a TableEntry) -> Result<Self> {
        Ok(Load {
            storage,
            table,
            indexes: table.indexes(),
            stamp: storage.pipeline.mint_stamp()?,
            deltas: BTreeMap::new(),
            collections: BTreeMap::new(),
        })
    }

    /// Puts the index entries of `items` in `batch` and returns their cells, by key.
    fn add(
        &mut self,
        items: &[ImageItem],
        batch: &mut fjall::OwnedWriteBatch,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let prefix = table_prefix(self.table.id);
        let mut cells = Vec::with_capacity(items.len());
        for (suffix, item) in items {
            cells.push((
                [prefix.as_slice(), suffix].concat(),
                codec::encode_cell(Some(item), &self.stamp),
            ));
            let delta = self.deltas.entry(self.table.id).or_default();
            delta.items += 1;
            delta.bytes += item_size(item) as i64;
            if has_local_index(&self.indexes)
                && let Some(key) = collection_key(self.table.id, &self.table.shape, item)
            {
                *self.collections.entry(key).or_default() +=
                    collection_bytes(&self.table.shape, &self.indexes, item);
            }
            for index in self.indexes.iter() {
                let Some(entry_key) = index.entry_key(&self.table.shape, item) else {
                    continue;
                };
                let projected = index.project(&self.table.shape, item);
                let mut value = Vec::with_capacity(64);
                codec::put_item(&mut value, &projected);
                batch.insert(&self.storage.ks.indexes, entry_key, value);
                let delta = self.deltas.entry(index.id).or_default();
                delta.items += 1;
                delta.bytes += item_size(&projected) as i64;
            }
        }
        cells
    }

    /// Commits `batch` with the statistics of what was added since the last commit, under
    /// the sequencer lock like the commit path, so persisted statistics never go backwards.
    fn commit(&mut self, mut batch: fjall::OwnedWriteBatch) -> Result<()> {
        let deltas = std::mem::take(&mut self.deltas);
        let mut sequencer = self.storage.pipeline.sequencer.lock();
        // Under the sequencer, like the commit path's updates of the same sizes.
        for (key, added) in std::mem::take(&mut self.collections) {
            let size = self.storage.collection_size(&key)? + added;
            batch.insert(&self.storage.ks.collections, key, encode_size(size));
        }
        for (id, delta) in &deltas {
            let stats = sequencer.stats.entry(*id).or_default();
            stats.items += delta.items;
            stats.bytes += delta.bytes;
            batch.insert(&self.storage.ks.stats, id.to_be_bytes(), stats.encode());
        }
        if let Err(e) = batch.commit() {
            for (id, delta) in &deltas {
                if let Some(stats) = sequencer.stats.get_mut(id) {
                    stats.items -= delta.items;
                    stats.bytes -= delta.bytes;
                }
            }
            return Err(crate::failure(e));
        }
        Ok(())
    }
}

impl Storage {
    /// The table `table_id` (of key shape `shape`) as of change sequence `at`.
    ///
    /// IMPORTANT: the caller holds the log from `at + 1` on (a retention hold), so every
    /// change after `at` is still there to be undone.
    ///
    /// # Errors
    /// Internal when the log after `at` was trimmed; storage failures; corrupt records.
    pub fn table_image(
        &self,
        table_id: TableId,
        shape: &KeyShape,
        at: ChangeSeq,
    ) -> Result<TableImage> {
        let snapshot = self.db.snapshot();
        if self.oldest_retained_of(table_id) > at.next() {
            return Err(Error::Internal(format!(
                "the history after change {at} is no longer kept"
            )));
        }
        let later =
            table_change_key(table_id, at.next())..=table_change_key(table_id, ChangeSeq::MAX);
        let seqs: Vec<ChangeSeq> = snapshot
            .range(&self.ks.table_changes, later)
            .map(|guard| seq_of(guard.key().or_failure()?.get(8..).unwrap_or_default()))
            .collect::<Result<_>>()?;
        // The changes are read in parts on threads of their own; where two parts undo the
        // same key, the earlier part's image wins (`append` keeps the appended map's values).
        let threads = match seqs.len() >= UNDO_PART_MIN * 2 {
            true => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            false => 1,
        };
        let part_len = seqs.len().div_ceil(threads).max(1);
        let parts: Vec<Result<BTreeMap<Vec<u8>, Option<Item>>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = seqs
                .chunks(part_len)
                .map(|part| scope.spawn(|| self.undo_part(&snapshot, table_id, shape, part)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Internal("a restore reader panicked".into()))
                    })
                })
                .collect()
        });
        let mut undo = BTreeMap::new();
        for part in parts.into_iter().rev() {
            let mut earlier = part?;
            undo.append(&mut earlier);
        }
        Ok(TableImage::new(&snapshot, &self.ks.items, table_id, undo))
    }

    /// For each key the changes `seqs` (ascending) touch, the old image of the first of them.
    fn undo_part(
        &self,
        snapshot: &fjall::Snapshot,
        table_id: TableId,
        shape: &KeyShape,
        seqs: &[ChangeSeq],
    ) -> Result<BTreeMap<Vec<u8>, Option<Item>>> {
        let mut undo: BTreeMap<Vec<u8>, Option<Item>> = BTreeMap::new();
        let mut note = |bytes: &[u8]| -> Result<()> {
            let (keys, old_image) = codec::decode_record_undo(bytes)?;
            undo.entry(item_key(table_id, shape, &keys))
                .or_insert(old_image);
            Ok(())
        };
        let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
            return Ok(undo);
        };
        // When the table's changes are most of the log in this range, one sequential walk of
        // the log beats a lookup per change.
        if seqs.len() as u64 * 2 > last.distance_from(first) {
            let missing = |seq| Error::Corrupt(format!("change {seq} has no record"));
            let mut wanted = seqs.iter().copied().peekable();
            let log = snapshot.range(&self.ks.changes, first.to_be_bytes()..=last.to_be_bytes());
            for guard in log {
                let (key, bytes) = guard.into_inner().or_failure()?;
                let seq = seq_of(&key)?;
                match wanted.peek() {
                    Some(&w) if w < seq => return Err(missing(w)),
                    Some(&w) if w == seq => {
                        wanted.next();
                        note(&bytes)?;
                    }
                    _ => {}
                }
            }
            if let Some(w) = wanted.next() {
                return Err(missing(w));
            }
        } else {
            for &seq in seqs {
                let bytes = snapshot
                    .get(&self.ks.changes, seq.to_be_bytes())
                    .or_failure()?
                    .ok_or_else(|| Error::Corrupt(format!("change {seq} has no record")))?;
                note(&bytes)?;
            }
        }
        Ok(undo)
    }

    /// Builds `table`, a table nobody else reads or writes, from `batches` of items in key
    /// order. Returns the number of items.
    ///
    /// Item cells are ingested (sorted runs written straight to disk: no journal, each byte
    /// written once); index entries and statistics are committed in a batch per batch of
    /// items. Nothing of the cells is visible before the ingestion finishes; a crash before
    /// then leaves only unregistered files, which fjall drops when it opens, and index
    /// entries the restore clears when it starts over.
    pub fn load_table(
        &self,
        table: &TableEntry,
        batches: impl Iterator<Item = Result<Vec<ImageItem>>>,
    ) -> Result<u64> {
        let mut cells = self.ks.items.start_ingestion().or_failure()?;
        let mut loaded = 0u64;
        let mut load = Load::new(self, table)?;
        for items in batches {
            let items = items?;
            // Lets crash tests stop a node in the middle of a restore.
            fail::fail_point!("restore-load");
            let mut batch = self.db.batch();
            for (key, cell) in load.add(&items, &mut batch) {
                cells.write(key, cell).or_failure()?;
            }
            load.commit(batch)?;
            loaded += items.len() as u64;
            metrics::gauge!("tidemark_restore_items", "table" => table.name.clone())
                .set(loaded as f64);
        }
        cells.finish().or_failure()?;
        self.sync_if_durable()?;
        Ok(loaded)
    }

    /// Adds `items`, in any order and never seen before, to `table`, a table being built
    /// that nobody else reads or writes: cells, index entries and statistics in one batch.
    pub fn load_unsorted(&self, table: &TableEntry, items: &[ImageItem]) -> Result<()> {
        let mut load = Load::new(self, table)?;
        let mut batch = self.db.batch();
        for (key, cell) in load.add(items, &mut batch) {
            batch.insert(&self.ks.items, key, cell);
        }
        load.commit(batch)
    }

    /// Removes everything a table being built holds (items, index entries, statistics), so
    /// an interrupted build starts over.
    pub fn clear_table(&self, table: &TableEntry) -> Result<()> {
        let index_ids: Vec<TableId> = table.indexes().iter().map(|i| i.id).collect();
        self.purge_table_items(table.id, &index_ids)?;
        let mut sequencer = self.pipeline.sequencer.lock();
        sequencer.stats.remove(&table.id);
        Ok(())
    }

    /// Makes everything written so far durable in `sync` mode (bulk writes skip the group
    /// commit).
    pub fn sync_if_durable(&self) -> Result<()> {
        if self.durability == Durability::Sync {
            self.db.persist(PersistMode::SyncData).or_failure()?;
        }
        Ok(())
    }

    /// Names of the keyspaces holding copies of backup `backup_id` (one once it is copied;
    /// an interrupted copy may leave one more).
    fn backup_keyspaces(&self, backup_id: u64) -> Vec<String> {
        let prefix = format!("{BACKUP_KEYSPACE_PREFIX}{backup_id:016x}.");
        self.db
            .list_keyspace_names()
            .iter()
            .map(|name| name.to_string())
            .filter(|name| name.starts_with(&prefix))
            .collect()
    }

    fn open_keyspace(&self, name: &str) -> Result<Keyspace> {
        self.db
            .keyspace(name, KeyspaceCreateOptions::default)
            .or_failure()
    }

    /// Writes `image` as the content of backup `backup_id`, into a new keyspace (dropping
    /// what an interrupted attempt left). Returns the items and bytes written.
    ///
    /// IMPORTANT: every attempt ingests into a keyspace of its own name: fjall 3.1 loses
    /// what is ingested into a keyspace after `clear()` when the database is reopened.
    pub fn write_backup(
        &self,
        backup_id: u64,
        image: impl Iterator<Item = Result<ImageItem>>,
    ) -> Result<TableStats> {
        self.drop_backup(backup_id)?;
        let attempt = uuid::Uuid::new_v4().as_u64_pair().0 as u32;
        let name = format!("{BACKUP_KEYSPACE_PREFIX}{backup_id:016x}.{attempt:08x}");
        let keyspace = self.open_keyspace(&name)?;
        let mut ingestion = keyspace.start_ingestion().or_failure()?;
        let mut written = TableStats::default();
        for entry in image {
            let (suffix, item) = entry?;
            let mut value = Vec::with_capacity(64);
            codec::put_item(&mut value, &item);
            ingestion.write(suffix, value).or_failure()?;
            written.items += 1;
            written.bytes += item_size(&item) as i64;
            if written.items % 10_000 == 0 {
                // Lets crash tests stop a node in the middle of a backup.
                fail::fail_point!("backup-copy");
            }
        }
        ingestion.finish().or_failure()?;
        Ok(written)
    }

    /// The items of backup `backup_id`, in key order.
    ///
    /// # Errors
    /// Corrupt when the backup's copy is missing.
    pub fn backup_items(
        &self,
        backup_id: u64,
    ) -> Result<impl Iterator<Item = Result<ImageItem>> + use<>> {
        let name = self
            .backup_keyspaces(backup_id)
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Corrupt(format!("the copy of backup {backup_id:016x} is missing"))
            })?;
        let keyspace = self.open_keyspace(&name)?;
        Ok(keyspace.iter().map(|guard| {
            let (key, value) = guard.into_inner().or_failure()?;
            Ok((key.to_vec(), codec::Reader::new(&value).item()?))
        }))
    }

    /// Drops every stored copy of backup `backup_id`.
    pub fn drop_backup(&self, backup_id: u64) -> Result<()> {
        for name in self.backup_keyspaces(backup_id) {
            let keyspace = self.open_keyspace(&name)?;
            self.db.delete_keyspace(keyspace).or_failure()?;
        }
        Ok(())
    }

    /// Ids of every backup copy on disk (to drop those whose backup is gone).
    pub fn stored_backup_ids(&self) -> Vec<u64> {
        self.db
            .list_keyspace_names()
            .iter()
            .filter_map(|name| {
                let name: &str = name.as_ref();
                let id = name
                    .strip_prefix(BACKUP_KEYSPACE_PREFIX)?
                    .split('.')
                    .next()?;
                u64::from_str_radix(id, 16).ok()
            })
            .collect()
    }
}

const BACKUP_KEYSPACE_PREFIX: &str = "backup.";
