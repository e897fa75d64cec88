//! `tidemark export` and `tidemark import`: start the job through the node's DynamoDB API
//! (ExportTableToPointInTime, ImportTable) and follow it to its end with a progress display.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::NodeError;
use crate::args::{ExportArgs, ImportArgs};

/// How often a running job is looked at.
const POLL: Duration = Duration::from_millis(250);

/// Calls the DynamoDB operation `operation` on the node and returns its answer.
async fn call(endpoint: &str, operation: &str, body: Value) -> Result<Value, NodeError> {
    let response = reqwest::Client::new()
        .post(endpoint)
        .header("X-Amz-Target", format!("DynamoDB_20120810.{operation}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| NodeError::Config(format!("cannot reach the node at {endpoint}: {e}")))?;
    let ok = response.status().is_success();
    let body = response
        .text()
        .await
        .map_err(|e| NodeError::Config(format!("reading the node's answer: {e}")))?;
    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    match ok {
        true => Ok(answer),
        false => Err(NodeError::Config(format!(
            "{operation} failed: {} {}",
            text(&answer, "/__type"),
            text(&answer, "/message")
        ))),
    }
}

/// The string at `pointer` in `value` (empty when absent).
fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Seconds since the epoch of `text` (RFC 3339, or seconds).
fn instant(text: &str) -> Result<f64, NodeError> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .map_err(|e| NodeError::Config(format!("--at {text}: not RFC 3339 nor seconds: {e}")))
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Polls `operation` on `arn` until the job leaves IN_PROGRESS; returns its description.
async fn follow(
    endpoint: &str,
    operation: &str,
    arn_member: &str,
    arn: &str,
    description_member: &str,
    status_member: &str,
    bar: &ProgressBar,
) -> Result<Value, NodeError> {
    loop {
        let answer = call(endpoint, operation, json!({ arn_member: arn })).await?;
        let description = answer.get(description_member).cloned().unwrap_or_default();
        match description.get(status_member).and_then(Value::as_str) {
            Some("IN_PROGRESS") => tokio::time::sleep(POLL).await,
            Some(_) => return Ok(description),
            None => {
                bar.finish_and_clear();
                return Err(NodeError::Config(format!("unexpected answer: {answer}")));
            }
        }
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
        "ExportFormat": "DYNAMODB_JSON",
    });
    let started = call(endpoint, "ExportTableToPointInTime", request).await?;
    let arn = text(&started, "/ExportDescription/ExportArn").to_string();
    let bar = spinner(format!("exporting {} to {}", args.table, args.out));
    let done = follow(
        endpoint,
        "DescribeExport",
        "ExportArn",
        &arn,
        "ExportDescription",
        "ExportStatus",
        &bar,
    )
    .await?;
    bar.finish_and_clear();
    match text(&done, "/ExportStatus") {
        "COMPLETED" => {
            let items = done.pointer("/ItemCount").cloned().unwrap_or_default();
            let manifest = text(&done, "/ExportManifest");
            println!(
                "exported {items} items of {} to {} ({manifest})",
                args.table, args.out
            );
            Ok(())
        }
        _ => Err(NodeError::Config(format!(
            "the export failed: {}",
            text(&done, "/FailureMessage")
        ))),
    }
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

/// `tidemark import`.
pub(crate) async fn import(args: ImportArgs) -> Result<(), NodeError> {
    let endpoint = args.node.endpoint.as_str();
    let (bucket, prefix) = match args.from.split_once('/') {
        Some((bucket, prefix)) => (bucket.to_string(), Some(prefix.to_string())),
        None => (args.from.clone(), None),
    };
    let mut keys = vec![key_of(&args.key, "HASH")?];
    if let Some(sort) = &args.sort {
        keys.push(key_of(sort, "RANGE")?);
    }
    let (schema, definitions): (Vec<Value>, Vec<Value>) = keys.into_iter().unzip();
    let request = json!({
        "S3BucketSource": { "S3Bucket": bucket, "S3KeyPrefix": prefix },
        "InputFormat": "DYNAMODB_JSON",
        "InputCompressionType": "GZIP",
        "TableCreationParameters": {
            "TableName": args.table,
            "KeySchema": schema,
            "AttributeDefinitions": definitions,
            "BillingMode": "PAY_PER_REQUEST",
        },
    });
    let started = call(endpoint, "ImportTable", request).await?;
    let arn = text(&started, "/ImportTableDescription/ImportArn").to_string();
    let bar = spinner(format!("importing {} into {}", args.from, args.table));
    let done = follow(
        endpoint,
        "DescribeImport",
        "ImportArn",
        &arn,
        "ImportTableDescription",
        "ImportStatus",
        &bar,
    )
    .await?;
    bar.finish_and_clear();
    match text(&done, "/ImportStatus") {
        "COMPLETED" => {
            let items = done
                .pointer("/ImportedItemCount")
                .cloned()
                .unwrap_or_default();
            println!("imported {items} items into {}", args.table);
            Ok(())
        }
        _ => Err(NodeError::Config(format!(
            "the import failed: {}",
            text(&done, "/FailureMessage")
        ))),
    }
}
