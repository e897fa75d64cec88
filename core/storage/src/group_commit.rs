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

/// How often the journal is synced in the background under `buffer`.
const BACKGROUND_SYNC_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct SyncState {
    committed: ChangeSeq,
    durable: ChangeSeq,
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
        mode: Durability,
        last_seq: ChangeSeq,
        halt: Halt,
    ) -> Result<(Arc<Durable>, JoinHandle<()>)> {
        let durable = Arc::new(Durable::new(mode, last_seq, halt));
        let (syncing, db, journal) = (durable.clone(), db.clone(), JournalSync::new(dir));
        let syncer = std::thread::Builder::new()
            .name("tidemark-journal-sync".into())
            .spawn(move || match mode {
                Durability::Sync => syncing.run_syncer(&db, journal),
                Durability::Buffer => syncing.run_background_sync(&db, journal),
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
                ..Default::default()
            }),
            wake_syncer: Condvar::new(),
            synced: Condvar::new(),
            watermark: watch::Sender::new(last_seq),
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
}
