//! ListTables.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;

use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTablesInput {
    exclusive_start_table_name: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTablesOutput {
    table_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evaluated_table_name: Option<String>,
}

pub(crate) fn list_tables(
    store: &Store,
    input: ListTablesInput,
) -> Result<ListTablesOutput, ApiError> {
    let outcome = store.list_tables(input.exclusive_start_table_name.as_deref(), input.limit)?;
    Ok(ListTablesOutput {
        table_names: outcome.table_names,
        last_evaluated_table_name: outcome.last_evaluated_table_name,
    })
}
