//! Replication and power cuts: a region acknowledges another's batch only once it is on disk,
//! whatever its durability mode. Here the receiver's journal sync fails (the `journal-sync`
//! failpoint the crash tests use) right after it applied a batch: it must not answer, so the
//! sender keeps the batch and sends it again to the restarted receiver.

use std::time::Duration;

use aws_sdk_dynamodb::types::ReplicaStatus;
use tidemark_tests::cluster::{client_with_timeout, replica_create};
use tidemark_tests::proxy::FaultProxy;
use tidemark_tests::{ChildNode, wait_until};

use crate::common::{admin_json, create_table, node_binary, s};

const SENDER: &str = "us-east-1";
const RECEIVER: &str = "eu-west-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_whose_sync_fails_at_the_receiver_is_sent_again_after_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = "127.0.0.1:9".parse().unwrap();
    // Each region reaches the other through a proxy, so a restarted node keeps its URL.
    let (to_receiver, to_sender) = (
        FaultProxy::start(nowhere).await,
        FaultProxy::start(nowhere).await,
    );
    let args = |region: &str, peer: &str, proxy: &FaultProxy| {
        vec![
            "--region".to_string(),
            region.to_string(),
            "--peer".to_string(),
            format!("{peer}={}", proxy.url()),
            "--durability".to_string(),
            "buffer".to_string(),
        ]
    };
    let sender_args = args(SENDER, RECEIVER, &to_receiver);
    let sender_args: Vec<&str> = sender_args.iter().map(String::as_str).collect();
    let sender = ChildNode::start(node_binary(), &dir.path().join("sender"), &sender_args).await;
    to_sender.set_upstream(sender.addr());
    let receiver_args = args(RECEIVER, SENDER, &to_sender);
    let receiver_args: Vec<&str> = receiver_args.iter().map(String::as_str).collect();
    let receiver_dir = dir.path().join("receiver");
    // Under `buffer` nothing is synced until a change commits: the first sync the receiver
    // makes is for the replicated batch, and it fails.
    let receiver = ChildNode::start_with_env(
        node_binary(),
        &receiver_dir,
        &receiver_args,
        &[("FAILPOINTS", "journal-sync=return")],
    )
    .await;
    to_receiver.set_upstream(receiver.addr());

    let table = "durable";
    let client = client_with_timeout(&sender.endpoint(), SENDER, Duration::from_secs(30));
    create_table(&client, table, false).await;
    client
        .update_table()
        .table_name(table)
        .replica_updates(replica_create(RECEIVER))
        .send()
        .await
        .expect("add a replica");
    let active = wait_until(Duration::from_secs(60), async || {
        let described = client.describe_table().table_name(table).send().await;
        described.is_ok_and(|d| {
            d.table()
                .and_then(|t| t.replicas.as_ref())
                .is_some_and(|r| {
                    r.iter().any(|r| {
                        r.region_name() == Some(RECEIVER)
                            && r.replica_status() == Some(&ReplicaStatus::Active)
                    })
                })
        })
    })
    .await;
    assert!(active, "the receiver's replica becomes ACTIVE");

    // Once the group has settled, the receiver has committed nothing yet, so it is still up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let there = client_with_timeout(&receiver.endpoint(), RECEIVER, Duration::from_secs(5));
    assert!(
        there.list_tables().send().await.is_ok(),
        "the receiver has synced nothing before the write"
    );
    client
        .put_item()
        .table_name(table)
        .item("p", s("shipped"))
        .item("v", s("1"))
        .send()
        .await
        .expect("a write in the sending region");
    let status = receiver.exited(Duration::from_secs(60)).await;
    assert!(
        !status.success(),
        "a receiver whose journal sync failed stops ({status})"
    );
    let replicas = format!("{}/admin/replicas", sender.endpoint());
    let held = |status: &serde_json::Value| {
        status["Replicas"]
            .as_array()
            .and_then(|links| {
                links
                    .iter()
                    .find(|l| l["Table"] == table && l["Region"] == RECEIVER)
            })
            .and_then(|link| link["LagRecords"].as_u64())
    };
    let status = admin_json(&replicas).await;
    assert_eq!(
        held(&status),
        Some(1),
        "the receiver never acknowledged the write: the sender still holds it ({status})"
    );

    let receiver = ChildNode::start(node_binary(), &receiver_dir, &receiver_args).await;
    to_receiver.set_upstream(receiver.addr());
    let there = client_with_timeout(&receiver.endpoint(), RECEIVER, Duration::from_secs(5));
    let arrived = wait_until(Duration::from_secs(30), async || {
        there
            .get_item()
            .table_name(table)
            .key("p", s("shipped"))
            .consistent_read(true)
            .send()
            .await
            .is_ok_and(|got| got.item().is_some())
    })
    .await;
    assert!(
        arrived,
        "the sender never heard the batch was received, so it sent it again"
    );
    let caught_up = wait_until(Duration::from_secs(30), async || {
        held(&admin_json(&replicas).await) == Some(0)
    })
    .await;
    assert!(caught_up, "acknowledged once on the receiver's disk");
}
