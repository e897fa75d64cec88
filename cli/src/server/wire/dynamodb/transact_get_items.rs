//! TransactGetItems.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::Item;
use tidemark_core::ops::TransactGetItem;

use super::common::{
    CapacityDetail, ConsumedCapacity, ExpressionParams, capacity_detail, required, table_reference,
};
use super::echo::{Echo, check_transact_items, object};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TransactGetItemsInput {
    transact_items: Option<Vec<WireTransactGetItem>>,
    return_consumed_capacity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTransactGetItem {
    get: Option<WireGet>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireGet {
    table_name: Option<String>,
    key: Option<Item>,
    projection_expression: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
}

impl Echo for WireTransactGetItem {
    fn echo(&self, out: &mut String) {
        object(out, "TransactGetItem", &[("get", &self.get)]);
    }
}

impl Echo for WireGet {
    fn echo(&self, out: &mut String) {
        object(
            out,
            "Get",
            &[
                ("key", &self.key),
                ("tableName", &self.table_name),
                ("projectionExpression", &self.projection_expression),
                ("expressionAttributeNames", &self.expression_attribute_names),
            ],
        );
    }
}

/// One response slot: the item, or nothing when there is none.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ItemResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<Item>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TransactGetItemsOutput {
    responses: Vec<ItemResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<Vec<ConsumedCapacity>>,
}

pub(crate) fn transact_get_items(
    store: &Store,
    input: TransactGetItemsInput,
) -> Result<TransactGetItemsOutput, ApiError> {
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    let transact_items = required(input.transact_items, "transactItems")?;
    check_transact_items(&transact_items)?;
    let mut gets = Vec::new();
    for (i, item) in transact_items.into_iter().enumerate() {
        let at = |member: &str| format!("transactItems.{}.member.get.{member}", i + 1);
        let get = required(item.get, &format!("transactItems.{}.member.get", i + 1))?;
        let expressions = ExpressionParams {
            projection_expression: get.projection_expression.as_deref(),
            names: get.expression_attribute_names.as_ref(),
            ..Default::default()
        }
        .parse()?;
        gets.push(TransactGetItem {
            table_name: table_reference(get.table_name, &at("tableName"))?,
            key: required(get.key, &at("key"))?,
            projection: expressions.projection,
        });
    }
    let outcome = store.transact_get_items(gets)?;
    let consumed = (capacity != CapacityDetail::None).then(|| {
        outcome
            .consumed_capacity_units
            .iter()
            .filter_map(|(table, units)| capacity.report(table, *units, false))
            .collect()
    });
    Ok(TransactGetItemsOutput {
        responses: outcome
            .items
            .into_iter()
            .map(|item| ItemResponse { item })
            .collect(),
        consumed_capacity: consumed,
    })
}
