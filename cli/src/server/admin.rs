//! Operator endpoints outside DynamoDB's API, under `/admin/`. They answer JSON.
//!
//! - `POST /admin/ttl/sweep`: expires every item whose TTL has passed, now, and answers
//!   `{"Expired": N}` once done (the sweeper does the same on its own every `--ttl-period`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// `POST /admin/ttl/sweep`.
pub async fn sweep_ttl(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || tidemark_streams::ttl::sweep(&store)).await {
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
