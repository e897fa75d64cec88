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
//!
//! This module is the sending side ([`KafkaLink`], and how a batch is packed into messages);
//! `reader` is the reading side, and `stops` what stops it reading a partition (a message
//! that does not decode, a position the topic no longer holds). Clients, topic creation (with the node's replication
//! factor) and partition lookups are `tidemark_kafka`'s.

mod reader;
mod stops;

pub(crate) use stops::TopicStops;
pub use stops::{StopKind, StoppedPartition};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tidemark_kafka::{KafkaSettings, TopicSpec};

use crate::client::PeerError;
use crate::protocol::{CHANGES_CONTENT_TYPE, ChangeBatch, DecodeError, WireChange};

/// Partitions of a replication topic the node creates. One: each region has one reader of
/// the topic anyway, and a broker's cost is per partition fetched and written (three
/// partitions doubled the lag through tansu, docs/benchmarks.md). Topics made with more
/// partitions work too: an item's changes always land in the same one.
const PARTITIONS: i32 = 1;

/// Longest topic name Kafka takes.
const MAX_TOPIC_CHARS: usize = 249;
/// Hex digits of the hash that ends a shortened topic name.
const NAME_HASH_DIGITS: usize = 16;

/// The replication topic of `table`'s changes made in `region`:
/// `tidemark.replication.<region>.<table>` when that fits in Kafka's 249 characters (every
/// topic made so far keeps its name), else its first 232 characters, a `.` and a hash of the
/// whole name in 16 hex digits. A DynamoDB table name may have 255 characters; the hash keeps
/// names that share a long beginning apart.
pub fn topic(region: &str, table: &str) -> String {
    let full = format!("tidemark.replication.{region}.{table}");
    if full.len() <= MAX_TOPIC_CHARS {
        return full;
    }
    let mut kept = MAX_TOPIC_CHARS - 1 - NAME_HASH_DIGITS;
    while !full.is_char_boundary(kept) {
        kept -= 1;
    }
    let hash = xxhash_rust::xxh3::xxh3_64(full.as_bytes());
    format!("{}.{hash:016x}", &full[..kept])
}

/// A connection to the Kafka cluster changes travel through.
pub(crate) struct KafkaLink {
    cluster: KafkaSettings,
    /// The `retention.ms` of the topics this node creates.
    retention: Duration,
    producer: FutureProducer,
    created: parking_lot::Mutex<BTreeSet<String>>,
    partition_counts: parking_lot::Mutex<BTreeMap<String, i32>>,
}

impl std::fmt::Debug for KafkaLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLink")
            .field("brokers", &self.cluster.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaLink {
    /// A link to `cluster`, creating topics that keep messages for `retention`.
    ///
    /// # Errors
    /// The producer cannot be created (bad settings).
    pub(crate) fn connect(
        cluster: &KafkaSettings,
        retention: Duration,
    ) -> Result<KafkaLink, tidemark_kafka::Error> {
        let producer = cluster.producer(&[("linger.ms", "2")])?;
        Ok(KafkaLink {
            cluster: cluster.clone(),
            retention,
            producer,
            created: parking_lot::Mutex::new(BTreeSet::new()),
            partition_counts: parking_lot::Mutex::new(BTreeMap::new()),
        })
    }

    /// Creates the topics that do not exist yet: [`PARTITIONS`] each, with the cluster's
    /// replication factor and an explicit retention (a topic left to a broker's default could
    /// lose changes a region away for a while still needs, with nothing saying so).
    async fn ensure_topics(&self, topics: &[String]) -> Result<(), tidemark_kafka::Error> {
        let missing: Vec<TopicSpec> = {
            let created = self.created.lock();
            topics
                .iter()
                .filter(|t| !created.contains(*t))
                .map(|name| TopicSpec {
                    name: name.clone(),
                    partitions: PARTITIONS,
                    replication_factor: self.cluster.topics.replication_factor,
                    retention: Some(self.retention),
                    keep_forever: false,
                    max_message_bytes: None,
                })
                .collect()
        };
        self.cluster.ensure_topics(&missing).await?;
        self.created
            .lock()
            .extend(missing.into_iter().map(|topic| topic.name));
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
        let failed = |e: tidemark_kafka::Error| PeerError::Unreachable {
            region: "kafka".into(),
            message: e.to_string(),
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
                    .map_err(|(e, _)| failed(tidemark_kafka::Error::Produce(e)))?;
                deliveries.push(delivery);
            }
        }
        // The first failure is the answer.
        for delivery in deliveries {
            tidemark_kafka::topics::delivered(delivery)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// How many partitions `topic` has (asked once, then remembered).
    /// Where `region`'s topic of `table` ends now: the offset the next message of each
    /// partition will take. The topic is created if it does not exist yet.
    ///
    /// # Errors
    /// The broker cannot be reached.
    pub(crate) async fn ends(
        self: &Arc<Self>,
        region: &str,
        table: &str,
    ) -> crate::Result<Vec<i64>> {
        let failed = |e: tidemark_kafka::Error| PeerError::Unreachable {
            region: "kafka".into(),
            message: e.to_string(),
        };
        let name = topic(region, table);
        self.ensure_topics(std::slice::from_ref(&name))
            .await
            .map_err(failed)?;
        let me = self.clone();
        crate::blocking(move || {
            let ends = (0..me.partitions(&name).map_err(failed)?)
                .map(|partition| {
                    tidemark_kafka::topics::watermarks(me.producer.client(), &name, partition)
                        .map(|(_, high)| high)
                        .map_err(failed)
                })
                .collect::<Result<Vec<i64>, PeerError>>()?;
            Ok(ends)
        })
        .await
    }

    fn partitions(&self, topic: &str) -> Result<i32, tidemark_kafka::Error> {
        if let Some(n) = self.partition_counts.lock().get(topic) {
            return Ok(*n);
        }
        let n = tidemark_kafka::topics::partition_count(self.producer.client(), topic)?;
        self.partition_counts.lock().insert(topic.to_string(), n);
        Ok(n)
    }
}

/// The changes and delivered-through clocks of one replication message. Messages published
/// before changes were packed (one JSON change per message, clocks as JSON marks) still read,
/// so a region upgraded while such messages wait in a topic loses none of them.
fn read_message(payload: &[u8]) -> Result<(Vec<WireChange>, Vec<u64>), DecodeError> {
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
    partitions: impl Fn(&str) -> Result<i32, tidemark_kafka::Error>,
) -> Result<BTreeMap<(String, i32), Vec<ChangeBatch>>, tidemark_kafka::Error> {
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

    #[test]
    fn topic_names_fit_kafka_for_every_table_name_dynamodb_allows() {
        assert_eq!(
            topic("us-east-1", "orders"),
            "tidemark.replication.us-east-1.orders",
            "a name that fits is kept, so existing topics keep working"
        );
        let longest = "t".repeat(255);
        let mut other = "t".repeat(254);
        other.push('u');
        for region in ["us-east-1", &"r".repeat(300)] {
            let name = topic(region, &longest);
            assert_eq!(name.len(), MAX_TOPIC_CHARS, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            );
            assert_eq!(name, topic(region, &longest), "the same name every time");
            assert_ne!(
                name,
                topic(region, &other),
                "names that differ only past the cut stay apart"
            );
        }
        assert!(topic("us-east-1", &longest).starts_with("tidemark.replication.us-east-1.ttt"));
        let fits = "f".repeat(MAX_TOPIC_CHARS - "tidemark.replication.eu.".len());
        assert_eq!(
            topic("eu", &fits),
            format!("tidemark.replication.eu.{fits}")
        );
        assert_eq!(topic("eu", &format!("{fits}f")).len(), MAX_TOPIC_CHARS);
    }
}
