//! The applier: reads every log of the cluster region in order (the tables log and each
//! table's log, from where this node's store says it stands) and applies each record by
//! running its operation's handler with the record's stamp and position. Before the node
//! serves, it catches up to the end each log had when it started.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tidemark_core::changes::LogPosition;
use tidemark_kafka::topics::{TopicSpec, watermarks};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::expiry::{EXPIRE_ITEMS, ExpireItems};
use super::record;
use crate::server::AppState;
use crate::server::wire::{self, Call};

/// Starts the applier of `node` on its own thread. `caught_up` is told once the node has
/// applied every log up to where it ended at the start; the returned future ends when the
/// applier stops (at `shutdown`, or with why it cannot go on).
pub(crate) fn start_applier(
    node: AppState,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
    caught_up: oneshot::Sender<()>,
) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
    let runtime = Handle::current();
    let (done, ended) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("cluster applier".into())
        .spawn(move || {
            let outcome = Applier::new(node, cluster, runtime)
                .and_then(|mut applier| applier.run(&shutdown, caught_up));
            if let Err(e) = &outcome {
                tracing::error!("the cluster applier stopped: {e}");
            }
            let _ = done.send(outcome);
        });
    async move {
        spawned.map_err(|e| format!("cannot start the applier: {e}"))?;
        ended
            .await
            .unwrap_or_else(|_| Err("the applier panicked".into()))
    }
}

struct Applier {
    node: AppState,
    cluster: Arc<Cluster>,
    runtime: Handle,
    consumer: BaseConsumer,
    /// Before the node serves: the end of each log partition when it was first assigned.
    catching_up: Option<HashMap<(String, u32), u64>>,
}

impl Applier {
    fn new(node: AppState, cluster: Arc<Cluster>, runtime: Handle) -> Result<Applier, String> {
        let group = format!("tidemark-{}-applier", cluster.config.name);
        let largest = super::MAX_RECORD_BYTES.to_string();
        // tansu answers a fetch only after its whole wait: a short wait is the log's latency.
        let consumer: BaseConsumer = (cluster.config.kafka)
            .consumer(
                &group,
                &[
                    ("fetch.wait.max.ms", "3"),
                    ("fetch.message.max.bytes", &largest),
                    ("fetch.error.backoff.ms", "5"),
                    ("socket.nagle.disable", "true"),
                    ("reconnect.backoff.max.ms", "200"),
                    // A position the log no longer has means the broker lost records this
                    // node applied or must apply: an error, never a silent jump.
                    ("auto.offset.reset", "error"),
                ],
            )
            .map_err(|e| e.to_string())?;
        Ok(Applier {
            node,
            cluster,
            runtime,
            consumer,
            catching_up: Some(HashMap::new()),
        })
    }

    fn run(
        &mut self,
        shutdown: &CancellationToken,
        caught_up: oneshot::Sender<()>,
    ) -> Result<(), String> {
        let tables_log = self.cluster.config.tables_log();
        self.ensure_log(&tables_log, 1)?;
        self.assign()?;
        let mut caught_up = Some(caught_up);
        while !shutdown.is_cancelled() {
            if let Some(targets) = &self.catching_up
                && self.cluster.reached(targets)
            {
                self.catching_up = None;
                tracing::info!("caught up with the region's logs");
                if let Some(tell) = caught_up.take() {
                    let _ = tell.send(());
                }
            }
            let Some(message) = self.consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = match message {
                Ok(message) => message,
                Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::OffsetOutOfRange) => {
                    return Err(format!(
                        "the region's log no longer holds where this node stands ({e}): the \
                         broker lost records"
                    ));
                }
                Err(e) => {
                    // The broker went away or is restarting: the client reconnects by itself.
                    tracing::warn!("reading the region's logs: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let position = LogPosition {
                log: message.topic().to_string(),
                partition: partition_of(message.partition()),
                offset: u64::try_from(message.offset()).unwrap_or(0),
            };
            let (log, partition, offset) = (&position.log, position.partition, position.offset);
            if (self.cluster.progress_in(log, partition)).is_some_and(|next| offset < next) {
                continue;
            }
            let Some((header, body)) = message.payload().and_then(record::decode) else {
                return Err(format!(
                    "{log} partition {partition} holds a record at offset {offset} that is not \
                     Tidemark's"
                ));
            };
            let outcome = self.apply(&header, body, &position)?;
            self.cluster.set_progress(log, partition, offset + 1);
            if *log == tables_log {
                self.node
                    .engine
                    .store
                    .save_log_offset(log, partition, offset + 1)
                    .map_err(|e| format!("saving the tables log's position: {e}"))?;
                if header.op == "CreateTable" && outcome.is_ok() {
                    let partitions = header.partitions.unwrap_or(self.cluster.config.partitions);
                    self.ensure_log(&position.created_log(), partitions)?;
                }
                self.assign()?;
            }
            self.cluster.applied(&header.id, outcome);
        }
        Ok(())
    }

    /// Runs the record's operation as the record's application; stops the node on a failure
    /// that is fatal to it.
    fn apply(
        &self,
        header: &record::RecordHeader,
        body: &[u8],
        position: &LogPosition,
    ) -> Result<super::Outcome, String> {
        let at = || {
            format!(
                "{} partition {} at offset {}",
                position.log, position.partition, position.offset
            )
        };
        if header.op == EXPIRE_ITEMS {
            let expire = serde_json::from_slice::<ExpireItems>(body)
                .map_err(|e| format!("{}: an expiry that does not read: {e}", at()))?;
            let expired = self.as_record(header, position, || {
                let ttl = &self.node.engine.ttl;
                let expired = ttl.expire_keys(&expire.table_name, expire.keys)?;
                Ok(serde_json::json!({ "Expired": expired })
                    .to_string()
                    .into_bytes())
            });
            return self.outcome(expired);
        }
        let target = format!("DynamoDB_20120810.{}", header.op);
        let Some(operation) = wire::operation(&target) else {
            return Err(format!(
                "{}: operation {}, which this node does not know",
                at(),
                header.op
            ));
        };
        let body = Bytes::copy_from_slice(body);
        let call = Call {
            node: &self.node,
            body: &body,
            host: "localhost",
        };
        self.outcome(self.as_record(header, position, || {
            self.runtime.block_on((operation.handler)(call))
        }))
    }

    /// Runs `operation` as the application of the record `header` at `position`. The log
    /// holds the record, so this node's copy need not be on disk before the answer.
    fn as_record(
        &self,
        header: &record::RecordHeader,
        position: &LogPosition,
        operation: impl FnOnce() -> super::Outcome,
    ) -> super::Outcome {
        let store = &self.node.engine.store;
        store.applying_logged(header.stamp(), position.clone(), || {
            let (outcome, _on_disk_later) = store.deferring_durability(operation);
            outcome
        })
    }

    /// A record's outcome; a failure fatal to the node stops it.
    fn outcome(&self, outcome: super::Outcome) -> Result<super::Outcome, String> {
        if let Err(error) = &outcome
            && error.fatal
        {
            self.node.engine.store.halt().raise(error.message.clone());
            return Err(format!("applying the region's log: {}", error.message));
        }
        Ok(outcome)
    }

    /// Creates a log that is missing.
    fn ensure_log(&self, log: &str, partitions: u32) -> Result<(), String> {
        let spec = TopicSpec {
            name: log.to_string(),
            partitions: i32::try_from(partitions).unwrap_or(1),
            replication_factor: self.cluster.config.kafka.topics.replication_factor,
            retention: None,
            keep_forever: true,
            max_message_bytes: Some(super::MAX_RECORD_BYTES),
        };
        self.runtime
            .block_on(self.cluster.config.kafka.ensure_topics(&[spec]))
            .map_err(|e| format!("creating the region's log {log}: {e}"))
    }

    /// Reads the tables log and the log of every table this node holds, each from where its
    /// store stands.
    fn assign(&mut self) -> Result<(), String> {
        let store = &self.node.engine.store;
        let mut logs = vec![(self.cluster.config.tables_log(), 1)];
        let table_logs: BTreeSet<String> = (store.table_definitions())
            .into_iter()
            .filter_map(|definition| definition.write_log)
            .collect();
        for log in table_logs {
            let partitions = (self.runtime.block_on(self.cluster.partitions_of(&log)))
                .map_err(|e| format!("the region's log {log}: {}", e.message))?;
            logs.push((log, partitions));
        }
        let mut assignment = TopicPartitionList::new();
        let mut next = HashMap::new();
        for (log, partitions) in logs {
            for partition in 0..partitions {
                let at = (log.clone(), partition);
                let from = match self.cluster.progress_in(&log, partition) {
                    Some(from) => from,
                    None => store
                        .next_log_offset(&log, partition)
                        .map_err(|e| format!("reading where {log} stands: {e}"))?,
                };
                if let Some(targets) = &mut self.catching_up
                    && !targets.contains_key(&at)
                {
                    let (_, end) =
                        watermarks(self.consumer.client(), &log, partition_i32(partition))
                            .map_err(|e| e.to_string())?;
                    targets.insert(at.clone(), u64::try_from(end).unwrap_or(0));
                }
                assignment
                    .add_partition_offset(&log, partition_i32(partition), offset_of(from))
                    .map_err(|e| e.to_string())?;
                next.insert(at, from);
            }
        }
        self.consumer
            .assign(&assignment)
            .map_err(|e| format!("reading the region's logs: {e}"))?;
        // A table dropped while catching up has no end to reach any more.
        if let Some(targets) = &mut self.catching_up {
            targets.retain(|at, _| next.contains_key(at));
        }
        self.cluster.replace_progress(next);
        Ok(())
    }
}

fn partition_of(partition: i32) -> u32 {
    u32::try_from(partition).unwrap_or(0)
}

fn partition_i32(partition: u32) -> i32 {
    i32::try_from(partition).unwrap_or(i32::MAX)
}

fn offset_of(next: u64) -> Offset {
    Offset::Offset(i64::try_from(next).unwrap_or(i64::MAX))
}
