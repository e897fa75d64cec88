//! BatchWriteItem.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::Item;
use tidemark_core::ops::{BatchWriteRequest, WriteRequest};

use super::common::{
    ConsumedCapacity, EMPTY_REQUEST_ITEMS, Violations, WireItemCollectionMetrics, capacity_detail,
    check_request_item_names, collection_metrics_by_table, item_collection_metrics_wanted,
    required, return_enums,
};
use super::echo::{Echo, echo, object};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchWriteItemInput {
    request_items: Option<HashMap<String, Vec<WireWriteRequest>>>,
    return_consumed_capacity: Option<String>,
    return_item_collection_metrics: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireWriteRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    put_request: Option<PutRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delete_request: Option<DeleteRequest>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRequest {
    item: Item,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    key: Item,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchWriteItemOutput {
    unprocessed_items: HashMap<String, Vec<WireWriteRequest>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<Vec<ConsumedCapacity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_collection_metrics: Option<BTreeMap<String, Vec<WireItemCollectionMetrics>>>,
}

impl Echo for WireWriteRequest {
    fn echo(&self, out: &mut String) {
        object(
            out,
            "WriteRequest",
            &[
                ("putRequest", &self.put_request),
                ("deleteRequest", &self.delete_request),
            ],
        );
    }
}

impl Echo for PutRequest {
    fn echo(&self, out: &mut String) {
        let none: Option<String> = None;
        object(
            out,
            "PutRequest",
            &[("item", &self.item), ("workloadProfileName", &none)],
        );
    }
}

impl Echo for DeleteRequest {
    fn echo(&self, out: &mut String) {
        let none: Option<String> = None;
        object(
            out,
            "DeleteRequest",
            &[("key", &self.key), ("workloadProfileName", &none)],
        );
    }
}

/// Most writes one table of a batch may carry.
const MAX_WRITES_PER_TABLE: usize = 25;

/// DynamoDB's checks of `RequestItems` before any table is looked up: not empty, and 1 to 25
/// writes for each table (the whole map echoed back when one breaks that).
fn check_request_items(input: &BatchWriteItemInput) -> Result<(), ApiError> {
    let items = required(input.request_items.as_ref(), "requestItems")?;
    if items.is_empty() {
        return Err(ApiError::validation(EMPTY_REQUEST_ITEMS));
    }
    // The enums first, and alone, then the names (where BatchGetItem reports both together).
    return_enums(
        input.return_consumed_capacity.as_deref(),
        input.return_item_collection_metrics.as_deref(),
    )?;
    let mut violations = Violations::default();
    check_request_item_names(&mut violations, items.keys(), || echo(items));
    violations.check()?;
    if items
        .values()
        .any(|writes| writes.is_empty() || writes.len() > MAX_WRITES_PER_TABLE)
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {MAX_WRITES_PER_TABLE}, Member must have length greater than or equal to 1]",
            echo(items)
        )));
    }
    Ok(())
}

impl From<WriteRequest> for WireWriteRequest {
    fn from(w: WriteRequest) -> Self {
        match w {
            WriteRequest::Put(item) => WireWriteRequest {
                put_request: Some(PutRequest { item }),
                delete_request: None,
            },
            WriteRequest::Delete(key) => WireWriteRequest {
                put_request: None,
                delete_request: Some(DeleteRequest { key }),
            },
        }
    }
}

pub(crate) fn batch_write_item(
    store: &Store,
    input: BatchWriteItemInput,
) -> Result<BatchWriteItemOutput, ApiError> {
    check_request_items(&input)?;
    let request_items = required(input.request_items, "requestItems")?;
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    let metrics = item_collection_metrics_wanted(input.return_item_collection_metrics.as_deref())?;
    let mut tables = Vec::with_capacity(request_items.len());
    for (table_name, writes) in request_items {
        let mut converted = Vec::with_capacity(writes.len());
        for write in writes {
            converted.push(match (write.put_request, write.delete_request) {
                (Some(put), None) => WriteRequest::Put(put.item),
                (None, Some(delete)) => WriteRequest::Delete(delete.key),
                _ => {
                    return Err(ApiError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                    ));
                }
            });
        }
        tables.push((table_name, converted));
    }
    // The collections are read after the write, from each item's partition key.
    let collections_of: Vec<(String, Item)> = match metrics {
        true => tables
            .iter()
            .flat_map(|(table, writes)| {
                writes.iter().map(|w| match w {
                    WriteRequest::Put(item) => (table.clone(), item.clone()),
                    WriteRequest::Delete(key) => (table.clone(), key.clone()),
                })
            })
            .collect(),
        false => Vec::new(),
    };
    let outcome = store.batch_write_item(BatchWriteRequest { tables })?;
    let consumed = (capacity != super::common::CapacityDetail::None).then(|| {
        outcome
            .consumed_capacity_units
            .iter()
            .filter_map(|(t, units)| {
                let indexes = outcome
                    .index_units
                    .iter()
                    .find(|(name, _)| name == t)
                    .map_or(&[][..], |(_, units)| units.as_slice());
                capacity.report_with_indexes(t, *units, indexes, true)
            })
            .collect()
    });
    Ok(BatchWriteItemOutput {
        unprocessed_items: outcome
            .unprocessed
            .into_iter()
            .map(|(t, w)| (t, w.into_iter().map(WireWriteRequest::from).collect()))
            .collect(),
        consumed_capacity: consumed,
        item_collection_metrics: collection_metrics_by_table(
            store,
            metrics,
            collections_of.iter().map(|(t, k)| (t.as_str(), k)),
        )?,
    })
}
