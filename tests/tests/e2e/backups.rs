//! Continuous backups, point-in-time restore and on-demand backups, through the AWS SDK: a
//! randomized oracle (a seeded mix of every kind of write over minutes of injected clock,
//! restored to recorded instants from the log and from the table's Kafka topic on tansu),
//! backups that outlive restarts, trimming and their table, DynamoDB's errors, and nodes
//! killed in the middle of a backup and of a restore.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::DateTime;
use aws_sdk_dynamodb::types::{
    AttributeValue, BackupStatus, BackupTypeFilter, BillingMode, Delete, DeleteRequest,
    GlobalSecondaryIndex, KeyType, LocalSecondaryIndex, PointInTimeRecoverySpecification,
    Projection, ProjectionType, Put, PutRequest, ScalarAttributeType, TableStatus,
    TransactWriteItem, Update, WriteRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidemark_core::{Clock, ManualClock};
use tidemark_tests::{ChildNode, TestNode, client_for, wait_until};

use crate::common::{
    assert_fails_with, attribute, build_started, enable_pitr, error_code, key_element, n,
    node_binary, publish, published, restore_command, s, scan_all, seed,
};
use tidemark_tests::load::batch_load;

const START_MILLIS: u64 = 1_800_000_000_000;
const INDEXES: [&str; 2] = ["by_group", "by_value"];

/// A table keyed by `p` (S) and `c` (N), with a GSI on `g` and an LSI on `v`.
async fn create_orders(client: &Client, name: &str) {
    let projection = |kind| Projection::builder().projection_type(kind).build();
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("p", KeyType::Hash))
        .key_schema(key_element("c", KeyType::Range))
        .attribute_definitions(attribute("p", ScalarAttributeType::S))
        .attribute_definitions(attribute("c", ScalarAttributeType::N))
        .attribute_definitions(attribute("g", ScalarAttributeType::S))
        .attribute_definitions(attribute("v", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(INDEXES[0])
                .key_schema(key_element("g", KeyType::Hash))
                .projection(projection(ProjectionType::All))
                .build()
                .unwrap(),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(INDEXES[1])
                .key_schema(key_element("p", KeyType::Hash))
                .key_schema(key_element("v", KeyType::Range))
                .projection(projection(ProjectionType::KeysOnly))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
}

/// Everything a table shows: its items and each index's entries, in a comparable form.
type Contents = BTreeMap<String, Vec<String>>;

async fn contents(client: &Client, table: &str) -> Contents {
    let mut all = BTreeMap::new();
    all.insert("table".to_string(), scan_all(client, table, None).await);
    for index in INDEXES {
        all.insert(
            index.to_string(),
            scan_all(client, table, Some(index)).await,
        );
    }
    all
}

/// Asserts two recorded contents are equal, naming the first differences rather than
/// printing whole tables.
fn assert_same(actual: &Contents, expected: &Contents, what: &str) {
    for (part, want) in expected {
        let got = actual.get(part).cloned().unwrap_or_default();
        let missing: Vec<&String> = want.iter().filter(|i| !got.contains(i)).take(3).collect();
        let extra: Vec<&String> = got.iter().filter(|i| !want.contains(i)).take(3).collect();
        assert!(
            missing.is_empty() && extra.is_empty() && got.len() == want.len(),
            "{what}: {part} has {} entries where {} were expected; missing (first 3) {missing:?}; \
             unexpected (first 3) {extra:?}",
            got.len(),
            want.len()
        );
    }
}

async fn wait_active(client: &Client, table: &str) {
    let active = wait_until(Duration::from_secs(60), async || {
        let described = client.describe_table().table_name(table).send().await;
        described.is_ok_and(|d| d.table().unwrap().table_status() == Some(&TableStatus::Active))
    })
    .await;
    assert!(active, "{table} did not become ACTIVE within a minute");
}

/// One random write of any kind to the `orders` table, at the clock's current instant.
async fn random_write(client: &Client, rng: &mut StdRng, now_seconds: u64) {
    let key = |rng: &mut StdRng| {
        (
            format!("k{}", rng.random_range(0..12)),
            rng.random_range(0..3).to_string(),
        )
    };
    let value = |rng: &mut StdRng| -> HashMap<String, AttributeValue> {
        let (p, c) = key(rng);
        let mut item = HashMap::from([
            ("p".to_string(), s(&p)),
            ("c".to_string(), n(&c)),
            ("v".to_string(), n(&rng.random_range(0..1000).to_string())),
            ("d".to_string(), s(&"x".repeat(rng.random_range(0..64)))),
        ]);
        if rng.random_bool(0.7) {
            item.insert("g".into(), s(&format!("g{}", rng.random_range(0..4))));
        }
        if rng.random_bool(0.3) {
            let expiry = now_seconds + rng.random_range(0..90);
            item.insert("exp".into(), n(&expiry.to_string()));
        }
        item
    };
    let key_of = |(p, c): (String, String)| {
        HashMap::from([("p".to_string(), s(&p)), ("c".to_string(), n(&c))])
    };
    match rng.random_range(0..100) {
        0..35 => {
            let item = value(rng);
            client
                .put_item()
                .table_name("orders")
                .set_item(Some(item))
                .send()
                .await
                .expect("put");
        }
        35..60 => {
            client
                .update_item()
                .table_name("orders")
                .set_key(Some(key_of(key(rng))))
                .update_expression("SET v = if_not_exists(v, :zero) + :one, g = :g")
                .expression_attribute_values(":zero", n("0"))
                .expression_attribute_values(":one", n("1"))
                .expression_attribute_values(":g", s(&format!("g{}", rng.random_range(0..4))))
                .send()
                .await
                .expect("update");
        }
        60..75 => {
            client
                .delete_item()
                .table_name("orders")
                .set_key(Some(key_of(key(rng))))
                .send()
                .await
                .expect("delete");
        }
        75..88 => {
            let mut seen = std::collections::HashSet::new();
            let mut requests = Vec::new();
            for _ in 0..rng.random_range(2..6) {
                let item = value(rng);
                let k = (item["p"].clone(), item["c"].clone());
                if !seen.insert(format!("{k:?}")) {
                    continue;
                }
                let request = match rng.random_bool(0.75) {
                    true => WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                        .build(),
                    false => WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .key("p", k.0)
                                .key("c", k.1)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                };
                requests.push(request);
            }
            client
                .batch_write_item()
                .request_items("orders", requests)
                .send()
                .await
                .expect("batch write");
        }
        _ => {
            let mut seen = std::collections::HashSet::new();
            let mut actions = Vec::new();
            for _ in 0..rng.random_range(2..4) {
                let item = value(rng);
                let k = (item["p"].clone(), item["c"].clone());
                if !seen.insert(format!("{k:?}")) {
                    continue;
                }
                let action = match rng.random_range(0..3) {
                    0 => TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name("orders")
                                .set_item(Some(item))
                                .build()
                                .unwrap(),
                        )
                        .build(),
                    1 => TransactWriteItem::builder()
                        .update(
                            Update::builder()
                                .table_name("orders")
                                .key("p", k.0)
                                .key("c", k.1)
                                .update_expression("SET v = :v REMOVE g")
                                .expression_attribute_values(":v", item["v"].clone())
                                .build()
                                .unwrap(),
                        )
                        .build(),
                    _ => TransactWriteItem::builder()
                        .delete(
                            Delete::builder()
                                .table_name("orders")
                                .key("p", k.0)
                                .key("c", k.1)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                };
                actions.push(action);
            }
            client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .send()
                .await
                .expect("transaction");
        }
    }
}

#[tokio::test]
async fn restoring_to_each_recorded_instant_gives_the_table_exactly_as_it_was_then() {
    let mut rng = StdRng::seed_from_u64(seed());
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let broker = tidemark_tests::kafka::Broker::start().await;
    let brokers = broker.brokers();
    let kafka = tidemark_kafka::KafkaSettings::new(brokers.clone());
    let node = TestNode::start_configured(
        move |config| {
            config.ttl_period = Duration::from_secs(3600);
            config.kafka = Some(kafka);
        },
        clock.clone(),
    )
    .await;
    let client = node.client();
    create_orders(&client, "orders").await;
    crate::common::enable_ttl(&client, "orders", "exp").await;
    enable_pitr(&client, "orders").await;
    // The table's changes also go to a topic, from its start.
    let topic = format!("oracle-{}", std::process::id());
    publish(&node, "orders", &topic, "kds", "history").await;
    // Another table's writes interleave with the source's in the log, sometimes more of them,
    // sometimes fewer (the restore reads the log differently for each).
    crate::common::create_table(&client, "noise", false).await;
    let store = node.node().engine().clone();

    // Several minutes of writes, with the table recorded at chosen instants.
    let mut recorded: Vec<(u64, Contents)> = Vec::new();
    for step in 0..60 {
        clock.advance(rng.random_range(1..8_000));
        let now = clock.now_millis();
        for _ in 0..rng.random_range(1..12) {
            random_write(&client, &mut rng, now / 1000).await;
        }
        let noise = if step < 30 { 10..40 } else { 0..3 };
        for i in 0..rng.random_range(noise) {
            client
                .put_item()
                .table_name("noise")
                .item("p", s(&format!("n{step}-{i}")))
                .send()
                .await
                .expect("put to another table");
        }
        // TTL expiry, at this instant, through the same path the sweeper takes.
        let worker = store.clone();
        tokio::task::spawn_blocking(
            move || while worker.ttl.expire_due_items(512).unwrap().expired > 0 {},
        )
        .await
        .unwrap();
        if step % 6 == 5 {
            recorded.push((now, contents(&client, "orders").await));
        }
    }
    let final_contents = contents(&client, "orders").await;
    clock.advance(1_000);
    published(&node).await;

    for (i, (at, expected)) in recorded.iter().enumerate() {
        let target = format!("orders_at_{i}");
        let restored = client
            .restore_table_to_point_in_time()
            .source_table_name("orders")
            .target_table_name(&target)
            .restore_date_time(DateTime::from_millis(*at as i64))
            .send()
            .await
            .expect("restore");
        let summary = restored
            .table_description()
            .unwrap()
            .restore_summary()
            .unwrap();
        // Instants travel as float seconds; the SDK reads them back through an f64, which can
        // land a hair below the millisecond.
        let answered = summary.restore_date_time().to_millis().unwrap();
        assert!(
            (answered - *at as i64).abs() <= 1,
            "restored {answered}, asked for {at}"
        );
        wait_active(&client, &target).await;
        assert_same(
            &contents(&client, &target).await,
            expected,
            &format!("the table restored to instant {i} ({at})"),
        );
        // The same instant from the Kafka topic (its items; indexes are not in a topic).
        let from_kafka = format!("orders_kafka_{i}");
        let (ok, output) = restore_command(
            &node,
            [
                "--topic",
                &topic,
                "--table",
                &from_kafka,
                "--source-table",
                "orders",
                "--at",
                &format!("{}.{:03}", at / 1000, at % 1000),
                "--brokers",
                &brokers,
                "--key",
                "p:S",
                "--sort",
                "c:N",
            ]
            .map(String::from)
            .to_vec(),
        )
        .await;
        assert!(ok, "{output}");
        assert_eq!(
            scan_all(&client, &from_kafka, None).await,
            expected["table"],
            "the table restored from Kafka to instant {i} ({at})"
        );
    }
    let latest = client
        .restore_table_to_point_in_time()
        .source_table_arn("arn:aws:dynamodb:us-east-1:000000000000:table/orders")
        .target_table_name("orders_latest")
        .use_latest_restorable_time(true)
        .send()
        .await
        .expect("restore to the latest time");
    assert!(
        latest
            .table_description()
            .unwrap()
            .restore_summary()
            .unwrap()
            .restore_in_progress()
    );
    wait_active(&client, "orders_latest").await;
    assert_same(
        &contents(&client, "orders_latest").await,
        &final_contents,
        "latest",
    );

    // What a restore does not carry over: streams, TTL, point-in-time recovery.
    let ttl = client
        .describe_time_to_live()
        .table_name("orders_latest")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .unwrap()
            .time_to_live_status()
            .unwrap()
            .as_str(),
        "DISABLED"
    );
    let pitr = client
        .describe_continuous_backups()
        .table_name("orders_latest")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pitr.continuous_backups_description()
            .unwrap()
            .continuous_backups_status()
            .as_str(),
        "DISABLED"
    );
}

async fn put_items(client: &Client, table: &str, range: std::ops::Range<u32>, tag: &str) {
    let (first, tag) = (u64::from(range.start), tag.to_string());
    let count = u64::from(range.end) - first;
    batch_load(client, table, count, 1, move |i| {
        HashMap::from([
            ("p".to_string(), s(&format!("k{}", first + i))),
            ("c".to_string(), n("0")),
            ("v".to_string(), n(&(first + i).to_string())),
            ("g".to_string(), s(&tag)),
        ])
    })
    .await;
}

/// RestoreTableToPointInTime of `source` into `target` at the latest restorable time, ready
/// for more settings or to send.
fn restore_latest(
    client: &Client,
    source: &str,
    target: &str,
) -> aws_sdk_dynamodb::operation::restore_table_to_point_in_time::builders::RestoreTableToPointInTimeFluentBuilder{
    client
        .restore_table_to_point_in_time()
        .source_table_name(source)
        .target_table_name(target)
        .use_latest_restorable_time(true)
}

async fn wait_available(client: &Client, arn: &str) {
    let available = wait_until(Duration::from_secs(60), async || {
        let described = client.describe_backup().backup_arn(arn).send().await;
        described.is_ok_and(|d| {
            d.backup_description()
                .unwrap()
                .backup_details()
                .unwrap()
                .backup_status()
                == &BackupStatus::Available
        })
    })
    .await;
    assert!(
        available,
        "backup {arn} did not become AVAILABLE within a minute"
    );
}

async fn restore_backup(client: &Client, arn: &str, target: &str) {
    client
        .restore_table_from_backup()
        .backup_arn(arn)
        .target_table_name(target)
        .send()
        .await
        .expect("restore from backup");
    wait_active(client, target).await;
}

#[tokio::test]
async fn backups_outlive_restarts_trimmed_history_and_their_table() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let mut node = TestNode::start_configured(
        |config| config.store.history_window = Duration::from_secs(60),
        clock.clone(),
    )
    .await;
    let client = node.client();
    create_orders(&client, "orders").await;
    enable_pitr(&client, "orders").await;
    put_items(&client, "orders", 0..300, "first").await;
    let backed_up = contents(&client, "orders").await;
    let backup = client
        .create_backup()
        .table_name("orders")
        .backup_name("before-second")
        .send()
        .await
        .expect("create backup");
    let details = backup.backup_details().unwrap();
    assert_eq!(details.backup_type().as_str(), "USER");
    let arn = details.backup_arn().to_string();
    // Writes right after the call are not in the backup, however late its copy runs.
    put_items(&client, "orders", 200..400, "second").await;
    wait_available(&client, &arn).await;
    let last_state = contents(&client, "orders").await;

    // The history window passes, the log is trimmed, the node restarts.
    clock.advance(10 * 60 * 1000);
    node.node().store().trim_history().expect("trim");
    node.restart().await;
    let client = node.client();
    client
        .delete_table()
        .table_name("orders")
        .send()
        .await
        .expect("delete the source");

    restore_backup(&client, &arn, "from_user_backup").await;
    assert_same(
        &contents(&client, "from_user_backup").await,
        &backed_up,
        "user backup",
    );

    // Deleting a table with point-in-time recovery on left a system backup of its last state.
    let system = client
        .list_backups()
        .backup_type(BackupTypeFilter::System)
        .send()
        .await
        .unwrap();
    let summaries = system.backup_summaries();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(
        summaries[0].backup_name(),
        Some("orders$DeletedTableBackup")
    );
    let system_arn = summaries[0].backup_arn().unwrap().to_string();
    restore_backup(&client, &system_arn, "from_system_backup").await;
    assert_same(
        &contents(&client, "from_system_backup").await,
        &last_state,
        "system backup",
    );

    let user = client.list_backups().send().await.unwrap();
    assert_eq!(
        user.backup_summaries().len(),
        1,
        "USER is ListBackups' default filter"
    );
    let described = client
        .describe_backup()
        .backup_arn(&arn)
        .send()
        .await
        .unwrap();
    let source = described
        .backup_description()
        .unwrap()
        .source_table_details()
        .unwrap();
    assert_eq!(source.item_count(), Some(300));
    let deleted = client
        .delete_backup()
        .backup_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted
            .backup_description()
            .unwrap()
            .backup_details()
            .unwrap()
            .backup_status(),
        &BackupStatus::Deleted
    );
    assert_fails_with(
        client.describe_backup().backup_arn(&arn).send().await,
        "BackupNotFoundException",
    );
}

#[tokio::test]
async fn backup_and_restore_calls_answer_dynamodbs_errors() {
    let node = TestNode::start().await;
    let client = node.client();
    assert_fails_with(
        client
            .describe_continuous_backups()
            .table_name("nothing")
            .send()
            .await,
        "TableNotFoundException",
    );
    create_orders(&client, "orders").await;
    put_items(&client, "orders", 0..10, "only").await;

    let described = client
        .describe_continuous_backups()
        .table_name("orders")
        .send()
        .await
        .unwrap();
    let description = described.continuous_backups_description().unwrap();
    assert_eq!(description.continuous_backups_status().as_str(), "DISABLED");

    let not_enabled = restore_latest(&client, "orders", "copy")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&not_enabled),
        "PointInTimeRecoveryUnavailableException"
    );

    assert_fails_with(
        client
            .update_continuous_backups()
            .table_name("orders")
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .recovery_period_in_days(36)
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
        "ValidationException",
    );
    enable_pitr(&client, "orders").await;
    let window = client
        .describe_continuous_backups()
        .table_name("orders")
        .send()
        .await
        .unwrap();
    let pitr = window
        .continuous_backups_description()
        .unwrap()
        .point_in_time_recovery_description()
        .unwrap();
    assert_eq!(pitr.recovery_period_in_days(), Some(35));
    let earliest = pitr
        .earliest_restorable_date_time()
        .unwrap()
        .to_millis()
        .unwrap();

    assert_fails_with(
        client
            .restore_table_to_point_in_time()
            .source_table_name("orders")
            .target_table_name("copy")
            .restore_date_time(DateTime::from_millis(earliest - 60_000))
            .send()
            .await,
        "InvalidRestoreTimeException",
    );
    assert_fails_with(
        restore_latest(&client, "orders", "orders").send().await,
        "TableAlreadyExistsException",
    );
    assert_fails_with(
        restore_latest(&client, "nothing", "copy").send().await,
        "TableNotFoundException",
    );
    assert_fails_with(
        client
        .restore_table_from_backup()
        .backup_arn(
            "arn:aws:dynamodb:us-east-1:000000000000:table/orders/backup/01234567890123-abcdef01",
        )
        .target_table_name("copy")
        .send()
        .await,
        "BackupNotFoundException",
    );

    // An index override keeps only the indexes named.
    restore_latest(&client, "orders", "no_lsi")
        .set_local_secondary_index_override(Some(Vec::new()))
        .send()
        .await
        .expect("restore without the local index");
    wait_active(&client, "no_lsi").await;
    let table = client
        .describe_table()
        .table_name("no_lsi")
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    assert!(table.local_secondary_indexes().is_empty());
    assert_eq!(table.global_secondary_indexes().len(), 1);
    assert_eq!(table.item_count(), Some(10));

    // ListBackups pages.
    for name in ["one", "two", "three"] {
        client
            .create_backup()
            .table_name("orders")
            .backup_name(name)
            .send()
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .list_backups()
            .table_name("orders")
            .limit(2)
            .set_exclusive_start_backup_arn(start)
            .send()
            .await
            .unwrap();
        names.extend(
            page.backup_summaries()
                .iter()
                .map(|b| b.backup_name().unwrap().to_string()),
        );
        start = page.last_evaluated_backup_arn().map(str::to_string);
        if start.is_none() {
            break;
        }
    }
    assert_eq!(names, ["one", "two", "three"]);
}

/// Items the crash tests load: enough that a slowed restore or backup is caught midway.
const CRASH_ITEMS: u32 = 30_000;

#[tokio::test]
async fn a_node_killed_during_a_backup_and_a_restore_finishes_both_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Each batch of a restore and each 10,000 items of a backup copy wait, so the kill lands
    // in the middle of both.
    let slow = [(
        "FAILPOINTS",
        "restore-load=sleep(400);backup-copy=sleep(400)",
    )];
    let child = ChildNode::start_with_env(node_binary(), &data, &[], &slow).await;
    let client = client_for(&child.endpoint());
    create_orders(&client, "orders").await;
    enable_pitr(&client, "orders").await;
    put_items(&client, "orders", 0..CRASH_ITEMS, "crash").await;
    let expected = contents(&client, "orders").await;
    let backup = client
        .create_backup()
        .table_name("orders")
        .backup_name("interrupted")
        .send()
        .await
        .unwrap();
    let arn = backup.backup_details().unwrap().backup_arn().to_string();
    restore_latest(&client, "orders", "restored")
        .send()
        .await
        .unwrap();
    // Writes after both calls are in neither.
    put_items(&client, "orders", 0..100, "later").await;
    assert!(
        build_started(&client, "restored").await,
        "the restore never started"
    );
    let table = client
        .describe_table()
        .table_name("restored")
        .send()
        .await
        .unwrap();
    assert_eq!(
        table.table().unwrap().table_status(),
        Some(&TableStatus::Creating)
    );
    assert_fails_with(
        client
            .get_item()
            .table_name("restored")
            .key("p", s("k1"))
            .key("c", n("0"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    child.kill().await;

    let child = ChildNode::start(node_binary(), &data, &[]).await;
    let client = client_for(&child.endpoint());
    wait_active(&client, "restored").await;
    assert_same(&contents(&client, "restored").await, &expected, "restore");
    wait_available(&client, &arn).await;
    restore_backup(&client, &arn, "from_backup").await;
    assert_same(&contents(&client, "from_backup").await, &expected, "backup");
    child.kill().await;
}
