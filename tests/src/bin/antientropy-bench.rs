//! Anti-entropy benchmark, for docs/benchmarks.md. Two regions (the `tidemark` binary given,
//! release build, child processes linked through loopback proxies as in the tests) hold a
//! global table of ITEMS items (200-byte payloads); then `POST /admin/replicas/verify` (what
//! `tidemark replicas verify` calls) runs twice in the first region:
//!
//! - at rest, the replicas the same;
//! - after CHANGED items were rewritten in the second region's data folder while its node was
//!   stopped, as replicated writes (so nothing ships them: only anti-entropy can find them).
//!
//! For each it prints the wall time, the CPU seconds each node used, the bytes of the
//! messages exchanged and what the report counted. Usage:
//! `antientropy-bench BINARY ITEMS CHANGED`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReplicaStatus};
use tidemark_core::model::Item;
use tidemark_core::replication::RemoteChange;
use tidemark_core::{Engine, HlcTimestamp, Stamp, StoreConfig};
use tidemark_tests::cluster::{Cluster, replica_create};
use tidemark_tests::cpu_seconds;
use tidemark_tests::load::{batch_load, keyed_table};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const TABLE: &str = "compared";

fn item_key(n: u64) -> String {
    format!("item{n:09}")
}

/// Makes the table global with the second region and waits until its replica is ACTIVE.
async fn add_replica(cluster: &Cluster) {
    let client = cluster.client(0, Duration::from_secs(60));
    client
        .update_table()
        .table_name(TABLE)
        .replica_updates(replica_create(REGIONS[1]))
        .send()
        .await
        .expect("add a replica");
    loop {
        let described = client
            .describe_table()
            .table_name(TABLE)
            .send()
            .await
            .expect("describe")
            .table
            .expect("table");
        let active = described.replicas().iter().any(|r| {
            r.region_name() == Some(REGIONS[1]) && r.replica_status == Some(ReplicaStatus::Active)
        });
        if active {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rewrites `changed` items in the stopped region's data folder `dir` with newer stamps.
fn diverge(dir: &Path, changed: u64) {
    let mut config = StoreConfig::new(dir);
    config.region = REGIONS[1].into();
    let engine = Engine::open(config).expect("open the stopped region's store");
    let now = engine.store.clock().now_millis();
    let changes: Vec<RemoteChange> = (0..changed)
        .map(|n| {
            let keys: Item = [(
                "p".to_string(),
                tidemark_core::model::AttributeValue::S(item_key(n * 7)),
            )]
            .into();
            let mut image = keys.clone();
            image.insert(
                "payload".into(),
                tidemark_core::model::AttributeValue::S("y".repeat(200)),
            );
            RemoteChange {
                table_name: TABLE.into(),
                keys,
                new_image: Some(image),
                stamp: Stamp {
                    hlc: HlcTimestamp((now << 16) + n),
                    region: REGIONS[1].into(),
                },
            }
        })
        .collect();
    for chunk in changes.chunks(5_000) {
        engine
            .replication
            .apply_remote_batch(chunk.to_vec())
            .expect("applied");
    }
    engine.store.persist().expect("persisted");
}

/// Runs one verification in the first region and prints what it cost.
async fn verify(cluster: &Cluster, what: &str) {
    let pids = [cluster.pid(0), cluster.pid(1)];
    let cpu = || pids.map(|pid| pid.and_then(cpu_seconds).unwrap_or(0.0));
    let before = cpu();
    let started = Instant::now();
    let report: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/admin/replicas/verify", cluster.endpoint(0)))
        .json(&serde_json::json!({ "TableName": TABLE }))
        .send()
        .await
        .expect("verify answers")
        .json()
        .await
        .expect("a report");
    let secs = started.elapsed().as_secs_f64();
    let after = cpu();
    let [here, there] =
        [0, 1].map(|i| after.get(i).unwrap_or(&0.0) - before.get(i).unwrap_or(&0.0));
    let peer = report.pointer("/Regions/0").cloned().unwrap_or_default();
    let field = |name: &str| peer.get(name).cloned().unwrap_or_default();
    assert!(field("Error").is_null(), "verify failed: {report}");
    println!(
        "{what}: {secs:.2} s; CPU {:.2} s here, {:.2} s in the peer; {} bytes exchanged; \
         {} cells compared, {} of {} buckets ({} narrowed down and listed) and {} cells \
         differed, {} repaired here, {} there",
        here,
        there,
        field("BytesExchanged"),
        field("CellsCompared"),
        field("BucketsDiffering"),
        field("Buckets"),
        field("BucketsListed"),
        field("CellsDiffering"),
        field("RepairedHere"),
        field("RepairedThere"),
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: antientropy-bench BINARY ITEMS CHANGED");
        std::process::exit(2)
    };
    let binary = PathBuf::from(args.first().unwrap_or_else(|| usage()));
    let number = |i: usize| -> u64 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let (items, changed) = (number(1), number(2));
    let mut cluster = Cluster::start(
        &binary,
        &REGIONS,
        &["--durability", "buffer", "--anti-entropy-interval", "0"],
    )
    .await;
    let client = cluster.client(0, Duration::from_secs(60));
    keyed_table(&client, TABLE)
        .send()
        .await
        .expect("create table");
    batch_load(&client, TABLE, items, 8, |n| {
        HashMap::from([
            ("p".to_string(), AttributeValue::S(item_key(n))),
            ("payload".to_string(), AttributeValue::S("x".repeat(200))),
        ])
    })
    .await;
    add_replica(&cluster).await;
    // A few heartbeats: each region hears up to where the other has delivered everything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    verify(&cluster, &format!("at rest, {items} items")).await;

    cluster.stop(1).await;
    diverge(&cluster.data_dir(1), changed);
    cluster.restart(1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    verify(&cluster, &format!("repairing {changed} items")).await;
    verify(&cluster, "after the repair").await;
}
