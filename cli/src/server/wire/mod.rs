//! Wire types: what travels over HTTP, one file per operation, and their conversion to and
//! from core's typed requests and outcomes; the operation tables map each `X-Amz-Target`
//! name to an [`Operation`] and the [`Execution`] that says where it runs.

pub(crate) mod dynamodb;
pub(crate) mod streams;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tidemark_core::Engine;

use super::error::ApiError;

/// An operation: decode its input, run it against the store, encode its output.
pub(crate) type Operation = fn(&Engine, &[u8]) -> Result<Vec<u8>, ApiError>;

/// What kind of work an operation does, which decides where it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Execution {
    /// Point reads: never wait, run on the async worker.
    Read,
    /// Reads that can walk a lot (pages of up to 1 MB): on the blocking pool.
    Walk,
    /// Reads that are usually small but can walk a lot (Query): tried on the async worker
    /// under a small byte budget, run again on the blocking pool when they outgrow it.
    Budgeted,
    /// Item writes: commit on the async worker, then await durability without holding it.
    Write,
    /// Table operations: may take long, always on the blocking pool.
    Admin,
    /// PartiQL, whose statements decide whether they read or write: run like a write on the
    /// async worker, under the read budget of [`Execution::Budgeted`]; a SELECT that outgrows
    /// it runs again on the blocking pool (only Query and Scan pages charge the budget, and
    /// a request that reads them writes nothing, so running it again repeats no write).
    Statement,
}

/// Decodes `I`, runs `f`, encodes its output.
pub(crate) fn run<I, O>(
    store: &Engine,
    body: &[u8],
    f: fn(&Engine, I) -> Result<O, ApiError>,
) -> Result<Vec<u8>, ApiError>
where
    I: DeserializeOwned,
    O: Serialize,
{
    let input: I = serde_json::from_slice(body).map_err(|e| ApiError::from_json(&e))?;
    let output = f(store, input)?;
    serde_json::to_vec(&output).map_err(|e| ApiError::internal(e.to_string()))
}

/// Decodes `I`, runs `f`, answers with an empty body (TagResource and UntagResource do).
pub(crate) fn run_empty<I>(
    store: &Engine,
    body: &[u8],
    f: fn(&Engine, I) -> Result<(), ApiError>,
) -> Result<Vec<u8>, ApiError>
where
    I: DeserializeOwned,
{
    let input: I = serde_json::from_slice(body).map_err(|e| ApiError::from_json(&e))?;
    f(store, input)?;
    Ok(Vec::new())
}
