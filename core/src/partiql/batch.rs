//! BatchExecuteStatement: up to 25 statements, all key reads or all writes, each run on its
//! own and reporting its own error.

use super::bind::{columns, parse_with, row};
use super::parser::{Select, Statement};
use super::transaction::key_read;
use super::writes::{refuse_index, run_write};
use super::{BatchStatement, BatchStatementError, BatchStatementResult, INCOMPLETE_KEY};
use crate::model::AttributeValue;
use crate::ops::GetItemRequest;
use crate::{Error, Result, Store};

/// Most statements of one batch.
const MAX_BATCH_STATEMENTS: usize = 25;

/// The code a failed batch statement reports, or `None` when the whole request must fail.
fn batch_error(error: Error) -> std::result::Result<BatchStatementError, Error> {
    let (code, item) = match &error {
        Error::Validation(_) => ("ValidationError", None),
        Error::ConditionalCheckFailed { item } => {
            ("ConditionalCheckFailed", item.as_deref().cloned())
        }
        Error::DuplicateItem(_) => ("DuplicateItem", None),
        Error::ResourceNotFound(_) => ("ResourceNotFound", None),
        _ => return Err(error),
    };
    Ok(BatchStatementError {
        code: code.into(),
        message: error.to_string(),
        item,
    })
}

/// A key read of a batch, as a GetItem.
fn batch_read(
    store: &Store,
    select: &Select,
    parameters: &[AttributeValue],
    statement: &BatchStatement,
) -> Result<BatchStatementResult> {
    refuse_index(select, "This operation is not supported on an index")?;
    // A key read and nothing else, as in a transaction (conformance partiqlFunctions.test.ts).
    let message = "Select statements within BatchExecuteStatement must specify the primary key in the where clause.";
    let (key, rest) = key_read(store, select, parameters, INCOMPLETE_KEY)?;
    if !rest.is_empty() {
        return Err(Error::validation(message));
    }
    let got = store.get_item(GetItemRequest {
        table_name: select.table.clone(),
        key,
        projection: None,
        consistent_read: statement.consistent_read,
    })?;
    Ok(BatchStatementResult {
        table_name: Some(select.table.clone()),
        item: match (got.item, columns(&select.projection)) {
            (Some(item), Some(columns)) => Some(row(&columns, &item)),
            (item, _) => item,
        },
        error: None,
        consumed_capacity_units: got.consumed_capacity_units,
        write: false,
    })
}

/// The table a statement names.
fn table_of(statement: &Statement) -> &str {
    match statement {
        Statement::Select(s) | Statement::Exists(s) => &s.table,
        Statement::Insert { table, .. }
        | Statement::Update { table, .. }
        | Statement::Delete { table, .. } => table,
    }
}

/// BatchExecuteStatement: each statement run on its own.
pub(super) fn batch_execute_statement(
    store: &Store,
    statements: Vec<BatchStatement>,
) -> Result<Vec<BatchStatementResult>> {
    if statements.is_empty() || statements.len() > MAX_BATCH_STATEMENTS {
        return Err(Error::validation(format!(
            "1 validation error detected: Value at 'statements' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_STATEMENTS} and greater than or equal to 1"
        )));
    }
    // Each statement with its parameters, or its fault in either.
    let parsed: Vec<Result<(Statement, &[AttributeValue])>> = statements
        .iter()
        .map(|s| {
            let parameters = s.parameters.as_deref().map_err(Error::validation)?;
            Ok((parse_with(&s.statement, parameters)?, parameters))
        })
        .collect();
    let reads = parsed
        .iter()
        .filter(|p| matches!(p, Ok((s, _)) if s.is_read()))
        .count();
    let writes = parsed
        .iter()
        .filter(|p| matches!(p, Ok((s, _)) if !s.is_read()))
        .count();
    if reads > 0 && writes > 0 {
        return Err(Error::validation(
            "Batch execute statement does not support both read and write operations in the same request.",
        ));
    }
    let mut results = Vec::with_capacity(statements.len());
    for (parsed, statement) in parsed.into_iter().zip(&statements) {
        let table_name = parsed.as_ref().ok().map(|(s, _)| table_of(s).to_string());
        let ran = parsed.and_then(|(parsed, parameters)| match &parsed {
            Statement::Select(select) => batch_read(store, select, parameters, statement),
            Statement::Exists(_) => Err(Error::validation(
                "EXISTS can only be used in ExecuteTransaction write requests.",
            )),
            write => run_write(
                store,
                write,
                parameters,
                statement.return_old_on_condition_failure,
            )
            .map(|outcome| BatchStatementResult {
                table_name: Some(outcome.table_name),
                item: None,
                error: None,
                consumed_capacity_units: outcome.consumed_capacity_units,
                write: true,
            }),
        });
        results.push(match ran {
            Ok(result) => result,
            // A failed statement still belongs to a read or a write batch: its table's
            // capacity is reported as the batch's kind.
            Err(error) => BatchStatementResult {
                table_name,
                error: Some(batch_error(error)?),
                write: writes > 0,
                ..Default::default()
            },
        });
    }
    Ok(results)
}
