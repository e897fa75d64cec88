//! Global tables benchmarks, for docs/benchmarks.md. Runs real nodes (the `tidemark` binary
//! given, release build) as child processes, one per region, linked through loopback TCP
//! proxies as in the tests.
//!
//! - `replication-bench BINARY lag RATE SECONDS [direct|kafka] [sync|buffer]`: two regions
//!   (`--durability` sync, the default, or buffer); PutItem at RATE
//!   writes/s in the first for SECONDS (raw PutItem requests: the SDK's own CPU cost would cap
//!   the rate on a small machine); then, from the second region's change log, each
//!   replicated write's lag: its commit there minus its commit at the origin (both on this
//!   machine's clock, millisecond resolution). Prints p50, p99, max. `kafka` uses tansu (or
//!   `KAFKA_BROKERS`).
//! - `replication-bench BINARY throughput SECONDS WRITERS`: three regions; closed-loop PutItem
//!   (raw requests, as `lag`) from WRITERS connections in the first region for SECONDS, on a
//!   table with zero, one and two replicas, one after the other in one run. Prints writes/s of
//!   each. `pinned` binds the first region and the load to CPU 0 and the replicas to CPU 1,
//!   so the replicas' work does not take the source's CPU, as on separate machines.
//! - `replication-bench BINARY seed ITEMS`: two regions; loads ITEMS items into the first, adds
//!   a replica in the second and times until it is ACTIVE. Prints items/s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReplicaStatus};
use tidemark_core::changes::{ChangeSeq, LogCursor, LogLimits};
use tidemark_core::{CauseKind, Store, StoreConfig};
use tidemark_tests::cluster::{Cluster, replica_create};
use tidemark_tests::cpu_seconds;
use tidemark_tests::kafka::Broker;
use tidemark_tests::load::{batch_load, closed_loop, keyed_table, paced, percentile};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];

async fn create_table(client: &Client, table: &str) {
    keyed_table(client, table)
        .send()
        .await
        .expect("create table");
}

/// Adds a replica of `table` in `region` and waits until it is ACTIVE.
async fn add_replica(client: &Client, table: &str, region: &str) {
    client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create(region))
        .send()
        .await
        .expect("add a replica");
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("describe")
            .table
            .expect("table");
        let active = described.replicas().iter().any(|r| {
            r.region_name() == Some(region) && r.replica_status == Some(ReplicaStatus::Active)
        });
        if active {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One PutItem of `{p: key, payload}` (200 bytes) as a raw request.
async fn raw_put(http: &reqwest::Client, url: &str, table: &str, key: &str) {
    let payload = "x".repeat(200);
    let body = format!(
        r#"{{"TableName":"{table}","Item":{{"p":{{"S":"{key}"}},"payload":{{"S":"{payload}"}}}}}}"#
    );
    let answer = http
        .post(url)
        .header("x-amz-target", "DynamoDB_20120810.PutItem")
        .header("content-type", "application/x-amz-json-1.0")
        .body(body)
        .send()
        .await
        .expect("put");
    assert!(answer.status().is_success(), "put: {}", answer.status());
}

/// PutItem at `rate` writes/s, `total` in all, as raw requests (the SDK's own CPU cost would
/// cap the rate on a small machine): 200-byte items, one connection per writer.
async fn paced_raw_puts(endpoint: &str, table: &str, rate: u64, total: u64) {
    let writers = (rate / 100).clamp(4, 256);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(writers as usize)
        .build()
        .expect("an HTTP client");
    let (url, table) = (endpoint.to_string(), table.to_string());
    paced(rate, total, writers, move |n| {
        let (http, url, table) = (http.clone(), url.clone(), table.clone());
        async move { raw_put(&http, &url, &table, &format!("item{n:09}")).await }
    })
    .await;
}

/// PutItem as fast as `writers` connections allow for `duration`, as raw requests; returns
/// how many were acknowledged.
async fn closed_loop_raw_puts(
    endpoint: &str,
    table: &str,
    writers: u64,
    duration: Duration,
) -> u64 {
    let http = reqwest::Client::new();
    let (url, table) = (endpoint.to_string(), table.to_string());
    let done = closed_loop(writers, duration, move |writer, n| {
        let (http, url, table) = (http.clone(), url.clone(), table.clone());
        async move { raw_put(&http, &url, &table, &format!("w{writer}-{n}")).await }
    })
    .await;
    done.len() as u64
}

async fn lag(binary: &Path, rate: u64, seconds: u64, transport: &str, durability: &str) {
    let mut broker = None;
    let mut extra: Vec<String> = vec!["--durability".into(), durability.into()];
    if transport == "kafka" {
        let started = Broker::start().await;
        extra.extend([
            "--replication-transport".into(),
            "kafka".into(),
            "--kafka-brokers".into(),
            started.brokers(),
        ]);
        broker = Some(started);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start(binary, &REGIONS[..2], &extra).await;
    let client = cluster.client(0, Duration::from_secs(30));
    let table = "lag";
    create_table(&client, table).await;
    add_replica(&client, table, REGIONS[1]).await;
    let total = rate * seconds;
    let started = Instant::now();
    paced_raw_puts(&cluster.endpoint(0), table, rate, total).await;
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    // Let the last writes arrive, then read the replica's log.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.stop(0).await;
    cluster.stop(1).await;
    let store = Store::open(StoreConfig::new(cluster.data_dir(1))).expect("open the replica");
    let mut cursor = LogCursor::node(ChangeSeq::ZERO);
    let mut lags = Vec::new();
    loop {
        let records = store
            .read_log(&mut cursor, LogLimits::records(10_000))
            .expect("read the log");
        if records.is_empty() {
            break;
        }
        lags.extend(
            records
                .iter()
                .filter(|r| r.table_name == table && r.cause == CauseKind::Replica)
                .map(|r| {
                    let made = r.stamp.hlc.physical_millis();
                    (made, r.commit_clock.physical_millis().saturating_sub(made))
                }),
        );
    }
    drop(broker);
    // The worst lag of each second of the run, to tell a steady tail from a passing stall.
    let first = lags.iter().map(|(made, _)| *made).min().unwrap_or(0);
    let mut worst_by_second = vec![0u64; usize::try_from(seconds).unwrap_or(0) + 2];
    for (made, lag) in &lags {
        let second = usize::try_from((made - first) / 1000).unwrap_or(usize::MAX);
        if let Some(worst) = worst_by_second.get_mut(second) {
            *worst = (*worst).max(*lag);
        }
    }
    println!("worst lag of each second, ms: {worst_by_second:?}");
    let mut lags: Vec<u64> = lags.into_iter().map(|(_, lag)| lag).collect();
    lags.sort_unstable();
    println!(
        "lag {transport} at {rate} writes/s for {seconds} s (achieved {achieved:.0}/s): {} of {total} writes replicated; p50 {} ms, p99 {} ms, max {} ms",
        lags.len(),
        percentile(&lags, 0.50),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(0),
    );
}

async fn throughput(binary: &Path, seconds: u64, writers: u64, pinned: bool) {
    let cluster = Cluster::start(binary, &REGIONS, &[]).await;
    if pinned {
        // The source region and the load on CPU 0, the replicas on CPU 1: as on separate
        // machines, the replicas' work does not take the source's CPU (the disk stays shared).
        pin(std::process::id(), 0);
        for i in 0..REGIONS.len() {
            let pid = cluster.pid(i).expect("a running node");
            pin(pid, usize::from(i > 0));
        }
    }
    let client = cluster.client(0, Duration::from_secs(30));
    for replicas in 0..=2 {
        let table = format!("throughput{replicas}");
        create_table(&client, &table).await;
        for region in REGIONS.iter().skip(1).take(replicas) {
            add_replica(&client, &table, region).await;
        }
        let source = cluster.pid(0).expect("a running node");
        let cpu_before = cpu_seconds(source);
        let done = closed_loop_raw_puts(
            &cluster.endpoint(0),
            &table,
            writers,
            Duration::from_secs(seconds),
        )
        .await;
        // What the source itself spends per write: on shared cores the replicas' own work
        // lowers the rate, this tells how much of the loss is the source's.
        let source_cpu = cpu_seconds(source)
            .zip(cpu_before)
            .map(|(after, before)| (after - before) / done.max(1) as f64 * 1e6);
        println!(
            "throughput with {replicas} replica(s): {done} writes in {seconds} s = {:.0} writes/s; source CPU {} µs per write",
            done as f64 / seconds as f64,
            source_cpu.map_or("?".to_owned(), |us| format!("{us:.0}")),
        );
        // Let shipping drain before the next round.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Binds every thread of process `pid` to CPU `cpu` (util-linux `taskset`).
fn pin(pid: u32, cpu: usize) {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run taskset (util-linux: apt-get install util-linux): {e}"));
    assert!(
        status.success(),
        "taskset could not pin process {pid} to CPU {cpu}"
    );
}

async fn seed(binary: &Path, items: u64) {
    let cluster = Cluster::start(binary, &REGIONS[..2], &[]).await;
    let client = cluster.client(0, Duration::from_secs(60));
    let table = "seeded";
    create_table(&client, table).await;
    batch_load(&client, table, items, 8, |n| {
        HashMap::from([
            ("p".to_string(), AttributeValue::S(format!("item{n:09}"))),
            ("payload".to_string(), AttributeValue::S("x".repeat(200))),
        ])
    })
    .await;
    println!("loaded {items} items; seeding");
    let started = Instant::now();
    add_replica(&client, table, REGIONS[1]).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seed: {items} items in {secs:.2} s = {:.0} items/s",
        items as f64 / secs
    );
}

fn usage() -> ! {
    eprintln!(
        "usage: replication-bench BINARY lag RATE SECONDS [direct|kafka] [sync|buffer]\n       \
         replication-bench BINARY throughput SECONDS WRITERS [pinned]\n       \
         replication-bench BINARY seed ITEMS"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> u64 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let binary = PathBuf::from(args.first().unwrap_or_else(|| usage()));
    match args.get(1).map(String::as_str) {
        Some("lag") => {
            let transport = args.get(4).map_or("direct", String::as_str);
            let durability = args.get(5).map_or("sync", String::as_str);
            if !["direct", "kafka"].contains(&transport)
                || !["sync", "buffer"].contains(&durability)
            {
                usage();
            }
            lag(&binary, number(2), number(3), transport, durability).await;
        }
        Some("throughput") => {
            let pinned = match args.get(4).map(String::as_str) {
                None => false,
                Some("pinned") => true,
                Some(_) => usage(),
            };
            throughput(&binary, number(2), number(3), pinned).await;
        }
        Some("seed") => seed(&binary, number(2)).await,
        _ => usage(),
    }
}
