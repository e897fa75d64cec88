//! Publishing to Kafka: [`Publishers`] runs one publishing session task ([`super::session`])
//! per published table, each with a [`KafkaSink`]: librdkafka's idempotent producer, each
//! message to the partition its key maps to; the topic created when missing and its partition
//! tails read back when a session opens (clients, topics and lookups from `tidemark_kafka`).
//! It also measures and reports every table's lag.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;

use parking_lot::Mutex;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tidemark_core::{ChangeSeq, Store, TableId};
use tidemark_kafka::{KafkaSettings, TopicSpec};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::format::{Message, SEQUENCE_HEADER};
use super::session::{self, Delivery, PublisherState, SendError, Sink, SinkError};
use super::settings::{self, PublishSettings, PublishedTable};

/// How far a table's publishing is behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PublishingLag {
    /// Durable records not yet confirmed in the topic.
    pub records: u64,
    /// Age of the oldest of them, in seconds.
    pub seconds: f64,
}

/// A published table, its publisher's state and its lag.
#[derive(Debug, Clone)]
pub struct TableProgress {
    /// The table and its settings.
    pub table: PublishedTable,
    /// What its publisher reports.
    pub state: PublisherState,
    /// The last sequence known to be in the topic.
    pub published_through: Option<ChangeSeq>,
    /// How far it is behind the durable log.
    pub lag: PublishingLag,
}

#[derive(Debug)]
struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    settings: PublishSettings,
    state: Arc<Mutex<PublisherState>>,
}

/// The node's publishers: one task per published table.
#[derive(Debug)]
pub struct Publishers {
    store: Arc<Store>,
    kafka: Option<KafkaSettings>,
    running: Mutex<HashMap<TableId, Running>>,
}

impl Publishers {
    /// Publishers for `store`'s published tables, producing to `kafka` (none: publishing is
    /// refused and nothing runs).
    pub fn new(store: Arc<Store>, kafka: Option<KafkaSettings>) -> Self {
        Publishers {
            store,
            kafka,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The Kafka cluster, when one is configured.
    pub fn kafka(&self) -> Option<&KafkaSettings> {
        self.kafka.as_ref()
    }

    /// Starts a publisher for every published table without one, and stops (or restarts,
    /// when its settings changed) the others.
    ///
    /// # Errors
    /// Corrupt publishing settings.
    pub fn reconcile(&self) -> crate::Result<()> {
        let Some(kafka) = &self.kafka else {
            return Ok(());
        };
        let wanted: HashMap<TableId, PublishedTable> = settings::published_tables(&self.store)?
            .into_iter()
            .map(|t| (t.table_id, t))
            .collect();
        let mut running = self.running.lock();
        // A publisher whose settings changed is replaced: its successor starts once it has
        // stopped, so the successor resumes from a topic nobody else still writes to.
        let mut replaced: HashMap<TableId, JoinHandle<()>> = HashMap::new();
        for (id, r) in
            running.extract_if(|id, r| wanted.get(id).is_none_or(|t| t.settings != r.settings))
        {
            r.cancel.cancel();
            if wanted.contains_key(&id) {
                replaced.insert(id, r.task);
            }
        }
        for (id, table) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let predecessor = replaced.remove(&id);
            let cancel = CancellationToken::new();
            let state = Arc::new(Mutex::new(PublisherState {
                published_through: table.confirmed,
                last_error: None,
            }));
            let settings = table.settings.clone();
            let name = table.table_name.clone();
            let kafka = kafka.clone();
            let run = session::run(
                self.store.clone(),
                move || KafkaSink::connect(&kafka),
                table,
                cancel.clone(),
                state.clone(),
            );
            let publisher = tokio::spawn(async move {
                if let Some(predecessor) = predecessor {
                    // Its panic, if any, was reported by its own watcher.
                    let _ = predecessor.await;
                }
                run.await;
            });
            // A publisher that panics would leave its table unpublished with nobody noticing:
            // the node halts instead (and restarts under its supervisor).
            let halt = self.store.halt().clone();
            let task = tokio::spawn(async move {
                if let Err(e) = publisher.await
                    && e.is_panic()
                {
                    halt.raise(format!("the Kafka publisher of table {name} panicked: {e}"));
                }
            });
            running.insert(
                id,
                Running {
                    cancel,
                    task,
                    settings,
                    state,
                },
            );
        }
        Ok(())
    }

    /// The state of each table's publisher, by table id.
    pub fn states(&self) -> HashMap<TableId, PublisherState> {
        self.running
            .lock()
            .iter()
            .map(|(id, r)| (*id, r.state.lock().clone()))
            .collect()
    }

    /// Every published table with its publisher's state and how far it is behind now.
    /// Blocking (a few index lookups per table).
    ///
    /// # Errors
    /// Corrupt settings or log entries; storage failures.
    pub fn progress(&self) -> crate::Result<Vec<TableProgress>> {
        let states = self.states();
        let now = self.store.clock().now_millis();
        settings::published_tables(&self.store)?
            .into_iter()
            .map(|table| {
                let state = states.get(&table.table_id).cloned().unwrap_or_default();
                let through = state.published_through.or(table.confirmed);
                let from = through.map_or(table.settings.start_seq, ChangeSeq::next);
                let lag = self.store.table_lag(table.table_id, from)?;
                Ok(TableProgress {
                    published_through: through,
                    table,
                    state,
                    lag: PublishingLag {
                        records: lag.records,
                        seconds: lag
                            .oldest_millis
                            .map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0),
                    },
                })
            })
            .collect()
    }

    /// Every `every`, reports each published table's lag in the metrics
    /// (`tidemark_publish_lag_records`, `tidemark_publish_lag_seconds`,
    /// `tidemark_publish_lag_over_bound`, labelled by table) and in the log: at info while it
    /// is behind, loudly (a warning) past `warn_over` records, since those records are kept
    /// past the history window until published. Runs until `shutdown`.
    ///
    /// # Errors
    /// A fatal store error (corrupt settings or log entries), or a panic while measuring;
    /// other failures are logged and measured again next period.
    pub async fn report_lag(
        self: Arc<Self>,
        every: Duration,
        warn_over: u64,
        shutdown: CancellationToken,
    ) -> crate::Result<()> {
        let mut reported: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
            let publishers = self.clone();
            let measured = tokio::task::spawn_blocking(move || publishers.progress())
                .await
                .map_err(|e| {
                    crate::Error::Core(tidemark_core::Error::Internal(format!(
                        "measuring the publishing lag failed: {e}"
                    )))
                })?;
            let lags = match measured {
                Ok(lags) => lags,
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot measure the publishing lag; trying again");
                    continue;
                }
            };
            // Tables no longer published read 0 rather than their last lag.
            for gone in reported
                .iter()
                .filter(|name| !lags.iter().any(|p| &p.table.table_name == *name))
            {
                set_lag_gauges(gone, &PublishingLag::default(), false);
            }
            reported = lags.iter().map(|p| p.table.table_name.clone()).collect();
            for TableProgress { table, lag, .. } in lags {
                set_lag_gauges(&table.table_name, &lag, lag.records > warn_over);
                if lag.records > warn_over {
                    tracing::warn!(
                        table = %table.table_name, topic = %table.settings.topic,
                        records = lag.records, seconds = lag.seconds,
                        "PUBLISHING IS FAR BEHIND: unpublished changes are kept past the history \
                         window until Kafka takes them; writes keep being served"
                    );
                } else if lag.records > 0 {
                    tracing::info!(
                        table = %table.table_name, topic = %table.settings.topic,
                        records = lag.records, seconds = lag.seconds, "publishing lag"
                    );
                }
            }
        }
    }

    /// Stops every publisher and waits for them.
    pub async fn stop(&self) {
        let all: Vec<Running> = self.running.lock().drain().map(|(_, r)| r).collect();
        for r in &all {
            r.cancel.cancel();
        }
        for r in all {
            let _ = r.task.await;
        }
    }
}

/// Sets a table's lag metrics.
fn set_lag_gauges(table: &str, lag: &PublishingLag, over_bound: bool) {
    let table = table.to_string();
    metrics::gauge!("tidemark_publish_lag_records", "table" => table.clone())
        .set(lag.records as f64);
    metrics::gauge!("tidemark_publish_lag_seconds", "table" => table.clone()).set(lag.seconds);
    metrics::gauge!("tidemark_publish_lag_over_bound", "table" => table)
        .set(f64::from(u8::from(over_bound)));
}

/// A [`Sink`] producing to Kafka with librdkafka's idempotent producer; one per session, so a
/// failure drops the producer and its queue.
pub struct KafkaSink {
    kafka: KafkaSettings,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.kafka.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A sink with a new producer for `kafka`.
    ///
    /// # Errors
    /// The producer cannot be created (bad settings).
    pub fn connect(kafka: &KafkaSettings) -> Result<KafkaSink, SinkError> {
        // Defaults measured against tansu (docs/benchmarks.md): librdkafka's broker thread
        // polls with `linger.ms` as its timeout, and with several produce requests awaiting a
        // slow broker it spins; 5 ms and one request in flight halve the node's CPU at the same
        // latency.
        let producer: FutureProducer = kafka.producer(&[
            ("linger.ms", "5"),
            ("max.in.flight.requests.per.connection", "1"),
        ])?;
        Ok(KafkaSink {
            kafka: kafka.clone(),
            producer,
        })
    }
}

impl Sink for KafkaSink {
    async fn open(
        &mut self,
        settings: &PublishSettings,
    ) -> Result<Vec<Option<ChangeSeq>>, SinkError> {
        let topic = TopicSpec {
            name: settings.topic.clone(),
            partitions: settings.partitions,
            replication_factor: settings.replication_factor,
            // A published table's topic keeps the broker's default retention.
            retention: None,
            keep_forever: false,
            max_message_bytes: None,
        };
        self.kafka.ensure_topics(&[topic]).await?;
        let (kafka, topic) = (self.kafka.clone(), settings.topic.clone());
        tokio::task::spawn_blocking(move || read_tails(&kafka, &topic)).await?
    }

    fn send(
        &mut self,
        topic: &str,
        partition: i32,
        message: Message,
    ) -> Result<Delivery, SendError> {
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut record = FutureRecord::to(topic)
            .partition(partition)
            .key(&message.key)
            .headers(headers);
        if let Some(value) = &message.value {
            record = record.payload(value);
        }
        match self.producer.send_result(record) {
            Ok(delivery) => Ok(Box::pin(
                tidemark_kafka::topics::delivered(delivery)
                    .map(|report| report.map_err(SinkError::from)),
            )),
            // librdkafka's queue is full.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                Err(SendError::Full(message))
            }
            Err((e, _)) => Err(SendError::Failed(tidemark_kafka::Error::Produce(e).into())),
        }
    }
}

/// The last `tidemark.sequence` of each partition of `topic` (`None` for an empty one).
fn read_tails(kafka: &KafkaSettings, topic: &str) -> Result<Vec<Option<ChangeSeq>>, SinkError> {
    let consumer: BaseConsumer = kafka.consumer("tidemark-publisher-resume", &[])?;
    tidemark_kafka::topics::last_messages(&consumer, topic)?
        .into_iter()
        .enumerate()
        .map(|(partition, last)| {
            last.map(|message| {
                sequence_of(&message).ok_or_else(|| SinkError::NotTidemarks {
                    topic: topic.to_string(),
                    partition,
                })
            })
            .transpose()
        })
        .collect()
}

/// The change sequence a message carries in its `tidemark.sequence` header.
fn sequence_of(message: &OwnedMessage) -> Option<ChangeSeq> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == SEQUENCE_HEADER)?
        .value
        .and_then(|v| std::str::from_utf8(v).ok())?
        .parse()
        .ok()
}
