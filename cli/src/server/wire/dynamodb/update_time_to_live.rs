//! UpdateTimeToLive.

use serde::{Deserialize, Serialize};
use tidemark_core::Engine;
use tidemark_core::ops::UpdateTimeToLiveRequest;

use super::common::required;
use crate::server::error::ApiError;

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

pub(crate) fn update_time_to_live(
    store: &Engine,
    input: UpdateTimeToLiveInput,
) -> Result<UpdateTimeToLiveOutput, ApiError> {
    let table_name = required(input.table_name, "tableName")?;
    let spec = required(input.time_to_live_specification, "timeToLiveSpecification")?;
    let attribute_name = required(spec.attribute_name, "timeToLiveSpecification.attributeName")?;
    let enabled = required(spec.enabled, "timeToLiveSpecification.enabled")?;
    store.ttl.update_time_to_live(UpdateTimeToLiveRequest {
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
