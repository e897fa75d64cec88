//! tidemark-replicator: global tables across regional nodes.
//!
//! Every node of a group serves its own region and replicates each global table to the
//! other regions' nodes, asynchronously, item by item, last writer wins by the stamp every
//! write already carries (core's [`tidemark_core::replication`] applies them):
//!
//! - [`peers`]: the group (`--peer REGION=URL`), the secrets of its links and the CA its
//!   `https://` peers are checked against;
//! - [`membership`]: the per-table document naming the replicas and the settings they share,
//!   kept the same in every region by merging documents, each setting and replica entry by
//!   last writer wins;
//! - [`protocol`] and [`client`]: what peers send each other, and how;
//! - `ship`: one task per destination (each peer, or the replication topics) tails this
//!   node's own-origin changes of every table it shares with that destination (from a
//!   durable, per-table retention hold), ships them in batches and moves the hold once the
//!   destination has them;
//! - [`kafka`]: the Kafka transport, where each region publishes its changes to a topic per
//!   table and consumes the other regions' topics (`kafka::reader`), instead of shipping to
//!   every peer;
//! - `receive`: applies what peers send and what the Kafka reader reads, counting conflicts;
//! - [`parked`]: replicated changes this node's store cannot hold, put aside (kept, counted,
//!   listed, retried) so that one of them does not stall its link;
//! - `control`: ReplicaUpdates (create, seed and delete replicas), shared-settings changes,
//!   and the periodic exchange of membership documents that makes the group converge after
//!   partitions and restarts; it asks peers through a transport trait (HTTP on a node, an
//!   in-memory network in its tests);
//! - [`antientropy`]: finds replicas that differ although everything was delivered (digests
//!   of hashed key buckets over every cell's key, stamp and tombstone flag) and repairs them
//!   through the same last-writer-wins path, in the background and on demand; and, with
//!   every cell compared, re-seeds a replica let go of once its region answers again;
//! - [`hold_limit`]: the bound on what is kept for a region that does not answer
//!   (`--peer-hold-limit`), and the replicas needing a re-seed because of it;
//! - [`clocks`]: each peer's clock offset, measured on every request; stamps too far ahead
//!   refused, and this node's own writes paused while its clock is away from most peers';
//! - [`status`]: link states, lag and the last conflicts, for operators;
//! - [`Error`] and [`RunError`]: why a replication request failed, and why replication
//!   stopped (a store failure kept as core's own `Error`).

pub mod antientropy;
pub mod client;
pub mod clocks;
mod control;
pub mod hold_limit;
pub mod kafka;
pub mod membership;
pub mod parked;
#[cfg(test)]
mod paused_sync;
pub mod peers;
pub mod protocol;
mod receive;
mod ship;
pub mod status;
#[cfg(test)]
mod test_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tidemark_core::{Engine, Replication, Store, Tables, Ttl};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use client::{PeerClient, PeerError};
use clocks::ClockOffsets;
pub use control::ReplicaUpdate;
use control::transport::ControlTransport;
use kafka::KafkaLink;
use peers::{ReplicationConfig, Transport};
use ship::Destination;
use status::{Conflicts, LinkState};

/// Why a replication request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed (or refused: unknown table, bad key).
    #[error(transparent)]
    Core(#[from] tidemark_core::Error),
    /// A peer could not be reached or refused.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The request is invalid (DynamoDB's ValidationException).
    #[error("{0}")]
    Validation(String),
    /// The table is being changed already (ResourceInUseException).
    #[error("{0}")]
    InUse(String),
    /// A stamp (of a change or a membership document) is further ahead of this node's clock
    /// than `--max-clock-offset`: nothing of the request was applied or observed.
    #[error(
        "a stamp of region {region} is {ahead_millis} ms ahead of this node's clock, more than \
         the {max_millis} ms --max-clock-offset allows; nothing is applied until the clocks \
         agree (check the clock of whichever node is off)"
    )]
    ClockAhead {
        /// The region whose stamp it is.
        region: String,
        /// How far ahead of this node's wall clock it is.
        ahead_millis: u64,
        /// The bound.
        max_millis: u64,
    },
    /// A peer asked for what its region may not do, such as shipping another region's
    /// changes (AccessDeniedException): refused whole, changing nothing.
    #[error("{0}")]
    NotAllowed(String),
}

/// Why replication stopped ([`Replicator::run`]): each is fatal to the node, which reports
/// it and exits.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Shipping to a peer or to the topics failed for good (the store failed).
    #[error("shipping to {destination} failed: {error}")]
    Ship {
        /// The peer's region, or the topics.
        destination: String,
        /// What failed.
        error: Error,
    },
    /// The Kafka transport could not connect, or its reader could not make its consumer.
    #[error(transparent)]
    Kafka(tidemark_kafka::Error),
    /// The reader of the replication topics met a fatal store error.
    #[error(transparent)]
    Store(tidemark_core::Error),
    /// The membership exchange met a fatal store error.
    #[error(transparent)]
    Membership(tidemark_core::Error),
    /// A replication task panicked.
    #[error("a replication task panicked: {0}")]
    Panicked(tokio::task::JoinError),
}

/// The result of replication requests.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A node's replication: its peers, links and the state operators see.
#[derive(Debug)]
pub struct Replicator {
    store: Arc<Store>,
    /// Replicas' tables are created, changed and deleted like a client's.
    tables: Arc<Tables>,
    /// Replicas share their TTL settings.
    ttl: Arc<Ttl>,
    /// Peers' changes are applied, and replicas seeded, through it.
    replication: Arc<Replication>,
    config: ReplicationConfig,
    /// The shippers' client (direct transport).
    client: PeerClient,
    /// What the control plane asks peers through (the same client on a node).
    control: Arc<dyn ControlTransport>,
    /// Each peer's latest clock offset (the client measures them).
    offsets: Arc<ClockOffsets>,
    links: Mutex<BTreeMap<String, LinkState>>,
    conflicts: Conflicts,
    /// Replicated changes put aside.
    parked: parked::Parked,
    /// Partitions of replication topics the Kafka reader does not read, and why.
    topic_stops: kafka::TopicStops,
    /// Where the Kafka reader reads on in a region's topic of a table, as `(table, region)`
    /// to the next offset of each partition: set by a re-seed for the reader to take.
    topic_resumes: Mutex<BTreeMap<(String, String), Vec<i64>>>,
    /// The Kafka transport's link, once it runs.
    kafka: std::sync::OnceLock<Arc<KafkaLink>>,
    /// Serialises every read-modify-write of membership documents on this node.
    membership: Mutex<()>,
    /// Wakes the shippers and the Kafka reader when membership changed.
    changed: Notify,
    /// Counts membership changes, for the Kafka reader to notice one between its waits.
    membership_epoch: std::sync::atomic::AtomicU64,
    /// Tables this node is seeding a replica of, as `table/region`.
    seeding: Mutex<BTreeSet<String>>,
    /// What each other region has delivered here of each table: `(table, region)` to the
    /// clock its changes up to are all here (since this node started).
    inbound: Mutex<BTreeMap<(String, String), u64>>,
    /// Per table, the millisecond its inbound hold was last moved to.
    inbound_moved: Mutex<BTreeMap<String, u64>>,
    /// How often membership documents are exchanged with every peer.
    exchange_period: Duration,
}

impl Replicator {
    /// The replication of `engine`'s store with `config` (checked by the caller).
    pub fn new(engine: &Engine, config: ReplicationConfig) -> Arc<Replicator> {
        let client = PeerClient::new(&config, engine.store.clock().clone());
        let control = Arc::new(client.clone());
        Replicator::with_control(engine, config, client, control)
    }

    /// The replication of `engine`'s store with `config`, shipping through `client` and
    /// asking peers for the control plane through `control`.
    pub(crate) fn with_control(
        engine: &Engine,
        config: ReplicationConfig,
        client: PeerClient,
        control: Arc<dyn ControlTransport>,
    ) -> Arc<Replicator> {
        let links = config
            .peers
            .iter()
            .map(|p| (p.region.clone(), LinkState::default()))
            .collect();
        Arc::new(Replicator {
            store: engine.store.clone(),
            tables: engine.tables.clone(),
            ttl: engine.ttl.clone(),
            replication: engine.replication.clone(),
            config,
            offsets: client.offsets().clone(),
            client,
            control,
            links: Mutex::new(links),
            conflicts: Conflicts::default(),
            parked: parked::Parked::default(),
            topic_stops: kafka::TopicStops::default(),
            topic_resumes: Mutex::new(BTreeMap::new()),
            kafka: std::sync::OnceLock::new(),
            membership: Mutex::new(()),
            changed: Notify::new(),
            membership_epoch: std::sync::atomic::AtomicU64::new(0),
            seeding: Mutex::new(BTreeSet::new()),
            inbound: Mutex::new(BTreeMap::new()),
            inbound_moved: Mutex::new(BTreeMap::new()),
            exchange_period: Duration::from_secs(2),
        })
    }

    /// Tells the shippers and the Kafka reader that a membership document changed here.
    fn membership_changed(&self) {
        self.membership_epoch
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        self.changed.notify_waiters();
    }

    /// How many membership changes this node has seen since it started.
    fn membership_epoch(&self) -> u64 {
        self.membership_epoch
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// This node's settings.
    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    /// This node's region.
    pub fn region(&self) -> &str {
        &self.config.region
    }

    /// The store replicated.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The conflicts seen.
    pub fn conflicts(&self) -> &Conflicts {
        &self.conflicts
    }

    /// Runs the shippers (one per peer) and the membership exchange until `shutdown`.
    ///
    /// # Errors
    /// Why replication stopped (the node must stop): see [`RunError`].
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), RunError> {
        let mut tasks = tokio::task::JoinSet::new();
        match &self.config.transport {
            Transport::Direct => {
                for peer in self.config.peers.clone() {
                    let (me, token) = (self.clone(), shutdown.clone());
                    tasks.spawn(async move { me.ship(Destination::Peer(peer), token).await });
                }
            }
            Transport::Kafka {
                cluster,
                topic_retention,
            } => {
                let link = Arc::new(
                    KafkaLink::connect(cluster, *topic_retention).map_err(RunError::Kafka)?,
                );
                let link = self.kafka.get_or_init(|| link).clone();
                let (me, token, topics) = (self.clone(), shutdown.clone(), link.clone());
                tasks.spawn(async move { me.ship(Destination::Topics(topics), token).await });
                let (me, token) = (self.clone(), shutdown.clone());
                tasks.spawn(async move { me.consume(link, token).await.map_err(RunError::from) });
            }
        }
        let me = self.clone();
        tasks.spawn(async move { me.retry_parked_at_start().await });
        let (me, token) = (self.clone(), shutdown.clone());
        tasks.spawn(async move {
            me.exchange_membership(token)
                .await
                .map_err(RunError::Membership)
        });
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    shutdown.cancel();
                    return Err(e);
                }
                Err(e) => {
                    shutdown.cancel();
                    return Err(RunError::Panicked(e));
                }
            }
        }
        Ok(())
    }

    /// Notes how a request to `region` went.
    fn note_contact(&self, region: &str, outcome: std::result::Result<u64, &PeerError>) {
        let now = self.store.clock().now_millis();
        let mut links = self.links.lock();
        let link = links.entry(region.to_string()).or_default();
        match outcome {
            Ok(shipped) => {
                if !link.reachable && link.last_error.is_some() {
                    tracing::info!(peer = region, "peer reachable again");
                }
                link.reachable = true;
                link.last_contact_millis = Some(now);
                link.last_error = None;
                link.shipped += shipped;
            }
            Err(e) => {
                if link.reachable || link.last_error.is_none() {
                    match e {
                        PeerError::Unreachable { .. } => tracing::warn!(peer = region, error = %e,
                            "peer unreachable; retrying with backoff"),
                        PeerError::Refused { .. } => tracing::warn!(peer = region, error = %e,
                            "peer refused; retrying with backoff"),
                    }
                }
                link.reachable = false;
                link.last_error = Some(e.to_string());
            }
        }
        drop(links);
        self.check_clock_agreement();
    }

    /// The state of the link to `region`.
    pub fn link(&self, region: &str) -> LinkState {
        let mut link = self.links.lock().get(region).cloned().unwrap_or_default();
        if let Some(offset) = self.offsets.of(region) {
            link.clock_offset_millis = Some(offset.offset_millis);
            link.round_trip_millis = Some(offset.round_trip_millis);
        }
        link
    }

    /// Each peer's latest clock offset.
    pub fn clock_offsets(&self) -> &ClockOffsets {
        &self.offsets
    }
}

/// Runs blocking store work off the async reactor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Core(tidemark_core::Error::Internal(e.to_string())))?
}
