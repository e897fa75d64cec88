//! The endpoints peers call (`/_tidemark/peer/...`, see `tidemark_replicator::protocol` and,
//! for anti-entropy, `tidemark_replicator::antientropy`), and the replication views for
//! operators (`GET /admin/replicas`, `GET /admin/replicas/conflicts?table=T`, `POST
//! /admin/replicas/retry`, `POST /admin/replicas/verify`).
//!
//! IMPORTANT: a peer request is applied only when it names a configured peer region and
//! carries that region's link secret (or the group's secret, which does not tell regions
//! apart); anything else is refused with 403 and logged, and changes nothing. A change batch
//! is then applied only when every change in it is stamped by that region, and a seeding page
//! only from the region seeding this region's replica (refused whole with 403 otherwise).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tidemark_replicator::antientropy::{CellsRequest, DigestRequest, FetchRequest};
use tidemark_replicator::clocks::{ANSWERED_AT_HEADER, RECEIVED_AT_HEADER};
use tidemark_replicator::peers::{REGION_HEADER, SECRET_HEADER};
use tidemark_replicator::protocol::{
    BatchAnswer, ChangeBatch, CreateReplicaMessage, MembershipMessage, PeerRefusal,
};
use tidemark_replicator::{Error, Replicator};

use super::AppState;
use super::error::ApiError;

/// A refused peer request's answer.
type Refused = (StatusCode, Json<PeerRefusal>);

/// The peer region a request comes from, once it is admitted.
fn admit(state: &AppState, headers: &HeaderMap) -> Result<String, Refused> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let region = header(REGION_HEADER).unwrap_or("");
    let config = state.replicator.config();
    let refuse = |why: &str| {
        tracing::warn!(region, why, "refused a peer request");
        let refusal = PeerRefusal {
            error: "AccessDeniedException".into(),
            message: format!("peer request refused: {why}"),
        };
        (StatusCode::FORBIDDEN, Json(refusal))
    };
    if config.peer(region).is_none() {
        return Err(refuse("it names no configured peer region"));
    }
    if !config.admits(region, header(SECRET_HEADER)) {
        return Err(refuse("wrong or missing peer secret"));
    }
    Ok(region.to_string())
}

/// A message that does not decode: refused, changing nothing.
fn malformed(message: String) -> Response {
    let refusal = PeerRefusal {
        error: "SerializationException".into(),
        message,
    };
    (StatusCode::BAD_REQUEST, Json(refusal)).into_response()
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Runs a blocking peer request and answers its JSON, or its refusal.
async fn answer<T: serde::Serialize + Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Replicator) -> Result<T, Error> + Send + 'static,
) -> Response {
    let replicator = state.replicator.clone();
    let outcome = match tokio::task::spawn_blocking(move || work(&replicator)).await {
        Ok(outcome) => outcome,
        Err(e) => Err(Error::Core(tidemark_core::Error::Internal(e.to_string()))),
    };
    match outcome {
        Ok(value) => (StatusCode::OK, Json(value)).into_response(),
        Err(e) => {
            let api = ApiError::from(e);
            if api.fatal {
                state.engine.store.halt().raise(api.message.clone());
            }
            let name = api.type_name.rsplit('#').next().unwrap_or("").to_string();
            let refusal = PeerRefusal {
                error: name,
                message: api.message,
            };
            (api.status, Json(refusal)).into_response()
        }
    }
}

/// Admits a peer request, decodes its message with `decode` and runs `work` with the sending
/// region; the answer (a refusal too) carries this node's wall clock when the request arrived
/// and when it answered, from which the sender measures the clocks' offset.
async fn serve<M, E, T>(
    state: AppState,
    headers: &HeaderMap,
    body: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<M, E>,
    work: impl FnOnce(&Replicator, String, M) -> Result<T, Error> + Send + 'static,
) -> Response
where
    M: Send + 'static,
    E: std::fmt::Display,
    T: serde::Serialize + Send + 'static,
{
    let clock = state.engine.store.clock().clone();
    let received = clock.now_millis();
    let mut response = admit_and_run(state, headers, body, decode, work).await;
    let answered = clock.now_millis();
    let times = response.headers_mut();
    times.insert(RECEIVED_AT_HEADER, HeaderValue::from(received));
    times.insert(ANSWERED_AT_HEADER, HeaderValue::from(answered));
    response
}

/// [`serve`]'s work: admit, decode, run.
async fn admit_and_run<M, E, T>(
    state: AppState,
    headers: &HeaderMap,
    body: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<M, E>,
    work: impl FnOnce(&Replicator, String, M) -> Result<T, Error> + Send + 'static,
) -> Response
where
    M: Send + 'static,
    E: std::fmt::Display,
    T: serde::Serialize + Send + 'static,
{
    let from = match admit(&state, headers) {
        Ok(from) => from,
        Err(refused) => return refused.into_response(),
    };
    let message = match decode(body) {
        Ok(message) => message,
        Err(why) => return malformed(why.to_string()),
    };
    answer(&state, move |r| work(r, from, message)).await
}

/// `POST /_tidemark/peer/changes`: a batch in its binary form ([`ChangeBatch::encode`]).
pub async fn changes(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(
        state,
        &headers,
        &body,
        ChangeBatch::decode,
        |r, from, batch| r.receive_changes(&from, batch),
    )
    .await
}

/// `POST /_tidemark/peer/seed`: a page of the snapshot a new replica is seeded from, in the
/// binary form of a batch.
pub async fn seed_page(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    any_regions_cells(state, &headers, &body, Replicator::receive_seed_page).await
}

/// `POST /_tidemark/peer/repair`: cells anti-entropy found newer at the sender, in the binary
/// form of a batch.
pub async fn repair(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    any_regions_cells(state, &headers, &body, Replicator::receive_repair).await
}

/// Serves cells of any region's, sent in the binary form of a batch, with `receive`.
async fn any_regions_cells(
    state: AppState,
    headers: &HeaderMap,
    body: &[u8],
    receive: fn(&Replicator, &str, ChangeBatch) -> Result<BatchAnswer, Error>,
) -> Response {
    serve(
        state,
        headers,
        body,
        ChangeBatch::decode,
        move |r, from, page| receive(r, &from, page),
    )
    .await
}

/// `POST /_tidemark/peer/membership`.
pub async fn membership(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        state,
        &headers,
        &body,
        json,
        |r, _, message: MembershipMessage| r.receive_membership(&message.table, message.global),
    )
    .await
}

/// `POST /_tidemark/peer/replica`.
pub async fn create_replica(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        state,
        &headers,
        &body,
        json,
        |r, _, message: CreateReplicaMessage| r.receive_create_replica(message).map(|()| json!({})),
    )
    .await
}

/// `GET /admin/replicas`: every global table's link to every peer, and the replicated
/// changes put aside here because they cannot be applied.
pub async fn status(State(state): State<AppState>) -> Response {
    let replicator = state.replicator.clone();
    let read = tokio::task::spawn_blocking(move || {
        let links = replicator.status();
        replicator.parked().map(|parked| (links, parked))
    })
    .await;
    match read {
        Ok(Ok((links, parked))) => (
            StatusCode::OK,
            Json(json!({ "Replicas": links, "ParkedCount": parked.len(), "Parked": parked })),
        )
            .into_response(),
        Ok(Err(e)) => admin_failure(&state, e),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "message": e.to_string() })),
        )
            .into_response(),
    }
}

/// An operator request that failed: its error in full (operators read it), and the store
/// halted when the failure is fatal.
fn admin_failure(state: &AppState, error: Error) -> Response {
    if let Error::Core(core) = &error
        && core.is_fatal()
    {
        state.engine.store.halt().raise(core.to_string());
    }
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "message": error.to_string() })),
    )
        .into_response()
}

/// `POST /admin/replicas/retry`: applies the parked replicated changes again, by last writer
/// wins, and says what became of them.
pub async fn retry_parked(State(state): State<AppState>) -> Response {
    let replicator = state.replicator.clone();
    match tokio::task::spawn_blocking(move || replicator.retry_parked()).await {
        Ok(Ok(report)) => (StatusCode::OK, Json(report)).into_response(),
        Ok(Err(e)) => admin_failure(&state, e),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "message": e.to_string() })),
        )
            .into_response(),
    }
}

/// `GET /admin/replicas/conflicts` query.
#[derive(Debug, Deserialize)]
pub struct ConflictsQuery {
    table: String,
}

/// `GET /admin/replicas/conflicts?table=T`: how many replicated writes of the table were
/// discarded for a newer one, and the last of them.
pub async fn conflicts(
    State(state): State<AppState>,
    Query(query): Query<ConflictsQuery>,
) -> Response {
    let (count, last) = state.replicator.conflicts().of(&query.table);
    (
        StatusCode::OK,
        Json(json!({ "TableName": query.table, "Conflicts": count, "Last": last })),
    )
        .into_response()
}

/// `POST /_tidemark/peer/digest`: this side's digest of a table, for anti-entropy.
pub async fn digest(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(
        state,
        &headers,
        &body,
        json,
        |r, _, request: DigestRequest| r.receive_digest(request),
    )
    .await
}

/// `POST /_tidemark/peer/cells`: every cell of some digest buckets, for anti-entropy.
pub async fn cells(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(
        state,
        &headers,
        &body,
        json,
        |r, _, request: CellsRequest| r.receive_cells_request(request),
    )
    .await
}

/// `POST /_tidemark/peer/fetch`: the cells at some keys, for the requester to repair itself
/// with.
pub async fn fetch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(
        state,
        &headers,
        &body,
        json,
        |r, _, request: FetchRequest| r.receive_fetch(request),
    )
    .await
}

/// `POST /admin/replicas/verify` body.
#[derive(Debug, Deserialize)]
pub struct VerifyRequest {
    /// The table.
    #[serde(rename = "TableName")]
    table_name: String,
}

/// `POST /admin/replicas/verify`: compares a global table with every other region now and
/// repairs what differs (`tidemark replicas verify TABLE`).
pub async fn verify(State(state): State<AppState>, Json(request): Json<VerifyRequest>) -> Response {
    match state.replicator.verify_table(&request.table_name).await {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        Err(e) => {
            let api = ApiError::from(e);
            if api.fatal {
                state.engine.store.halt().raise(api.message.clone());
            }
            let body = json!({ "__type": api.type_name, "message": api.message });
            (api.status, Json(body)).into_response()
        }
    }
}
