//! Query and Scan through the AWS SDK: order, paging, filters, counts, parallel scan.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, Select, WriteRequest};
use tidemark_tests::TestNode;

use crate::common::{create_table, error_code, n, s};

async fn put_many(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) {
    for chunk in items.chunks(25) {
        let writes: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        client
            .batch_write_item()
            .request_items(table, writes)
            .send()
            .await
            .unwrap();
    }
}

fn row(p: &str, c: i64, extra: &str) -> HashMap<String, AttributeValue> {
    [
        ("p".to_string(), s(p)),
        ("c".to_string(), n(&c.to_string())),
        ("x".to_string(), s(extra)),
    ]
    .into()
}

#[tokio::test]
async fn query_returns_one_partition_in_numeric_sort_key_order_both_ways() {
    let node = TestNode::start_with(|c| c.durability = tidemark_core::Durability::Buffer).await;
    let client = node.client();
    create_table(&client, "qry", true).await;
    // Sort keys whose string order differs from their numeric order.
    let keys = [-5, 100, 9, 20, 0, 3];
    put_many(
        &client,
        "qry",
        keys.iter()
            .map(|&c| row("a", c, "v"))
            .chain([row("b", 1, "other")])
            .collect(),
    )
    .await;

    let forward = client
        .query()
        .table_name("qry")
        .key_condition_expression("p = :p")
        .expression_attribute_values(":p", s("a"))
        .send()
        .await
        .unwrap();
    let order: Vec<String> = forward
        .items()
        .iter()
        .map(|i| i["c"].as_n().unwrap().clone())
        .collect();
    assert_eq!(order, ["-5", "0", "3", "9", "20", "100"]);
    assert_eq!((forward.count, forward.scanned_count), (6, 6));

    let backward = client
        .query()
        .table_name("qry")
        .key_condition_expression("p = :p AND c BETWEEN :lo AND :hi")
        .expression_attribute_values(":p", s("a"))
        .expression_attribute_values(":lo", n("0"))
        .expression_attribute_values(":hi", n("20"))
        .scan_index_forward(false)
        .send()
        .await
        .unwrap();
    let order: Vec<String> = backward
        .items()
        .iter()
        .map(|i| i["c"].as_n().unwrap().clone())
        .collect();
    assert_eq!(order, ["20", "9", "3", "0"]);

    let filtered = client
        .query()
        .table_name("qry")
        .key_condition_expression("p = :p AND c > :zero")
        .filter_expression("c <> :nine")
        .expression_attribute_values(":p", s("a"))
        .expression_attribute_values(":zero", n("0"))
        .expression_attribute_values(":nine", s("9"))
        .select(Select::Count)
        .send()
        .await
        .unwrap_err();
    // A filter on a key attribute is rejected, as DynamoDB does.
    assert_eq!(error_code(&filtered), "ValidationException");

    let counted = client
        .query()
        .table_name("qry")
        .key_condition_expression("p = :p AND c > :zero")
        .filter_expression("x = :v")
        .expression_attribute_values(":p", s("a"))
        .expression_attribute_values(":zero", n("0"))
        .expression_attribute_values(":v", s("v"))
        .limit(2)
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!((counted.count, counted.scanned_count), (2, 2));
    assert!(counted.items.is_none());
    assert_eq!(counted.last_evaluated_key.unwrap()["c"], n("9"));
}

#[tokio::test]
async fn a_query_over_3_mb_pages_and_returns_every_item_once() {
    let node = TestNode::start_with(|c| c.durability = tidemark_core::Durability::Buffer).await;
    let client = node.client();
    create_table(&client, "big", true).await;
    let payload = "y".repeat(30_000);
    // 110 items of ~30 KB: over 3 MB in one partition, so over three 1 MB pages.
    put_many(
        &client,
        "big",
        (0..110).map(|c| row("p", c, &payload)).collect(),
    )
    .await;
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = client
            .query()
            .table_name("big")
            .key_condition_expression("p = :p")
            .expression_attribute_values(":p", s("p"))
            .projection_expression("c")
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        pages += 1;
        seen.extend(
            page.items()
                .iter()
                .map(|i| i["c"].as_n().unwrap().parse::<i64>().unwrap()),
        );
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    assert!(pages >= 4, "1 MB pages: {pages}");
    assert_eq!(
        seen,
        (0..110).collect::<Vec<_>>(),
        "every item once, in order"
    );
}

#[tokio::test]
async fn parallel_scan_segments_are_disjoint_and_complete() {
    let node = TestNode::start_with(|c| c.durability = tidemark_core::Durability::Buffer).await;
    let client = node.client();
    create_table(&client, "scan", false).await;
    let items: Vec<_> = (0..300)
        .map(|i| HashMap::from([("p".to_string(), s(&format!("k{i}")))]))
        .collect();
    put_many(&client, "scan", items).await;
    let mut all = HashSet::new();
    for segment in 0..4 {
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name("scan")
                .segment(segment)
                .total_segments(4)
                .limit(37)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            for item in page.items() {
                assert!(
                    all.insert(item["p"].as_s().unwrap().clone()),
                    "an item in two segments"
                );
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
    }
    assert_eq!(all.len(), 300);
    let whole = client
        .scan()
        .table_name("scan")
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.count, 300);
    let bad = client
        .scan()
        .table_name("scan")
        .segment(4)
        .total_segments(4)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&bad), "ValidationException");
}
