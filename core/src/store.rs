//! [`Store`]: the node's item store, the engine's seams: open, persist and halt, the write
//! protocol ([`crate::write`]), item reads and writes ([`crate::ops`]), snapshots, the log
//! reader, retention holds, table definitions and stream lanes. The services over it (tables,
//! backups, transactions, TTL, replication) each hold an `Arc<Store>`; [`crate::Engine`]
//! opens them together.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::changes::ChangeSeq;
use crate::clock::{Clock, SystemClock};
use crate::storage::Storage;
pub use crate::storage::group_commit::Durability;
pub use crate::storage::history::TrimReport;
use crate::{Halt, Result, WriteFence};

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Folder of the fjall database.
    pub data_dir: PathBuf,
    /// This node's region (origin of its writes, part of ARNs).
    pub region: String,
    /// Account id used in ARNs.
    pub account_id: String,
    /// When writes are acknowledged.
    pub durability: Durability,
    /// Under `buffer`, how often the journal is synced in the background (it bounds what a
    /// power cut takes; a wait for a change to be on disk syncs at once).
    pub background_sync_interval: Duration,
    /// How long change records (and tombstones) are kept.
    pub history_window: Duration,
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// Shards per generation of a new DynamoDB stream (a key's records always use one).
    pub stream_shards: u8,
    /// Largest item collection of a table with local secondary indexes, in bytes
    /// (DynamoDB's 10 GB; tests lower it to reach it).
    pub item_collection_limit_bytes: u64,
}

impl StoreConfig {
    /// Defaults for a data folder: region `us-east-1`, account `000000000000`, `sync`, 24 h of
    /// history, 64 MiB of block cache, 1 shard per stream generation (as DynamoDB starts a
    /// stream), DynamoDB's 10 GB item
    /// collection limit.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            durability: Durability::Sync,
            background_sync_interval: crate::storage::group_commit::BACKGROUND_SYNC_INTERVAL,
            history_window: Duration::from_secs(24 * 3600),
            cache_bytes: 64 * 1024 * 1024,
            stream_shards: 1,
            item_collection_limit_bytes: crate::storage::collections::ITEM_COLLECTION_LIMIT_BYTES,
        }
    }
}

impl StoreConfig {
    /// [`StoreConfig::new`] with `buffer` durability: what tests of everything but the
    /// group commit open (no fsync per write).
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            durability: Durability::Buffer,
            ..StoreConfig::new(data_dir)
        }
    }
}

/// The item store: tables, items and the change log of one node.
#[derive(Debug)]
pub struct Store {
    pub(crate) storage: Storage,
    pub(crate) config: StoreConfig,
    pub(crate) clock: Arc<dyn Clock>,
    /// Raised once the store can no longer keep its promises; writes are refused from then on.
    pub(crate) halt: Halt,
    /// Raised while this node's own writes are paused (see [`WriteFence`]).
    pub(crate) fence: WriteFence,
    /// Set on a cluster region's node: client writes go only through the region's log.
    pub(crate) logged_only: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir` with the system clock.
    ///
    /// # Errors
    /// Storage failures, including a data folder already open by another process.
    pub fn open(config: StoreConfig) -> Result<Store> {
        Store::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens the store with an injected clock.
    ///
    /// # Errors
    /// Storage failures, including a data folder already open by another process.
    pub fn open_with_clock(config: StoreConfig, clock: Arc<dyn Clock>) -> Result<Store> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            crate::Error::Internal(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let halt = Halt::default();
        let storage = Storage::open(
            &config.data_dir,
            (config.durability, config.background_sync_interval),
            config.region.clone(),
            config.cache_bytes,
            config.item_collection_limit_bytes,
            clock.clone(),
            halt.clone(),
        )?;
        Ok(Store {
            storage,
            config,
            clock,
            halt,
            fence: WriteFence::default(),
            logged_only: Default::default(),
        })
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The clock the store reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The store's stop condition: raised by the store itself when a journal sync fails, and
    /// by whoever meets a fatal error ([`crate::Error::is_fatal`]) or loses a task the node
    /// needs. Once raised, every write is refused.
    pub fn halt(&self) -> &Halt {
        &self.halt
    }

    /// The pause of this node's own writes (client requests and TTL expiry): while it is
    /// raised they fail with [`crate::Error::WritesPaused`]; replicated writes and reads go on.
    pub fn write_fence(&self) -> &WriteFence {
        &self.fence
    }

    /// Passes `result` through, raising the halt first when it holds a fatal error.
    ///
    /// # Errors
    /// The error of `result`.
    pub fn halt_if_fatal<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result
            && e.is_fatal()
        {
            self.halt.raise(e.to_string());
        }
        result
    }

    /// Highest change sequence that is durable in this node's mode (fsync'd under `sync`,
    /// committed under `buffer`). Readers of the log never go past it.
    pub fn durable_seq(&self) -> ChangeSeq {
        self.storage.pipeline.durable().durable_seq()
    }

    /// A watch of [`Store::durable_seq`], for tasks that tail the log.
    pub fn subscribe_durable(&self) -> watch::Receiver<ChangeSeq> {
        self.storage.pipeline.durable().subscribe()
    }

    /// Highest change sequence covered by a journal sync, whatever the durability mode (at
    /// most [`Store::durable_seq`]; the same under `sync`). What other regions receive from
    /// this node, or are told it has, stays within it, so a power cut takes back nothing
    /// they have.
    pub fn on_disk_seq(&self) -> ChangeSeq {
        self.storage.pipeline.durable().on_disk_seq()
    }

    /// A watch of [`Store::on_disk_seq`].
    pub fn subscribe_on_disk(&self) -> watch::Receiver<ChangeSeq> {
        self.storage.pipeline.durable().subscribe_on_disk()
    }

    /// Waits until the committed change `seq` is on disk (see [`Store::on_disk_seq`]); under
    /// `buffer` it asks for a journal sync at once rather than at the next background one.
    /// Blocking.
    ///
    /// # Errors
    /// Halted when the journal sync failed or the store closed first.
    pub fn wait_on_disk(&self, seq: ChangeSeq) -> Result<()> {
        let waited = self.storage.pipeline.durable().wait_on_disk(seq);
        self.halt_if_fatal(waited)
    }

    /// Asks for every committed change to be on disk soon, without waiting (under `buffer`
    /// the journal is synced at once instead of at the next background sync).
    pub fn request_sync(&self) {
        self.storage.pipeline.durable().request_sync();
    }

    /// Trims change records older than the history window (and below every retention hold:
    /// a table's recovery period is one, see [`crate::Backups::release_history`]), the
    /// tombstones of deletes that leave the window, and streams that ended before it. The
    /// node runs this periodically.
    ///
    /// # Errors
    /// Storage failures.
    pub fn trim_history(&self) -> Result<TrimReport> {
        let window = u64::try_from(self.config.history_window.as_millis()).unwrap_or(u64::MAX);
        let cutoff = self.clock.now_millis().saturating_sub(window);
        let report = self.storage.trim_history(cutoff)?;
        self.expire_streams(cutoff)?;
        Ok(report)
    }

    /// Forces everything written so far to disk (fsync); used at shutdown.
    ///
    /// # Errors
    /// Storage failures.
    pub fn persist(&self) -> Result<()> {
        self.storage.persist()
    }

    /// The next offset this node applies from `partition` of the cluster log `log`: every
    /// record before it is applied (a logged write's batch moves it with its items).
    ///
    /// # Errors
    /// Storage failures.
    pub fn next_log_offset(&self, log: &str, partition: u32) -> Result<u64> {
        self.storage.next_log_offset(log, partition)
    }

    /// Records, durably, that every record of `partition` of `log` before `next` is applied,
    /// for logs whose records do not write items (table definitions).
    ///
    /// # Errors
    /// Storage failures.
    pub fn save_log_offset(&self, log: &str, partition: u32, next: u64) -> Result<()> {
        self.storage.save_log_offset(log, partition, next)
    }

    /// The partition, among `partitions`, of table `table_name`'s log that orders the writes of
    /// the item with key (or whole item) `key`.
    ///
    /// # Errors
    /// ResourceNotFound for a missing table; Validation when `key` lacks the partition key.
    pub fn log_partition(
        &self,
        table_name: &str,
        key: &crate::model::Item,
        partitions: u32,
    ) -> Result<u32> {
        let table = self.item_table(table_name)?;
        let value = key.get(&table.shape.hash.name).ok_or_else(|| {
            crate::Error::Validation("The provided key element does not match the schema".into())
        })?;
        Ok(crate::storage::keys::log_partition(value, partitions))
    }

    /// A stamp of this node for a write it takes now, for the log record that carries it to
    /// every copy.
    ///
    /// # Errors
    /// The clock has no reading left.
    pub fn mint_stamp(&self) -> Result<crate::stamp::Stamp> {
        self.storage.pipeline.mint_stamp()
    }

    /// Bytes the database occupies on disk.
    pub fn disk_space(&self) -> u64 {
        self.storage.disk_space()
    }

    /// Bytes on disk of each keyspace (items, the change log and its per-table index,
    /// secondary indexes), after writing what is still in memory to disk.
    ///
    /// # Errors
    /// Storage failures.
    pub fn disk_usage(&self) -> Result<Vec<(&'static str, u64)>> {
        self.storage.disk_usage()
    }
}
