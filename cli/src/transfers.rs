//! `tidemark export` and `tidemark import`: start the job through the node's DynamoDB API
//! (ExportTableToPointInTime, ImportTable) and follow it to its end with a progress display.
//! `tidemark restore --from-kafka`: read a topic Tidemark published, rebuild the table as of
//! an instant, and write it into a node through CreateTable and BatchWriteItem.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::NodeError;
use crate::args::{ExportArgs, ImportArgs, RestoreArgs};
use crate::client::{call, text};
use tidemark_core::model::{AttributeValue, Item};
use tidemark_streams::transfer::kafka::read_topic;

/// How often a running job is looked at.
const POLL: Duration = Duration::from_millis(250);

/// Seconds since the epoch of `text` (RFC 3339, or seconds).
fn instant(text: &str) -> Result<f64, NodeError> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .map_err(|e| NodeError::Config(format!("--at {text}: not RFC 3339 nor seconds: {e}")))
}

/// A kind of job the node runs: the call that starts it, the call that describes it, and the
/// members of their answers.
struct Job {
    /// What it does, for messages.
    what: &'static str,
    start: &'static str,
    describe: &'static str,
    arn_member: &'static str,
    description_member: &'static str,
    status_member: &'static str,
}

const EXPORT: Job = Job {
    what: "export",
    start: "ExportTableToPointInTime",
    describe: "DescribeExport",
    arn_member: "ExportArn",
    description_member: "ExportDescription",
    status_member: "ExportStatus",
};

const IMPORT: Job = Job {
    what: "import",
    start: "ImportTable",
    describe: "DescribeImport",
    arn_member: "ImportArn",
    description_member: "ImportTableDescription",
    status_member: "ImportStatus",
};

/// Starts `job` with `request` and follows it, behind a spinner saying `message`, until it
/// leaves IN_PROGRESS; returns its description once COMPLETED.
async fn run_job(
    endpoint: &str,
    job: &Job,
    request: Value,
    message: String,
) -> Result<Value, NodeError> {
    let started = call(endpoint, job.start, request).await?;
    let arn_pointer = format!("/{}/{}", job.description_member, job.arn_member);
    let arn = text(&started, &arn_pointer).to_string();
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    let description = loop {
        let answer = call(endpoint, job.describe, json!({ job.arn_member: arn })).await;
        let description = match answer {
            Ok(answer) => answer
                .get(job.description_member)
                .cloned()
                .unwrap_or_default(),
            Err(e) => {
                bar.finish_and_clear();
                return Err(e);
            }
        };
        match description.get(job.status_member).and_then(Value::as_str) {
            Some("IN_PROGRESS") => tokio::time::sleep(POLL).await,
            Some(_) => break description,
            None => {
                bar.finish_and_clear();
                return Err(NodeError::Config(format!(
                    "unexpected answer: {description}"
                )));
            }
        }
    };
    bar.finish_and_clear();
    match description.get(job.status_member).and_then(Value::as_str) {
        Some("COMPLETED") => Ok(description),
        _ => Err(NodeError::Config(format!(
            "the {} failed: {}",
            job.what,
            text(&description, "/FailureMessage")
        ))),
    }
}

/// `tidemark export`.
pub(crate) async fn export(args: ExportArgs) -> Result<(), NodeError> {
    let endpoint = args.node.endpoint.as_str();
    let table = call(
        endpoint,
        "DescribeTable",
        json!({ "TableName": args.table }),
    )
    .await?;
    let export_time = args.at.as_deref().map(instant).transpose()?;
    let request = json!({
        "TableArn": text(&table, "/Table/TableArn"),
        "S3Bucket": args.out,
        "S3Prefix": args.prefix,
        "ExportTime": export_time,
        "ExportFormat": args.format.api_name(),
    });
    let message = format!("exporting {} to {}", args.table, args.out);
    let done = run_job(endpoint, &EXPORT, request, message).await?;
    let items = done.pointer("/ItemCount").cloned().unwrap_or_default();
    let manifest = text(&done, "/ExportManifest");
    crate::output::line(format!(
        "exported {items} items of {} to {} ({manifest})",
        args.table, args.out
    ));
    Ok(())
}

/// `NAME:TYPE` as a key schema element and its attribute definition.
fn key_of(text: &str, key_type: &str) -> Result<(Value, Value), NodeError> {
    let (name, kind) = text
        .rsplit_once(':')
        .filter(|(n, k)| !n.is_empty() && ["S", "N", "B"].contains(k))
        .ok_or_else(|| {
            NodeError::Config(format!("'{text}' is not NAME:TYPE with TYPE S, N or B"))
        })?;
    Ok((
        json!({ "AttributeName": name, "KeyType": key_type }),
        json!({ "AttributeName": name, "AttributeType": kind }),
    ))
}

/// The key schema and attribute definitions of a table keyed by `key` and, if given, `sort`
/// (each `NAME:TYPE`).
fn key_schema(key: &str, sort: Option<&str>) -> Result<(Vec<Value>, Vec<Value>), NodeError> {
    let mut keys = vec![key_of(key, "HASH")?];
    if let Some(sort) = sort {
        keys.push(key_of(sort, "RANGE")?);
    }
    Ok(keys.into_iter().unzip())
}

/// `tidemark import`.
pub(crate) async fn import(args: ImportArgs) -> Result<(), NodeError> {
    let endpoint = args.node.endpoint.as_str();
    let (bucket, prefix) = match args.from.split_once('/') {
        Some((bucket, prefix)) => (bucket.to_string(), Some(prefix.to_string())),
        None => (args.from.clone(), None),
    };
    let (schema, definitions) = key_schema(&args.key, args.sort.as_deref())?;
    let request = json!({
        "S3BucketSource": { "S3Bucket": bucket, "S3KeyPrefix": prefix },
        "InputFormat": args.format.api_name(),
        "InputCompressionType": "GZIP",
        "TableCreationParameters": {
            "TableName": args.table,
            "KeySchema": schema,
            "AttributeDefinitions": definitions,
            "BillingMode": "PAY_PER_REQUEST",
        },
    });
    let message = format!("importing {} into {}", args.from, args.table);
    let done = run_job(endpoint, &IMPORT, request, message).await?;
    let items = done
        .pointer("/ImportedItemCount")
        .cloned()
        .unwrap_or_default();
    crate::output::line(format!("imported {items} items into {}", args.table));
    Ok(())
}

/// `NAME:TYPE` of the one attribute of `keys` (a topic's item key), when it has one.
fn single_key(keys: &Item) -> Option<String> {
    let [(name, value)] = keys.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let kind = match value {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        _ => return None,
    };
    Some(format!("{name}:{kind}"))
}

/// Items per BatchWriteItem, and requests in flight.
const BATCH: usize = 25;
const WRITERS: usize = 4;

/// `tidemark restore --from-kafka`.
pub(crate) async fn restore_from_kafka(args: RestoreArgs) -> Result<(), NodeError> {
    if !args.from_kafka {
        return Err(NodeError::Config(
            "restore reads a Kafka topic: pass --from-kafka".into(),
        ));
    }
    let at_millis = args
        .at
        .as_deref()
        .map(instant)
        .transpose()?
        .map(|s| (s * 1000.0).round() as u64);
    let kafka = args.kafka_settings();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} messages [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("reading {}", args.topic));
    let (topic, source, reading) = (args.topic.clone(), args.source_table.clone(), bar.clone());
    let image = tokio::task::spawn_blocking(move || {
        read_topic(
            &kafka,
            &topic,
            source.as_deref(),
            at_millis,
            |read, total| {
                reading.set_length(total);
                reading.set_position(read);
            },
        )
    })
    .await
    .map_err(|e| NodeError::Config(format!("reading the topic: {e}")))?
    .map_err(|e| NodeError::Config(format!("reading the topic: {e}")))?;
    bar.finish_and_clear();
    if let Some(why) = &image.incomplete
        && !args.partial
    {
        return Err(NodeError::Config(format!(
            "topic {} does not hold the table's whole history: {why}. Pass --partial to restore \
             what it holds.",
            args.topic
        )));
    }
    let first_key = image
        .items
        .keys()
        .next()
        .and_then(|k| serde_json::from_slice::<Item>(k).ok());
    let key = match (&args.key, first_key) {
        (Some(key), _) => key.clone(),
        (None, Some(first_key)) => single_key(&first_key).ok_or_else(|| {
            NodeError::Config(format!(
                "the items' key has {} attributes: name them with --key NAME:TYPE and --sort \
                 NAME:TYPE",
                first_key.len()
            ))
        })?,
        (None, None) => {
            return Err(NodeError::Config(
                "the topic holds no item of the table: name its key with --key NAME:TYPE".into(),
            ));
        }
    };
    let (schema, definitions) = key_schema(&key, args.sort.as_deref())?;
    let endpoint = args.node.endpoint.clone();
    call(
        &endpoint,
        "CreateTable",
        json!({
            "TableName": args.table,
            "KeySchema": schema,
            "AttributeDefinitions": definitions,
            "BillingMode": "PAY_PER_REQUEST",
        }),
    )
    .await?;
    let restored = image.items.len();
    let bar = ProgressBar::new(restored as u64);
    bar.set_style(
        ProgressStyle::with_template("writing {bar:40} {pos}/{len} items [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // The items move into their batches (a restore holds the whole table once, not twice).
    let mut items = image.items.into_values().peekable();
    let mut chunks: Vec<Vec<Item>> = Vec::with_capacity(restored.div_ceil(BATCH));
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(BATCH).collect());
    }
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(chunks.into_iter()));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let (queue, endpoint, table, bar) = (
            queue.clone(),
            endpoint.clone(),
            args.table.clone(),
            bar.clone(),
        );
        writers.spawn(async move {
            loop {
                let Some(chunk) = queue.lock().await.next() else {
                    return Ok::<(), NodeError>(());
                };
                let requests: Vec<Value> = chunk
                    .iter()
                    .map(|item| json!({ "PutRequest": { "Item": item } }))
                    .collect();
                let answer = call(
                    &endpoint,
                    "BatchWriteItem",
                    json!({ "RequestItems": { table.clone(): requests } }),
                )
                .await?;
                if answer
                    .pointer("/UnprocessedItems")
                    .and_then(Value::as_object)
                    .is_some_and(|u| !u.is_empty())
                {
                    return Err(NodeError::Config(
                        "the node left items of a batch unprocessed".into(),
                    ));
                }
                bar.inc(chunk.len() as u64);
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.map_err(|e| NodeError::Config(format!("a writer failed: {e}")))??;
    }
    bar.finish_and_clear();
    crate::output::line(format!(
        "restored {} items into {} from {} changes in {} messages of {}",
        restored, args.table, image.changes, image.messages, args.topic
    ));
    Ok(())
}
