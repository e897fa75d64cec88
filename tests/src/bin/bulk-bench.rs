//! Bulk benchmarks against a running node, for docs/benchmarks.md: loads N items with
//! BatchWriteItem, then measures a parallel Scan of the whole table and the backfill of a
//! global secondary index created afterwards (UpdateTable returns when it is ACTIVE).
//!
//! Usage: `bulk-bench ENDPOINT [ITEMS] [SEGMENTS]` (defaults: 1000000 items, 8 segments).
//! Prints one line per phase: items, seconds, items per second.

use std::time::Instant;

use aws_sdk_dynamodb::types::{
    AttributeValue, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, KeyType,
    Projection, ProjectionType, Select,
};
use tidemark_tests::client_for;
use tidemark_tests::load::{batch_load, key_element, keyed_table, string_attribute};

const TABLE: &str = "bulk";
const LOADERS: u64 = 8;

fn report(phase: &str, items: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{phase}: {items} items in {secs:.1} s = {:.0} items/s",
        items as f64 / secs
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .expect("usage: bulk-bench ENDPOINT [ITEMS] [SEGMENTS]");
    let items: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let segments: i32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let client = client_for(&endpoint);
    keyed_table(&client, TABLE)
        .send()
        .await
        .expect("create table");

    let started = Instant::now();
    batch_load(&client, TABLE, items, LOADERS, |n| {
        [
            ("p".to_string(), AttributeValue::S(format!("item{n:08}"))),
            (
                "g".to_string(),
                AttributeValue::S(format!("group{}", n % 1000)),
            ),
            ("payload".to_string(), AttributeValue::S("x".repeat(100))),
        ]
        .into()
    })
    .await;
    report("load (BatchWriteItem, 8 connections)", items, started);

    let started = Instant::now();
    let mut scanners = Vec::new();
    for segment in 0..segments {
        let client = client_for(&endpoint);
        scanners.push(tokio::spawn(async move {
            let mut seen = 0u64;
            let mut start = None;
            loop {
                let page = client
                    .scan()
                    .table_name(TABLE)
                    .segment(segment)
                    .total_segments(segments)
                    .select(Select::Count)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .expect("scan");
                seen += page.count as u64;
                match page.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => return seen,
                }
            }
        }));
    }
    let mut scanned = 0;
    for scanner in scanners {
        scanned += scanner.await.expect("scanner");
    }
    assert_eq!(
        scanned, items,
        "the segments together return every item once"
    );
    report(
        &format!("parallel scan ({segments} segments)"),
        scanned,
        started,
    );

    let started = Instant::now();
    client
        .update_table()
        .table_name(TABLE)
        .attribute_definitions(string_attribute("g"))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    CreateGlobalSecondaryIndexAction::builder()
                        .index_name("by_group")
                        .key_schema(key_element("g", KeyType::Hash))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::KeysOnly)
                                .build(),
                        )
                        .build()
                        .expect("gsi"),
                )
                .build(),
        )
        .send()
        .await
        .expect("create index");
    loop {
        let table = client
            .describe_table()
            .table_name(TABLE)
            .send()
            .await
            .expect("describe");
        let gsis = table
            .table
            .and_then(|t| t.global_secondary_indexes)
            .unwrap_or_default();
        if gsis
            .iter()
            .any(|g| g.index_status.as_ref().map(|s| s.as_str()) == Some("ACTIVE"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    report(
        "GSI backfill (UpdateTable Create until ACTIVE)",
        items,
        started,
    );
}
