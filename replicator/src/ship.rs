//! Shipping this node's own-origin changes to one destination: a peer (direct transport) or
//! the replication topics (Kafka transport, see `crate::kafka`).
//!
//! One task per destination. Each round it reads, for every global table the destination
//! takes, the table's own-origin changes from where the destination's retention hold stands
//! (`peer/<region>/<table id>` or `replication-topic/<table id>`: the first change not
//! acknowledged yet), sends them as one batch, and moves each hold past what was
//! acknowledged. Only changes a journal sync has covered are read, in either durability
//! mode, so no region ever holds a change a power cut took back here. The hold is the durable
//! position: after a restart or `kill -9` of either side shipping resumes there, and the
//! trimmer keeps everything from there on. A change sent twice (the answer was lost) is a
//! no-op at the peer, because the same stamp never wins twice.
//!
//! Back-pressure: one batch in flight per destination, so a slow peer slows only its own
//! shipping, and the log (held) absorbs the difference. One at a time is also what keeps the
//! delivered-through clocks true (a peer may apply concurrent batches in any order), and what
//! measured best through Kafka: more batches in flight meant more, smaller produce requests
//! for the broker on the same cores (docs/benchmarks.md). Batches also start at most every
//! [`MIN_SEND_INTERVAL`], since each costs the destination a commit and an fsync whatever its
//! size. A peer that does not answer is retried with exponential backoff, up to
//! [`MAX_BACKOFF`].

use std::time::Duration;

use tidemark_core::TableId;
use tidemark_core::changes::{ChangeSeq, LogCursor, LogLimits};
use tidemark_core::replication::RemoteChange;
use tidemark_core::retention::HoldName;
use tokio_util::sync::CancellationToken;

use crate::client::PeerError;
use crate::kafka::KafkaLink;
use crate::membership::GlobalTable;
use crate::peers::Peer;
use crate::protocol::{ChangeBatch, WireChange};
use crate::{Replicator, RunError, blocking};

/// Where a shipper sends.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    /// A peer, over HTTP.
    Peer(Peer),
    /// The replication topics.
    Topics(std::sync::Arc<KafkaLink>),
}

impl Destination {
    /// The name its link state is kept under.
    fn name(&self) -> &str {
        match self {
            Destination::Peer(peer) => &peer.region,
            Destination::Topics(_) => "kafka",
        }
    }

    /// The hold that keeps `table_id`'s changes for it.
    fn hold(&self, table_id: TableId) -> HoldName {
        match self {
            Destination::Peer(peer) => HoldName::Peer {
                region: peer.region.clone(),
                table_id,
            },
            Destination::Topics(_) => HoldName::ReplicationTopic { table_id },
        }
    }

    /// True when it takes the changes of a table with this membership, made in `region`.
    fn takes(&self, global: &GlobalTable, region: &str) -> bool {
        if !global.replicas.contains_key(region) {
            return false;
        }
        match self {
            Destination::Peer(peer) => global.receivers_besides(region).any(|r| r == peer.region),
            Destination::Topics(_) => global.receivers_besides(region).next().is_some(),
        }
    }

    async fn send(
        &self,
        client: &crate::client::PeerClient,
        region: &str,
        batch: ChangeBatch,
    ) -> Result<(), PeerError> {
        match self {
            Destination::Peer(peer) => client.post_changes(peer, &batch).await.map(|answer| {
                if !answer.missing_tables.is_empty() {
                    tracing::debug!(peer = %peer.region, tables = ?answer.missing_tables,
                            "the peer has no replica of these tables; their changes are dropped");
                }
            }),
            Destination::Topics(link) => link.send(region, batch).await,
        }
    }
}

/// Most changes in one batch.
const BATCH_CHANGES: usize = 2_000;
/// Most bytes of items in one batch (one change may pass it): a peer takes requests of up to
/// 16 MB, and an item may hold 400 KB.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Longest wait between retries of a peer that does not answer.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Least time between the starts of two batches to one destination.
const MIN_SEND_INTERVAL: Duration = Duration::from_millis(5);
/// Longest a round waits for the journal sync it asked for (one takes a few milliseconds).
const SYNC_WAIT: Duration = Duration::from_millis(100);
/// Least time between two rounds of delivered-through marks in the replication topics.
const MARK_EVERY: Duration = Duration::from_millis(250);
/// How often an idle shipper looks again even when nothing woke it.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// What one round read: the batch, where each table's hold moves once it is acknowledged,
/// and what the peer will then have of each table (see [`ChangeBatch::delivered`]).
struct Round {
    changes: Vec<WireChange>,
    advances: Vec<(HoldName, ChangeSeq)>,
    delivered: std::collections::BTreeMap<String, u64>,
}

impl Replicator {
    /// Ships to `destination` until `shutdown`.
    pub(crate) async fn ship(
        self: std::sync::Arc<Self>,
        destination: Destination,
        shutdown: CancellationToken,
    ) -> Result<(), RunError> {
        let name = destination.name().to_string();
        let mut backoff = Duration::from_millis(100);
        // Only changes on disk are shipped (see `read_round`): the on-disk watermark says
        // when there is more; the durable one, when there is something to sync first.
        let mut durable = self.store.subscribe_durable();
        let mut on_disk = self.store.subscribe_on_disk();
        let mut last_sent = tokio::time::Instant::now();
        let mut last_marked = last_sent;
        let mut last_started = last_sent;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // IMPORTANT for a busy source: every batch costs the destination a commit and an
            // fsync (or the broker a produce request) whatever its size, so batches start at
            // most every MIN_SEND_INTERVAL; the changes of that time go out together. A change
            // after a quiet spell still goes at once.
            let since = last_started.elapsed();
            if since < MIN_SEND_INTERVAL {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(MIN_SEND_INTERVAL - since) => {}
                }
            }
            // Under `buffer` a commit reaches the disk at the next background sync (50 ms):
            // asking for it now, and waiting for that one sync, ships what is committed now
            // in this round rather than the next (a sync is asked for while each batch is
            // sent too, so it is mostly done by then).
            let committed = self.store.durable_seq();
            if self.store.on_disk_seq() < committed {
                self.store.request_sync();
                let synced = on_disk.wait_for(|seq| *seq >= committed);
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    // A failed sync stops the node; until then what is on disk goes.
                    _ = tokio::time::timeout(SYNC_WAIT, synced) => {}
                }
            }
            // Registered before reading, so a change committed meanwhile still wakes us.
            let changed = self.changed.notified();
            durable.borrow_and_update();
            on_disk.borrow_and_update();
            let me = self.clone();
            let reading = destination.clone();
            let round = match blocking(move || Ok(me.read_round(&reading))).await {
                Ok(Ok(round)) => round,
                Ok(Err(e)) | Err(crate::Error::Core(e)) if e.is_fatal() => {
                    return Err(RunError::Ship {
                        destination: name,
                        error: crate::Error::Core(e),
                    });
                }
                Ok(Err(e)) => {
                    tracing::warn!(destination = %name, error = %e, "reading changes to ship failed");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                Err(error) => {
                    return Err(RunError::Ship {
                        destination: name,
                        error,
                    });
                }
            };
            // An idle peer still hears, every second, how far it is served, so it can let
            // go of tombstones no older write can still reach.
            let heartbeat = !round.delivered.is_empty() && last_sent.elapsed() >= IDLE_RECHECK;
            if round.changes.is_empty() && !heartbeat {
                self.advance(&round.advances);
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = durable.changed() => {}
                    _ = on_disk.changed() => {}
                    _ = changed => {}
                    _ = tokio::time::sleep(IDLE_RECHECK) => {}
                }
                continue;
            }
            let count = round.changes.len() as u64;
            // A peer gets the clocks with every batch (a few bytes); the topics get them as
            // marks in every partition, a few times a second.
            let mut delivered = round.delivered;
            let marked = matches!(destination, Destination::Topics(_));
            if marked && last_marked.elapsed() < MARK_EVERY {
                delivered.clear();
            }
            let marks_sent = marked && !delivered.is_empty();
            let batch = ChangeBatch {
                changes: round.changes,
                delivered,
            };
            let sending = tokio::time::Instant::now();
            last_started = sending;
            if self.store.on_disk_seq() < self.store.durable_seq() {
                self.store.request_sync();
            }
            let sent = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                sent = destination.send(&self.client, self.region(), batch) => sent,
            };
            match sent {
                Ok(()) => {
                    tracing::debug!(destination = %name, changes = count,
                        took_us = sending.elapsed().as_micros() as u64, "batch acknowledged");
                    self.note_contact(&name, Ok(count));
                    self.advance(&round.advances);
                    backoff = Duration::from_millis(100);
                    last_sent = tokio::time::Instant::now();
                    if marks_sent {
                        last_marked = last_sent;
                    }
                }
                Err(e) => {
                    self.note_contact(&name, Err(&e));
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Reads the next batch for `destination`: every global table it takes, from its hold
    /// on, own-origin changes only.
    fn read_round(&self, destination: &Destination) -> tidemark_core::Result<Round> {
        let mut round = Round {
            changes: Vec::new(),
            advances: Vec::new(),
            delivered: std::collections::BTreeMap::new(),
        };
        // Bytes of the round's changes so far ([`WireChange::size`]).
        let mut bytes = 0;
        for (table, global) in GlobalTable::all(&self.store) {
            if !destination.takes(&global, self.region()) {
                continue;
            }
            let Ok(table_id) = self.store.table_id(&table) else {
                continue;
            };
            let name = destination.hold(table_id);
            let Some(hold) = self.store.hold(&name) else {
                continue;
            };
            let room = BATCH_CHANGES.saturating_sub(round.changes.len());
            let bytes_room = BATCH_BYTES.saturating_sub(bytes);
            if room == 0 || bytes_room == 0 {
                break;
            }
            // IMPORTANT: on disk only, whatever the durability mode: a change a power cut
            // can take back here must not be in another region (nor behind a
            // delivered-through clock it is told).
            let mut cursor = LogCursor::table(table_id, hold.from).local_only().on_disk();
            let records = self.store.read_log(
                &mut cursor,
                LogLimits {
                    records: room,
                    scanned: room * 4,
                    bytes: bytes_room,
                },
            )?;
            for r in records {
                let change = WireChange::from(RemoteChange {
                    table_name: r.table_name,
                    keys: r.keys,
                    new_image: r.new_image,
                    stamp: r.stamp,
                });
                bytes += change.size();
                round.changes.push(change);
            }
            if cursor.next > hold.from {
                round.advances.push((name, cursor.next));
            }
            // Every own change of the table before the cursor is in this batch or was
            // acknowledged; every later one has a stamp past the commit clock just before it.
            if let Some(clock) = self.store.commit_clock_at(cursor.next.saturating_prev())? {
                round.delivered.insert(table.clone(), clock.0);
            }
        }
        Ok(round)
    }

    /// Moves holds past what a peer acknowledged.
    fn advance(&self, advances: &[(HoldName, ChangeSeq)]) {
        for (name, next) in advances {
            if let Err(e) = self.store.advance_hold(name, *next) {
                tracing::warn!(hold = %name, error = %e, "cannot move a peer's hold");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidemark_core::model::{AttributeValue, Item};
    use tidemark_core::ops::{CreateTableRequest, PutItemRequest};
    use tidemark_core::replication::RemoteChange;
    use tidemark_core::{HlcTimestamp, Stamp, Store, StoreConfig};

    use super::*;
    use crate::membership::Replica;
    use crate::peers::{ReplicationConfig, Transport};
    use tidemark_core::Engine;

    const TABLE: &str = "shipped";

    fn peer() -> Peer {
        Peer::parse("eu=http://127.0.0.1:9").expect("a peer")
    }

    fn open(dir: &std::path::Path) -> (Engine, Arc<Replicator>) {
        let store = Engine::open(StoreConfig::for_tests(dir)).expect("open");
        let replicator = Replicator::new(
            &store,
            ReplicationConfig {
                region: "us".into(),
                peers: vec![peer()],
                transport: Transport::Direct,
                ..ReplicationConfig::default()
            },
        );
        (store, replicator)
    }

    fn keys(k: &str) -> Item {
        [("p".to_string(), AttributeValue::S(k.into()))].into()
    }

    fn put(store: &Store, k: &str) {
        store
            .put_item(PutItemRequest {
                table_name: TABLE.into(),
                item: keys(k),
                ..Default::default()
            })
            .expect("put");
    }

    /// Waits until every change committed so far is on disk: only those are shipped.
    fn synced(store: &Store) {
        store.wait_on_disk(store.durable_seq()).expect("on disk");
    }

    fn shipped(round: &Round) -> Vec<String> {
        round
            .changes
            .iter()
            .map(|c| match c.keys.get("p") {
                Some(AttributeValue::S(k)) => k.clone(),
                other => panic!("key {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_peer_resumes_after_what_it_acknowledged_across_restarts() {
        let dir = tempfile::tempdir().expect("a folder");
        let destination = Destination::Peer(peer());
        {
            let (store, replicator) = open(dir.path());
            store
                .tables
                .create_table(CreateTableRequest::on_demand(TABLE, "p", "S"))
                .expect("create");
            put(&store.store, "before");
            // Made global here, eu's new replica seeded from here: what was written before is
            // in the snapshot eu is seeded from.
            let replicas = [("us", Replica::active()), ("eu", Replica::creating("us"))];
            crate::test_support::make_global(&store, &replicator, TABLE, &replicas, 1);
            for k in ["a", "b", "c"] {
                put(&store.store, k);
            }
            // Written in another region: applied here, never shipped back.
            store
                .replication
                .apply_remote_batch(vec![RemoteChange {
                    table_name: TABLE.into(),
                    keys: keys("theirs"),
                    new_image: Some(keys("theirs")),
                    stamp: Stamp {
                        hlc: HlcTimestamp(u64::MAX / 2),
                        region: "eu".into(),
                    },
                }])
                .expect("apply");
            synced(&store.store);
            let round = replicator.read_round(&destination).expect("read");
            assert_eq!(
                shipped(&round),
                ["a", "b", "c"],
                "what was written after the table became global, and made here"
            );
            let served = round.delivered.get(TABLE).copied().unwrap_or(0);
            assert!(
                served >= round.changes.last().map_or(u64::MAX, |c| c.clock),
                "the peer is told it has everything up to the last change sent"
            );
            replicator.advance(&round.advances);
            put(&store.store, "d");
            synced(&store.store);
            let unacknowledged = replicator.read_round(&destination).expect("read");
            assert_eq!(shipped(&unacknowledged), ["d"]);
            store.store.persist().expect("persist");
        }
        let (_store, replicator) = open(dir.path());
        let round = replicator.read_round(&destination).expect("read");
        assert_eq!(
            shipped(&round),
            ["d"],
            "after a restart, shipping resumes after what the peer acknowledged"
        );
        replicator.advance(&round.advances);
        assert!(
            replicator
                .read_round(&destination)
                .expect("read")
                .changes
                .is_empty()
        );
    }

    #[test]
    fn nothing_is_shipped_before_it_is_on_disk_even_under_buffer() {
        let dir = tempfile::tempdir().expect("a folder");
        let destination = Destination::Peer(peer());
        // The tests' stores acknowledge under `buffer`.
        let (store, replicator) = open(dir.path());
        let replicas = crate::test_support::active(&["us", "eu"]);
        crate::test_support::make_global(&store, &replicator, TABLE, &replicas, 1);
        put(&store.store, "synced");
        synced(&store.store);
        let round = replicator.read_round(&destination).expect("read");
        assert_eq!(shipped(&round), ["synced"]);
        replicator.advance(&round.advances);
        let served = round.delivered.get(TABLE).copied();

        let paused = crate::paused_sync::PausedSync::start();
        put(&store.store, "pending");
        let round = replicator.read_round(&destination).expect("read");
        assert!(
            round.changes.is_empty(),
            "a change acknowledged but not on disk is not shipped: {:?}",
            shipped(&round)
        );
        assert_eq!(
            round.delivered.get(TABLE).copied(),
            served,
            "nor does the peer hear it has everything up to it"
        );
        drop(paused);
        synced(&store.store);
        let round = replicator.read_round(&destination).expect("read");
        assert_eq!(shipped(&round), ["pending"], "shipped once on disk");
    }
}
