//! Anti-entropy between real regional nodes: replicas made to differ on purpose (each node
//! acknowledges and drops its first replicated batches, through the `replicated-batch-lost`
//! failpoint) are found and repaired by `tidemark replicas verify`, the newer write winning
//! on both sides, and the repairs are counted in `/metrics`.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tidemark_tests::cluster::{Cluster, replica_create};
use tidemark_tests::wait_until;

use crate::common::{
    admin_json, create_table, get_consistent, node_binary, put_value, wait_for_group,
};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// The value of `v` of item `p = key` in region `i`.
async fn value_in(cluster: &Cluster, i: usize, table: &str, key: &str) -> Option<String> {
    let item = get_consistent(&cluster.client(i, OP_TIMEOUT), table, key).await?;
    match item.get("v") {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// Writes `p = key, v = value` in region `i` and waits until its node has shipped it (the
/// link to the other region has nothing left to send).
async fn put_and_ship(cluster: &Cluster, i: usize, table: &str, key: &str, value: &str) {
    put_value(&cluster.client(i, OP_TIMEOUT), table, key, value).await;
    let status_url = format!("{}/admin/replicas", cluster.endpoint(i));
    let shipped = wait_until(Duration::from_secs(30), async || {
        let status = admin_json(&status_url).await;
        status["Replicas"][0]["LagRecords"] == 0
    })
    .await;
    assert!(shipped, "region {i} ships {key} within 30 s");
}

/// `tidemark replicas verify TABLE` against region `i`: its printed report.
async fn verify(cluster: &Cluster, i: usize, table: &str) -> serde_json::Value {
    let printed = tokio::process::Command::new(node_binary())
        .args([
            "replicas",
            "verify",
            table,
            "--endpoint",
            &cluster.endpoint(i),
        ])
        .output()
        .await
        .expect("the command runs");
    assert!(
        printed.status.success(),
        "verify succeeds: {}",
        String::from_utf8_lossy(&printed.stderr)
    );
    serde_json::from_slice(&printed.stdout).expect("verify prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_made_to_differ_are_found_and_repaired_newer_write_winning() {
    // us-east-1 drops its first replicated batch, eu-west-1 its first two, each acknowledged.
    let cluster = Cluster::start_with_env(
        node_binary(),
        &REGIONS,
        &["--durability", "buffer", "--anti-entropy-interval", "0"],
        &[
            &[("FAILPOINTS", "replicated-batch-lost=1*return")],
            &[("FAILPOINTS", "replicated-batch-lost=2*return")],
        ],
    )
    .await;
    let table = "diverged";
    let client = cluster.client(0, OP_TIMEOUT);
    create_table(&client, table, false).await;
    client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create(REGIONS[1]))
        .send()
        .await
        .expect("add a replica");
    wait_for_group(&cluster, table, &[0, 1]).await;

    // eu-west-1 loses "lost" and the first version of "contested"; us-east-1 loses the later
    // version of "contested", written in eu-west-1.
    put_and_ship(&cluster, 0, table, "lost", "from-us").await;
    put_and_ship(&cluster, 0, table, "contested", "older").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    put_and_ship(&cluster, 1, table, "contested", "newer").await;
    put_and_ship(&cluster, 0, table, "delivered", "fine").await;
    assert_eq!(value_in(&cluster, 1, table, "lost").await, None);
    assert_eq!(
        value_in(&cluster, 0, table, "contested").await.as_deref(),
        Some("older")
    );
    assert_eq!(
        value_in(&cluster, 1, table, "delivered").await.as_deref(),
        Some("fine"),
        "replication works again once the failpoints are spent"
    );

    // Each region's heartbeat (every second) says up to where the other has everything: a
    // few of them, and every write above is within what both compare.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut report = serde_json::Value::Null;
    let found = wait_until(Duration::from_secs(30), async || {
        report = verify(&cluster, 0, table).await;
        report["Regions"][0]["Error"].is_null()
    })
    .await;
    assert!(found, "a comparison runs within 30 s: {report}");
    let peer = &report["Regions"][0];
    assert_eq!(peer["Region"], REGIONS[1], "{report}");
    assert_eq!(peer["CellsCompared"], 3, "{report}");
    assert_eq!(peer["CellsDiffering"], 2, "{report}");
    assert_eq!(
        peer["RepairedHere"], 1,
        "eu-west-1's newer version: {report}"
    );
    assert_eq!(peer["RepairedThere"], 1, "the lost item: {report}");
    assert_eq!(peer["Unresolved"], 0, "{report}");

    for i in 0..2 {
        assert_eq!(
            value_in(&cluster, i, table, "lost").await.as_deref(),
            Some("from-us")
        );
        assert_eq!(
            value_in(&cluster, i, table, "contested").await.as_deref(),
            Some("newer"),
            "the older version never wins, in region {i}"
        );
    }
    let again = verify(&cluster, 1, table).await;
    assert_eq!(again["Regions"][0]["CellsDiffering"], 0, "{again}");
    assert_eq!(again["Regions"][0]["BucketsDiffering"], 0, "{again}");

    let metrics = reqwest::get(format!("{}/metrics", cluster.endpoint(0)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = |name: &str, extra: &str, value: u64| {
        metrics.lines().any(|line| {
            line.starts_with(&format!("{name}{{"))
                && line.contains(&format!("table=\"{table}\""))
                && line.contains(&format!("peer=\"{}\"", REGIONS[1]))
                && line.contains(extra)
                && line.ends_with(&format!(" {value}"))
        })
    };
    assert!(
        counted("tidemark_antientropy_differences_total", "", 2),
        "{metrics}"
    );
    assert!(counted(
        "tidemark_antientropy_repaired_total",
        "to=\"here\"",
        1
    ));
    assert!(counted(
        "tidemark_antientropy_repaired_total",
        "to=\"peer\"",
        1
    ));
    assert!(counted("tidemark_antientropy_unresolved_total", "", 0));
}
