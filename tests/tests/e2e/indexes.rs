//! Secondary indexes through the AWS SDK: entries follow every write in the same commit.

use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use tidemark_tests::TestNode;

use crate::common::{attribute, error_code, gsi_create, key_element, n, s};

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
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .attribute_definitions(attribute("owner", ScalarAttributeType::S))
        .attribute_definitions(attribute("rank", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_owner")
                .key_schema(key_element("owner", KeyType::Hash))
                .key_schema(key_element("rank", KeyType::Range))
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

#[tokio::test]
async fn a_global_index_created_later_is_backfilled_and_survives_a_restart() {
    let mut node = TestNode::start().await;
    let client = node.client();
    crate::common::create_table(&client, "late", false).await;
    for i in 0..250 {
        let mut put = client
            .put_item()
            .table_name("late")
            .item("p", s(&format!("k{i}")));
        if i % 2 == 0 {
            put = put.item("color", s(if i % 4 == 0 { "red" } else { "blue" }));
        }
        put.send().await.unwrap();
    }
    let described = client
        .update_table()
        .table_name("late")
        .attribute_definitions(attribute("color", ScalarAttributeType::S))
        .global_secondary_index_updates(gsi_create("by_color", "color"))
        .send()
        .await
        .unwrap();
    let gsis = described
        .table_description
        .unwrap()
        .global_secondary_indexes
        .unwrap();
    assert_eq!(gsis[0].index_status.as_ref().unwrap().as_str(), "CREATING");
    assert_eq!(gsis[0].backfilling, Some(true));
    let active = tidemark_tests::wait_until(std::time::Duration::from_secs(30), async || {
        let table = node
            .client()
            .describe_table()
            .table_name("late")
            .send()
            .await
            .unwrap();
        let gsi = &table.table.unwrap().global_secondary_indexes.unwrap()[0];
        gsi.index_status.as_ref().map(|s| s.as_str()) == Some("ACTIVE") && gsi.backfilling.is_none()
    })
    .await;
    assert!(active, "the backfill finishes and the index becomes ACTIVE");
    let count = |color: &'static str| {
        let client = node.client();
        async move {
            client
                .query()
                .table_name("late")
                .index_name("by_color")
                .key_condition_expression("color = :c")
                .expression_attribute_values(":c", s(color))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .send()
                .await
                .unwrap()
                .count
        }
    };
    assert_eq!((count("red").await, count("blue").await), (63, 62));
    node.restart().await;
    let client = node.client();
    client
        .put_item()
        .table_name("late")
        .item("p", s("new"))
        .item("color", s("red"))
        .send()
        .await
        .unwrap();
    let red = client
        .query()
        .table_name("late")
        .index_name("by_color")
        .key_condition_expression("color = :c")
        .expression_attribute_values(":c", s("red"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        red.count, 64,
        "backfilled entries survive the restart and new writes join them"
    );
    let table = client
        .describe_table()
        .table_name("late")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let gsi = &table.global_secondary_indexes.unwrap()[0];
    assert_eq!(
        gsi.item_count,
        Some(126),
        "backfilled and written entries are counted exactly"
    );
    assert!(gsi.index_size_bytes.unwrap() > 0);
}
