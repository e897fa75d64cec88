//! Query: the items of one partition, in sort-key order (or reverse), one page at a time.

use super::page::{PageOptions, PageOutcome, read_page};
use crate::expr::KeyCondition;
use crate::model::KeyShape;
use crate::storage::keys::{item_key, query_range};
use crate::{Error, Result, Store};

/// A Query request (expressions already parsed against the table's key schema).
#[derive(Debug, Default)]
pub struct QueryRequest {
    /// Table name.
    pub table_name: String,
    /// Index to query (secondary indexes are not queryable yet).
    pub index_name: Option<String>,
    /// The partition and sort-key condition.
    pub key_condition: Option<KeyCondition>,
    /// Sort-key order (`ScanIndexForward`, default true).
    pub scan_forward: bool,
    /// Filter, projection, Select, Limit, paging, consistency.
    pub options: PageOptions,
}

impl Store {
    /// The key schema a Query or Scan of `table_name` (or its index) works with, for parsing
    /// key conditions.
    ///
    /// # Errors
    /// ResourceNotFound; Validation for an index (secondary indexes are not queryable yet).
    pub fn key_shape(&self, table_name: &str, index_name: Option<&str>) -> Result<KeyShape> {
        let table = self.table(table_name)?;
        if let Some(index) = index_name {
            return Err(unsupported_index(index));
        }
        Ok(table.shape.clone())
    }

    /// One page of a Query.
    ///
    /// # Errors
    /// ResourceNotFound, Validation (key condition, start key, Select, Limit), storage failures.
    pub fn query(&self, request: QueryRequest) -> Result<PageOutcome> {
        let table = self.table(&request.table_name)?;
        if let Some(index) = &request.index_name {
            return Err(unsupported_index(index));
        }
        let key_condition = request.key_condition.ok_or_else(|| {
            Error::validation("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.")
        })?;
        let options = request.options;
        options.check()?;
        if let Some(filter) = &options.filter
            && let Some(key) = filter
                .referenced_attributes()
                .into_iter()
                .find(|a| table.shape.is_key_attribute(a))
        {
            return Err(Error::validation(format!(
                "Filter Expression can only contain non-primary key attributes: Primary key attribute: {key}"
            )));
        }
        let mut range = query_range(table.id, &key_condition);
        if let Some(start) = &options.exclusive_start_key {
            check_start_key(&table.shape, start)?;
            if start.get(&table.shape.hash.name) != Some(&key_condition.partition_value) {
                return Err(Error::validation(
                    "The provided starting key is invalid: The provided starting key does not match the query's partition key",
                ));
            }
            range.resume_after(
                item_key(table.id, &table.shape, start),
                request.scan_forward,
            );
        }
        let items = self.storage.items_in(range, !request.scan_forward);
        read_page(items, &table.shape, &options, None)
    }
}

/// The error for a Query or Scan of a secondary index, which are not maintained yet.
pub(crate) fn unsupported_index(index: &str) -> Error {
    Error::validation(format!(
        "Querying and scanning secondary indexes is not supported yet (index: {index})"
    ))
}

/// Checks an `ExclusiveStartKey` against the table's key schema.
pub(crate) fn check_start_key(shape: &KeyShape, start: &crate::model::Item) -> Result<()> {
    shape
        .check_key(start)
        .map_err(|e| Error::validation(format!("The provided starting key is invalid: {e}")))
}
