//! Where a request goes on a cluster region: reads run here; a write is checked here and
//! appended to its item's partition of its table's log; a table definition change goes to the
//! tables log; what a cluster region does not support yet is refused in words that say so.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tidemark_core::model::Item;
use tidemark_core::write::CheckedWrite;

use super::{Cluster, Outcome};
use crate::server::dispatch;
use crate::server::error::ApiError;
use crate::server::wire::{Call, Execution, Operation};

/// What a cluster region does with an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Runs on the node that took it (reads, descriptions, lists).
    Local,
    /// Writes items: checked here, then appended to the item's partition of its table's log.
    Items,
    /// Changes a table's definition: appended to the tables log.
    Tables,
    /// Not supported on a cluster region yet.
    Refused,
}

/// The route of operation `name`.
pub(crate) fn route(name: &str) -> Route {
    match name {
        "PutItem"
        | "UpdateItem"
        | "DeleteItem"
        | "BatchWriteItem"
        | "TransactWriteItems"
        | "ExecuteStatement"
        | "ExecuteTransaction"
        | "BatchExecuteStatement" => Route::Items,
        "CreateTable" | "UpdateTable" | "DeleteTable" | "UpdateTimeToLive" | "TagResource"
        | "UntagResource" => Route::Tables,
        "UpdateContributorInsights"
        | "UpdateContinuousBackups"
        | "RestoreTableToPointInTime"
        | "RestoreTableFromBackup"
        | "CreateBackup"
        | "DeleteBackup"
        | "CreateGlobalTable"
        | "UpdateGlobalTable"
        | "ExportTableToPointInTime"
        | "ImportTable"
        | "EnableKinesisStreamingDestination"
        | "DisableKinesisStreamingDestination"
        | "UpdateKinesisStreamingDestination" => Route::Refused,
        _ => Route::Local,
    }
}

/// Runs `operation` on a cluster region's node. A table this node does not know yet may have
/// been created through another node: before it says a table does not exist, it applies every
/// table definition change the region made before the request, and runs the request again.
pub(crate) async fn execute(
    cluster: &Arc<Cluster>,
    operation: &'static Operation,
    call: Call<'_>,
) -> Outcome {
    let answer = execute_once(cluster, operation, call).await;
    match &answer {
        Err(e) if e.type_name.ends_with("#ResourceNotFoundException") => {
            cluster.tables_applied_to_end().await?;
            execute_once(cluster, operation, call).await
        }
        _ => answer,
    }
}

async fn execute_once(
    cluster: &Arc<Cluster>,
    operation: &'static Operation,
    call: Call<'_>,
) -> Outcome {
    let store = &call.node.engine.store;
    match route(operation.name) {
        Route::Local => {
            let tables = strongly_read_tables(operation.name, call.body);
            if !tables.is_empty() {
                cluster.applied_to_end(store, &tables).await?;
            }
            dispatch::execute(operation, call).await
        }
        Route::Refused => Err(ApiError::validation(format!(
            "{} is not supported on a cluster region yet",
            operation.name
        ))),
        Route::Tables => {
            let log = cluster.config.tables_log();
            let partitions = Some(cluster.config.partitions);
            (cluster.append(store, (&log, 0), operation.name, call.body, partitions)).await
        }
        Route::Items => {
            let checked = match operation.execution {
                // A statement that reads past the budget writes nothing: it runs as a read.
                Execution::Statement => store
                    .within_read_budget(dispatch::INLINE_READ_BYTES, || {
                        store.checking_writes(|| (operation.handler)(call).at_once())
                    }),
                _ => Some(store.checking_writes(|| (operation.handler)(call).at_once())),
            };
            let Some((answer, writes)) = checked else {
                return dispatch::execute(operation, call).await;
            };
            if writes.is_empty() {
                // Refused (before its writes, or at them: an index key of the wrong type), or
                // a statement that only reads.
                return answer;
            }
            let mut places = Vec::with_capacity(writes.len());
            for write in &writes {
                places.push(place(cluster, write).await?);
            }
            places.sort();
            places.dedup();
            match places.as_slice() {
                [(log, partition)] => {
                    let to = (log.as_str(), *partition);
                    cluster
                        .append(store, to, operation.name, call.body, None)
                        .await
                }
                _ if operation.name == "BatchWriteItem" => split_batch(cluster, call).await,
                _ => Err(ApiError::validation(format!(
                    "{} of items in more than one partition is not supported on a cluster \
                     region yet",
                    operation.name
                ))),
            }
        }
    }
}

/// The tables a read reads strongly consistently (after every write acknowledged before it):
/// a `ConsistentRead` GetItem, Query, Scan or BatchGetItem table, and every table of a
/// TransactGetItems.
fn strongly_read_tables(operation: &str, body: &[u8]) -> Vec<String> {
    let consistent = |value: &Value| value.get("ConsistentRead") == Some(&Value::Bool(true));
    let name = |value: &Value| value.get("TableName")?.as_str().map(str::to_string);
    if !matches!(
        operation,
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
    ) {
        return Vec::new();
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    match operation {
        "BatchGetItem" => (request.get("RequestItems").and_then(Value::as_object))
            .map(|tables| {
                (tables.iter())
                    .filter(|(_, keys)| consistent(keys))
                    .map(|(table, _)| table.clone())
                    .collect()
            })
            .unwrap_or_default(),
        "TransactGetItems" => (request.get("TransactItems").and_then(Value::as_array))
            .map(|items| {
                (items.iter())
                    .filter_map(|item| name(item.get("Get")?))
                    .collect()
            })
            .unwrap_or_default(),
        _ if consistent(&request) => name(&request).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The log and partition that order `write`.
async fn place(cluster: &Cluster, write: &CheckedWrite) -> Result<(String, u32), ApiError> {
    let (Some(log), Some(key)) = (&write.write_log, &write.partition_key) else {
        return Err(ApiError::internal(format!(
            "table {} has no log on this cluster region",
            write.table
        )));
    };
    let partitions = cluster.partitions_of(log).await?;
    Ok((log.clone(), tidemark_core::log_partition(key, partitions)))
}

/// A BatchWriteItem (already checked whole) whose items lie in several partitions: one
/// BatchWriteItem per partition, appended together; their answers merged into one. DynamoDB
/// applies a batch's writes one by one, not atomically, so neither does this.
async fn split_batch(cluster: &Cluster, call: Call<'_>) -> Outcome {
    let store = &call.node.engine.store;
    let mut request: Map<String, Value> =
        serde_json::from_slice(call.body).map_err(|e| ApiError::from_json(&e))?;
    let Some(Value::Object(tables)) = request.remove("RequestItems") else {
        return Err(ApiError::internal("a checked batch has no RequestItems"));
    };
    let mut parts: BTreeMap<(String, u32), Map<String, Value>> = BTreeMap::new();
    for (table, writes) in tables {
        let name = store.table_name_of(&table).map_err(ApiError::from)?;
        let log = (store
            .table_definition(name)
            .map_err(ApiError::from)?
            .write_log)
            .ok_or_else(|| ApiError::internal(format!("table {name} has no log")))?;
        let partitions = cluster.partitions_of(&log).await?;
        for write in writes.as_array().into_iter().flatten() {
            let key = ["PutRequest", "DeleteRequest"].iter().find_map(|kind| {
                let member = if *kind == "PutRequest" { "Item" } else { "Key" };
                write.get(kind)?.get(member).cloned()
            });
            let key: Item = key
                .and_then(|key| serde_json::from_value(key).ok())
                .ok_or_else(|| ApiError::internal("a checked batch write has no key"))?;
            let partition = store.log_partition(name, &key, partitions)?;
            let part = parts.entry((log.clone(), partition)).or_default();
            if let Value::Array(list) = part.entry(table.clone()).or_insert(Value::Array(vec![])) {
                list.push(write.clone());
            }
        }
    }
    let appends = parts.into_iter().map(|((log, partition), tables)| {
        let mut part = request.clone();
        part.insert("RequestItems".into(), Value::Object(tables));
        async move {
            let body = serde_json::to_vec(&part).map_err(|e| ApiError::internal(e.to_string()))?;
            cluster
                .append(store, (&log, partition), "BatchWriteItem", &body, None)
                .await
        }
    });
    let mut merged = Map::new();
    for answer in futures_util::future::join_all(appends).await {
        let answer: Map<String, Value> =
            serde_json::from_slice(&answer?).map_err(|e| ApiError::internal(e.to_string()))?;
        merge_batch_answer(&mut merged, answer);
    }
    serde_json::to_vec(&merged).map_err(|e| ApiError::internal(e.to_string()))
}

/// Adds one part's BatchWriteItem answer to `merged`: unprocessed items and item collection
/// metrics gathered by table, consumed capacity summed by table.
fn merge_batch_answer(merged: &mut Map<String, Value>, answer: Map<String, Value>) {
    for (member, value) in answer {
        match (member.as_str(), value) {
            ("ConsumedCapacity", Value::Array(entries)) => {
                let Value::Array(all) = merged.entry(member).or_insert(Value::Array(vec![])) else {
                    continue;
                };
                for entry in entries {
                    let table = entry.get("TableName").cloned();
                    match all
                        .iter_mut()
                        .find(|e| e.get("TableName") == table.as_ref())
                    {
                        Some(existing) => add_numbers(existing, &entry),
                        None => all.push(entry),
                    }
                }
            }
            (_, Value::Object(by_table)) => {
                let Value::Object(all) = merged.entry(member).or_insert(Value::Object(Map::new()))
                else {
                    continue;
                };
                for (table, list) in by_table {
                    match (all.get_mut(&table), list) {
                        (Some(Value::Array(existing)), Value::Array(more)) => existing.extend(more),
                        (_, list) => {
                            all.insert(table, list);
                        }
                    }
                }
            }
            (_, value) => {
                merged.insert(member, value);
            }
        }
    }
}

/// Adds every number of `more` to the same member of `into`, member by member.
fn add_numbers(into: &mut Value, more: &Value) {
    match (into, more) {
        (Value::Number(a), Value::Number(b)) => {
            let sum = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
            if let Some(sum) = serde_json::Number::from_f64(sum) {
                *a = sum;
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                match a.get_mut(key) {
                    Some(existing) => add_numbers(existing, value),
                    None => {
                        a.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::OPERATIONS;

    #[test]
    fn every_operation_that_writes_has_a_route_that_is_not_local() {
        for operation in OPERATIONS {
            let writes = matches!(
                operation.execution,
                Execution::Write | Execution::Statement | Execution::Admin
            );
            let reads_only = operation.name.starts_with("Describe")
                || operation.name.starts_with("List")
                || operation.name.starts_with("Get");
            if writes || (operation.execution == Execution::Async && !reads_only) {
                assert_ne!(route(operation.name), Route::Local, "{}", operation.name);
            }
        }
        assert_eq!(route("GetItem"), Route::Local);
        assert_eq!(route("PutItem"), Route::Items);
        assert_eq!(route("CreateTable"), Route::Tables);
    }

    #[test]
    fn the_parts_of_a_split_batch_answer_as_one() {
        let mut merged = Map::new();
        let part = |units: f64, table: &str| {
            serde_json::json!({
                "UnprocessedItems": {},
                "ConsumedCapacity": [{"TableName": table, "CapacityUnits": units, "Table": {"CapacityUnits": units}}],
                "ItemCollectionMetrics": {table: [{"SizeEstimateRangeGB": [0.0, 1.0]}]},
            })
        };
        for (units, table) in [(1.0, "a"), (2.0, "a"), (1.0, "b")] {
            let Value::Object(answer) = part(units, table) else {
                unreachable!()
            };
            merge_batch_answer(&mut merged, answer);
        }
        assert_eq!(
            Value::Object(merged),
            serde_json::json!({
                "UnprocessedItems": {},
                "ConsumedCapacity": [
                    {"TableName": "a", "CapacityUnits": 3.0, "Table": {"CapacityUnits": 3.0}},
                    {"TableName": "b", "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}},
                ],
                "ItemCollectionMetrics": {
                    "a": [{"SizeEstimateRangeGB": [0.0, 1.0]}, {"SizeEstimateRangeGB": [0.0, 1.0]}],
                    "b": [{"SizeEstimateRangeGB": [0.0, 1.0]}],
                },
            })
        );
    }
}
