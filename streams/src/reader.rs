//! The Streams API over core's change log: ListStreams, DescribeStream, GetShardIterator and
//! GetRecords, with typed requests and outcomes (the wire format lives in the cli crate).

use std::sync::Arc;

use tidemark_core::changes::{LogCursor, LogLimits};
use tidemark_core::model::KeySchemaElement;
use tidemark_core::{ChangeSeq, Store, StreamInfo};

use crate::error::{Error, Result};
use crate::iterator::{ITERATOR_LIFETIME_MILLIS, ShardIterator};
use crate::record::{StreamRecord, render};
use crate::shard::{self, ShardDescription, find_shard, parse_sequence_number, shard_at};

/// Most records one GetRecords returns.
pub const MAX_RECORDS: usize = 1000;
/// Most record bytes (as SizeBytes counts them) one GetRecords returns.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;
/// Most change-index entries one GetRecords looks at, so a read of a quiet lane next to busy
/// ones stays short; the next iterator continues after the last one looked at.
const MAX_SCANNED: usize = 20_000;

/// A stream as ListStreams names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Stream ARN.
    pub stream_arn: String,
    /// Table name.
    pub table_name: String,
    /// Stream label.
    pub stream_label: String,
}

/// One page of ListStreams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamsOutcome {
    /// The streams of the page.
    pub streams: Vec<StreamSummary>,
    /// The last ARN of the page, when more streams follow.
    pub last_evaluated_stream_arn: Option<String>,
}

/// DescribeStream's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamDescription {
    /// Stream ARN.
    pub stream_arn: String,
    /// Stream label.
    pub stream_label: String,
    /// `ENABLED` or `DISABLED`.
    pub stream_status: &'static str,
    /// The stream's view type.
    pub stream_view_type: String,
    /// When the stream was enabled, epoch seconds.
    pub creation_request_date_time: f64,
    /// Table name.
    pub table_name: String,
    /// The table's key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// The page of shards.
    pub shards: Vec<ShardDescription>,
    /// The last shard id of the page, when more shards follow.
    pub last_evaluated_shard_id: Option<String>,
}

/// Where a new iterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    /// The oldest record still kept.
    TrimHorizon,
    /// Just after the newest record.
    Latest,
    /// At this sequence number.
    AtSequenceNumber(String),
    /// Just after this sequence number.
    AfterSequenceNumber(String),
}

/// One page of GetRecords.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsPage {
    /// The records, in shard order.
    pub records: Vec<StreamRecord>,
    /// Where to read next; absent once a closed shard is read to its end.
    pub next_shard_iterator: Option<String>,
}

/// Splits a stream ARN into table name and label.
///
/// # Errors
/// Validation when the text is not a stream ARN of this node's region and account.
fn parse_stream_arn<'a>(store: &Store, arn: &'a str) -> Result<(&'a str, &'a str)> {
    let invalid = || Error::Validation(format!("Invalid StreamArn: {arn}"));
    let config = store.config();
    let prefix = format!(
        "arn:aws:dynamodb:{}:{}:table/",
        config.region, config.account_id
    );
    let rest = arn.strip_prefix(&prefix).ok_or_else(invalid)?;
    let (table, label) = rest.split_once("/stream/").ok_or_else(invalid)?;
    if table.is_empty() || label.is_empty() || table.contains('/') {
        return Err(invalid());
    }
    Ok((table, label))
}

/// The stream an ARN names.
///
/// # Errors
/// Validation for a malformed ARN, ResourceNotFound for an unknown stream.
fn stream_by_arn(store: &Store, arn: &str) -> Result<Arc<StreamInfo>> {
    let (table, label) = parse_stream_arn(store, arn)?;
    store.stream(table, label).ok_or_else(|| {
        Error::ResourceNotFound(format!(
            "Requested resource not found: Stream: {arn} not found"
        ))
    })
}

/// ListStreams: streams by ARN, optionally of one table, paged.
///
/// # Errors
/// Validation for a bad limit or start ARN.
pub fn list_streams(
    store: &Store,
    table_name: Option<&str>,
    limit: Option<i64>,
    exclusive_start_stream_arn: Option<&str>,
) -> Result<ListStreamsOutcome> {
    let limit = check_limit(limit, 100, "limit")?;
    if let Some(start) = exclusive_start_stream_arn {
        parse_stream_arn(store, start)?;
    }
    let mut matching = store
        .streams()
        .into_iter()
        .filter(|s| table_name.is_none_or(|t| s.table_name == t))
        .map(|s| (s.arn(), s))
        .filter(|(arn, _)| exclusive_start_stream_arn.is_none_or(|start| arn.as_str() > start))
        .peekable();
    let mut streams = Vec::new();
    while streams.len() < limit {
        let Some((arn, s)) = matching.next() else {
            break;
        };
        streams.push(StreamSummary {
            stream_arn: arn,
            table_name: s.table_name.clone(),
            stream_label: s.label.clone(),
        });
    }
    let last_evaluated_stream_arn = match matching.peek() {
        Some(_) => streams.last().map(|s| s.stream_arn.clone()),
        None => None,
    };
    Ok(ListStreamsOutcome {
        streams,
        last_evaluated_stream_arn,
    })
}

/// DescribeStream: the stream and a page of its shards (optionally only the children of one
/// shard).
///
/// # Errors
/// Validation for bad arguments, ResourceNotFound for an unknown stream.
pub fn describe_stream(
    store: &Store,
    stream_arn: &str,
    limit: Option<i64>,
    exclusive_start_shard_id: Option<&str>,
    children_of: Option<&str>,
) -> Result<StreamDescription> {
    let limit = check_limit(limit, 100, "limit")?;
    if let Some(id) = exclusive_start_shard_id
        && (id.is_empty() || id.len() > 65)
    {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{id}' at 'exclusiveStartShardId' failed to satisfy constraint: Member must have length between 28 and 65"
        )));
    }
    let stream = stream_by_arn(store, stream_arn)?;
    let mut all = shard::shards(&stream);
    if let Some(parent) = children_of {
        all.retain(|s| s.parent_shard_id.as_deref() == Some(parent));
    }
    let mut rest = all
        .into_iter()
        .filter(|s| exclusive_start_shard_id.is_none_or(|start| s.shard_id.as_str() > start))
        .peekable();
    let mut shards = Vec::new();
    while shards.len() < limit {
        let Some(s) = rest.next() else { break };
        shards.push(s);
    }
    let last_evaluated_shard_id = match rest.peek() {
        Some(_) => shards.last().map(|s| s.shard_id.clone()),
        None => None,
    };
    Ok(StreamDescription {
        stream_arn: stream.arn(),
        stream_label: stream.label.clone(),
        stream_status: if stream.end.is_some() {
            "DISABLED"
        } else {
            "ENABLED"
        },
        stream_view_type: stream.view_type.clone(),
        creation_request_date_time: stream.created_millis() as f64 / 1000.0,
        table_name: stream.table_name.clone(),
        key_schema: stream.key_schema.clone(),
        shards,
        last_evaluated_shard_id,
    })
}

/// GetShardIterator.
///
/// # Errors
/// Validation for bad arguments or a sequence number outside the shard; ResourceNotFound for
/// an unknown stream or shard; TrimmedDataAccess for a trimmed sequence number.
pub fn get_shard_iterator(
    store: &Store,
    stream_arn: &str,
    shard_id: &str,
    start: IteratorStart,
) -> Result<String> {
    let stream = stream_by_arn(store, stream_arn)?;
    let shard = find_shard(&stream, shard_id)?;
    let oldest = store.oldest_retained_seq_of(stream.table_id);
    let in_shard = |seq: ChangeSeq| seq >= shard.start && shard.end.is_none_or(|end| seq < end);
    let (position, from_trim_horizon) = match &start {
        IteratorStart::TrimHorizon => (shard.start, true),
        IteratorStart::Latest => {
            let next = store.durable_seq().next();
            let position = match shard.end {
                Some(end) => end,
                None => next.max(shard.start),
            };
            (position, false)
        }
        IteratorStart::AtSequenceNumber(text) | IteratorStart::AfterSequenceNumber(text) => {
            let seq = parse_sequence_number(text)?;
            if !in_shard(seq) {
                return Err(Error::Validation(format!(
                    "Invalid SequenceNumber {text} for shard {shard_id}: it is outside the shard's range"
                )));
            }
            if seq < oldest {
                return Err(Error::TrimmedDataAccess);
            }
            match start {
                IteratorStart::AtSequenceNumber(_) => (seq, false),
                _ => (seq.next(), false),
            }
        }
    };
    Ok(ShardIterator {
        stream_arn: stream.arn(),
        generation_start: shard.start,
        lane: shard.lane,
        position,
        issued_millis: store.clock().now_millis(),
        from_trim_horizon,
    }
    .encode())
}

/// GetRecords: up to `limit` records (and 1 MB) of the iterator's shard from its position.
///
/// # Errors
/// Validation for a bad iterator or limit; ExpiredIterator; TrimmedDataAccess when the
/// position was trimmed; ResourceNotFound when the stream or shard is gone.
pub fn get_records(store: &Store, iterator: &str, limit: Option<i64>) -> Result<RecordsPage> {
    let limit = check_limit(limit, MAX_RECORDS, "limit")?;
    let iterator = ShardIterator::decode(iterator)?;
    let now = store.clock().now_millis();
    if now.saturating_sub(iterator.issued_millis) > ITERATOR_LIFETIME_MILLIS {
        return Err(Error::ExpiredIterator);
    }
    // IMPORTANT: the watermark is read before the stream's descriptor. A generation boundary
    // is installed before any record at or above it commits, so every boundary below this
    // watermark is in the descriptor read next, and no record past the shard's end is served
    // as part of it (reading the descriptor first could miss a rotation that happens between
    // the two reads).
    let durable = store.durable_seq();
    let stream = stream_by_arn(store, &iterator.stream_arn)?;
    let shard = shard_at(&stream, iterator.generation_start, iterator.lane)
        .ok_or(Error::TrimmedDataAccess)?;
    let oldest = store.oldest_retained_seq_of(stream.table_id);
    let mut position = iterator.position;
    if position < oldest {
        if !iterator.from_trim_horizon {
            return Err(Error::TrimmedDataAccess);
        }
        position = oldest;
    }

    // The shard's end, and no further than the watermark read before its descriptor.
    let end = shard
        .end
        .map_or(durable.next(), |end| end.min(durable.next()));
    let mut cursor = LogCursor::table(stream.table_id, position)
        .lane(stream.shards, shard.lane)
        .until(end);
    let limits = LogLimits {
        scanned: MAX_SCANNED,
        ..LogLimits::records(limit)
    };
    let mut records = Vec::new();
    let mut bytes = 0u64;
    let mut next = position;
    for record in store.read_log(&mut cursor, limits)? {
        next = record.seq.next();
        let record = render(&stream, record, &store.config().region);
        bytes += record.dynamodb.size_bytes;
        records.push(record);
        if bytes >= MAX_RECORD_BYTES {
            break;
        }
    }
    // Past every entry the read looked at, unless the byte limit cut the page short.
    if bytes < MAX_RECORD_BYTES {
        next = cursor.next;
    }
    metrics::counter!("tidemark_stream_records_read_total", "table" => stream.table_name.clone())
        .increment(records.len() as u64);
    let finished = shard.end.is_some_and(|end| next >= end);
    let next_shard_iterator = (!finished).then(|| {
        ShardIterator {
            position: next.max(position),
            issued_millis: now,
            from_trim_horizon: false,
            ..iterator
        }
        .encode()
    });
    Ok(RecordsPage {
        records,
        next_shard_iterator,
    })
}

/// Checks an optional `Limit` against `1..=max`; absent means `max`.
fn check_limit(limit: Option<i64>, max: usize, member: &str) -> Result<usize> {
    match limit {
        None => Ok(max),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) if n < 1 => Err(Error::Validation(format!(
            "1 validation error detected: Value '{n}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(n) => Err(Error::Validation(format!(
            "1 validation error detected: Value '{n}' at '{member}' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidemark_core::clock::ManualClock;
    use tidemark_core::model::{AttributeValue, Item, StreamSpecification};
    use tidemark_core::ops::{CreateTableRequest, PutItemRequest, UpdateTableRequest};
    use tidemark_core::retention::HoldName;
    use tidemark_core::{Engine, StoreConfig};

    use super::*;

    fn put(engine: &Engine, table: &str, k: &str) {
        let item: Item = [("p".to_string(), AttributeValue::S(k.into()))].into();
        engine
            .store
            .put_item(PutItemRequest {
                table_name: table.into(),
                item,
                ..Default::default()
            })
            .unwrap();
    }

    #[test]
    fn a_stream_whose_records_were_trimmed_says_so_while_another_tables_are_held() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let engine =
            Engine::open_with_clock(StoreConfig::for_tests(dir.path()), clock.clone()).unwrap();
        for table in ["held", "streamed", "later"] {
            engine
                .tables
                .create_table(CreateTableRequest::on_demand(table, "p", "S"))
                .unwrap();
        }
        let held = engine.store.table_id("held").unwrap();
        engine
            .store
            .set_hold(
                &HoldName::Publish { table_id: held },
                Some(held),
                engine.store.next_seq(),
            )
            .unwrap();
        put(&engine, "held", "kept");
        engine
            .tables
            .update_table(UpdateTableRequest {
                table_name: "streamed".into(),
                stream_specification: Some(StreamSpecification {
                    stream_enabled: true,
                    stream_view_type: Some("NEW_IMAGE".into()),
                }),
                ..Default::default()
            })
            .unwrap();
        for k in ["a", "b", "c"] {
            put(&engine, "streamed", k);
        }
        clock.advance(25 * 3600 * 1000);
        put(&engine, "later", "newest");
        engine.trim_history().unwrap();

        let store = &engine.store;
        let arn = list_streams(store, Some("streamed"), None, None)
            .unwrap()
            .streams[0]
            .stream_arn
            .clone();
        let shards = describe_stream(store, &arn, None, None, None)
            .unwrap()
            .shards;
        assert!(!shards.is_empty());
        for shard in shards {
            let at = IteratorStart::AtSequenceNumber(shard.starting_sequence_number.clone());
            assert!(
                matches!(
                    get_shard_iterator(store, &arn, &shard.shard_id, at),
                    Err(Error::TrimmedDataAccess)
                ),
                "the stream's records before here are gone, though the held table's older \
                 ones are kept"
            );
            let horizon =
                get_shard_iterator(store, &arn, &shard.shard_id, IteratorStart::TrimHorizon)
                    .unwrap();
            assert!(
                get_records(store, &horizon, None)
                    .unwrap()
                    .records
                    .is_empty()
            );
        }
    }
}
