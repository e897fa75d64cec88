//! The commit path: turns item mutations into ONE atomic fjall batch (item cells, change
//! records, per-table change index, index and TTL entries, table statistics, item collection
//! sizes), allocates change sequences and stamps inside a short critical section (the
//! sequencer), and hands the committed sequence to group commit ([`super::group_commit`]),
//! which says when it is durable.
//!
//! Everything that can be computed from the mutation alone (cell and record bytes, index and
//! TTL entries, statistics deltas) is encoded before the critical section; inside it only the
//! sequence, the stamps and the commit clock are patched in.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use fjall::{Database, OwnedWriteBatch};
use parking_lot::Mutex;

use super::Keyspaces;
use super::catalog::TableEntry;
use super::codec::{self, COMMIT_CLOCK_OFFSET, RecordParts, STAMP_OFFSET};
use super::collections::{collection_key, encode_size, has_local_index, stored_size};
use super::group_commit::{Durability, Durable};
use super::index::IndexInfo;
use super::keys::{partition_byte, table_change_key};
use super::log::encode_entry;
use super::ttl_index::{expiry_second, ttl_key};
use tidemark_model::TableId;
use tidemark_model::changes::{Cause, ChangeKind, ChangeSeq};
use tidemark_model::clock::Clock;
use tidemark_model::model::{Item, KeyShape, item_size};
use tidemark_model::stamp::{HlcTimestamp, HybridClock, Stamp};
use tidemark_model::{Error, Halt, Result};

/// One item change to commit.
#[derive(Debug)]
pub struct Mutation {
    /// The table written.
    pub table: Arc<TableEntry>,
    /// The item's storage key.
    pub key_bytes: Vec<u8>,
    /// The item's key attributes.
    pub keys: Item,
    /// The item as it was, if any.
    pub old: Option<Item>,
    /// The new item, or `None` to delete (leaving a stamped tombstone).
    pub new: Option<Item>,
    /// Who made the write; a replicated write brings its own stamp.
    pub cause: Cause,
}

/// One mutation, encoded before the critical section.
#[derive(Debug)]
pub(crate) struct Encoded {
    cell: Vec<u8>,
    record: Vec<u8>,
    /// Changes to the statistics of the table and of its indexes, by id.
    deltas: Vec<(TableId, TableStats)>,
    /// Index entries to write (`Some` value) or remove (`None`).
    index_ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// TTL index entries to write (`true`) or remove (`false`).
    ttl_ops: Vec<(Vec<u8>, bool)>,
    /// The key's partition hash byte, kept with the per-table change-index entry.
    partition: u8,
    /// For a table with local indexes: the item's collection and what the write adds to it.
    collection: Option<(Vec<u8>, i64)>,
}

/// Item count and bytes of one table, kept exactly by the commit path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Items stored.
    pub items: i64,
    /// Their bytes, as DynamoDB sizes items.
    pub bytes: i64,
}

impl TableStats {
    pub(crate) fn encode(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (a, b) = out.split_at_mut(8);
        a.copy_from_slice(&self.items.to_be_bytes());
        b.copy_from_slice(&self.bytes.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<TableStats> {
        let field = |range: std::ops::Range<usize>| {
            bytes
                .get(range)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(i64::from_be_bytes)
                .ok_or_else(|| Error::Corrupt(format!("table statistics of {} bytes", bytes.len())))
        };
        Ok(TableStats {
            items: field(0..8)?,
            bytes: field(8..16)?,
        })
    }
}

/// State that must change together with the order of commits.
#[derive(Debug)]
pub(crate) struct Sequencer {
    pub(crate) next_seq: ChangeSeq,
    pub(crate) hlc: HybridClock,
    pub(crate) stats: HashMap<TableId, TableStats>,
    /// Each table's count of changes so far (the ordinal of its last `table_changes` entry).
    pub(crate) ordinals: HashMap<TableId, u64>,
    /// Largest item collection a write may leave, in bytes.
    pub(crate) collection_limit: u64,
}

/// The commit path: the sequencer, and group commit with its syncer thread.
#[derive(Debug)]
pub struct CommitPipeline {
    pub(crate) sequencer: Mutex<Sequencer>,
    durable: Arc<Durable>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    region: String,
    clock: Arc<dyn Clock>,
}

impl CommitPipeline {
    pub(crate) fn start(
        db: &Database,
        dir: &Path,
        mode: (Durability, std::time::Duration),
        sequencer: Sequencer,
        region: String,
        clock: Arc<dyn Clock>,
        halt: Halt,
    ) -> Result<Self> {
        let last_seq = sequencer.next_seq.saturating_prev();
        let (durable, syncer) = Durable::start(db, dir, mode, last_seq, halt)?;
        Ok(CommitPipeline {
            sequencer: Mutex::new(sequencer),
            durable,
            syncer: Mutex::new(Some(syncer)),
            region,
            clock,
        })
    }

    /// The durable watermark and the group commit that moves it.
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// A stamp of this node, now, for cells written outside a commit (a restored table's).
    ///
    /// # Errors
    /// The clock has no reading left ([`tidemark_model::stamp::ClockError`]).
    pub fn mint_stamp(&self) -> Result<Stamp> {
        let now = self.clock.now_millis();
        let hlc = self.sequencer.lock().hlc.tick(now)?;
        Ok(Stamp {
            hlc,
            region: self.region.clone(),
        })
    }

    /// Commits the mutations atomically (all or none), without waiting for durability
    /// ([`Durable::wait_durable`] does). Returns the sequence of the last change record
    /// written.
    ///
    /// Callers hold the key locks of every mutated item, and each mutation's `old` is what
    /// they read under those locks.
    pub(crate) fn commit(
        &self,
        db: &Database,
        ks: &Keyspaces,
        mutations: &[Mutation],
    ) -> Result<ChangeSeq> {
        if let Some(reason) = self.durable.halted() {
            return Err(Error::Halted(reason));
        }
        // Encode outside the critical section; only stamps and clocks are patched inside.
        let placeholder = Stamp {
            hlc: HlcTimestamp(0),
            region: self.region.clone(),
        };
        let mut encoded: Vec<Encoded> = mutations
            .iter()
            .map(|m| Encoded::new(m, &placeholder))
            .collect();
        self.durable.begin_commit();
        let committed = self.commit_batch(db, ks, mutations, &mut encoded);
        self.durable.finish_commit(committed)
    }

    /// The critical section: allocate sequences and stamps, patch them in, commit one batch.
    fn commit_batch(
        &self,
        db: &Database,
        ks: &Keyspaces,
        mutations: &[Mutation],
        encoded: &mut [Encoded],
    ) -> Result<ChangeSeq> {
        let mut seq_state = self.sequencer.lock();
        if mutations
            .iter()
            .any(|m| m.table.dropped.load(Ordering::Acquire))
        {
            // As an item operation on a missing table says it (DynamoDB names no table).
            return Err(Error::ResourceNotFound(
                "Requested resource not found".to_string(),
            ));
        }
        // Collection sizes first: a write that would take one past the limit fails before
        // anything of the batch moved.
        let collections = grown_collections(ks, mutations, encoded, seq_state.collection_limit)?;
        let now = self.clock.now_millis();
        let mut batch = db.batch();
        for (key, size) in &collections {
            if *size > 0 {
                batch.insert(&ks.collections, key.as_slice(), encode_size(*size));
            } else {
                batch.remove(&ks.collections, key.as_slice());
            }
        }
        let mut next = seq_state.next_seq;
        let mut stats_touched: Vec<TableId> = Vec::new();
        for (staged, (m, e)) in mutations.iter().zip(encoded.iter_mut()).enumerate() {
            if let Err(e) = seq_state.stage(&mut batch, ks, next, now, m, e) {
                // Nothing is written; undo what the mutations staged before this one moved.
                let (done, _) = mutations.split_at(staged);
                let (done_encoded, _) = encoded.split_at(staged);
                seq_state.undo(done, done_encoded);
                return Err(e);
            }
            next = next.next();
            for (id, _) in &e.deltas {
                if !stats_touched.contains(id) {
                    stats_touched.push(*id);
                }
            }
        }
        for id in stats_touched {
            let stats = seq_state.stats.get(&id).copied().unwrap_or_default();
            batch.insert(&ks.stats, id.to_be_bytes(), stats.encode());
        }
        if let Err(e) = batch.commit() {
            seq_state.undo(mutations, encoded);
            return Err(crate::failure(e));
        }
        seq_state.next_seq = next;
        Ok(next.saturating_prev())
    }

    /// Stops the syncer after it has made everything committed so far durable.
    pub(crate) fn shutdown(&self) {
        self.durable.stop();
        if let Some(handle) = self.syncer.lock().take() {
            let _ = handle.join();
        }
    }
}

impl Encoded {
    /// Encodes everything of `m` that does not depend on its place in the log; `placeholder`
    /// stands for the stamp of a local write until the sequencer mints it.
    fn new(m: &Mutation, placeholder: &Stamp) -> Encoded {
        let stamp = m.cause.carried_stamp().unwrap_or(placeholder);
        let cell = codec::encode_cell(m.new.as_ref(), stamp);
        let record = codec::encode_record(&RecordParts {
            kind: ChangeKind::between(m.old.as_ref(), m.new.as_ref()),
            cause: m.cause.kind(),
            table_id: m.table.id,
            table_name: &m.table.name,
            stamp,
            commit_clock: HlcTimestamp(0),
            keys: &m.keys,
            old_image: m.old.as_ref(),
            new_image: m.new.as_ref(),
        });
        let size = |item: &Option<Item>| item.as_ref().map_or(0, |i| item_size(i) as i64);
        let delta = TableStats {
            items: i64::from(m.new.is_some()) - i64::from(m.old.is_some()),
            bytes: size(&m.new) - size(&m.old),
        };
        let mut deltas = vec![(m.table.id, delta)];
        let mut index_ops = Vec::new();
        // What the write adds to its item collection through local indexes.
        let mut local_index_bytes = 0;
        let indexes = m.table.indexes();
        for index in indexes.iter() {
            let Some(change) = IndexChange::between(index, &m.table.shape, m) else {
                continue;
            };
            if !index.global {
                local_index_bytes += change.delta.bytes;
            }
            deltas.push((index.id, change.delta));
            index_ops.extend(change.ops);
        }
        let partition = m
            .keys
            .get(&m.table.shape.hash.name)
            .map_or(0, partition_byte);
        // The collection grows or shrinks by the item and its local index entries.
        let collection = has_local_index(&indexes)
            .then(|| collection_key(m.table.id, &m.table.shape, &m.keys))
            .flatten()
            .map(|key| (key, delta.bytes + local_index_bytes));
        Encoded {
            cell,
            record,
            deltas,
            index_ops,
            ttl_ops: ttl_ops(m),
            partition,
            collection,
        }
    }
}

/// What one write does to one secondary index: its entry's writes and removals, and the
/// index's statistics delta.
struct IndexChange {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    delta: TableStats,
}

impl IndexChange {
    /// `None` when the index entry is the same before and after (or absent in both).
    fn between(index: &IndexInfo, shape: &KeyShape, m: &Mutation) -> Option<IndexChange> {
        // Keys and projections are compared and sized in place; only the entry written is
        // copied, to be encoded.
        let before = (m.old.as_ref()).and_then(|item| Some((index.entry_key(shape, item)?, item)));
        let after = (m.new.as_ref()).and_then(|item| Some((index.entry_key(shape, item)?, item)));
        let unchanged = match (&before, &after) {
            (None, None) => true,
            (Some((old_key, old)), Some((new_key, new))) => {
                old_key == new_key && index.projected(shape, old).eq(index.projected(shape, new))
            }
            _ => false,
        };
        if unchanged {
            return None;
        }
        let size = |e: &Option<(Vec<u8>, &Item)>| {
            e.as_ref()
                .map_or(0, |(_, item)| index.projected_size(shape, item) as i64)
        };
        let delta = TableStats {
            items: i64::from(after.is_some()) - i64::from(before.is_some()),
            bytes: size(&after) - size(&before),
        };
        let mut ops = Vec::new();
        if let Some((old_key, _)) = &before
            && after.as_ref().is_none_or(|(new_key, _)| new_key != old_key)
        {
            ops.push((old_key.clone(), None));
        }
        if let Some((key, item)) = after {
            let mut value = Vec::with_capacity(64);
            codec::put_item(&mut value, &index.project(shape, item));
            ops.push((key, Some(value)));
        }
        Some(IndexChange { ops, delta })
    }
}

/// The TTL index entries a write moves: removed (`false`) for the old expiry, written
/// (`true`) for the new one.
fn ttl_ops(m: &Mutation) -> Vec<(Vec<u8>, bool)> {
    let mut ops = Vec::new();
    let Some(attribute) = m.table.ttl_attribute() else {
        return ops;
    };
    let second = |item: &Option<Item>| item.as_ref().and_then(|i| expiry_second(i, &attribute));
    let (before, after) = (second(&m.old), second(&m.new));
    if before != after {
        if let Some(s) = before {
            ops.push((ttl_key(m.table.id, s, &m.key_bytes), false));
        }
        if let Some(s) = after {
            ops.push((ttl_key(m.table.id, s, &m.key_bytes), true));
        }
    }
    ops
}

/// The new size of every item collection the mutations write, read from `collections` and
/// moved by each write's delta; fails when a local write would take one past `limit`.
fn grown_collections(
    ks: &Keyspaces,
    mutations: &[Mutation],
    encoded: &[Encoded],
    limit: u64,
) -> Result<Vec<(Vec<u8>, i64)>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut collections: Vec<(Vec<u8>, i64)> = Vec::new();
    for (m, e) in mutations.iter().zip(encoded) {
        let Some((key, delta)) = &e.collection else {
            continue;
        };
        let position = match collections.iter().position(|(k, _)| k == key) {
            Some(position) => position,
            None => {
                collections.push((key.clone(), stored_size(ks, key)?));
                collections.len() - 1
            }
        };
        if let Some((_, size)) = collections.get_mut(position) {
            *size += delta;
            // A replicated write is applied whatever its size: its region accepted it, and
            // refusing it here would leave the regions apart for good.
            if *delta > 0 && *size > limit && !matches!(m.cause, Cause::Replica(_)) {
                return Err(Error::ItemCollectionSizeLimitExceeded {
                    item_key: m.key_bytes.clone(),
                });
            }
        }
    }
    Ok(collections)
}

impl Sequencer {
    /// Gives mutation `m` the sequence `seq` and this node's next clock reading, and adds its
    /// cell, change record, change-index entry, TTL and index entries to `batch`; moves the
    /// in-memory ordinals and statistics (undone by [`Sequencer::undo`] if the batch fails).
    /// Fails, having moved nothing, when the clock has no reading left for it.
    fn stage(
        &mut self,
        batch: &mut OwnedWriteBatch,
        ks: &Keyspaces,
        seq: ChangeSeq,
        now: u64,
        m: &Mutation,
        e: &mut Encoded,
    ) -> Result<()> {
        // IMPORTANT: the clock observes a replicated stamp before it ticks, so this commit's
        // clock, and every later one, is past it; recovery restarts the clock after the last
        // record's commit clock, which is therefore past every stamp this node ever issued or
        // applied. A stamp with no reading after it is neither observed nor applied.
        let carried = m.cause.carried_stamp();
        let clock = self
            .hlc
            .tick_observing(carried.map(|stamp| stamp.hlc), now)?;
        if carried.is_none() {
            codec::patch_u64(&mut e.cell, STAMP_OFFSET, clock.0);
            codec::patch_u64(&mut e.record, STAMP_OFFSET, clock.0);
        }
        codec::patch_u64(&mut e.record, COMMIT_CLOCK_OFFSET, clock.0);
        batch.insert(&ks.items, m.key_bytes.as_slice(), e.cell.as_slice());
        batch.insert(&ks.changes, seq.to_be_bytes(), e.record.as_slice());
        let ordinal = self.ordinals.entry(m.table.id).or_insert(0);
        *ordinal += 1;
        batch.insert(
            &ks.table_changes,
            table_change_key(m.table.id, seq),
            encode_entry(e.partition, m.cause.kind(), *ordinal),
        );
        if let Cause::Logged(logged) = &m.cause {
            super::positions::stage(batch, &ks.positions, &logged.position);
        }
        for (key, present) in &e.ttl_ops {
            if *present {
                batch.insert(&ks.ttl, key.as_slice(), []);
            } else {
                batch.remove(&ks.ttl, key.as_slice());
            }
        }
        for (key, value) in &e.index_ops {
            match value {
                Some(value) => batch.insert(&ks.indexes, key.as_slice(), value.as_slice()),
                None => batch.remove(&ks.indexes, key.as_slice()),
            }
        }
        for (id, delta) in &e.deltas {
            let stats = self.stats.entry(*id).or_default();
            stats.items += delta.items;
            stats.bytes += delta.bytes;
        }
        Ok(())
    }

    /// Undoes what [`Sequencer::stage`] moved in memory, after the batch failed to commit
    /// (it is all-or-nothing, so nothing of it is on disk).
    fn undo(&mut self, mutations: &[Mutation], encoded: &[Encoded]) {
        for m in mutations {
            if let Some(ordinal) = self.ordinals.get_mut(&m.table.id) {
                *ordinal -= 1;
            }
        }
        for Encoded { deltas, .. } in encoded {
            for (id, delta) in deltas {
                if let Some(stats) = self.stats.get_mut(id) {
                    stats.items -= delta.items;
                    stats.bytes -= delta.bytes;
                }
            }
        }
    }
}
