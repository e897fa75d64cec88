//! Item collection metrics, the item collection limit and consumed capacity as DynamoDB
//! reports them, through the AWS SDK.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    BillingMode, Delete, GlobalSecondaryIndex, ItemCollectionMetrics, KeyType, LocalSecondaryIndex,
    Projection, ProjectionType, Put, PutRequest, ReturnConsumedCapacity,
    ReturnItemCollectionMetrics, ScalarAttributeType, TransactWriteItem, WriteRequest,
};
use tidemark_tests::TestNode;

use crate::common::{assert_fails_with, attribute, create_table, error_code, key_element, s};

/// Table `name` keyed by `p`/`c`, with the local index `by_x` on `x` and, when `global`, the
/// global index `by_x_global` on `x` (both projecting everything).
async fn create_indexed(client: &Client, name: &str, global: bool) {
    let all = || {
        Projection::builder()
            .projection_type(ProjectionType::All)
            .build()
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .key_schema(key_element("c", KeyType::Range))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .attribute_definitions(attribute("c", ScalarAttributeType::S))
        .attribute_definitions(attribute("x", ScalarAttributeType::S))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by_x")
                .key_schema(key_element("p", KeyType::Hash))
                .key_schema(key_element("x", KeyType::Range))
                .projection(all())
                .build()
                .unwrap(),
        );
    if global {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_x_global")
                .key_schema(key_element("x", KeyType::Hash))
                .projection(all())
                .build()
                .unwrap(),
        );
    }
    request.send().await.unwrap();
}

fn assert_collection(metrics: Option<&ItemCollectionMetrics>, p: &str) {
    let metrics = metrics.expect("ItemCollectionMetrics");
    let key = metrics.item_collection_key().unwrap();
    assert_eq!(key.len(), 1, "only the partition key: {key:?}");
    assert_eq!(key["p"], s(p));
    assert_eq!(metrics.size_estimate_range_gb(), [0.0, 1.0]);
}

#[tokio::test]
async fn every_write_reports_its_item_collection_on_a_table_with_a_local_index() {
    let node = TestNode::start().await;
    let client = node.client();
    create_indexed(&client, "events", false).await;
    create_table(&client, "plain", false).await;
    let size = ReturnItemCollectionMetrics::Size;

    let put = client
        .put_item()
        .table_name("events")
        .item("p", s("a"))
        .item("c", s("1"))
        .item("x", s("v"))
        .return_item_collection_metrics(size.clone())
        .send()
        .await
        .unwrap();
    assert_collection(put.item_collection_metrics(), "a");
    let update = client
        .update_item()
        .table_name("events")
        .key("p", s("a"))
        .key("c", s("1"))
        .update_expression("SET y = :y")
        .expression_attribute_values(":y", s("w"))
        .return_item_collection_metrics(size.clone())
        .send()
        .await
        .unwrap();
    assert_collection(update.item_collection_metrics(), "a");
    let batch = client
        .batch_write_item()
        .request_items(
            "events",
            ["b", "b", "c"]
                .iter()
                .zip(["1", "2", "1"])
                .map(|(p, c)| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .item("p", s(p))
                                .item("c", s(c))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect(),
        )
        .return_item_collection_metrics(size.clone())
        .send()
        .await
        .unwrap();
    let by_table = batch.item_collection_metrics().unwrap();
    let events = &by_table["events"];
    assert_eq!(events.len(), 2, "one per collection: {events:?}");
    assert_collection(events.first(), "b");
    assert_collection(events.get(1), "c");
    let transaction = client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name("events")
                        .key("p", s("b"))
                        .key("c", s("1"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .return_item_collection_metrics(size.clone())
        .send()
        .await
        .unwrap();
    let by_table = transaction.item_collection_metrics().unwrap();
    assert_collection(by_table["events"].first(), "b");
    let delete = client
        .delete_item()
        .table_name("events")
        .key("p", s("a"))
        .key("c", s("1"))
        .return_item_collection_metrics(size.clone())
        .send()
        .await
        .unwrap();
    assert_collection(delete.item_collection_metrics(), "a");

    // Nothing without a local index, nothing when not asked for.
    let plain = client
        .put_item()
        .table_name("plain")
        .item("p", s("a"))
        .return_item_collection_metrics(size.clone())
        .send()
        .await
        .unwrap();
    assert!(plain.item_collection_metrics().is_none());
    let not_asked = client
        .put_item()
        .table_name("events")
        .item("p", s("a"))
        .item("c", s("2"))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::None)
        .send()
        .await
        .unwrap();
    assert!(not_asked.item_collection_metrics().is_none());
    let bad = client
        .put_item()
        .table_name("events")
        .item("p", s("a"))
        .item("c", s("3"))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::from("ALL"))
        .send()
        .await;
    let error = bad.unwrap_err();
    assert_eq!(error_code(&error), "ValidationException");
    assert!(
        format!("{error:?}").contains("Member must satisfy enum value set: [SIZE, NONE]"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_write_past_the_item_collection_limit_is_refused_and_changes_nothing() {
    let node = TestNode::start_with(|config| config.item_collection_limit_bytes = 3000).await;
    let client = node.client();
    create_indexed(&client, "events", false).await;
    let put = |c: &str, pad: usize| {
        client
            .put_item()
            .table_name("events")
            .item("p", s("a"))
            .item("c", s(c))
            .item("x", s(c))
            .item("pad", s(&"z".repeat(pad)))
    };
    // Each item is counted twice: itself and its entry in the local index (ALL projected).
    put("1", 1000).send().await.unwrap();
    assert_fails_with(
        put("2", 1000).send().await,
        "ItemCollectionSizeLimitExceededException",
    );
    let missing = client
        .get_item()
        .table_name("events")
        .key("p", s("a"))
        .key("c", s("2"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(missing.item().is_none(), "the refused write left nothing");
    // The same write through a transaction names the action that went past the limit.
    let cancelled = client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("events")
                        .item("p", s("other"))
                        .item("c", s("1"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("events")
                        .item("p", s("a"))
                        .item("c", s("2"))
                        .item("pad", s(&"z".repeat(2000)))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let reasons: Vec<String> = match cancelled.into_service_error() {
        TransactWriteItemsError::TransactionCanceledException(e) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("").to_string())
            .collect(),
        other => panic!("expected TransactionCanceledException, got {other:?}"),
    };
    assert_eq!(reasons, ["None", "ItemCollectionSizeLimitExceeded"]);
    let other = client
        .get_item()
        .table_name("events")
        .key("p", s("other"))
        .key("c", s("1"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(
        other.item().is_none(),
        "a cancelled transaction writes nothing"
    );
    // A write that shrinks this collection goes on, and then one that grows it within the
    // limit; other collections have their own room.
    put("1", 100).send().await.unwrap();
    put("2", 100).send().await.unwrap();
    client
        .put_item()
        .table_name("events")
        .item("p", s("b"))
        .item("c", s("1"))
        .item("x", s("1"))
        .item("pad", s(&"z".repeat(1000)))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn scans_and_indexes_report_capacity_as_dynamodb_does() {
    let node = TestNode::start().await;
    let client = node.client();
    create_indexed(&client, "events", true).await;
    let indexes = ReturnConsumedCapacity::Indexes;

    let put = client
        .put_item()
        .table_name("events")
        .item("p", s("a"))
        .item("c", s("1"))
        .item("x", s("v"))
        .return_consumed_capacity(indexes.clone())
        .send()
        .await
        .unwrap();
    let consumed = put.consumed_capacity().unwrap();
    let table = consumed.table().unwrap().capacity_units().unwrap();
    let gsi = consumed.global_secondary_indexes().unwrap()["by_x_global"]
        .capacity_units()
        .unwrap();
    let lsi = consumed.local_secondary_indexes().unwrap()["by_x"]
        .capacity_units()
        .unwrap();
    assert_eq!((table, gsi, lsi), (1.0, 1.0, 1.0));
    assert_eq!(consumed.capacity_units(), Some(3.0));

    // The same write in a transaction costs twice as much, its index entries included.
    let transacted = client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("events")
                        .item("p", s("b"))
                        .item("c", s("1"))
                        .item("x", s("v"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(
        transacted.consumed_capacity()[0].capacity_units(),
        Some(6.0)
    );
    client
        .delete_item()
        .table_name("events")
        .key("p", s("b"))
        .key("c", s("1"))
        .send()
        .await
        .unwrap();

    // An index read is charged to the index alone.
    let query = client
        .query()
        .table_name("events")
        .index_name("by_x_global")
        .key_condition_expression("x = :x")
        .expression_attribute_values(":x", s("v"))
        .return_consumed_capacity(indexes.clone())
        .send()
        .await
        .unwrap();
    let consumed = query.consumed_capacity().unwrap();
    assert!(consumed.table().is_none());
    assert!(consumed.local_secondary_indexes().is_none());
    assert_eq!(
        consumed.global_secondary_indexes().unwrap()["by_x_global"].capacity_units(),
        consumed.capacity_units()
    );

    // Replacing the item by one without the index key removes both entries; after that, a
    // write without the key touches no index.
    for (animal, touches_indexes) in [("cat", true), ("dog", false)] {
        let put = client
            .put_item()
            .table_name("events")
            .item("p", s("a"))
            .item("c", s("1"))
            .item("animal", s(animal))
            .return_consumed_capacity(indexes.clone())
            .send()
            .await
            .unwrap();
        let consumed = put.consumed_capacity().unwrap();
        assert_eq!(
            consumed.global_secondary_indexes().is_some(),
            touches_indexes
        );
        assert_eq!(
            consumed.local_secondary_indexes().is_some(),
            touches_indexes
        );
    }

    // A Scan of one small item costs 4 units (2 eventually consistent), as on AWS.
    for (consistent, units) in [(true, 4.0), (false, 2.0)] {
        let scan = client
            .scan()
            .table_name("events")
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .unwrap();
        assert_eq!(scan.count(), 1);
        let consumed = scan.consumed_capacity().unwrap();
        assert_eq!(consumed.table_name(), Some("events"));
        assert_eq!(consumed.capacity_units(), Some(units));
    }
}
