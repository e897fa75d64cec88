//! Query.

use std::collections::HashMap;

use serde::Deserialize;
use tidemark_core::Store;
use tidemark_core::expr::LegacyCondition;
use tidemark_core::model::{AttributeValue, Item};
use tidemark_core::ops::{PageOptions, QueryRequest};

use super::common::{ExpressionParams, PageOutput, capacity_detail, check_limit, required, select};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueryInput {
    table_name: Option<String>,
    index_name: Option<String>,
    key_condition_expression: Option<String>,
    key_conditions: Option<HashMap<String, LegacyCondition>>,
    filter_expression: Option<String>,
    query_filter: Option<HashMap<String, LegacyCondition>>,
    conditional_operator: Option<String>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    expression_attribute_names: Option<HashMap<String, String>>,
    expression_attribute_values: Option<HashMap<String, AttributeValue>>,
    select: Option<String>,
    limit: Option<i64>,
    exclusive_start_key: Option<Item>,
    scan_index_forward: Option<bool>,
    consistent_read: Option<bool>,
    return_consumed_capacity: Option<String>,
}

pub(crate) fn query(store: &Store, input: QueryInput) -> Result<PageOutput, ApiError> {
    let table_name = required(input.table_name, "tableName")?;
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    check_limit(input.limit)?;
    // Query's checks word an unknown ConditionalOperator so, the enum set as AWS prints it,
    // alone and bare (AWS, 2026-10: nubo-db/dynamodb-conformance's query.test.ts).
    if input
        .conditional_operator
        .as_deref()
        .is_some_and(|op| !matches!(op, "AND" | "OR"))
    {
        return Err(ApiError::validation(
            "Failed to satisfy constraint: Member must satisfy enum value set: [ALL, OR]",
        ));
    }
    // The request's own faults come before a missing table or index (AWS, 2026-10:
    // nubo-db/dynamodb-conformance's queryKeyCondition.test.ts and query.test.ts).
    let shape = store.key_shape(&table_name, input.index_name.as_deref());
    let expressions = ExpressionParams {
        projection_expression: input.projection_expression.as_deref(),
        names: input.expression_attribute_names.as_ref(),
        values: input.expression_attribute_values.as_ref(),
        conditional_operator: input.conditional_operator.as_deref(),
        attributes_to_get: input.attributes_to_get.as_deref(),
        key_condition_expression: input.key_condition_expression.as_deref(),
        filter_expression: input.filter_expression.as_deref(),
        key_conditions: input.key_conditions.as_ref(),
        legacy_filter: input.query_filter.as_ref().map(|f| ("QueryFilter", f)),
        key_shape: shape.as_ref().ok(),
        value_expressions: &["FilterExpression", "KeyConditionExpression"],
        ..Default::default()
    }
    .parse()?;
    let select = select(
        input.select.as_deref(),
        expressions.projection.is_some(),
        input.index_name.is_some(),
    )?;
    shape?;
    let page = store.query(QueryRequest {
        table_name: table_name.clone(),
        index_name: input.index_name,
        key_condition: expressions.key_condition,
        scan_forward: input.scan_index_forward.unwrap_or(true),
        options: PageOptions {
            filter: expressions.filter,
            projection: expressions.projection,
            select,
            limit: input.limit,
            exclusive_start_key: input.exclusive_start_key,
            consistent_read: input.consistent_read.unwrap_or(false),
        },
    })?;
    Ok(PageOutput::new(page, select, &table_name, capacity))
}
