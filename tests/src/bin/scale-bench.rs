//! Scale benchmarks for docs/benchmarks.md: how the node's costs grow with the size of a table
//! and the length of its history. `scripts/scale-bench.sh` runs them in order around the
//! shared wrk workloads.
//!
//! - `scale-bench load ENDPOINT ITEMS [LOADERS]` (default 16 loaders): creates the table the
//!   shared workloads use (`bench`: `pk` and `sk` strings) and writes ITEMS items of ~1 KB
//!   shaped as ../shared/bench/preload.py writes them (`pk` p%07d, ten `sk` per partition),
//!   with BatchWriteItem. Prints the rate every 10 s and in all, and the table's size as
//!   DynamoDB counts it (DescribeTable `TableSizeBytes`).
//! - `scale-bench soak ENDPOINT SECONDS [WRITERS] [PARTITIONS]` (defaults 16 writers, 10000
//!   partitions): WRITERS connections put ~1 KB items over the loaded keys (PARTITIONS x 10)
//!   as fast as they are answered. Prints each minute's throughput and latency percentiles,
//!   the whole run's, and the whole run's p99 over the first minute's.
//! - `scale-bench disk DATA_DIR WRITES`: opens a stopped node's data folder and prints each
//!   keyspace's bytes on disk, and per million writes when WRITES is given.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeyType};
use rand::Rng;
use rand::distr::Alphanumeric;
use tidemark_tests::client_for;
use tidemark_tests::load::{
    Item, batch_load, closed_loop, key_element, percentile_ms, report_disk_usage, string_attribute,
};

const TABLE: &str = "bench";
const SORT_KEYS_PER_PARTITION: u64 = 10;
const PAYLOAD_LEN: usize = 900;
/// Distinct random payloads, so storage cannot compress the items to nothing (as the shared
/// workloads do).
const PAYLOAD_POOL: usize = 64;

fn payloads() -> Arc<Vec<String>> {
    let mut rng = rand::rng();
    Arc::new(
        (0..PAYLOAD_POOL)
            .map(|_| {
                (&mut rng)
                    .sample_iter(Alphanumeric)
                    .take(PAYLOAD_LEN)
                    .map(char::from)
                    .collect()
            })
            .collect(),
    )
}

/// The `n`th item of the load: partition `n / 10`, sort key `n % 10`, as preload.py writes.
fn item(n: u64, payloads: &[String]) -> Item {
    let (partition, sort) = (n / SORT_KEYS_PER_PARTITION, n % SORT_KEYS_PER_PARTITION);
    let mut rng = rand::rng();
    let payload = payloads
        .get(rng.random_range(0..payloads.len()))
        .cloned()
        .unwrap_or_default();
    let owner = AttributeValue::M(
        [
            (
                "owner".to_string(),
                AttributeValue::S(format!("user-{}", partition % 1000)),
            ),
            ("ver".to_string(), AttributeValue::N("1".into())),
            (
                "tags".to_string(),
                AttributeValue::L(vec![
                    AttributeValue::S("alpha".into()),
                    AttributeValue::S("beta".into()),
                    AttributeValue::Bool(true),
                ]),
            ),
        ]
        .into(),
    );
    [
        (
            "pk".to_string(),
            AttributeValue::S(format!("p{partition:07}")),
        ),
        ("sk".to_string(), AttributeValue::S(format!("s{sort:02}"))),
        ("payload".to_string(), AttributeValue::S(payload)),
        ("cnt".to_string(), AttributeValue::N("0".into())),
        (
            "n".to_string(),
            AttributeValue::N(rng.random_range(0..1_000_000u32).to_string()),
        ),
        ("m".to_string(), owner),
    ]
    .into()
}

async fn load(endpoint: &str, items: u64, loaders: u64) {
    let client = client_for(endpoint);
    client
        .create_table()
        .table_name(TABLE)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash))
        .key_schema(key_element("sk", KeyType::Range))
        .attribute_definitions(string_attribute("pk"))
        .attribute_definitions(string_attribute("sk"))
        .send()
        .await
        .expect("create table");
    let made = Arc::new(AtomicU64::new(0));
    let progress = {
        let made = made.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let now = made.load(Ordering::Relaxed);
                println!(
                    "load: {now} items after {:.0} s, {:.0} items/s in the last 10 s",
                    started.elapsed().as_secs_f64(),
                    (now - last) as f64 / 10.0
                );
                last = now;
            }
        })
    };
    let pool = payloads();
    let started = Instant::now();
    batch_load(&client, TABLE, items, loaders, move |n| {
        made.fetch_add(1, Ordering::Relaxed);
        item(n, &pool)
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    progress.abort();
    let table = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .expect("describe table")
        .table
        .expect("table");
    println!(
        "load: {items} items in {secs:.1} s = {:.0} items/s from {loaders} connections (BatchWriteItem); TableSizeBytes {} ({:.0} bytes per item)",
        items as f64 / secs,
        table.table_size_bytes.unwrap_or(0),
        table.table_size_bytes.unwrap_or(0) as f64 / items as f64,
    );
}

fn summary(label: &str, latencies: &mut [u64], seconds: f64) -> f64 {
    latencies.sort_unstable();
    let p99 = percentile_ms(latencies, 0.99);
    println!(
        "soak {label}: {:.0} puts/s, latency ms p50 {:.2} p99 {p99:.2} p99.9 {:.2} max {:.2}",
        latencies.len() as f64 / seconds,
        percentile_ms(latencies, 0.50),
        percentile_ms(latencies, 0.999),
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    p99
}

async fn soak(endpoint: &str, seconds: u64, writers: u64, partitions: u64) {
    let client = client_for(endpoint);
    let pool = payloads();
    let started = Instant::now();
    let answers = closed_loop(writers, Duration::from_secs(seconds), move |_, _| {
        let client = client.clone();
        let n = rand::rng().random_range(0..partitions * SORT_KEYS_PER_PARTITION);
        let item = item(n, &pool);
        async move {
            let sent = Instant::now();
            client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(item))
                .send()
                .await
                .expect("put");
            (
                sent.duration_since(started).as_secs(),
                sent.elapsed().as_micros() as u64,
            )
        }
    })
    .await;
    let minutes = seconds.div_ceil(60);
    let mut per_minute = vec![Vec::new(); minutes as usize];
    let mut all = Vec::with_capacity(answers.len());
    for (second, latency) in answers {
        if let Some(minute) = per_minute.get_mut((second / 60) as usize) {
            minute.push(latency);
        }
        all.push(latency);
    }
    let mut first = None;
    for (minute, latencies) in per_minute.iter_mut().enumerate() {
        let span = (seconds - minute as u64 * 60).min(60) as f64;
        let p99 = summary(&format!("minute {}", minute + 1), latencies, span);
        first.get_or_insert(p99);
    }
    let p99 = summary(
        &format!("{seconds} s, {writers} connections"),
        &mut all,
        seconds as f64,
    );
    println!(
        "soak: whole-run p99 / first-minute p99 = {:.2}",
        p99 / first.unwrap_or(p99).max(f64::MIN_POSITIVE)
    );
}

#[tokio::main]
async fn main() {
    let usage = "usage: scale-bench load ENDPOINT ITEMS [LOADERS] | soak ENDPOINT SECONDS [WRITERS] [PARTITIONS] | disk DATA_DIR WRITES";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize| args.get(index).and_then(|a| a.parse::<u64>().ok());
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("load"), Some(endpoint)) => {
            load(endpoint, number(2).expect(usage), number(3).unwrap_or(16)).await
        }
        (Some("soak"), Some(endpoint)) => {
            soak(
                endpoint,
                number(2).expect(usage),
                number(3).unwrap_or(16),
                number(4).unwrap_or(10_000),
            )
            .await
        }
        (Some("disk"), Some(data)) => {
            report_disk_usage(std::path::Path::new(data), number(2).expect(usage))
        }
        _ => panic!("{usage}"),
    }
}
