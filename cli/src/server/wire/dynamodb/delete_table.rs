//! DeleteTable: deleting a global table's replica in this region takes this region out of
//! the group; the others keep theirs.

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use tidemark_core::Engine;
use tidemark_replicator::membership::GlobalTable;

use super::common::named_table;
use super::global_tables;
use super::table_description::WireTableDescription;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::wire::on_blocking_pool;

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

/// DeleteTable: the table goes on the blocking pool (every item is removed); when it was a
/// global table's replica, the replicator tells the others this region left.
pub(crate) async fn delete_table(state: &AppState, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    let table = global_tables::table_name(&state.engine.store, body);
    let global = table
        .as_deref()
        .and_then(|t| GlobalTable::of(&state.engine.store, t));
    let answer = on_blocking_pool(state, body, delete_own_table).await?;
    if let (Some(table), Some(global)) = (table, global) {
        state.replicator.table_deleted(&table, global);
    }
    Ok(answer)
}

fn delete_own_table(
    engine: &Engine,
    input: DeleteTableInput,
) -> Result<DeleteTableOutput, ApiError> {
    let name = named_table(&engine.store, input.table_name)?;
    Ok(DeleteTableOutput {
        table_description: engine.tables.delete_table(&name)?.into(),
    })
}
