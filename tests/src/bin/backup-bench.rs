//! Backup and restore benchmarks, for docs/benchmarks.md. Runs a real node (the `tidemark`
//! binary given, release build) as a child process.
//!
//! `backup-bench BINARY ITEMS [BYTES]`: creates a table with point-in-time recovery on and
//! loads ITEMS items of about BYTES bytes (default 1,000) with BatchWriteItem, half of them
//! before an instant it notes. Then times, each from the call until the backup is AVAILABLE
//! or the table ACTIVE:
//! - CreateBackup of the whole table;
//! - RestoreTableToPointInTime to the latest time (every item, nothing to undo);
//! - RestoreTableToPointInTime to the noted instant (half the items, the other half's
//!   changes undone from the log);
//! - RestoreTableFromBackup;
//! - ExportTableToPointInTime of the whole table (into the node's export root), then
//!   ImportTable of that export into a new table, in DynamoDB JSON and in Amazon Ion.
//!
//! With `kafka` as a last argument, it also starts a broker (tansu, or `KAFKA_BROKERS`),
//! publishes the table to a topic (kds format) from its history, and times
//! `tidemark restore --from-kafka` of that topic into a new table.
//!
//! Pauses before each (at least 3 s, and until the node is idle) so that the flushes and
//! compactions of the previous step do not land in it. Prints each as seconds and items/s,
//! then stops the node and prints the disk space of the
//! items and of the change log (the history point-in-time recovery keeps), per million writes.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::DateTime;
use aws_sdk_dynamodb::types::{
    AttributeValue, BackupStatus, BillingMode, ExportFormat, ExportStatus, InputCompressionType,
    InputFormat, KeyType, PointInTimeRecoverySpecification, S3BucketSource,
    TableCreationParameters, TableStatus,
};
use tidemark_tests::load::{
    batch_load, key_element, keyed_table, report_disk_usage, string_attribute,
};
use tidemark_tests::{ChildNode, client_for};

const POLL: Duration = Duration::from_millis(20);
/// Pause between measurements, for the background work of the previous one.
const SETTLE: Duration = Duration::from_secs(3);

fn item(n: u64, bytes: usize) -> tidemark_tests::load::Item {
    // Varied bytes, so the disk figures are not those of a trivially compressible value.
    let mut payload = String::with_capacity(bytes);
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while payload.len() < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        payload.push_str(&format!("{state:016x}"));
    }
    payload.truncate(bytes);
    [
        ("p".to_string(), AttributeValue::S(format!("item-{n:010}"))),
        ("d".to_string(), AttributeValue::S(payload)),
    ]
    .into()
}

async fn wait_active(client: &Client, table: &str) {
    loop {
        let described = client.describe_table().table_name(table).send().await;
        if let Ok(d) = described
            && d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active)
        {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits at least [`SETTLE`], then until the node has been idle (under 5 % of a core) for
/// half a second, at most two minutes: the flushes and compactions of the previous step
/// must not land in the next one.
async fn settle(node: &ChildNode) {
    tokio::time::sleep(SETTLE).await;
    let Some(pid) = node.pid() else { return };
    let started = Instant::now();
    let mut before = tidemark_tests::cpu_seconds(pid).unwrap_or(0.0);
    while started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = tidemark_tests::cpu_seconds(pid).unwrap_or(0.0);
        if now - before < 0.025 {
            break;
        }
        before = now;
    }
    eprintln!(
        "(waited {:.1} s more for the node to go idle)",
        started.elapsed().as_secs_f64()
    );
}

fn report(what: &str, items: u64, took: Duration) {
    println!(
        "{what}: {items} items in {:.2} s, {:.0} items/s",
        took.as_secs_f64(),
        items as f64 / took.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(binary), Some(items)) = (args.get(1), args.get(2).and_then(|a| a.parse().ok()))
    else {
        eprintln!("usage: backup-bench BINARY ITEMS [BYTES]");
        std::process::exit(2);
    };
    let items: u64 = items;
    let bytes: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let broker = match args.last().map(String::as_str) {
        Some("kafka") => Some(tidemark_tests::kafka::Broker::start().await),
        _ => None,
    };
    let brokers = broker.as_ref().map(|b| b.brokers());
    let node_args: Vec<&str> = match &brokers {
        Some(brokers) => vec!["--kafka-brokers", brokers],
        None => Vec::new(),
    };
    let dir = tempfile::tempdir().expect("temporary folder");
    let data = dir.path().join("data");
    let node = ChildNode::start(std::path::Path::new(binary), &data, &node_args).await;
    let client = client_for(&node.endpoint());
    keyed_table(&client, "bench")
        .send()
        .await
        .expect("create table");
    client
        .update_continuous_backups()
        .table_name("bench")
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .expect("specification"),
        )
        .send()
        .await
        .expect("enable point-in-time recovery");

    let started = Instant::now();
    let half = items / 2;
    batch_load(&client, "bench", half, 16, move |n| item(n, bytes)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let midpoint = DateTime::from(std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(5)).await;
    batch_load(&client, "bench", items - half, 16, move |n| {
        item(half + n, bytes)
    })
    .await;
    report(
        "load (BatchWriteItem, 16 connections)",
        items,
        started.elapsed(),
    );
    // Lets the flushes and compactions the load started finish, so they do not land in the
    // first measurement.
    settle(&node).await;

    let started = Instant::now();
    let backup = client
        .create_backup()
        .table_name("bench")
        .backup_name("bench-backup")
        .send()
        .await
        .expect("create backup");
    let arn = backup
        .backup_details()
        .expect("details")
        .backup_arn()
        .to_string();
    loop {
        let described = client.describe_backup().backup_arn(&arn).send().await;
        let status = described
            .ok()
            .and_then(|d| d.backup_description)
            .and_then(|d| d.backup_details)
            .map(|d| d.backup_status);
        if status == Some(BackupStatus::Available) {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    report("CreateBackup until AVAILABLE", items, started.elapsed());

    settle(&node).await;
    let started = Instant::now();
    client
        .restore_table_to_point_in_time()
        .source_table_name("bench")
        .target_table_name("latest")
        .use_latest_restorable_time(true)
        .send()
        .await
        .expect("restore to the latest time");
    wait_active(&client, "latest").await;
    report(
        "RestoreTableToPointInTime, latest",
        items,
        started.elapsed(),
    );

    settle(&node).await;
    let started = Instant::now();
    client
        .restore_table_to_point_in_time()
        .source_table_name("bench")
        .target_table_name("midpoint")
        .restore_date_time(midpoint)
        .send()
        .await
        .expect("restore to the midpoint");
    wait_active(&client, "midpoint").await;
    report(
        &format!(
            "RestoreTableToPointInTime, midpoint ({} changes undone)",
            items - half
        ),
        half,
        started.elapsed(),
    );

    settle(&node).await;
    let started = Instant::now();
    client
        .restore_table_from_backup()
        .backup_arn(&arn)
        .target_table_name("from_backup")
        .send()
        .await
        .expect("restore from backup");
    wait_active(&client, "from_backup").await;
    report("RestoreTableFromBackup", items, started.elapsed());

    for format in [ExportFormat::DynamodbJson, ExportFormat::Ion] {
        export_and_import(&client, &node, items, format).await;
    }

    if let Some(brokers) = &brokers {
        kafka_restore(binary, &node, brokers, items).await;
    }

    let status = node.terminate().await;
    assert!(status.success(), "the node stopped with {status}");
    report_disk_usage(&data, items);
}

/// Times ExportTableToPointInTime of `bench` in `format`, then ImportTable of that export.
async fn export_and_import(client: &Client, node: &ChildNode, items: u64, format: ExportFormat) {
    settle(node).await;
    let (name, bucket, input) = match format {
        ExportFormat::Ion => ("Amazon Ion", "bench-ion", InputFormat::Ion),
        _ => ("DynamoDB JSON", "bench-json", InputFormat::DynamodbJson),
    };
    let started = Instant::now();
    let export = client
        .export_table_to_point_in_time()
        .table_arn("arn:aws:dynamodb:us-east-1:000000000000:table/bench")
        .s3_bucket(bucket)
        .export_format(format)
        .send()
        .await
        .expect("export");
    let export_arn = export
        .export_description()
        .and_then(|d| d.export_arn())
        .expect("export ARN")
        .to_string();
    loop {
        let described = client
            .describe_export()
            .export_arn(&export_arn)
            .send()
            .await;
        let status = described
            .ok()
            .and_then(|d| d.export_description)
            .and_then(|d| d.export_status);
        match status {
            Some(ExportStatus::Completed) => break,
            Some(ExportStatus::Failed) => panic!("the export failed"),
            _ => tokio::time::sleep(POLL).await,
        }
    }
    report(
        &format!("ExportTableToPointInTime (gzip {name})"),
        items,
        started.elapsed(),
    );

    settle(node).await;
    let started = Instant::now();
    client
        .import_table()
        .s3_bucket_source(
            S3BucketSource::builder()
                .s3_bucket(bucket)
                .build()
                .expect("source"),
        )
        .input_format(input)
        .input_compression_type(InputCompressionType::Gzip)
        .table_creation_parameters(
            TableCreationParameters::builder()
                .table_name(format!("imported-{bucket}"))
                .key_schema(key_element("p", KeyType::Hash))
                .attribute_definitions(string_attribute("p"))
                .billing_mode(BillingMode::PayPerRequest)
                .build()
                .expect("parameters"),
        )
        .send()
        .await
        .expect("import");
    wait_active(client, &format!("imported-{bucket}")).await;
    report(
        &format!("ImportTable of that export ({name})"),
        items,
        started.elapsed(),
    );
}

/// Publishes `bench` to Kafka from its history, then times `tidemark restore --from-kafka`.
async fn kafka_restore(binary: &str, node: &ChildNode, brokers: &str, items: u64) {
    let endpoint = node.endpoint();
    let endpoint = endpoint.as_str();
    let started = Instant::now();
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{endpoint}/admin/publish"))
        .json(
            &serde_json::json!({"TableName": "bench", "Enabled": true, "Format": "kds",
                                  "Topic": "bench-restore", "Partitions": 3, "From": "history"}),
        )
        .send()
        .await
        .expect("publish");
    assert!(answer.status().is_success(), "publishing refused");
    loop {
        let status: serde_json::Value = http
            .get(format!("{endpoint}/admin/publish"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("status JSON");
        let behind = status
            .get("Tables")
            .and_then(serde_json::Value::as_array)
            .is_none_or(|t| {
                t.iter()
                    .any(|t| t.get("LagRecords") != Some(&serde_json::json!(0)))
            });
        if !behind {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report(
        "publishing the table's history to Kafka (kds)",
        items,
        started.elapsed(),
    );
    settle(node).await;
    let started = Instant::now();
    let output = tokio::process::Command::new(binary)
        .args([
            "restore",
            "--from-kafka",
            "--topic",
            "bench-restore",
            "--table",
            "from_kafka",
        ])
        .args([
            "--source-table",
            "bench",
            "--brokers",
            brokers,
            "--endpoint",
            endpoint,
        ])
        .output()
        .await
        .expect("run tidemark restore");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report("tidemark restore --from-kafka", items, started.elapsed());
}
