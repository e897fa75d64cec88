//! A cluster region on one node (issue 30, first part): every write goes through the region's
//! Kafka logs (tansu here) and is applied from them. A node killed with SIGKILL under
//! conditional increments from 16 writers loses no acknowledged increment and applies none
//! twice; a node that loses its whole data folder gets every table and item back from the
//! logs, the same to the byte; what a cluster region does not support yet is refused in words
//! that say so.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use std::sync::RwLock;
use tidemark_tests::kafka::Broker;
use tidemark_tests::{ChildNode, client_for, wait_until};

use crate::common::{create_table, error_code, n, node_binary, s};

const WRITERS: usize = 16;
const HOT_ITEMS: usize = 4;

fn cluster_args(broker: &Broker, name: &str, durability: &'static str) -> Vec<String> {
    [
        "--cluster",
        name,
        "--kafka-brokers",
        &broker.brokers(),
        "--durability",
        durability,
        "--cluster-partitions",
        "4",
        // tansu reads every partition for every fetch, however short its wait: a longer
        // wait keeps the broker from taking a core from the tests running beside these.
        "--kafka-option",
        "fetch.wait.max.ms=20",
    ]
    .map(String::from)
    .to_vec()
}

async fn start(data: &Path, args: &[String]) -> ChildNode {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ChildNode::start(node_binary(), data, &args).await
}

fn number(value: Option<&AttributeValue>) -> i64 {
    match value {
        Some(AttributeValue::N(text)) => text.parse().unwrap(),
        None => 0,
        other => panic!("not a number: {other:?}"),
    }
}

/// What one writer saw: tokens of the increments acknowledged, and of those whose outcome it
/// never learnt (the node died under them, or was down).
#[derive(Default)]
struct Seen {
    acked: Vec<String>,
    unknown: Vec<String>,
}

/// Increments hot item `item` again and again, each time from the count it reads (strongly
/// consistent), under the condition that the count is still that one, adding a token of its
/// own to the item's set, until `stop`.
async fn increment_until(
    endpoint: Arc<RwLock<String>>,
    writer: usize,
    stop: Arc<AtomicBool>,
    acked_total: Arc<AtomicUsize>,
) -> Seen {
    let mut seen = Seen::default();
    let item = format!("hot{}", writer % HOT_ITEMS);
    for i in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let client = client_for(&endpoint.read().unwrap().clone());
        let read = client
            .get_item()
            .table_name("counters")
            .key("p", s(&item))
            .consistent_read(true)
            .send()
            .await;
        let Ok(read) = read else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let count = number(read.item.as_ref().and_then(|i| i.get("n")));
        let token = format!("w{writer}-{i}");
        let update = client
            .update_item()
            .table_name("counters")
            .key("p", s(&item))
            .update_expression("SET n = if_not_exists(n, :zero) + :one ADD toks :tok")
            .condition_expression("attribute_not_exists(n) OR n = :count")
            .expression_attribute_values(":zero", n("0"))
            .expression_attribute_values(":one", n("1"))
            .expression_attribute_values(":count", n(&count.to_string()))
            .expression_attribute_values(":tok", AttributeValue::Ss(vec![token.clone()]))
            .send()
            .await;
        match update {
            Ok(_) => {
                acked_total.fetch_add(1, Ordering::Relaxed);
                seen.acked.push(token);
            }
            Err(e) if error_code(&e) == "ConditionalCheckFailedException" => {}
            Err(_) => {
                seen.unknown.push(token);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    seen
}

/// The tokens of the increments the writers had acknowledged, and of every increment they
/// sent (acknowledged or not).
async fn tokens_of(
    writers: Vec<tokio::task::JoinHandle<Seen>>,
) -> (HashSet<String>, HashSet<String>) {
    let (mut acked, mut sent) = (HashSet::new(), HashSet::new());
    for writer in writers {
        let seen = writer.await.unwrap();
        sent.extend(seen.unknown);
        sent.extend(seen.acked.iter().cloned());
        acked.extend(seen.acked);
    }
    (acked, sent)
}

/// Hot item `item`'s count and the tokens of the increments applied to it, read strongly;
/// the count must be the number of tokens: no increment lost, none applied twice.
async fn hot_item(client: &aws_sdk_dynamodb::Client, item: usize) -> (i64, HashSet<String>) {
    let got = client
        .get_item()
        .table_name("counters")
        .key("p", s(&format!("hot{item}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let tokens: HashSet<String> = match got.get("toks") {
        Some(AttributeValue::Ss(tokens)) => tokens.iter().cloned().collect(),
        other => panic!("hot{item} has no tokens: {other:?}"),
    };
    let count = number(got.get("n"));
    assert_eq!(
        count,
        i64::try_from(tokens.len()).unwrap(),
        "hot{item}'s count is its number of applied increments: none lost, none applied twice"
    );
    (count, tokens)
}

async fn kill_under_increments(durability: &'static str) {
    let broker = Broker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let args = cluster_args(&broker, &format!("kill-{durability}"), durability);
    let node = start(&data, &args).await;
    create_table(&client_for(&node.endpoint()), "counters", false).await;
    let endpoint = Arc::new(RwLock::new(node.endpoint()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(increment_until(
                endpoint.clone(),
                w,
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), async || acked
            .load(Ordering::Relaxed)
            > 150)
        .await,
        "increments are acknowledged ({})",
        acked.load(Ordering::Relaxed)
    );
    node.kill().await;
    let before_restart = acked.load(Ordering::Relaxed);
    let node = start(&data, &args).await;
    *endpoint.write().unwrap() = node.endpoint();
    assert!(
        wait_until(Duration::from_secs(60), async || {
            acked.load(Ordering::Relaxed) > before_restart + 100
        })
        .await,
        "the restarted node takes increments again"
    );
    stop.store(true, Ordering::Relaxed);
    let (acked_tokens, sent_tokens) = tokens_of(writers).await;
    let client = client_for(&node.endpoint());
    let mut applied = HashSet::new();
    for item in 0..HOT_ITEMS {
        let (_, tokens) = hot_item(&client, item).await;
        applied.extend(tokens);
    }
    let lost: Vec<_> = acked_tokens.difference(&applied).collect();
    assert!(
        lost.is_empty(),
        "{durability}: acknowledged increments lost: {lost:?}"
    );
    let invented: Vec<_> = applied.difference(&sent_tokens).collect();
    assert!(invented.is_empty(), "increments nobody sent: {invented:?}");
    assert!(
        acked_tokens.len() > 250,
        "the load ran ({})",
        acked_tokens.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_node_killed_under_conditional_increments_loses_none_and_repeats_none() {
    kill_under_increments("sync").await;
    kill_under_increments("buffer").await;
}

/// Every item of `table`, by key, with every attribute.
async fn scan_all(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> BTreeMap<String, std::collections::HashMap<String, AttributeValue>> {
    let mut all = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items.unwrap_or_default() {
            let key = match &item["p"] {
                AttributeValue::S(key) => key.clone(),
                other => panic!("{other:?}"),
            };
            all.insert(key, item);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_node_that_loses_its_folder_gets_every_table_and_item_back_from_the_log() {
    let broker = Broker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let args = cluster_args(&broker, "folder-lost", "buffer");
    let node = start(&data, &args).await;
    let client = client_for(&node.endpoint());
    create_table(&client, "kept", false).await;
    create_table(&client, "dropped", false).await;
    for i in 0..120 {
        client
            .put_item()
            .table_name("kept")
            .item("p", s(&format!("k{i}")))
            .item("v", n(&i.to_string()))
            .send()
            .await
            .unwrap();
    }
    for i in (0..120).step_by(3) {
        client
            .update_item()
            .table_name("kept")
            .key("p", s(&format!("k{i}")))
            .update_expression("SET v = v + :ten, tag = :t")
            .expression_attribute_values(":ten", n("10"))
            .expression_attribute_values(":t", s("updated"))
            .send()
            .await
            .unwrap();
    }
    for i in (0..120).step_by(4) {
        client
            .delete_item()
            .table_name("kept")
            .key("p", s(&format!("k{i}")))
            .send()
            .await
            .unwrap();
    }
    // A batch over several partitions, split and answered as one.
    let batch = client
        .batch_write_item()
        .request_items(
            "kept",
            (0..20)
                .map(|i| {
                    aws_sdk_dynamodb::types::WriteRequest::builder()
                        .put_request(
                            aws_sdk_dynamodb::types::PutRequest::builder()
                                .item("p", s(&format!("b{i}")))
                                .item("v", n("1"))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect(),
        )
        .send()
        .await
        .unwrap();
    assert!(batch.unprocessed_items.unwrap_or_default().is_empty());
    // A transaction in one partition is applied; one over several is refused, writing nothing.
    let put = |key: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name("kept")
                    .item("p", s(key))
                    .item("v", n("7"))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    client
        .transact_write_items()
        .transact_items(put("t-one"))
        .send()
        .await
        .unwrap();
    let spanning = client
        .transact_write_items()
        .set_transact_items(Some((0..8).map(|i| put(&format!("t-many{i}"))).collect()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&spanning), "ValidationException");
    assert!(
        format!("{spanning:?}").contains("more than one partition"),
        "{spanning:?}"
    );
    let backup = client
        .create_backup()
        .table_name("kept")
        .backup_name("b")
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{backup:?}").contains("not supported on a cluster region yet"),
        "{backup:?}"
    );
    // An index added through the tables log; a write whose index key has the wrong type is
    // refused where it arrives, as a single node refuses it.
    client
        .update_table()
        .table_name("kept")
        .attribute_definitions(crate::common::attribute(
            "g",
            aws_sdk_dynamodb::types::ScalarAttributeType::S,
        ))
        .global_secondary_index_updates(crate::common::gsi_create("by_g", "g"))
        .send()
        .await
        .unwrap();
    let wrong_type = client
        .put_item()
        .table_name("kept")
        .item("p", s("g-wrong"))
        .item("g", n("1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&wrong_type),
        "ValidationException",
        "{wrong_type:?}"
    );
    client
        .put_item()
        .table_name("kept")
        .item("p", s("g-right"))
        .item("g", s("one"))
        .send()
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), async || {
            client
                .query()
                .table_name("kept")
                .index_name("by_g")
                .key_condition_expression("g = :g")
                .expression_attribute_values(":g", s("one"))
                .send()
                .await
                .is_ok_and(|q| q.count == 1)
        })
        .await,
        "the index is built and kept"
    );
    client
        .delete_table()
        .table_name("dropped")
        .send()
        .await
        .unwrap();
    let before = scan_all(&client, "kept").await;
    assert_eq!(before.len(), 120 - 30 + 20 + 1 + 1);
    let table_id = client
        .describe_table()
        .table_name("kept")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_id;

    node.kill().await;
    std::fs::remove_dir_all(&data).unwrap();
    let node = start(&data, &args).await;
    let client = client_for(&node.endpoint());
    assert_eq!(
        scan_all(&client, "kept").await,
        before,
        "every item is back, as it was"
    );
    let tables = client
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names
        .unwrap();
    assert_eq!(tables, ["kept"], "the dropped table stays dropped");
    let described = client
        .describe_table()
        .table_name("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.table.unwrap().table_id,
        table_id,
        "the same table"
    );
    // And it takes writes again, after where the log stands.
    client
        .put_item()
        .table_name("kept")
        .item("p", s("after"))
        .send()
        .await
        .unwrap();
    assert_eq!(scan_all(&client, "kept").await.len(), before.len() + 1);
}

/// Sends `signal` (`-STOP`, `-CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Every cell (key, stamp, live) of `table` in the store in `data`, opened once its node has
/// stopped.
fn cells_of(data: &Path, table: &str) -> Vec<(Vec<u8>, String, bool)> {
    let engine = tidemark_core::Engine::open(tidemark_core::StoreConfig::new(data)).unwrap();
    let snapshot = engine.replication.snapshot_table(table).unwrap();
    let mut cells = Vec::new();
    let mut after = None;
    loop {
        let page = (engine.replication)
            .cell_stamp_page(&snapshot, after, 1000)
            .unwrap();
        cells.extend((page.cells.into_iter()).map(|c| (c.key, c.stamp.to_string(), c.live)));
        after = page.resume_after;
        if after.is_none() {
            return cells;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_keep_every_acknowledged_increment_through_kills_a_lost_folder_and_a_pause() {
    let broker = Broker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let args = cluster_args(&broker, "three", "buffer");
    let data: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("node{i}")))
        .collect();
    let mut nodes = Vec::new();
    for folder in &data {
        nodes.push(Some(start(folder, &args).await));
    }
    let endpoints: Vec<Arc<RwLock<String>>> = (nodes.iter().flatten())
        .map(|node| Arc::new(RwLock::new(node.endpoint())))
        .collect();
    let first = client_for(&endpoints[0].read().unwrap());
    create_table(&first, "counters", false).await;
    // Every node knows the table at once: one that does not know it yet applies the tables
    // log to its end before it says the table does not exist.
    for endpoint in endpoints.iter().skip(1) {
        let client = client_for(&endpoint.read().unwrap());
        (client.describe_table().table_name("counters").send().await)
            .expect("every node knows the table as soon as it is made");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(increment_until(
                endpoints[w % 3].clone(),
                w,
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect();
    let more = async |by: usize| {
        let from = acked.load(Ordering::Relaxed);
        assert!(
            wait_until(Duration::from_secs(90), async || {
                acked.load(Ordering::Relaxed) >= from + by
            })
            .await,
            "increments go on ({} since {from})",
            acked.load(Ordering::Relaxed) - from
        );
    };
    let status_of = async |endpoint: &str| -> serde_json::Value {
        reqwest::get(format!("{endpoint}/admin/cluster"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    let live = |status: &serde_json::Value| -> Vec<String> {
        (status["Members"].as_array().into_iter().flatten())
            .filter(|m| m["Live"] == serde_json::Value::Bool(true))
            .map(|m| m["Node"].as_str().unwrap().to_string())
            .collect()
    };
    let first_endpoint = endpoints[0].read().unwrap().clone();
    assert!(
        wait_until(Duration::from_secs(10), async || {
            live(&status_of(&first_endpoint).await).len() == 3
        })
        .await,
        "every node hears the other two"
    );
    let status = status_of(&first_endpoint).await;
    assert!(
        (status["Logs"].as_array().unwrap().iter())
            .any(|log| log["Table"] == "counters" && log["Lag"].is_u64()),
        "{status}"
    );
    more(150).await;
    // A node killed, and back on its folder.
    let killed = endpoints[1].read().unwrap().clone();
    nodes[1].take().unwrap().kill().await;
    let killed_at = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(15), async || {
            !live(&status_of(&first_endpoint).await).contains(&killed)
        })
        .await,
        "a killed node leaves the members"
    );
    let noticed = killed_at.elapsed();
    assert!(
        noticed >= Duration::from_secs(4),
        "not before the session timeout: {noticed:?}"
    );
    more(60).await;
    nodes[1] = Some(start(&data[1], &args).await);
    *endpoints[1].write().unwrap() = nodes[1].as_ref().unwrap().endpoint();
    more(100).await;
    // A node killed, and back with an empty folder: it rebuilds from the log.
    nodes[2].take().unwrap().kill().await;
    std::fs::remove_dir_all(&data[2]).unwrap();
    nodes[2] = Some(start(&data[2], &args).await);
    *endpoints[2].write().unwrap() = nodes[2].as_ref().unwrap().endpoint();
    more(100).await;
    // A node paused past any timeout, then let go: what it answers afterwards agrees with
    // what the others did meanwhile.
    let paused = nodes[0].as_ref().unwrap().pid().unwrap();
    signal(paused, "-STOP");
    more(60).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(paused, "-CONT");
    more(100).await;
    stop.store(true, Ordering::Relaxed);
    let (acked_tokens, sent_tokens) = tokens_of(writers).await;
    let mut copies = Vec::new();
    for endpoint in &endpoints {
        let client = client_for(&endpoint.read().unwrap());
        let mut items = Vec::new();
        for item in 0..HOT_ITEMS {
            let (count, tokens) = hot_item(&client, item).await;
            let lost: Vec<_> = acked_tokens
                .iter()
                .filter(|t| t.starts_with('w') && !tokens.contains(*t) && token_item(t) == item)
                .collect();
            assert!(lost.is_empty(), "acknowledged increments lost: {lost:?}");
            let invented: Vec<_> = tokens.difference(&sent_tokens).collect();
            assert!(invented.is_empty(), "increments nobody sent: {invented:?}");
            items.push((count, tokens));
        }
        copies.push(items);
    }
    assert!(
        copies.windows(2).all(|w| w[0] == w[1]),
        "every node reads the same items"
    );
    for node in nodes.into_iter().flatten() {
        assert!(node.terminate().await.success());
    }
    let cells: Vec<_> = data.iter().map(|d| cells_of(d, "counters")).collect();
    assert_eq!(cells[0].len(), HOT_ITEMS);
    assert!(
        cells.windows(2).all(|w| w[0] == w[1]),
        "every copy holds the same cells with the same stamps: {cells:?}"
    );
}

/// The hot item writer token `t` (`w<writer>-<i>`) increments.
fn token_item(token: &str) -> usize {
    let writer: usize = (token.trim_start_matches('w').split('-').next())
        .and_then(|w| w.parse().ok())
        .unwrap();
    writer % HOT_ITEMS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ttl_expiry_goes_through_the_log_and_every_copy_deletes_the_same_items() {
    use aws_sdk_dynamodb::types::StreamViewType;
    let broker = Broker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = cluster_args(&broker, "expiry", "buffer");
    args.extend(["--ttl-period".to_string(), "0.2".to_string()]);
    let mut nodes = Vec::new();
    for i in 0..2 {
        nodes.push(start(&dir.path().join(format!("node{i}")), &args).await);
    }
    let clients: Vec<_> = nodes.iter().map(|n| client_for(&n.endpoint())).collect();
    let arn =
        crate::common::create_stream_table(&clients[0], "expiring", StreamViewType::OldImage).await;
    crate::common::enable_ttl(&clients[0], "expiring", "ttl").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The second node knows the table at once: a table it does not know yet is looked for in
    // the tables log before it is said not to exist.
    (clients[1]
        .describe_table()
        .table_name("expiring")
        .send()
        .await)
        .expect("the other node knows the table as soon as it is made");
    assert!(
        wait_until(Duration::from_secs(20), async || {
            clients[1]
                .describe_time_to_live()
                .table_name("expiring")
                .send()
                .await
                .is_ok_and(|d| {
                    d.time_to_live_description
                        .is_some_and(|t| t.attribute_name.is_some())
                })
        })
        .await
    );
    for i in 0..40 {
        let expiry = if i % 4 == 0 { now + 3600 } else { now - 10 };
        clients[1]
            .put_item()
            .table_name("expiring")
            .item("p", s(&format!("k{i}")))
            .item("ttl", n(&expiry.to_string()))
            .send()
            .await
            .unwrap();
    }
    for client in &clients {
        assert!(
            wait_until(Duration::from_secs(30), async || {
                scan_all(client, "expiring").await.len() == 10
            })
            .await,
            "every copy deletes the expired items"
        );
    }
    let kept: Vec<_> = scan_all(&clients[0], "expiring")
        .await
        .into_keys()
        .collect();
    assert!(
        kept.iter()
            .all(|k| k.trim_start_matches('k').parse::<u32>().unwrap() % 4 == 0)
    );
    // Each copy's stream has one service REMOVE per expired item.
    for node in &nodes {
        let streams = tidemark_tests::streams_client_for(&node.endpoint());
        let arn = match node.endpoint() == nodes[0].endpoint() {
            true => arn.clone(),
            false => clients[1]
                .describe_table()
                .table_name("expiring")
                .send()
                .await
                .unwrap()
                .table
                .unwrap()
                .latest_stream_arn
                .unwrap(),
        };
        let removes: Vec<_> = crate::common::read_stream(&streams, &arn)
            .await
            .into_iter()
            .filter(|(_, r)| crate::common::event_name(r) == "REMOVE")
            .collect();
        assert_eq!(removes.len(), 30, "{}", node.endpoint());
        assert!(
            removes.iter().all(|(_, r)| {
                r.user_identity
                    .as_ref()
                    .is_some_and(|u| u.principal_id.as_deref() == Some("dynamodb.amazonaws.com"))
            }),
            "expiry is the service's delete on every copy"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restart_under_writes_loses_nothing_acknowledged_and_the_node_goes_on() {
    let mut broker = Broker::start().await;
    assert!(
        broker.is_local(),
        "this scenario restarts the broker: run it with tansu, without KAFKA_BROKERS"
    );
    let dir = tempfile::tempdir().unwrap();
    let args = cluster_args(&broker, "broker-restart", "sync");
    let node = start(&dir.path().join("node"), &args).await;
    let client = client_for(&node.endpoint());
    create_table(&client, "kept", false).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut acked, mut unknown) = (Vec::new(), 0);
                for i in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{w}-{i}");
                    match client
                        .put_item()
                        .table_name("kept")
                        .item("p", s(&key))
                        .send()
                        .await
                    {
                        Ok(_) => acked.push(key),
                        Err(_) => unknown += 1,
                    }
                }
                (acked, unknown)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.unwrap().0);
    }
    let after_restart = client
        .put_item()
        .table_name("kept")
        .item("p", s("after"))
        .send()
        .await;
    assert!(
        after_restart.is_ok(),
        "the node takes writes after the broker is back: {after_restart:?}"
    );
    let stored = scan_all(&client, "kept").await;
    let lost: Vec<_> = acked.iter().filter(|k| !stored.contains_key(*k)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(acked.len() > 20, "the load ran ({})", acked.len());
}
