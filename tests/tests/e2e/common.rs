//! Helpers shared by the end-to-end tests.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};

/// A key schema element.
pub(crate) fn key_element(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// An attribute definition.
pub(crate) fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .unwrap()
}

/// Creates an on-demand table with a string partition key `p` and, optionally, a number sort
/// key `c`.
pub(crate) async fn create_table(client: &Client, name: &str, with_sort_key: bool) {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S));
    if with_sort_key {
        request = request
            .key_schema(key_element("c", KeyType::Range))
            .attribute_definitions(attribute("c", ScalarAttributeType::N));
    }
    request.send().await.expect("create table");
}

pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub(crate) fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The exception name of an SDK error (e.g. `ConditionalCheckFailedException`).
pub(crate) fn error_code<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(e) => e.code().unwrap_or("").to_string(),
        None => format!("not a service error: {error:?}"),
    }
}
