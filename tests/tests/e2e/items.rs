//! Item operations through the AWS SDK, and the change records they leave.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use tidemark_core::{ChangeKind, ChangeSeq};
use tidemark_tests::TestNode;

use crate::common::{create_table, error_code, n, s};

fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[tokio::test]
async fn put_get_delete_with_canonical_numbers_and_numeric_key_identity() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "items", true).await;
    client
        .put_item()
        .table_name("items")
        .set_item(Some(item(&[
            ("p", s("k")),
            ("c", n("1e3")),
            ("v", n("+0001.50")),
            ("e", s("")),
        ])))
        .send()
        .await
        .unwrap();
    let got = client
        .get_item()
        .table_name("items")
        .set_key(Some(item(&[("p", s("k")), ("c", n("1000"))])))
        .send()
        .await
        .unwrap();
    let got = got.item.unwrap();
    assert_eq!(got["c"], n("1000"));
    assert_eq!(got["v"], n("1.5"));
    assert_eq!(got["e"], s(""));

    let old = client
        .delete_item()
        .table_name("items")
        .set_key(Some(item(&[("p", s("k")), ("c", n("1000.0"))])))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(old.attributes.unwrap()["v"], n("1.5"));
    let after = client
        .get_item()
        .table_name("items")
        .set_key(Some(item(&[("p", s("k")), ("c", n("1000"))])))
        .send()
        .await
        .unwrap();
    assert!(after.item.is_none());
}

#[tokio::test]
async fn conditions_updates_and_return_values() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "cond", false).await;
    let key = item(&[("p", s("a"))]);
    client
        .put_item()
        .table_name("cond")
        .set_item(Some(item(&[("p", s("a")), ("n", n("1"))])))
        .send()
        .await
        .unwrap();

    let failed = client
        .put_item()
        .table_name("cond")
        .set_item(Some(item(&[("p", s("a"))])))
        .condition_expression("attribute_not_exists(p)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&failed), "ConditionalCheckFailedException");
    let service = failed.into_service_error();
    match service {
        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(e.item.unwrap()["n"], n("1"));
        }
        other => panic!("unexpected {other:?}"),
    }

    let updated = client
        .update_item()
        .table_name("cond")
        .set_key(Some(key.clone()))
        .update_expression("SET n = n + :inc, #l = list_append(if_not_exists(#l, :empty), :more) REMOVE gone ADD tags :t")
        .condition_expression("n = :one")
        .expression_attribute_names("#l", "list")
        .expression_attribute_values(":inc", n("41"))
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":empty", AttributeValue::L(vec![]))
        .expression_attribute_values(":more", AttributeValue::L(vec![s("x")]))
        .expression_attribute_values(":t", AttributeValue::Ss(vec!["blue".into()]))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    let new = updated.attributes.unwrap();
    assert_eq!(new["n"], n("42"));
    assert_eq!(new["list"], AttributeValue::L(vec![s("x")]));
    assert_eq!(new["tags"], AttributeValue::Ss(vec!["blue".into()]));

    let old_values = client
        .update_item()
        .table_name("cond")
        .set_key(Some(key.clone()))
        .update_expression("SET n = :v")
        .expression_attribute_values(":v", n("7"))
        .return_values(ReturnValue::UpdatedOld)
        .send()
        .await
        .unwrap();
    assert_eq!(old_values.attributes.unwrap(), item(&[("n", n("42"))]));

    let unused = client
        .update_item()
        .table_name("cond")
        .set_key(Some(key.clone()))
        .update_expression("SET n = :v")
        .expression_attribute_values(":v", n("7"))
        .expression_attribute_values(":unused", n("7"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&unused), "ValidationException");

    let key_update = client
        .update_item()
        .table_name("cond")
        .set_key(Some(key))
        .update_expression("SET p = :v")
        .expression_attribute_values(":v", s("other"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&key_update), "ValidationException");
}

#[tokio::test]
async fn every_change_leaves_exactly_one_record_and_no_ops_leave_none() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "log", false).await;
    let store = node.node().store().clone();
    let base = store.durable_seq();
    let put = |it: HashMap<String, AttributeValue>| {
        client
            .put_item()
            .table_name("log")
            .set_item(Some(it))
            .send()
    };

    put(item(&[
        ("p", s("a")),
        (
            "m",
            AttributeValue::M(item(&[("x", n("1")), ("y", n("2"))])),
        ),
    ]))
    .await
    .unwrap();
    // The same item again, with the map written in another order: no change.
    put(item(&[
        ("p", s("a")),
        (
            "m",
            AttributeValue::M(item(&[("y", n("2.0")), ("x", n("1"))])),
        ),
    ]))
    .await
    .unwrap();
    // Removing an attribute that is not there: no change.
    client
        .update_item()
        .table_name("log")
        .set_key(Some(item(&[("p", s("a"))])))
        .update_expression("REMOVE nothing")
        .send()
        .await
        .unwrap();
    // A real change.
    client
        .update_item()
        .table_name("log")
        .set_key(Some(item(&[("p", s("a"))])))
        .update_expression("SET z = :z")
        .expression_attribute_values(":z", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();
    client
        .delete_item()
        .table_name("log")
        .set_key(Some(item(&[("p", s("a"))])))
        .send()
        .await
        .unwrap();
    // Deleting a missing item: no change.
    client
        .delete_item()
        .table_name("log")
        .set_key(Some(item(&[("p", s("a"))])))
        .send()
        .await
        .unwrap();

    let records = store.read_changes(base.next(), 100).unwrap();
    let kinds: Vec<ChangeKind> = records.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [ChangeKind::Insert, ChangeKind::Modify, ChangeKind::Remove]
    );
    let steps: Vec<u64> = records.iter().map(|r| r.seq.distance_from(base)).collect();
    assert_eq!(steps, [1, 2, 3]);
    assert!(records[0].old_image.is_none() && records[0].new_image.is_some());
    assert_eq!(records[1].old_image, records[0].new_image);
    assert_eq!(records[2].old_image, records[1].new_image);
    assert!(records[2].new_image.is_none());
    assert!(
        records
            .iter()
            .all(|r| r.origin_region() == "us-east-1" && !r.by_service())
    );
    assert!(records.windows(2).all(|w| w[0].stamp < w[1].stamp));
    let count = client
        .describe_table()
        .table_name("log")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .item_count;
    assert_eq!(count, Some(0));
}

#[tokio::test]
async fn items_and_the_change_log_survive_a_restart() {
    let mut node = TestNode::start().await;
    create_table(&node.client(), "keep", false).await;
    for i in 0..20 {
        node.client()
            .put_item()
            .table_name("keep")
            .set_item(Some(item(&[
                ("p", s(&format!("k{i}"))),
                ("v", n(&i.to_string())),
            ])))
            .send()
            .await
            .unwrap();
    }
    let before = node.node().store().durable_seq();
    node.restart().await;
    let client = node.client();
    let got = client
        .get_item()
        .table_name("keep")
        .set_key(Some(item(&[("p", s("k7"))])))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item.unwrap()["v"], n("7"));
    let count = client
        .describe_table()
        .table_name("keep")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .item_count;
    assert_eq!(count, Some(20));
    client
        .put_item()
        .table_name("keep")
        .set_item(Some(item(&[("p", s("new"))])))
        .send()
        .await
        .unwrap();
    let store = node.node().store();
    let records = store.read_changes(ChangeSeq::FIRST, 1000).unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq.get()).collect();
    assert_eq!(
        seqs,
        (1..=before.next().get()).collect::<Vec<_>>(),
        "no gap across the restart"
    );
}

#[tokio::test]
async fn sync_mode_acknowledges_only_durable_writes() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "acks", false).await;
    let store = node.node().store().clone();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, store) = (client.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..25 {
                let key = format!("w{w}-{i}");
                client
                    .put_item()
                    .table_name("acks")
                    .set_item(Some(item(&[("p", s(&key))])))
                    .send()
                    .await
                    .unwrap();
                acked.push((key, store.durable_seq()));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let records = store.read_changes(ChangeSeq::FIRST, 10_000).unwrap();
    let seq_of: HashMap<String, ChangeSeq> = records
        .iter()
        .filter_map(|r| match r.keys.get("p") {
            Some(tidemark_core::model::AttributeValue::S(k)) => Some((k.clone(), r.seq)),
            _ => None,
        })
        .collect();
    for (key, durable_at_ack) in acked {
        let seq = seq_of[&key];
        assert!(
            seq <= durable_at_ack,
            "{key} acknowledged at durable {durable_at_ack} but has seq {seq}"
        );
    }
}
