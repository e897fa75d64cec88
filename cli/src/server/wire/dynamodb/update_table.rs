//! UpdateTable: billing mode, throughput, stream and global secondary indexes of this
//! region's table, which a global table's other replicas then follow; or, with
//! `ReplicaUpdates`, the replicas themselves (`global_tables`).

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidemark_core::Engine;
use tidemark_core::model::{
    AttributeDefinition, GlobalSecondaryIndex, ProvisionedThroughput, StreamSpecification,
};
use tidemark_core::ops::{GsiUpdate, UpdateTableRequest};
use tidemark_replicator::membership::GlobalTable;

use super::common::named_table;
use super::global_tables;
use super::table_description::WireTableDescription;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::wire::on_blocking_pool;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateTableInput {
    table_name: Option<String>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<ProvisionedThroughput>,
    stream_specification: Option<StreamSpecification>,
    attribute_definitions: Option<Vec<AttributeDefinition>>,
    global_secondary_index_updates: Option<Vec<WireGsiUpdate>>,
    deletion_protection_enabled: Option<bool>,
    table_class: Option<String>,
}

/// One element of `GlobalSecondaryIndexUpdates`: exactly one member is set.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireGsiUpdate {
    create: Option<GlobalSecondaryIndex>,
    update: Option<WireGsiThroughput>,
    delete: Option<WireGsiName>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireGsiThroughput {
    index_name: String,
    provisioned_throughput: ProvisionedThroughput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireGsiName {
    index_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateTableOutput {
    table_description: WireTableDescription,
}

fn convert(update: WireGsiUpdate) -> Result<GsiUpdate, ApiError> {
    match (update.create, update.update, update.delete) {
        (Some(create), None, None) => Ok(GsiUpdate::Create(create)),
        (None, Some(u), None) => Ok(GsiUpdate::Update {
            index_name: u.index_name,
            provisioned_throughput: u.provisioned_throughput,
        }),
        (None, None, Some(d)) => Ok(GsiUpdate::Delete(d.index_name)),
        (None, None, None) => Err(ApiError::validation(
            "One or more parameter values were invalid: One of GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Update or GlobalSecondaryIndexUpdate.Delete must be specified",
        )),
        _ => Err(ApiError::validation(
            "One or more parameter values were invalid: Only one of Create, Update or Delete may be specified in one GlobalSecondaryIndexUpdate",
        )),
    }
}

/// UpdateTable: `ReplicaUpdates` go to the replicator; anything else is the table's own
/// change, made on the blocking pool, which the other replicas then follow when it is a
/// shared setting.
pub(crate) async fn update_table(state: &AppState, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::from_json(&e))?;
    if value.get("ReplicaUpdates").is_some() {
        return global_tables::update_replicas(state, value).await;
    }
    let table = global_tables::table_name(&state.engine.store, body);
    let answer = on_blocking_pool(state, body, update_own_table).await?;
    if let Some(table) = table {
        global_tables::follow_settings(state, &table).await;
    }
    Ok(answer)
}

/// The change to this region's table.
fn update_own_table(
    engine: &Engine,
    input: UpdateTableInput,
) -> Result<UpdateTableOutput, ApiError> {
    let table_name = named_table(&engine.store, input.table_name)?;
    let request = UpdateTableRequest {
        table_name: table_name.clone(),
        billing_mode: input.billing_mode,
        provisioned_throughput: input.provisioned_throughput,
        stream_specification: input.stream_specification,
        attribute_definitions: input.attribute_definitions.unwrap_or_default(),
        global_secondary_index_updates: input
            .global_secondary_index_updates
            .unwrap_or_default()
            .into_iter()
            .map(convert)
            .collect::<Result<_, _>>()?,
        deletion_protection_enabled: input.deletion_protection_enabled,
        table_class: input.table_class,
    };
    let description: WireTableDescription = engine.tables.update_table(request)?.into();
    let global = GlobalTable::of(&engine.store, &table_name);
    Ok(UpdateTableOutput {
        table_description: description
            .with_membership(global.as_ref(), &engine.store.config().region),
    })
}
