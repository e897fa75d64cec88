//! Wire types: what travels over HTTP, one file per operation, and their conversion to and
//! from core's typed requests and outcomes. [`OPERATIONS`] is the one table of every
//! DynamoDB and DynamoDB Streams operation: its name, the [`Execution`] that says where it
//! runs, and its [`Handler`], all of one signature.

pub(crate) mod dynamodb;
pub(crate) mod streams;

use std::collections::HashMap;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use tidemark_core::model::{Nesting, RequestReading, ValueLayer};

use axum::body::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tidemark_core::{Engine, Store};

use super::AppState;
use super::error::ApiError;

/// The API an `X-Amz-Target` names, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Api {
    /// `DynamoDB_20120810.<Op>`.
    DynamoDb,
    /// `DynamoDBStreams_20120810.<Op>`, served on the node's port next to DynamoDB's.
    Streams,
}

impl Api {
    /// What precedes an operation's name in its `X-Amz-Target`.
    pub(crate) fn target_prefix(self) -> &'static str {
        match self {
            Api::DynamoDb => "DynamoDB_20120810.",
            Api::Streams => "DynamoDBStreams_20120810.",
        }
    }
}

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
    /// Operations that await the node's other services (peers, publishers, export jobs):
    /// the request's own task on the async worker, which hands its store work to the
    /// blocking pool itself.
    Async,
}

/// What a handler is given: the node's services, the request body, and the host the client
/// addressed (DescribeEndpoints answers with it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    /// The store and the node's services.
    pub(crate) node: &'a AppState,
    /// The request body.
    pub(crate) body: &'a Bytes,
    /// The request's `Host`.
    pub(crate) host: &'a str,
}

/// An operation's handler: decodes its input from the body, runs it, encodes its output.
pub(crate) type Handler = for<'a> fn(Call<'a>) -> Answer<'a>;

/// What a handler answers: ready at once when it ran on the store alone (every execution
/// but [`Execution::Async`] needs that, because durability deferral and the read budget
/// are scoped to the thread), else a future to await.
pub(crate) enum Answer<'a> {
    /// The outcome, computed when the handler was called.
    Now(Ready<Result<Vec<u8>, ApiError>>),
    /// Work that awaits.
    Later(Pin<Box<dyn Future<Output = Result<Vec<u8>, ApiError>> + Send + 'a>>),
}

impl<'a> Answer<'a> {
    /// An answer that awaits `work`.
    pub(crate) fn later(
        work: impl Future<Output = Result<Vec<u8>, ApiError>> + Send + 'a,
    ) -> Answer<'a> {
        Answer::Later(Box::pin(work))
    }

    /// The outcome of an answer that must be ready at once.
    pub(crate) fn at_once(self) -> Result<Vec<u8>, ApiError> {
        match self {
            Answer::Now(outcome) => outcome.into_inner(),
            Answer::Later(_) => Err(ApiError::internal(
                "an operation that runs at once answered with work to await",
            )),
        }
    }
}

impl Future for Answer<'_> {
    type Output = Result<Vec<u8>, ApiError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Now(outcome) => Pin::new(outcome).poll(cx),
            Answer::Later(work) => work.as_mut().poll(cx),
        }
    }
}

/// One operation: the API and name its `X-Amz-Target` gives, where it runs, its handler.
#[derive(Debug)]
pub(crate) struct Operation {
    /// The API it belongs to.
    pub(crate) api: Api,
    /// Its name, as in the target and in metrics and spans.
    pub(crate) name: &'static str,
    /// Where it runs.
    pub(crate) execution: Execution,
    /// What runs.
    pub(crate) handler: Handler,
}

impl Operation {
    const fn dynamodb(name: &'static str, execution: Execution, handler: Handler) -> Self {
        Operation {
            api: Api::DynamoDb,
            name,
            execution,
            handler,
        }
    }

    const fn streams(name: &'static str, execution: Execution, handler: Handler) -> Self {
        Operation {
            api: Api::Streams,
            name,
            execution,
            handler,
        }
    }

    /// Its `X-Amz-Target` value.
    pub(crate) fn target(&self) -> String {
        format!("{}{}", self.api.target_prefix(), self.name)
    }
}

/// Every operation the node serves.
pub(crate) static OPERATIONS: &[Operation] = {
    use Execution::{Admin, Async, Budgeted, Read, Statement, Walk, Write};
    use dynamodb::*;
    use streams::*;
    &[
        Operation::dynamodb("PutItem", Write, |c| {
            run_as(ReadAs::ENVELOPED, c, put_item::put_item)
        }),
        Operation::dynamodb("GetItem", Read, |c| run(c, get_item::get_item)),
        Operation::dynamodb("UpdateItem", Write, |c| {
            run_as(ReadAs::ENVELOPED, c, update_item::update_item)
        }),
        Operation::dynamodb("DeleteItem", Write, |c| {
            run_as(ReadAs::ENVELOPED, c, delete_item::delete_item)
        }),
        Operation::dynamodb("BatchWriteItem", Write, |c| {
            run_as(ReadAs::OLDER, c, batch_write_item::batch_write_item)
        }),
        Operation::dynamodb("BatchGetItem", Walk, |c| {
            run(c, batch_get_item::batch_get_item)
        }),
        Operation::dynamodb("TransactWriteItems", Write, |c| {
            run_as(
                ReadAs::TRANSACTION,
                c,
                transact_write_items::transact_write_items,
            )
        }),
        Operation::dynamodb("TransactGetItems", Read, |c| {
            run_as(ReadAs::OLDER, c, transact_get_items::transact_get_items)
        }),
        Operation::dynamodb("Query", Budgeted, |c| run(c, query::query)),
        Operation::dynamodb("Scan", Walk, |c| run_as(ReadAs::OLDER, c, scan::scan)),
        Operation::dynamodb("ExecuteStatement", Statement, |c| {
            run_as(ReadAs::PARTIQL, c, execute_statement::execute_statement)
        }),
        Operation::dynamodb("ExecuteTransaction", Statement, |c| {
            run_as(ReadAs::PARTIQL, c, execute_transaction::execute_transaction)
        }),
        Operation::dynamodb("BatchExecuteStatement", Statement, |c| {
            run_as(
                ReadAs::PARTIQL,
                c,
                batch_execute_statement::batch_execute_statement,
            )
        }),
        Operation::dynamodb("CreateTable", Admin, |c| run(c, create_table::create_table)),
        Operation::dynamodb("DescribeTable", Read, |c| {
            run(c, describe_table::describe_table)
        }),
        Operation::dynamodb("ListTables", Read, |c| run(c, list_tables::list_tables)),
        // A global table's replicas follow these three, so they await the replicator.
        Operation::dynamodb("UpdateTable", Async, |c| {
            Answer::later(update_table::update_table(c.node, c.body))
        }),
        Operation::dynamodb("DeleteTable", Async, |c| {
            Answer::later(delete_table::delete_table(c.node, c.body))
        }),
        Operation::dynamodb("UpdateTimeToLive", Async, |c| {
            Answer::later(update_time_to_live::update_time_to_live(c.node, c.body))
        }),
        Operation::dynamodb("DescribeTimeToLive", Read, |c| {
            run(c, describe_time_to_live::describe_time_to_live)
        }),
        Operation::dynamodb("TagResource", Admin, |c| run_empty(c, tags::tag_resource)),
        Operation::dynamodb("UntagResource", Admin, |c| {
            run_empty(c, tags::untag_resource)
        }),
        Operation::dynamodb("ListTagsOfResource", Read, |c| {
            run(c, tags::list_tags_of_resource)
        }),
        Operation::dynamodb("DescribeContributorInsights", Read, |c| {
            run(c, contributor_insights::describe_contributor_insights)
        }),
        Operation::dynamodb("ListContributorInsights", Read, |c| {
            run(c, contributor_insights::list_contributor_insights)
        }),
        Operation::dynamodb("UpdateContributorInsights", Admin, |c| {
            run(c, contributor_insights::update_contributor_insights)
        }),
        Operation::dynamodb("DescribeLimits", Read, |c| {
            run(c, describe_limits::describe_limits)
        }),
        // About this HTTP endpoint, not the store: the node is its own (and only) endpoint,
        // under the address the client used.
        Operation::dynamodb("DescribeEndpoints", Read, |c| {
            Answer::Now(ready(describe_endpoints::describe_endpoints(c.host)))
        }),
        Operation::dynamodb("DescribeContinuousBackups", Read, |c| {
            run(c, backups::describe_continuous_backups)
        }),
        Operation::dynamodb("UpdateContinuousBackups", Admin, |c| {
            run(c, backups::update_continuous_backups)
        }),
        Operation::dynamodb("RestoreTableToPointInTime", Admin, |c| {
            run(c, backups::restore_table_to_point_in_time)
        }),
        Operation::dynamodb("RestoreTableFromBackup", Admin, |c| {
            run(c, backups::restore_table_from_backup)
        }),
        Operation::dynamodb("CreateBackup", Admin, |c| run(c, backups::create_backup)),
        Operation::dynamodb("DescribeBackup", Read, |c| run(c, backups::describe_backup)),
        Operation::dynamodb("DeleteBackup", Admin, |c| run(c, backups::delete_backup)),
        Operation::dynamodb("ListBackups", Read, |c| run(c, backups::list_backups)),
        Operation::dynamodb("CreateGlobalTable", Async, |c| {
            Answer::later(global_tables::create_global_table(c.node, c.body))
        }),
        Operation::dynamodb("UpdateGlobalTable", Async, |c| {
            Answer::later(global_tables::update_global_table(c.node, c.body))
        }),
        Operation::dynamodb("DescribeGlobalTable", Async, |c| {
            Answer::later(global_tables::describe_global_table(c.node, c.body))
        }),
        Operation::dynamodb("ListGlobalTables", Async, |c| {
            Answer::later(global_tables::list_global_tables(c.node, c.body))
        }),
        Operation::dynamodb("ExportTableToPointInTime", Async, |c| {
            Answer::later(transfers::on_pool(c.node, c.body, transfers::export_table))
        }),
        Operation::dynamodb("DescribeExport", Async, |c| {
            Answer::later(transfers::on_pool(
                c.node,
                c.body,
                transfers::describe_export,
            ))
        }),
        Operation::dynamodb("ListExports", Async, |c| {
            Answer::later(transfers::on_pool(c.node, c.body, transfers::list_exports))
        }),
        Operation::dynamodb("ImportTable", Async, |c| {
            Answer::later(transfers::on_pool(c.node, c.body, transfers::import_table))
        }),
        Operation::dynamodb("DescribeImport", Async, |c| {
            Answer::later(transfers::on_pool(
                c.node,
                c.body,
                transfers::describe_import,
            ))
        }),
        Operation::dynamodb("ListImports", Async, |c| {
            Answer::later(transfers::on_pool(c.node, c.body, transfers::list_imports))
        }),
        Operation::dynamodb("EnableKinesisStreamingDestination", Async, |c| {
            Answer::later(kinesis_destinations::enable(c.node, c.body))
        }),
        Operation::dynamodb("DisableKinesisStreamingDestination", Async, |c| {
            Answer::later(kinesis_destinations::disable(c.node, c.body))
        }),
        Operation::dynamodb("UpdateKinesisStreamingDestination", Async, |c| {
            Answer::later(kinesis_destinations::update(c.node, c.body))
        }),
        Operation::dynamodb("DescribeKinesisStreamingDestination", Async, |c| {
            Answer::later(kinesis_destinations::describe(c.node, c.body))
        }),
        Operation::streams("ListStreams", Read, |c| run(c, list_streams::list_streams)),
        Operation::streams("DescribeStream", Read, |c| {
            run(c, describe_stream::describe_stream)
        }),
        Operation::streams("GetShardIterator", Read, |c| {
            run(c, get_shard_iterator::get_shard_iterator)
        }),
        Operation::streams("GetRecords", Walk, |c| run(c, get_records::get_records)),
    ]
};

/// [`OPERATIONS`] by API and name.
static BY_NAME: LazyLock<HashMap<(Api, &'static str), &'static Operation>> =
    LazyLock::new(|| OPERATIONS.iter().map(|o| ((o.api, o.name), o)).collect());

/// The operation an `X-Amz-Target` value names.
pub(crate) fn operation(target: &str) -> Option<&'static Operation> {
    [Api::DynamoDb, Api::Streams].into_iter().find_map(|api| {
        let name = target.strip_prefix(api.target_prefix())?;
        BY_NAME.get(&(api, name)).copied()
    })
}

/// What a handler runs on, named by its first parameter: the [`Store`] for an operation on
/// items, tables' definitions and the log, the [`Engine`] for one that needs a service
/// (tables and tags, backups, transactions, TTL).
pub(crate) trait Seam: 'static {
    /// This seam of the node's engine.
    fn of(engine: &Engine) -> &Self;
}

impl Seam for Store {
    fn of(engine: &Engine) -> &Store {
        &engine.store
    }
}

impl Seam for Engine {
    fn of(engine: &Engine) -> &Engine {
        engine
    }
}

/// Decodes `I`, runs `f` on its seam of the engine, encodes its output.
pub(crate) fn run_on_engine<S, I, O>(
    engine: &Engine,
    body: &[u8],
    f: fn(&S, I) -> Result<O, ApiError>,
) -> Result<Vec<u8>, ApiError>
where
    S: Seam,
    I: DeserializeOwned,
    O: Serialize,
{
    read_and_run(engine, body, f, ReadAs::CURRENT)
}

/// How an operation reads its request: which of DynamoDB's value checks its values get, what
/// a value nested too deep does, and how a fault found while reading is worded.
#[derive(Clone, Copy)]
struct ReadAs {
    layer: ValueLayer,
    nesting: Nesting,
    fault: fn(ApiError) -> ApiError,
}

impl ReadAs {
    /// Most operations.
    const CURRENT: ReadAs = ReadAs {
        layer: ValueLayer::Current,
        nesting: Nesting::Refuse,
        fault: std::convert::identity,
    };
    /// The calls whose values DynamoDB reads with its older value checks (BatchWriteItem,
    /// TransactGetItems, Scan): their words for a malformed number or a repeated set
    /// member differ (`tidemark_core::model::ValueLayer`).
    const OLDER: ReadAs = ReadAs {
        layer: ValueLayer::Older,
        ..ReadAs::CURRENT
    };
    /// PartiQL's calls: the older value checks, and the first fault of their parameters in
    /// document order, a value nested too deep included.
    const PARTIQL: ReadAs = ReadAs {
        nesting: Nesting::RefuseInOrder,
        ..ReadAs::OLDER
    };
    /// TransactWriteItems: the older value checks, and a value nested too deep reported in
    /// its action's turn, after the faults of the actions before it.
    const TRANSACTION: ReadAs = ReadAs {
        nesting: Nesting::Defer,
        ..ReadAs::OLDER
    };
    /// The calls that report their request's validation inside DynamoDB's envelope
    /// (PutItem, UpdateItem, DeleteItem): a malformed value in the body is enveloped too.
    const ENVELOPED: ReadAs = ReadAs {
        fault: ApiError::enveloped,
        ..ReadAs::CURRENT
    };
}

/// [`run_on_engine`], reading the request as `read_as` says; the reading lasts until the
/// answer, so that checks made while answering see how the request was read.
fn read_and_run<S, I, O>(
    engine: &Engine,
    body: &[u8],
    f: fn(&S, I) -> Result<O, ApiError>,
    read_as: ReadAs,
) -> Result<Vec<u8>, ApiError>
where
    S: Seam,
    I: DeserializeOwned,
    O: Serialize,
{
    let reading = RequestReading::begin(read_as.layer, read_as.nesting);
    let input: I = reading
        .read(body)
        .map_err(|e| (read_as.fault)(ApiError::from_json(&e)))?;
    let output = f(S::of(engine), input)?;
    drop(reading);
    serde_json::to_vec(&output).map_err(|e| ApiError::internal(e.to_string()))
}

/// Like [`run`], reading the request as `read_as` says.
fn run_as<S, I, O>(
    read_as: ReadAs,
    call: Call<'_>,
    f: fn(&S, I) -> Result<O, ApiError>,
) -> Answer<'static>
where
    S: Seam,
    I: DeserializeOwned,
    O: Serialize,
{
    let outcome = read_and_run(&call.node.engine, call.body, f, read_as);
    Answer::Now(ready(outcome))
}

/// The handler of an operation that awaits nothing else, reading its request as most do
/// ([`ReadAs::CURRENT`]), done when called.
fn run<S, I, O>(call: Call<'_>, f: fn(&S, I) -> Result<O, ApiError>) -> Answer<'static>
where
    S: Seam,
    I: DeserializeOwned,
    O: Serialize,
{
    run_as(ReadAs::CURRENT, call, f)
}

/// Like [`run`], answering with an empty body (TagResource and UntagResource do).
fn run_empty<S, I>(call: Call<'_>, f: fn(&S, I) -> Result<(), ApiError>) -> Answer<'static>
where
    S: Seam,
    I: DeserializeOwned,
{
    let outcome = serde_json::from_slice(call.body)
        .map_err(|e| ApiError::from_json(&e))
        .and_then(|input: I| f(S::of(&call.node.engine), input))
        .map(|()| Vec::new());
    Answer::Now(ready(outcome))
}

/// Runs [`run_on_engine`] on the blocking pool, for handlers that also await something else.
pub(crate) async fn on_blocking_pool<S, I, O>(
    node: &AppState,
    body: &Bytes,
    f: fn(&S, I) -> Result<O, ApiError>,
) -> Result<Vec<u8>, ApiError>
where
    S: Seam,
    I: DeserializeOwned + 'static,
    O: Serialize + 'static,
{
    let (engine, body) = (node.engine.clone(), body.clone());
    tokio::task::spawn_blocking(move || run_on_engine(&engine, &body, f))
        .await
        .map_err(|e| ApiError::internal(format!("operation failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_found_by_its_target_and_only_by_it() {
        for op in OPERATIONS {
            let found = operation(&op.target()).map(|o| (o.api, o.name));
            assert_eq!(found, Some((op.api, op.name)), "{}", op.target());
        }
        assert_eq!(
            BY_NAME.len(),
            OPERATIONS.len(),
            "an operation is listed twice"
        );
        for unknown in [
            "",
            "PutItem",
            "DynamoDB_20120810.",
            "DynamoDB_20120810.GetRecords",
            "DynamoDBStreams_20120810.PutItem",
            "DynamoDBStreams_20120810.DescribeEndpoints",
            "DynamoDB_20120810.putitem",
        ] {
            assert!(operation(unknown).is_none(), "{unknown}");
        }
    }
}
