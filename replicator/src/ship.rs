//! Shipping this node's own-origin changes to one peer.
//!
//! One task per peer. Each round it reads, for every global table the peer holds a replica
//! of, the table's own-origin changes from where the peer's retention hold stands
//! (`peer/<region>/<table id>`: the first change the peer has not acknowledged), sends them as
//! one batch, and moves each hold past what the peer acknowledged. The hold is the durable
//! position: after a restart or `kill -9` of either side shipping resumes there, and the
//! trimmer keeps everything from there on. A change sent twice (the answer was lost) is a
//! no-op at the peer, because the same stamp never wins twice.
//!
//! Back-pressure: one batch in flight per peer, so a slow peer slows only its own shipping,
//! and the log (held) absorbs the difference. A peer that does not answer is retried with
//! exponential backoff, up to [`MAX_BACKOFF`].

use std::time::Duration;

use tidemark_core::changes::{LogCursor, LogLimits};
use tidemark_core::replication::RemoteChange;
use tokio_util::sync::CancellationToken;

use crate::membership::{GlobalTable, hold_name};
use crate::peers::Peer;
use crate::protocol::{BatchAnswer, CHANGES_PATH, ChangeBatch, WireChange};
use crate::{Replicator, blocking};

/// Most changes in one batch.
const BATCH_CHANGES: usize = 2_000;
/// Longest wait between retries of a peer that does not answer.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an idle shipper looks again even when nothing woke it.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// What one round read: the batch, and where each table's hold moves once it is acknowledged.
struct Round {
    changes: Vec<WireChange>,
    advances: Vec<(String, u64)>,
}

impl Replicator {
    /// Ships to `peer` until `shutdown`.
    pub(crate) async fn ship_to(
        self: std::sync::Arc<Self>,
        peer: Peer,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let mut backoff = Duration::from_millis(100);
        let mut durable = self.store.subscribe_durable();
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // Registered before reading, so a change committed meanwhile still wakes us.
            let changed = self.changed.notified();
            durable.borrow_and_update();
            let me = self.clone();
            let region = peer.region.clone();
            let round = match blocking(move || Ok(me.read_round(&region))).await {
                Ok(Ok(round)) => round,
                Ok(Err(e)) | Err(crate::Error::Core(e)) if e.is_fatal() => {
                    return Err(format!("shipping to {} failed: {e}", peer.region));
                }
                Ok(Err(e)) => {
                    tracing::warn!(peer = %peer.region, error = %e, "reading changes to ship failed");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                Err(e) => return Err(format!("shipping to {} failed: {e}", peer.region)),
            };
            if round.changes.is_empty() {
                self.advance(&round.advances);
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = durable.changed() => {}
                    _ = changed => {}
                    _ = tokio::time::sleep(IDLE_RECHECK) => {}
                }
                continue;
            }
            let count = round.changes.len() as u64;
            let batch = ChangeBatch {
                changes: round.changes,
            };
            let sent = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                sent = self.client.post::<_, BatchAnswer>(&peer, CHANGES_PATH, &batch) => sent,
            };
            match sent {
                Ok(answer) => {
                    self.note_contact(&peer.region, Ok(count));
                    if !answer.missing_tables.is_empty() {
                        tracing::debug!(peer = %peer.region, tables = ?answer.missing_tables,
                            "the peer has no replica of these tables; their changes are dropped");
                    }
                    self.advance(&round.advances);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    self.note_contact(&peer.region, Err(&e));
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Reads the next batch for `region`: every global table it holds a replica of, from its
    /// hold on, own-origin changes only.
    fn read_round(&self, region: &str) -> tidemark_core::Result<Round> {
        let mut round = Round {
            changes: Vec::new(),
            advances: Vec::new(),
        };
        for (table, global) in GlobalTable::all(&self.store) {
            if !global.replicas.contains_key(self.region())
                || !global.receivers_besides(self.region()).any(|r| r == region)
            {
                continue;
            }
            let Ok(table_id) = self.store.table_id(&table) else {
                continue;
            };
            let name = hold_name(region, table_id);
            let Some(hold) = self.store.hold(&name) else {
                continue;
            };
            let room = BATCH_CHANGES.saturating_sub(round.changes.len());
            if room == 0 {
                break;
            }
            let mut cursor = LogCursor::table(table_id, hold.from).local_only();
            let records = self.store.read_log(
                &mut cursor,
                LogLimits {
                    records: room,
                    scanned: room * 4,
                },
            )?;
            round.changes.extend(records.into_iter().map(|r| {
                WireChange::from(RemoteChange {
                    table_name: r.table_name,
                    keys: r.keys,
                    new_image: r.new_image,
                    stamp: r.stamp,
                })
            }));
            if cursor.next > hold.from {
                round.advances.push((name, cursor.next));
            }
        }
        Ok(round)
    }

    /// Moves holds past what a peer acknowledged.
    fn advance(&self, advances: &[(String, u64)]) {
        for (name, next) in advances {
            if let Err(e) = self.store.advance_hold(name, *next) {
                tracing::warn!(hold = %name, error = %e, "cannot move a peer's hold");
            }
        }
    }
}
