//! DynamoDB's Kinesis streaming destination calls, carried out as Kafka publishing.
//!
//! A table "streams to a Kinesis data stream" by publishing its changes in the `kds` format to
//! the Kafka topic the stream's ARN names (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` →
//! topic `NAME`): the active destination is the table's publishing settings with their
//! `stream_arn`, so there is one source of truth for what runs. As in DynamoDB a table has one
//! destination at a time; a destination turned off stays listed as DISABLED (the table
//! extension `KinesisDestinations` remembers it) until it is turned on again.

use serde::{Deserialize, Serialize};
use tidemark_core::{ChangeSeq, Store};
use tidemark_kafka::TopicSettings;

use super::format::ValueFormat;
use super::settings::{self, PublishFrom, PublishSettings, PublishedTable};
use crate::error::{Error, Result};

/// The table extension that remembers a table's disabled destinations.
pub const EXTENSION: &str = "KinesisDestinations";

/// Longest Kinesis stream name.
const MAX_STREAM_NAME: usize = 128;

/// The unit of a KDS record's `ApproximateCreationDateTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Precision {
    /// Milliseconds since the epoch (DynamoDB's default).
    #[default]
    Millisecond,
    /// Microseconds since the epoch.
    Microsecond,
}

impl Precision {
    /// Parses `MILLISECOND` or `MICROSECOND`.
    pub fn parse(name: &str) -> Option<Precision> {
        match name {
            "MILLISECOND" => Some(Precision::Millisecond),
            "MICROSECOND" => Some(Precision::Microsecond),
            _ => None,
        }
    }

    /// The name DynamoDB gives it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Millisecond => "MILLISECOND",
            Precision::Microsecond => "MICROSECOND",
        }
    }

    fn format(self) -> ValueFormat {
        ValueFormat::Kds {
            microseconds: self == Precision::Microsecond,
        }
    }

    fn of_format(format: &str) -> Precision {
        match ValueFormat::parse(format) {
            Some(ValueFormat::Kds { microseconds: true }) => Precision::Microsecond,
            _ => Precision::Millisecond,
        }
    }
}

/// Where a destination stands, in DynamoDB's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DestinationStatus {
    /// Being turned on (what EnableKinesisStreamingDestination answers).
    Enabling,
    /// Publishing.
    Active,
    /// Being turned off (what DisableKinesisStreamingDestination answers).
    Disabling,
    /// Turned off.
    Disabled,
    /// Changing its settings (what UpdateKinesisStreamingDestination answers).
    Updating,
}

/// A table's Kinesis streaming destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Destination {
    /// The Kinesis stream ARN.
    pub stream_arn: String,
    /// Where it stands.
    pub status: DestinationStatus,
    /// The unit of its records' creation times.
    pub precision: Precision,
}

/// The Kafka topic a Kinesis stream ARN names: the stream's name.
///
/// # Errors
/// Validation for anything but `arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME` with a
/// stream name Kinesis allows (1 to 128 of `[a-zA-Z0-9_.-]`).
pub fn topic_of(stream_arn: &str) -> Result<String> {
    let invalid = || {
        Error::Validation(format!(
            "Invalid StreamArn {stream_arn}: expected arn:aws:kinesis:<region>:<account>:stream/<stream name>"
        ))
    };
    let fields: Vec<&str> = stream_arn.splitn(6, ':').collect();
    let [arn, partition, service, _region, _account, resource] = fields.as_slice() else {
        return Err(invalid());
    };
    if *arn != "arn" || partition.is_empty() || *service != "kinesis" {
        return Err(invalid());
    }
    let name = resource.strip_prefix("stream/").ok_or_else(invalid)?;
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > MAX_STREAM_NAME || !name.chars().all(legal) {
        return Err(invalid());
    }
    Ok(name.to_string())
}

const NOT_DISABLED: &str = "Table is not in a valid state to enable Kinesis Streaming Destination: EnableKinesisStreamingDestination must be DISABLED or ENABLE_FAILED to perform ENABLE operation.";
const NOT_ACTIVE_TO_DISABLE: &str = "Table is not in a valid state to disable Kinesis Streaming Destination: DisableKinesisStreamingDestination must be ACTIVE to perform DISABLE operation.";
const NOT_ACTIVE_TO_UPDATE: &str = "Table is not in a valid state to update Kinesis Streaming Destination: UpdateKinesisStreamingDestination must be ACTIVE to perform UPDATE operation.";

/// The destination a table publishes to now, if it was turned on as one.
fn active(table: &PublishedTable) -> Option<Destination> {
    Some(Destination {
        stream_arn: table.settings.stream_arn.clone()?,
        status: DestinationStatus::Active,
        precision: Precision::of_format(&table.settings.format),
    })
}

fn disabled(store: &Store, table_name: &str) -> Result<Vec<Destination>> {
    let value = store
        .tables_with_extension(EXTENSION)
        .into_iter()
        .find(|t| t.table_name == table_name)
        .map(|t| t.value);
    match value {
        None => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value).map_err(|e| {
            Error::Core(tidemark_core::Error::Corrupt(format!(
                "the Kinesis destinations of {table_name}: {e}"
            )))
        }),
    }
}

fn save_disabled(store: &Store, table_name: &str, destinations: &[Destination]) -> Result<()> {
    let value = match destinations.is_empty() {
        true => None,
        false => Some(
            serde_json::to_value(destinations)
                .map_err(|e| Error::Core(tidemark_core::Error::Internal(e.to_string())))?,
        ),
    };
    store.set_table_extension(table_name, EXTENSION, value)?;
    Ok(())
}

/// The table's destinations: the active one first, then those turned off.
///
/// # Errors
/// ResourceNotFound; corrupt settings.
pub fn destinations(store: &Store, table_name: &str) -> Result<Vec<Destination>> {
    store.table_id(table_name)?;
    let current = settings::published_table(store, table_name)?;
    let mut out: Vec<Destination> = current.as_ref().and_then(active).into_iter().collect();
    out.extend(disabled(store, table_name)?);
    Ok(out)
}

/// Turns the table's publishing on as a Kinesis streaming destination, from the next change.
///
/// # Errors
/// ResourceNotFound; Validation for a bad ARN, or when the table already publishes (to a
/// destination or as an operator set it); storage failures.
pub fn enable(
    store: &Store,
    table_name: &str,
    stream_arn: &str,
    precision: Precision,
    topics: TopicSettings,
) -> Result<Destination> {
    let topic = topic_of(stream_arn)?;
    store.table_id(table_name)?;
    if settings::published_table(store, table_name)?.is_some() {
        return Err(Error::Validation(NOT_DISABLED.into()));
    }
    let publishing = PublishSettings {
        topic,
        format: precision.format().name().to_string(),
        start_seq: ChangeSeq::ZERO,
        partitions: topics.partitions,
        replication_factor: topics.replication_factor,
        starts_empty: None,
        stream_arn: Some(stream_arn.to_string()),
    };
    settings::set_publishing(store, table_name, Some((publishing, PublishFrom::Now)))?;
    let mut off = disabled(store, table_name)?;
    off.retain(|d| d.stream_arn != stream_arn);
    save_disabled(store, table_name, &off)?;
    Ok(Destination {
        stream_arn: stream_arn.to_string(),
        status: DestinationStatus::Enabling,
        precision,
    })
}

/// The table's active destination when it is `stream_arn`.
fn active_as(store: &Store, table_name: &str, stream_arn: &str) -> Result<Option<PublishedTable>> {
    store.table_id(table_name)?;
    Ok(settings::published_table(store, table_name)?
        .filter(|t| t.settings.stream_arn.as_deref() == Some(stream_arn)))
}

/// Turns the table's destination `stream_arn` off; it stays listed as DISABLED.
///
/// # Errors
/// ResourceNotFound; Validation when `stream_arn` is not the table's active destination;
/// storage failures.
pub fn disable(store: &Store, table_name: &str, stream_arn: &str) -> Result<Destination> {
    let current = active_as(store, table_name, stream_arn)?
        .ok_or_else(|| Error::Validation(NOT_ACTIVE_TO_DISABLE.into()))?;
    let precision = Precision::of_format(&current.settings.format);
    settings::set_publishing(store, table_name, None)?;
    let mut off = disabled(store, table_name)?;
    off.retain(|d| d.stream_arn != stream_arn);
    off.push(Destination {
        stream_arn: stream_arn.to_string(),
        status: DestinationStatus::Disabled,
        precision,
    });
    save_disabled(store, table_name, &off)?;
    Ok(Destination {
        stream_arn: stream_arn.to_string(),
        status: DestinationStatus::Disabling,
        precision,
    })
}

/// Changes the precision of the table's destination `stream_arn`. Publishing goes on from
/// where it was: the changes already published keep the precision they were written with.
///
/// # Errors
/// ResourceNotFound; Validation when `stream_arn` is not the table's active destination;
/// storage failures.
pub fn update(
    store: &Store,
    table_name: &str,
    stream_arn: &str,
    precision: Precision,
) -> Result<Destination> {
    let current = active_as(store, table_name, stream_arn)?
        .ok_or_else(|| Error::Validation(NOT_ACTIVE_TO_UPDATE.into()))?;
    let mut publishing = current.settings;
    publishing.format = precision.format().name().to_string();
    settings::set_publishing(store, table_name, Some((publishing, PublishFrom::Now)))?;
    Ok(Destination {
        stream_arn: stream_arn.to_string(),
        status: DestinationStatus::Updating,
        precision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_core::Engine;
    use tidemark_core::StoreConfig;
    use tidemark_core::ops::CreateTableRequest;

    const ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders-changes";
    const SHAPE: TopicSettings = TopicSettings {
        partitions: 1,
        replication_factor: 1,
    };

    #[test]
    fn a_stream_arn_names_its_topic() {
        assert_eq!(topic_of(ARN).unwrap(), "orders-changes");
        assert_eq!(
            topic_of("arn:aws-cn:kinesis:cn-north-1:1:stream/a.b_c").unwrap(),
            "a.b_c"
        );
        for bad in [
            "orders",
            "arn:aws:sqs:us-east-1:1:stream/x",
            "arn:aws:kinesis:us-east-1:1:table/x",
            "arn:aws:kinesis:us-east-1:1:stream/",
            "arn:aws:kinesis:us-east-1:1:stream/a b",
            &format!("arn:aws:kinesis:us-east-1:1:stream/{}", "s".repeat(129)),
        ] {
            assert!(matches!(topic_of(bad), Err(Error::Validation(_))), "{bad}");
        }
    }

    #[test]
    fn a_destination_is_enabled_updated_and_disabled_as_publishing() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(StoreConfig::for_tests(dir.path())).unwrap();
        engine
            .tables
            .create_table(CreateTableRequest::on_demand("tbl", "p", "S"))
            .unwrap();
        let store = engine.store.clone();
        assert_eq!(destinations(&store, "tbl").unwrap(), vec![]);
        assert!(matches!(
            destinations(&store, "missing"),
            Err(Error::Core(tidemark_core::Error::ResourceNotFound(_)))
        ));

        let enabled = enable(&store, "tbl", ARN, Precision::Millisecond, SHAPE).unwrap();
        assert_eq!(enabled.status, DestinationStatus::Enabling);
        let published = settings::published_table(&store, "tbl").unwrap().unwrap();
        assert_eq!(published.settings.topic, "orders-changes");
        assert_eq!(published.settings.format, "kds");
        assert_eq!(published.settings.stream_arn.as_deref(), Some(ARN));
        let listed = destinations(&store, "tbl").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, DestinationStatus::Active);
        // One destination at a time, as in DynamoDB.
        let other = "arn:aws:kinesis:us-east-1:123456789012:stream/other";
        let twice = enable(&store, "tbl", other, Precision::Millisecond, SHAPE);
        assert!(matches!(twice, Err(Error::Validation(m)) if m == NOT_DISABLED));

        let start = published.settings.start_seq;
        let updated = update(&store, "tbl", ARN, Precision::Microsecond).unwrap();
        assert_eq!(updated.status, DestinationStatus::Updating);
        let published = settings::published_table(&store, "tbl").unwrap().unwrap();
        assert_eq!(published.settings.format, "kds-microsecond");
        assert_eq!(published.settings.start_seq, start, "publishing goes on");
        assert!(matches!(
            update(&store, "tbl", other, Precision::Millisecond),
            Err(Error::Validation(m)) if m == NOT_ACTIVE_TO_UPDATE
        ));
        assert!(matches!(
            disable(&store, "tbl", other),
            Err(Error::Validation(m)) if m == NOT_ACTIVE_TO_DISABLE
        ));

        let off = disable(&store, "tbl", ARN).unwrap();
        assert_eq!(
            (off.status, off.precision),
            (DestinationStatus::Disabling, Precision::Microsecond)
        );
        assert!(settings::published_table(&store, "tbl").unwrap().is_none());
        let listed = destinations(&store, "tbl").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, DestinationStatus::Disabled);
        assert!(matches!(
            disable(&store, "tbl", ARN),
            Err(Error::Validation(_))
        ));

        // Turned on again: active once, no longer listed as disabled.
        enable(&store, "tbl", ARN, Precision::Millisecond, SHAPE).unwrap();
        let listed = destinations(&store, "tbl").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, DestinationStatus::Active);
    }
}
