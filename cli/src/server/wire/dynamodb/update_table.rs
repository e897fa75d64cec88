//! UpdateTable (billing mode, throughput, stream).

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::{ProvisionedThroughput, StreamSpecification};
use tidemark_core::ops::{TableDescription, UpdateTableRequest};

use super::common::required;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateTableInput {
    table_name: Option<String>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<ProvisionedThroughput>,
    stream_specification: Option<StreamSpecification>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateTableOutput {
    table_description: TableDescription,
}

pub(crate) fn update_table(
    store: &Store,
    input: UpdateTableInput,
) -> Result<UpdateTableOutput, ApiError> {
    let request = UpdateTableRequest {
        table_name: required(input.table_name, "tableName")?,
        billing_mode: input.billing_mode,
        provisioned_throughput: input.provisioned_throughput,
        stream_specification: input.stream_specification,
    };
    Ok(UpdateTableOutput {
        table_description: store.update_table(request)?,
    })
}
