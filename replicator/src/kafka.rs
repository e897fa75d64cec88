//! The Kafka transport: regions fan out through the cluster instead of connecting pairwise.
//!
//! Each node publishes its own-origin changes of every global table it holds to the table's
//! topic of its region (`tidemark.replication.<region>.<table>`, keyed by item, so one item's
//! changes stay in order in one partition), from a retention hold per table that moves once
//! the broker has acknowledged them (idempotent producer, `acks=all`). Each node reads the
//! other regions' topics of its global tables (partitions assigned explicitly, no consumer
//! group), applies what it reads by last writer wins and only then moves its read positions,
//! which it keeps with the table: a restart or a `kill -9` re-reads from the last saved
//! position, and a change applied twice is a no-op.
//!
//! A region that joins a table has no positions for it and reads the other regions' topics
//! from the start: whatever the region that seeded it had not received when it took its
//! snapshot is still there (as long as the topics' retention keeps it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::client::PeerError;
use crate::membership::GlobalTable;
use crate::protocol::{ChangeBatch, WireChange};
use crate::{Replicator, blocking};

/// Partitions of a replication topic the node creates.
const PARTITIONS: i32 = 3;
/// Most changes applied per consumed batch.
const APPLY_BATCH: usize = 2_000;
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The replication topic of `table`'s changes made in `region`.
pub fn topic(region: &str, table: &str) -> String {
    format!("tidemark.replication.{region}.{table}")
}

/// A connection to the Kafka cluster changes travel through.
pub(crate) struct KafkaLink {
    brokers: String,
    options: Vec<(String, String)>,
    producer: FutureProducer,
    created: parking_lot::Mutex<BTreeSet<String>>,
    partition_counts: parking_lot::Mutex<BTreeMap<String, i32>>,
}

impl std::fmt::Debug for KafkaLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLink")
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaLink {
    /// A link to `brokers`.
    ///
    /// # Errors
    /// The producer cannot be created (bad settings).
    pub(crate) fn connect(
        brokers: &str,
        options: &[(String, String)],
    ) -> Result<KafkaLink, String> {
        // Idempotence makes the producer's own retries safe; operators cannot turn it off.
        let producer = client_config(brokers, options, &[("acks", "all"), ("linger.ms", "2")])
            .set("enable.idempotence", "true")
            .create()
            .map_err(|e| format!("cannot create the Kafka producer: {e}"))?;
        Ok(KafkaLink {
            brokers: brokers.to_string(),
            options: options.to_vec(),
            producer,
            created: parking_lot::Mutex::new(BTreeSet::new()),
            partition_counts: parking_lot::Mutex::new(BTreeMap::new()),
        })
    }

    fn config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        client_config(&self.brokers, &self.options, defaults)
    }

    /// Creates the topics that do not exist yet.
    async fn ensure_topics(&self, topics: &[String]) -> Result<(), String> {
        let missing: Vec<&String> = {
            let created = self.created.lock();
            topics.iter().filter(|t| !created.contains(*t)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = self
            .config(&[])
            .create()
            .map_err(|e| format!("cannot create the Kafka admin client: {e}"))?;
        let new: Vec<NewTopic> = missing
            .iter()
            .map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1)))
            .collect();
        let results = admin
            .create_topics(
                new.iter(),
                &AdminOptions::new().operation_timeout(Some(BROKER_TIMEOUT)),
            )
            .await
            .map_err(|e| format!("cannot create replication topics: {e}"))?;
        for result in results {
            match result {
                Ok(topic) | Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    self.created.lock().insert(topic);
                }
                Err((topic, code)) => return Err(format!("cannot create topic {topic}: {code}")),
            }
        }
        Ok(())
    }

    /// Publishes `batch` (this region's changes) and waits until the broker has every one.
    pub(crate) async fn send(&self, region: &str, batch: &ChangeBatch) -> Result<(), PeerError> {
        let failed = |message: String| PeerError::Unreachable {
            region: "kafka".into(),
            message,
        };
        let topics: BTreeSet<String> = batch
            .changes
            .iter()
            .map(|c| topic(region, &c.table))
            .collect();
        self.ensure_topics(&topics.into_iter().collect::<Vec<_>>())
            .await
            .map_err(failed)?;
        let mut deliveries = Vec::with_capacity(batch.changes.len());
        for change in &batch.changes {
            let key = serde_json::to_vec(&change.keys).map_err(|e| failed(e.to_string()))?;
            let value = serde_json::to_vec(change).map_err(|e| failed(e.to_string()))?;
            let topic = topic(region, &change.table);
            let record = FutureRecord::to(&topic).key(&key).payload(&value);
            // Queued at once, in order; awaited together below.
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| failed(format!("cannot queue a change: {e}")))?;
            deliveries.push(delivery);
        }
        // Then, behind those changes in every partition of its topic, each table's
        // delivered-through clock: a reader that has applied a partition up to a mark has
        // every change of this region's in it stamped up to that clock. The idempotent
        // producer keeps each partition in the order messages are queued, so the marks need
        // not wait for the changes' acknowledgements.
        let mut marks = deliveries;
        for (table, clock) in &batch.delivered {
            let topic = topic(region, table);
            self.ensure_topics(std::slice::from_ref(&topic))
                .await
                .map_err(failed)?;
            let partitions = self.partitions(&topic).map_err(failed)?;
            let value = serde_json::to_vec(&DeliveredMark { delivered: *clock })
                .map_err(|e| failed(e.to_string()))?;
            for partition in 0..partitions {
                let record = FutureRecord::<(), _>::to(&topic)
                    .partition(partition)
                    .payload(&value)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: MARK_HEADER,
                        value: Some("delivered"),
                    }));
                let delivery = self
                    .producer
                    .send_result(record)
                    .map_err(|(e, _)| failed(format!("cannot queue a mark: {e}")))?;
                marks.push(delivery);
            }
        }
        await_all(marks).await.map_err(failed)
    }

    /// How many partitions `topic` has (asked once, then remembered).
    fn partitions(&self, topic: &str) -> Result<i32, String> {
        if let Some(n) = self.partition_counts.lock().get(topic) {
            return Ok(*n);
        }
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(topic), BROKER_TIMEOUT)
            .map_err(|e| format!("no metadata for {topic}: {e}"))?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("topic {topic} has no partitions yet"))?;
        let n = i32::try_from(n).map_err(|e| e.to_string())?;
        self.partition_counts.lock().insert(topic.to_string(), n);
        Ok(n)
    }
}

/// A delivered-through mark, as published behind a batch (header [`MARK_HEADER`]).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct DeliveredMark {
    delivered: u64,
}

/// The header that tells a delivered-through mark from a change.
const MARK_HEADER: &str = "tidemark.replication";

/// Waits for every delivery; the first failure is the answer.
async fn await_all(deliveries: Vec<rdkafka::producer::DeliveryFuture>) -> Result<(), String> {
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(format!("the broker did not take a message: {e}")),
            Err(_) => return Err("the producer dropped a message".into()),
        }
    }
    Ok(())
}

/// A client configuration for `brokers` with `defaults` under the operator's `options`.
fn client_config(
    brokers: &str,
    options: &[(String, String)],
    defaults: &[(&str, &str)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    for (key, value) in options {
        config.set(key, value);
    }
    config
}

/// The table extension this node keeps its read positions in the other regions' topics of a
/// table under (`{region: [next offset of each partition]}`): it goes with the table, so a
/// replica created again reads those topics from the start.
const OFFSETS_EXTENSION: &str = "ReplicationOffsets";
/// How often read positions are saved (a position lost in a crash only re-reads changes,
/// which are then no-ops).
const SAVE_OFFSETS_EVERY: Duration = Duration::from_millis(200);

/// How often the reader checks which topics its tables need.
const SUBSCRIPTION_CHECK: Duration = Duration::from_millis(500);

/// Read positions: `(table, region) -> next offset of each partition`.
type Positions = BTreeMap<(String, String), Vec<i64>>;

impl Replicator {
    /// The topics this node reads, as `(table, region)`: the other regions' topics of the
    /// global tables it holds.
    fn consumed_topics(&self) -> Vec<(String, String)> {
        let mut topics = Vec::new();
        for (table, global) in GlobalTable::all(&self.store) {
            if !global.replicas.contains_key(self.region()) {
                continue;
            }
            for region in global.replicas.keys().filter(|r| *r != self.region()) {
                topics.push((table.clone(), region.clone()));
            }
        }
        topics
    }

    /// The saved read positions of `table` in `region`'s topic, if any.
    fn saved_positions(&self, table: &str, region: &str) -> Option<Vec<i64>> {
        let definition = self.store.table_definition(table).ok()?;
        let saved = definition.extensions.get(OFFSETS_EXTENSION)?;
        serde_json::from_value(saved.get(region)?.clone()).ok()
    }

    /// Saves the read positions of every table in `positions`.
    fn save_positions(&self, positions: &Positions) -> crate::Result<()> {
        let mut by_table: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> =
            BTreeMap::new();
        for ((table, region), offsets) in positions {
            by_table
                .entry(table)
                .or_default()
                .insert(region.clone(), serde_json::json!(offsets));
        }
        for (table, offsets) in by_table {
            match self.store.set_table_extension(
                table,
                OFFSETS_EXTENSION,
                Some(serde_json::Value::Object(offsets)),
            ) {
                Ok(()) | Err(tidemark_core::Error::ResourceNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads the other regions' replication topics until `shutdown`, applying what it reads.
    ///
    /// Partitions are assigned explicitly and read positions kept with the tables (not in a
    /// consumer group): a node killed and restarted resumes at once, with no group to
    /// rebalance, and positions go with the table when it is deleted.
    pub(crate) async fn consume(
        self: Arc<Self>,
        link: Arc<KafkaLink>,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        // A fetch returns as soon as there is data on Kafka, but some brokers (tansu) hold it
        // for the whole wait: a short wait keeps replication lag low on both.
        let consumer: StreamConsumer = link
            .config(&[("fetch.wait.max.ms", "10")])
            .set(
                "group.id",
                format!("tidemark.replication.{}", self.region()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
        let mut assigned: Vec<(String, String)> = Vec::new();
        let mut wanted = self.consumed_topics();
        let mut subscription_checked = tokio::time::Instant::now();
        // Where each partition read so far stands: the next offset to read.
        let mut positions: Positions = BTreeMap::new();
        let mut topic_of: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut pending: Vec<WireChange> = Vec::new();
        let mut read: BTreeMap<(String, i32), i64> = BTreeMap::new();
        // Delivered-through marks read and not yet effective (the changes before them in
        // their partitions are still pending), and those in effect, by topic and partition.
        let mut pending_marks: Vec<(String, i32, u64)> = Vec::new();
        let mut marks: BTreeMap<(String, i32), u64> = BTreeMap::new();
        let mut saved_at = tokio::time::Instant::now();
        let mut unsaved = false;
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // Which topics to read changes only with membership: looked at every
            // SUBSCRIPTION_CHECK, not for every message.
            if subscription_checked.elapsed() >= SUBSCRIPTION_CHECK {
                subscription_checked = tokio::time::Instant::now();
                wanted = self.consumed_topics();
            }
            if wanted != assigned {
                match self.assign(&link, &consumer, &wanted, &mut positions).await {
                    Ok(()) => {
                        topic_of = wanted
                            .iter()
                            .map(|(t, r)| (topic(r, t), (t.clone(), r.clone())))
                            .collect();
                        assigned = wanted.clone();
                        backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the replication topics yet");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(crate::ship::MAX_BACKOFF);
                        continue;
                    }
                }
            }
            if assigned.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = self.changed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            // Gather a batch: what is there now, up to APPLY_BATCH.
            let wait = match pending.is_empty() {
                true => Duration::from_millis(500),
                false => Duration::from_millis(2),
            };
            let received = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                received = tokio::time::timeout(wait, consumer.recv()) => received,
            };
            match received {
                Ok(Ok(message)) => {
                    let is_mark = message
                        .headers()
                        .is_some_and(|h| h.iter().any(|h| h.key == MARK_HEADER));
                    if is_mark {
                        match message
                            .payload()
                            .map(serde_json::from_slice::<DeliveredMark>)
                        {
                            Some(Ok(mark)) => pending_marks.push((
                                message.topic().to_string(),
                                message.partition(),
                                mark.delivered,
                            )),
                            _ => tracing::error!(
                                topic = message.topic(),
                                offset = message.offset(),
                                "a delivered-through mark that does not parse is skipped"
                            ),
                        }
                        read.insert(
                            (message.topic().to_string(), message.partition()),
                            message.offset() + 1,
                        );
                        continue;
                    }
                    let change = message.payload().map(serde_json::from_slice::<WireChange>);
                    match change {
                        Some(Ok(change)) => pending.push(change),
                        Some(Err(e)) => {
                            tracing::error!(topic = message.topic(), offset = message.offset(),
                            error = %e, "a replication message that does not parse is skipped")
                        }
                        None => {}
                    }
                    read.insert(
                        (message.topic().to_string(), message.partition()),
                        message.offset() + 1,
                    );
                    if pending.len() < APPLY_BATCH {
                        continue;
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "replication consumer error; it retries");
                    if pending.is_empty() {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(crate::ship::MAX_BACKOFF);
                        continue;
                    }
                }
                Err(_) => {}
            }
            if !pending.is_empty() {
                let batch = ChangeBatch {
                    changes: pending.clone(),
                    ..ChangeBatch::default()
                };
                let me = self.clone();
                match blocking(move || me.receive_changes("kafka", batch)).await {
                    Ok(_) => {
                        pending.clear();
                        backoff = Duration::from_millis(100);
                    }
                    Err(crate::Error::Core(e)) if e.is_fatal() => return Err(e.to_string()),
                    Err(e) => {
                        // Kept: applied again after a pause.
                        tracing::warn!(error = %e, "applying replicated changes from Kafka failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(crate::ship::MAX_BACKOFF);
                        continue;
                    }
                }
            }
            // Applied: the positions may move past it.
            for ((topic, partition), next) in std::mem::take(&mut read) {
                if let (Some(key), Ok(partition)) =
                    (topic_of.get(&topic), usize::try_from(partition))
                    && let Some(offset) = positions.get_mut(key).and_then(|p| p.get_mut(partition))
                {
                    *offset = next;
                    unsaved = true;
                }
            }
            // Applied: the marks read behind those changes hold now.
            let mut marked: BTreeSet<String> = BTreeSet::new();
            for (topic, partition, clock) in pending_marks.drain(..) {
                marks.insert((topic.clone(), partition), clock);
                marked.insert(topic);
            }
            for topic in marked {
                let Some(key) = topic_of.get(&topic) else {
                    continue;
                };
                let partitions = positions.get(key).map_or(0, Vec::len);
                let clocks: Vec<u64> = (0..partitions)
                    .filter_map(|p| marks.get(&(topic.clone(), i32::try_from(p).ok()?)).copied())
                    .collect();
                let Some(through) = clocks
                    .iter()
                    .min()
                    .copied()
                    .filter(|_| clocks.len() == partitions)
                else {
                    continue;
                };
                let (table, region) = key.clone();
                self.inbound.lock().insert((table.clone(), region), through);
                let me = self.clone();
                match blocking(move || me.move_inbound_hold(&table)).await {
                    Ok(()) => {}
                    Err(crate::Error::Core(e)) if e.is_fatal() => return Err(e.to_string()),
                    Err(e) => tracing::warn!(error = %e, "cannot move the inbound hold"),
                }
            }
            if unsaved && saved_at.elapsed() >= SAVE_OFFSETS_EVERY {
                let (me, snapshot) = (self.clone(), positions.clone());
                match blocking(move || me.save_positions(&snapshot)).await {
                    Ok(()) => {
                        unsaved = false;
                        saved_at = tokio::time::Instant::now();
                    }
                    Err(crate::Error::Core(e)) if e.is_fatal() => return Err(e.to_string()),
                    Err(e) => tracing::warn!(error = %e, "cannot save replication read positions"),
                }
            }
        }
    }

    /// Assigns every partition of `topics` to `consumer`, each from where this node stands in
    /// it: in memory, saved with the table, or the start of the topic.
    async fn assign(
        &self,
        link: &KafkaLink,
        consumer: &StreamConsumer,
        topics: &[(String, String)],
        positions: &mut Positions,
    ) -> Result<(), String> {
        let names: Vec<String> = topics.iter().map(|(t, r)| topic(r, t)).collect();
        link.ensure_topics(&names).await?;
        let mut list = TopicPartitionList::new();
        for (table, region) in topics {
            let name = topic(region, table);
            let partitions = usize::try_from(link.partitions(&name)?).map_err(|e| e.to_string())?;
            let key = (table.clone(), region.clone());
            if !positions.contains_key(&key) {
                let saved = self.saved_positions(table, region).unwrap_or_default();
                positions.insert(key.clone(), saved);
            }
            let offsets = positions.entry(key).or_default();
            offsets.resize(partitions, 0);
            for (partition, offset) in offsets.iter().enumerate() {
                let offset = match *offset {
                    0 => Offset::Beginning,
                    n => Offset::Offset(n),
                };
                list.add_partition_offset(&name, partition as i32, offset)
                    .map_err(|e| e.to_string())?;
            }
        }
        positions.retain(|key, _| topics.contains(key));
        consumer
            .assign(&list)
            .map_err(|e| format!("cannot read the replication topics: {e}"))
    }
}
