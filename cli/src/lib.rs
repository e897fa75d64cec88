//! tidemark-cli: the node (HTTP server and wiring) as a library, plus the `tidemark` binary.
//!
//! [`Node::start`] opens the store, binds the listener and serves the DynamoDB API until
//! stopped; [`Node::stop`] stops accepting, drains in-flight requests and persists the store.
//! The binary (`main.rs`) only parses arguments ([`args`]), starts a node and waits for a
//! signal. Tests start nodes in-process the same way.

pub mod args;
pub mod command;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tidemark_core::{Clock, Store, StoreConfig, SystemClock};
use tidemark_streams::publish::kafka::{KafkaSettings, Publishers};
use tidemark_streams::rotation;
use tidemark_streams::ttl::{self, SweepTrigger};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use server::AppState;

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The item store's settings.
    pub store: StoreConfig,
    /// Longest pause of the TTL sweeper between passes.
    pub ttl_period: Duration,
    /// How long a generation of stream shards stays open before the next one starts.
    pub shard_rotation_period: Duration,
    /// The Kafka cluster tables are published to (none: publishing cannot be turned on).
    pub kafka: Option<KafkaSettings>,
    /// Defaults for topics the node creates.
    pub topics: TopicDefaults,
    /// Unpublished records of a table past which the node warns loudly.
    pub publish_lag_warn_records: u64,
    /// How often each published table's lag is logged and set in the metrics.
    pub publish_lag_report_period: Duration,
}

/// Defaults for the topics of published tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDefaults {
    /// Topic name template; `{region}` and `{table}` are replaced.
    pub name_template: String,
    /// Partitions of a created topic.
    pub partitions: i32,
    /// Replication factor of a created topic.
    pub replication_factor: i16,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            name_template: "tidemark.{region}.{table}".into(),
            partitions: 3,
            replication_factor: 1,
        }
    }
}

impl NodeConfig {
    /// A node on `listen` with `store`, sweeping TTL every second and rotating stream shards
    /// every four hours.
    pub fn new(listen: SocketAddr, store: StoreConfig) -> Self {
        NodeConfig {
            listen,
            store,
            ttl_period: Duration::from_secs(1),
            shard_rotation_period: Duration::from_secs(4 * 3600),
            kafka: None,
            topics: TopicDefaults::default(),
            publish_lag_warn_records: 1_000_000,
            publish_lag_report_period: Duration::from_secs(10),
        }
    }
}

/// Why a node failed to start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed to open or persist.
    #[error("store: {0}")]
    Store(#[from] tidemark_core::Error),
    /// Binding or serving failed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// A task of the node panicked or was cancelled.
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// An operator command's request to a node failed.
    #[error("{0}")]
    Admin(String),
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    addr: SocketAddr,
    store: Arc<Store>,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    trimmer: JoinHandle<()>,
    index_builder: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    rotation: JoinHandle<()>,
    sweep_trigger: SweepTrigger,
    publishers: Arc<Publishers>,
    lag_reporter: JoinHandle<()>,
}

impl Node {
    /// Opens the store and starts serving, with the system clock.
    ///
    /// # Errors
    /// The store cannot be opened (e.g. the data folder is in use) or the address not bound.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        Node::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Opens the store with an injected clock and starts serving.
    ///
    /// # Errors
    /// The store cannot be opened (e.g. the data folder is in use) or the address not bound.
    pub async fn start_with_clock(
        config: NodeConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Node, NodeError> {
        let store_config = config.store.clone();
        let store =
            tokio::task::spawn_blocking(move || Store::open_with_clock(store_config, clock))
                .await??;
        let store = Arc::new(store);
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        server::install_metrics();
        let publishers = Arc::new(Publishers::new(store.clone(), config.kafka.clone()));
        publishers.reconcile();
        let lag_reporter = tokio::spawn(publishers.clone().report_lag(
            config.publish_lag_report_period,
            config.publish_lag_warn_records,
            shutdown.clone(),
        ));
        let state = AppState {
            store: store.clone(),
            publishers: publishers.clone(),
            topics: Arc::new(config.topics.clone()),
        };
        let sweep_trigger = SweepTrigger::default();
        let token = shutdown.clone();
        let server = tokio::spawn(server::serve(listener, state, async move {
            token.cancelled().await
        }));
        let trimmer = tokio::spawn(trim_history_periodically(store.clone(), shutdown.clone()));
        let index_builder = tokio::spawn(build_indexes(store.clone(), shutdown.clone()));
        let sweeper = tokio::spawn(ttl::run_sweeper(
            store.clone(),
            config.ttl_period,
            sweep_trigger.clone(),
            shutdown.clone(),
        ));
        let rotation = tokio::spawn(rotation::run_shard_rotation(
            store.clone(),
            config.shard_rotation_period,
            shutdown.clone(),
        ));
        Ok(Node {
            addr,
            store,
            shutdown,
            server,
            trimmer,
            index_builder,
            sweeper,
            rotation,
            sweep_trigger,
            publishers,
            lag_reporter,
        })
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Wakes the TTL sweeper for a pass now (it also wakes by itself).
    pub fn sweep_ttl_now(&self) {
        self.sweep_trigger.sweep_now();
    }

    /// Stops accepting, drains in-flight requests, then persists the store.
    ///
    /// # Errors
    /// The server failed, or the final persist failed.
    pub async fn stop(self) -> Result<(), NodeError> {
        self.shutdown.cancel();
        self.server.await??;
        self.trimmer.await?;
        self.index_builder.await?;
        self.sweeper.await?;
        self.rotation.await?;
        self.publishers.stop().await;
        self.lag_reporter.await?;
        let store = self.store;
        tokio::task::spawn_blocking(move || store.persist()).await??;
        Ok(())
    }
}

/// Trims the change log to the history window, a tenth of the window apart (at most a minute),
/// until shut down.
async fn trim_history_periodically(store: Arc<Store>, shutdown: CancellationToken) {
    let every = (store.config().history_window / 10).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(60),
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.trim_history()).await {
            Ok(Ok(report)) if report.records > 0 => {
                tracing::debug!(
                    records = report.records,
                    tombstones = report.tombstones,
                    "trimmed history"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "trimming history failed"),
            Err(e) => tracing::warn!(error = %e, "trimming task failed"),
        }
    }
}

/// Backfills new global secondary indexes in the background: once at start (resuming any a
/// restart interrupted) and whenever UpdateTable creates one, until shut down.
async fn build_indexes(store: Arc<Store>, shutdown: CancellationToken) {
    loop {
        let worker = store.clone();
        match tokio::task::spawn_blocking(move || worker.run_pending_backfills()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(finished)) => tracing::info!(finished, "index backfill finished"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "index backfill failed; retried on the next request")
            }
            Err(e) => tracing::warn!(error = %e, "index backfill task failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = store.backfill_requested() => {}
        }
    }
}
