//! Global tables: separate regional nodes (child processes, every link through a fault
//! proxy) replicating a table last-writer-wins. The convergence test writes in every region
//! with every kind of write while links are cut and healed and nodes are killed with SIGKILL
//! and restarted, all driven by one seed (printed, and taken from `TIDEMARK_SEED` to replay
//! a run); then every region must hold exactly the same cells, stamps and tombstones
//! included, each the newest write of its item anywhere, and each region's stream, replayed
//! from TRIM_HORIZON, must rebuild that region's table.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, PutRequest, StreamViewType, TransactWriteItem, WriteRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidemark_core::changes::{ChangeSeq, LogCursor, LogLimits};
use tidemark_core::replication::RemoteChange;
use tidemark_core::retention::HoldName;
use tidemark_core::{ChangeKind, Store, StoreConfig};
use tidemark_tests::cluster::{Cluster, client_with_timeout};
use tidemark_tests::kafka::Broker;
use tidemark_tests::{streams_client_for, wait_until};
use tokio::sync::watch;

use tidemark_tests::cluster::replica_create;

use crate::common::{
    admin_json, create_stream_table, create_table, describe, enable_ttl, get_consistent, image, n,
    node_binary, read_stream, record_key, s, seed, stored_cells, wait_for_group,
};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const KEYS: u64 = 40;
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Creates `table` in region 0 (stream, TTL on `exp`) and makes it global across every
/// region, waiting until every replica is ACTIVE.
pub(crate) async fn create_global_table(cluster: &Cluster, table: &str) {
    let client = cluster.client(0, Duration::from_secs(30));
    create_stream_table(&client, table, StreamViewType::NewAndOldImages).await;
    enable_ttl(&client, table, "exp").await;
    let mut update = client.update_table().table_name(table);
    for i in 1..cluster.len() {
        update = update.replica_updates(replica_create(cluster.region(i)));
    }
    update.send().await.expect("add replicas");
    let all: Vec<usize> = (0..cluster.len()).collect();
    wait_for_group(cluster, table, &all).await;
}

/// Creates `table` in region 0 and makes it global with region 1, waiting until both
/// replicas are ACTIVE.
async fn create_pair_table(cluster: &Cluster, table: &str) {
    let client = cluster.client(0, OP_TIMEOUT);
    create_table(&client, table, false).await;
    client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create(REGIONS[1]))
        .send()
        .await
        .expect("add a replica");
    wait_for_group(cluster, table, &[0, 1]).await;
}

/// One writer in one region: a seeded mix of every kind of write on a small key space, until
/// `stop`. Failures (a cut link, a killed node) are expected and ignored.
async fn write(
    table: String,
    region: String,
    mut endpoint: watch::Receiver<String>,
    seed: u64,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = client_with_timeout(&endpoint.borrow_and_update(), &region, OP_TIMEOUT);
    let mut counter = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if endpoint.has_changed().unwrap_or(false) {
            client = client_with_timeout(&endpoint.borrow_and_update(), &region, OP_TIMEOUT);
        }
        counter += 1;
        let key = |rng: &mut StdRng| format!("k{}", rng.random_range(0..KEYS));
        let value = s(&format!("{region}-{seed}-{counter}"));
        let ok = match rng.random_range(0..100) {
            0..30 => client
                .put_item()
                .table_name(&table)
                .item("p", s(&key(&mut rng)))
                .item("v", value)
                .send()
                .await
                .is_ok(),
            30..50 => client
                .update_item()
                .table_name(&table)
                .key("p", s(&key(&mut rng)))
                .update_expression("SET n = if_not_exists(n, :zero) + :one, v = :v")
                .expression_attribute_values(":zero", n("0"))
                .expression_attribute_values(":one", n("1"))
                .expression_attribute_values(":v", value)
                .send()
                .await
                .is_ok(),
            50..65 => client
                .delete_item()
                .table_name(&table)
                .key("p", s(&key(&mut rng)))
                .send()
                .await
                .is_ok(),
            65..75 => client
                .put_item()
                .table_name(&table)
                .item("p", s(&key(&mut rng)))
                .item("v", value)
                .condition_expression("attribute_not_exists(p)")
                .send()
                .await
                .is_ok(),
            75..85 => {
                let (a, b) = (key(&mut rng), key(&mut rng));
                let put = |k: &str| {
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(&table)
                                .item("p", s(k))
                                .item("v", value.clone())
                                .build()
                                .unwrap(),
                        )
                        .build()
                };
                let items = match a == b {
                    true => vec![put(&a)],
                    false => vec![put(&a), put(&b)],
                };
                client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await
                    .is_ok()
            }
            85..95 => {
                let mut keys: Vec<String> = (0..3).map(|_| key(&mut rng)).collect();
                keys.sort();
                keys.dedup();
                let requests = keys
                    .iter()
                    .map(|k| match rng.random_bool(0.7) {
                        true => WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .item("p", s(k))
                                    .item("v", value.clone())
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                        false => WriteRequest::builder()
                            .delete_request(
                                DeleteRequest::builder().key("p", s(k)).build().unwrap(),
                            )
                            .build(),
                    })
                    .collect();
                client
                    .batch_write_item()
                    .request_items(&table, requests)
                    .send()
                    .await
                    .is_ok()
            }
            _ => {
                // Expired already: the region's TTL sweeper deletes it shortly.
                let past = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    - 10;
                client
                    .put_item()
                    .table_name(&table)
                    .item("p", s(&key(&mut rng)))
                    .item("v", value)
                    .item("exp", n(&past.to_string()))
                    .send()
                    .await
                    .is_ok()
            }
        };
        if ok {
            acked.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..4))).await;
    }
}

/// An item as comparable text.
fn canonical(item: &HashMap<String, AttributeValue>) -> String {
    format!("{:?}", item.iter().collect::<BTreeMap<_, _>>())
}

/// Region `i`'s table by key, read with a consistent scan.
pub(crate) async fn scan(
    cluster: &Cluster,
    i: usize,
    table: &str,
) -> Option<BTreeMap<String, String>> {
    let client = cluster.client(i, Duration::from_secs(10));
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .ok()?;
        for item in page.items() {
            let Some(AttributeValue::S(p)) = item.get("p") else {
                panic!("an item without its key: {item:?}");
            };
            out.insert(p.clone(), canonical(item));
        }
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Some(out),
        }
    }
}

/// Region `i`'s table rebuilt from its stream, read from TRIM_HORIZON.
async fn replay_stream(cluster: &Cluster, i: usize, table: &str) -> BTreeMap<String, String> {
    let described = describe(&cluster.client(i, Duration::from_secs(10)), table).await;
    let arn = described
        .latest_stream_arn
        .expect("every replica has a stream");
    let streams = streams_client_for(&cluster.endpoint(i));
    let mut table = BTreeMap::new();
    for (_, record) in read_stream(&streams, &arn).await {
        let key = record_key(&record);
        let change = record.dynamodb.as_ref().unwrap();
        match record.event_name.as_ref().unwrap().as_str() {
            "INSERT" | "MODIFY" => {
                let new = image(change.new_image.as_ref().expect("NewImage"));
                table.insert(key, canonical(&new));
            }
            "REMOVE" => {
                assert!(
                    change.old_image.is_some(),
                    "a REMOVE record shows what it removed"
                );
                table.remove(&key);
            }
            other => panic!("event {other}"),
        }
    }
    table
}

/// Every cell of `table` in a stopped region's store (tombstones included), and every
/// visible record of its log.
fn cells_and_log(dir: &Path, table: &str) -> (Vec<RemoteChange>, Vec<RemoteChange>) {
    let cells = stored_cells(dir, table);
    let store = Store::open(StoreConfig::new(dir)).expect("open a stopped region's store");
    // The tombstones other regions may still need are held, and the hold moved on once they
    // all reported past the start.
    let table_id = store.table_id(table).unwrap();
    let inbound = store
        .hold(&HoldName::Inbound { table_id })
        .expect("a global table's inbound hold");
    let first = store
        .read_log(
            &mut LogCursor::table(table_id, ChangeSeq::ZERO),
            LogLimits::records(1),
        )
        .unwrap();
    assert!(
        first.first().is_some_and(|r| inbound.from > r.seq),
        "the inbound hold moved on from the table's first change (at {})",
        inbound.from
    );
    let mut cursor = LogCursor::node(ChangeSeq::ZERO);
    let mut log = Vec::new();
    loop {
        let records = store
            .read_log(&mut cursor, LogLimits::records(10_000))
            .unwrap();
        if records.is_empty() {
            break;
        }
        log.extend(
            records
                .into_iter()
                .filter(|r| r.table_name == table)
                .map(|r| RemoteChange {
                    table_name: r.table_name,
                    keys: r.keys,
                    new_image: match r.kind {
                        ChangeKind::Remove => None,
                        _ => r.new_image,
                    },
                    stamp: r.stamp,
                }),
        );
    }
    (cells, log)
}

/// The clients of a convergence run: two writers per region, each a seeded [`write`] loop.
pub(crate) struct Workload {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    /// Where each region's writers send, by region index: changed when its node restarts.
    endpoints: Vec<watch::Sender<String>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

impl Workload {
    /// Starts two writers in every region of `cluster`, on `table`.
    pub(crate) fn start(cluster: &Cluster, table: &str, seed: u64) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let mut endpoints = Vec::new();
        let mut writers = Vec::new();
        for i in 0..cluster.len() {
            let (tx, rx) = watch::channel(cluster.endpoint(i));
            endpoints.push(tx);
            for w in 0..2u64 {
                writers.push(tokio::spawn(write(
                    table.to_string(),
                    cluster.region(i).to_string(),
                    rx.clone(),
                    seed.wrapping_add(i as u64 * 10 + w),
                    stop.clone(),
                    acked.clone(),
                )));
            }
        }
        Workload {
            stop,
            acked,
            endpoints,
            writers,
        }
    }

    /// Points region `i`'s writers at its node's current address (after a restart).
    pub(crate) fn follow(&self, cluster: &Cluster, i: usize) {
        self.endpoints[i].send_replace(cluster.endpoint(i));
    }

    /// Stops every writer; the number of writes acknowledged.
    pub(crate) async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for writer in self.writers {
            writer.await.unwrap();
        }
        self.acked.load(Ordering::Relaxed)
    }
}

/// The faults a [`chaos`] run made.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) cuts: u32,
    pub(crate) kills: u32,
    pub(crate) broker_restarts: u32,
}

/// For `how_long`, every few hundred milliseconds: a link between two of `regions` cut or
/// healed, or one of them killed with SIGKILL and restarted (its writers following it), or a
/// local `broker` restarted.
pub(crate) async fn chaos(
    cluster: &mut Cluster,
    workload: &Workload,
    rng: &mut StdRng,
    regions: &[usize],
    how_long: Duration,
    mut broker: Option<&mut Broker>,
    faults: &mut Faults,
) {
    let links: Vec<(usize, usize)> = cluster
        .link_pairs()
        .into_iter()
        .filter(|(from, to)| regions.contains(from) && regions.contains(to))
        .collect();
    let deadline = tokio::time::Instant::now() + how_long;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..800))).await;
        let (from, to) = links[rng.random_range(0..links.len())];
        match rng.random_range(0..100) {
            0..45 => {
                cluster.link(from, to).cut();
                faults.cuts += 1;
            }
            45..80 => cluster.link(from, to).heal(),
            80..85 if broker.as_ref().is_some_and(|b| b.is_local()) => {
                if let Some(broker) = broker.as_deref_mut() {
                    broker.restart().await;
                    faults.broker_restarts += 1;
                }
            }
            _ => {
                let victim = regions[rng.random_range(0..regions.len())];
                cluster.kill(victim).await;
                faults.kills += 1;
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
                cluster.restart(victim).await;
                workload.follow(cluster, victim);
            }
        }
    }
}

/// Once the writes have stopped and the links are healed: every region of `members` ends
/// with the same items, each region's stream rebuilds its table, and (the members stopped)
/// every cell, stamps and tombstones included, is the same everywhere and is the newest write
/// of its item that any member's log holds. Returns the items they hold.
pub(crate) async fn assert_converged(
    cluster: &mut Cluster,
    members: &[usize],
    table: &str,
    seed: u64,
) -> BTreeMap<String, String> {
    let mut last = Vec::new();
    let converged = wait_until(Duration::from_secs(90), async || {
        last.clear();
        for &i in members {
            match scan(cluster, i, table).await {
                Some(items) => last.push(items),
                None => return false,
            }
        }
        last.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    if !converged {
        for &i in members {
            let status = match reqwest::get(format!("{}/admin/replicas", cluster.endpoint(i))).await
            {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            eprintln!("region {} replication: {status}", cluster.region(i));
        }
        for key in last[0].keys() {
            let values: Vec<Option<&String>> = last.iter().map(|items| items.get(key)).collect();
            if values.windows(2).any(|w| w[0] != w[1]) {
                eprintln!("differs: {key}: {values:?}");
            }
        }
    }
    assert!(
        converged,
        "seed {seed}: the regions did not converge: {last:#?}"
    );

    // Each region's stream rebuilds exactly its table.
    for (&i, items) in members.iter().zip(&last) {
        let replayed = replay_stream(cluster, i, table).await;
        assert_eq!(
            &replayed,
            items,
            "seed {seed}: region {}'s stream does not rebuild its table",
            cluster.region(i)
        );
    }

    // Every cell, stamps and tombstones included, is the same everywhere and is the newest
    // write of its item made anywhere: no delete was undone, no older write won.
    for &i in members {
        cluster.stop(i).await;
    }
    let (cells, logs): (Vec<_>, Vec<_>) = members
        .iter()
        .map(|&i| cells_and_log(&cluster.data_dir(i), table))
        .unzip();
    for (&i, region_cells) in members.iter().zip(&cells).skip(1) {
        assert!(
            *region_cells == cells[0],
            "seed {seed}: region {}'s cells differ from region {}'s",
            cluster.region(i),
            cluster.region(members[0])
        );
    }
    let mut newest: BTreeMap<String, &RemoteChange> = BTreeMap::new();
    for change in logs.iter().flatten() {
        let key = format!("{:?}", change.keys);
        let replace = newest
            .get(&key)
            .is_none_or(|held| change.stamp.wins_over(Some(&held.stamp)));
        if replace {
            newest.insert(key, change);
        }
    }
    for cell in &cells[0] {
        let key = format!("{:?}", cell.keys);
        let expected = newest.get(&key).expect("every cell was written by someone");
        assert_eq!(
            (&cell.new_image, &cell.stamp),
            (&expected.new_image, &expected.stamp),
            "seed {seed}: item {key} is not the newest write of it"
        );
    }
    assert_eq!(
        newest.len(),
        cells[0].len(),
        "seed {seed}: every item ever written has a cell (live or tombstone)"
    );
    last.swap_remove(0)
}

async fn converge_under_faults(extra: &[&str], broker: Option<&mut Broker>) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let table = "converge";
    let mut cluster = Cluster::start(node_binary(), &REGIONS, extra).await;
    create_global_table(&cluster, table).await;
    let workload = Workload::start(&cluster, table, seed);

    // Chaos: links cut and healed, one node at a time killed and restarted.
    let all: Vec<usize> = (0..cluster.len()).collect();
    let mut faults = Faults::default();
    chaos(
        &mut cluster,
        &workload,
        &mut rng,
        &all,
        Duration::from_secs(20),
        broker,
        &mut faults,
    )
    .await;
    let acked = workload.finish().await;
    cluster.heal_all();
    eprintln!("seed {seed}: {acked} writes acknowledged, {faults:?}");
    assert!(
        acked > 500,
        "seed {seed}: the workload ran ({acked} writes)"
    );
    assert_converged(&mut cluster, &all, table, seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regions_converge_under_partitions_and_kills() {
    converge_under_faults(&["--durability", "buffer", "--ttl-period", "0.3"], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regions_converge_through_kafka_under_partitions_and_kills() {
    let mut broker = Broker::start().await;
    let brokers = broker.brokers();
    converge_under_faults(
        &[
            "--durability",
            "buffer",
            "--ttl-period",
            "0.3",
            "--replication-transport",
            "kafka",
            "--kafka-brokers",
            &brokers,
        ],
        Some(&mut broker),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replication_topics_get_the_configured_replication_factor() {
    let broker = Broker::start().await;
    assert!(
        broker.is_local(),
        "this scenario makes topics of 3 replicas on tansu's one broker: run it with tansu, \
         without KAFKA_BROKERS"
    );
    let brokers = broker.brokers();
    let mut cluster = Cluster::start(
        node_binary(),
        &REGIONS[..2],
        &[
            "--durability",
            "buffer",
            "--replication-transport",
            "kafka",
            "--kafka-brokers",
            &brokers,
            "--topic-replication-factor",
            "3",
            "--replication-topic-retention",
            "86400",
        ],
    )
    .await;
    let table = "thrice";
    let client = cluster.client(0, OP_TIMEOUT);
    create_pair_table(&cluster, table).await;
    client
        .put_item()
        .table_name(table)
        .item("p", s("k"))
        .item("v", s("from-us"))
        .send()
        .await
        .expect("a write");
    let replicated = wait_until(Duration::from_secs(30), async || {
        value_in(&cluster, 1, table, "k").await.as_deref() == Some("from-us")
    })
    .await;
    assert!(replicated, "the write reaches eu-west-1 through the topics");

    // tansu keeps one copy whatever the factor, but reports the factor it was asked for (its
    // broker once per replica) and the topic's settings.
    let kafka = tidemark_kafka::KafkaSettings::new(brokers);
    for region in &REGIONS[..2] {
        let topic = tidemark_replicator::kafka::topic(region, table);
        let mut shape = None;
        let made = wait_until(Duration::from_secs(10), async || {
            shape = topic_shape(&kafka, &topic).await;
            shape.is_some()
        })
        .await;
        assert!(made, "{topic} exists");
        assert_eq!(
            shape,
            Some((vec![3], Some("2".to_string()), Some("86400000".to_string()))),
            "{topic}: one partition of 3 replicas, 2 of them in sync for a write, messages \
             kept a day"
        );
    }
    cluster.stop(0).await;
    cluster.stop(1).await;
}

/// The replica count of each partition of `topic`, its `min.insync.replicas` and its
/// `retention.ms`, once the broker knows the topic.
async fn topic_shape(
    kafka: &tidemark_kafka::KafkaSettings,
    topic: &str,
) -> Option<(Vec<usize>, Option<String>, Option<String>)> {
    use rdkafka::admin::{AdminOptions, ResourceSpecifier};
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let consumer: BaseConsumer = kafka.consumer("tidemark-test-topics", &[]).ok()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let replicas: Vec<usize> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)?
        .partitions()
        .iter()
        .map(|p| p.replicas().len())
        .collect();
    if replicas.is_empty() {
        return None;
    }
    let configs = kafka
        .admin()
        .ok()?
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .ok()?;
    let entries: Vec<_> = configs
        .into_iter()
        .flatten()
        .flat_map(|resource| resource.entries)
        .collect();
    let setting = |name: &str| {
        entries
            .iter()
            .find(|entry| entry.name == name)
            .and_then(|entry| entry.value.clone())
    };
    Some((
        replicas,
        setting("min.insync.replicas"),
        setting("retention.ms"),
    ))
}

/// The value of `v` of item `p = key` in region `i`, read consistently.
async fn value_in(cluster: &Cluster, i: usize, table: &str, key: &str) -> Option<String> {
    let item = get_consistent(&cluster.client(i, OP_TIMEOUT), table, key).await?;
    match item.get("v") {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicts_are_counted_and_listed_for_operators() {
    let mut cluster =
        Cluster::start(node_binary(), &REGIONS[..2], &["--durability", "buffer"]).await;
    let table = "conflicted";
    let (a, b) = (cluster.client(0, OP_TIMEOUT), cluster.client(1, OP_TIMEOUT));
    create_pair_table(&cluster, table).await;

    // Partitioned, both regions write the same item; the later write is eu-west-1's.
    cluster.link(0, 1).cut();
    cluster.link(1, 0).cut();
    for (client, value) in [(&a, "from-us"), (&b, "from-eu")] {
        client
            .put_item()
            .table_name(table)
            .item("p", s("contested"))
            .item("v", s(value))
            .send()
            .await
            .expect("a write in a partitioned region succeeds");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.heal_all();
    let converged = wait_until(Duration::from_secs(30), async || {
        value_in(&cluster, 0, table, "contested").await.as_deref() == Some("from-eu")
            && value_in(&cluster, 1, table, "contested").await.as_deref() == Some("from-eu")
    })
    .await;
    assert!(
        converged,
        "both regions keep the later write after the partition heals"
    );

    // us-east-1's write reaches eu-west-1 after the newer one (eu-west-1's write may reach
    // us-east-1 first, so convergence does not wait for it): discarded there, and counted.
    let endpoint = cluster.endpoint(1);
    let url = format!("{endpoint}/admin/replicas/conflicts?table={table}");
    let mut conflicts = serde_json::Value::Null;
    let counted = wait_until(Duration::from_secs(30), async || {
        conflicts = admin_json(&url).await;
        conflicts["Conflicts"] != 0
    })
    .await;
    assert!(counted, "a conflict is counted in eu-west-1 within 30 s");
    assert_eq!(
        conflicts["Conflicts"], 1,
        "one conflict in eu-west-1: {conflicts}"
    );
    let last = &conflicts["Last"][0];
    assert_eq!(last["LosingRegion"], REGIONS[0], "{conflicts}");
    assert_eq!(last["WinningRegion"], REGIONS[1], "{conflicts}");
    assert_eq!(last["Keys"]["p"]["S"], "contested", "{conflicts}");
    let metrics = reqwest::get(format!("{endpoint}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "tidemark_replication_conflicts_total{{table=\"{table}\"}} 1"
        )),
        "the conflict is counted in /metrics"
    );
    let printed = tokio::process::Command::new(node_binary())
        .args(["replicas", "conflicts", table, "--endpoint", &endpoint])
        .output()
        .await
        .unwrap();
    assert!(printed.status.success());
    assert!(String::from_utf8_lossy(&printed.stdout).contains("\"LosingRegion\": \"us-east-1\""));

    // And operators see each link: the peer answers, nothing is behind.
    let caught_up = wait_until(Duration::from_secs(30), async || {
        let status: serde_json::Value =
            admin_json(&format!("{}/admin/replicas", cluster.endpoint(0))).await;
        let link = &status["Replicas"][0];
        link["Region"] == REGIONS[1]
            && link["ReplicaStatus"] == "ACTIVE"
            && link["LagRecords"] == 0
            && link["Link"]["Reachable"] == true
            && link["Link"]["LastContactMillis"].is_u64()
    })
    .await;
    assert!(
        caught_up,
        "us-east-1 shows its link to eu-west-1 as up and caught up"
    );
    cluster.stop(0).await;
    cluster.stop(1).await;
}
