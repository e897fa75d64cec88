//! BatchExecuteStatement: up to 25 PartiQL statements, all key reads or all writes, each
//! with its own result or error.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tidemark_core::Store;
use tidemark_core::model::{AttributeValue, Item, Nesting, RequestReading, ValueLayer};
use tidemark_core::partiql::BatchStatement;

use super::common::{
    CapacityDetail, ConsumedCapacity, capacity_detail, required, return_old_on_failure,
};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchExecuteStatementInput {
    statements: Option<Vec<BatchStatementRequest>>,
    return_consumed_capacity: Option<String>,
}

/// One statement of the batch.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchStatementRequest {
    statement: Option<String>,
    /// Read in the statement's turn: a fault in them is the statement's error.
    parameters: Option<Vec<Box<RawValue>>>,
    consistent_read: Option<bool>,
    return_values_on_condition_check_failure: Option<String>,
}

/// Why one statement failed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchStatementError {
    code: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<Item>,
}

/// One statement's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchStatementResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    table_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<BatchStatementError>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchExecuteStatementOutput {
    responses: Vec<BatchStatementResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<Vec<ConsumedCapacity>>,
}

/// A statement's parameters, read as ExecuteStatement reads its own (the first fault in
/// document order), or why they cannot be: DynamoDB reports that as the statement's
/// ValidationError (nubo-db/dynamodb-conformance's partiqlParameterNumbers.test.ts, AWS).
fn read_parameters(raw: &[Box<RawValue>]) -> Result<Vec<AttributeValue>, String> {
    let reading = RequestReading::begin(ValueLayer::Older, Nesting::RefuseInOrder);
    raw.iter()
        .map(|p| {
            reading
                .read(p.get().as_bytes())
                .map_err(|e| ApiError::from_json(&e).message)
        })
        .collect()
}

pub(crate) fn batch_execute_statement(
    store: &Store,
    input: BatchExecuteStatementInput,
) -> Result<BatchExecuteStatementOutput, ApiError> {
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    let statements = required(input.statements, "statements")?
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(BatchStatement {
                statement: required(
                    s.statement,
                    &format!("statements.{}.member.statement", i + 1),
                )?,
                parameters: read_parameters(s.parameters.as_deref().unwrap_or_default()),
                consistent_read: s.consistent_read.unwrap_or(false),
                return_old_on_condition_failure: return_old_on_failure(
                    s.return_values_on_condition_check_failure.as_deref(),
                )?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let results = store.batch_execute_statement(statements)?;
    // Capacity per table, in the order tables first appear.
    let mut per_table: Vec<(String, f64, bool)> = Vec::new();
    for result in &results {
        let Some(table) = &result.table_name else {
            continue;
        };
        match per_table.iter_mut().find(|(name, _, _)| name == table) {
            Some((_, units, _)) => *units += result.consumed_capacity_units,
            None => per_table.push((table.clone(), result.consumed_capacity_units, result.write)),
        }
    }
    let consumed = (capacity != CapacityDetail::None).then(|| {
        per_table
            .iter()
            .filter_map(|(table, units, write)| capacity.report(table, *units, *write))
            .collect()
    });
    Ok(BatchExecuteStatementOutput {
        responses: results
            .into_iter()
            .map(|r| BatchStatementResponse {
                table_name: r.table_name,
                item: r.item,
                error: r.error.map(|e| BatchStatementError {
                    code: e.code,
                    message: e.message,
                    item: e.item,
                }),
            })
            .collect(),
        consumed_capacity: consumed,
    })
}
