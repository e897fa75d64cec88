//! Crash safety: a node process killed with SIGKILL under concurrent writes, or whose journal
//! sync fails under them (it must then exit non-zero by itself), loses no acknowledged write,
//! applies in-flight writes wholly or not at all, and its change log has no gaps and exactly
//! one record per applied change. Also: SIGTERM shuts down cleanly.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tidemark_core::model::AttributeValue as CoreValue;
use tidemark_core::{ChangeKind, ChangeSeq, Store, StoreConfig};
use tidemark_tests::{ChildNode, client_for, wait_until};

use crate::common::{attribute, key_element, n, s};

const WRITERS: usize = 16;

#[derive(Default)]
struct Outcome {
    /// Items whose put was acknowledged: key → value.
    acked: HashMap<String, i64>,
    /// Items whose put was in flight when the node died.
    uncertain: HashMap<String, i64>,
    acked_increments: u64,
    uncertain_increments: u64,
}

async fn write_until_dead(
    client: aws_sdk_dynamodb::Client,
    writer: usize,
    acked: Arc<AtomicUsize>,
) -> Outcome {
    let mut outcome = Outcome::default();
    for i in 0i64.. {
        let key = format!("w{writer}-{i}");
        let put = client
            .put_item()
            .table_name("crash")
            .item("p", s(&key))
            .item("a", n(&i.to_string()))
            .item("b", n(&i.to_string()))
            .item("g", s(&format!("group{}", i % 5)))
            .send()
            .await;
        match put {
            Ok(_) => {
                acked.fetch_add(1, Ordering::Relaxed);
                outcome.acked.insert(key, i)
            }
            Err(_) => {
                outcome.uncertain.insert(key, i);
                return outcome;
            }
        };
        if i % 4 == 0 {
            let increment = client
                .update_item()
                .table_name("crash")
                .key("p", s("counter"))
                .update_expression("SET n = if_not_exists(n, :zero) + :one")
                .expression_attribute_values(":zero", n("0"))
                .expression_attribute_values(":one", n("1"))
                .send()
                .await;
            match increment {
                Ok(_) => outcome.acked_increments += 1,
                Err(_) => {
                    outcome.uncertain_increments += 1;
                    return outcome;
                }
            }
        }
    }
    outcome
}

async fn create_table_with_index(client: &aws_sdk_dynamodb::Client) {
    use aws_sdk_dynamodb::types::{
        BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name("crash")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .attribute_definitions(attribute("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_g")
                .key_schema(key_element("g", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

fn number(v: &AttributeValue) -> i64 {
    match v {
        AttributeValue::N(text) => text.parse().unwrap(),
        other => panic!("not a number: {other:?}"),
    }
}

/// How the node under load dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    /// SIGKILL after at least 1.5 s and 300 acknowledged writes.
    Kill,
    /// Its journal sync fails (the `journal-sync` failpoint, after some syncs): it must stop
    /// acknowledging and exit non-zero by itself.
    FailedSync,
}

async fn crash_and_check(durability: &str, death: Death) {
    let binary = Path::new(env!("CARGO_BIN_EXE_tidemark-node"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env: &[(&str, &str)] = match death {
        Death::Kill => &[],
        Death::FailedSync => &[("FAILPOINTS", "journal-sync=300*off->return")],
    };
    let child = ChildNode::start_with_env(binary, &data, &["--durability", durability], env).await;
    let endpoint = child.endpoint();
    create_table_with_index(&client_for(&endpoint)).await;

    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write_until_dead(client_for(&endpoint), w, acked.clone())))
        .collect();
    match death {
        Death::Kill => {
            // Killed mid-load: after 1.5 s, and once a few hundred writes are in (a busy
            // machine may need longer for them).
            tokio::time::sleep(Duration::from_millis(1500)).await;
            wait_until(Duration::from_secs(60), async || {
                acked.load(Ordering::Relaxed) > 300
            })
            .await;
            child.kill().await;
        }
        Death::FailedSync => {
            let status = child.exited(Duration::from_secs(60)).await;
            assert!(
                !status.success(),
                "a node whose journal sync failed exits non-zero ({status})"
            );
        }
    }
    let mut all = Outcome::default();
    for w in writers {
        let o = w.await.unwrap();
        all.acked.extend(o.acked);
        all.uncertain.extend(o.uncertain);
        all.acked_increments += o.acked_increments;
        all.uncertain_increments += o.uncertain_increments;
    }
    assert!(
        all.acked.len() > 100,
        "the load ran ({} acknowledged writes)",
        all.acked.len()
    );

    let child = ChildNode::start(binary, &data, &["--durability", durability]).await;
    let client = client_for(&child.endpoint());
    let mut present: HashMap<String, i64> = HashMap::new();
    for (key, value, must_exist) in all
        .acked
        .iter()
        .map(|(k, v)| (k, v, true))
        .chain(all.uncertain.iter().map(|(k, v)| (k, v, false)))
    {
        let got = client
            .get_item()
            .table_name("crash")
            .key("p", s(key))
            .send()
            .await
            .unwrap()
            .item;
        match got {
            Some(item) => {
                assert_eq!(
                    (number(&item["a"]), number(&item["b"])),
                    (*value, *value),
                    "{key} applied wholly"
                );
                present.insert(key.clone(), *value);
            }
            None => assert!(!must_exist, "{durability}: acknowledged write {key} lost"),
        }
    }
    let counter = client
        .get_item()
        .table_name("crash")
        .key("p", s("counter"))
        .send()
        .await
        .unwrap()
        .item;
    let counter = counter.map(|i| number(&i["n"])).unwrap_or(0) as u64;
    assert!(
        counter >= all.acked_increments
            && counter <= all.acked_increments + all.uncertain_increments,
        "{durability}: counter {counter}, acknowledged increments {}",
        all.acked_increments
    );
    // Index entries were written in the same commits as their items: exactly one per item.
    let mut indexed = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name("crash")
            .index_name("by_g")
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        indexed += page.count as usize;
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    assert_eq!(
        indexed,
        present.len(),
        "{durability}: one index entry per present item"
    );
    assert!(child.terminate().await.success(), "SIGTERM exits 0");

    // The change log, read directly from the data folder.
    let store = Store::open(StoreConfig::new(&data)).unwrap();
    let records = store.read_changes(ChangeSeq::FIRST, usize::MAX).unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq.get()).collect();
    assert_eq!(
        seqs,
        (1..=records.len() as u64).collect::<Vec<_>>(),
        "{durability}: no gaps"
    );
    let mut seen = HashSet::new();
    let mut counter_records = 0u64;
    for record in &records {
        let Some(CoreValue::S(key)) = record.keys.get("p") else {
            panic!("key")
        };
        if key == "counter" {
            counter_records += 1;
            continue;
        }
        assert_eq!(record.kind, ChangeKind::Insert);
        assert!(
            seen.insert(key.clone()),
            "{durability}: one record for {key}"
        );
        let value = present
            .get(key)
            .unwrap_or_else(|| panic!("{durability}: record for absent item {key}"));
        let new = record.new_image.as_ref().unwrap();
        assert_eq!(new.get("a"), Some(&CoreValue::N((*value).into())));
    }
    assert_eq!(
        seen.len(),
        present.len(),
        "{durability}: every present item has its record"
    );
    assert_eq!(
        counter_records, counter,
        "{durability}: one record per increment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_write_in_sync_mode() {
    crash_and_check("sync", Death::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_journal_sync_stops_the_node_and_loses_no_acknowledged_write() {
    crash_and_check("sync", Death::FailedSync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_write_in_buffer_mode() {
    crash_and_check("buffer", Death::Kill).await;
}
