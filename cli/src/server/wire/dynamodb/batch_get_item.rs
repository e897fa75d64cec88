//! BatchGetItem.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::Item;
use tidemark_core::ops::{BatchGetRequest, KeysAndAttributes};

use super::common::{
    CapacityDetail, ConsumedCapacity, EMPTY_REQUEST_ITEMS, ExpressionParams, Violations,
    capacity_detail, check_request_item_names, check_return_enums, required,
};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchGetItemInput {
    request_items: Option<HashMap<String, WireKeysAndAttributes>>,
    return_consumed_capacity: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireKeysAndAttributes {
    keys: Option<Vec<Item>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    projection_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expression_attribute_names: Option<HashMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes_to_get: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consistent_read: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchGetItemOutput {
    responses: HashMap<String, Vec<Item>>,
    unprocessed_keys: HashMap<String, WireKeysAndAttributes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<Vec<ConsumedCapacity>>,
}

/// Most keys one table of a batch may ask for.
const MAX_KEYS_PER_TABLE: usize = 100;

/// DynamoDB's checks of `RequestItems` before any table is looked up: not empty, and 1 to 100
/// keys for each table.
fn check_request_items(input: &BatchGetItemInput) -> Result<(), ApiError> {
    let items = required(input.request_items.as_ref(), "requestItems")?;
    if items.is_empty() {
        return Err(ApiError::validation(EMPTY_REQUEST_ITEMS));
    }
    let mut violations = Violations::default();
    // This map is quoted as the JSON sent, not as the Java model prints it.
    check_request_item_names(&mut violations, items.keys(), || {
        serde_json::to_string(items).unwrap_or_default()
    });
    check_return_enums(
        &mut violations,
        input.return_consumed_capacity.as_deref(),
        None,
    );
    violations.check()?;
    for (table, wanted) in items {
        let keys = required(
            wanted.keys.as_ref(),
            &format!("requestItems.{table}.member.keys"),
        )?;
        if keys.is_empty() {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'RequestItems.{table}.member.Keys' failed to satisfy constraint: Member must have length greater than or equal to 1"
            )));
        }
        if keys.len() > MAX_KEYS_PER_TABLE {
            // Sic: this check names the members in Pascal case and echoes no value.
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'RequestItems.{table}.member.Keys' failed to satisfy constraint: Member must have length less than or equal to {MAX_KEYS_PER_TABLE}"
            )));
        }
    }
    Ok(())
}

pub(crate) fn batch_get_item(
    store: &Store,
    input: BatchGetItemInput,
) -> Result<BatchGetItemOutput, ApiError> {
    check_request_items(&input)?;
    let request_items = required(input.request_items, "requestItems")?;
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    // The request as a whole may not mix the two ways of naming attributes, though each
    // table's block is consistent (conformance error-messages/batchGetItem.test.ts, AWS).
    let projecting = |by: fn(&WireKeysAndAttributes) -> bool| request_items.values().any(by);
    if projecting(|w| w.projection_expression.is_some())
        && projecting(|w| w.attributes_to_get.is_some())
    {
        return Err(ApiError::validation(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
        ));
    }
    let mut tables = Vec::with_capacity(request_items.len());
    let mut originals = HashMap::new();
    for (table_name, wanted) in request_items {
        let expressions = ExpressionParams {
            projection_expression: wanted.projection_expression.as_deref(),
            names: wanted.expression_attribute_names.as_ref(),
            attributes_to_get: wanted.attributes_to_get.as_deref(),
            ..Default::default()
        }
        .parse()?;
        tables.push((
            table_name.clone(),
            KeysAndAttributes {
                keys: wanted.keys.clone().unwrap_or_default(),
                projection: expressions.projection,
                consistent_read: wanted.consistent_read.unwrap_or(false),
            },
        ));
        originals.insert(table_name, wanted);
    }
    let outcome = store.batch_get_item(BatchGetRequest { tables })?;
    let unprocessed_keys = outcome
        .unprocessed
        .into_iter()
        .filter_map(|(table, left)| {
            let original = originals.remove(&table)?;
            Some((
                table,
                WireKeysAndAttributes {
                    keys: Some(left.keys),
                    ..original
                },
            ))
        })
        .collect();
    let consumed = (capacity != CapacityDetail::None).then(|| {
        outcome
            .consumed_capacity_units
            .iter()
            .filter_map(|(t, units)| capacity.report(t, *units, false))
            .collect()
    });
    Ok(BatchGetItemOutput {
        responses: outcome.responses.into_iter().collect(),
        unprocessed_keys,
        consumed_capacity: consumed,
    })
}
