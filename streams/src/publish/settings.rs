//! Which tables are published to Kafka, from where, and how far publishing got.
//!
//! A table's settings are a core table extension (`Publish`), so they persist and go with the
//! table; its publisher's progress is a core retention hold (`publish/<table id>`) at the first
//! change not yet confirmed in the topic, so the history window never trims what Kafka has not
//! taken, whatever its age.

use serde::{Deserialize, Serialize};
use tidemark_core::ops::TableExtension;
use tidemark_core::retention::HoldName;
use tidemark_core::{ChangeSeq, Store, TableId};

use crate::error::{Error, Result};

/// The table extension that holds a table's publishing settings.
pub const EXTENSION: &str = "Publish";

/// How one table is published (persisted with the table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishSettings {
    /// Kafka topic.
    pub topic: String,
    /// Value format name (`dynamodb`, `kds`, `kds-microsecond`, `debezium`,
    /// `debezium-tombstones`).
    pub format: String,
    /// First change sequence to publish.
    pub start_seq: ChangeSeq,
    /// Partitions of the topic when the node creates it.
    pub partitions: i32,
    /// Replication factor of the topic when the node creates it.
    pub replication_factor: i16,
    /// Whether the table held no item just before `start_seq`, so the topic's changes rebuild
    /// it exactly (set when publishing is turned on; `None` in settings saved before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_empty: Option<bool>,
    /// The Kinesis stream ARN when publishing was turned on as a Kinesis streaming destination
    /// (EnableKinesisStreamingDestination); `None` when it was turned on by an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// Where publishing starts when it is turned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishFrom {
    /// With the next change.
    #[default]
    Now,
    /// With the oldest change still in the log (the table's retained history).
    RetainedHistory,
}

/// A published table, as the publishers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTable {
    /// Internal table id.
    pub table_id: TableId,
    /// Table name.
    pub table_name: String,
    /// Its settings.
    pub settings: PublishSettings,
    /// The last sequence confirmed in the topic, if any.
    pub confirmed: Option<ChangeSeq>,
}

/// Longest Kafka topic name.
const MAX_TOPIC_CHARS: usize = 249;

/// Checks a topic name as Kafka does: 1 to 249 of `[a-zA-Z0-9._-]`.
fn check_topic(topic: &str) -> Result<()> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic.is_empty() || topic.len() > MAX_TOPIC_CHARS || !topic.chars().all(legal) {
        return Err(Error::Validation(format!(
            "{topic:?} is not a Kafka topic name: 1 to {MAX_TOPIC_CHARS} characters of letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Turns publishing of a table on (`Some`) or off (`None`). Turning it on again replaces the
/// settings; the start is then kept unless `from` is given anew.
///
/// # Errors
/// ResourceNotFound; Validation for a bad topic or partition settings; storage failures.
pub fn set_publishing(
    store: &Store,
    table_name: &str,
    settings: Option<(PublishSettings, PublishFrom)>,
) -> Result<Option<PublishSettings>> {
    let table_id = store.table_id(table_name)?;
    let Some((mut settings, from)) = settings else {
        store.set_table_extension(table_name, EXTENSION, None)?;
        store.release_hold(&HoldName::Publish { table_id })?;
        return Ok(None);
    };
    check_topic(&settings.topic)?;
    if settings.partitions < 1 || settings.replication_factor < 1 {
        return Err(Error::Validation(
            "partitions and replication factor must be at least 1".into(),
        ));
    }
    let current = published_table(store, table_name)?;
    let kept = match (&current, from) {
        (Some(current), PublishFrom::Now) => Some(current.settings.clone()),
        _ => None,
    };
    settings.start_seq = match (kept.as_ref(), from) {
        (_, PublishFrom::RetainedHistory) => store.oldest_retained_seq(),
        (Some(kept), PublishFrom::Now) => kept.start_seq,
        (None, PublishFrom::Now) => store.next_seq(),
    };
    // IMPORTANT: the hold is in place before the settings, so no record the publisher will
    // need can be trimmed in between; a hold left by a crash in between is released by
    // `ensure_holds`.
    let hold = HoldName::Publish { table_id };
    let held_from = store.hold(&hold).map(|h| h.from);
    if held_from.is_none_or(|from| from > settings.start_seq) {
        // A start from history moves an existing hold back to it.
        store.set_hold(&hold, Some(table_id), settings.start_seq)?;
    }
    // A topic rebuilds the table (`tidemark restore --from-kafka`) only from a start where
    // the table was empty; a kept start keeps what was found when it was chosen.
    settings.starts_empty = match kept {
        Some(kept) => kept.starts_empty,
        None => Some(store.table_empty_before(table_name, settings.start_seq)?),
    };
    let value = serde_json::to_value(&settings)
        .map_err(|e| Error::Core(tidemark_core::Error::Internal(e.to_string())))?;
    store.set_table_extension(table_name, EXTENSION, Some(value))?;
    Ok(Some(settings))
}

/// The publishing of one table, if it is published.
///
/// # Errors
/// Corrupt settings.
pub fn published_table(store: &Store, table_name: &str) -> Result<Option<PublishedTable>> {
    Ok(published_tables(store)?
        .into_iter()
        .find(|t| t.table_name == table_name))
}

fn decode(store: &Store, extension: TableExtension) -> Result<PublishedTable> {
    let settings: PublishSettings = serde_json::from_value(extension.value).map_err(|e| {
        Error::Core(tidemark_core::Error::Corrupt(format!(
            "the publishing settings of {}: {e}",
            extension.table_name
        )))
    })?;
    let confirmed = store
        .hold(&HoldName::Publish {
            table_id: extension.table_id,
        })
        .and_then(|h| h.from.checked_prev())
        .filter(|c| *c >= settings.start_seq);
    Ok(PublishedTable {
        table_id: extension.table_id,
        table_name: extension.table_name,
        settings,
        confirmed,
    })
}

/// Every published table with its settings and checkpoint, by name.
///
/// # Errors
/// Corrupt settings.
pub fn published_tables(store: &Store) -> Result<Vec<PublishedTable>> {
    store
        .tables_with_extension(EXTENSION)
        .into_iter()
        .map(|extension| decode(store, extension))
        .collect()
}

/// Records that every change of the table up to `seq` is in its topic: moves its hold past
/// it, so the history window may trim up to there.
///
/// # Errors
/// Storage failures.
pub fn confirm_published(store: &Store, table_id: TableId, seq: ChangeSeq) -> Result<()> {
    store.advance_hold(&HoldName::Publish { table_id }, seq.next())?;
    Ok(())
}

/// Puts a hold in place for every published table that has none (tables published before
/// holds were named, or a crash between the hold and the settings: a hold at the table's start
/// only keeps more history than needed), and releases publishing holds whose table is no
/// longer published. Run at start, before anything trims.
///
/// # Errors
/// Corrupt settings; storage failures.
pub fn ensure_holds(store: &Store) -> Result<()> {
    let published = published_tables(store)?;
    for table in &published {
        let hold = HoldName::Publish {
            table_id: table.table_id,
        };
        if store.hold(&hold).is_none() {
            let from = table.settings.start_seq.max(store.oldest_retained_seq());
            store.set_hold(&hold, Some(table.table_id), from)?;
        }
    }
    for hold in store.holds() {
        let HoldName::Publish { table_id } = hold.name else {
            continue;
        };
        if !published.iter().any(|t| t.table_id == table_id) {
            store.release_hold(&hold.name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_core::Engine;
    use tidemark_core::StoreConfig;
    use tidemark_core::model::AttributeValue;
    use tidemark_core::ops::{CreateTableRequest, PutItemRequest};

    fn open(dir: &std::path::Path) -> Engine {
        Engine::open(StoreConfig::for_tests(dir)).unwrap()
    }

    fn put(store: &Store, k: &str) -> ChangeSeq {
        let item = [("p".to_string(), AttributeValue::S(k.into()))].into();
        let outcome = store.put_item(PutItemRequest {
            table_name: "tbl".into(),
            item,
            ..Default::default()
        });
        outcome.unwrap().change_seq.unwrap()
    }

    fn settings(topic: &str) -> PublishSettings {
        PublishSettings {
            topic: topic.into(),
            format: "dynamodb".into(),
            start_seq: ChangeSeq::ZERO,
            partitions: 3,
            replication_factor: 1,
            starts_empty: None,
            stream_arn: None,
        }
    }

    #[test]
    fn publishing_holds_the_log_from_its_start_until_confirmed_and_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        engine
            .tables
            .create_table(CreateTableRequest::on_demand("tbl", "p", "S"))
            .unwrap();
        let store = engine.store.clone();
        let before = put(&store, "a");
        for bad in ["", "a topic", &"t".repeat(250)] {
            let refused = set_publishing(&store, "tbl", Some((settings(bad), PublishFrom::Now)));
            assert!(matches!(refused, Err(Error::Validation(_))), "{bad:?}");
        }
        let enabled = set_publishing(&store, "tbl", Some((settings("t"), PublishFrom::Now)))
            .unwrap()
            .unwrap();
        assert_eq!(
            enabled.start_seq,
            before.next(),
            "from now: the next change"
        );
        let table_id = store.table_id("tbl").unwrap();
        let hold = HoldName::Publish { table_id };
        assert_eq!(store.hold(&hold).unwrap().from, before.next());
        let first = put(&store, "b");
        confirm_published(&store, table_id, first).unwrap();
        drop((store, engine));

        let store = open(dir.path()).store;
        let published = published_tables(&store).unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(
            published[0].confirmed,
            Some(first),
            "the checkpoint survives"
        );
        assert_eq!(published[0].settings.topic, "t");

        // A hold lost (or never made, before holds were named) comes back at the start.
        store.release_hold(&hold).unwrap();
        let orphan_table = TableId::new(999);
        let orphan = HoldName::Publish {
            table_id: orphan_table,
        };
        store
            .set_hold(&orphan, Some(orphan_table), ChangeSeq::FIRST)
            .unwrap();
        ensure_holds(&store).unwrap();
        assert_eq!(store.hold(&hold).unwrap().from, before.next());
        assert!(store.hold(&orphan).is_none(), "an orphan hold is released");

        let from_history = set_publishing(
            &store,
            "tbl",
            Some((settings("t2"), PublishFrom::RetainedHistory)),
        )
        .unwrap()
        .unwrap();
        assert_eq!(from_history.start_seq, store.oldest_retained_seq());
        assert_eq!(
            store.hold(&hold).unwrap().from,
            from_history.start_seq,
            "republishing the history holds it again"
        );

        set_publishing(&store, "tbl", None).unwrap();
        assert!(published_tables(&store).unwrap().is_empty());
        assert!(store.holds().is_empty(), "no hold once publishing is off");
    }
}
