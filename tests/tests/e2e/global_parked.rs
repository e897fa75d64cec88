//! A replicated change a region cannot apply, end to end (issue 28, item 4): it is put aside
//! (the rest of its batch applied, the batch acknowledged), listed by `GET /admin/replicas`,
//! counted on `/metrics`, retried by `tidemark replicas retry` and at start, and the link it
//! came on goes on carrying the other region's writes.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use tidemark_core::model::AttributeValue as CoreValue;
use tidemark_core::model::Item as CoreItem;
use tidemark_replicator::protocol::{CHANGES_CONTENT_TYPE, ChangeBatch, WireChange};
use tidemark_tests::cluster::{Cluster, replica_create};
use tidemark_tests::wait_until;

use crate::common::{admin_json, create_table, get_consistent, node_binary, s, wait_for_group};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const OP_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

/// A replicated change of `table` as region `region` ships it, with `p` as the key.
fn change(table: &str, p: CoreValue, clock: u64, region: &str) -> WireChange {
    let keys: CoreItem = BTreeMap::from([("p".to_string(), p)]);
    let mut image = keys.clone();
    image.insert("v".into(), CoreValue::S("from afar".into()));
    WireChange {
        table: table.into(),
        keys,
        new_image: Some(image),
        clock,
        region: region.into(),
    }
}

/// The value of the metric line that starts with `name` (labels included), if any.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn put(client: &Client, table: &str, key: &str) {
    client
        .put_item()
        .table_name(table)
        .item("p", s(key))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem {key} into {table} succeeds: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_a_region_cannot_apply_is_put_aside_and_its_link_goes_on() {
    let mut cluster = Cluster::start(node_binary(), &REGIONS, &["--durability", "buffer"]).await;
    let (a, b) = (0, 1);
    let (ca, cb) = (cluster.client(a, OP_TIMEOUT), cluster.client(b, OP_TIMEOUT));
    let table = "parked";
    create_table(&ca, table, false).await;
    ca.update_table()
        .table_name(table)
        .replica_updates(replica_create(REGIONS[b]))
        .send()
        .await
        .expect("ReplicaUpdates Create succeeds");
    wait_for_group(&cluster, table, &[a, b]).await;

    // A batch from eu-west-1 with a change whose key does not fit the table (a number where
    // the key is a string) between two that do.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as u64;
    let clock = now << 16;
    let batch = ChangeBatch {
        changes: vec![
            change(table, CoreValue::S("before".into()), clock, REGIONS[b]),
            change(table, CoreValue::N(7.into()), clock + 1, REGIONS[b]),
            change(table, CoreValue::S("after".into()), clock + 2, REGIONS[b]),
        ],
        ..ChangeBatch::default()
    };
    let endpoint = cluster.endpoint(a);
    let answer = reqwest::Client::new()
        .post(format!("{endpoint}/_tidemark/peer/changes"))
        .header("content-type", CHANGES_CONTENT_TYPE)
        .header("x-tidemark-region", REGIONS[b])
        .body(batch.encode())
        .send()
        .await
        .expect("the peer endpoint answers");
    assert_eq!(
        answer.status().as_u16(),
        200,
        "expected the batch to be acknowledged, its refused change put aside"
    );
    let answer: serde_json::Value = answer.json().await.expect("a JSON answer");
    assert_eq!(answer["written"], 2, "{answer}");
    assert_eq!(answer["parked"], 1, "{answer}");
    for key in ["before", "after"] {
        assert!(
            get_consistent(&ca, table, key).await.is_some(),
            "expected {key}, batched with the refused change, to be applied"
        );
    }

    // Operators see it, and it is counted.
    let status = admin_json(&format!("{endpoint}/admin/replicas")).await;
    assert_eq!(status["ParkedCount"], 1, "{status}");
    let parked = &status["Parked"][0];
    assert_eq!(parked["Table"], table, "{status}");
    assert_eq!(parked["Keys"]["p"]["N"], "7", "{status}");
    assert_eq!(parked["ReceivedFrom"], REGIONS[b], "{status}");
    assert!(
        parked["Reason"]
            .as_str()
            .is_some_and(|r| r.contains("key schema")),
        "{status}"
    );
    let text = reqwest::get(format!("{endpoint}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert_eq!(
        metric(&text, "tidemark_replication_parked"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!("tidemark_replication_parked_total{{table=\"{table}\"}}")
        ),
        Some(1.0),
        "{text}"
    );

    // The link from eu-west-1 goes on.
    put(&cb, table, "later").await;
    let arrived = wait_until(WAIT, async || {
        get_consistent(&ca, table, "later").await.is_some()
    })
    .await;
    assert!(
        arrived,
        "expected eu-west-1's later write to reach us-east-1"
    );

    // Retried on demand, it still cannot be applied, and stays.
    let retried = tokio::process::Command::new(node_binary())
        .args(["replicas", "retry", "--endpoint", &endpoint])
        .output()
        .await
        .expect("run tidemark replicas retry");
    assert!(retried.status.success(), "{retried:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&retried.stdout).expect("the report is JSON");
    assert_eq!(report["Retried"], 1, "{report}");
    assert_eq!(report["StillParked"], 1, "{report}");

    // It is kept across a restart (and retried at start, still in vain).
    cluster.stop(a).await;
    cluster.restart(a).await;
    let status = admin_json(&format!("{}/admin/replicas", cluster.endpoint(a))).await;
    assert_eq!(status["ParkedCount"], 1, "{status}");
    cluster.stop(a).await;
    cluster.stop(b).await;
}
