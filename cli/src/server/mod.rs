//! The node's HTTP API: DynamoDB's JSON 1.0 protocol on `POST /`, a health answer on `GET /`.
//!
//! - [`dispatch`]: reads `X-Amz-Target`, runs the operation off the async reactor, and frames
//!   the answer (request id, CRC32, content type);
//! - `wire`: one file per operation with its input/output types and their conversion to and
//!   from core's typed requests;
//! - [`error`]: the single mapping from failures to DynamoDB exceptions;
//! - [`admin`]: operator endpoints outside DynamoDB's API;
//! - [`peer`]: the endpoints other regions' nodes call, and the replication views;
//! - `GET /metrics`: the node's metrics in Prometheus' text format.

pub mod admin;
pub mod dispatch;
pub mod error;
pub mod peer;
mod wire;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tidemark_core::Store;
use tidemark_replicator::Replicator;
use tidemark_replicator::protocol::{CHANGES_PATH, CREATE_REPLICA_PATH, MEMBERSHIP_PATH};
use tidemark_streams::publish::kafka::Publishers;
use tokio::net::TcpListener;

/// Largest request body DynamoDB accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// State shared by every request.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The item store.
    pub store: Arc<Store>,
    /// The Kafka publishers.
    pub publishers: Arc<Publishers>,
    /// Defaults for the topics of newly published tables.
    pub topics: Arc<crate::TopicDefaults>,
    /// Global tables: this node's peers and replication.
    pub replicator: Arc<Replicator>,
    /// Exports and imports.
    pub transfers: Arc<tidemark_streams::transfer::Transfers>,
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
        .route("/admin/replicas/conflicts", get(peer::conflicts))
        .route(CHANGES_PATH, post(peer::changes))
        .route(MEMBERSHIP_PATH, post(peer::membership))
        .route(CREATE_REPLICA_PATH, post(peer::create_replica))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The process's metrics recorder, installed by the first node started in it.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
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

/// `GET /metrics`.
async fn metrics() -> String {
    prometheus().render()
}

/// Serves until `shutdown` resolves, then stops accepting and drains in-flight requests.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
