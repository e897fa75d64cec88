//! Global tables with a clock that is off: a region whose wall clock runs ahead of the others'
//! cannot drag the group's clocks (and every later write) ahead with it.
//!
//! The test shifts one node's clock with `TIDEMARK_TEST_CLOCK_SHIFT_MILLIS`, which only test
//! builds read. To see the same with a real clock, run one node of a group under libfaketime
//! (`faketime -f '+20s' tidemark serve --region ... --peer ...`), or on a host whose clock is
//! set ahead with time synchronisation off (`timedatectl set-ntp false; date -s '+20 seconds'`):
//! its peers refuse its changes, naming its region and offset, and it refuses client writes
//! until its clock is fixed.

use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use tidemark_tests::cluster::{Cluster, replica_create};
use tidemark_tests::kafka::Broker;
use tidemark_tests::wait_until;

use crate::common::{admin_json, create_table, get_consistent, node_binary, s, wait_for_group};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How far region 0's clock runs ahead: forty times the bound the group is started with, and
/// long enough that real time does not reach its stamps while the test looks.
const SHIFT_MILLIS: i64 = 20_000;
/// The offsets a peer of region 0 may measure: the shift, give or take a second.
const MEASURED: std::ops::RangeInclusive<i64> = -SHIFT_MILLIS - 1_000..=-SHIFT_MILLIS + 1_000;

/// Puts `key` with `v = value` in region `i`; the error as text when refused.
pub(crate) async fn put(
    cluster: &Cluster,
    i: usize,
    table: &str,
    key: &str,
    value: &str,
) -> Result<(), String> {
    cluster
        .client(i, OP_TIMEOUT)
        .put_item()
        .table_name(table)
        .item("p", s(key))
        .item("v", s(value))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| DisplayErrorContext(&e).to_string())
}

pub(crate) async fn holds(cluster: &Cluster, i: usize, table: &str, key: &str) -> bool {
    get_consistent(&cluster.client(i, OP_TIMEOUT), table, key)
        .await
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_whose_clock_runs_ahead_cannot_take_over_the_group() {
    clock_ahead(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_whose_clock_runs_ahead_cannot_take_over_the_group_through_kafka() {
    let broker = Broker::start().await;
    let brokers = broker.brokers();
    clock_ahead(&[
        "--replication-transport",
        "kafka",
        "--kafka-brokers",
        &brokers,
    ])
    .await;
}

/// Three regions (with `transport` flags), region 0's clock set ahead then fixed.
async fn clock_ahead(transport: &[&str]) {
    let kafka = !transport.is_empty();
    let mut extra = vec!["--durability", "buffer", "--max-clock-offset", "0.5"];
    extra.extend_from_slice(transport);
    let mut cluster = Cluster::start(node_binary(), &REGIONS, &extra).await;
    let table = "clocked";
    let client = cluster.client(1, Duration::from_secs(30));
    create_table(&client, table, false).await;
    client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create(REGIONS[0]))
        .replica_updates(replica_create(REGIONS[2]))
        .send()
        .await
        .expect("add replicas");
    wait_for_group(&cluster, table, &[0, 1, 2]).await;
    put(&cluster, 1, table, "before", "from-eu")
        .await
        .expect("a write");
    assert!(
        wait_until(Duration::from_secs(30), async || holds(
            &cluster, 0, table, "before"
        )
        .await)
        .await,
        "the group replicates before any clock is off"
    );

    // Region 0 comes back with its clock 20 s ahead. Its own requests to the others are cut
    // at first, so it has measured nobody yet and takes a write, stamped 20 s ahead.
    cluster.stop(0).await;
    let shift = SHIFT_MILLIS.to_string();
    cluster.set_env(0, &[("TIDEMARK_TEST_CLOCK_SHIFT_MILLIS", &shift)]);
    cluster.link(0, 1).cut();
    cluster.link(0, 2).cut();
    cluster.restart(0).await;
    put(&cluster, 0, table, "ahead", "from-us")
        .await
        .expect("a node that has measured no peer takes writes");
    cluster.heal_all();

    // The others refuse its change. Directly, region 0's link says which region's stamp, and
    // by how much; through Kafka the others' readers stop (and log it). Either way region 0
    // has measured how far the others' clocks are from its own.
    let status_url = format!("{}/admin/replicas", cluster.endpoint(0));
    let mut link = serde_json::Value::Null;
    let shown = wait_until(Duration::from_secs(30), async || {
        let status = admin_json(&status_url).await;
        let to_eu = status["Replicas"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["Region"] == REGIONS[1]).cloned());
        link = to_eu.map(|l| l["Link"].clone()).unwrap_or_default();
        let measured = link["ClockOffsetMillis"]
            .as_i64()
            .is_some_and(|o| MEASURED.contains(&o));
        let refusal = link["LastError"].as_str().is_some_and(|e| {
            e.contains("a stamp of region us-east-1 is")
                && e.contains("ms ahead")
                && e.contains("500 ms --max-clock-offset")
        });
        measured && (kafka || refusal)
    })
    .await;
    assert!(
        shown,
        "region 0's link shows eu-west-1's clock about {SHIFT_MILLIS} ms behind, and the \
         refusal: {link}"
    );
    let metrics = reqwest::get(format!("{}/metrics", cluster.endpoint(0)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported = metrics
        .lines()
        .find(|l| l.starts_with("tidemark_replication_clock_offset_millis{peer=\"eu-west-1\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(
        exported.is_some_and(|o| MEASURED.contains(&(o as i64))),
        "the offset is exported: {exported:?}"
    );

    // Having measured both peers, region 0 refuses client writes; reads go on.
    let mut refusal = String::new();
    let paused = wait_until(Duration::from_secs(30), async || {
        match put(&cluster, 0, table, "during", "from-us").await {
            Ok(()) => false,
            Err(e) => {
                refusal = e;
                true
            }
        }
    })
    .await;
    assert!(paused, "region 0 refuses client writes");
    assert!(
        refusal.contains("InternalServerError")
            && refusal.contains("refuses writes")
            && refusal.contains("ms ahead of eu-west-1")
            && refusal.contains("ms ahead of ap-south-1"),
        "{refusal}"
    );
    assert!(holds(&cluster, 0, table, "before").await, "reads go on");
    let metrics = reqwest::get(format!("{}/metrics", cluster.endpoint(0)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "tidemark_replication_writes_paused 1"),
        "the pause is exported"
    );
    for i in [1, 2] {
        assert!(
            !holds(&cluster, i, table, "ahead").await,
            "region {i} did not apply the change stamped ahead"
        );
    }

    // The regions whose clocks agree go on writing, and their changes reach region 0 (and,
    // directly, each other; through Kafka a reader holding a change stamped ahead waits for
    // it before it reads on).
    put(&cluster, 1, table, "meanwhile", "from-eu")
        .await
        .expect("eu-west-1 agrees with a majority and takes writes");
    assert!(
        wait_until(Duration::from_secs(30), async || {
            holds(&cluster, 0, table, "meanwhile").await
                && (kafka || holds(&cluster, 2, table, "meanwhile").await)
        })
        .await,
        "changes of the regions that agree still replicate"
    );

    // Its clock fixed, region 0 restarts; its change stamped ahead arrives once real time
    // reaches its stamp, and everything converges.
    cluster.stop(0).await;
    cluster.set_env(0, &[]);
    cluster.restart(0).await;
    let mut last = String::new();
    let converged = wait_until(Duration::from_secs(60), async || {
        if let Err(e) = put(&cluster, 0, table, "fixed", "from-us").await {
            last = e;
            return false;
        }
        for i in [1, 2] {
            for key in ["ahead", "fixed"] {
                if !holds(&cluster, i, table, key).await {
                    return false;
                }
            }
        }
        true
    })
    .await;
    assert!(
        converged,
        "the group converges once region 0's clock is fixed ({last})"
    );
}
