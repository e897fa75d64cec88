//! BatchWriteItem and BatchGetItem.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest,
};
use tidemark_core::ChangeSeq;
use tidemark_tests::TestNode;

use crate::common::{create_table, error_code, n, s};

fn put(key: &str, v: i64) -> WriteRequest {
    let item: HashMap<String, AttributeValue> = [
        ("p".to_string(), s(key)),
        ("v".to_string(), n(&v.to_string())),
    ]
    .into();
    WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
        .build()
}

fn key(k: &str) -> HashMap<String, AttributeValue> {
    [("p".to_string(), s(k))].into()
}

#[tokio::test]
async fn batch_write_then_batch_get() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "batch", false).await;
    let writes: Vec<WriteRequest> = (0..25).map(|i| put(&format!("k{i}"), i)).collect();
    let out = client
        .batch_write_item()
        .request_items("batch", writes)
        .send()
        .await
        .unwrap();
    assert!(out.unprocessed_items.unwrap_or_default().is_empty());

    let keys: Vec<_> = (0..25)
        .map(|i| key(&format!("k{i}")))
        .chain([key("missing")])
        .collect();
    let got = client
        .batch_get_item()
        .request_items(
            "batch",
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .projection_expression("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let items = &got.responses.unwrap()["batch"];
    assert_eq!(items.len(), 25);
    assert!(items.iter().all(|i| i.len() == 1 && i.contains_key("v")));

    let deletes = vec![
        WriteRequest::builder()
            .delete_request(
                DeleteRequest::builder()
                    .set_key(Some(key("k0")))
                    .build()
                    .unwrap(),
            )
            .build(),
    ];
    client
        .batch_write_item()
        .request_items("batch", deletes)
        .send()
        .await
        .unwrap();
    let count = client
        .describe_table()
        .table_name("batch")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .item_count;
    assert_eq!(count, Some(24));
    // One change record per applied write: 25 puts and 1 delete.
    assert_eq!(
        node.node()
            .store()
            .read_changes(ChangeSeq::FIRST, 1000)
            .unwrap()
            .len(),
        26
    );
}

#[tokio::test]
async fn batch_limits_and_duplicates_are_rejected_whole() {
    let node = TestNode::start().await;
    let client = node.client();
    create_table(&client, "limits", false).await;
    let too_many: Vec<WriteRequest> = (0..26).map(|i| put(&format!("k{i}"), i)).collect();
    let err = client
        .batch_write_item()
        .request_items("limits", too_many)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    let duplicate = vec![put("same", 1), put("same", 2)];
    let err = client
        .batch_write_item()
        .request_items("limits", duplicate)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    assert!(
        node.node()
            .store()
            .read_changes(ChangeSeq::FIRST, 1000)
            .unwrap()
            .is_empty(),
        "nothing written"
    );
    let keys: Vec<_> = (0..101).map(|i| key(&format!("k{i}"))).collect();
    let err = client
        .batch_get_item()
        .request_items(
            "limits",
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
}
