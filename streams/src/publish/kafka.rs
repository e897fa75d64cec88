//! The Kafka publisher: one task per published table tails the table's slice of the change log
//! (up to the durable watermark) and produces its messages with librdkafka's idempotent
//! producer, each to the partition its key maps to.
//!
//! On start, and after any failure (broker down, delivery error), the task drops its producer
//! and decides again where to resume from what the topic holds ([`super::resume`]), so the
//! topic ends up with every change once, in order per item. Confirmed positions are reported to
//! core, which holds the history back until then.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;

use parking_lot::Mutex;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tidemark_core::changes::{LogCursor, LogLimits};
use tidemark_core::{ChangeSeq, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::format::{SEQUENCE_HEADER, ValueFormat, messages};
use super::resume::{ResumePoint, partition_for};
use super::settings::{self, PublishSettings, PublishedTable};

/// Records read from the log per produce round.
const BATCH: usize = 2000;
/// Most messages awaiting delivery reports before the publisher stops reading the log.
const MAX_IN_FLIGHT: usize = 50_000;
/// Shortest interval between checkpoints while deliveries are still in flight.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// Longest wait for broker metadata and a partition's last message.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Further librdkafka settings (security, compression, ...), passed through.
    pub options: Vec<(String, String)>,
}

impl KafkaSettings {
    fn client_config(&self) -> ClientConfig {
        self.client_config_over(&[])
    }

    /// A client configuration with `defaults` under the operator's options.
    fn client_config_over(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config
    }
}

/// What a table's publisher is doing, for status reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherState {
    /// The last change sequence confirmed in the topic.
    pub published_through: Option<ChangeSeq>,
    /// The last failure, while the publisher is retrying.
    pub last_error: Option<String>,
}

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
    running: Mutex<HashMap<u64, Running>>,
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

    /// True when a Kafka cluster is configured.
    pub fn has_kafka(&self) -> bool {
        self.kafka.is_some()
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
        let wanted: HashMap<u64, PublishedTable> = settings::published_tables(&self.store)?
            .into_iter()
            .map(|t| (t.table_id, t))
            .collect();
        let mut running = self.running.lock();
        running.retain(|id, r| {
            let keep = wanted.get(id).is_some_and(|t| t.settings == r.settings);
            if !keep {
                r.cancel.cancel();
            }
            keep
        });
        for (id, table) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let cancel = CancellationToken::new();
            let state = Arc::new(Mutex::new(PublisherState {
                published_through: table.confirmed,
                last_error: None,
            }));
            let settings = table.settings.clone();
            let name = table.table_name.clone();
            let publisher = tokio::spawn(run(
                self.store.clone(),
                kafka.clone(),
                table,
                cancel.clone(),
                state.clone(),
            ));
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
    pub fn states(&self) -> HashMap<u64, PublisherState> {
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
                let from = through.map_or(table.settings.start_seq, |s| s + 1);
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
    /// Corrupt settings or log entries, storage failures, a panic while measuring.
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
            let lags = tokio::task::spawn_blocking(move || publishers.progress())
                .await
                .map_err(|e| {
                    crate::Error::Core(tidemark_core::Error::Internal(format!(
                        "measuring the publishing lag failed: {e}"
                    )))
                })??;
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

/// Publishes one table until cancelled, starting over from the topic after any failure.
async fn run(
    store: Arc<Store>,
    kafka: KafkaSettings,
    table: PublishedTable,
    cancel: CancellationToken,
    state: Arc<Mutex<PublisherState>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match publish(&store, &kafka, &table, &cancel, &state).await {
            Ok(()) => return,
            // The store halted (it says why): the node is exiting, there is nothing to retry.
            Err(_) if store.halt().reason().is_some() => return,
            Err(e) => {
                tracing::warn!(table = %table.table_name, topic = %table.settings.topic,
                    error = %e, "publishing failed; resuming from the topic's tail");
                metrics::counter!("tidemark_publish_failures_total", "table" => table.table_name.clone())
                    .increment(1);
                state.lock().last_error = Some(e);
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One publishing session: topic, resume point, then produce until cancelled (`Ok`) or a
/// failure (`Err`).
async fn publish(
    store: &Arc<Store>,
    kafka: &KafkaSettings,
    table: &PublishedTable,
    cancel: &CancellationToken,
    state: &Mutex<PublisherState>,
) -> Result<(), String> {
    let settings = &table.settings;
    let format = ValueFormat::parse(&settings.format)
        .ok_or_else(|| format!("unknown format {}", settings.format))?;
    ensure_topic(kafka, settings).await?;
    let (kafka_for_tails, topic) = (kafka.clone(), settings.topic.clone());
    let tails = tokio::task::spawn_blocking(move || read_tails(&kafka_for_tails, &topic))
        .await
        .map_err(|e| e.to_string())??;
    let partitions = i32::try_from(tails.len()).map_err(|e| e.to_string())?;
    let resume = ResumePoint::new(tails, settings.start_seq);
    let mut cursor = LogCursor::table(table.table_id, resume.read_from());
    // Defaults measured against tansu (docs/benchmarks.md): librdkafka's broker thread polls
    // with `linger.ms` as its timeout, and with several produce requests awaiting a slow
    // broker it spins; 5 ms and one request in flight halve the node's CPU at the same
    // latency. Idempotence is what makes retries safe, so the operator's options cannot turn
    // it off.
    let producer: FutureProducer = kafka
        .client_config_over(&[
            ("acks", "all"),
            ("linger.ms", "5"),
            ("max.in.flight.requests.per.connection", "1"),
        ])
        .set("enable.idempotence", "true")
        .create()
        .map_err(|e| format!("cannot create the producer: {e}"))?;
    let region = store.config().region.clone();
    let mut deliveries = Deliveries::default();
    let mut checkpointed: Option<ChangeSeq> = None;
    let mut checkpointed_at = Instant::now();
    state.lock().last_error = None;
    loop {
        deliveries.settle_ready()?;
        if let Some(delivered) = deliveries.delivered
            && checkpointed != Some(delivered)
        {
            state.lock().published_through = Some(delivered);
            // The checkpoint only bounds the history hold; the topic decides where to resume,
            // so it is written at most a few times a second.
            if deliveries.in_flight.is_empty() || checkpointed_at.elapsed() >= CHECKPOINT_EVERY {
                let worker = store.clone();
                let table_id = table.table_id;
                tokio::task::spawn_blocking(move || {
                    settings::confirm_published(&worker, table_id, delivered)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
                checkpointed = Some(delivered);
                checkpointed_at = Instant::now();
            }
        }
        let worker = store.clone();
        let mut reading = cursor.clone();
        let (batch, read) = tokio::task::spawn_blocking(move || {
            let batch = worker.read_log(&mut reading, LogLimits::records(BATCH));
            batch.map(|batch| (batch, reading))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        cursor = read;
        if batch.is_empty() {
            // Nothing new: wait for a commit, or for a delivery report to move the checkpoint.
            // (The cursor is past the watermark it read up to, so this waits for a new one.)
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = store.wait_durable_past(cursor.next.saturating_sub(1)) => {}
                settled = deliveries.settle_oldest(), if !deliveries.in_flight.is_empty() => {
                    settled?;
                }
            }
            continue;
        };
        let now = store.clock().now_millis();
        for record in batch {
            let seq = record.seq;
            let mut outgoing = messages(record, format, &region, now)
                .into_iter()
                .filter_map(|message| {
                    let partition = partition_for(&message.key, partitions);
                    (!resume.already_published(partition, seq)).then_some((partition, message))
                })
                .peekable();
            if outgoing.peek().is_none() {
                deliveries.already_in_topic(seq);
                continue;
            }
            while let Some((partition, message)) = outgoing.next() {
                let confirms = outgoing.peek().is_none().then_some(seq);
                let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
                for (key, value) in &message.headers {
                    headers = headers.insert(Header {
                        key,
                        value: Some(value.as_bytes()),
                    });
                }
                let mut record = FutureRecord::to(&settings.topic)
                    .partition(partition)
                    .key(&message.key)
                    .headers(headers);
                if let Some(value) = &message.value {
                    record = record.payload(value);
                }
                loop {
                    match producer.send_result(record) {
                        Ok(delivery) => {
                            deliveries.in_flight.push_back(InFlight {
                                seq,
                                confirms,
                                delivery,
                            });
                            break;
                        }
                        // librdkafka's queue is full: wait for the oldest delivery, then retry.
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            record = back;
                            if deliveries.in_flight.is_empty() {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            } else {
                                deliveries.settle_oldest().await?;
                            }
                        }
                        Err((e, _)) => return Err(format!("cannot produce change {seq}: {e}")),
                    }
                }
            }
        }
        while deliveries.in_flight.len() > MAX_IN_FLIGHT {
            deliveries.settle_oldest().await?;
        }
        if cancel.is_cancelled() {
            return Ok(());
        }
    }
}

/// A produced message awaiting its delivery report.
struct InFlight {
    seq: ChangeSeq,
    /// The change published once this report is in: set on the last message of a change (a
    /// debezium delete is followed by its tombstone), and moved forward over later changes
    /// found already in the topic.
    confirms: Option<ChangeSeq>,
    delivery: DeliveryFuture,
}

/// Produced messages awaiting their reports, oldest first, and the last change whose every
/// message is acknowledged. The idempotent producer keeps each partition in order, so reports
/// are taken in produce order.
#[derive(Default)]
struct Deliveries {
    in_flight: VecDeque<InFlight>,
    delivered: Option<ChangeSeq>,
}

impl Deliveries {
    /// Counts `seq`, whose messages the topic already holds, as published once every message
    /// produced before it is.
    fn already_in_topic(&mut self, seq: ChangeSeq) {
        match self.in_flight.back_mut() {
            Some(last) => last.confirms = Some(seq),
            None => self.delivered = Some(seq),
        }
    }

    /// Takes every report that has already arrived, without waiting.
    fn settle_ready(&mut self) -> Result<(), String> {
        while let Some(front) = self.in_flight.front_mut() {
            let Some(report) = (&mut front.delivery).now_or_never() else {
                return Ok(());
            };
            self.settled(report)?;
        }
        Ok(())
    }

    /// Waits for the oldest report. Cancel-safe: the message stays queued until its report
    /// is in.
    async fn settle_oldest(&mut self) -> Result<(), String> {
        let Some(front) = self.in_flight.front_mut() else {
            return Ok(());
        };
        let report = (&mut front.delivery).await;
        self.settled(report)
    }

    /// Records the oldest message's report.
    fn settled(
        &mut self,
        report: <DeliveryFuture as std::future::Future>::Output,
    ) -> Result<(), String> {
        let Some(message) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let seq = message.seq;
        match report {
            Ok(Ok(_)) => {
                if message.confirms.is_some() {
                    self.delivered = message.confirms;
                }
                Ok(())
            }
            Ok(Err((e, _))) => Err(format!("delivery of change {seq} failed: {e}")),
            Err(_) => Err(format!("delivery of change {seq} was cancelled")),
        }
    }
}

/// Creates the topic unless it exists.
async fn ensure_topic(kafka: &KafkaSettings, settings: &PublishSettings) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config()
        .create()
        .map_err(|e| format!("cannot create the admin client: {e}"))?;
    let topic = NewTopic::new(
        &settings.topic,
        settings.partitions,
        TopicReplication::Fixed(i32::from(settings.replication_factor)),
    );
    let results = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(BROKER_TIMEOUT)),
        )
        .await
        .map_err(|e| format!("cannot create topic {}: {e}", settings.topic))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("cannot create topic {topic}: {code}")),
        }
    }
    Ok(())
}

/// The last `tidemark.sequence` of each partition of `topic` (`None` for an empty one).
fn read_tails(kafka: &KafkaSettings, topic: &str) -> Result<Vec<Option<ChangeSeq>>, String> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "tidemark-publisher-resume")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| format!("cannot create the resume reader: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .map_err(|e| format!("no metadata for {topic}: {e}"))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("topic {topic} has no partitions"))?;
    let mut tails = Vec::with_capacity(partitions);
    for partition in 0..partitions as i32 {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
            .map_err(|e| format!("no offsets for {topic}/{partition}: {e}"))?;
        if high <= low {
            tails.push(None);
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(high - 1))
            .map_err(|e| e.to_string())?;
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + BROKER_TIMEOUT;
        let tail = loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            if remaining.is_zero() {
                return Err(format!(
                    "cannot read the last message of {topic}/{partition}"
                ));
            }
            match consumer.poll(remaining.min(Duration::from_millis(500))) {
                Some(Ok(message))
                    if message.partition() == partition && message.offset() == high - 1 =>
                {
                    let sequence = message
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == SEQUENCE_HEADER))
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<ChangeSeq>().ok())
                        .ok_or_else(|| {
                            format!(
                                "the last message of {topic}/{partition} has no {SEQUENCE_HEADER} header: the topic is not Tidemark's"
                            )
                        })?;
                    break sequence;
                }
                Some(Ok(_)) | None => continue,
                Some(Err(e)) => return Err(format!("reading {topic}/{partition}: {e}")),
            }
        };
        tails.push(Some(tail));
    }
    Ok(tails)
}
