//! The node's HTTP API: DynamoDB's JSON 1.0 protocol on `POST /`, a health answer on `GET /`.
//!
//! - [`dispatch`]: reads `X-Amz-Target`, runs the operation off the async reactor, and frames
//!   the answer (request id, CRC32, content type);
//! - `wire`: one file per operation with its input/output types and their conversion to and
//!   from core's typed requests;
//! - [`error`]: the single mapping from failures to DynamoDB exceptions;
//! - [`admin`]: operator endpoints outside DynamoDB's API.

pub mod admin;
pub mod dispatch;
pub mod error;
mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tidemark_core::Store;
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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
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
