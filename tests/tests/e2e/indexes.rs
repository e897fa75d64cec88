//! Secondary indexes through the AWS SDK: entries follow every write in the same commit.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use tidemark_tests::TestNode;

use crate::common::{error_code, n, s};

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

fn attr(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .unwrap()
}

async fn by_owner(client: &aws_sdk_dynamodb::Client, owner: &str) -> Vec<(String, String)> {
    let page = client
        .query()
        .table_name("docs")
        .index_name("by_owner")
        .key_condition_expression("#o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", s(owner))
        .send()
        .await
        .unwrap();
    page.items()
        .iter()
        .map(|i| {
            (
                i["p"].as_s().unwrap().clone(),
                i["rank"].as_n().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_global_index_follows_puts_updates_and_deletes() {
    let node = TestNode::start().await;
    let client = node.client();
    client
        .create_table()
        .table_name("docs")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("p", KeyType::Hash))
        .attribute_definitions(attr("p", ScalarAttributeType::S))
        .attribute_definitions(attr("owner", ScalarAttributeType::S))
        .attribute_definitions(attr("rank", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_owner")
                .key_schema(key("owner", KeyType::Hash))
                .key_schema(key("rank", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for (p, owner, rank) in [("d1", "ann", "3"), ("d2", "ann", "1"), ("d3", "bob", "2")] {
        client
            .put_item()
            .table_name("docs")
            .item("p", s(p))
            .item("owner", s(owner))
            .item("rank", n(rank))
            .item("body", s("x"))
            .send()
            .await
            .unwrap();
    }
    // Sparse: no owner, no entry.
    client
        .put_item()
        .table_name("docs")
        .item("p", s("d4"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_owner(&client, "ann").await,
        [("d2".into(), "1".into()), ("d1".into(), "3".into())]
    );

    // Moving an item to another owner moves its entry.
    client
        .update_item()
        .table_name("docs")
        .key("p", s("d1"))
        .update_expression("SET #o = :b")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":b", s("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_owner(&client, "ann").await, [("d2".into(), "1".into())]);
    assert_eq!(
        by_owner(&client, "bob").await,
        [("d3".into(), "2".into()), ("d1".into(), "3".into())]
    );

    client
        .delete_item()
        .table_name("docs")
        .key("p", s("d3"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_owner(&client, "bob").await, [("d1".into(), "3".into())]);

    // KEYS_ONLY: the body is not in the index.
    let page = client
        .scan()
        .table_name("docs")
        .index_name("by_owner")
        .send()
        .await
        .unwrap();
    assert_eq!(page.count, 2);
    assert!(page.items().iter().all(|i| !i.contains_key("body")));

    // Index keys are type-checked on write; consistent reads of a GSI are refused.
    let wrong = client
        .put_item()
        .table_name("docs")
        .item("p", s("d5"))
        .item("rank", s("high"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&wrong), "ValidationException");
    let consistent = client
        .query()
        .table_name("docs")
        .index_name("by_owner")
        .key_condition_expression("#o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", s("bob"))
        .consistent_read(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&consistent), "ValidationException");
}
