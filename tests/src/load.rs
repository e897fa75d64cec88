//! Load generators shared by the benchmark tools: bulk loads through BatchWriteItem, and
//! writes at a fixed rate or as fast as they are answered (with the SDK, or any other way of
//! sending them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
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

/// CreateTable of an on-demand table keyed by the string `p`, the benchmarks' table, ready
/// for more settings or to send.
pub fn keyed_table(
    client: &Client,
    table: &str,
) -> aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder {
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(string_attribute("p"))
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

/// Runs `write(n)` for every `n` in `0..total` at `rate` writes/s in all from `writers`
/// concurrent writers, each keeping its share of the schedule (a late writer catches up).
/// Returns when every write has returned.
///
/// # Panics
/// When a writer panics.
pub async fn paced<W, F>(rate: u64, total: u64, writers: u64, write: W)
where
    W: Fn(u64) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let per_writer = Duration::from_secs_f64(writers as f64 / rate as f64);
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let write = write.clone();
        tasks.push(tokio::spawn(async move {
            let mut next = Instant::now();
            let mut n = writer;
            while n < total {
                write(n).await;
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

/// Runs `write(writer, n)` from `writers` concurrent writers, each as fast as its writes
/// return, for `duration`; returns what every write returned.
///
/// # Panics
/// When a writer panics.
pub async fn closed_loop<W, F, T>(writers: u64, duration: Duration, write: W) -> Vec<T>
where
    W: Fn(u64, u64) -> F + Clone + Send + 'static,
    F: Future<Output = T> + Send,
    T: Send + 'static,
{
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let write = write.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            let mut n = 0u64;
            while Instant::now() < until {
                results.push(write(writer, n).await);
                n += 1;
            }
            results
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("writer"));
    }
    all
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
    let (client, table) = (client.clone(), table.to_string());
    paced(rate, total, writers, move |n| {
        let (client, table, acked) = (client.clone(), table.clone(), acked.clone());
        async move {
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
        }
    })
    .await;
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
    let (client, table, prefix) = (client.clone(), table.to_string(), prefix.to_string());
    closed_loop(writers, duration, move |writer, n| {
        let (client, table) = (client.clone(), table.clone());
        let key = format!("{prefix}{writer}-{n}");
        async move {
            let sent = Instant::now();
            client
                .put_item()
                .table_name(&table)
                .item("p", AttributeValue::S(key))
                .item("payload", AttributeValue::S("x".repeat(200)))
                .send()
                .await
                .expect("put");
            sent.elapsed().as_micros() as u64
        }
    })
    .await
}

/// The `p` quantile (0 to 1) of `sorted` by nearest rank; 0 when it is empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = (sorted.len().saturating_sub(1) as f64 * p).round() as usize;
    sorted.get(rank).copied().unwrap_or(0)
}

/// [`percentile`] of microseconds, in milliseconds.
pub fn percentile_ms(sorted_micros: &[u64], p: f64) -> f64 {
    percentile(sorted_micros, p) as f64 / 1000.0
}

/// Prints each keyspace's bytes on disk in the stopped node's data folder `data`, and per
/// million of the `writes` it took.
///
/// # Panics
/// When the folder does not open as a store.
pub fn report_disk_usage(data: &std::path::Path, writes: u64) {
    let store = tidemark_core::Store::open(tidemark_core::StoreConfig::new(data))
        .expect("open the data folder");
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    for (keyspace, bytes) in store.disk_usage().expect("disk usage") {
        println!(
            "disk: {keyspace}: {:.1} MiB ({:.0} MiB per million writes)",
            mib(bytes),
            mib(bytes) * 1_000_000.0 / writes as f64
        );
    }
    println!("disk: whole database: {:.1} MiB", mib(store.disk_space()));
}
