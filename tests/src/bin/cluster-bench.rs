//! What a cluster region costs per request, for docs/benchmarks.md: `cluster-bench BINARY
//! [SECONDS] [WRITERS]` runs the `tidemark` binary given (release build) as child processes,
//! first as a single node, then as a cluster region of one node and of three nodes on tansu
//! (or `KAFKA_BROKERS`), and prints for each:
//!
//! - PutItem latency from one writer (p50, p99) and GetItem latency (eventually and strongly
//!   consistent), all raw requests over one kept-alive connection to the first node;
//! - PutItem throughput from WRITERS connections for SECONDS;
//! - CPU seconds per 1,000 writes of that closed loop on each node (the first takes every
//!   request) and on the broker;
//! - bytes appended to the logs per write (the records' sizes, read back from the table's log).
//!
//! `CLUSTER_BENCH_ARGS` adds arguments to every cluster node (e.g.
//! `--kafka-option fetch.wait.max.ms=20`).

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tidemark_tests::kafka::Broker;
use tidemark_tests::load::{closed_loop, percentile_ms};
use tidemark_tests::{ChildNode, client_for, cpu_seconds};

const TABLE: &str = "bench";

fn body(key: &str) -> String {
    let payload = "x".repeat(200);
    format!(
        r#"{{"TableName":"{TABLE}","Item":{{"p":{{"S":"{key}"}},"payload":{{"S":"{payload}"}}}}}}"#
    )
}

async fn call(http: &reqwest::Client, url: &str, operation: &str, body: String) {
    let answer = http
        .post(url)
        .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
        .header("content-type", "application/x-amz-json-1.0")
        .body(body)
        .send()
        .await
        .expect("a request");
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    assert!(status.is_success(), "{operation}: {status} {text}");
}

/// Latencies in microseconds, sorted, of `operation` with `body(n)` sent one after another for
/// `duration`.
async fn sequential(
    http: &reqwest::Client,
    url: &str,
    operation: &str,
    duration: Duration,
    body: impl Fn(u64) -> String,
) -> Vec<u64> {
    let until = Instant::now() + duration;
    let mut latencies = Vec::new();
    let mut n = 0;
    while Instant::now() < until {
        let started = Instant::now();
        call(http, url, operation, body(n)).await;
        latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        n += 1;
    }
    latencies.sort_unstable();
    latencies
}

fn line(what: &str, sorted: &[u64]) {
    println!(
        "  {what}: p50 {:.2} ms, p99 {:.2} ms ({} requests)",
        percentile_ms(sorted, 0.5),
        percentile_ms(sorted, 0.99),
        sorted.len()
    );
}

/// Bytes of every record in every partition of `log`.
fn log_bytes(brokers: &str, log: &str) -> u64 {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "cluster-bench")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let partitions = tidemark_kafka::topics::partition_count(consumer.client(), log).expect("log");
    let mut total = 0;
    for partition in 0..partitions {
        let (low, high) =
            tidemark_kafka::topics::watermarks(consumer.client(), log, partition).expect("ends");
        if high <= low {
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(log, partition, Offset::Offset(low))
            .expect("assign");
        consumer.assign(&assignment).expect("assign");
        let mut read = low;
        while read < high {
            if let Some(Ok(message)) = consumer.poll(Duration::from_secs(5)) {
                total += message.payload().map_or(0, <[u8]>::len) as u64;
                read = message.offset() + 1;
            }
        }
    }
    total
}

async fn measure(binary: &Path, nodes: usize, broker: Option<&Broker>, seconds: u64, writers: u64) {
    let dir = tempfile::tempdir().expect("a folder");
    let cluster = format!("bench{}", uuid::Uuid::new_v4().simple());
    let mut args: Vec<String> = Vec::new();
    if let Some(broker) = broker {
        args.extend([
            "--cluster".into(),
            cluster.clone(),
            "--kafka-brokers".into(),
            broker.brokers(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut children = Vec::new();
    for i in 0..nodes {
        children.push(ChildNode::start(binary, &dir.path().join(format!("node{i}")), &args).await);
    }
    let endpoint = children.first().expect("a node").endpoint();
    tidemark_tests::load::keyed_table(&client_for(&endpoint), TABLE)
        .send()
        .await
        .expect("create the table");
    for child in &children {
        let client = client_for(&child.endpoint());
        while client
            .describe_table()
            .table_name(TABLE)
            .send()
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let http = reqwest::Client::new();
    let run = Duration::from_secs(seconds);
    println!(
        "{}:",
        match broker {
            None => "single node".to_string(),
            Some(_) => format!("cluster region of {nodes} node(s)"),
        }
    );
    let puts = sequential(&http, &endpoint, "PutItem", run, |n| body(&format!("s{n}"))).await;
    line("PutItem, one writer", &puts);
    let key = |n: u64| {
        format!(
            r#"{{"TableName":"{TABLE}","Key":{{"p":{{"S":"s{}"}}}}}}"#,
            n % 1000
        )
    };
    let gets = sequential(&http, &endpoint, "GetItem", run, key).await;
    line("GetItem, eventually consistent", &gets);
    let strong = |n: u64| {
        format!(
            r#"{{"TableName":"{TABLE}","ConsistentRead":true,"Key":{{"p":{{"S":"s{}"}}}}}}"#,
            n % 1000
        )
    };
    let gets = sequential(&http, &endpoint, "GetItem", run, strong).await;
    line("GetItem, strongly consistent", &gets);
    let pids: Vec<u32> = children.iter().filter_map(ChildNode::pid).collect();
    let broker_pid = broker.and_then(Broker::pid);
    let before: Vec<f64> = pids
        .iter()
        .map(|p| cpu_seconds(*p).unwrap_or(0.0))
        .collect();
    let broker_before = broker_pid.and_then(cpu_seconds).unwrap_or(0.0);
    let (url, client) = (endpoint.clone(), http.clone());
    let done = closed_loop(writers, run, move |writer, n| {
        let (url, client) = (url.clone(), client.clone());
        async move { call(&client, &url, "PutItem", body(&format!("w{writer}-{n}"))).await }
    })
    .await
    .len() as u64;
    let per_thousand = |used: f64| used / done as f64 * 1000.0;
    println!(
        "  PutItem, {writers} writers: {:.0} writes/s",
        done as f64 / run.as_secs_f64()
    );
    for (i, (pid, before)) in pids.iter().zip(before).enumerate() {
        let used = cpu_seconds(*pid).unwrap_or(0.0) - before;
        println!(
            "  node {i}: {:.3} CPU s per 1,000 writes",
            per_thousand(used)
        );
    }
    if let Some(pid) = broker_pid {
        let used = cpu_seconds(pid).unwrap_or(0.0) - broker_before;
        println!("  broker: {:.3} CPU s per 1,000 writes", per_thousand(used));
    }
    if let Some(broker) = broker {
        let status: serde_json::Value = reqwest::get(format!("{endpoint}/admin/cluster"))
            .await
            .expect("status")
            .json()
            .await
            .expect("status");
        let log = (status
            .get("Logs")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten())
        .find(|l| l.get("Table").and_then(|t| t.as_str()) == Some(TABLE))
        .and_then(|l| l.get("Log")?.as_str())
        .expect("the table's log")
        .to_string();
        let brokers = broker.brokers();
        let bytes = tokio::task::spawn_blocking(move || log_bytes(&brokers, &log))
            .await
            .expect("read the log");
        let writes = done + puts.len() as u64;
        println!(
            "  {:.0} bytes appended per write; every node reads them all",
            bytes as f64 / writes as f64
        );
    }
    if nodes > 1 {
        // Writes through the first node while the last is killed: the longest wait for an
        // acknowledgement before, and from the kill on.
        let (url, client) = (endpoint.clone(), http.clone());
        let writing = tokio::spawn(async move {
            let mut latencies = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(6) {
                let at = started.elapsed();
                let sent = Instant::now();
                call(
                    &client,
                    &url,
                    "PutItem",
                    body(&format!("k{}", latencies.len())),
                )
                .await;
                latencies.push((at, sent.elapsed()));
            }
            latencies
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        let killed_at = Duration::from_secs(2);
        if let Some(last) = children.pop() {
            last.kill().await;
        }
        let latencies = writing.await.expect("writes");
        let longest = |after: bool| {
            (latencies.iter())
                .filter(|(at, _)| (*at >= killed_at) == after)
                .map(|(_, took)| took.as_secs_f64() * 1000.0)
                .fold(0.0, f64::max)
        };
        println!(
            "  a node killed under writes through another: longest write {:.1} ms before, {:.1} ms after ({} writes)",
            longest(false),
            longest(true),
            latencies.len()
        );
    }
    for child in children {
        child.terminate().await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let binary = Path::new(
        args.get(1)
            .expect("usage: cluster-bench BINARY [SECONDS] [WRITERS]"),
    );
    let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let writers = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    measure(binary, 1, None, seconds, writers).await;
    let broker = Broker::start().await;
    measure(binary, 1, Some(&broker), seconds, writers).await;
    measure(binary, 3, Some(&broker), seconds, writers).await;
}
