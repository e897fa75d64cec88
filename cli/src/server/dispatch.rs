//! The single `POST /` handler: picks the operation named by `X-Amz-Target` (DynamoDB's or
//! DynamoDB Streams'), decodes the body,
//! runs the operation, and frames the answer with `x-amzn-RequestId`, `x-amz-crc32` (of the
//! exact body bytes) and the JSON 1.0 content type.
//!
//! Where operations run. Point reads run on the async worker that received them: they only
//! look up fjall's memtables and block cache (a miss reads one block from the page cache or
//! disk), and handing each one to another thread cost a third of GetItem's throughput. Reads
//! that can walk a lot (Query, Scan, BatchGetItem, GetRecords) go to tokio's blocking pool, so
//! a 1 MB page never stalls the requests queued behind it on a worker. Item writes commit on
//! the worker and, under `sync`, then await the group commit's fsync without holding the
//! worker (`Store::deferring_durability`, `Store::wait_durable`). Table
//! operations always go to the blocking pool (DeleteTable removes every item). PartiQL
//! operations, which read or write as their statements say, run like writes on the worker
//! under Query's read budget, and on the blocking pool when a SELECT outgrows it.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;
use super::wire::{Execution, Operation, dynamodb, streams};

const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// `GET /`: answers `healthy: <host>` while the node is up, as DynamoDB does.
pub async fn health(headers: HeaderMap) -> Response {
    let body = format!("healthy: {}", host(&headers));
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn host(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
}

/// A request id unique within the node's life: a random prefix chosen at start-up, then a
/// counter (a random id per request would cost a getrandom call each).
fn next_request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string().to_uppercase());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}{n:016X}", prefix.get(..36).unwrap_or(prefix))
}

/// `POST /`: one DynamoDB operation.
pub async fn dispatch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = next_request_id();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let operation_name = target.strip_prefix(TARGET_PREFIX);
    let operation = synchronous_operation(target);
    let global = match operation_name {
        Some(name) if operation.is_none() => dynamodb::global_tables::operation(name)
            .or_else(|| dynamodb::transfers::operation(name))
            .or_else(|| dynamodb::kinesis_destinations::operation(name)),
        _ => None,
    };
    let known =
        operation.is_some() || global.is_some() || operation_name == Some("DescribeEndpoints");
    // Bounded label values: a known operation's name, else "unknown".
    let label = match known {
        true => target.rsplit('.').next().unwrap_or_default().to_string(),
        false => "unknown".to_string(),
    };
    let span = tracing::info_span!("request", id = %request_id, operation = %label);
    let is_write = matches!(operation, Some((_, Execution::Write)));
    let started = std::time::Instant::now();
    let outcome = async {
        match (operation, global) {
            // Operations that involve other regions await their peers.
            (None, Some(op)) => op(state.clone(), body).await,
            // Endpoint discovery is about this HTTP endpoint, not the store: the node is its own
            // (and only) endpoint, under the address the client used.
            (None, None) if operation_name == Some("DescribeEndpoints") => {
                dynamodb::describe_endpoints(host(&headers))
            }
            (None, None) => Err(ApiError::unknown_operation()),
            (Some((op, Execution::Read)), _) => op(&state.store, &body),
            // Writes commit on this worker and wait for the group commit without holding it.
            (Some((op, Execution::Write)), _) => {
                let store = &state.store;
                let (outcome, pending) = store.deferring_durability(|| op(store, &body));
                match store.wait_durable(pending).await {
                    Ok(()) => outcome,
                    Err(e) => Err(ApiError::from(e)),
                }
            }
            (Some((op, Execution::Statement)), _) => {
                let store = &state.store;
                let tried = store.within_read_budget(INLINE_READ_BYTES, || {
                    store.deferring_durability(|| op(store, &body))
                });
                match tried {
                    Some((outcome, pending)) => match store.wait_durable(pending).await {
                        Ok(()) => outcome,
                        Err(e) => Err(ApiError::from(e)),
                    },
                    None => off_worker(&state, op, body).await,
                }
            }
            (Some((op, Execution::Budgeted)), _) => {
                let store = &state.store;
                match store.within_read_budget(INLINE_READ_BYTES, || op(store, &body)) {
                    Some(outcome) => outcome,
                    None => off_worker(&state, op, body).await,
                }
            }
            (Some((op, Execution::Walk | Execution::Admin)), _) => {
                off_worker(&state, op, body).await
            }
        }
    }
    .instrument(span)
    .await;
    let elapsed = started.elapsed();
    state.activity.record(is_write.then_some(elapsed));
    metrics::histogram!("tidemark_request_duration_seconds", "operation" => label.clone())
        .record(elapsed.as_secs_f64());
    if let Err(error) = &outcome {
        let name = error.type_name.rsplit('#').next().unwrap_or_default();
        metrics::counter!("tidemark_request_errors_total", "operation" => label.clone(), "error" => name.to_string())
            .increment(1);
    }
    metrics::counter!("tidemark_requests_total", "operation" => label).increment(1);
    let (status, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => {
            if error.fatal {
                state.store.halt().raise(error.message.clone());
            }
            (error.status, error.body())
        }
    };
    frame(status, body, &request_id)
}

/// Runs `op` on the blocking pool, in the request's span.
async fn off_worker(state: &AppState, op: Operation, body: Bytes) -> Result<Vec<u8>, ApiError> {
    let store = state.store.clone();
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(|| op(&store, &body))).await {
        Ok(outcome) => outcome,
        Err(e) => Err(ApiError::internal(format!("operation failed: {e}"))),
    }
}

/// Item bytes a budgeted read may read on the async worker before it moves to the blocking
/// pool: a few dozen items of 1 KB, well under a millisecond of work.
const INLINE_READ_BYTES: usize = 64 * 1024;

/// Runs the synchronous operation named by the `X-Amz-Target` value `target` on `store` with
/// `body`, as `POST /` does, without HTTP: `None` when the target names no such operation
/// (the global-table and transfer operations, which need the node, are not run here). The
/// fuzzer's way into request decoding.
pub fn run_operation(
    store: &tidemark_core::Engine,
    target: &str,
    body: &[u8],
) -> Option<Result<Vec<u8>, ApiError>> {
    synchronous_operation(target).map(|(op, _)| op(store, body))
}

/// The DynamoDB or DynamoDB Streams operation an `X-Amz-Target` value names, among those that
/// run on the store alone.
fn synchronous_operation(target: &str) -> Option<(Operation, Execution)> {
    match target.strip_prefix(STREAMS_TARGET_PREFIX) {
        Some(name) => streams::operation(name),
        None => target
            .strip_prefix(TARGET_PREFIX)
            .and_then(dynamodb::operation),
    }
}

/// The answer to a request refused before it ran.
pub(crate) fn refusal(error: ApiError) -> Response {
    frame(error.status, error.body(), &next_request_id())
}

fn frame(status: StatusCode, body: Vec<u8>, request_id: &str) -> Response {
    let crc = crc32fast::hash(&body);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    headers.insert("x-amz-crc32", HeaderValue::from(crc));
    response
}
