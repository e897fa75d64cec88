//! The DynamoDB Streams view of a change record.

use serde::Serialize;
use tidemark_core::model::{Item, item_size};
use tidemark_core::{ChangeKind, ChangeRecord, StreamInfo};

use crate::shard::sequence_number;

/// `userIdentity` of service deletes (TTL expiry), with the wire's capitalised member names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Identity {
    /// Always `dynamodb.amazonaws.com`.
    pub principal_id: &'static str,
    /// Always `Service`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
}

/// The identity DynamoDB puts on records of TTL deletes.
pub const SERVICE_IDENTITY: Identity = Identity {
    principal_id: "dynamodb.amazonaws.com",
    kind: "Service",
};

/// One element of GetRecords' `Records`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamRecord {
    /// Unique and stable id of the record (32 hex digits).
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName")]
    pub event_name: &'static str,
    /// Always `1.1`.
    #[serde(rename = "eventVersion")]
    pub event_version: &'static str,
    /// Always `aws:dynamodb`.
    #[serde(rename = "eventSource")]
    pub event_source: &'static str,
    /// The region of the node that serves the record.
    #[serde(rename = "awsRegion")]
    pub aws_region: String,
    /// The change itself.
    pub dynamodb: StreamRecordBody,
    /// Present on TTL deletes only.
    #[serde(rename = "userIdentity", skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<Identity>,
}

/// The `dynamodb` member of a stream record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRecordBody {
    /// Commit time in epoch seconds, rounded down.
    pub approximate_creation_date_time: f64,
    /// The item's key attributes.
    pub keys: Item,
    /// The item after the change, when the view type carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_image: Option<Item>,
    /// The item before the change, when the view type carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_image: Option<Item>,
    /// The record's sequence number.
    pub sequence_number: String,
    /// Size of keys and images, as DynamoDB counts item sizes.
    pub size_bytes: u64,
    /// The stream's view type.
    pub stream_view_type: String,
}

/// Renders `record` as `stream` presents it, served from `region`.
pub fn render(stream: &StreamInfo, record: ChangeRecord, region: &str) -> StreamRecord {
    render_as(&stream.view_type, record, region)
}

/// Renders `record` for a view type (`KEYS_ONLY`, `NEW_IMAGE`, `OLD_IMAGE` or
/// `NEW_AND_OLD_IMAGES`), served from `region`.
pub fn render_as(view_type: &str, record: ChangeRecord, region: &str) -> StreamRecord {
    let (new_wanted, old_wanted) = match view_type {
        "NEW_IMAGE" => (true, false),
        "OLD_IMAGE" => (false, true),
        "NEW_AND_OLD_IMAGES" => (true, true),
        _ => (false, false),
    };
    let event_id = format!("{:032x}", event_bits(region, &record));
    let user_identity =
        (record.by_service() && record.kind == ChangeKind::Remove).then_some(SERVICE_IDENTITY);
    let created_seconds = (record.commit_time_millis() / 1000) as f64;
    let new_image = record.new_image.filter(|_| new_wanted);
    let old_image = record.old_image.filter(|_| old_wanted);
    let size = |item: &Option<Item>| item.as_ref().map_or(0, item_size);
    let size_bytes = (item_size(&record.keys) + size(&new_image) + size(&old_image)) as u64;
    StreamRecord {
        event_id,
        event_name: record.kind.event_name(),
        event_version: "1.1",
        event_source: "aws:dynamodb",
        aws_region: region.to_string(),
        dynamodb: StreamRecordBody {
            approximate_creation_date_time: created_seconds,
            keys: record.keys,
            new_image,
            old_image,
            sequence_number: sequence_number(record.seq),
            size_bytes: size_bytes.max(1),
            stream_view_type: view_type.to_string(),
        },
        user_identity,
    }
}

/// The 128 bits that name a change wherever it is published (GetRecords' `eventID`, Kafka
/// headers): a hash of the serving region and the table's id, then the change sequence.
pub fn event_bits(region: &str, record: &ChangeRecord) -> u128 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(region.as_bytes());
    hasher.update(&record.table_id.to_be_bytes());
    (u128::from(hasher.digest()) << 64) | u128::from(record.seq.get())
}
