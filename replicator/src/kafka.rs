//! The Kafka transport: regions fan out through the cluster instead of connecting pairwise.
//!
//! Each node publishes its own-origin changes of every global table it holds to the table's
//! topic of its region (`tidemark.replication.<region>.<table>`; packed, one message per
//! partition and batch, each a binary [`ChangeBatch`]; an item's changes always in the same
//! partition, so they stay in order), from a retention hold per table that moves once the
//! broker has acknowledged them (idempotent producer, `acks=all`). Each node reads the
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
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::client::PeerError;
use crate::membership::GlobalTable;
use crate::protocol::{CHANGES_CONTENT_TYPE, ChangeBatch, WireChange};
use crate::{Replicator, blocking};

/// Partitions of a replication topic the node creates. One: each region has one reader of
/// the topic anyway, and a broker's cost is per partition fetched and written (three
/// partitions doubled the lag through tansu, docs/benchmarks.md). Topics made with more
/// partitions work too: an item's changes always land in the same one.
const PARTITIONS: i32 = 1;
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
    ///
    /// Changes go out packed, one message per partition and batch (split at
    /// [`MESSAGE_BYTES`]), each message a [`ChangeBatch`] in its binary form: a broker then
    /// stores a few messages per round instead of one per change, which is what keeps
    /// replication lag low on a broker that pays per message. An item's changes always go to
    /// the same partition (by a hash of its key), so they stay in order.
    ///
    /// Each table's delivered-through clock travels behind those changes, in every partition of
    /// its topic: a reader that has applied a partition up to a message carrying the clock has
    /// every change of this region's in it stamped up to that clock. The idempotent producer
    /// keeps each partition in the order messages are queued.
    pub(crate) async fn send(&self, region: &str, batch: ChangeBatch) -> Result<(), PeerError> {
        let failed = |message: String| PeerError::Unreachable {
            region: "kafka".into(),
            message,
        };
        let tables: BTreeSet<&str> = batch
            .changes
            .iter()
            .map(|c| c.table.as_str())
            .chain(batch.delivered.keys().map(String::as_str))
            .collect();
        let topics: Vec<String> = tables.iter().map(|t| topic(region, t)).collect();
        self.ensure_topics(&topics).await.map_err(failed)?;
        let messages = pack(region, batch, |topic| self.partitions(topic)).map_err(failed)?;
        let mut deliveries = Vec::new();
        for ((topic, partition), batches) in messages {
            for batch in batches {
                let payload = batch.encode();
                let record = FutureRecord::<(), _>::to(&topic)
                    .partition(partition)
                    .payload(&payload)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "content-type",
                        value: Some(CHANGES_CONTENT_TYPE),
                    }));
                // Queued at once, in order; awaited together below.
                let delivery = self
                    .producer
                    .send_result(record)
                    .map_err(|(e, _)| failed(format!("cannot queue a message: {e}")))?;
                deliveries.push(delivery);
            }
        }
        delivered(deliveries).await.map_err(failed)
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

/// The changes and delivered-through clocks of one replication message. Messages published
/// before changes were packed (one JSON change per message, clocks as JSON marks) still read,
/// so a region upgraded while such messages wait in a topic loses none of them.
fn read_message(payload: &[u8]) -> Result<(Vec<WireChange>, Vec<u64>), String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Unpacked {
        Change(WireChange),
        Mark { delivered: u64 },
    }
    match ChangeBatch::decode(payload) {
        Ok(batch) => Ok((batch.changes, batch.delivered.into_values().collect())),
        Err(e) if payload.first() == Some(&b'{') => match serde_json::from_slice(payload) {
            Ok(Unpacked::Change(change)) => Ok((vec![change], Vec::new())),
            Ok(Unpacked::Mark { delivered }) => Ok((Vec::new(), vec![delivered])),
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Most bytes of changes in one message (brokers take 1 MiB by default).
const MESSAGE_BYTES: usize = 512 * 1024;

/// The messages `batch` goes out as: per topic and partition, in log order, changes packed up
/// to [`MESSAGE_BYTES`] a message, an item's changes always in the same partition, and each
/// table's delivered-through clock in the last message of every partition of its topic.
fn pack(
    region: &str,
    batch: ChangeBatch,
    partitions: impl Fn(&str) -> Result<i32, String>,
) -> Result<BTreeMap<(String, i32), Vec<ChangeBatch>>, String> {
    let mut messages: BTreeMap<(String, i32), Vec<ChangeBatch>> = BTreeMap::new();
    // The estimated size of the last message of each partition: the one that still fills.
    let mut filling: BTreeMap<(String, i32), usize> = BTreeMap::new();
    let mut key = Vec::new();
    for change in batch.changes {
        let topic = topic(region, &change.table);
        key.clear();
        tidemark_core::replication::encode_item(&mut key, &change.keys);
        let partition = partition_of(&key, partitions(&topic)?);
        let at = (topic, partition);
        let size = change.size();
        let batches = messages.entry(at.clone()).or_default();
        let filled = filling.entry(at).or_insert(0);
        match batches.last_mut() {
            Some(last) if *filled + size <= MESSAGE_BYTES => last.changes.push(change),
            _ => {
                *filled = 0;
                batches.push(ChangeBatch {
                    changes: vec![change],
                    ..ChangeBatch::default()
                });
            }
        }
        *filled += size;
    }
    for (table, clock) in batch.delivered {
        let topic = topic(region, &table);
        for partition in 0..partitions(&topic)? {
            let batches = messages.entry((topic.clone(), partition)).or_default();
            if batches.is_empty() {
                batches.push(ChangeBatch::default());
            }
            if let Some(last) = batches.last_mut() {
                last.delivered.insert(table.clone(), clock);
            }
        }
    }
    Ok(messages)
}

/// The partition of the item whose key encodes as `key`, among `partitions`.
fn partition_of(key: &[u8], partitions: i32) -> i32 {
    let partitions = u64::try_from(partitions.max(1)).unwrap_or(1);
    i32::try_from(xxhash_rust::xxh3::xxh3_64(key) % partitions).unwrap_or(0)
}

/// Waits until the broker has every message of `deliveries`; the first failure is the answer.
async fn delivered(deliveries: Vec<DeliveryFuture>) -> Result<(), String> {
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
        // for the whole wait: a short wait keeps replication lag low on both. A failed fetch
        // (the topic's leader not known yet, right after it was made) is retried in 20 ms,
        // not librdkafka's 500.
        let consumer: StreamConsumer = link
            .config(&[
                ("fetch.wait.max.ms", "5"),
                ("fetch.error.backoff.ms", "20"),
                ("auto.offset.reset", "earliest"),
            ])
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
        let mut seen_epoch = self.membership_epoch();
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
        let mut saving: Option<tokio::task::JoinHandle<crate::Result<()>>> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // Which topics to read changes only with membership: looked at when it changed
            // here (every path that changes it says so), and every SUBSCRIPTION_CHECK as a
            // safety net, not for every message.
            if self.membership_epoch() != seen_epoch
                || subscription_checked.elapsed() >= SUBSCRIPTION_CHECK
            {
                seen_epoch = self.membership_epoch();
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
                        tracing::info!(topics = ?topic_of.keys().collect::<Vec<_>>(),
                            "reading the replication topics");
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
            // Gather a batch: what is there now, up to APPLY_BATCH (a message holds a whole
            // round of the sender's, so nothing is waited for once one is in).
            let wait = match pending.is_empty() {
                true => Duration::from_millis(500),
                false => Duration::ZERO,
            };
            let received = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                received = tokio::time::timeout(wait, consumer.recv()) => received,
            };
            match received {
                Ok(Ok(message)) => {
                    match message.payload().map(read_message) {
                        Some(Ok((changes, clocks))) => {
                            pending.extend(changes);
                            // A clock holds once the changes before it in its partition are
                            // applied: after this gathered batch is.
                            for clock in clocks {
                                pending_marks.push((
                                    message.topic().to_string(),
                                    message.partition(),
                                    clock,
                                ));
                            }
                        }
                        Some(Err(e)) => tracing::error!(topic = message.topic(),
                            offset = message.offset(), error = %e,
                            "a replication message that does not decode is skipped"),
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
                let applying = tokio::time::Instant::now();
                match blocking(move || me.receive_changes("kafka", batch)).await {
                    Ok(_) => {
                        tracing::debug!(
                            changes = pending.len(),
                            took_us = applying.elapsed().as_micros() as u64,
                            "applied changes read from Kafka"
                        );
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
            // Positions are saved beside the reading (a save syncs the catalog; waiting for
            // it here would hold up the next changes), one save at a time.
            if saving
                .as_ref()
                .is_some_and(tokio::task::JoinHandle::is_finished)
                && let Some(save) = saving.take()
            {
                match save.await {
                    Ok(Ok(())) => {}
                    Ok(Err(crate::Error::Core(e))) if e.is_fatal() => return Err(e.to_string()),
                    Ok(Err(e)) => {
                        unsaved = true;
                        tracing::warn!(error = %e, "cannot save replication read positions");
                    }
                    Err(e) => {
                        unsaved = true;
                        tracing::warn!(error = %e, "saving replication read positions stopped");
                    }
                }
            }
            if unsaved && saving.is_none() && saved_at.elapsed() >= SAVE_OFFSETS_EVERY {
                let (me, snapshot) = (self.clone(), positions.clone());
                saving = Some(tokio::task::spawn_blocking(move || {
                    me.save_positions(&snapshot)
                }));
                unsaved = false;
                saved_at = tokio::time::Instant::now();
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
                // Offset 0 rather than "the beginning": no offset lookup before the first
                // fetch; a topic trimmed past it resets to its earliest offset.
                list.add_partition_offset(&name, partition as i32, Offset::Offset(*offset))
                    .map_err(|e| e.to_string())?;
            }
        }
        positions.retain(|key, _| topics.contains(key));
        consumer
            .assign(&list)
            .map_err(|e| format!("cannot read the replication topics: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use tidemark_core::model::{AttributeValue, Item};

    use super::*;

    fn change(table: &str, key: usize, clock: u64, payload: usize) -> WireChange {
        let keys: Item = [("p".to_string(), AttributeValue::S(format!("k{key}")))].into();
        let mut image = keys.clone();
        image.insert("v".into(), AttributeValue::S("x".repeat(payload)));
        WireChange {
            table: table.into(),
            keys,
            new_image: Some(image),
            clock,
            region: "us".into(),
        }
    }

    #[test]
    fn an_items_changes_stay_in_one_partition_in_order_with_the_clocks_behind_them() {
        let changes: Vec<WireChange> = (0..300)
            .map(|n| change("t", n % 20, n as u64, 10))
            .collect();
        let batch = ChangeBatch {
            changes: changes.clone(),
            delivered: BTreeMap::from([("t".into(), 299), ("quiet".into(), 5)]),
        };
        let messages = pack("us", batch, |_| Ok(4)).expect("packs");
        let mut seen = 0;
        let mut partition_of_key: BTreeMap<String, i32> = BTreeMap::new();
        for ((topic, partition), batches) in &messages {
            let mut last_clock = None;
            for (i, message) in batches.iter().enumerate() {
                for c in &message.changes {
                    assert_eq!(topic, "tidemark.replication.us.t");
                    let key = format!("{:?}", c.keys);
                    assert_eq!(
                        *partition_of_key.entry(key).or_insert(*partition),
                        *partition,
                        "an item's changes all go to one partition"
                    );
                    assert!(last_clock < Some(c.clock), "log order within a partition");
                    last_clock = Some(c.clock);
                    seen += 1;
                }
                let last = i + 1 == batches.len();
                assert_eq!(
                    !message.delivered.is_empty(),
                    last,
                    "the clock travels in the last message of a partition, behind its changes"
                );
            }
        }
        assert_eq!(seen, changes.len(), "every change is packed once");
        for table in ["t", "quiet"] {
            let topic = topic("us", table);
            let marked = (0..4)
                .filter(|p| {
                    messages[&(topic.clone(), *p)]
                        .last()
                        .is_some_and(|m| m.delivered.contains_key(table))
                })
                .count();
            assert_eq!(marked, 4, "{table}'s clock is in every partition");
        }
    }

    #[test]
    fn messages_published_before_packing_still_read() {
        let one = change("t", 1, 9, 3);
        let json = serde_json::to_vec(&one).expect("json");
        assert_eq!(read_message(&json), Ok((vec![one], Vec::new())));
        assert_eq!(
            read_message(br#"{"delivered":77}"#),
            Ok((Vec::new(), vec![77]))
        );
        let packed = ChangeBatch {
            changes: vec![change("t", 2, 10, 3)],
            delivered: BTreeMap::from([("t".into(), 10)]),
        };
        assert_eq!(
            read_message(&packed.encode()),
            Ok((packed.changes.clone(), vec![10]))
        );
        assert!(read_message(br#"{"something":"else"}"#).is_err());
        assert!(read_message(b"").is_err());
    }

    #[test]
    fn messages_stay_under_the_size_cap() {
        let changes: Vec<WireChange> = (0..40).map(|n| change("t", n, n as u64, 60_000)).collect();
        let messages = pack(
            "us",
            ChangeBatch {
                changes,
                delivered: BTreeMap::new(),
            },
            |_| Ok(1),
        )
        .expect("packs");
        let batches = &messages[&(topic("us", "t"), 0)];
        assert!(batches.len() > 1, "2.4 MB of changes take several messages");
        for batch in batches {
            assert!(batch.encode().len() <= MESSAGE_BYTES + 1024);
        }
        let total: usize = batches.iter().map(|b| b.changes.len()).sum();
        assert_eq!(total, 40);
    }
}
