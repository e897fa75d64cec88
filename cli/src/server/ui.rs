//! The status page at `/ui`: every table (items, size, stream, TTL, point-in-time recovery,
//! replicas, Kafka publishing) and plots of the last ten minutes of request rate, write
//! latency, replication lag and Kafka lag. The page (`ui.html`, its script and styles inline:
//! no CDN) is in the binary; it reads `/ui/data` every two seconds.
//!
//! The dispatcher counts requests and write latencies in [`Activity`]; a sampler task turns
//! them into one [`Sample`] a second, with the largest replication and publishing lag of that
//! moment, and keeps the last [`KEPT`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::AppState;

/// Samples kept: ten minutes, one a second.
pub const KEPT: usize = 600;

const PAGE: &str = include_str!("ui.html");

/// What the dispatcher counts between samples.
#[derive(Debug, Default)]
pub struct Activity {
    requests: AtomicU64,
    writes: AtomicU64,
    write_micros: AtomicU64,
    write_max_micros: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
}

/// One second of the node.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// When it ended, milliseconds since the epoch.
    pub at: u64,
    /// Requests answered in it.
    pub requests: u64,
    /// Mean latency of its item writes, milliseconds.
    pub write_mean_ms: f64,
    /// Slowest of its item writes, milliseconds.
    pub write_max_ms: f64,
    /// The largest replication lag to a peer, milliseconds.
    pub replication_lag_ms: u64,
    /// The largest Kafka publishing lag of a table, records.
    pub kafka_lag_records: u64,
}

impl Activity {
    /// Counts a request; `write` gives an item write's latency.
    pub fn record(&self, write: Option<Duration>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(latency) = write {
            let micros = latency.as_micros() as u64;
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.write_micros.fetch_add(micros, Ordering::Relaxed);
            self.write_max_micros.fetch_max(micros, Ordering::Relaxed);
        }
    }

    /// Closes the second ending at `at`.
    fn sample(&self, at: u64, replication_lag_ms: u64, kafka_lag_records: u64) {
        let requests = self.requests.swap(0, Ordering::Relaxed);
        let writes = self.writes.swap(0, Ordering::Relaxed);
        let micros = self.write_micros.swap(0, Ordering::Relaxed);
        let max = self.write_max_micros.swap(0, Ordering::Relaxed);
        let sample = Sample {
            at,
            requests,
            write_mean_ms: match writes {
                0 => 0.0,
                n => micros as f64 / n as f64 / 1000.0,
            },
            write_max_ms: max as f64 / 1000.0,
            replication_lag_ms,
            kafka_lag_records,
        };
        let mut samples = self.samples.lock();
        samples.push_back(sample);
        while samples.len() > KEPT {
            samples.pop_front();
        }
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().iter().copied().collect()
    }
}

/// Takes a sample a second until `shutdown`.
pub async fn run_sampler(state: AppState, shutdown: CancellationToken) -> Result<(), String> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        let replication_lag_ms = state
            .replicator
            .status()
            .iter()
            .map(|link| link.lag_millis)
            .max()
            .unwrap_or(0);
        let publishers = state.publishers.clone();
        let kafka_lag_records = tokio::task::spawn_blocking(move || publishers.progress())
            .await
            .map_err(|e| e.to_string())?
            .map(|tables| tables.iter().map(|t| t.lag.records).max().unwrap_or(0))
            .unwrap_or(0);
        let now = state.engine.store.clock().now_millis();
        state
            .activity
            .sample(now, replication_lag_ms, kafka_lag_records);
    }
}

/// `GET /ui`.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /ui/data`: the tables and the samples.
pub async fn data(State(state): State<AppState>) -> Response {
    let engine = state.engine.clone();
    let publishers = state.publishers.clone();
    let replicas = state.replicator.status();
    let tables = tokio::task::spawn_blocking(move || {
        let published = publishers.progress().unwrap_or_default();
        let mut names: Vec<(String, i64, i64)> = engine.store.table_sizes();
        names.sort();
        names
            .into_iter()
            .map(|(name, items, bytes)| {
                let described = engine.store.describe_table(&name).ok();
                let stream = described
                    .as_ref()
                    .and_then(|d| d.stream_specification.as_ref())
                    .filter(|s| s.stream_enabled)
                    .and_then(|s| s.stream_view_type.clone());
                let ttl = engine.ttl.describe_time_to_live(&name).ok().flatten();
                let pitr = matches!(
                    engine.backups.describe_continuous_backups(&name),
                    Ok(Some(_))
                );
                let replica_regions: Vec<&str> = replicas
                    .iter()
                    .filter(|link| link.table == name)
                    .map(|link| link.region.as_str())
                    .collect();
                let topic = published
                    .iter()
                    .find(|p| p.table.table_name == name)
                    .map(|p| json!({ "topic": p.table.settings.topic, "lag": p.lag.records }));
                json!({
                    "name": name,
                    "items": items,
                    "bytes": bytes,
                    "stream": stream,
                    "ttl": ttl,
                    "pitr": pitr,
                    "replicas": replica_regions,
                    "kafka": topic,
                })
            })
            .collect::<Vec<Value>>()
    })
    .await
    .unwrap_or_default();
    let cluster = match &state.cluster {
        Some(cluster) => match cluster.status(&state.engine.store).await {
            Ok(status) => status,
            Err(e) => json!({ "error": e.message }),
        },
        None => Value::Null,
    };
    let body = json!({
        "region": state.engine.store.config().region,
        "tables": tables,
        "samples": state.activity.samples(),
        "cluster": cluster,
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}
