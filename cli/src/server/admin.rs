//! Operator endpoints outside DynamoDB's API, under `/admin/`. They answer JSON.
//!
//! - `POST /admin/ttl/sweep`: expires every item whose TTL has passed, now, and answers
//!   `{"Expired": N}` once done (the sweeper does the same on its own every `--ttl-period`).
//! - `GET /admin/publish`: every published table with its topic, format, position and lag.
//! - `POST /admin/publish` `{"TableName", "Enabled", "Format"?, "Topic"?, "Partitions"?,
//!   "ReplicationFactor"?, "From"?: "now" | "history"}`: turns a table's publishing to Kafka on
//!   or off, at once and persistently; answers the table's status.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tidemark_core::ChangeSeq;
use tidemark_streams::publish::format::ValueFormat;
use tidemark_streams::publish::settings::{self, PublishFrom, PublishSettings};

use super::AppState;

/// `POST /admin/ttl/sweep`.
pub async fn sweep_ttl(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if let Some(cluster) = &state.cluster {
        return match crate::cluster::expiry::expire_due(&state, cluster).await {
            Ok(expired) => (StatusCode::OK, Json(json!({ "Expired": expired }))),
            Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.message),
        };
    }
    let engine = state.engine.clone();
    let sweep = move || {
        engine
            .store
            .halt_if_fatal(tidemark_streams::ttl::sweep(&engine.ttl))
    };
    match tokio::task::spawn_blocking(sweep).await {
        Ok(Ok(report)) => (StatusCode::OK, Json(json!({ "Expired": report.expired }))),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "message": e.to_string() })),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "message": e.to_string() })),
        ),
    }
}

/// `POST /admin/publish` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishRequest {
    table_name: String,
    enabled: bool,
    format: Option<String>,
    topic: Option<String>,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    from: Option<String>,
}

fn failure(status: StatusCode, message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "message": message.into() })))
}

/// `POST /admin/publish`.
pub async fn set_publishing(
    State(state): State<AppState>,
    Json(request): Json<PublishRequest>,
) -> (StatusCode, Json<Value>) {
    let settings = if request.enabled {
        let Some(kafka) = state.publishers.kafka() else {
            return failure(
                StatusCode::BAD_REQUEST,
                "no Kafka cluster is configured: start the node with --kafka-brokers (or KAFKA_BROKERS)",
            );
        };
        let format = request.format.as_deref().unwrap_or("dynamodb");
        if ValueFormat::parse(format).is_none() {
            return failure(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown format {format}: use dynamodb, kds, debezium or debezium-tombstones"
                ),
            );
        }
        let from = match request.from.as_deref() {
            None | Some("now") => PublishFrom::Now,
            Some("history") => PublishFrom::RetainedHistory,
            Some(other) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    format!("unknown start {other}: use now or history"),
                );
            }
        };
        let topic = request.topic.unwrap_or_else(|| {
            state
                .topic_template
                .replace("{region}", &state.engine.store.config().region)
                .replace("{table}", &request.table_name)
        });
        Some((
            PublishSettings {
                topic,
                format: format.to_string(),
                start_seq: ChangeSeq::ZERO,
                partitions: request.partitions.unwrap_or(kafka.topics.partitions),
                replication_factor: request
                    .replication_factor
                    .unwrap_or(kafka.topics.replication_factor),
                starts_empty: None,
                stream_arn: None,
            },
            from,
        ))
    } else {
        None
    };
    let store = state.engine.store.clone();
    let table = request.table_name.clone();
    let outcome =
        tokio::task::spawn_blocking(move || settings::set_publishing(&store, &table, settings))
            .await;
    match outcome {
        Ok(Ok(_)) => {
            if let Err(e) = state.publishers.reconcile() {
                return failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
            match table_statuses(&state).await {
                Ok(statuses) => {
                    let status = statuses
                        .into_iter()
                        .find(|t| t["TableName"] == request.table_name.as_str())
                        .unwrap_or_else(
                            || json!({ "TableName": request.table_name, "Enabled": false }),
                        );
                    (StatusCode::OK, Json(status))
                }
                Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
            }
        }
        Ok(Err(e)) => failure(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /admin/cluster`: the members as this node hears them, and where it stands in each log
/// partition it reads.
pub async fn cluster_status(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let Some(cluster) = &state.cluster else {
        return failure(
            StatusCode::BAD_REQUEST,
            "this node is not part of a cluster region (--cluster)".to_string(),
        );
    };
    match cluster.status(&state.engine.store).await {
        Ok(status) => (StatusCode::OK, Json(status)),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.message),
    }
}

/// `GET /admin/publish`.
pub async fn publish_status(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match table_statuses(&state).await {
        Ok(tables) => (StatusCode::OK, Json(json!({ "Tables": tables }))),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Each published table's settings, position and lag (records and seconds behind).
async fn table_statuses(state: &AppState) -> Result<Vec<Value>, String> {
    let publishers = state.publishers.clone();
    let progress = tokio::task::spawn_blocking(move || publishers.progress())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(progress
        .into_iter()
        .map(|p| {
            json!({
                "TableName": p.table.table_name,
                "Enabled": true,
                "Topic": p.table.settings.topic,
                "Format": p.table.settings.format,
                "StartSequence": p.table.settings.start_seq,
                "StartedEmpty": p.table.settings.starts_empty,
                "PublishedThrough": p.published_through,
                "LagRecords": p.lag.records,
                "LagSeconds": p.lag.seconds,
                "LastError": p.state.last_error,
            })
        })
        .collect())
}
