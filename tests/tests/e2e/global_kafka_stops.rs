//! The Kafka transport never skips a replication message (issue 28, item 3): a message that
//! does not decode stops reading its partition there, with an error in `GET /admin/replicas`
//! and a metric; the changes behind it are not applied past it, even after a restart, while
//! the other tables' topics go on. And a read position the topic no longer holds (the broker
//! lost its messages) is reported as needing a re-seed, never jumped over, and the replica
//! is re-seeded by itself once the region that wrote the lost changes answers.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tidemark_tests::cluster::{Cluster, replica_create};
use tidemark_tests::kafka::Broker;
use tidemark_tests::wait_until;

use crate::common::{admin_json, create_table, get_consistent, node_binary, s, wait_for_group};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const OP_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

async fn global_pair(cluster: &Cluster, table: &str) {
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

async fn put(cluster: &Cluster, table: &str, key: &str) {
    cluster
        .client(0, OP_TIMEOUT)
        .put_item()
        .table_name(table)
        .item("p", s(key))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem {key} into {table}: {e:?}"));
}

async fn arrives(cluster: &Cluster, table: &str, key: &str) -> bool {
    let client = cluster.client(1, OP_TIMEOUT);
    wait_until(WAIT, async || {
        get_consistent(&client, table, key).await.is_some()
    })
    .await
}

/// `table`'s link in region 1, as `GET /admin/replicas` lists it.
async fn link(cluster: &Cluster, table: &str) -> serde_json::Value {
    let status = admin_json(&format!("{}/admin/replicas", cluster.endpoint(1))).await;
    status["Replicas"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["Table"] == table))
        .cloned()
        .unwrap_or_default()
}

/// The stopped partitions of `table`'s link in region 1.
async fn stopped(cluster: &Cluster, table: &str) -> serde_json::Value {
    link(cluster, table).await["Stopped"].clone()
}

/// Region 1's `/metrics`.
async fn metrics(cluster: &Cluster) -> String {
    reqwest::get(format!("{}/metrics", cluster.endpoint(1)))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// Region 1's gauge of `table`'s lost changes from region 0, as `/metrics` shows it.
async fn needs_reseed_gauge(cluster: &Cluster, table: &str) -> Option<String> {
    let metrics = metrics(cluster).await;
    let series = format!(
        "tidemark_replication_needs_reseed{{table=\"{table}\",region=\"{}\"}} ",
        REGIONS[0]
    );
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series).map(str::to_string))
}

/// The two regions, `buffer` durability, replicating through `brokers`.
async fn through_kafka(brokers: &str) -> Cluster {
    Cluster::start(
        node_binary(),
        &REGIONS,
        &[
            "--durability",
            "buffer",
            "--replication-transport",
            "kafka",
            "--kafka-brokers",
            brokers,
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replication_message_that_does_not_decode_stops_its_partition_and_is_never_skipped() {
    let broker = Broker::start().await;
    let brokers = broker.brokers();
    let mut cluster = through_kafka(&brokers).await;
    let (stalled, flowing) = ("stalled", "flowing");
    global_pair(&cluster, stalled).await;
    global_pair(&cluster, flowing).await;
    put(&cluster, stalled, "first").await;
    assert!(arrives(&cluster, stalled, "first").await);

    // Garbage in us-east-1's topic of the table, between its changes.
    let topic = tidemark_replicator::kafka::topic(REGIONS[0], stalled);
    let producer: FutureProducer = tidemark_kafka::KafkaSettings::new(brokers.clone())
        .producer(&[])
        .expect("a producer");
    let garbage_offset = producer
        .send(
            FutureRecord::<(), _>::to(&topic)
                .partition(0)
                .payload(&b"\xffnot a change batch"[..]),
            Duration::from_secs(10),
        )
        .await
        .expect("the broker takes the garbage")
        .offset;
    put(&cluster, stalled, "after").await;
    put(&cluster, flowing, "other").await;

    assert!(
        arrives(&cluster, flowing, "other").await,
        "another table's topic goes on"
    );
    let mut listed = serde_json::Value::Null;
    let reported = wait_until(WAIT, async || {
        listed = stopped(&cluster, stalled).await;
        listed[0]["State"] == "Undecodable"
    })
    .await;
    assert!(reported, "the stop is listed: {listed}");
    assert_eq!(listed[0]["Topic"], topic.as_str(), "{listed}");
    assert_eq!(listed[0]["Offset"], garbage_offset, "{listed}");
    assert!(
        listed[0]["Error"]
            .as_str()
            .is_some_and(|e| e.contains("does not decode")),
        "{listed}"
    );
    let metrics = metrics(&cluster).await;
    assert!(
        metrics.contains(&format!(
            "tidemark_replication_undecodable_total{{topic=\"{topic}\"}}"
        )),
        "{metrics}"
    );
    let client = cluster.client(1, OP_TIMEOUT);
    assert!(
        get_consistent(&client, stalled, "after").await.is_none(),
        "a change behind the message that does not decode is not applied past it"
    );

    // A restart reads from the saved position: the same message stops it again.
    cluster.stop(1).await;
    cluster.restart(1).await;
    let reported = wait_until(WAIT, async || {
        stopped(&cluster, stalled).await[0]["Offset"] == garbage_offset
    })
    .await;
    assert!(reported, "stopped at the same message after a restart");
    put(&cluster, flowing, "again").await;
    assert!(arrives(&cluster, flowing, "again").await);
    let client = cluster.client(1, OP_TIMEOUT);
    assert!(get_consistent(&client, stalled, "after").await.is_none());
    cluster.stop(0).await;
    cluster.stop(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_position_the_broker_lost_is_reseeded_by_itself_and_never_jumped() {
    use rdkafka::admin::AdminOptions;

    let broker = Broker::start().await;
    let brokers = broker.brokers();
    let mut cluster = through_kafka(&brokers).await;
    let table = "trimmed";
    global_pair(&cluster, table).await;
    put(&cluster, table, "read").await;
    assert!(arrives(&cluster, table, "read").await);
    // Its read position saved (at most every 200 ms), eu-west-1 goes away; meanwhile the
    // broker loses the topic (tansu cannot delete records, as retention would: the topic
    // goes, and comes back empty when eu-west-1 reads it again).
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.stop(1).await;
    put(&cluster, table, "missed").await;
    // us-east-1 stops too, so nothing writes to the topic once it is gone: a broker that lost
    // messages but has as many new ones by then is beyond what the watermarks can tell.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.stop(0).await;
    let topic = tidemark_replicator::kafka::topic(REGIONS[0], table);
    let kafka = tidemark_kafka::KafkaSettings::new(brokers.clone());
    let deleted = kafka
        .admin()
        .expect("an admin client")
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await
        .expect("the broker answers");
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");

    cluster.restart(1).await;
    let mut listed = serde_json::Value::Null;
    let reported = wait_until(WAIT, async || {
        listed = link(&cluster, table).await;
        listed["NeedsReseed"] == true
    })
    .await;
    assert!(reported, "the lost changes are reported: {listed}");
    assert_eq!(
        needs_reseed_gauge(&cluster, table).await.as_deref(),
        Some("1")
    );
    let described = cluster
        .client(1, OP_TIMEOUT)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("DescribeTable");
    let why = described
        .table()
        .map(|t| t.replicas())
        .unwrap_or_default()
        .iter()
        .find(|r| r.region_name() == Some(REGIONS[0]))
        .and_then(|r| r.replica_status_description().map(str::to_string));
    assert!(
        why.as_deref()
            .is_some_and(|why| why.contains("replication topic no longer holds")),
        "DescribeTable says why: {why:?}"
    );

    // Region 0 answers again: region 1 re-seeds its replica by itself (what the broker lost
    // comes by the comparison), then reads region 0's topic on from where it ended.
    cluster.restart(0).await;
    put(&cluster, table, "later").await;
    assert!(
        arrives(&cluster, table, "missed").await,
        "the change the broker lost came by the re-seed"
    );
    assert!(arrives(&cluster, table, "later").await);
    let resumed = wait_until(WAIT, async || {
        listed = link(&cluster, table).await;
        listed["NeedsReseed"] == false && listed["Stopped"].is_null()
    })
    .await;
    assert!(resumed, "replication resumed: {listed}");
    put(&cluster, table, "after").await;
    assert!(
        arrives(&cluster, table, "after").await,
        "the topic is read on"
    );
    assert_eq!(
        needs_reseed_gauge(&cluster, table).await.as_deref(),
        Some("0")
    );
    cluster.stop(0).await;
    cluster.stop(1).await;
}
