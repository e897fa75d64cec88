//! A table rebuilt from a Kafka topic Tidemark published, in any of its formats: every
//! partition read from its start, each message's change applied in partition order (all the
//! changes of an item are in one partition, in commit order), up to an instant.
//!
//! Whether the topic holds the table's whole history shows in the first message of each item:
//! a change that had an old image (a MODIFY or a REMOVE) means the item existed before the
//! topic's first message of it, so something before it is missing. An item that existed before
//! publishing started and never changed afterwards leaves no trace at all; the caller says so.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tidemark_core::model::Item;

use super::{Error, Result};
use crate::publish::kafka::KafkaSettings;

const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the next message before giving up on a topic: a broker can take long to
/// answer the first fetch of a large partition (tansu on sqlite takes seconds).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// One change as a message carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicChange {
    /// The table's name.
    pub table: String,
    /// The item's key attributes.
    pub keys: Item,
    /// The item after the change; `None` for a delete.
    pub new_image: Option<Item>,
    /// True when the change had an old image (the item existed before it).
    pub had_old_image: bool,
    /// When the change was committed, milliseconds (whole seconds in the `dynamodb` format,
    /// whose `ApproximateCreationDateTime` is in seconds, as in DynamoDB Streams).
    pub millis: u64,
}

fn item(value: Option<&Value>) -> Result<Option<Item>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| Error::Invalid(format!("an image that is not DynamoDB JSON: {e}"))),
    }
}

/// The change a message carries: its key (the item's key attributes as DynamoDB JSON, as
/// Tidemark publishes every format) and its value (`dynamodb`, `kds` or `debezium` format).
///
/// # Errors
/// Invalid for a value in none of them, or a Debezium value without its key.
pub fn parse_change(key: Option<&[u8]>, value: &[u8]) -> Result<TopicChange> {
    let v: Value = serde_json::from_slice(value)
        .map_err(|e| Error::Invalid(format!("a message that is not JSON: {e}")))?;
    let message_keys: Option<Item> =
        match key {
            Some(key) => Some(serde_json::from_slice(key).map_err(|e| {
                Error::Invalid(format!("a message key that is not an item key: {e}"))
            })?),
            None => None,
        };
    let text = |pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Some(op) = text("/op") {
        // Debezium: images before/after, the commit time in source.ts_ms.
        let new_image = item(v.get("after"))?;
        let old = item(v.get("before"))?;
        let keys = message_keys
            .ok_or_else(|| Error::Invalid("a Debezium change without its message key".into()))?;
        return Ok(TopicChange {
            table: text("/source/table").unwrap_or_default(),
            keys,
            new_image,
            had_old_image: old.is_some() || op != "c",
            millis: v
                .pointer("/source/ts_ms")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        });
    }
    let keys = match message_keys {
        Some(keys) => keys,
        None => item(v.pointer("/dynamodb/Keys"))?
            .ok_or_else(|| Error::Invalid("a change record without Keys".into()))?,
    };
    let event = text("/eventName").unwrap_or_default();
    let new_image = match event.as_str() {
        "REMOVE" => None,
        _ => Some(
            item(v.pointer("/dynamodb/NewImage"))?
                .ok_or_else(|| Error::Invalid(format!("an {event} record without NewImage")))?,
        ),
    };
    let created = v.pointer("/dynamodb/ApproximateCreationDateTime");
    // KDS records carry milliseconds (and say so); DynamoDB Streams records carry seconds.
    let millis = match text("/dynamodb/ApproximateCreationDateTimePrecision").as_deref() {
        Some("MILLISECOND") => created.and_then(Value::as_u64).unwrap_or(0),
        _ => created
            .and_then(Value::as_f64)
            .map_or(0, |s| (s * 1000.0) as u64),
    };
    Ok(TopicChange {
        table: text("/tableName").unwrap_or_default(),
        keys,
        new_image,
        had_old_image: event != "INSERT",
        millis,
    })
}

/// The table a topic holds, as of an instant.
#[derive(Debug, Default)]
pub struct TopicImage {
    /// The items, by their canonical key.
    pub items: BTreeMap<Vec<u8>, Item>,
    /// Items whose first message in the topic was a change of an existing item (the topic
    /// misses what came before it), as canonical keys.
    pub missing_history: Vec<Vec<u8>>,
    /// Changes applied.
    pub changes: u64,
    /// Messages read.
    pub messages: u64,
}

/// Reads every partition of `topic` to its end and applies the changes of `table` (every
/// table's, when `None`) committed at or before `at_millis` (all, when `None`), calling
/// `progress` with the messages read so far and in all.
///
/// # Errors
/// Io for broker trouble; Invalid for a message that is no Tidemark change.
pub fn read_topic(
    kafka: &KafkaSettings,
    topic: &str,
    table: Option<&str>,
    at_millis: Option<u64>,
    mut progress: impl FnMut(u64, u64),
) -> Result<TopicImage> {
    let broker = |e: rdkafka::error::KafkaError| Error::Io(format!("Kafka: {e}"));
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "tidemark-restore")
        .set("enable.auto.commit", "false")
        // Large fetches: fewer requests (each costs tansu on sqlite a scan).
        .set("max.partition.fetch.bytes", "8388608")
        .set("fetch.max.bytes", "33554432")
        .create()
        .map_err(broker)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .map_err(broker)?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len() as i32)
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::Validation(format!("topic {topic} does not exist")))?;
    // What is left to read of each partition: up to (not including) its high watermark.
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    let mut total = 0;
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
            .map_err(broker)?;
        if high > low {
            ends.insert(partition, high);
            total += (high - low) as u64;
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(broker)?;
        }
    }
    let mut image = TopicImage::default();
    if ends.is_empty() {
        return Ok(image);
    }
    consumer.assign(&assignment).map_err(broker)?;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut idle_since = std::time::Instant::now();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    while !ends.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            if idle_since.elapsed() > DELIVERY_TIMEOUT {
                return Err(Error::Io(format!(
                    "topic {topic} stopped delivering before its end (partitions left, with \
                     their end and the last offset read: {:?})",
                    ends.iter()
                        .map(|(p, end)| (p, end, last.get(p)))
                        .collect::<Vec<_>>()
                )));
            }
            continue;
        };
        idle_since = std::time::Instant::now();
        let message = message.map_err(broker)?;
        let (partition, offset) = (message.partition(), message.offset());
        last.insert(partition, offset);
        image.messages += 1;
        if image.messages % 10_000 == 0 {
            progress(image.messages, total);
        }
        if ends.get(&partition).is_some_and(|end| offset + 1 >= *end) {
            ends.remove(&partition);
        }
        // A null value is a Debezium tombstone, which follows its delete.
        let Some(value) = message.payload() else {
            continue;
        };
        let change = parse_change(message.key(), value)?;
        if table.is_some_and(|t| t != change.table)
            || at_millis.is_some_and(|at| change.millis > at)
        {
            continue;
        }
        let key = crate::publish::format::canonical_key(&change.keys);
        if seen.insert(key.clone()) && change.had_old_image {
            image.missing_history.push(key.clone());
        }
        match change.new_image {
            Some(new) => image.items.insert(key, new),
            None => image.items.remove(&key),
        };
        image.changes += 1;
    }
    progress(image.messages, total);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::format::tests::record;
    use crate::publish::format::{ValueFormat, messages};
    use tidemark_core::ChangeKind;

    #[test]
    fn every_format_gives_back_the_change() {
        for format in ["dynamodb", "kds", "debezium", "debezium-tombstones"] {
            let format = ValueFormat::parse(format).unwrap();
            for kind in [ChangeKind::Insert, ChangeKind::Modify, ChangeKind::Remove] {
                let original = record(kind, false);
                let message = messages(original.clone(), format, "us-east-1", 0)
                    .into_iter()
                    .next()
                    .unwrap();
                let change = parse_change(Some(&message.key), &message.value.unwrap()).unwrap();
                assert_eq!(change.table, "orders");
                assert_eq!(change.keys, original.keys);
                assert_eq!(change.new_image, original.new_image, "{format:?} {kind:?}");
                assert_eq!(change.had_old_image, kind != ChangeKind::Insert);
                let expected = match format {
                    ValueFormat::DynamoDb => 1_700_000_000_000,
                    _ => 1_700_000_000_123,
                };
                assert_eq!(change.millis, expected, "{format:?}");
            }
        }
    }
}
