//! Scan.

use std::collections::HashMap;

use serde::Deserialize;
use tidemark_core::Store;
use tidemark_core::expr::LegacyCondition;
use tidemark_core::model::{AttributeValue, Item};
use tidemark_core::ops::{PageOptions, ScanRequest};

use super::common::{ExpressionParams, PageOutput, capacity_detail, check_limit, required, select};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ScanInput {
    table_name: Option<String>,
    index_name: Option<String>,
    filter_expression: Option<String>,
    scan_filter: Option<HashMap<String, LegacyCondition>>,
    conditional_operator: Option<String>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    expression_attribute_names: Option<HashMap<String, String>>,
    expression_attribute_values: Option<HashMap<String, AttributeValue>>,
    select: Option<String>,
    limit: Option<i64>,
    exclusive_start_key: Option<Item>,
    segment: Option<i64>,
    total_segments: Option<i64>,
    consistent_read: Option<bool>,
    return_consumed_capacity: Option<String>,
}

pub(crate) fn scan(store: &Store, input: ScanInput) -> Result<PageOutput, ApiError> {
    let table_name = required(input.table_name, "tableName")?;
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    check_limit(input.limit)?;
    let expressions = ExpressionParams {
        projection_expression: input.projection_expression.as_deref(),
        names: input.expression_attribute_names.as_ref(),
        values: input.expression_attribute_values.as_ref(),
        conditional_operator: input.conditional_operator.as_deref(),
        attributes_to_get: input.attributes_to_get.as_deref(),
        filter_expression: input.filter_expression.as_deref(),
        legacy_filter: input.scan_filter.as_ref().map(|f| ("ScanFilter", f)),
        value_expressions: &["FilterExpression"],
        ..Default::default()
    }
    .parse()?;
    let select = select(
        input.select.as_deref(),
        expressions.projection.is_some(),
        input.index_name.is_some(),
    )?;
    let page = store.scan(ScanRequest {
        table_name: table_name.clone(),
        index_name: input.index_name,
        segment: input.segment,
        total_segments: input.total_segments,
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
