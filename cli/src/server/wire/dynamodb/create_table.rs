//! CreateTable.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, LocalSecondaryIndex,
    ProvisionedThroughput, StreamSpecification, Tag,
};
use tidemark_core::ops::{CreateTableRequest, TableDescription};

use super::common::required;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateTableInput {
    table_name: Option<String>,
    key_schema: Option<Vec<KeySchemaElement>>,
    attribute_definitions: Option<Vec<AttributeDefinition>>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<ProvisionedThroughput>,
    global_secondary_indexes: Option<Vec<GlobalSecondaryIndex>>,
    local_secondary_indexes: Option<Vec<LocalSecondaryIndex>>,
    stream_specification: Option<StreamSpecification>,
    tags: Option<Vec<Tag>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateTableOutput {
    table_description: TableDescription,
}

pub(crate) fn create_table(
    store: &Store,
    input: CreateTableInput,
) -> Result<CreateTableOutput, ApiError> {
    let request = CreateTableRequest {
        table_name: required(input.table_name, "tableName")?,
        key_schema: required(input.key_schema, "keySchema")?,
        attribute_definitions: required(input.attribute_definitions, "attributeDefinitions")?,
        billing_mode: input.billing_mode,
        provisioned_throughput: input.provisioned_throughput,
        global_secondary_indexes: input.global_secondary_indexes.unwrap_or_default(),
        local_secondary_indexes: input.local_secondary_indexes.unwrap_or_default(),
        stream_specification: input.stream_specification,
        tags: input.tags.unwrap_or_default(),
    };
    Ok(CreateTableOutput {
        table_description: store.create_table(request)?,
    })
}
