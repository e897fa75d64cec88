//! The single `POST /` handler: looks up the operation named by `X-Amz-Target` (DynamoDB's or
//! DynamoDB Streams') in the one operation table (`wire::OPERATIONS`), runs its handler where
//! its [`Execution`] says, records its metrics, and frames the answer with
//! `x-amzn-RequestId`, `x-amz-crc32` (of the exact body bytes) and the JSON 1.0 content type.
//!
//! Where operations run. Point reads run on the async worker that received them: they only
//! look up fjall's memtables and block cache (a miss reads one block from the page cache or
//! disk), and handing each one to another thread cost a third of GetItem's throughput. Reads
//! that can walk a lot (Scan, BatchGetItem, GetRecords) go to tokio's blocking pool, so a 1 MB
//! page never stalls the requests queued behind it on a worker; Query, usually small, runs on
//! the worker under a 64 KB read budget and again on the blocking pool when its page outgrows
//! it. Item writes commit on
//! the worker and, under `sync`, then await the group commit's fsync without holding the
//! worker (`Store::deferring_durability`, `Store::wait_durable`). Table
//! operations always go to the blocking pool (DeleteTable removes every item). PartiQL
//! operations, which read or write as their statements say, run like writes on the worker
//! under Query's read budget, and on the blocking pool when a SELECT outgrows it. Operations
//! that await the node's other services (global tables' peers, publishers, export jobs; and
//! UpdateTable, DeleteTable and UpdateTimeToLive, which a global table's replicas follow) run
//! as the request's task on the worker and hand their store work to the blocking pool.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;
use super::wire::{self, Call, Execution, Handler, Operation};

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
    let operation = wire::operation(target);
    // Bounded label values: a known operation's name, else "unknown".
    let label = operation.map_or("unknown", |o| o.name);
    let span = tracing::info_span!("request", id = %request_id, operation = %label);
    let is_write = operation.is_some_and(|o| o.execution == Execution::Write);
    let call = Call {
        node: &state,
        body: &body,
        host: host(&headers),
    };
    let started = std::time::Instant::now();
    let outcome = async {
        match (operation, &state.cluster) {
            (Some(operation), None) => execute(operation, call).await,
            (Some(operation), Some(cluster)) => {
                crate::cluster::route::execute(cluster, operation, call).await
            }
            (None, _) => Err(ApiError::unknown_operation()),
        }
    }
    .instrument(span)
    .await;
    let elapsed = started.elapsed();
    state.activity.record(is_write.then_some(elapsed));
    metrics::histogram!("tidemark_request_duration_seconds", "operation" => label)
        .record(elapsed.as_secs_f64());
    if let Err(error) = &outcome {
        let name = error.type_name.rsplit('#').next().unwrap_or_default();
        metrics::counter!("tidemark_request_errors_total", "operation" => label, "error" => name.to_string())
            .increment(1);
    }
    metrics::counter!("tidemark_requests_total", "operation" => label).increment(1);
    let (status, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => {
            if error.fatal {
                state.engine.store.halt().raise(error.message.clone());
            }
            (error.status, error.body())
        }
    };
    frame(status, body, &request_id)
}

/// Runs `operation`'s handler on `call` where its [`Execution`] says.
pub(crate) async fn execute(operation: &Operation, call: Call<'_>) -> Result<Vec<u8>, ApiError> {
    let (handler, store) = (operation.handler, &call.node.engine.store);
    match operation.execution {
        // Point reads, and operations that await other services, on this worker.
        Execution::Read | Execution::Async => handler(call).await,
        // Writes commit on this worker and wait for the group commit without holding it.
        Execution::Write => {
            let (outcome, pending) = store.deferring_durability(|| handler(call).at_once());
            match store.wait_durable(pending).await {
                Ok(()) => outcome,
                Err(e) => Err(ApiError::from(e)),
            }
        }
        Execution::Statement => {
            let tried = store.within_read_budget(INLINE_READ_BYTES, || {
                store.deferring_durability(|| handler(call).at_once())
            });
            match tried {
                Some((outcome, pending)) => match store.wait_durable(pending).await {
                    Ok(()) => outcome,
                    Err(e) => Err(ApiError::from(e)),
                },
                None => off_worker(handler, call).await,
            }
        }
        Execution::Budgeted => {
            match store.within_read_budget(INLINE_READ_BYTES, || handler(call).at_once()) {
                Some(outcome) => outcome,
                None => off_worker(handler, call).await,
            }
        }
        Execution::Walk | Execution::Admin => off_worker(handler, call).await,
    }
}

/// Runs `handler` on the blocking pool, in the request's span.
async fn off_worker(handler: Handler, call: Call<'_>) -> Result<Vec<u8>, ApiError> {
    let (node, body, host) = (call.node.clone(), call.body.clone(), call.host.to_string());
    let span = tracing::Span::current();
    let run = move || {
        let call = Call {
            node: &node,
            body: &body,
            host: &host,
        };
        span.in_scope(|| handler(call).at_once())
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(outcome) => outcome,
        Err(e) => Err(ApiError::internal(format!("operation failed: {e}"))),
    }
}

/// Item bytes a budgeted read may read on the async worker before it moves to the blocking
/// pool: a few dozen items of 1 KB, well under a millisecond of work.
pub(crate) const INLINE_READ_BYTES: usize = 64 * 1024;

/// Runs the operation named by the `X-Amz-Target` value `target` on `node` with `body`, as
/// `POST /` does (the same table, handler and thread), without HTTP, metrics or spans: `None`
/// when the target names no operation. The fuzzer's way into request decoding.
pub async fn run_operation(
    node: &AppState,
    target: &str,
    body: Bytes,
) -> Option<Result<Vec<u8>, ApiError>> {
    let operation = wire::operation(target)?;
    let call = Call {
        node,
        body: &body,
        host: "localhost",
    };
    Some(execute(operation, call).await)
}

/// Every `X-Amz-Target` value the node serves, from the operation table.
pub fn targets() -> impl Iterator<Item = String> {
    wire::OPERATIONS.iter().map(Operation::target)
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
