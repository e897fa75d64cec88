//! Load generators shared by the benchmark tools: bulk loads through BatchWriteItem, and
//! PutItem at a fixed rate recording when each write was acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};

/// A key schema element.
///
/// # Panics
/// Never for a name (the builder only fails on missing fields).
pub fn key_element(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key schema")
}

/// A string attribute definition.
///
/// # Panics
/// Never for a name (the builder only fails on missing fields).
pub fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition")
}

/// An item: attribute names to values.
pub type Item = HashMap<String, AttributeValue>;

/// Writes the items `make(0..count)` with BatchWriteItem (25 per request) from `loaders`
/// concurrent connections.
///
/// # Panics
/// When a request fails.
pub async fn batch_load(
    client: &Client,
    table: &str,
    count: u64,
    loaders: u64,
    make: impl Fn(u64) -> Item + Clone + Send + 'static,
) {
    let mut tasks = Vec::new();
    for loader in 0..loaders {
        let (client, table, make) = (client.clone(), table.to_string(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = loader * 25;
            while i < count {
                let writes: Vec<WriteRequest> = (i..(i + 25).min(count))
                    .map(|n| {
                        let put = PutRequest::builder()
                            .set_item(Some(make(n)))
                            .build()
                            .expect("put");
                        WriteRequest::builder().put_request(put).build()
                    })
                    .collect();
                client
                    .batch_write_item()
                    .request_items(&table, writes)
                    .send()
                    .await
                    .expect("load");
                i += loaders * 25;
            }
        }));
    }
    for task in tasks {
        task.await.expect("loader");
    }
}

/// Puts `total` items `p = item<n>` with a 200-byte payload at `rate` writes/s in all from
/// `writers` connections, and records in `acked` when each was acknowledged (microseconds
/// since `started`). Returns when every write is acknowledged.
///
/// # Panics
/// When a write fails.
pub async fn paced_puts(
    client: &Client,
    table: &str,
    rate: u64,
    total: u64,
    writers: u64,
    started: Instant,
    acked: Arc<Mutex<HashMap<String, u64>>>,
) {
    let per_writer = Duration::from_secs_f64(writers as f64 / rate as f64);
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (client, acked, table) = (client.clone(), acked.clone(), table.to_string());
        tasks.push(tokio::spawn(async move {
            let mut next = Instant::now();
            let mut n = writer;
            while n < total {
                let p = format!("item{n:09}");
                client
                    .put_item()
                    .table_name(&table)
                    .item("p", AttributeValue::S(p.clone()))
                    .item("payload", AttributeValue::S("x".repeat(200)))
                    .send()
                    .await
                    .expect("put");
                acked
                    .lock()
                    .expect("lock")
                    .insert(p, started.elapsed().as_micros() as u64);
                n += writers;
                next += per_writer;
                tokio::time::sleep_until(next.into()).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

/// Puts items as fast as `writers` connections allow for `duration`, keys prefixed `prefix`;
/// returns each put's latency in microseconds.
///
/// # Panics
/// When a write fails.
pub async fn closed_loop_puts(
    client: &Client,
    table: &str,
    prefix: &str,
    writers: u64,
    duration: Duration,
) -> Vec<u64> {
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (client, table) = (client.clone(), table.to_string());
        let prefix = format!("{prefix}{writer}-");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < until {
                let sent = Instant::now();
                client
                    .put_item()
                    .table_name(&table)
                    .item("p", AttributeValue::S(format!("{prefix}{n}")))
                    .item("payload", AttributeValue::S("x".repeat(200)))
                    .send()
                    .await
                    .expect("put");
                latencies.push(sent.elapsed().as_micros() as u64);
                n += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("writer"));
    }
    all
}
