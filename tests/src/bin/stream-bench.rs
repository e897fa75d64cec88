//! Streams and TTL benchmarks against a running node, for docs/benchmarks.md.
//!
//! - `stream-bench ENDPOINT visibility [WRITES_PER_SEC] [SECONDS] [WRITERS]` (defaults 2000,
//!   10, 16): writers put items at the given total rate into a table with a NEW_AND_OLD_IMAGES
//!   stream while one consumer per shard polls GetRecords without pause. For every record the
//!   consumer sees, the latency is the time from the write's acknowledgement to the GetRecords
//!   answer that carried it (0 when the record arrived before the acknowledgement). Prints the
//!   achieved write rate and the latency percentiles.
//! - `stream-bench ENDPOINT ttl [ITEMS]` (default 200000): loads ITEMS items already expired
//!   into a table with TTL and a NEW_AND_OLD_IMAGES stream, then times `POST /admin/ttl/sweep`
//!   (which returns once every due item is deleted) and checks that the stream holds one
//!   service REMOVE per item. Prints items expired per second.
//! - `stream-bench ENDPOINT kafka BROKERS [WRITES_PER_SEC] [SECONDS] [WRITERS]` (defaults
//!   10000, 10, 32): the node must run with `--kafka-brokers BROKERS`. Publishes a new table
//!   (dynamodb format, 3 partitions) while writers put at the given rate and a consumer reads
//!   the topic; the latency of a change is the time from its PutItem's acknowledgement to the
//!   consumer receiving it. Then loads 50,000 items with BatchWriteItem and times until the
//!   consumer has them all (publish throughput). Last, the PutItem cost of a table's change
//!   feeds: WRITERS connections put as fast as they can into a plain table and into one with a
//!   NEW_AND_OLD_IMAGES stream read by a consumer per shard and published to Kafka, of the
//!   same node, in alternating 5 s turns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeValue, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::sync::Mutex;
use tidemark_tests::load::{batch_load, closed_loop_puts, keyed_table, paced_puts, percentile_ms};
use tidemark_tests::{client_for, streams_client_for};

/// Creates `table` (key `p`), with a NEW_AND_OLD_IMAGES stream when `streamed`; returns the
/// stream ARN, if any.
async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    streamed: bool,
) -> Option<String> {
    let mut request = keyed_table(client, table);
    if streamed {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .expect("stream specification"),
        );
    }
    let created = request.send().await.expect("create table");
    created.table_description.and_then(|t| t.latest_stream_arn)
}

async fn shard_ids(streams: &aws_sdk_dynamodbstreams::Client, arn: &str) -> Vec<String> {
    let description = streams
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await
        .expect("describe stream")
        .stream_description
        .expect("description");
    description
        .shards
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.shard_id)
        .collect()
}

/// Reads a shard from `iterator` until it closes or, once `stop` is set, has nothing more;
/// hands each page's records to `take`, and waits `pause` after a page with none.
async fn read_shard(
    streams: aws_sdk_dynamodbstreams::Client,
    mut iterator: Option<String>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    pause: Duration,
    mut take: impl FnMut(Vec<aws_sdk_dynamodbstreams::types::Record>),
) {
    while let Some(current) = iterator.take() {
        let page = streams
            .get_records()
            .shard_iterator(current)
            .send()
            .await
            .expect("get records");
        let records = page.records.unwrap_or_default();
        if !records.is_empty() {
            take(records);
        } else if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        } else {
            tokio::time::sleep(pause).await;
        }
        iterator = page.next_shard_iterator;
    }
}

/// An iterator of `kind` for every shard of the stream `arn` (LATEST ones taken before the
/// writes begin miss none of them).
async fn shard_iterators(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    kind: ShardIteratorType,
) -> Vec<Option<String>> {
    let mut iterators = Vec::new();
    for shard in shard_ids(streams, arn).await {
        iterators.push(
            streams
                .get_shard_iterator()
                .stream_arn(arn)
                .shard_id(&shard)
                .shard_iterator_type(kind.clone())
                .send()
                .await
                .expect("iterator")
                .shard_iterator,
        );
    }
    iterators
}

async fn visibility(endpoint: &str, rate: u64, seconds: u64, writers: u64) {
    let client = client_for(endpoint);
    let streams = streams_client_for(endpoint);
    let table = format!("visibility{}", std::process::id());
    let arn = create_table(&client, &table, true)
        .await
        .expect("stream ARN");
    let started = Instant::now();
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut consumers = Vec::new();
    for iterator in shard_iterators(&streams, &arn, ShardIteratorType::Latest).await {
        let (streams, acked, latencies, stop) = (
            streams.clone(),
            acked.clone(),
            latencies.clone(),
            stop.clone(),
        );
        consumers.push(tokio::spawn(read_shard(
            streams,
            iterator,
            stop,
            Duration::ZERO,
            move |records| {
                let seen_at = started.elapsed().as_micros() as u64;
                let acked = acked.lock().expect("lock");
                let mut latencies = latencies.lock().expect("lock");
                for record in records {
                    let key = record
                        .dynamodb
                        .and_then(|d| d.keys)
                        .and_then(|mut k| k.remove("p"));
                    let Some(aws_sdk_dynamodbstreams::types::AttributeValue::S(p)) = key else {
                        continue;
                    };
                    let ack = acked.get(&p).copied().unwrap_or(seen_at);
                    latencies.push(seen_at.saturating_sub(ack));
                }
            },
        )));
    }

    let total = rate * seconds;
    paced_puts(
        &client,
        &table,
        rate,
        total,
        writers,
        started,
        acked.clone(),
    )
    .await;
    let write_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for consumer in consumers {
        consumer.await.expect("consumer");
    }
    let mut sorted = latencies.lock().expect("lock").clone();
    sorted.sort_unstable();
    println!(
        "visibility: {} writes at {:.0}/s, {} records seen; write->GetRecords latency ms: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        total,
        total as f64 / write_secs,
        sorted.len(),
        percentile_ms(&sorted, 0.50),
        percentile_ms(&sorted, 0.90),
        percentile_ms(&sorted, 0.99),
        percentile_ms(&sorted, 1.0),
    );
    assert_eq!(sorted.len() as u64, total, "every write seen exactly once");
}

async fn ttl(endpoint: &str, items: u64) {
    let client = client_for(endpoint);
    let streams = streams_client_for(endpoint);
    let table = format!("expiring{}", std::process::id());
    let arn = create_table(&client, &table, true)
        .await
        .expect("stream ARN");
    client
        .update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("exp")
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("enable ttl");
    // Expire in the future first, so the sweeper leaves the load alone; then the items'
    // time passes.
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 5;
    let started = Instant::now();
    batch_load(&client, &table, items, 8, move |n| {
        [
            ("p".to_string(), AttributeValue::S(format!("item{n:09}"))),
            ("exp".to_string(), AttributeValue::N(expiry.to_string())),
            ("payload".to_string(), AttributeValue::S("x".repeat(100))),
        ]
        .into()
    })
    .await;
    println!(
        "ttl: loaded {items} items in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let wait = Duration::from_secs(expiry + 1).saturating_sub(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock"),
    );
    // From the moment the items are due (their second has passed) until the table is empty:
    // the node's sweeper wakes by itself at the expiry; the admin sweep joins it.
    tokio::time::sleep(wait).await;
    let started = Instant::now();
    reqwest::Client::new()
        .post(format!("{endpoint}/admin/ttl/sweep"))
        .send()
        .await
        .expect("sweep");
    loop {
        let count = client
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .expect("describe")
            .table
            .and_then(|t| t.item_count)
            .unwrap_or(-1);
        if count == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut removes = 0u64;
    // Everything is written: each shard is read until its first empty page.
    let written = Arc::new(std::sync::atomic::AtomicBool::new(true));
    for iterator in shard_iterators(&streams, &arn, ShardIteratorType::TrimHorizon).await {
        read_shard(
            streams.clone(),
            iterator,
            written.clone(),
            Duration::ZERO,
            |records| {
                removes += records.iter().filter(|r| r.user_identity.is_some()).count() as u64
            },
        )
        .await;
    }
    println!(
        "ttl: {items} items expired {secs:.2} s after they became due = {:.0} items/s; stream holds {removes} service REMOVE records",
        items as f64 / secs
    );
    assert_eq!(removes, items, "one service REMOVE per expired item");
}

/// Consumes `topic` from the start in a thread, recording each message's key and arrival
/// (microseconds since `started`), until `stop`.
fn consume_topic(
    brokers: String,
    topic: String,
    started: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
    received: Arc<std::sync::atomic::AtomicU64>,
) -> std::thread::JoinHandle<Vec<(String, u64)>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    std::thread::spawn(move || {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "stream-bench")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .expect("consumer");
        let mut assignment = rdkafka::TopicPartitionList::new();
        for p in 0..3 {
            assignment
                .add_partition_offset(&topic, p, rdkafka::Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&assignment).expect("assign");
        let mut seen = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                let at = started.elapsed().as_micros() as u64;
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).to_string();
                seen.push((key, at));
                received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        seen
    })
}

/// Turns on publishing of `table` to a 3-partition topic `bench-<table>` and gives the
/// publisher time to create it; returns the topic.
async fn publish(endpoint: &str, table: &str) -> String {
    let topic = format!("bench-{table}");
    let answer = reqwest::Client::new()
        .post(format!("{endpoint}/admin/publish"))
        .json(
            &serde_json::json!({"TableName": table, "Enabled": true, "Topic": topic,
                                   "Partitions": 3}),
        )
        .send()
        .await
        .expect("enable publishing");
    assert!(
        answer.status().is_success(),
        "enable publishing: {answer:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    topic
}

async fn kafka(endpoint: &str, brokers: &str, rate: u64, seconds: u64, writers: u64) {
    let client = client_for(endpoint);
    let table = format!("published{}", std::process::id());
    create_table(&client, &table, false).await;
    let topic = publish(endpoint, &table).await;
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let consumer = consume_topic(
        brokers.to_string(),
        topic,
        started,
        stop.clone(),
        received.clone(),
    );
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    // Time only once the consumer has its partitions and has fetched a first message.
    client
        .put_item()
        .table_name(&table)
        .item("p", AttributeValue::S("warm-up".into()))
        .send()
        .await
        .expect("warm-up put");
    while received.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let total = rate * seconds;
    paced_puts(
        &client,
        &table,
        rate,
        total,
        writers,
        started,
        acked.clone(),
    )
    .await;
    let write_secs = started.elapsed().as_secs_f64();

    // Throughput: a bulk load while the consumer keeps reading.
    let bulk = 50_000u64;
    let bulk_started = Instant::now();
    batch_load(&client, &table, bulk, 8, |n| {
        [
            ("p".to_string(), AttributeValue::S(format!("bulk{n:09}"))),
            ("payload".to_string(), AttributeValue::S("x".repeat(100))),
        ]
        .into()
    })
    .await;
    let load_secs = bulk_started.elapsed().as_secs_f64();
    // Wait until the publisher reports no lag, then stop the consumer.
    loop {
        let status: serde_json::Value = reqwest::get(format!("{endpoint}/admin/publish"))
            .await
            .expect("status")
            .json()
            .await
            .expect("status body");
        if status
            .pointer("/Tables")
            .and_then(|t| t.as_array())
            .is_some_and(|t| {
                t.iter()
                    .all(|t| t.pointer("/LagRecords") == Some(&0.into()))
            })
        {
            break;
        }
        // Counting the lag walks the unpublished records: poll gently.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_secs = bulk_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = consumer.join().expect("consumer");

    let acked = acked.lock().expect("lock").clone();
    let mut latencies: Vec<u64> = seen
        .iter()
        .filter_map(|(key, at)| {
            let parsed = serde_json::from_str::<serde_json::Value>(key).ok()?;
            let p = parsed.pointer("/p/S")?.as_str()?.to_string();
            acked.get(&p).map(|ack| at.saturating_sub(*ack))
        })
        .collect();
    latencies.sort_unstable();
    let bulk_seen = seen.iter().filter(|(k, _)| k.contains("bulk")).count() as u64;
    let last_bulk = seen
        .iter()
        .filter(|(k, _)| k.contains("bulk"))
        .map(|(_, at)| *at)
        .max()
        .unwrap_or(0);
    let bulk_publish_secs =
        (last_bulk as f64 / 1e6) - bulk_started.duration_since(started).as_secs_f64();
    println!(
        "kafka: {total} writes at {:.0}/s; write->consumer latency ms: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} ({} of {total} measured)",
        total as f64 / write_secs,
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.90),
        percentile_ms(&latencies, 0.99),
        percentile_ms(&latencies, 1.0),
        latencies.len(),
    );
    println!(
        "kafka: bulk {bulk} items loaded in {load_secs:.2} s; all {bulk_seen} consumed {bulk_publish_secs:.2} s after the load began = {:.0} records/s published (lag 0 after {drained_secs:.2} s)",
        bulk_seen as f64 / bulk_publish_secs
    );
    assert_eq!(
        latencies.len() as u64,
        total,
        "every write consumed exactly once"
    );
    assert_eq!(bulk_seen, bulk, "every bulk item consumed exactly once");

    put_cost(endpoint, &client, writers).await;
}

/// Reads every shard of the stream `arn` from now on, as a consumer does (GetRecords back to
/// back while records come, 100 ms apart while none do), until `stop`; returns the records
/// read and the pages that held any.
async fn drain_stream(
    endpoint: &str,
    arn: &str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    let streams = streams_client_for(endpoint);
    let mut readers = Vec::new();
    for iterator in shard_iterators(&streams, arn, ShardIteratorType::Latest).await {
        let (streams, stop) = (streams.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let (mut read, mut pages) = (0u64, 0u64);
            let pause = Duration::from_millis(100);
            read_shard(streams, iterator, stop, pause, |records| {
                read += records.len() as u64;
                pages += 1;
            })
            .await;
            (read, pages)
        }));
    }
    tokio::spawn(async move {
        let (mut read, mut pages) = (0, 0);
        for reader in readers {
            let (shard_read, shard_pages) = reader.await.expect("stream reader");
            read += shard_read;
            pages += shard_pages;
        }
        (read, pages)
    })
}

/// The PutItem cost of a table's change feeds: closed-loop puts into a plain table and into
/// one with a NEW_AND_OLD_IMAGES stream read by a consumer and published to Kafka, of the same
/// node, alternating 5 s turns, twice each.
async fn put_cost(endpoint: &str, client: &aws_sdk_dynamodb::Client, writers: u64) {
    let plain = format!("plain{}", std::process::id());
    let published = format!("costly{}", std::process::id());
    create_table(client, &plain, false).await;
    let arn = create_table(client, &published, true)
        .await
        .expect("stream ARN");
    publish(endpoint, &published).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = drain_stream(endpoint, &arn, stop.clone()).await;
    let turn = Duration::from_secs(5);
    // With NODE_PID and BROKER_PID set (scripts/kafka-bench.sh does), each turn's CPU time
    // of the node and the broker is divided by its puts.
    let pids: Vec<String> = ["NODE_PID", "BROKER_PID"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .collect();
    let cpu = || {
        pids.iter()
            .map(|p| {
                p.parse()
                    .ok()
                    .and_then(tidemark_tests::cpu_seconds)
                    .unwrap_or(0.0)
            })
            .collect::<Vec<_>>()
    };
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let (mut off_cpu, mut on_cpu) = (vec![0.0; pids.len()], vec![0.0; pids.len()]);
    for round in 0..2 {
        let prefix = format!("r{round}-");
        for (table, latencies, used) in [
            (&plain, &mut off, &mut off_cpu),
            (&published, &mut on, &mut on_cpu),
        ] {
            let before = cpu();
            latencies.extend(closed_loop_puts(client, table, &prefix, writers, turn).await);
            for ((used, after), before) in used.iter_mut().zip(cpu()).zip(before) {
                *used += after - before;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (streamed, pages) = consumer.await.expect("stream consumer");
    println!(
        "kafka: the stream consumer read {streamed} records in {pages} GetRecords pages ({:.1} per page)",
        streamed as f64 / pages.max(1) as f64
    );
    assert_eq!(
        streamed,
        on.len() as u64,
        "the stream consumer reads every put of the streamed table once"
    );
    let node_per_put: Vec<f64> = [(&off, &off_cpu), (&on, &on_cpu)]
        .iter()
        .filter_map(|(latencies, used)| Some(used.first()? / latencies.len() as f64))
        .collect();
    if let [off_cost, on_cost] = node_per_put[..] {
        println!(
            "kafka: streamed and published / plain: {:.0} % of the puts/s here; {:.0} % by the node's CPU per put (the broker and consumers on other cores)",
            on.len() as f64 * 100.0 / off.len() as f64,
            off_cost * 100.0 / on_cost,
        );
    }
    for (label, mut latencies, used) in [
        ("plain", off, off_cpu),
        ("streamed and published", on, on_cpu),
    ] {
        latencies.sort_unstable();
        let puts = latencies.len() as f64;
        let per_put: Vec<String> = used
            .iter()
            .zip(["node", "broker"])
            .map(|(seconds, who)| format!("{who} {:.0} µs", seconds * 1e6 / puts))
            .collect();
        println!(
            "kafka: PutItem, {label}: {:.0} puts/s from {writers} connections, latency ms p50 {:.2} p99 {:.2}; CPU per put: {}",
            puts / (2.0 * turn.as_secs_f64()),
            percentile_ms(&latencies, 0.50),
            percentile_ms(&latencies, 0.99),
            if per_put.is_empty() {
                "not measured".to_string()
            } else {
                per_put.join(", ")
            },
        );
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: stream-bench ENDPOINT visibility [RATE] [SECONDS] [WRITERS] | ttl [ITEMS] | kafka BROKERS [RATE] [SECONDS] [WRITERS]";
    let endpoint = args.next().expect(usage);
    let mode = args.next().expect(usage);
    let mut number = |default: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    match mode.as_str() {
        "visibility" => {
            let (rate, seconds, writers) = (number(2000), number(10), number(16));
            visibility(&endpoint, rate, seconds, writers).await
        }
        "ttl" => ttl(&endpoint, number(200_000)).await,
        "kafka" => {
            let brokers = args.next().expect(usage);
            let mut number =
                |default: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
            let (rate, seconds, writers) = (number(10_000), number(10), number(32));
            kafka(&endpoint, &brokers, rate, seconds, writers).await
        }
        _ => panic!("{usage}"),
    }
}
