//! ExecuteStatement: one PartiQL statement (parsed and run by `tidemark_core::partiql`).

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::{AttributeValue, Item};
use tidemark_core::partiql::StatementRequest;

use super::common::{ConsumedCapacity, capacity_detail, required, return_old_on_failure};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecuteStatementInput {
    statement: Option<String>,
    parameters: Option<Vec<AttributeValue>>,
    consistent_read: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
    return_consumed_capacity: Option<String>,
    return_values_on_condition_check_failure: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecuteStatementOutput {
    items: Vec<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evaluated_key: Option<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<ConsumedCapacity>,
}

pub(crate) fn execute_statement(
    store: &Store,
    input: ExecuteStatementInput,
) -> Result<ExecuteStatementOutput, ApiError> {
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    if let Some(limit) = input.limit
        && limit < 1
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )));
    }
    if input.parameters.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::validation(
            "1 validation error detected: Value '[]' at 'parameters' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let outcome = store.execute_statement(StatementRequest {
        statement: required(input.statement, "statement")?,
        parameters: input.parameters.unwrap_or_default(),
        consistent_read: input.consistent_read.unwrap_or(false),
        limit: input.limit,
        next_token: input.next_token,
        return_old_on_condition_failure: return_old_on_failure(
            input.return_values_on_condition_check_failure.as_deref(),
        )?,
    })?;
    Ok(ExecuteStatementOutput {
        consumed_capacity: capacity.report_with_indexes(
            &outcome.table_name,
            outcome.consumed_capacity_units,
            &outcome.index_units,
            outcome.write,
        ),
        items: outcome.items,
        next_token: outcome.next_token,
        last_evaluated_key: outcome.last_evaluated_key,
    })
}
