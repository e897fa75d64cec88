//! GetItem.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::Item;
use tidemark_core::ops::GetItemRequest;

use super::common::{
    ConsumedCapacity, ExpressionParams, ItemRequestMembers, capacity_detail, order, required,
};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetItemInput {
    table_name: Option<String>,
    key: Option<Item>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    expression_attribute_names: Option<HashMap<String, String>>,
    consistent_read: Option<bool>,
    return_consumed_capacity: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetItemOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<ConsumedCapacity>,
}

pub(crate) fn get_item(store: &Store, input: GetItemInput) -> Result<GetItemOutput, ApiError> {
    ItemRequestMembers {
        table_name: input.table_name.as_deref(),
        target: ("key", input.key.is_some()),
        return_consumed_capacity: input.return_consumed_capacity.as_deref(),
        return_values: None,
        return_item_collection_metrics: None,
        conditional_operator: None,
        order: order::GET_ITEM,
    }
    .check()?;
    let table_name = required(input.table_name, "tableName")?;
    let key = required(input.key, "key")?;
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    let expressions = ExpressionParams {
        projection_expression: input.projection_expression.as_deref(),
        names: input.expression_attribute_names.as_ref(),
        attributes_to_get: input.attributes_to_get.as_deref(),
        ..Default::default()
    }
    .parse()?;
    let outcome = store.get_item(GetItemRequest {
        table_name: table_name.clone(),
        key,
        projection: expressions.projection,
        consistent_read: input.consistent_read.unwrap_or(false),
    })?;
    Ok(GetItemOutput {
        item: outcome.item,
        consumed_capacity: capacity.report(&table_name, outcome.consumed_capacity_units, false),
    })
}
