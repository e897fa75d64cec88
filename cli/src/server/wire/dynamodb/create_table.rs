//! CreateTable.

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, LocalSecondaryIndex,
    ProvisionedThroughput, StreamSpecification, Tag,
};
use tidemark_core::ops::CreateTableRequest;

use super::common::required;
use super::table_description::WireTableDescription;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateTableInput {
    table_name: Option<String>,
    key_schema: Option<Vec<WireKeySchemaElement>>,
    attribute_definitions: Option<Vec<WireAttributeDefinition>>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<ProvisionedThroughput>,
    global_secondary_indexes: Option<Vec<GlobalSecondaryIndex>>,
    local_secondary_indexes: Option<Vec<LocalSecondaryIndex>>,
    stream_specification: Option<StreamSpecification>,
    tags: Option<Vec<Tag>>,
}

/// A key schema element as sent: members may be missing, which is a validation error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireKeySchemaElement {
    attribute_name: Option<String>,
    key_type: Option<String>,
}

/// An attribute definition as sent: members may be missing, which is a validation error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireAttributeDefinition {
    attribute_name: Option<String>,
    attribute_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateTableOutput {
    table_description: WireTableDescription,
}

pub(crate) fn create_table(
    store: &Store,
    input: CreateTableInput,
) -> Result<CreateTableOutput, ApiError> {
    Ok(CreateTableOutput {
        table_description: store.create_table(input.into_request()?)?.into(),
    })
}

impl CreateTableInput {
    /// The core request, once every required member is there (ImportTable's
    /// `TableCreationParameters` take the same shape).
    pub(crate) fn into_request(self) -> Result<CreateTableRequest, ApiError> {
        let input = self;
        Ok(CreateTableRequest {
            table_name: required(input.table_name, "tableName")?,
            key_schema: required(input.key_schema, "keySchema")?
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    let at = |member: &str| format!("keySchema.{}.member.{member}", i + 1);
                    Ok(KeySchemaElement {
                        attribute_name: required(k.attribute_name, &at("attributeName"))?,
                        key_type: required(k.key_type, &at("keyType"))?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            attribute_definitions: required(input.attribute_definitions, "attributeDefinitions")?
                .into_iter()
                .enumerate()
                .map(|(i, d)| {
                    let at =
                        |member: &str| format!("attributeDefinitions.{}.member.{member}", i + 1);
                    Ok(AttributeDefinition {
                        attribute_name: required(d.attribute_name, &at("attributeName"))?,
                        attribute_type: required(d.attribute_type, &at("attributeType"))?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            billing_mode: input.billing_mode,
            provisioned_throughput: input.provisioned_throughput,
            global_secondary_indexes: input.global_secondary_indexes.unwrap_or_default(),
            local_secondary_indexes: input.local_secondary_indexes.unwrap_or_default(),
            stream_specification: input.stream_specification,
            tags: input.tags.unwrap_or_default(),
        })
    }
}
