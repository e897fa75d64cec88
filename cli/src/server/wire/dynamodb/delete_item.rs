//! DeleteItem.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::expr::ExpectedAttributeValue;
use tidemark_core::model::{AttributeValue, Item};
use tidemark_core::ops::DeleteItemRequest;

use super::common::{
    ConsumedCapacity, ExpressionParams, ItemRequestMembers, WireItemCollectionMetrics,
    capacity_detail, collection_metrics, item_collection_metrics_wanted, order, required,
    return_old_on_failure, return_values,
};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeleteItemInput {
    table_name: Option<String>,
    key: Option<Item>,
    condition_expression: Option<String>,
    expected: Option<HashMap<String, ExpectedAttributeValue>>,
    conditional_operator: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
    expression_attribute_values: Option<HashMap<String, AttributeValue>>,
    return_values: Option<String>,
    return_consumed_capacity: Option<String>,
    return_item_collection_metrics: Option<String>,
    return_values_on_condition_check_failure: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeleteItemOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<ConsumedCapacity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_collection_metrics: Option<WireItemCollectionMetrics>,
}

pub(crate) fn delete_item(
    store: &Store,
    input: DeleteItemInput,
) -> Result<DeleteItemOutput, ApiError> {
    ItemRequestMembers {
        table_name: input.table_name.as_deref(),
        target: ("key", input.key.is_some()),
        return_consumed_capacity: input.return_consumed_capacity.as_deref(),
        return_values: input.return_values.as_deref(),
        return_item_collection_metrics: input.return_item_collection_metrics.as_deref(),
        conditional_operator: None,
        order: order::DELETE_ITEM,
    }
    .check()?;
    let table_name = required(input.table_name, "tableName")?;
    let key = required(input.key, "key")?;
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    let metrics = item_collection_metrics_wanted(input.return_item_collection_metrics.as_deref())?;
    // The collection is read after the write, from the partition key alone.
    let collection_of = metrics.then(|| key.clone());
    let expressions = ExpressionParams {
        condition_expression: input.condition_expression.as_deref(),
        names: input.expression_attribute_names.as_ref(),
        values: input.expression_attribute_values.as_ref(),
        expected: input.expected.as_ref(),
        conditional_operator: input.conditional_operator.as_deref(),
        // The message names no expression here (AWS, 2026-10).
        value_expressions: &[],
        ..Default::default()
    }
    .parse()
    .map_err(ApiError::enveloped)?;
    let outcome = store.delete_item(DeleteItemRequest {
        table_name: table_name.clone(),
        key,
        condition: expressions.condition,
        return_values: return_values(input.return_values.as_deref(), &["NONE", "ALL_OLD"])?,
        return_old_on_condition_failure: return_old_on_failure(
            input.return_values_on_condition_check_failure.as_deref(),
        )?,
    })?;
    Ok(DeleteItemOutput {
        attributes: outcome.attributes,
        consumed_capacity: capacity.report_with_indexes(
            &table_name,
            outcome.consumed_capacity_units,
            &outcome.index_units,
            true,
        ),
        item_collection_metrics: match &collection_of {
            Some(key) => collection_metrics(store, &table_name, key)?,
            None => None,
        },
    })
}
