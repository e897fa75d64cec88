//! Issue 28's acceptance: the convergence run of `global_tables.rs` (clients writing every
//! kind of write in every region, links cut and healed, nodes killed and restarted) on four
//! regions, during which one region runs with its clock ahead of the others' by twenty times
//! `--max-clock-offset` (its changes refused, its client writes paused), another is removed
//! for good while it is still ahead, and then its clock is fixed. The three survivors must
//! end with the same cells, stamps and tombstones included, each the newest write of its item
//! (no deleted item comes back), and the removed region, started again, must drop its copy
//! without any of it coming back into the survivors.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tidemark_tests::cluster::{Cluster, replica_delete, replica_update};
use tidemark_tests::kafka::Broker;
use tidemark_tests::wait_until;

use crate::common::{
    admin_json, error_code, node_binary, seed, wait_for_group, wait_for_group_within,
};
use crate::global_clocks::{holds, put};
use crate::global_tables::{Faults, Workload, assert_converged, chaos, create_global_table, scan};

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"];
/// The region whose clock runs ahead for a while, and the region removed for good.
const FAST: usize = 2;
const REMOVED: usize = 3;
/// How far the fast region's clock runs ahead: twenty times the bound the group runs with,
/// and long enough that real time does not reach its first stamps while the test looks.
const SHIFT_MILLIS: i64 = 10_000;
/// How soon the survivors must show the group without the removed region.
const AT_ONCE: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(30);
const OP_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn survivors_converge_when_a_region_is_removed_and_another_runs_ahead() {
    leave_and_run_ahead(&[], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn survivors_converge_through_kafka_when_a_region_is_removed_and_another_runs_ahead() {
    let mut broker = Broker::start().await;
    let brokers = broker.brokers();
    leave_and_run_ahead(
        &[
            "--replication-transport",
            "kafka",
            "--kafka-brokers",
            &brokers,
        ],
        Some(&mut broker),
    )
    .await;
}

/// The run on four regions with `transport` flags (none: direct), restarting a local
/// `broker` now and then.
async fn leave_and_run_ahead(transport: &[&str], mut broker: Option<&mut Broker>) {
    let kafka = !transport.is_empty();
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let table = "turmoil";
    let mut extra = vec![
        "--durability",
        "buffer",
        "--ttl-period",
        "0.3",
        "--max-clock-offset",
        "0.5",
    ];
    extra.extend_from_slice(transport);
    let mut cluster = Cluster::start(node_binary(), &REGIONS, &extra).await;
    create_global_table(&cluster, table).await;
    let workload = Workload::start(&cluster, table, seed);
    let all: Vec<usize> = (0..cluster.len()).collect();
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != REMOVED).collect();
    let mut faults = Faults::default();
    let mut phase = async |cluster: &mut Cluster, regions: &[usize], secs: u64| {
        chaos(
            cluster,
            &workload,
            &mut rng,
            regions,
            Duration::from_secs(secs),
            broker.as_deref_mut(),
            &mut faults,
        )
        .await;
    };

    // Chaos in all four regions. Then the fast region comes back with its clock ahead, its
    // links out cut at first, so it takes a write before it has measured anyone: stamped
    // ahead, refused by the others (directly, its link says so; through Kafka the others'
    // readers stop at it). Once it has measured them it refuses its clients' writes.
    phase(&mut cluster, &all, 4).await;
    cluster.heal_all();
    cluster.kill(FAST).await;
    let shift = SHIFT_MILLIS.to_string();
    cluster.set_env(FAST, &[("TIDEMARK_TEST_CLOCK_SHIFT_MILLIS", &shift)]);
    for &i in &all {
        if i != FAST {
            cluster.link(FAST, i).cut();
        }
    }
    cluster.restart(FAST).await;
    workload.follow(&cluster, FAST);
    put(&cluster, FAST, table, "ahead", "stamped-ahead")
        .await
        .expect("a node that has measured no peer takes writes");
    cluster.heal_all();
    let status_url = format!("{}/admin/replicas", cluster.endpoint(FAST));
    let mut links = serde_json::Value::Null;
    let refused = kafka
        || wait_until(WAIT, async || {
            links = admin_json(&status_url).await;
            links["Replicas"].as_array().is_some_and(|links| {
                links.iter().any(|l| {
                    l["Link"]["LastError"].as_str().is_some_and(|e| {
                        e.contains(&format!("a stamp of region {} is", REGIONS[FAST]))
                            && e.contains("ms ahead")
                    })
                })
            })
        })
        .await;
    assert!(
        refused,
        "seed {seed}: a survivor refuses the fast region's change: {links}"
    );
    let mut refusal = String::new();
    let paused = wait_until(WAIT, async || {
        match put(&cluster, FAST, table, "during", "paused").await {
            Ok(()) => false,
            Err(e) => {
                refusal = e;
                refusal.contains("refuses writes")
            }
        }
    })
    .await;
    assert!(
        paused,
        "seed {seed}: the fast region refuses client writes: {refusal}"
    );
    for &i in all.iter().filter(|&&i| i != FAST) {
        assert!(
            !holds(&cluster, i, table, "ahead").await,
            "seed {seed}: {} applied a change stamped {SHIFT_MILLIS} ms ahead",
            cluster.region(i)
        );
    }
    phase(&mut cluster, &all, 3).await;

    // While the fast region is still ahead, one region is lost for good: killed, its replica
    // removed from a survivor. Every survivor, the fast one included, shows the table ACTIVE
    // without it within seconds, and the next control-plane call is accepted.
    cluster.heal_all();
    cluster.kill(REMOVED).await;
    let first = cluster.client(0, OP_TIMEOUT);
    first
        .update_table()
        .table_name(table)
        .replica_updates(replica_delete(REGIONS[REMOVED]))
        .send()
        .await
        .expect("ReplicaUpdates Delete of the dead region's replica succeeds");
    wait_for_group_within(&cluster, table, &survivors, AT_ONCE, true).await;
    first
        .update_table()
        .table_name(table)
        .replica_updates(replica_update(REGIONS[1]))
        .send()
        .await
        .expect("the next UpdateTable is accepted at once, not ResourceInUseException");
    phase(&mut cluster, &survivors, 3).await;

    // Its clock fixed, the fast region restarts, and the chaos goes on.
    cluster.kill(FAST).await;
    cluster.set_env(FAST, &[]);
    cluster.restart(FAST).await;
    workload.follow(&cluster, FAST);
    phase(&mut cluster, &survivors, 5).await;

    let acked = workload.finish().await;
    cluster.heal_all();
    eprintln!("seed {seed}: {acked} writes acknowledged, {faults:?}");
    assert!(
        acked > 500,
        "seed {seed}: the workload ran ({acked} writes)"
    );

    // The survivors settle: the same items everywhere, every expired one swept (so nothing
    // is in flight between them). Then the removed region comes back with its stale copy: it
    // hears it was removed and drops the copy, and nothing of it comes back into them.
    let mut before = Vec::new();
    let settled = wait_until(Duration::from_secs(90), async || {
        before.clear();
        for &i in &survivors {
            match scan(&cluster, i, table).await {
                Some(items) => before.push(items),
                None => return false,
            }
        }
        before.windows(2).all(|w| w[0] == w[1])
            && before[0].values().all(|item| !item.contains("\"exp\""))
    })
    .await;
    assert!(
        settled,
        "seed {seed}: the survivors hold the same items, none expired: {before:#?}"
    );
    cluster.restart(REMOVED).await;
    let removed = cluster.client(REMOVED, OP_TIMEOUT);
    let mut answer = String::new();
    let dropped = wait_until(WAIT, async || {
        match removed.describe_table().table_name(table).send().await {
            Ok(described) => {
                answer = format!("{described:?}");
                false
            }
            Err(e) => {
                answer = error_code(&e);
                answer == "ResourceNotFoundException"
            }
        }
    })
    .await;
    assert!(
        dropped,
        "seed {seed}: the removed region drops its copy within {WAIT:?}; last: {answer}"
    );
    wait_for_group(&cluster, table, &survivors).await;
    assert!(
        wait_until(WAIT, async || holds(&cluster, 0, table, "ahead").await).await,
        "seed {seed}: the write stamped ahead arrives once real time reaches its stamp"
    );
    cluster.stop(REMOVED).await;
    let after = assert_converged(&mut cluster, &survivors, table, seed).await;
    assert!(
        after == before[0],
        "seed {seed}: the survivors' items changed once the removed region came back"
    );
}
