//! Group commit and the durable watermark: when a committed write counts as durable.
//!
//! Under `sync`, writers commit their batch with `Buffer` (journal written to the OS) and then
//! wait; one syncer thread fsyncs the journal once for every writer that committed meanwhile
//! ([`JournalSync`], outside fjall's journal lock) and advances the durable watermark. A
//! per-batch `SyncData` would cost one fsync per write (fjall's concurrent syncs do not
//! group). Under `buffer`, a write is durable once committed, and the same thread syncs the
//! journal in the background to bound what a power loss can take.
//!
//! The commit path ([`super::commit`]) brackets each batch commit with
//! [`Durable::begin_commit`] and [`Durable::finish_commit`]; readers of the log never read
//! past [`Durable::durable_seq`].
//!
//! A second watermark, [`Durable::on_disk_seq`], says what a journal sync has covered,
//! whatever the mode (under `sync` it is the durable watermark itself). Replication keeps to
//! it: a region acknowledges a peer's changes and ships its own only once they are on disk,
//! so a power cut under `buffer` never takes back a change another region already has.
//! [`Durable::wait_on_disk`] asks the background syncer for a sync at once rather than
//! waiting for its next round.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjall::Database;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::journal::JournalSync;
use tidemark_model::changes::ChangeSeq;
use tidemark_model::{Error, Halt, Result};

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

/// How often the journal is synced in the background under `buffer`, unless the store is
/// opened with another interval.
pub const BACKGROUND_SYNC_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct SyncState {
    committed: ChangeSeq,
    durable: ChangeSeq,
    /// Covered by a journal sync (equal to `durable` under `sync`).
    on_disk: ChangeSeq,
    /// Under `buffer`: someone waits for a change to be on disk, so the background syncer
    /// syncs now instead of at its next interval.
    sync_wanted: bool,
    /// The syncer has stopped: nothing committed from now on gets on disk by it.
    stopped: bool,
    failure: Option<String>,
    shutdown: bool,
}

/// Group commit and the durable watermark.
#[derive(Debug)]
pub struct Durable {
    mode: Durability,
    state: Mutex<SyncState>,
    wake_syncer: Condvar,
    synced: Condvar,
    watermark: watch::Sender<ChangeSeq>,
    /// A watch of `SyncState::on_disk`.
    on_disk_watermark: watch::Sender<ChangeSeq>,
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
    /// Starts the syncer thread of `mode` over the journal of the database in `dir`, with
    /// everything up to `last_seq` already durable (it was recovered from disk).
    pub(super) fn start(
        db: &Database,
        dir: &Path,
        (mode, background_sync): (Durability, Duration),
        last_seq: ChangeSeq,
        halt: Halt,
    ) -> Result<(Arc<Durable>, JoinHandle<()>)> {
        let durable = Arc::new(Durable::new(mode, last_seq, halt));
        let (syncing, db, journal) = (durable.clone(), db.clone(), JournalSync::new(dir));
        let syncer = std::thread::Builder::new()
            .name("tidemark-journal-sync".into())
            .spawn(move || match mode {
                Durability::Sync => syncing.run_syncer(&db, journal),
                Durability::Buffer => syncing.run_background_sync(&db, journal, background_sync),
            })
            .map_err(|e| Error::Internal(format!("cannot start the journal syncer: {e}")))?;
        Ok((durable, syncer))
    }

    fn new(mode: Durability, last_seq: ChangeSeq, halt: Halt) -> Self {
        Durable {
            halt,
            mode,
            state: Mutex::new(SyncState {
                committed: last_seq,
                durable: last_seq,
                on_disk: last_seq,
                ..Default::default()
            }),
            wake_syncer: Condvar::new(),
            synced: Condvar::new(),
            watermark: watch::Sender::new(last_seq),
            on_disk_watermark: watch::Sender::new(last_seq),
            committing: AtomicUsize::new(0),
        }
    }

    /// Why the store halted, if it did: no commit may start then.
    pub(super) fn halted(&self) -> Option<String> {
        self.halt.reason().map(|reason| reason.to_string())
    }

    /// Marks a writer as between the sequencer and its batch commit, so the syncer can wait
    /// (briefly) for it and cover it with the same fsync.
    pub(super) fn begin_commit(&self) {
        self.committing.fetch_add(1, Ordering::AcqRel);
    }

    /// Ends a writer's commit, successful or not, and asks the syncer to make it durable.
    pub(super) fn finish_commit(&self, committed: Result<ChangeSeq>) -> Result<ChangeSeq> {
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
    pub async fn wait_durable_async(&self, seq: ChangeSeq) -> Result<()> {
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

    /// Waits until the change `seq` (committed) is covered by a journal sync, whatever the
    /// mode: under `buffer` the background syncer is asked to sync at once.
    pub fn wait_on_disk(&self, seq: ChangeSeq) -> Result<()> {
        let mut state = self.state.lock();
        while state.on_disk < seq {
            if let Some(failure) = &state.failure {
                return Err(Error::Halted(format!("journal sync failed: {failure}")));
            }
            if state.stopped {
                return Err(Error::Halted(
                    "the store closed before the change was synced to disk".into(),
                ));
            }
            if !state.sync_wanted && self.mode == Durability::Buffer {
                state.sync_wanted = true;
                self.wake_syncer.notify_all();
            }
            self.synced.wait(&mut state);
        }
        Ok(())
    }

    /// Asks for everything committed so far to be on disk soon (under `buffer`: at once, not
    /// at the next background sync; under `sync` it always is), without waiting for it.
    pub fn request_sync(&self) {
        let mut state = self.state.lock();
        if self.mode == Durability::Buffer && state.on_disk < state.committed {
            state.sync_wanted = true;
            self.wake_syncer.notify_all();
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
                    state.stopped = true;
                    self.synced.notify_all();
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
                    state.committed.distance_from(state.durable),
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
                    state.on_disk = state.durable;
                    self.watermark.send_replace(state.durable);
                    self.on_disk_watermark.send_replace(state.on_disk);
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
        self.on_disk_watermark.send_modify(|_| {});
    }

    /// Under `buffer`: syncs the journal every `interval` while writes come
    /// in, and at once when someone waits for a change to be on disk. Acknowledgements never
    /// wait for it; it bounds what a power loss can take, and, IMPORTANT for latency, it
    /// keeps the journal nearly clean, so the full sync fjall makes under its journal lock
    /// before each memtable flush (which every commit waits behind) has little left to write.
    fn run_background_sync(&self, db: &Database, mut journal: JournalSync, interval: Duration) {
        loop {
            let (committed, on_disk, shutdown) = {
                let mut state = self.state.lock();
                if !state.shutdown && !state.sync_wanted {
                    self.wake_syncer.wait_for(&mut state, interval);
                }
                state.sync_wanted = false;
                (state.committed, state.on_disk, state.shutdown)
            };
            if committed != on_disk {
                // Every batch up to `committed` is in the journal (batches commit in sequence
                // order, under the sequencer), so this sync covers them all.
                if let Err(e) = sync_journal(&mut journal, db) {
                    self.fail(&mut self.state.lock(), &e);
                    return;
                }
                let mut state = self.state.lock();
                state.on_disk = state.on_disk.max(committed);
                self.on_disk_watermark.send_replace(state.on_disk);
                self.synced.notify_all();
            }
            if shutdown {
                let mut state = self.state.lock();
                state.stopped = true;
                self.synced.notify_all();
                return;
            }
        }
    }

    /// Asks the syncer thread to stop once everything committed so far is durable.
    pub(super) fn stop(&self) {
        let mut state = self.state.lock();
        state.shutdown = true;
        self.wake_syncer.notify_all();
    }

    /// Highest change sequence durable in the node's mode.
    pub fn durable_seq(&self) -> ChangeSeq {
        self.state.lock().durable
    }

    /// A watch of [`Durable::durable_seq`].
    pub fn subscribe(&self) -> watch::Receiver<ChangeSeq> {
        self.watermark.subscribe()
    }

    /// Highest change sequence covered by a journal sync, whatever the node's mode.
    pub fn on_disk_seq(&self) -> ChangeSeq {
        self.state.lock().on_disk
    }

    /// A watch of [`Durable::on_disk_seq`].
    pub fn subscribe_on_disk(&self) -> watch::Receiver<ChangeSeq> {
        self.on_disk_watermark.subscribe()
    }
}
