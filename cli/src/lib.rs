//! tidemark-cli: the node (HTTP server and wiring) as a library, plus the `tidemark` binary.
//!
//! [`Node::start`] opens the store and its services (an [`Engine`]), binds the listener and
//! serves the DynamoDB API until stopped; [`Node::stop`] stops accepting, drains in-flight
//! requests and persists the store.
//! The node supervises every task it starts (server, status page sampler, history trimmer,
//! index builder, backup and restore runner, TTL sweeper, shard rotation, publishing lag
//! reporter, replicator; a Kafka publisher that panics halts the store too): if one fails,
//! panics or stops early, or the store halts on a fatal error, [`Node::failed`] resolves and
//! the binary exits non-zero rather than limp on.
//! The binary (`main.rs`) only calls [`command`], which parses the arguments ([`args`]) and
//! either starts a node and waits for a signal or a failure (`tidemark serve`), or runs an
//! operator command against a running node through its signed API (`client`: tables, stream
//! tail, exports, imports, restores from Kafka, publishing, replicas, TTL sweeps). Tests start
//! nodes in-process the same way.

pub mod args;
mod client;
pub mod cluster;
pub mod command;
mod operator;
mod output;
pub mod server;
mod transfers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tidemark_core::{Backups, Clock, Engine, Store, StoreConfig, SystemClock, Tables};
use tidemark_kafka::KafkaSettings;
use tidemark_replicator::Replicator;
use tidemark_replicator::antientropy::AntiEntropyConfig;
use tidemark_replicator::peers::ReplicationConfig;
use tidemark_streams::publish::kafka::Publishers;
use tidemark_streams::rotation;
use tidemark_streams::transfer::Transfers;
use tidemark_streams::ttl::{self, SweepTrigger};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use server::{AppState, NodeState};

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
    /// The Kafka cluster tables are published to, and how the node creates topics there
    /// (none: publishing cannot be turned on).
    pub kafka: Option<KafkaSettings>,
    /// The name of a published table's topic, unless its publishing names one; `{region}`
    /// and `{table}` are replaced.
    pub topic_template: String,
    /// Unpublished records of a table past which the node warns loudly.
    pub publish_lag_warn_records: u64,
    /// How often each published table's lag is logged and set in the metrics.
    pub publish_lag_report_period: Duration,
    /// Peers and the secret of their links (global tables). Its region is the store's.
    pub replication: ReplicationConfig,
    /// How often, and how fast, global tables are compared with their other replicas.
    pub anti_entropy: AntiEntropyConfig,
    /// The folder exports are written to and imports read from: a request's `S3Bucket` is a
    /// folder in it. `None`: `<data dir>/exports`.
    pub export_root: Option<std::path::PathBuf>,
    /// The access keys requests must be signed with (`None`: requests are not checked).
    pub credentials: Option<server::auth::Credentials>,
    /// The certificate and key to serve HTTPS with (`None`: plain HTTP).
    pub tls: Option<server::tls::TlsFiles>,
    /// The cluster region the node is part of (`None`: a region of its own).
    pub cluster: Option<cluster::ClusterConfig>,
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
            topic_template: "tidemark.{region}.{table}".into(),
            publish_lag_warn_records: 1_000_000,
            publish_lag_report_period: Duration::from_secs(10),
            replication: ReplicationConfig::default(),
            anti_entropy: AntiEntropyConfig::default(),
            export_root: None,
            credentials: None,
            tls: None,
            cluster: None,
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
    /// The node could not go on (its store halted, or a task it needs stopped).
    #[error("the node failed: {0}")]
    Failed(String),
    /// The node's settings are unsafe or inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// The replication settings do not make a safe group.
    #[error("configuration: {0}")]
    Replication(#[from] tidemark_replicator::peers::ConfigError),
    /// The `--credentials` file cannot be read or is not keys.
    #[error("configuration: --credentials: {0}")]
    Credentials(#[from] server::auth::CredentialsFileError),
    /// The `--tls-cert` and `--tls-key` files do not make a TLS acceptor.
    #[error("configuration: {0}")]
    Tls(#[from] server::tls::TlsError),
    /// Publishing settings could not be read.
    #[error("publishing: {0}")]
    Streams(#[from] tidemark_streams::Error),
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    addr: SocketAddr,
    store: Arc<Store>,
    engine: Engine,
    shutdown: CancellationToken,
    /// Watches every task the node needs; ends once they all have.
    supervisor: JoinHandle<()>,
    sweep_trigger: SweepTrigger,
    publishers: Arc<Publishers>,
}

/// Makes `store` write only through the cluster region's logs, and the writer to them.
fn start_cluster(
    store: &Store,
    settings: &cluster::ClusterConfig,
    listening: SocketAddr,
    https: bool,
) -> Result<cluster::Cluster, NodeError> {
    let single: Vec<String> = (store.table_definitions().into_iter())
        .filter(|definition| definition.write_log.is_none())
        .map(|definition| definition.table_name)
        .collect();
    if !single.is_empty() {
        return Err(NodeError::Config(format!(
            "--cluster {}: this data folder holds tables of a single node ({}); a cluster \
             region's node starts from a new folder or one of the region's",
            settings.name,
            single.join(", ")
        )));
    }
    store.require_logged_writes();
    let scheme = if https { "https" } else { "http" };
    let advertise =
        (settings.advertise.clone()).unwrap_or_else(|| format!("{scheme}://{listening}"));
    cluster::Cluster::new(settings.clone(), advertise)
        .map_err(|e| NodeError::Config(format!("--cluster {}: {e}", settings.name)))
}

/// How a supervised task of the node ended: `Err` only for what the node cannot go on after.
type TaskResult = Result<(), String>;

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
        let mut replication = config.replication.clone();
        replication.region = config.store.region.clone();
        replication.check()?;
        if replication.secret.is_some() {
            tracing::info!(
                "peer links share one group secret, which does not tell regions apart (any \
                 member can pass as any region); give each link its own with \
                 --peer-link-secret REGION=SECRET"
            );
        }
        let store_config = config.store.clone();
        let engine = tokio::task::spawn_blocking(move || {
            let engine = Engine::open_with_clock(store_config, clock)?;
            // Before anything trims: every published table's history is held.
            tidemark_streams::publish::settings::ensure_holds(&engine.store)?;
            Ok::<_, NodeError>(engine)
        })
        .await??;
        let store = engine.store.clone();
        let tls = config.tls.as_ref().map(server::tls::acceptor).transpose()?;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        server::install_metrics();
        let publishers = Arc::new(Publishers::new(store.clone(), config.kafka.clone()));
        publishers.reconcile()?;
        let replicator = Replicator::new(&engine, replication);
        let export_root = config
            .export_root
            .clone()
            .unwrap_or_else(|| config.store.data_dir.join("exports"));
        let transfers = Transfers::new(store.clone(), engine.backups.clone(), Some(export_root));
        let resuming = transfers.clone();
        tokio::task::spawn_blocking(move || resuming.resume())
            .await?
            .map_err(|e| NodeError::Config(format!("resuming exports and imports: {e}")))?;
        let cluster = match &config.cluster {
            Some(settings) => Some(Arc::new(start_cluster(
                &store,
                settings,
                addr,
                tls.is_some(),
            )?)),
            None => None,
        };
        let state = AppState::new(NodeState {
            engine: engine.clone(),
            publishers: publishers.clone(),
            topic_template: config.topic_template.clone(),
            replicator: replicator.clone(),
            transfers,
            credentials: config.credentials.clone().map(Arc::new),
            activity: Arc::default(),
            cluster: cluster.clone(),
        });
        let sampled = state.clone();
        let expiring = state.clone();
        match &config.credentials {
            Some(keys) => tracing::info!(
                keys = keys.len(),
                "requests must be signed (AWS Signature Version 4) with one of the configured keys"
            ),
            None if !addr.ip().is_loopback() => tracing::warn!(
                "NO AUTHENTICATION: listening on {addr} without --credentials, so anyone who can \
                 reach this address can read and write every table; give the node keys with \
                 --credentials FILE"
            ),
            None => {}
        }
        let sweep_trigger = SweepTrigger::default();

        let mut tasks = Tasks::default();
        if let Some(cluster) = cluster.clone() {
            tasks.spawn(
                "cluster membership",
                cluster::run_membership(cluster.clone(), shutdown.clone()),
            );
            let (caught_up, catching_up) = tokio::sync::oneshot::channel();
            let applier =
                cluster::start_applier(state.clone(), cluster, shutdown.clone(), caught_up);
            tasks.spawn("cluster applier", applier);
            // A node serves once it has applied what the region wrote while it was away.
            tokio::select! {
                caught_up = catching_up => caught_up.map_err(|_| NodeError::Failed(
                    "the cluster applier stopped before the node caught up with the region's \
                     logs".into(),
                ))?,
                reason = store.halt().halted() => {
                    return Err(NodeError::Failed(reason.to_string()));
                }
            }
        }
        let token = shutdown.clone();
        tasks.spawn("HTTP server", async move {
            server::serve(listener, state, tls, async move { token.cancelled().await })
                .await
                .map_err(|e| format!("serving failed: {e}"))
        });
        tasks.spawn(
            "status page sampler",
            server::ui::run_sampler(sampled, shutdown.clone()),
        );
        tasks.spawn(
            "history trimmer",
            trim_history_periodically(engine.clone(), shutdown.clone()),
        );
        tasks.spawn(
            "index builder",
            build_indexes(engine.tables.clone(), shutdown.clone()),
        );
        tasks.spawn(
            "backup and restore runner",
            run_backup_jobs(engine.backups.clone(), shutdown.clone()),
        );
        let (worker, trigger, token) = (store.clone(), sweep_trigger.clone(), shutdown.clone());
        let expiry = engine.ttl.clone();
        match &cluster {
            // On a cluster region, expiry goes through the logs.
            Some(cluster) => tasks.spawn(
                "TTL expiry",
                cluster::run_expiry(
                    expiring,
                    cluster.clone(),
                    config.ttl_period,
                    trigger.notify(),
                    token,
                ),
            ),
            None => tasks.spawn("TTL sweeper", async move {
                ttl::run_sweeper(worker, expiry, config.ttl_period, trigger, token)
                    .await
                    .map_err(|e| e.to_string())
            }),
        }
        let (worker, token) = (store.clone(), shutdown.clone());
        tasks.spawn("shard rotation", async move {
            rotation::run_shard_rotation(worker, config.shard_rotation_period, token)
                .await
                .map_err(|e| e.to_string())
        });
        let (reporter, token) = (publishers.clone(), shutdown.clone());
        tasks.spawn("publishing lag reporter", async move {
            reporter
                .report_lag(
                    config.publish_lag_report_period,
                    config.publish_lag_warn_records,
                    token,
                )
                .await
                .map_err(|e| e.to_string())
        });
        let token = shutdown.clone();
        let comparing = replicator.clone();
        tasks.spawn("replicator", async move {
            replicator.run(token).await.map_err(|e| e.to_string())
        });
        let (token, anti_entropy) = (shutdown.clone(), config.anti_entropy.clone());
        tasks.spawn("anti-entropy", async move {
            comparing
                .run_anti_entropy(anti_entropy, token)
                .await
                .map_err(|e| e.to_string())
        });
        let supervisor = tokio::spawn(tasks.supervise(store.clone(), shutdown.clone()));
        Ok(Node {
            addr,
            store,
            engine,
            shutdown,
            supervisor,
            sweep_trigger,
            publishers,
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

    /// The node's store and the services over it.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Wakes the TTL sweeper for a pass now (it also wakes by itself).
    pub fn sweep_ttl_now(&self) {
        self.sweep_trigger.sweep_now();
    }

    /// Resolves, with the reason, once the node cannot go on: its store halted (a failed
    /// journal sync, corrupt data) or a task it needs stopped. The process should then exit
    /// non-zero, so that a supervisor restarts it and recovery runs.
    pub async fn failed(&self) -> Arc<str> {
        self.store.halt().halted().await
    }

    /// Stops accepting, drains in-flight requests, stops every task, then persists the store.
    ///
    /// # Errors
    /// The node had failed ([`Node::failed`]), or the final persist failed.
    pub async fn stop(self) -> Result<(), NodeError> {
        self.shutdown.cancel();
        self.supervisor.await?;
        self.publishers.stop().await;
        if let Some(reason) = self.store.halt().reason() {
            return Err(NodeError::Failed(reason.to_string()));
        }
        let store = self.store;
        tokio::task::spawn_blocking(move || store.persist()).await??;
        Ok(())
    }
}

/// The node's tasks, by name, watched together.
#[derive(Default)]
struct Tasks {
    set: JoinSet<TaskResult>,
    names: HashMap<tokio::task::Id, &'static str>,
}

impl Tasks {
    fn spawn(
        &mut self,
        name: &'static str,
        task: impl std::future::Future<Output = TaskResult> + Send + 'static,
    ) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits for every task. One that ends before shutdown, fails or panics halts the store:
    /// the node cannot keep its promises without it.
    async fn supervise(mut self, store: Arc<Store>, shutdown: CancellationToken) {
        while let Some(joined) = self.set.join_next_with_id().await {
            let (name, failure) = match joined {
                Ok((id, Ok(()))) => (self.names.get(&id), None),
                Ok((id, Err(e))) => (self.names.get(&id), Some(format!("failed: {e}"))),
                Err(e) => (self.names.get(&e.id()), Some(format!("panicked: {e}"))),
            };
            let name = name.copied().unwrap_or("a task");
            let failure = match failure {
                Some(failure) => failure,
                None if shutdown.is_cancelled() => continue,
                None => "stopped before the node did".to_string(),
            };
            store.halt().raise(format!("the {name} {failure}"));
            // The others stop too: the process is about to exit.
            shutdown.cancel();
        }
    }
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("running", &self.names.values().collect::<Vec<_>>())
            .finish()
    }
}

/// Trims the history nobody needs any more, periodically: the backups let go of theirs, then
/// the store trims ([`Engine::trim_history`]).
async fn trim_history_periodically(engine: Engine, shutdown: CancellationToken) -> TaskResult {
    let every = (engine.store.config().history_window / 10).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(60),
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        let worker = engine.clone();
        match tokio::task::spawn_blocking(move || worker.trim_history()).await {
            Ok(Ok(report)) if report.records > 0 => {
                tracing::debug!(
                    records = report.records,
                    tombstones = report.tombstones,
                    "trimmed history"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.is_fatal() => return Err(e.to_string()),
            Ok(Err(e)) => tracing::warn!(error = %e, "trimming history failed"),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Backfills new global secondary indexes in the background: once at start (resuming any a
/// restart interrupted) and whenever UpdateTable creates one, until shut down.
async fn build_indexes(tables: Arc<Tables>, shutdown: CancellationToken) -> TaskResult {
    loop {
        let worker = tables.clone();
        match tokio::task::spawn_blocking(move || worker.run_pending_backfills()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(finished)) => tracing::info!(finished, "index backfill finished"),
            Ok(Err(e)) if e.is_fatal() => return Err(e.to_string()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "index backfill failed; retried on the next request")
            }
            Err(e) => return Err(e.to_string()),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tables.backfill_requested() => {}
        }
    }
}

/// Copies backups and builds restored tables in the background: once at start (resuming any
/// a restart interrupted) and whenever one is asked for, until shut down.
async fn run_backup_jobs(backups: Arc<Backups>, shutdown: CancellationToken) -> TaskResult {
    loop {
        let worker = backups.clone();
        match tokio::task::spawn_blocking(move || worker.run_pending_jobs()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(finished)) => tracing::info!(finished, "backup and restore jobs finished"),
            Ok(Err(e)) if e.is_fatal() => return Err(e.to_string()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "a backup or restore job failed; retried in a second");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
                continue;
            }
            Err(e) => return Err(e.to_string()),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = backups.jobs_requested() => {}
        }
    }
}
