//! Helpers shared by the end-to-end tests.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};

/// Creates an on-demand table with a string partition key `p` and, optionally, a number sort
/// key `c`.
pub(crate) async fn create_table(client: &Client, name: &str, with_sort_key: bool) {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("p")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("p")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        );
    if with_sort_key {
        request = request
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("c")
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("c")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            );
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
