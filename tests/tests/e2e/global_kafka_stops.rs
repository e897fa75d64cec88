//! The Kafka transport never skips a replication message (issue 28, item 3): a message that
//! does not decode stops reading its partition there, with an error in `GET /admin/replicas`
//! and a metric; the changes behind it are not applied past it, even after a restart, while
//! the other tables' topics go on.

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

/// The stopped partitions of `table`'s link in region 1, as `GET /admin/replicas` lists them.
async fn stopped(cluster: &Cluster, table: &str) -> serde_json::Value {
    let status = admin_json(&format!("{}/admin/replicas", cluster.endpoint(1))).await;
    status["Replicas"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["Table"] == table))
        .map(|link| link["Stopped"].clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replication_message_that_does_not_decode_stops_its_partition_and_is_never_skipped() {
    let broker = Broker::start().await;
    let brokers = broker.brokers();
    let mut cluster = Cluster::start(
        node_binary(),
        &REGIONS,
        &[
            "--durability",
            "buffer",
            "--replication-transport",
            "kafka",
            "--kafka-brokers",
            &brokers,
        ],
    )
    .await;
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
    let metrics = reqwest::get(format!("{}/metrics", cluster.endpoint(1)))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
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
