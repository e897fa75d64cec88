//! A table rebuilt from a Kafka topic Tidemark published, in any of its formats: every
//! partition read from its start, each message's change applied in partition order (all the
//! changes of an item are in one partition, in commit order), up to an instant.
//!
//! Whether the topic holds what rebuilds the table shows in each message's headers: where the
//! table's publishing started (`tidemark.since`) and whether the table was empty then
//! (`tidemark.history`: `full` or `partial`). The latest publishing of the table decides: when
//! it started on an empty table, its messages alone rebuild the table at any instant from its
//! first change on; when the table held items then, the topic misses them. Messages of topics
//! published before these headers existed fall back to a weaker sign: an item whose first
//! message is a change of an existing item (a MODIFY or a REMOVE) misses what came before; an
//! item that existed before publishing started and never changed afterwards leaves no trace.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tidemark_core::model::Item;
use tidemark_kafka::KafkaSettings;
use tidemark_kafka::topics::{partition_count, watermarks};

use super::{Error, Result};
use crate::publish::format::{HISTORY_HEADER, SINCE_HEADER};

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
    // KDS records carry milliseconds or microseconds (and say which); DynamoDB Streams
    // records carry seconds.
    let millis = match text("/dynamodb/ApproximateCreationDateTimePrecision").as_deref() {
        Some("MILLISECOND") => created.and_then(Value::as_u64).unwrap_or(0),
        Some("MICROSECOND") => created.and_then(Value::as_u64).unwrap_or(0) / 1000,
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
    /// Why the topic does not hold everything that rebuilds the table, when it does not (the
    /// items are then what its changes give).
    pub incomplete: Option<String>,
    /// Changes applied.
    pub changes: u64,
    /// Messages read.
    pub messages: u64,
}

/// What a message's headers say of the publishing that wrote it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Publishing {
    /// The change sequence it started at (`None`: a message without the header).
    since: Option<u64>,
    /// Whether the table was empty then (`None`: not said).
    started_empty: Option<bool>,
}

impl Publishing {
    fn of(message: &impl Message) -> Publishing {
        let mut publishing = Publishing::default();
        for header in message.headers().into_iter().flat_map(|h| h.iter()) {
            let value = header.value.and_then(|v| std::str::from_utf8(v).ok());
            match (header.key, value) {
                (SINCE_HEADER, Some(v)) => publishing.since = v.parse().ok(),
                (HISTORY_HEADER, Some("full")) => publishing.started_empty = Some(true),
                (HISTORY_HEADER, Some("partial")) => publishing.started_empty = Some(false),
                _ => {}
            }
        }
        publishing
    }
}

/// A topic's changes of one table, applied as they are read.
#[derive(Debug, Default)]
struct Replay {
    /// What the changes up to the instant of earlier publishings give, in the order read.
    earlier: BTreeMap<Vec<u8>, Item>,
    /// The changes up to the instant of the latest publishing seen so far: each key's last
    /// new image (`None`: deleted).
    latest: BTreeMap<Vec<u8>, Option<Item>>,
    /// The latest publishing seen (at any instant).
    publishing: Option<Publishing>,
    /// Changes applied of the latest publishing, and of earlier ones.
    latest_changes: u64,
    earlier_changes: u64,
    /// Whether any message of an earlier publishing was read.
    earlier_seen: bool,
    /// Keys seen, and those whose first change had an old image (for topics without headers).
    seen: HashSet<Vec<u8>>,
    first_seen_changed: Vec<Vec<u8>>,
}

fn apply(items: &mut BTreeMap<Vec<u8>, Item>, key: Vec<u8>, new_image: Option<Item>) {
    match new_image {
        Some(new) => items.insert(key, new),
        None => items.remove(&key),
    };
}

impl Replay {
    /// Notes that a message of `publishing` was read, whatever its instant.
    fn note(&mut self, publishing: Publishing) {
        match self.publishing {
            Some(latest) if publishing.since < latest.since => self.earlier_seen = true,
            Some(latest) if publishing.since == latest.since => {}
            _ => {
                // A later publishing: what was read so far is earlier.
                self.earlier_seen |= self.publishing.is_some();
                self.fold_latest();
                self.publishing = Some(publishing);
            }
        }
    }

    /// Moves the latest publishing's changes onto the earlier ones'.
    fn fold_latest(&mut self) {
        for (key, new_image) in std::mem::take(&mut self.latest) {
            apply(&mut self.earlier, key, new_image);
        }
        self.earlier_changes += std::mem::take(&mut self.latest_changes);
    }

    /// Applies a change of `publishing` that is at or before the instant.
    fn apply(&mut self, publishing: Publishing, change: TopicChange) {
        let key = crate::publish::format::canonical_key(&change.keys);
        if self.seen.insert(key.clone()) && change.had_old_image {
            self.first_seen_changed.push(key.clone());
        }
        if self.publishing.is_some_and(|p| p.since == publishing.since) {
            self.latest.insert(key, change.new_image);
            self.latest_changes += 1;
        } else {
            apply(&mut self.earlier, key, change.new_image);
            self.earlier_changes += 1;
        }
    }

    /// Why the topic does not hold everything that rebuilds the table, if it does not.
    fn incomplete(&self) -> Option<String> {
        let legacy = || {
            let first = self.first_seen_changed.first()?;
            Some(format!(
                "{} items appear first as a change of an existing item (for example {}), so \
                 what came before is missing (was the table published from `now` after writes?)",
                self.first_seen_changed.len(),
                String::from_utf8_lossy(first)
            ))
        };
        let publishing = self.publishing?;
        let since = publishing.since.map_or("?".to_string(), |s| s.to_string());
        match publishing.started_empty {
            None => legacy(),
            Some(false) => Some(format!(
                "the table's publishing started at change {since} when the table already held \
                 items (published from `now` after writes), so the topic does not hold them"
            )),
            Some(true) if self.earlier_seen && self.latest_changes == 0 => Some(format!(
                "the instant is before the first change of the table's latest publishing (from \
                 change {since}), and the topic may miss changes made before that publishing \
                 started"
            )),
            Some(true) => None,
        }
    }

    /// The table, and why it may be incomplete.
    fn image(mut self, messages: u64) -> TopicImage {
        let incomplete = self.incomplete();
        if incomplete.is_none()
            && self
                .publishing
                .is_some_and(|p| p.started_empty == Some(true))
        {
            // The latest publishing started on an empty table: its changes alone rebuild it.
            self.earlier.clear();
            self.earlier_changes = 0;
        }
        self.fold_latest();
        TopicImage {
            items: self.earlier,
            incomplete,
            changes: self.earlier_changes,
            messages,
        }
    }
}

/// Reads every partition of `topic` to its end and applies the changes of `table` (every
/// table's, when `None`) committed at or before `at_millis` (all, when `None`), calling
/// `progress` with the messages read so far and in all.
///
/// # Errors
/// Validation for a topic that does not exist; Kafka for broker trouble; Invalid for a
/// message that is no Tidemark change.
pub fn read_topic(
    kafka: &KafkaSettings,
    topic: &str,
    table: Option<&str>,
    at_millis: Option<u64>,
    mut progress: impl FnMut(u64, u64),
) -> Result<TopicImage> {
    // Large fetches: fewer requests (each costs tansu on sqlite a scan).
    let consumer: BaseConsumer = kafka.consumer(
        "tidemark-restore",
        &[
            ("max.partition.fetch.bytes", "8388608"),
            ("fetch.max.bytes", "33554432"),
        ],
    )?;
    let partitions = match partition_count(consumer.client(), topic) {
        Err(tidemark_kafka::Error::NoPartitions { .. }) => {
            return Err(Error::Validation(format!("topic {topic} does not exist")));
        }
        counted => counted?,
    };
    // What is left to read of each partition: up to (not including) its high watermark.
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    let mut total = 0;
    let assigning = |e| Error::from(tidemark_kafka::Error::Assign(e));
    for partition in 0..partitions {
        let (low, high) = watermarks(consumer.client(), topic, partition)?;
        if high > low {
            ends.insert(partition, high);
            total += (high - low) as u64;
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(assigning)?;
        }
    }
    if ends.is_empty() {
        return Ok(TopicImage::default());
    }
    consumer.assign(&assignment).map_err(assigning)?;
    let mut replay = Replay::default();
    let mut messages = 0u64;
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
        let message = message.map_err(|source| tidemark_kafka::Error::Read {
            topic: topic.to_string(),
            source,
        })?;
        let (partition, offset) = (message.partition(), message.offset());
        last.insert(partition, offset);
        messages += 1;
        if messages.is_multiple_of(10_000) {
            progress(messages, total);
        }
        if ends.get(&partition).is_some_and(|end| offset + 1 >= *end) {
            ends.remove(&partition);
        }
        // A null value is a Debezium tombstone, which follows its delete.
        let Some(value) = message.payload() else {
            continue;
        };
        let change = parse_change(message.key(), value)?;
        if table.is_some_and(|t| t != change.table) {
            continue;
        }
        let publishing = Publishing::of(&message);
        replay.note(publishing);
        if at_millis.is_some_and(|at| change.millis > at) {
            continue;
        }
        replay.apply(publishing, change);
    }
    progress(messages, total);
    Ok(replay.image(messages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::format::tests::record;
    use crate::publish::format::{ValueFormat, messages};
    use tidemark_core::ChangeKind;
    use tidemark_core::model::AttributeValue;

    fn change(key: &str, version: Option<&str>, had_old_image: bool) -> TopicChange {
        let keys: Item = [("p".to_string(), AttributeValue::S(key.into()))].into();
        let new_image = version.map(|v| {
            let mut item = keys.clone();
            item.insert("v".into(), AttributeValue::S(v.into()));
            item
        });
        TopicChange {
            table: "t".into(),
            keys,
            new_image,
            had_old_image,
            millis: 0,
        }
    }

    fn publishing(since: u64, started_empty: Option<bool>) -> Publishing {
        Publishing {
            since: Some(since),
            started_empty,
        }
    }

    /// Replays `changes`; each with its publishing, and whether it is at or before the instant.
    fn replay(changes: Vec<(Publishing, TopicChange, bool)>) -> TopicImage {
        let mut replay = Replay::default();
        let count = changes.len() as u64;
        for (publishing, change, in_time) in changes {
            replay.note(publishing);
            if in_time {
                replay.apply(publishing, change);
            }
        }
        replay.image(count)
    }

    fn keys(image: &TopicImage) -> Vec<String> {
        image
            .items
            .keys()
            .map(|k| String::from_utf8_lossy(k).to_string())
            .collect()
    }

    #[test]
    fn a_publishing_that_started_on_an_empty_table_rebuilds_it() {
        let full = publishing(10, Some(true));
        let image = replay(vec![
            (full, change("a", Some("1"), false), true),
            (full, change("b", Some("1"), false), true),
            (full, change("a", Some("2"), true), true),
            (full, change("b", None, true), true),
            (full, change("c", Some("1"), false), false),
        ]);
        assert_eq!(image.incomplete, None);
        assert_eq!(keys(&image), [r#"{"p":{"S":"a"}}"#]);
        assert_eq!(image.changes, 4);
    }

    #[test]
    fn a_publishing_that_started_on_items_is_incomplete_even_with_only_inserts() {
        let partial = publishing(10, Some(false));
        let image = replay(vec![(partial, change("z", Some("1"), false), true)]);
        let why = image.incomplete.unwrap();
        assert!(
            why.contains("change 10") && why.contains("already held items"),
            "{why}"
        );
        assert_eq!(image.items.len(), 1, "what the topic holds is still given");
    }

    #[test]
    fn the_latest_publishing_decides_and_earlier_items_do_not_come_back() {
        let (first, second) = (publishing(10, Some(true)), publishing(90, Some(true)));
        let image = replay(vec![
            (first, change("a", Some("1"), false), true),
            (second, change("b", Some("1"), false), true),
            // An earlier publishing's message read later, from another partition.
            (first, change("c", Some("1"), false), true),
        ]);
        assert_eq!(image.incomplete, None);
        assert_eq!(keys(&image), [r#"{"p":{"S":"b"}}"#]);

        // An instant before the latest publishing's first change cannot be told apart from
        // one inside the gap between the two.
        let image = replay(vec![
            (first, change("a", Some("1"), false), true),
            (second, change("b", Some("1"), false), false),
        ]);
        assert!(
            image
                .incomplete
                .as_ref()
                .unwrap()
                .contains("latest publishing")
        );
        assert_eq!(keys(&image), [r#"{"p":{"S":"a"}}"#]);

        // A later publishing on items: incomplete, and everything read is given, in order.
        let image = replay(vec![
            (first, change("a", Some("1"), false), true),
            (publishing(90, Some(false)), change("a", None, true), true),
            (
                publishing(90, Some(false)),
                change("b", Some("1"), false),
                true,
            ),
        ]);
        assert!(image.incomplete.is_some());
        assert_eq!(keys(&image), [r#"{"p":{"S":"b"}}"#]);
    }

    #[test]
    fn topics_without_the_headers_fall_back_to_the_first_change_of_each_item() {
        let unknown = Publishing::default();
        let image = replay(vec![
            (unknown, change("a", Some("1"), false), true),
            (unknown, change("a", Some("2"), true), true),
        ]);
        assert_eq!(image.incomplete, None);
        let image = replay(vec![(unknown, change("a", Some("2"), true), true)]);
        assert!(
            image
                .incomplete
                .unwrap()
                .contains("appear first as a change")
        );
    }

    #[test]
    fn every_format_gives_back_the_change() {
        let formats = [
            "dynamodb",
            "kds",
            "kds-microsecond",
            "debezium",
            "debezium-tombstones",
        ];
        for format in formats {
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
