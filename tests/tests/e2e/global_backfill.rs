//! Seeding a new replica: a table of 100,000 items gets a replica in another region while
//! writes go on in the source; once the replica is ACTIVE and shipping has caught up, both
//! regions hold exactly the same cells, stamps and tombstones included.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, ReplicaStatus, WriteRequest};
use tidemark_core::replication::RemoteChange;
use tidemark_tests::cluster::Cluster;
use tidemark_tests::wait_until;

use tidemark_tests::cluster::replica_create;

use crate::common::{admin_json, create_table, describe, n, node_binary, s, stored_cells};

const ITEMS: usize = 100_000;
const LOADERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_replica_of_a_large_table_is_seeded_while_writes_go_on() {
    let table = "seeded";
    let (mut cluster, client) = two_regions_with(table).await;
    let loading = Instant::now();
    let mut loaders = Vec::new();
    for loader in 0..LOADERS {
        let client = client.clone();
        loaders.push(tokio::spawn(async move {
            let keys: Vec<usize> = (loader..ITEMS).step_by(LOADERS).collect();
            for chunk in keys.chunks(25) {
                let requests = chunk
                    .iter()
                    .map(|i| {
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .item("p", s(&format!("item{i:06}")))
                                    .item("n", n(&i.to_string()))
                                    .item("payload", s("seeded from a snapshot"))
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                    })
                    .collect();
                let answer = client
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .expect("load a batch");
                assert!(answer.unprocessed_items().is_none_or(|u| u.is_empty()));
            }
        }));
    }
    for loader in loaders {
        loader.await.unwrap();
    }
    eprintln!("loaded {ITEMS} items in {:?}", loading.elapsed());

    // Writes go on in the source while the replica is created and seeded.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let key = s(&format!("item{:06}", (i * 7919) % ITEMS));
                let _ = match i % 3 {
                    0 => client
                        .delete_item()
                        .table_name(table)
                        .key("p", key)
                        .send()
                        .await
                        .is_ok(),
                    1 => client
                        .put_item()
                        .table_name(table)
                        .item("p", s(&format!("new{i}")))
                        .send()
                        .await
                        .is_ok(),
                    _ => client
                        .update_item()
                        .table_name(table)
                        .key("p", key)
                        .update_expression("SET n = :n")
                        .expression_attribute_values(":n", n(&i.to_string()))
                        .send()
                        .await
                        .is_ok(),
                };
                i += 1;
            }
            i
        })
    };
    let seeding = Instant::now();
    add_replica(&client, table).await;
    let mut progress = Vec::new();
    let active = wait_until(Duration::from_secs(180), async || {
        let described = describe(&client, table).await;
        let replica = described.replicas().first().cloned().expect("a replica");
        if let Some(percent) = replica.replica_status_percent_progress.clone()
            && progress.last() != Some(&percent)
        {
            progress.push(percent);
        }
        replica.replica_status == Some(ReplicaStatus::Active)
    })
    .await;
    assert!(active, "the replica becomes ACTIVE within 180 s");
    let seeded_in = seeding.elapsed();
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    eprintln!(
        "seeded {ITEMS} items in {seeded_in:?} while {writes} writes went on; progress seen: {progress:?}"
    );

    let (source, replica) = caught_up_cells(&mut cluster, table).await;
    assert!(source.len() >= ITEMS, "the source holds every item");
    assert_eq!(source.len(), replica.len(), "as many cells in both regions");
    assert!(
        source == replica,
        "the replica holds exactly the source's cells, stamps and tombstones included"
    );
}

/// Items of 350 KB, 56 of them, are more than a peer takes in one request (16 MB): in the
/// seeding snapshot, and again in what piles up for a peer behind a cut link. Both go out in
/// batches the peer takes, and the replica ends with every item.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_items_are_seeded_and_shipped_in_requests_a_peer_takes() {
    const LARGE: usize = 56;
    let table = "large";
    let (mut cluster, client) = two_regions_with(table).await;
    let payload = "x".repeat(350_000);
    let put = async |key: String| {
        client
            .put_item()
            .table_name(table)
            .item("p", s(&key))
            .item("payload", s(&payload))
            .send()
            .await
            .expect("put a large item");
    };
    for i in 0..LARGE {
        put(format!("seeded{i:02}")).await;
    }
    add_replica(&client, table).await;
    let active = wait_until(Duration::from_secs(60), async || {
        let described = client.describe_table().table_name(table).send().await;
        described.ok().and_then(|d| d.table).is_some_and(|t| {
            t.replicas()
                .iter()
                .any(|r| r.replica_status == Some(ReplicaStatus::Active))
        })
    })
    .await;
    assert!(
        active,
        "the replica of large items becomes ACTIVE within 60 s"
    );

    cluster.link(0, 1).cut();
    for i in 0..LARGE {
        put(format!("shipped{i:02}")).await;
    }
    cluster.link(0, 1).heal();
    let (source, replica) = caught_up_cells(&mut cluster, table).await;
    assert_eq!(source.len(), 2 * LARGE);
    assert!(source == replica, "the replica holds every large item");
}

/// Waits until the replica (region 1) has acknowledged every change of `table` the source
/// (region 0) shipped, stops both, and returns their stored cells: the source's, the
/// replica's.
async fn caught_up_cells(
    cluster: &mut Cluster,
    table: &str,
) -> (Vec<RemoteChange>, Vec<RemoteChange>) {
    let endpoint = cluster.endpoint(0);
    let caught_up = wait_until(Duration::from_secs(60), async || {
        let status: serde_json::Value = admin_json(&format!("{endpoint}/admin/replicas")).await;
        status["Replicas"][0]["LagRecords"] == 0
    })
    .await;
    assert!(
        caught_up,
        "the replica acknowledges every change within 60 s"
    );
    cluster.stop(0).await;
    cluster.stop(1).await;
    (
        stored_cells(&cluster.data_dir(0), table),
        stored_cells(&cluster.data_dir(1), table),
    )
}

/// Two regions (`buffer` durability) and, in the first, a single-region table keyed by `p`,
/// with a client of the first.
async fn two_regions_with(table: &str) -> (Cluster, aws_sdk_dynamodb::Client) {
    let cluster = Cluster::start(
        node_binary(),
        &["us-east-1", "eu-west-1"],
        &["--durability", "buffer"],
    )
    .await;
    let client = cluster.client(0, Duration::from_secs(30));
    create_table(&client, table, false).await;
    (cluster, client)
}

/// Asks for a replica of `table` in the second region.
async fn add_replica(client: &aws_sdk_dynamodb::Client, table: &str) {
    client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create("eu-west-1"))
        .send()
        .await
        .expect("add a replica");
}
