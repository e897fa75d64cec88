//! The commit path: turns item mutations into ONE atomic fjall batch (item cells, change
//! records, per-table change index, table statistics), allocates change sequences and stamps
//! inside a short critical section, and acknowledges only once the mode's durability holds.
//!
//! Group commit: under `sync`, writers commit their batch with `Buffer` (journal written to the
//! OS) and then wait; one syncer thread fsyncs the journal once for every writer that committed
//! meanwhile ([`JournalSync`], outside fjall's journal lock) and advances the durable
//! watermark. A per-batch `SyncData` would cost one fsync per write (fjall's concurrent syncs
//! do not group).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjall::Database;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::Keyspaces;
use super::catalog::TableEntry;
use super::codec::{self, COMMIT_CLOCK_OFFSET, RecordParts, STAMP_OFFSET};
use super::collections::{collection_key, encode_size, has_local_index, stored_size};
use super::journal::JournalSync;
use super::keys::{partition_byte, table_change_key};
use super::log::encode_entry;
use super::ttl_index::{expiry_second, ttl_key};
use crate::changes::{Cause, ChangeKind, ChangeSeq};
use crate::clock::Clock;
use crate::model::{Item, item_size};
use crate::stamp::{HlcTimestamp, HybridClock, Stamp};
use crate::{Error, Halt, Result};

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the journal holding the write is fsync'd (group commit); survives power loss.
    #[default]
    Sync,
    /// After the write reaches the OS; survives a process crash, not power loss.
    Buffer,
}

/// Longest the syncer waits for queued committers before an fsync.
const MAX_GATHER: Duration = Duration::from_micros(500);

/// How often the journal is synced in the background under `buffer`.
const BACKGROUND_SYNC_INTERVAL: Duration = Duration::from_millis(50);

/// One item change to commit.
#[derive(Debug)]
pub(crate) struct Mutation {
    pub(crate) table: Arc<TableEntry>,
    pub(crate) key_bytes: Vec<u8>,
    pub(crate) keys: Item,
    pub(crate) old: Option<Item>,
    /// The new item, or `None` to delete (leaving a stamped tombstone).
    pub(crate) new: Option<Item>,
    /// Who made the write; a replicated write brings its own stamp.
    pub(crate) cause: Cause,
}

/// One mutation, encoded before the critical section.
#[derive(Debug)]
pub(crate) struct Encoded {
    cell: Vec<u8>,
    record: Vec<u8>,
    /// Changes to the statistics of the table and of its indexes, by id.
    deltas: Vec<(u64, TableStats)>,
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
pub(crate) struct TableStats {
    pub(crate) items: i64,
    pub(crate) bytes: i64,
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
    pub(crate) stats: HashMap<u64, TableStats>,
    /// Each table's count of changes so far (the ordinal of its last `table_changes` entry).
    pub(crate) ordinals: HashMap<u64, u64>,
    /// Largest item collection a write may leave, in bytes.
    pub(crate) collection_limit: u64,
}

#[derive(Debug, Default)]
struct SyncState {
    committed: ChangeSeq,
    durable: ChangeSeq,
    failure: Option<String>,
    shutdown: bool,
}

/// Group commit and the durable watermark.
#[derive(Debug)]
pub(crate) struct Durable {
    mode: Durability,
    state: Mutex<SyncState>,
    wake_syncer: Condvar,
    synced: Condvar,
    watermark: watch::Sender<ChangeSeq>,
    /// Writers between asking for the sequencer and finishing their batch commit.
    committing: AtomicUsize,
    halt: Halt,
}

/// Makes the journal durable ([`JournalSync`]), or fails as injected by the `journal-sync`
/// failpoint (tests of the fatal path; compiled in only with the `failpoints` feature).
fn sync_journal(journal: &mut JournalSync, db: &Database) -> std::io::Result<()> {
    fail::fail_point!("journal-sync", |_| Err(std::io::Error::other(
        "injected journal sync failure"
    )));
    journal.sync(db)
}

impl Durable {
    fn new(mode: Durability, last_seq: ChangeSeq, halt: Halt) -> Self {
        Durable {
            halt,
            mode,
            state: Mutex::new(SyncState {
                committed: last_seq,
                durable: last_seq,
                ..Default::default()
            }),
            wake_syncer: Condvar::new(),
            synced: Condvar::new(),
            watermark: watch::Sender::new(last_seq),
            committing: AtomicUsize::new(0),
        }
    }

    /// Ends a writer's commit, successful or not, and asks the syncer to make it durable.
    fn finish_commit(&self, committed: Result<ChangeSeq>) -> Result<ChangeSeq> {
        let mut state = self.state.lock();
        // Decremented under the state lock, so the syncer waiting for it never misses it.
        self.committing.fetch_sub(1, Ordering::AcqRel);
        let seq = match committed {
            Ok(seq) => seq,
            Err(e) => {
                self.wake_syncer.notify_one();
                return Err(e);
            }
        };
        state.committed = state.committed.max(seq);
        match self.mode {
            Durability::Buffer => {
                state.durable = state.committed;
                self.watermark.send_replace(state.durable);
            }
            Durability::Sync => {
                self.wake_syncer.notify_one();
            }
        }
        Ok(seq)
    }

    /// Waits until the change `seq` (committed) is durable in the node's mode.
    pub(crate) fn wait_durable(&self, seq: ChangeSeq) -> Result<()> {
        let mut state = self.state.lock();
        while state.durable < seq {
            if let Some(failure) = &state.failure {
                return Err(Error::Halted(format!("journal sync failed: {failure}")));
            }
            self.synced.wait(&mut state);
        }
        Ok(())
    }

    /// [`Durable::wait_durable`] for async callers: waits on the watermark, holding no thread.
    pub(crate) async fn wait_durable_async(&self, seq: ChangeSeq) -> Result<()> {
        let mut watermark = self.watermark.subscribe();
        loop {
            if *watermark.borrow_and_update() >= seq {
                return Ok(());
            }
            if let Some(failure) = &self.state.lock().failure {
                return Err(Error::Halted(format!("journal sync failed: {failure}")));
            }
            // The sender lives in `self`; a failed sync wakes this with an unchanged value.
            let _ = watermark.changed().await;
        }
    }

    fn run_syncer(&self, db: &Database, mut journal: JournalSync) {
        loop {
            let (target, covered) = {
                let mut state = self.state.lock();
                while state.committed == state.durable && !state.shutdown {
                    self.wake_syncer.wait(&mut state);
                }
                if state.committed == state.durable {
                    return;
                }
                // IMPORTANT for throughput: let writers already between the sequencer and
                // their commit finish first (bounded), so that this fsync covers all of them,
                // not just one.
                let deadline = Instant::now() + MAX_GATHER;
                while self.committing.load(Ordering::Acquire) > 0 {
                    if self
                        .wake_syncer
                        .wait_until(&mut state, deadline)
                        .timed_out()
                    {
                        break;
                    }
                }
                (
                    state.committed,
                    state.committed.saturating_sub(state.durable),
                )
            };
            let started = Instant::now();
            let outcome = sync_journal(&mut journal, db);
            metrics::histogram!("tidemark_fsync_seconds").record(started.elapsed().as_secs_f64());
            metrics::histogram!("tidemark_group_commit_changes").record(covered as f64);
            let mut state = self.state.lock();
            match outcome {
                Ok(()) => {
                    state.durable = state.durable.max(target);
                    self.watermark.send_replace(state.durable);
                }
                Err(e) => {
                    self.fail(&mut state, &e);
                    return;
                }
            }
            self.synced.notify_all();
        }
    }

    /// Records a failed journal sync. IMPORTANT: after a failed fsync the journal's state on
    /// disk is unknown (the OS may have dropped the pages it failed to write, so even writes
    /// acknowledged under `buffer` can be gone without a crash); no later write can be
    /// acknowledged, so every waiter fails, the store halts and the node exits (journal
    /// recovery runs when it restarts).
    fn fail(&self, state: &mut SyncState, e: &std::io::Error) {
        state.failure = Some(e.to_string());
        self.halt.raise(format!("journal sync failed: {e}"));
        self.synced.notify_all();
        self.watermark.send_modify(|_| {});
    }

    /// Under `buffer`: syncs the journal every [`BACKGROUND_SYNC_INTERVAL`] while writes come
    /// in. Acknowledgements never wait for it; it bounds what a power loss can take, and,
    /// IMPORTANT for latency, it keeps the journal nearly clean, so the full sync fjall makes
    /// under its journal lock before each memtable flush (which every commit waits behind)
    /// has little left to write.
    fn run_background_sync(&self, db: &Database, mut journal: JournalSync) {
        let mut synced = self.state.lock().committed;
        loop {
            let committed = {
                let mut state = self.state.lock();
                if !state.shutdown {
                    self.wake_syncer
                        .wait_for(&mut state, BACKGROUND_SYNC_INTERVAL);
                }
                if state.shutdown {
                    return;
                }
                state.committed
            };
            if committed == synced {
                continue;
            }
            if let Err(e) = sync_journal(&mut journal, db) {
                self.fail(&mut self.state.lock(), &e);
                return;
            }
            synced = committed;
        }
    }

    pub(crate) fn durable_seq(&self) -> ChangeSeq {
        self.state.lock().durable
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<ChangeSeq> {
        self.watermark.subscribe()
    }
}

/// The commit path: sequencer, group commit and the syncer thread.
#[derive(Debug)]
pub(crate) struct CommitPipeline {
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
        mode: Durability,
        sequencer: Sequencer,
        region: String,
        clock: Arc<dyn Clock>,
        halt: Halt,
    ) -> Result<Self> {
        let last_seq = sequencer.next_seq.saturating_sub(1);
        let durable = Arc::new(Durable::new(mode, last_seq, halt));
        let (syncing, db, journal) = (durable.clone(), db.clone(), JournalSync::new(dir));
        let syncer = std::thread::Builder::new()
            .name("tidemark-journal-sync".into())
            .spawn(move || match mode {
                Durability::Sync => syncing.run_syncer(&db, journal),
                Durability::Buffer => syncing.run_background_sync(&db, journal),
            })
            .map_err(|e| Error::Internal(format!("cannot start the journal syncer: {e}")))?;
        Ok(CommitPipeline {
            sequencer: Mutex::new(sequencer),
            durable,
            syncer: Mutex::new(Some(syncer)),
            region,
            clock,
        })
    }

    pub(crate) fn durable(&self) -> &Durable {
        &self.durable
    }

    /// A stamp of this node, now, for cells written outside a commit (a restored table's).
    pub(crate) fn mint_stamp(&self) -> Stamp {
        let now = self.clock.now_millis();
        let hlc = self.sequencer.lock().hlc.tick(now);
        Stamp {
            hlc,
            region: self.region.clone(),
        }
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
        if let Some(reason) = self.durable.halt.reason() {
            return Err(Error::Halted(reason.to_string()));
        }
        // Encode outside the critical section; only stamps and clocks are patched inside.
        let placeholder = Stamp {
            hlc: HlcTimestamp(0),
            region: self.region.clone(),
        };
        let mut encoded = Vec::with_capacity(mutations.len());
        for m in mutations {
            let stamp = match &m.cause {
                Cause::Replica(stamp) => stamp,
                _ => &placeholder,
            };
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
            let table_bytes = delta.bytes;
            let mut deltas = vec![(m.table.id, delta)];
            let mut index_ops = Vec::new();
            // What the write adds to its item collection through local indexes.
            let mut local_index_bytes = 0;
            let shape = &m.table.shape;
            let indexes = m.table.indexes();
            for index in indexes.iter() {
                // Keys and projections are compared and sized in place; only the entry
                // written is copied, to be encoded.
                let before =
                    (m.old.as_ref()).and_then(|item| Some((index.entry_key(shape, item)?, item)));
                let after =
                    (m.new.as_ref()).and_then(|item| Some((index.entry_key(shape, item)?, item)));
                let unchanged = match (&before, &after) {
                    (None, None) => true,
                    (Some((old_key, old)), Some((new_key, new))) => {
                        old_key == new_key
                            && index.projected(shape, old).eq(index.projected(shape, new))
                    }
                    _ => false,
                };
                if unchanged {
                    continue;
                }
                let size = |e: &Option<(Vec<u8>, &Item)>| {
                    e.as_ref()
                        .map_or(0, |(_, item)| index.projected_size(shape, item) as i64)
                };
                let bytes = size(&after) - size(&before);
                if !index.global {
                    local_index_bytes += bytes;
                }
                deltas.push((
                    index.id,
                    TableStats {
                        items: i64::from(after.is_some()) - i64::from(before.is_some()),
                        bytes,
                    },
                ));
                if let Some((old_key, _)) = &before
                    && after.as_ref().is_none_or(|(new_key, _)| new_key != old_key)
                {
                    index_ops.push((old_key.clone(), None));
                }
                if let Some((key, item)) = after {
                    let mut value = Vec::with_capacity(64);
                    codec::put_item(&mut value, &index.project(shape, item));
                    index_ops.push((key, Some(value)));
                }
            }
            let mut ttl_ops = Vec::new();
            if let Some(attribute) = m.table.ttl_attribute() {
                let second =
                    |item: &Option<Item>| item.as_ref().and_then(|i| expiry_second(i, &attribute));
                let (before, after) = (second(&m.old), second(&m.new));
                if before != after {
                    if let Some(s) = before {
                        ttl_ops.push((ttl_key(m.table.id, s, &m.key_bytes), false));
                    }
                    if let Some(s) = after {
                        ttl_ops.push((ttl_key(m.table.id, s, &m.key_bytes), true));
                    }
                }
            }
            let partition = m
                .keys
                .get(&m.table.shape.hash.name)
                .map_or(0, partition_byte);
            // The collection grows or shrinks by the item and its local index entries.
            let collection = has_local_index(&indexes)
                .then(|| collection_key(m.table.id, shape, &m.keys))
                .flatten()
                .map(|key| (key, table_bytes + local_index_bytes));
            encoded.push(Encoded {
                cell,
                record,
                deltas,
                index_ops,
                ttl_ops,
                partition,
                collection,
            });
        }

        self.durable.committing.fetch_add(1, Ordering::AcqRel);
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
        {
            let mut seq_state = self.sequencer.lock();
            if let Some(m) = mutations
                .iter()
                .find(|m| m.table.dropped.load(Ordering::Acquire))
            {
                return Err(Error::ResourceNotFound(format!(
                    "Requested resource not found: Table: {} not found",
                    m.table.name
                )));
            }
            // Collection sizes first: a write that would take one past the limit fails before
            // anything of the batch moved.
            let mut collections: Vec<(Vec<u8>, i64)> = Vec::new();
            for (m, e) in mutations.iter().zip(encoded.iter()) {
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
                    // A replicated write is applied whatever its size: its region accepted it,
                    // and refusing it here would leave the regions apart for good.
                    let limit = i64::try_from(seq_state.collection_limit).unwrap_or(i64::MAX);
                    if *delta > 0 && *size > limit && !matches!(m.cause, Cause::Replica(_)) {
                        return Err(Error::ItemCollectionSizeLimitExceeded {
                            item_key: m.key_bytes.clone(),
                        });
                    }
                }
            }
            let now = self.clock.now_millis();
            let mut batch = db.batch();
            for (key, size) in &collections {
                if *size > 0 {
                    batch.insert(&ks.collections, key.as_slice(), encode_size(*size));
                } else {
                    batch.remove(&ks.collections, key.as_slice());
                }
            }
            let mut stats_touched: Vec<u64> = Vec::new();
            let mut seq = seq_state.next_seq;
            for (
                m,
                Encoded {
                    cell,
                    record,
                    deltas,
                    index_ops,
                    ttl_ops,
                    partition,
                    ..
                },
            ) in mutations.iter().zip(encoded.iter_mut())
            {
                // IMPORTANT: the clock observes a replicated stamp before it ticks, so this
                // commit's clock, and every later one, is past it; recovery restarts the clock
                // after the last record's commit clock, which is therefore past every stamp
                // this node ever issued or applied.
                if let Cause::Replica(stamp) = &m.cause {
                    seq_state.hlc.observe(stamp.hlc);
                }
                let clock = seq_state.hlc.tick(now);
                if !matches!(m.cause, Cause::Replica(_)) {
                    codec::patch_u64(cell, STAMP_OFFSET, clock.0);
                    codec::patch_u64(record, STAMP_OFFSET, clock.0);
                }
                codec::patch_u64(record, COMMIT_CLOCK_OFFSET, clock.0);
                batch.insert(&ks.items, m.key_bytes.as_slice(), cell.as_slice());
                batch.insert(&ks.changes, seq.to_be_bytes(), record.as_slice());
                let ordinal = seq_state.ordinals.entry(m.table.id).or_insert(0);
                *ordinal += 1;
                batch.insert(
                    &ks.table_changes,
                    table_change_key(m.table.id, seq),
                    encode_entry(*partition, m.cause.kind(), *ordinal),
                );
                for (key, present) in ttl_ops.iter() {
                    if *present {
                        batch.insert(&ks.ttl, key.as_slice(), []);
                    } else {
                        batch.remove(&ks.ttl, key.as_slice());
                    }
                }
                for (key, value) in index_ops.iter() {
                    match value {
                        Some(value) => batch.insert(&ks.indexes, key.as_slice(), value.as_slice()),
                        None => batch.remove(&ks.indexes, key.as_slice()),
                    }
                }
                for (id, delta) in deltas.iter() {
                    let stats = seq_state.stats.entry(*id).or_default();
                    stats.items += delta.items;
                    stats.bytes += delta.bytes;
                    if !stats_touched.contains(id) {
                        stats_touched.push(*id);
                    }
                }
                seq += 1;
            }
            for id in stats_touched {
                let stats = seq_state.stats.get(&id).copied().unwrap_or_default();
                batch.insert(&ks.stats, id.to_be_bytes(), stats.encode());
            }
            if let Err(e) = batch.commit() {
                // The batch is all-or-nothing; undo the in-memory counters it would have moved.
                for m in mutations {
                    if let Some(ordinal) = seq_state.ordinals.get_mut(&m.table.id) {
                        *ordinal -= 1;
                    }
                }
                for Encoded { deltas, .. } in encoded.iter() {
                    for (id, delta) in deltas {
                        if let Some(stats) = seq_state.stats.get_mut(id) {
                            stats.items -= delta.items;
                            stats.bytes -= delta.bytes;
                        }
                    }
                }
                return Err(e.into());
            }
            seq_state.next_seq = seq;
            Ok(seq - 1)
        }
    }

    /// Stops the syncer after it has made everything committed so far durable.
    pub(crate) fn shutdown(&self) {
        {
            let mut state = self.durable.state.lock();
            state.shutdown = true;
            self.durable.wake_syncer.notify_all();
        }
        if let Some(handle) = self.syncer.lock().take() {
            let _ = handle.join();
        }
    }
}
