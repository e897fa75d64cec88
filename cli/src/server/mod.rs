//! The node's HTTP API: DynamoDB's JSON 1.0 protocol on `POST /`, a health answer on `GET /`.
//!
//! - [`dispatch`]: looks `X-Amz-Target` up in the operation table, runs the operation where
//!   its entry says, and frames the answer (request id, CRC32, content type);
//! - `wire`: the operation table, and one file per operation with its input/output types and
//!   their conversion to and from core's typed requests;
//! - [`error`]: the single mapping from failures to DynamoDB exceptions;
//! - [`admin`]: operator endpoints outside DynamoDB's API;
//! - [`peer`]: the endpoints other regions' nodes call, and the replication views;
//! - `GET /metrics`: the node's metrics in Prometheus' text format.

pub mod admin;
pub mod auth;
pub mod cors;
pub mod dispatch;
pub mod encoding;
pub mod error;
pub mod peer;
pub mod tls;
pub mod ui;
pub(crate) mod wire;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tidemark_core::Engine;
use tidemark_replicator::Replicator;
use tidemark_replicator::antientropy::{CELLS_PATH, DIGEST_PATH, FETCH_PATH};
use tidemark_replicator::protocol::{
    CHANGES_PATH, CREATE_REPLICA_PATH, MEMBERSHIP_PATH, REPAIR_PATH, SEED_PATH,
};
use tidemark_streams::publish::kafka::Publishers;
use tokio::net::TcpListener;

/// Largest request body DynamoDB accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// State shared by every request: one reference-counted pointer, because the router clones it
/// for every request (its middleware and extractors), so a clone must be one counter increment.
#[derive(Debug, Clone)]
pub struct AppState(Arc<NodeState>);

impl AppState {
    /// Shares `state` with every request.
    pub fn new(state: NodeState) -> AppState {
        AppState(Arc::new(state))
    }
}

impl std::ops::Deref for AppState {
    type Target = NodeState;

    fn deref(&self) -> &NodeState {
        &self.0
    }
}

/// What requests share: the store and the node's services.
#[derive(Debug)]
pub struct NodeState {
    /// The item store and the services over it (tables, backups, transactions, TTL,
    /// replication).
    pub engine: Engine,
    /// The Kafka publishers.
    pub publishers: Arc<Publishers>,
    /// The name of a newly published table's topic; `{region}` and `{table}` are replaced.
    pub topic_template: String,
    /// Global tables: this node's peers and replication.
    pub replicator: Arc<Replicator>,
    /// Exports and imports.
    pub transfers: Arc<tidemark_streams::transfer::Transfers>,
    /// The keys requests must be signed with (`None`: requests are not checked).
    pub credentials: Option<Arc<auth::Credentials>>,
    /// Requests and write latencies, sampled each second for the status page.
    pub activity: Arc<ui::Activity>,
    /// On a cluster region: the writer to the region's logs (`None`: a single node).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// The router: `POST /` for operations, `GET /` for health, `POST /admin/...` for operators.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dispatch::health).post(dispatch::dispatch))
        .route("/admin/ttl/sweep", post(admin::sweep_ttl))
        .route(
            "/admin/publish",
            get(admin::publish_status).post(admin::set_publishing),
        )
        .route("/admin/replicas", get(peer::status))
        .route("/admin/cluster", get(admin::cluster_status))
        .route("/admin/replicas/conflicts", get(peer::conflicts))
        .route("/admin/replicas/retry", post(peer::retry_parked))
        .route("/admin/replicas/verify", post(peer::verify))
        .route(CHANGES_PATH, post(peer::changes))
        .route(SEED_PATH, post(peer::seed_page))
        .route(REPAIR_PATH, post(peer::repair))
        .route(MEMBERSHIP_PATH, post(peer::membership))
        .route(CREATE_REPLICA_PATH, post(peer::create_replica))
        .route(DIGEST_PATH, post(peer::digest))
        .route(CELLS_PATH, post(peer::cells))
        .route(FETCH_PATH, post(peer::fetch))
        .route("/metrics", get(metrics))
        .route("/ui", get(ui::page))
        .route("/ui/data", get(ui::data))
        // Layers run outermost last-added: the signature covers the body as sent, so it is
        // checked before `encoding::prepare` decodes it.
        .layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .deflate(true)
                .compress_when(tower_http::compression::predicate::SizeAbove::new(
                    encoding::COMPRESSION_THRESHOLD,
                )),
        )
        .layer(axum::middleware::from_fn(encoding::prepare))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        // A browser's preflight is answered before any signature is asked for.
        .layer(cors::layer())
        .layer(axum::middleware::from_fn(cors::as_dynamodb))
        .layer(axum::middleware::from_fn(refuse_oversized_heads))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// DynamoDB's limits on what precedes a body: 16 KB of request line, 16 KB of headers.
const MAX_REQUEST_LINE_BYTES: usize = 16 * 1024;
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Answers 400 to a request whose line or headers are over DynamoDB's limits, before anything
/// else looks at it.
async fn refuse_oversized_heads(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // "METHOD URI HTTP/1.1", measured without rendering the URI (this runs on every request).
    let uri = request.uri();
    let uri_len = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    let line = request.method().as_str().len() + uri_len + 10;
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if line > MAX_REQUEST_LINE_BYTES {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "The request line is longer than 16 KB",
        )
            .into_response();
    }
    if headers > MAX_HEADER_BYTES {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "The request headers are longer than 16 KB",
        )
            .into_response();
    }
    next.run(request).await
}

/// Whether a request needs a signature when the node has keys: DynamoDB's and DynamoDB
/// Streams' operations and the admin endpoints do; the health answer, the metrics and the
/// peer endpoints (which check their own secret) do not.
fn needs_signature(method: &axum::http::Method, path: &str) -> bool {
    (path == "/" && method == axum::http::Method::POST) || path.starts_with("/admin")
}

/// Refuses a request whose signature does not check out ([`auth`]), before anything runs.
async fn authenticate(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(keys) = &state.credentials else {
        return next.run(request).await;
    };
    if !needs_signature(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        // Over the limit (the one error reading a body has here): as the extractors answer.
        Err(e) => {
            use axum::response::IntoResponse;
            return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response();
        }
    };
    let now = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_millis(state.engine.store.clock().now_millis());
    if let Err(refused) = keys.verify(&parts.method, &parts.uri, &parts.headers, &body, now) {
        tracing::info!(path = parts.uri.path(), error = %refused.type_name, reason = %refused.message, "request refused");
        return dispatch::refusal(refused);
    }
    next.run(axum::extract::Request::from_parts(parts, body.into()))
        .await
}

/// The process's metrics recorder, installed by the first node started in it.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Durations as Prometheus histograms (from 100 µs to 10 s), not summaries, so that
        // they aggregate across nodes; likewise the changes per group commit.
        let seconds = [
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ];
        let counts = [
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_changes".into()), &counts));
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(e) => {
                tracing::warn!(error = %e, "metric buckets refused; durations are summaries");
                PrometheusBuilder::new().build_recorder()
            }
        };
        let handle = recorder.handle();
        // Fails only when the embedding program installed a recorder of its own; the metrics
        // then go there and this endpoint stays empty.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder is already installed; GET /metrics stays empty");
        }
        handle
    })
}

/// Installs the metrics recorder, so metrics recorded from now on are served.
pub fn install_metrics() {
    prometheus();
}

/// `GET /metrics`: what was recorded, with each table's items and bytes read at the scrape.
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> String {
    for (table, items, bytes) in state.engine.store.table_sizes() {
        metrics::gauge!("tidemark_table_items", "table" => table.clone()).set(items as f64);
        metrics::gauge!("tidemark_table_bytes", "table" => table).set(bytes as f64);
    }
    if let Some(cluster) = &state.cluster {
        match cluster.status(&state.engine.store).await {
            Ok(status) => set_cluster_gauges(&status),
            Err(e) => tracing::warn!("cluster gauges: {}", e.message),
        }
    }
    prometheus().render()
}

/// Each log partition's applied offset and lag, and the live members, as gauges.
fn set_cluster_gauges(status: &serde_json::Value) {
    for log in status["Logs"].as_array().into_iter().flatten() {
        let labels = [
            ("log", log["Log"].as_str().unwrap_or_default().to_string()),
            ("partition", log["Partition"].to_string()),
        ];
        let number = |member: &str| log[member].as_u64().map(|n| n as f64);
        if let Some(applied) = number("Applied") {
            metrics::gauge!("tidemark_cluster_applied_offset", &labels).set(applied);
        }
        if let Some(lag) = number("Lag") {
            metrics::gauge!("tidemark_cluster_lag_records", &labels).set(lag);
        }
    }
    let live = (status["Members"].as_array().into_iter().flatten())
        .filter(|m| m["Live"] == serde_json::Value::Bool(true))
        .count();
    metrics::gauge!("tidemark_cluster_live_members").set(live as f64);
}

/// Sends each response as soon as it is written. IMPORTANT for latency: with Nagle's
/// algorithm on, a response written in two parts waits for the client's delayed ACK of the
/// first (up to 40 ms on Linux).
pub(crate) fn low_latency(stream: &tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
    }
}

/// Serves until `shutdown` resolves, then stops accepting and drains in-flight requests;
/// over TLS when `tls` is given.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        Some(acceptor) => tls::serve(listener, router(state), acceptor, shutdown).await,
        None => {
            let listener = listener.tap_io(|stream| low_latency(stream));
            axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
