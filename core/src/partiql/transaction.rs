//! ExecuteTransaction: up to 100 statements as one TransactWriteItems (INSERT, UPDATE,
//! DELETE, and `EXISTS(SELECT ...)` as a condition check) or one TransactGetItems (key reads).

use super::bind::{columns, key_shape, parse_with, projection, row, split_key};
use super::parser::{Returning, Select, Statement};
use super::writes::{DUPLICATE_ITEM, WriteAction, refuse_index, write_action};
use super::{TransactionOutcome, TransactionStatement};
use crate::error::CancellationReason;
use crate::expr::{Cond, Condition};
use crate::model::{AttributeValue, Item};
use crate::ops::{TransactGetItem, TransactWriteItem, TransactWriteRequest};
use crate::transactions::Transactions;
use crate::{Error, Result, Store};

/// Most statements of one transaction.
const MAX_TRANSACTION_STATEMENTS: usize = 100;

/// One write statement of a transaction as a TransactWriteItems action.
fn transaction_write(
    store: &Store,
    statement: &Statement,
    params: &[AttributeValue],
    return_old: bool,
) -> Result<TransactWriteItem> {
    if let Statement::Update { returning, .. } | Statement::Delete { returning, .. } = statement {
        refuse_returning(*returning)?;
    }
    let WriteAction {
        table_name,
        action,
        condition,
    } = write_action(store, statement, params)?;
    Ok(TransactWriteItem {
        table_name,
        action,
        condition: condition.map(Condition::from_tree),
        return_old_on_condition_failure: return_old,
    })
}

/// RETURNING has no place in a transaction.
fn refuse_returning(returning: Option<Returning>) -> Result<()> {
    match returning {
        Some(_) => Err(Error::validation(
            "RETURNING clause is not supported in ExecuteTransaction.",
        )),
        None => Ok(()),
    }
}

/// A key read of a transaction or batch: the key and any further condition on the item
/// (its columns, checked here, are picked from the whole item afterwards).
pub(super) fn key_read(
    store: &Store,
    select: &Select,
    params: &[AttributeValue],
    message: &str,
) -> Result<(Item, Vec<Cond>)> {
    let shape = key_shape(store, &select.table, None)?;
    let filter = select
        .filter
        .as_ref()
        .ok_or_else(|| Error::validation(message))?;
    let (key, rest) = split_key(filter, &shape, params, message)?;
    projection(&select.projection)?;
    Ok((key, rest))
}

/// ExecuteTransaction: all statements parsed and checked, then one transaction of
/// `transactions` (reads: one TransactGetItems of `store`).
pub(crate) fn execute_transaction(
    store: &Store,
    transactions: &Transactions,
    statements: Vec<TransactionStatement>,
    client_request_token: Option<String>,
) -> Result<TransactionOutcome> {
    if statements.is_empty() || statements.len() > MAX_TRANSACTION_STATEMENTS {
        return Err(Error::validation(format!(
            "1 validation error detected: Value at 'transactStatements' failed to satisfy constraint: Member must have length less than or equal to {MAX_TRANSACTION_STATEMENTS} and greater than or equal to 1"
        )));
    }
    let in_statement = |i: usize, e: Error| match e {
        Error::Validation(m) => {
            Error::validation(format!("Validation failed in TransactStatements[{i}]: {m}"))
        }
        other => other,
    };
    let mut parsed = Vec::with_capacity(statements.len());
    for (i, s) in statements.iter().enumerate() {
        parsed.push(parse_with(&s.statement, &s.parameters).map_err(|e| in_statement(i, e))?);
    }
    let reads = parsed.iter().filter(|s| s.is_read()).count();
    if reads > 0 && reads < parsed.len() {
        return Err(Error::validation(
            "ExecuteTransaction API does not support both read and write operations in the same request.",
        ));
    }
    if reads > 0 {
        let mut gets = Vec::with_capacity(parsed.len());
        for (i, (statement, s)) in parsed.iter().zip(&statements).enumerate() {
            let Statement::Select(select) = statement else {
                return Err(Error::Internal("a write among reads".into()));
            };
            let message = "Select statements within ExecuteTransaction must specify the primary key in the where clause.";
            let get = refuse_index(
                select,
                "Reads on indices are not supported within transactions.",
            )
            .and_then(|()| key_read(store, select, &s.parameters, message))
            .and_then(|(key, rest)| match rest.is_empty() {
                true => Ok(TransactGetItem {
                    table_name: select.table.clone(),
                    key,
                    projection: None,
                }),
                false => Err(Error::validation(message)),
            })
            .map_err(|e| in_statement(i, e))?;
            gets.push(get);
        }
        let outcome = store.transact_get_items(gets)?;
        let items = outcome
            .items
            .into_iter()
            .zip(&parsed)
            .map(|(item, statement)| match (item, statement) {
                (Some(item), Statement::Select(select)) => {
                    Some(match columns(&select.projection) {
                        Some(columns) => row(&columns, &item),
                        None => item,
                    })
                }
                (item, _) => item,
            });
        return Ok(TransactionOutcome {
            items: Some(items.collect()),
            consumed_capacity_units: outcome.consumed_capacity_units,
            write: false,
        });
    }
    let mut items = Vec::with_capacity(parsed.len());
    for (i, (statement, s)) in parsed.iter().zip(&statements).enumerate() {
        items.push(
            transaction_write(
                store,
                statement,
                &s.parameters,
                s.return_old_on_condition_failure,
            )
            .map_err(|e| in_statement(i, e))?,
        );
    }
    let inserts: Vec<bool> = parsed
        .iter()
        .map(|s| matches!(s, Statement::Insert { .. }))
        .collect();
    let outcome = transactions
        .transact_write_items(TransactWriteRequest {
            items,
            client_request_token,
        })
        .map_err(|e| match e {
            // An INSERT's only condition is that its key is new.
            Error::TransactionCanceled { reasons } => Error::TransactionCanceled {
                reasons: reasons
                    .into_iter()
                    .zip(&inserts)
                    .map(|(reason, insert)| match reason.code.as_str() {
                        "ConditionalCheckFailed" if *insert => CancellationReason {
                            code: "DuplicateItem".into(),
                            message: Some(DUPLICATE_ITEM.into()),
                            item: None,
                        },
                        _ => reason,
                    })
                    .collect(),
            },
            other => other,
        })?;
    Ok(TransactionOutcome {
        items: None,
        consumed_capacity_units: outcome.consumed_capacity_units,
        write: true,
    })
}
