//! The cost of SigV4 authentication, for docs/benchmarks.md: two nodes of the `tidemark`
//! binary given (release build) as child processes, one without keys and one with
//! `--credentials`, driven alike by AWS SDK clients (which sign every request either way, so
//! only the node's check differs).
//!
//! `auth-bench BINARY [SECONDS] [CONNECTIONS]` (defaults 10 s, 16): for GetItem and then
//! PutItem, runs SECONDS of load on the node without keys, then on the node with keys, twice
//! over (off, on, off, on), and prints each phase's requests per second and the node's CPU
//! time per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use tidemark_tests::load::keyed_table;
use tidemark_tests::{ChildNode, TEST_KEY, client_for, cpu_seconds};

const ITEMS: u64 = 10_000;

fn key(n: u64) -> AttributeValue {
    AttributeValue::S(format!("item-{:06}", n % ITEMS))
}

async fn prepare(client: &Client) {
    keyed_table(client, "bench")
        .send()
        .await
        .expect("create table");
    tidemark_tests::load::batch_load(client, "bench", ITEMS, 8, |n| {
        [
            ("p".to_string(), key(n)),
            ("d".to_string(), AttributeValue::S("x".repeat(100))),
        ]
        .into()
    })
    .await;
}

/// Runs `seconds` of `workload` from `connections` clients; returns requests per second and
/// the node's CPU microseconds per request.
async fn phase(
    node: &ChildNode,
    workload: &'static str,
    seconds: u64,
    connections: u64,
) -> (f64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pid = node.pid().expect("node pid");
    let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let client = client_for(&node.endpoint());
            let (done, stop) = (done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = c * 7_919;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    match workload {
                        "GetItem" => {
                            let answer = client
                                .get_item()
                                .table_name("bench")
                                .key("p", key(n))
                                .send()
                                .await;
                            answer.unwrap_or_else(|e| panic!("{workload}: {e:?}"));
                        }
                        _ => {
                            let answer = client
                                .put_item()
                                .table_name("bench")
                                .item("p", key(n))
                                .item("d", AttributeValue::S(format!("v{n}")))
                                .send()
                                .await;
                            answer.unwrap_or_else(|e| panic!("{workload}: {e:?}"));
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = done.load(Ordering::Relaxed) as f64;
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    (requests / elapsed, cpu * 1e6 / requests)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(binary) = args.get(1) else {
        eprintln!("usage: auth-bench BINARY [SECONDS] [CONNECTIONS]");
        std::process::exit(2);
    };
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let connections: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir().expect("temporary folder");
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{} {}\n", TEST_KEY.0, TEST_KEY.1)).expect("keys file");
    let binary = std::path::Path::new(binary);
    let open = ChildNode::start(binary, &dir.path().join("open"), &[]).await;
    let keys_arg = keys.to_str().expect("path").to_string();
    let signed = ChildNode::start(
        binary,
        &dir.path().join("signed"),
        &["--credentials", &keys_arg],
    )
    .await;
    for node in [&open, &signed] {
        prepare(&client_for(&node.endpoint())).await;
    }
    for workload in ["GetItem", "PutItem"] {
        for round in 1..=2 {
            for (name, node) in [("off", &open), ("on", &signed)] {
                let (rate, cpu) = phase(node, workload, seconds, connections).await;
                println!(
                    "{workload} round {round}, authentication {name}: {rate:.0} requests/s, \
                     {cpu:.1} µs of node CPU per request"
                );
            }
        }
    }
}
