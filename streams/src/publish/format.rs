//! Kafka messages of a change record: key, headers, and the value in the table's format.
//!
//! - `dynamodb`: the DynamoDB Streams record exactly as GetRecords returns it (both images, as
//!   a NEW_AND_OLD_IMAGES stream has them), plus `tableName`;
//! - `kds`: the record Kinesis Data Streams for DynamoDB writes (UUID event id, `tableName`,
//!   `recordFormat`, millisecond `ApproximateCreationDateTime`, lowercase `userIdentity`);
//!   `kds-microsecond` the same with `ApproximateCreationDateTime` in microseconds, as a
//!   destination with `ApproximateCreationDateTimePrecision: MICROSECOND` writes it;
//! - `debezium`: the Debezium envelope (`before`, `after`, `op` c/u/d, `source`, `ts_ms`), with
//!   images in DynamoDB JSON, optionally followed by a null-value tombstone after each delete
//!   so log compaction can drop the key.
//!
//! Every message carries the change's sequence in the `tidemark.sequence` header: the
//! publisher resumes from it, and consumers can deduplicate by it.

use serde::Serialize;
use serde_json::{Value, json};
use tidemark_core::model::{Item, item_size};
use tidemark_core::{ChangeKind, ChangeRecord};

use crate::record::{event_bits, render_as};

/// Header holding the change sequence (decimal).
pub const SEQUENCE_HEADER: &str = "tidemark.sequence";
/// Header holding the event id (as GetRecords' `eventID`).
pub const EVENT_ID_HEADER: &str = "tidemark.event_id";
/// Header holding `INSERT`, `MODIFY` or `REMOVE`.
pub const EVENT_NAME_HEADER: &str = "tidemark.event_name";
/// Header holding the region where the change was first applied.
pub const ORIGIN_REGION_HEADER: &str = "tidemark.origin_region";
/// Header holding the change sequence the table's publishing started at (decimal).
pub const SINCE_HEADER: &str = "tidemark.since";
/// Header saying whether the topic holds what rebuilds the table: `full` when the table was
/// empty when its publishing started, `partial` when it held items then.
pub const HISTORY_HEADER: &str = "tidemark.history";

/// How a table's changes are written to Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// The DynamoDB Streams record plus `tableName`.
    DynamoDb,
    /// The Kinesis Data Streams for DynamoDB record.
    Kds {
        /// `ApproximateCreationDateTime` in microseconds rather than milliseconds.
        microseconds: bool,
    },
    /// The Debezium envelope; `tombstones` adds a null-value message after each delete.
    Debezium {
        /// Follow each delete with a tombstone.
        tombstones: bool,
    },
}

impl ValueFormat {
    /// Parses `dynamodb`, `kds`, `kds-microsecond`, `debezium` or `debezium-tombstones`.
    pub fn parse(name: &str) -> Option<ValueFormat> {
        match name {
            "dynamodb" => Some(ValueFormat::DynamoDb),
            "kds" => Some(ValueFormat::Kds {
                microseconds: false,
            }),
            "kds-microsecond" => Some(ValueFormat::Kds { microseconds: true }),
            "debezium" => Some(ValueFormat::Debezium { tombstones: false }),
            "debezium-tombstones" => Some(ValueFormat::Debezium { tombstones: true }),
            _ => None,
        }
    }

    /// The name [`ValueFormat::parse`] takes.
    pub fn name(self) -> &'static str {
        match self {
            ValueFormat::DynamoDb => "dynamodb",
            ValueFormat::Kds {
                microseconds: false,
            } => "kds",
            ValueFormat::Kds { microseconds: true } => "kds-microsecond",
            ValueFormat::Debezium { tombstones: false } => "debezium",
            ValueFormat::Debezium { tombstones: true } => "debezium-tombstones",
        }
    }
}

/// One Kafka message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The item's primary key as canonical JSON.
    pub key: Vec<u8>,
    /// The value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(&'static str, String)>,
}

/// The messages of one change: one, or two for a delete followed by a tombstone.
///
/// `region` is the publishing node's region; `now_millis` the time of publishing (Debezium's
/// top-level `ts_ms`).
pub fn messages(
    record: ChangeRecord,
    format: ValueFormat,
    region: &str,
    now_millis: u64,
) -> Vec<Message> {
    let key = canonical_key(&record.keys);
    let headers = vec![
        (SEQUENCE_HEADER, record.seq.to_string()),
        (
            EVENT_ID_HEADER,
            format!("{:032x}", event_bits(region, &record)),
        ),
        (EVENT_NAME_HEADER, record.kind.event_name().to_string()),
        (ORIGIN_REGION_HEADER, record.origin_region().to_string()),
    ];
    let is_delete = record.kind == ChangeKind::Remove;
    let value = match format {
        ValueFormat::DynamoDb => dynamodb_value(record, region),
        ValueFormat::Kds { microseconds } => kds_value(record, region, microseconds),
        ValueFormat::Debezium { .. } => debezium_value(record, region, now_millis),
    };
    let mut out = vec![Message {
        key: key.clone(),
        value: Some(value),
        headers: headers.clone(),
    }];
    if is_delete && format == (ValueFormat::Debezium { tombstones: true }) {
        out.push(Message {
            key,
            value: None,
            headers,
        });
    }
    out
}

/// The primary key as JSON with attributes in name order (DynamoDB JSON values), so the same
/// item always has the same key bytes.
pub fn canonical_key(keys: &Item) -> Vec<u8> {
    // `Item` is a BTreeMap: serialisation is in name order.
    serde_json::to_vec(keys).unwrap_or_default()
}

fn to_bytes(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn dynamodb_value(record: ChangeRecord, region: &str) -> Vec<u8> {
    let table_name = record.table_name.clone();
    let mut value = serde_json::to_value(render_as("NEW_AND_OLD_IMAGES", record, region))
        .unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("tableName".into(), Value::String(table_name));
    }
    to_bytes(&value)
}

/// The event id as a UUID, as Kinesis Data Streams records carry it.
fn uuid_of(bits: u128) -> String {
    uuid::Uuid::from_u128(bits).hyphenated().to_string()
}

fn size(item: &Option<Item>) -> usize {
    item.as_ref().map_or(0, item_size)
}

fn kds_value(record: ChangeRecord, region: &str, microseconds: bool) -> Vec<u8> {
    let event_id = uuid_of(event_bits(region, &record));
    let size_bytes =
        (item_size(&record.keys) + size(&record.new_image) + size(&record.old_image)).max(1);
    let user_identity = match (record.by_service(), record.kind) {
        (true, ChangeKind::Remove) => {
            json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})
        }
        _ => Value::Null,
    };
    // The commit clock counts milliseconds: in microseconds it is the same instant, scaled.
    let (created, precision) = match microseconds {
        false => (record.commit_time_millis(), "MILLISECOND"),
        true => (record.commit_time_millis() * 1000, "MICROSECOND"),
    };
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": created,
        "Keys": record.keys,
        "SizeBytes": size_bytes,
        "ApproximateCreationDateTimePrecision": precision,
    });
    if let Value::Object(map) = &mut dynamodb {
        if let Some(new) = record.new_image {
            map.insert("NewImage".into(), json!(new));
        }
        if let Some(old) = record.old_image {
            map.insert("OldImage".into(), json!(old));
        }
    }
    to_bytes(&json!({
        "awsRegion": region,
        "eventID": event_id,
        "eventName": record.kind.event_name(),
        "userIdentity": user_identity,
        "recordFormat": "application/json",
        "tableName": record.table_name,
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }))
}

fn debezium_value(record: ChangeRecord, region: &str, now_millis: u64) -> Vec<u8> {
    let op = match record.kind {
        ChangeKind::Insert => "c",
        ChangeKind::Modify => "u",
        ChangeKind::Remove => "d",
    };
    let event_id = format!("{:032x}", event_bits(region, &record));
    to_bytes(&json!({
        "before": record.old_image,
        "after": record.new_image,
        "op": op,
        "source": {
            "connector": "tidemark",
            "version": env!("CARGO_PKG_VERSION"),
            "name": region,
            "region": region,
            "origin_region": record.stamp.region,
            "table": record.table_name,
            "sequence": record.seq,
            "event_id": event_id,
            "ts_ms": record.commit_time_millis(),
            "ttl_delete": record.by_service() && record.kind == ChangeKind::Remove,
            "snapshot": "false",
        },
        "ts_ms": now_millis,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tidemark_core::model::AttributeValue;
    use tidemark_core::{CauseKind, ChangeSeq, HlcTimestamp, Stamp, TableId};

    /// A change of an item keyed by `pk` and `sk`, with both images where the kind has them.
    pub(crate) fn record(kind: ChangeKind, by_service: bool) -> ChangeRecord {
        let keys: Item = [
            ("sk".to_string(), AttributeValue::N(7.into())),
            ("pk".to_string(), AttributeValue::S("a".into())),
        ]
        .into();
        let mut old = keys.clone();
        old.insert("v".into(), AttributeValue::S("old".into()));
        let mut new = keys.clone();
        new.insert("v".into(), AttributeValue::S("new".into()));
        ChangeRecord {
            seq: ChangeSeq::new(42),
            table_id: TableId::new(3),
            table_name: "orders".into(),
            kind,
            keys,
            old_image: (kind != ChangeKind::Insert).then_some(old),
            new_image: (kind != ChangeKind::Remove).then_some(new),
            stamp: Stamp {
                hlc: HlcTimestamp(1),
                region: "eu-west-1".into(),
            },
            cause: if by_service {
                CauseKind::Expiry
            } else {
                CauseKind::Request
            },
            commit_clock: HlcTimestamp(1_700_000_000_123 << 16),
        }
    }

    fn value(message: &Message) -> Value {
        serde_json::from_slice(message.value.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn keys_are_canonical_and_headers_carry_the_sequence() {
        let out = messages(
            record(ChangeKind::Modify, false),
            ValueFormat::DynamoDb,
            "us-east-1",
            0,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            String::from_utf8(out[0].key.clone()).unwrap(),
            r#"{"pk":{"S":"a"},"sk":{"N":"7"}}"#
        );
        let header = |name: &str| {
            out[0]
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header(SEQUENCE_HEADER), "42");
        assert_eq!(header(EVENT_NAME_HEADER), "MODIFY");
        assert_eq!(header(ORIGIN_REGION_HEADER), "eu-west-1");
        assert_eq!(header(EVENT_ID_HEADER).len(), 32);
    }

    #[test]
    fn dynamodb_values_are_stream_records_with_both_images() {
        let out = messages(
            record(ChangeKind::Modify, false),
            ValueFormat::DynamoDb,
            "us-east-1",
            0,
        );
        let v = value(&out[0]);
        assert_eq!(v["tableName"], "orders");
        assert_eq!(v["eventName"], "MODIFY");
        assert_eq!(v["eventSource"], "aws:dynamodb");
        assert_eq!(v["dynamodb"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
        assert_eq!(v["dynamodb"]["NewImage"]["v"]["S"], "new");
        assert_eq!(v["dynamodb"]["OldImage"]["v"]["S"], "old");
        assert_eq!(
            v["dynamodb"]["ApproximateCreationDateTime"],
            1_700_000_000.0
        );
        assert!(v.get("userIdentity").is_none());
        let ttl = messages(
            record(ChangeKind::Remove, true),
            ValueFormat::DynamoDb,
            "us-east-1",
            0,
        );
        assert_eq!(value(&ttl[0])["userIdentity"]["Type"], "Service");
    }

    #[test]
    fn kds_values_follow_kinesis_conventions() {
        let kds = ValueFormat::Kds {
            microseconds: false,
        };
        let out = messages(record(ChangeKind::Insert, false), kds, "us-east-1", 0);
        let v = value(&out[0]);
        assert_eq!(v["recordFormat"], "application/json");
        assert_eq!(v["tableName"], "orders");
        assert_eq!(v["userIdentity"], Value::Null);
        assert_eq!(v["eventID"].as_str().unwrap().len(), 36);
        assert_eq!(
            v["dynamodb"]["ApproximateCreationDateTime"],
            1_700_000_000_123u64
        );
        assert_eq!(
            v["dynamodb"]["ApproximateCreationDateTimePrecision"],
            "MILLISECOND"
        );
        assert!(v["dynamodb"].get("OldImage").is_none());
        assert!(v["dynamodb"].get("SequenceNumber").is_none());
        let ttl = messages(record(ChangeKind::Remove, true), kds, "us-east-1", 0);
        let v = value(&ttl[0]);
        assert_eq!(v["userIdentity"]["type"], "Service");
        assert_eq!(v["userIdentity"]["principalId"], "dynamodb.amazonaws.com");
        assert_eq!(v["dynamodb"]["OldImage"]["v"]["S"], "old");
        let micro = messages(
            record(ChangeKind::Insert, false),
            ValueFormat::Kds { microseconds: true },
            "us-east-1",
            0,
        );
        let v = value(&micro[0]);
        assert_eq!(
            v["dynamodb"]["ApproximateCreationDateTime"],
            1_700_000_000_123_000u64
        );
        assert_eq!(
            v["dynamodb"]["ApproximateCreationDateTimePrecision"],
            "MICROSECOND"
        );
    }

    #[test]
    fn debezium_envelopes_and_tombstones() {
        let format = ValueFormat::Debezium { tombstones: true };
        let insert = messages(record(ChangeKind::Insert, false), format, "us-east-1", 5);
        assert_eq!(insert.len(), 1);
        let v = value(&insert[0]);
        assert_eq!(v["op"], "c");
        assert_eq!(v["before"], Value::Null);
        assert_eq!(v["after"]["v"]["S"], "new");
        assert_eq!(v["source"]["table"], "orders");
        assert_eq!(v["source"]["sequence"], 42);
        assert_eq!(v["source"]["ts_ms"], 1_700_000_000_123u64);
        assert_eq!(v["ts_ms"], 5);
        let delete = messages(record(ChangeKind::Remove, true), format, "us-east-1", 5);
        assert_eq!(delete.len(), 2, "a delete and its tombstone");
        let v = value(&delete[0]);
        assert_eq!((v["op"].as_str(), v["after"].is_null()), (Some("d"), true));
        assert_eq!(v["source"]["ttl_delete"], true);
        assert_eq!(delete[1].value, None);
        assert_eq!(delete[1].key, delete[0].key);
        let plain = messages(
            record(ChangeKind::Remove, false),
            ValueFormat::Debezium { tombstones: false },
            "us-east-1",
            5,
        );
        assert_eq!(plain.len(), 1);
        assert_eq!(value(&plain[0])["op"], "d");
        assert_eq!(value(&plain[0])["source"]["ttl_delete"], false);
    }

    #[test]
    fn format_names_round_trip() {
        for format in [
            ValueFormat::DynamoDb,
            ValueFormat::Kds {
                microseconds: false,
            },
            ValueFormat::Kds { microseconds: true },
            ValueFormat::Debezium { tombstones: false },
            ValueFormat::Debezium { tombstones: true },
        ] {
            assert_eq!(ValueFormat::parse(format.name()), Some(format));
        }
        assert_eq!(ValueFormat::parse("avro"), None);
    }
}
