//! Read-modify-writes stay atomic under concurrency.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use tidemark_core::ChangeSeq;
use tidemark_tests::TestNode;

use crate::common::{create_table, n, s};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_incrementing_one_item_lose_nothing() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "counter", false).await;
    let key: HashMap<String, AttributeValue> = [("p".to_string(), s("c"))].into();
    const CLIENTS: usize = 64;
    const EACH: usize = 20;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, key) = (tidemark_tests::client_for(&node.endpoint()), key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                client
                    .update_item()
                    .table_name("counter")
                    .set_key(Some(key.clone()))
                    .update_expression("SET n = if_not_exists(n, :zero) + :one")
                    .expression_attribute_values(":zero", n("0"))
                    .expression_attribute_values(":one", n("1"))
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = client
        .get_item()
        .table_name("counter")
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.item.unwrap()["n"], n(&(CLIENTS * EACH).to_string()));
    let records = node
        .node()
        .store()
        .read_changes(ChangeSeq::FIRST, 10_000)
        .unwrap();
    assert_eq!(
        records.len(),
        CLIENTS * EACH,
        "one change record per increment"
    );
}
