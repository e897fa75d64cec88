//! ExecuteTransaction: up to 100 PartiQL statements run as one TransactWriteItems or
//! TransactGetItems.

use serde::{Deserialize, Serialize};
use tidemark_core::Engine;
use tidemark_core::model::{AttributeValue, Item};
use tidemark_core::partiql::TransactionStatement;

use super::common::{
    CapacityDetail, ConsumedCapacity, capacity_detail, check_client_request_token, required,
    return_old_on_failure,
};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecuteTransactionInput {
    transact_statements: Option<Vec<ParameterizedStatement>>,
    client_request_token: Option<String>,
    return_consumed_capacity: Option<String>,
}

/// One statement with its parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ParameterizedStatement {
    statement: Option<String>,
    parameters: Option<Vec<AttributeValue>>,
    return_values_on_condition_check_failure: Option<String>,
}

/// One read's answer: the item, or nothing when there is none.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ItemResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<Item>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecuteTransactionOutput {
    /// One per read; an empty list for writes, as DynamoDB answers them.
    responses: Vec<ItemResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<Vec<ConsumedCapacity>>,
}

pub(crate) fn execute_transaction(
    engine: &Engine,
    input: ExecuteTransactionInput,
) -> Result<ExecuteTransactionOutput, ApiError> {
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    check_client_request_token(input.client_request_token.as_deref())?;
    let statements = required(input.transact_statements, "transactStatements")?
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(TransactionStatement {
                statement: required(
                    s.statement,
                    &format!("transactStatements.{}.member.statement", i + 1),
                )?,
                parameters: s.parameters.unwrap_or_default(),
                return_old_on_condition_failure: return_old_on_failure(
                    s.return_values_on_condition_check_failure.as_deref(),
                )?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let outcome = engine
        .transactions
        .execute_transaction(statements, input.client_request_token)?;
    let consumed = (capacity != CapacityDetail::None).then(|| {
        outcome
            .consumed_capacity_units
            .iter()
            .filter_map(|(table, units)| capacity.report(table, *units, outcome.write))
            .collect()
    });
    Ok(ExecuteTransactionOutput {
        responses: outcome
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| ItemResponse { item })
            .collect(),
        consumed_capacity: consumed,
    })
}
