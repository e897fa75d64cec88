//! The operator's views of a running node through its own APIs: `tidemark tables` (ListTables
//! and DescribeTable) and `tidemark stream tail` (DescribeStream, GetShardIterator and
//! GetRecords, following each shard to its end and then its children).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::NodeError;
use crate::args::{StreamAction, StreamArgs, TablesAction, TablesArgs};
use crate::client::{call, call_streams, text};

/// How long a tail waits between reads of a shard that had nothing new.
const IDLE: Duration = Duration::from_millis(200);

/// Every table's name, a page at a time.
async fn table_names(endpoint: &str) -> Result<Vec<String>, NodeError> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = call(
            endpoint,
            "ListTables",
            json!({ "ExclusiveStartTableName": start }),
        )
        .await?;
        let listed = page.get("TableNames").and_then(Value::as_array);
        names.extend(
            listed
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
        match page.get("LastEvaluatedTableName").and_then(Value::as_str) {
            Some(last) => start = Some(last.to_string()),
            None => return Ok(names),
        }
    }
}

/// `tidemark tables`.
pub(crate) async fn tables(args: TablesArgs) -> Result<(), NodeError> {
    let endpoint = args.node.endpoint.as_str();
    if let Some(TablesAction::Describe { table }) = args.action {
        let described = call(endpoint, "DescribeTable", json!({ "TableName": table })).await?;
        crate::output::line(serde_json::to_string_pretty(&described).unwrap_or_default());
        return Ok(());
    }
    crate::output::line(format!(
        "{:<32} {:<10} {:>12} {:>14}  STREAM",
        "TABLE", "STATUS", "ITEMS", "BYTES"
    ));
    for name in table_names(endpoint).await? {
        let described = call(endpoint, "DescribeTable", json!({ "TableName": name })).await?;
        let table = described.get("Table").cloned().unwrap_or_default();
        let number = |key: &str| table.get(key).and_then(Value::as_i64).unwrap_or(0);
        let stream = match table.pointer("/StreamSpecification/StreamEnabled") {
            Some(Value::Bool(true)) => text(&table, "/StreamSpecification/StreamViewType"),
            _ => "-",
        };
        crate::output::line(format!(
            "{:<32} {:<10} {:>12} {:>14}  {stream}",
            name,
            text(&table, "/TableStatus"),
            number("ItemCount"),
            number("TableSizeBytes"),
        ));
    }
    Ok(())
}

/// Every shard of `stream_arn`: id and parent.
async fn shards(
    endpoint: &str,
    stream_arn: &str,
) -> Result<Vec<(String, Option<String>)>, NodeError> {
    let mut out = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = call_streams(
            endpoint,
            "DescribeStream",
            json!({ "StreamArn": stream_arn, "ExclusiveStartShardId": start }),
        )
        .await?;
        let listed = page
            .pointer("/StreamDescription/Shards")
            .and_then(Value::as_array);
        for shard in listed.into_iter().flatten() {
            let id = text(shard, "/ShardId").to_string();
            let parent = shard
                .get("ParentShardId")
                .and_then(Value::as_str)
                .map(str::to_string);
            out.push((id, parent));
        }
        match page
            .pointer("/StreamDescription/LastEvaluatedShardId")
            .and_then(Value::as_str)
        {
            Some(last) => start = Some(last.to_string()),
            None => return Ok(out),
        }
    }
}

/// One record as a line for people: event, keys, and the new image when there is one.
fn pretty(record: &Value) -> String {
    let event = text(record, "/eventName");
    let keys = record
        .pointer("/dynamodb/Keys")
        .cloned()
        .unwrap_or_default();
    let sequence = text(record, "/dynamodb/SequenceNumber");
    match record.pointer("/dynamodb/NewImage") {
        Some(image) => format!("{sequence} {event:<6} {keys} → {image}"),
        None => format!("{sequence} {event:<6} {keys}"),
    }
}

/// `tidemark stream`.
pub(crate) async fn stream(args: StreamArgs) -> Result<(), NodeError> {
    let endpoint = args.node.endpoint.as_str();
    let StreamAction::Tail {
        table,
        json,
        from_start,
    } = args.action;
    let described = call(endpoint, "DescribeTable", json!({ "TableName": table })).await?;
    let stream_arn = text(&described, "/Table/LatestStreamArn").to_string();
    if stream_arn.is_empty() {
        return Err(NodeError::Config(format!("table {table} has no stream")));
    }
    // Shards being read, with their iterators; shards done; shards known.
    let mut reading: BTreeMap<String, String> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut first_round = true;
    loop {
        // Open iterators on shards not yet read. At the start: the open shards from their
        // end, or with --from-start the oldest shards from their start (the ones before them
        // are trimmed); shards skipped then count as read. Later: a shard whose parent was
        // read to its end (or is gone), from its start, so no record is missed.
        let known = shards(endpoint, &stream_arn).await?;
        let known_ids: BTreeSet<&str> = known.iter().map(|(id, _)| id.as_str()).collect();
        let has_child: BTreeSet<&str> = known.iter().filter_map(|(_, p)| p.as_deref()).collect();
        for (id, parent) in &known {
            if reading.contains_key(id) || done.contains(id) {
                continue;
            }
            let parent_known = parent.as_deref().is_some_and(|p| known_ids.contains(p));
            let (ready, kind) = match (first_round, from_start) {
                (true, false) => (!has_child.contains(id.as_str()), "LATEST"),
                (true, true) => (!parent_known, "TRIM_HORIZON"),
                (false, _) => (
                    !parent_known || parent.as_deref().is_some_and(|p| done.contains(p)),
                    "TRIM_HORIZON",
                ),
            };
            if !ready {
                if first_round && !from_start {
                    done.insert(id.clone());
                }
                continue;
            }
            let iterator = call_streams(
                endpoint,
                "GetShardIterator",
                json!({ "StreamArn": stream_arn, "ShardId": id, "ShardIteratorType": kind }),
            )
            .await?;
            reading.insert(id.clone(), text(&iterator, "/ShardIterator").to_string());
        }
        if first_round {
            // On stderr, so pipes of --json output get records only.
            eprintln!("following {} open shards of {stream_arn}", reading.len());
        }
        first_round = false;
        let mut any = false;
        for (id, iterator) in reading.clone() {
            let page =
                call_streams(endpoint, "GetRecords", json!({ "ShardIterator": iterator })).await?;
            for record in page
                .get("Records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                any = true;
                match json {
                    true => crate::output::line(record),
                    false => crate::output::line(pretty(record)),
                }
            }
            match page.get("NextShardIterator").and_then(Value::as_str) {
                Some(next) => {
                    reading.insert(id, next.to_string());
                }
                None => {
                    reading.remove(&id);
                    done.insert(id);
                }
            }
        }
        if !any {
            tokio::time::sleep(IDLE).await;
        }
    }
}
