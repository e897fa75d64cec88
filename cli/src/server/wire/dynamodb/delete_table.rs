//! DeleteTable.

use serde::{Deserialize, Serialize};
use tidemark_core::Engine;

use super::common::required;
use super::table_description::WireTableDescription;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeleteTableInput {
    table_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeleteTableOutput {
    table_description: WireTableDescription,
}

pub(crate) fn delete_table(
    store: &Engine,
    input: DeleteTableInput,
) -> Result<DeleteTableOutput, ApiError> {
    let name = required(input.table_name, "tableName")?;
    Ok(DeleteTableOutput {
        table_description: store.tables.delete_table(&name)?.into(),
    })
}
