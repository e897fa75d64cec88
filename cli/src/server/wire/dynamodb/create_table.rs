//! CreateTable.

use serde::{Deserialize, Serialize};
use tidemark_core::Engine;
use tidemark_core::model::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, LocalSecondaryIndex,
    ProvisionedThroughput, StreamSpecification, Tag,
};
use tidemark_core::ops::CreateTableRequest;

use super::common::Violations;
use super::echo::{Echo, echo, object};
use super::table_description::WireTableDescription;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateTableInput {
    table_name: Option<String>,
    key_schema: Option<Vec<WireKeySchemaElement>>,
    attribute_definitions: Option<Vec<WireAttributeDefinition>>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<WireProvisionedThroughput>,
    global_secondary_indexes: Option<Vec<GlobalSecondaryIndex>>,
    local_secondary_indexes: Option<Vec<LocalSecondaryIndex>>,
    stream_specification: Option<StreamSpecification>,
    tags: Option<Vec<Tag>>,
    deletion_protection_enabled: Option<bool>,
    table_class: Option<String>,
}

/// A key schema element as sent: members may be missing, which is a validation error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireKeySchemaElement {
    attribute_name: Option<String>,
    key_type: Option<String>,
}

impl Echo for WireKeySchemaElement {
    fn echo(&self, out: &mut String) {
        object(
            out,
            "KeySchemaElement",
            &[
                ("attributeName", &self.attribute_name),
                ("keyType", &self.key_type),
            ],
        );
    }
}

/// Provisioned throughput as sent: members may be missing, which is a validation error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireProvisionedThroughput {
    read_capacity_units: Option<i64>,
    write_capacity_units: Option<i64>,
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
    engine: &Engine,
    input: CreateTableInput,
) -> Result<CreateTableOutput, ApiError> {
    Ok(CreateTableOutput {
        table_description: engine.tables.create_table(input.into_request()?)?.into(),
    })
}

impl CreateTableInput {
    /// The core request, once every required member is there (ImportTable's
    /// `TableCreationParameters` take the same shape). Every missing member is reported in
    /// one error; within an entry in the order DynamoDB reports them (a key schema element's
    /// name before its type, an attribute definition's type before its name, write capacity
    /// before read capacity).
    pub(crate) fn into_request(self) -> Result<CreateTableRequest, ApiError> {
        // The name is checked before any other member: missing, in words of its own.
        let Some(name) = &self.table_name else {
            return Err(ApiError::validation(
                "The parameter 'TableName' is required but was not present in the request",
            ));
        };
        let mut violations = Violations::default();
        violations.name(name, "tableName");
        violations.check()?;
        let mut violations = Violations::default();
        match &self.key_schema {
            None => violations.null("keySchema"),
            Some(elements) => {
                match elements.len() {
                    0 => violations.breaks(
                        "[]",
                        "keySchema",
                        "Member must have length greater than or equal to 1",
                    ),
                    1 | 2 => {}
                    _ => violations.breaks(
                        &echo(elements),
                        "keySchema",
                        "Member must have length less than or equal to 2",
                    ),
                }
                for (i, k) in elements.iter().enumerate() {
                    let at = |member: &str| format!("keySchema.{}.member.{member}", i + 1);
                    if k.attribute_name.is_none() {
                        violations.null(&at("attributeName"));
                    }
                    if k.key_type.is_none() {
                        violations.null(&at("keyType"));
                    }
                }
            }
        }
        match &self.attribute_definitions {
            None => violations.null("attributeDefinitions"),
            Some(definitions) => {
                for (i, d) in definitions.iter().enumerate() {
                    let at =
                        |member: &str| format!("attributeDefinitions.{}.member.{member}", i + 1);
                    if d.attribute_type.is_none() {
                        violations.null(&at("attributeType"));
                    }
                    if d.attribute_name.is_none() {
                        violations.null(&at("attributeName"));
                    }
                }
            }
        }
        if let Some(throughput) = &self.provisioned_throughput {
            if throughput.write_capacity_units.is_none() {
                violations.null("provisionedThroughput.writeCapacityUnits");
            }
            if throughput.read_capacity_units.is_none() {
                violations.null("provisionedThroughput.readCapacityUnits");
            }
        }
        violations.check()?;
        let lost = || ApiError::internal("a checked request lost a member");
        let key_schema = self.key_schema.ok_or_else(lost)?;
        let definitions = self.attribute_definitions.ok_or_else(lost)?;
        Ok(CreateTableRequest {
            table_name: self.table_name.ok_or_else(lost)?,
            key_schema: key_schema
                .into_iter()
                .map(|k| {
                    Ok(KeySchemaElement {
                        attribute_name: k.attribute_name.ok_or_else(lost)?,
                        key_type: k.key_type.ok_or_else(lost)?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            attribute_definitions: definitions
                .into_iter()
                .map(|d| {
                    Ok(AttributeDefinition {
                        attribute_name: d.attribute_name.ok_or_else(lost)?,
                        attribute_type: d.attribute_type.ok_or_else(lost)?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            billing_mode: self.billing_mode,
            provisioned_throughput: self
                .provisioned_throughput
                .map(|t| {
                    Ok::<_, ApiError>(ProvisionedThroughput {
                        read_capacity_units: t.read_capacity_units.ok_or_else(lost)?,
                        write_capacity_units: t.write_capacity_units.ok_or_else(lost)?,
                    })
                })
                .transpose()?,
            global_secondary_indexes: self.global_secondary_indexes.unwrap_or_default(),
            local_secondary_indexes: self.local_secondary_indexes.unwrap_or_default(),
            stream_specification: self.stream_specification,
            deletion_protection_enabled: self.deletion_protection_enabled.unwrap_or(false),
            table_class: self.table_class,
            tags: self.tags.unwrap_or_default(),
        })
    }
}
