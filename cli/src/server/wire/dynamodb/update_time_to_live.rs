//! UpdateTimeToLive, which a global table's other replicas then follow.

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use tidemark_core::Engine;
use tidemark_core::ops::UpdateTimeToLiveRequest;

use super::common::named_table;
use super::common::required;
use super::global_tables;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::wire::on_blocking_pool;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateTimeToLiveInput {
    table_name: Option<String>,
    time_to_live_specification: Option<SpecificationInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecificationInput {
    enabled: Option<bool>,
    attribute_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateTimeToLiveOutput {
    time_to_live_specification: SpecificationOutput,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SpecificationOutput {
    attribute_name: String,
    enabled: bool,
}

/// UpdateTimeToLive: the table's setting changes on the blocking pool, then a global table's
/// other replicas take it.
pub(crate) async fn update_time_to_live(
    state: &AppState,
    body: &Bytes,
) -> Result<Vec<u8>, ApiError> {
    let table = global_tables::table_name(&state.engine.store, body);
    let answer = on_blocking_pool(state, body, update_own_time_to_live).await?;
    if let Some(table) = table {
        global_tables::follow_settings(state, &table).await;
    }
    Ok(answer)
}

fn update_own_time_to_live(
    engine: &Engine,
    input: UpdateTimeToLiveInput,
) -> Result<UpdateTimeToLiveOutput, ApiError> {
    let table_name = named_table(&engine.store, input.table_name)?;
    let spec = required(input.time_to_live_specification, "timeToLiveSpecification")?;
    let attribute_name = required(spec.attribute_name, "timeToLiveSpecification.attributeName")?;
    let enabled = required(spec.enabled, "timeToLiveSpecification.enabled")?;
    engine.ttl.update_time_to_live(UpdateTimeToLiveRequest {
        table_name,
        enabled,
        attribute_name: attribute_name.clone(),
    })?;
    Ok(UpdateTimeToLiveOutput {
        time_to_live_specification: SpecificationOutput {
            attribute_name,
            enabled,
        },
    })
}
