//! A region lost for good, end to end: three regional nodes, the third killed, its replica
//! removed from the first. The survivors go on at once (the table ACTIVE without it, the next
//! control-plane call accepted), and the removed region, started again, drops its copy. And a
//! region away (not removed) for longer than `--peer-hold-limit`: the others let go of what
//! they kept for it and report its replica as needing a re-seed, and re-seed it by
//! themselves when it returns.

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::ReplicaStatus;
use tidemark_tests::cluster::{Cluster, replica_delete, replica_update};
use tidemark_tests::wait_until;

use crate::common::{
    get_consistent, global_in_three, node_binary, replicas_in, s, wait_for_group_within,
};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const FAST: [&str; 2] = ["--durability", "buffer"];
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon the survivors must show the group without the removed region.
const AT_ONCE: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(30);

/// Puts the item `after` in region `from` and waits until region `to` reads it.
async fn a_write_reaches(cluster: &Cluster, table: &str, from: usize, to: usize) -> bool {
    cluster
        .client(from, OP_TIMEOUT)
        .put_item()
        .table_name(table)
        .item("p", s("after"))
        .send()
        .await
        .expect("a PutItem");
    let reader = cluster.client(to, OP_TIMEOUT);
    wait_until(WAIT, async || {
        get_consistent(&reader, table, "after").await.is_some()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_regions_replica_is_removed_and_it_drops_its_copy_when_it_returns() {
    let mut cluster = Cluster::start(node_binary(), &REGIONS, &FAST).await;
    let (a, b, c) = (0, 1, 2);
    let table = "lost";
    let ca = global_in_three(&cluster, table, OP_TIMEOUT).await;
    ca.put_item()
        .table_name(table)
        .item("p", s("kept"))
        .send()
        .await
        .expect("PutItem in A");

    cluster.kill(c).await;
    ca.update_table()
        .table_name(table)
        .replica_updates(replica_delete(REGIONS[c]))
        .send()
        .await
        .expect("ReplicaUpdates Delete of the dead region's replica succeeds");

    // Both survivors show the table ACTIVE without C within seconds.
    wait_for_group_within(&cluster, table, &[a, b], AT_ONCE, true).await;
    ca.update_table()
        .table_name(table)
        .replica_updates(replica_update(REGIONS[b]))
        .send()
        .await
        .expect("the next UpdateTable is accepted at once, not ResourceInUseException");
    assert!(
        a_write_reaches(&cluster, table, a, b).await,
        "A's write after the removal reaches B"
    );

    // C comes back with its copy and its stale document: it hears it was removed and drops
    // the copy; the survivors do not name it again.
    cluster.restart(c).await;
    let cc = cluster.client(c, OP_TIMEOUT);
    let mut last = None;
    let dropped = wait_until(WAIT, async || {
        let answer = cc.describe_table().table_name(table).send().await;
        let gone = answer
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.code() == Some("ResourceNotFoundException"));
        last = Some(format!("{answer:?}"));
        gone
    })
    .await;
    assert!(
        dropped,
        "expected C to drop its removed replica within {WAIT:?} of starting again; last: {last:?}"
    );
    for i in [a, b] {
        let replicas = replicas_in(&cluster, i, table).await;
        assert!(
            replicas
                .as_ref()
                .is_some_and(|r| !r.contains_key(REGIONS[c])),
            "{} must not name C again: {replicas:?}",
            cluster.region(i)
        );
    }
    assert!(get_consistent(&ca, table, "kept").await.is_some());
}

/// With `--peer-hold-limit 1`, a killed region's replica is reported as needing a re-seed by
/// the region that kept history for it (DescribeTable, `/admin/replicas`, `/metrics`), while
/// the two others go on replicating; started again, it is re-seeded and replicates again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_away_past_the_hold_limit_is_reported_as_needing_a_reseed() {
    let extra = [FAST.as_slice(), &["--peer-hold-limit", "1"]].concat();
    let mut cluster = Cluster::start(node_binary(), &REGIONS, &extra).await;
    let (a, b, c) = (0, 1, 2);
    let table = "away";
    let ca = global_in_three(&cluster, table, OP_TIMEOUT).await;

    cluster.kill(c).await;
    ca.put_item()
        .table_name(table)
        .item("p", s("while-away"))
        .send()
        .await
        .expect("PutItem in A");

    let endpoint = cluster.endpoint(a);
    let mut last = None;
    let reported = wait_until(WAIT, async || {
        let described = ca
            .describe_table()
            .table_name(table)
            .send()
            .await
            .ok()
            .and_then(|d| d.table);
        let replica = described
            .iter()
            .flat_map(|t| t.replicas())
            .find(|r| r.region_name() == Some(REGIONS[c]))
            .cloned();
        let ok = replica.as_ref().is_some_and(|r| {
            r.replica_status() == Some(&ReplicaStatus::Active)
                && r.replica_status_description()
                    .is_some_and(|d| d.contains("--peer-hold-limit"))
        });
        last = Some(replica);
        ok
    })
    .await;
    assert!(
        reported,
        "expected A's DescribeTable to describe C's replica as needing a re-seed within \
         {WAIT:?}; last: {last:?}"
    );
    let status: serde_json::Value = reqwest::get(format!("{endpoint}/admin/replicas"))
        .await
        .expect("GET /admin/replicas")
        .json()
        .await
        .expect("JSON");
    let needs: Vec<(String, bool)> = status["Replicas"]
        .as_array()
        .expect("a list of links")
        .iter()
        .map(|l| {
            (
                l["Region"].as_str().unwrap_or_default().to_string(),
                l["NeedsReseed"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        needs,
        [
            (REGIONS[c].to_string(), true),
            (REGIONS[b].to_string(), false)
        ],
        "{status}"
    );
    let metrics = reqwest::get(format!("{endpoint}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tidemark_replication_reseed_needed")
                && l.contains(REGIONS[c])
                && l.ends_with(" 1")),
        "the gauge counts C's table: {metrics}"
    );

    // A and B replicate on.
    assert!(
        a_write_reaches(&cluster, table, a, b).await,
        "A's write reaches B"
    );

    // C returns: A re-seeds it by itself, and replication with it resumes.
    cluster.restart(c).await;
    let cc = cluster.client(c, OP_TIMEOUT);
    for key in ["while-away", "after"] {
        assert!(
            wait_until(WAIT, async || get_consistent(&cc, table, key)
                .await
                .is_some())
            .await,
            "{key}, written in A while C was away, reaches C"
        );
    }
    let mut last = None;
    let cleared = wait_until(WAIT, async || {
        let status: Option<serde_json::Value> =
            match reqwest::get(format!("{endpoint}/admin/replicas")).await {
                Ok(answer) => answer.json().await.ok(),
                Err(_) => None,
            };
        let ok = status.as_ref().is_some_and(|status| {
            status["Replicas"]
                .as_array()
                .is_some_and(|links| links.iter().all(|l| l["NeedsReseed"] == false))
        });
        last = status;
        ok
    })
    .await;
    assert!(
        cleared,
        "A no longer reports C as needing a re-seed: {last:?}"
    );
    cc.put_item()
        .table_name(table)
        .item("p", s("from-c"))
        .send()
        .await
        .expect("PutItem in C");
    assert!(
        wait_until(WAIT, async || get_consistent(&ca, table, "from-c")
            .await
            .is_some())
        .await,
        "C's later write reaches A"
    );
}
