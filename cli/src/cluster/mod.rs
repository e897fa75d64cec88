//! A cluster region: every write goes through a Kafka log, in order, and is applied from it.
//!
//! Each table has a log (a Kafka topic of a fixed number of partitions, chosen when the table
//! is created); an item's writes go to the partition of its partition key
//! ([`tidemark_core::log_partition`]). Table definitions (CreateTable, UpdateTable, DeleteTable,
//! UpdateTimeToLive, tags) go through one more log of one partition, `tidemark.<cluster>.tables`,
//! and a table's log is named after the position of the record that created it, so every node
//! names it alike.
//!
//! A write request is checked where it arrives, up to its writes
//! ([`tidemark_core::Store::checking_writes`]): a refusal is answered at once; a write is
//! appended to its partition ([`Cluster::append`], `route.rs`) and answered with the outcome of
//! its application by this node's applier (`applier.rs`), which reads every log in order and
//! runs each record's operation with the record's stamp and position
//! ([`tidemark_core::Store::applying_logged`]). Every copy applies the same records in the same
//! order to the same state, so every copy decides every condition alike, and a node that lost
//! its writes (or its whole folder) gets them back from the log. The store refuses any client
//! write that does not come from the log ([`tidemark_core::Store::require_logged_writes`]).
//!
//! Correctness rests on the order of the Kafka log alone: no leader, no lease, no fencing.

mod applier;
pub(crate) mod expiry;
pub mod members;
pub(crate) mod record;
pub(crate) mod route;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tidemark_core::Store;
use tidemark_kafka::KafkaSettings;
use tokio::sync::{Notify, oneshot};
use uuid::Uuid;

use crate::server::error::ApiError;
use record::RecordHeader;

pub(crate) use applier::start_applier;
pub(crate) use expiry::run_expiry;
use members::Members;
pub(crate) use members::run_membership;

/// What a request answers: its output's bytes, or its error.
pub(crate) type Outcome = Result<Vec<u8>, ApiError>;

/// How a node joins a cluster region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The cluster's name: its logs are the topics `tidemark.<name>.*`.
    pub name: String,
    /// The Kafka cluster the logs live on.
    pub kafka: KafkaSettings,
    /// Partitions of the log of a table created through this node.
    pub partitions: u32,
    /// The URL other nodes and operators reach this node at (`None`: `http://` and the
    /// address it listens on).
    pub advertise: Option<String>,
}

impl ClusterConfig {
    /// The log of table definitions.
    pub(crate) fn tables_log(&self) -> String {
        format!("tidemark.{}.tables", self.name)
    }
}

/// The largest record of a log: a request's largest body (16 MB) and its header.
pub(crate) const MAX_RECORD_BYTES: u32 = 17 * 1024 * 1024;

/// Longest wait for this node to apply a record it appended before the request fails (with an
/// error the SDKs retry).
const APPLY_WAIT: Duration = Duration::from_secs(30);

/// A cluster region's writer: appends requests to the logs and hands each its outcome once
/// this node's applier has applied it.
pub struct Cluster {
    config: ClusterConfig,
    producer: FutureProducer,
    /// Requests this node appended, by id, awaiting their application.
    waiters: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Partitions of each table log, once looked up.
    partitions: Mutex<HashMap<String, u32>>,
    /// Asks the logs where they end, for strongly consistent reads.
    ends: Arc<BaseConsumer>,
    /// The next offset this node applies of each log partition it reads.
    progress: Mutex<HashMap<(String, u32), u64>>,
    /// Woken whenever the applier moves [`Cluster::progress`].
    progressed: Notify,
    /// The region's nodes, as heard from.
    members: Members,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("config", &self.config)
            .field("waiting", &self.waiters.lock().len())
            .finish_non_exhaustive()
    }
}

/// Removes a request's waiter however the request ends (answered, failed or abandoned).
struct Waiting<'a> {
    cluster: &'a Cluster,
    id: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.cluster.waiters.lock().remove(&self.id);
    }
}

impl Cluster {
    /// A writer for `config`'s cluster.
    ///
    /// # Errors
    /// The producer cannot be made from the Kafka settings.
    pub fn new(config: ClusterConfig, advertise: String) -> Result<Cluster, tidemark_kafka::Error> {
        // Measured against tansu (docs/benchmarks.md): no lingering and no Nagle, since a
        // request waits for its own record; quick reconnects after a broker restart.
        let producer: FutureProducer = config.kafka.producer(&[
            ("linger.ms", "0"),
            ("socket.nagle.disable", "true"),
            ("reconnect.backoff.max.ms", "200"),
            ("message.timeout.ms", "20000"),
            ("message.max.bytes", &MAX_RECORD_BYTES.to_string()),
        ])?;
        let ends: BaseConsumer = config.kafka.consumer(
            &format!("tidemark-{}-reads", config.name),
            &[("socket.nagle.disable", "true")],
        )?;
        Ok(Cluster {
            config,
            producer,
            waiters: Mutex::default(),
            partitions: Mutex::default(),
            ends: Arc::new(ends),
            progress: Mutex::default(),
            progressed: Notify::new(),
            members: Members::new(advertise),
        })
    }

    /// The cluster's settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The region's nodes, as this node hears them.
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// What `tidemark cluster status` shows: the members as this node hears them, and for
    /// every log partition this node reads, where it stands, where the log ends and the
    /// difference.
    pub(crate) async fn status(&self, store: &Store) -> Result<serde_json::Value, ApiError> {
        let tables: HashMap<String, String> = (store.table_definitions().into_iter())
            .filter_map(|d| Some((d.write_log?, d.table_name)))
            .collect();
        let progress: Vec<((String, u32), u64)> = {
            let progress = self.progress.lock();
            let mut all: Vec<_> = progress
                .iter()
                .map(|(at, next)| (at.clone(), *next))
                .collect();
            all.sort();
            all
        };
        let mut wanted = TopicPartitionList::new();
        for ((log, partition), _) in &progress {
            let partition = i32::try_from(*partition).unwrap_or(i32::MAX);
            wanted
                .add_partition_offset(log, partition, Offset::End)
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        let ends = self.log_ends(wanted).await?;
        let end_of = |log: &str, partition: u32| ends.get(&(log.to_string(), partition)).copied();
        let logs: Vec<serde_json::Value> = progress
            .iter()
            .map(|((log, partition), applied)| {
                let end = end_of(log, *partition);
                serde_json::json!({
                    "Log": log,
                    "Table": tables.get(log),
                    "Partition": partition,
                    "Applied": applied,
                    "End": end,
                    "Lag": end.map(|end| end.saturating_sub(*applied)),
                })
            })
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Ok(serde_json::json!({
            "Cluster": self.config.name,
            "Node": self.members.me(),
            "Members": self.members.view(now),
            "Logs": logs,
        }))
    }

    /// Appends the request `op` with `body` to `partition` of `log`, and answers with the
    /// outcome of its application on this node.
    pub(crate) async fn append(
        &self,
        store: &Store,
        (log, partition): (&str, u32),
        op: &str,
        body: &[u8],
        partitions: Option<u32>,
    ) -> Outcome {
        let stamp = store.mint_stamp().map_err(ApiError::from)?;
        let header = RecordHeader {
            id: Uuid::new_v4().simple().to_string(),
            op: op.to_string(),
            hlc: stamp.hlc.0,
            region: stamp.region,
            partitions,
        };
        let (tell, outcome) = oneshot::channel();
        self.waiters.lock().insert(header.id.clone(), tell);
        let _waiting = Waiting {
            cluster: self,
            id: header.id.clone(),
        };
        let value = record::encode(&header, body);
        let partition = i32::try_from(partition)
            .map_err(|_| ApiError::internal(format!("no partition {partition}")))?;
        let record = FutureRecord::<(), _>::to(log)
            .partition(partition)
            .payload(&value);
        let delivery = match self.producer.send_result(record) {
            Ok(delivery) => delivery,
            Err((e, _)) => {
                return Err(unavailable(&format!(
                    "the region's log refused the write: {e}"
                )));
            }
        };
        // A failed delivery may still have reached the log (a timeout): the outcome is then
        // the record's, if this node applies it before the wait ends.
        let started = std::time::Instant::now();
        let delivered = tidemark_kafka::topics::delivered(delivery).await;
        let acknowledged = started.elapsed();
        metrics::histogram!("tidemark_cluster_append_seconds").record(acknowledged.as_secs_f64());
        let outcome = tokio::time::timeout(APPLY_WAIT, outcome).await;
        metrics::histogram!("tidemark_cluster_apply_wait_seconds")
            .record((started.elapsed() - acknowledged).as_secs_f64());
        match outcome {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(unavailable("the node is stopping")),
            Err(_) => Err(unavailable(&match delivered {
                Ok(()) => "the write was not applied in time".to_string(),
                Err(e) => format!("the region's log did not take the write: {e}"),
            })),
        }
    }

    /// Hands the request `id` (when this node appended it) the outcome of its application.
    pub(crate) fn applied(&self, id: &str, outcome: Outcome) {
        if let Some(tell) = self.waiters.lock().remove(id) {
            let _ = tell.send(outcome);
        }
    }

    /// Records where the applier stands in `partition` of `log`.
    pub(crate) fn set_progress(&self, log: &str, partition: u32, next: u64) {
        self.progress
            .lock()
            .insert((log.to_string(), partition), next);
        self.progressed.notify_waiters();
    }

    /// Where the applier stands in `partition` of `log`, when it reads that partition.
    pub(crate) fn progress_in(&self, log: &str, partition: u32) -> Option<u64> {
        self.progress
            .lock()
            .get(&(log.to_string(), partition))
            .copied()
    }

    /// Sets every log partition the applier reads, and where it stands in each: a partition
    /// it no longer reads (a dropped table's) leaves the status.
    pub(crate) fn replace_progress(&self, progress: HashMap<(String, u32), u64>) {
        *self.progress.lock() = progress;
        self.progressed.notify_waiters();
    }

    /// True once the applier stands at or past each of `ends` (log partition, offset).
    pub(crate) fn reached<'a>(
        &self,
        ends: impl IntoIterator<Item = (&'a (String, u32), &'a u64)>,
    ) -> bool {
        let progress = self.progress.lock();
        ends.into_iter()
            .all(|(at, end)| progress.get(at).is_some_and(|next| next >= end))
    }

    /// Waits until this node has applied every record the logs of `tables` held when it was
    /// called: what a strongly consistent read reads after. No lease: a node paused meanwhile
    /// only answers later.
    pub(crate) async fn applied_to_end(
        &self,
        store: &Store,
        tables: &[String],
    ) -> Result<(), ApiError> {
        let mut wanted = TopicPartitionList::new();
        for table in tables {
            let Some(log) = store
                .table_name_of(table)
                .and_then(|name| store.table_definition(name))
                .ok()
                .and_then(|definition| definition.write_log)
            else {
                // A missing table: the read itself answers that.
                continue;
            };
            for partition in 0..self.partitions_of(&log).await? {
                let partition = i32::try_from(partition).unwrap_or(i32::MAX);
                wanted
                    .add_partition_offset(&log, partition, Offset::End)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
        }
        self.caught_up_with(wanted).await
    }

    /// Waits until this node has applied every table definition change the region made before
    /// it was called: what a request that found no table waits for before it says so.
    pub(crate) async fn tables_applied_to_end(&self) -> Result<(), ApiError> {
        let mut wanted = TopicPartitionList::new();
        wanted
            .add_partition_offset(&self.config.tables_log(), 0, Offset::End)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.caught_up_with(wanted).await
    }

    /// Where each log partition of `wanted` ends now (the offset of its next record), asked in
    /// one request.
    async fn log_ends(
        &self,
        wanted: TopicPartitionList,
    ) -> Result<HashMap<(String, u32), u64>, ApiError> {
        let ends = self.ends.clone();
        let ends = tokio::task::spawn_blocking(move || {
            ends.offsets_for_times(wanted, tidemark_kafka::BROKER_TIMEOUT)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| unavailable(&format!("the region's logs: {e}")))?;
        Ok((ends.elements().iter())
            .filter_map(|e| match e.offset() {
                Offset::Offset(end) => Some((
                    (e.topic().to_string(), u32::try_from(e.partition()).ok()?),
                    u64::try_from(end).ok()?,
                )),
                _ => None,
            })
            .collect())
    }

    /// Waits until this node's applier is past where the log partitions of `wanted` end now.
    async fn caught_up_with(&self, wanted: TopicPartitionList) -> Result<(), ApiError> {
        if wanted.count() == 0 {
            return Ok(());
        }
        let ends = self.log_ends(wanted).await?;
        let wait = async {
            loop {
                let progressed = self.progressed.notified();
                if self.reached(&ends) {
                    return;
                }
                progressed.await;
            }
        };
        tokio::time::timeout(APPLY_WAIT, wait)
            .await
            .map_err(|_| unavailable("this node has not caught up with the region's logs"))
    }

    /// The partitions of table log `log`.
    pub(crate) async fn partitions_of(&self, log: &str) -> Result<u32, ApiError> {
        if let Some(count) = self.partitions.lock().get(log) {
            return Ok(*count);
        }
        let (producer, topic) = (self.producer.clone(), log.to_string());
        let count = tokio::task::spawn_blocking(move || {
            tidemark_kafka::topics::partition_count(producer.client(), &topic)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| unavailable(&format!("the table's log: {e}")))?;
        let count = u32::try_from(count).unwrap_or(1);
        self.partitions.lock().insert(log.to_string(), count);
        Ok(count)
    }
}

/// A failure the client may retry (the SDKs retry InternalServerError).
fn unavailable(message: &str) -> ApiError {
    ApiError::internal(message)
}
