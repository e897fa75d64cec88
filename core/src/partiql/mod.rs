//! PartiQL for DynamoDB: `ExecuteStatement`, `ExecuteTransaction` and
//! `BatchExecuteStatement`.
//!
//! A statement is tokenized (`lexer`), parsed into a small syntax tree (`parser`), bound to
//! values and condition trees (`bind`) and translated (`select`, `writes`, `transaction`,
//! `batch`) into the same typed requests the JSON API builds: a SELECT becomes a
//! Query (when its WHERE fixes the partition key, or lists partition keys with `IN`) or a
//! Scan, INSERT a PutItem under "the key does not exist", UPDATE an UpdateItem under "the
//! item exists", DELETE a DeleteItem, and a transaction a TransactWriteItems or
//! TransactGetItems. Conditions, updates and projections are built directly as the
//! expression module's trees (never rendered to text and parsed again), so PartiQL writes go
//! through the one write path and show up in streams, Kafka and replication like any other.
//!
//! The parser is our own because the PartiQL project's Rust parser rejects `?` parameters
//! and DynamoDB's DML (`INSERT ... VALUE`, `UPDATE ... SET/REMOVE`, `DELETE FROM`).

mod batch;
mod bind;
mod lexer;
mod parser;
mod select;
pub(crate) mod transaction;
mod writes;

use crate::model::{AttributeValue, Item};
use crate::ops::IndexUnits;
use crate::{Error, Result, Store};

/// Longest statement DynamoDB accepts, in characters.
pub const MAX_STATEMENT_CHARS: usize = 8192;

/// DynamoDB's message for an UPDATE, DELETE or key read whose WHERE does not fix the key.
pub(crate) const INCOMPLETE_KEY: &str =
    "Where clause does not contain a mandatory equality on all key attributes";

/// The result of one statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatementOutcome {
    /// The table the statement read or wrote.
    pub table_name: String,
    /// A SELECT's items, or the item a RETURNING clause asked for.
    pub items: Vec<Item>,
    /// Where the next page of a SELECT starts.
    pub next_token: Option<String>,
    /// The key of the last item evaluated, when the page stopped early.
    pub last_evaluated_key: Option<Item>,
    /// Capacity units consumed.
    pub consumed_capacity_units: f64,
    /// The part of `consumed_capacity_units` each secondary index took.
    pub index_units: Vec<IndexUnits>,
    /// True for writes (their capacity is write capacity).
    pub write: bool,
}

/// One statement of an ExecuteTransaction.
#[derive(Debug, Default, Clone)]
pub struct TransactionStatement {
    /// The PartiQL statement.
    pub statement: String,
    /// The values of its `?`, in order.
    pub parameters: Vec<AttributeValue>,
    /// Report the old item in the cancellation reason when its condition fails.
    pub return_old_on_condition_failure: bool,
}

/// The result of an ExecuteTransaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransactionOutcome {
    /// For a transaction of reads, per statement, its item (`None` when there is none).
    pub items: Option<Vec<Option<Item>>>,
    /// Capacity units per table.
    pub consumed_capacity_units: Vec<(String, f64)>,
    /// True for a transaction of writes.
    pub write: bool,
}

/// Why one statement of a batch failed.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStatementError {
    /// `ValidationError`, `ConditionalCheckFailed`, `DuplicateItem`, `ResourceNotFound`.
    pub code: String,
    /// Details.
    pub message: String,
    /// The old item, for a failed condition with ALL_OLD.
    pub item: Option<Item>,
}

/// The result of one statement of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchStatementResult {
    /// The table of the statement, when known.
    pub table_name: Option<String>,
    /// The item a read found.
    pub item: Option<Item>,
    /// Why the statement failed.
    pub error: Option<BatchStatementError>,
    /// Capacity units consumed.
    pub consumed_capacity_units: f64,
    /// True for writes.
    pub write: bool,
}

/// A syntax error, in DynamoDB's wording.
pub(crate) fn syntax_error(detail: &str) -> Error {
    Error::validation(format!(
        "Statement wasn't well formed, can't be processed: {detail}"
    ))
}

/// An ExecuteStatement request.
#[derive(Debug, Default, Clone)]
pub struct StatementRequest {
    /// The PartiQL statement.
    pub statement: String,
    /// The values of its `?`, in order.
    pub parameters: Vec<AttributeValue>,
    /// Strongly consistent read (SELECT only).
    pub consistent_read: bool,
    /// Most items a SELECT evaluates.
    pub limit: Option<i64>,
    /// Where a SELECT resumes (from a previous page's `NextToken`).
    pub next_token: Option<String>,
    /// Return the old item with a ConditionalCheckFailed error.
    pub return_old_on_condition_failure: bool,
}

/// One statement of a BatchExecuteStatement.
#[derive(Debug, Clone)]
pub struct BatchStatement {
    /// The PartiQL statement.
    pub statement: String,
    /// The values of its `?`, in order, or why they could not be read (the statement's
    /// ValidationError).
    pub parameters: std::result::Result<Vec<AttributeValue>, String>,
    /// Strongly consistent read (SELECT only).
    pub consistent_read: bool,
    /// Return the old item with a ConditionalCheckFailed error.
    pub return_old_on_condition_failure: bool,
}

impl Store {
    /// Runs one PartiQL statement.
    ///
    /// # Errors
    /// Validation (syntax, parameters, keys, NextToken), ResourceNotFound,
    /// ConditionalCheckFailed (UPDATE of a missing item, a false condition), DuplicateItem
    /// (INSERT of an existing key), storage failures.
    pub fn execute_statement(&self, request: StatementRequest) -> Result<StatementOutcome> {
        writes::execute_statement(self, request)
    }

    /// Runs up to 25 statements, all key reads or all writes, each on its own: one failing
    /// statement gives its own error and does not stop the others.
    ///
    /// # Errors
    /// Validation (number of statements, mixed reads and writes), storage failures; errors of
    /// single statements are in their results.
    pub fn batch_execute_statement(
        &self,
        statements: Vec<BatchStatement>,
    ) -> Result<Vec<BatchStatementResult>> {
        batch::batch_execute_statement(self, statements)
    }
}
