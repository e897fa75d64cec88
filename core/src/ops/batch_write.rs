//! BatchWriteItem: up to 25 puts and deletes across tables. Each one is atomic and recorded
//! exactly like a single PutItem or DeleteItem; the batch as a whole is not atomic.

use std::collections::HashSet;

use super::{DeleteItemRequest, PutItemRequest};
use crate::model::Item;
use crate::storage::index::check_index_keys;
use crate::storage::keys::item_key;
use crate::{Error, Result, Store};

/// Most requests in one batch.
pub(crate) const MAX_BATCH_WRITES: usize = 25;

/// One put or delete of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteRequest {
    /// Put a whole item.
    Put(Item),
    /// Delete the item with this key.
    Delete(Item),
}

/// A BatchWriteItem request: per table, its writes, in request order.
#[derive(Debug, Default, Clone)]
pub struct BatchWriteRequest {
    /// Table name and its writes.
    pub tables: Vec<(String, Vec<WriteRequest>)>,
}

/// The result of a batch write.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchWriteOutcome {
    /// Writes not applied (never any here: nothing is throttled), per table.
    pub unprocessed: Vec<(String, Vec<WriteRequest>)>,
    /// Write capacity units consumed per table.
    pub consumed_capacity_units: Vec<(String, f64)>,
}

impl Store {
    /// Applies a batch of writes. The whole batch is validated before anything is written.
    ///
    /// # Errors
    /// Validation (size of the batch, duplicate keys, bad items), ResourceNotFound, storage
    /// failures (writes before the failing one stay applied, as in DynamoDB).
    pub fn batch_write_item(&self, request: BatchWriteRequest) -> Result<BatchWriteOutcome> {
        let total: usize = request.tables.iter().map(|(_, w)| w.len()).sum();
        if total == 0 {
            return Err(Error::validation(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        if total > MAX_BATCH_WRITES {
            return Err(Error::validation(format!(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]; total requests: {total}"
            )));
        }
        for (table_name, writes) in &request.tables {
            if writes.is_empty() {
                return Err(Error::validation(
                    "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
                ));
            }
            let table = self.table(table_name)?;
            let mut seen = HashSet::new();
            for write in writes {
                let key = match write {
                    WriteRequest::Put(item) => {
                        let key = table.shape.key_of_item(item)?;
                        super::check_attribute_names(item)?;
                        super::check_item_size(item)?;
                        check_index_keys(&table.indexes(), item)?;
                        key
                    }
                    WriteRequest::Delete(key) => {
                        table.shape.check_key(key)?;
                        key.clone()
                    }
                };
                if !seen.insert(item_key(table.id, &table.shape, &key)) {
                    return Err(Error::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
            }
        }
        let mut outcome = BatchWriteOutcome::default();
        for (table_name, writes) in request.tables {
            let mut units = 0.0;
            for write in writes {
                let written = match write {
                    WriteRequest::Put(item) => self.put_item(PutItemRequest {
                        table_name: table_name.clone(),
                        item,
                        ..Default::default()
                    })?,
                    WriteRequest::Delete(key) => self.delete_item(DeleteItemRequest {
                        table_name: table_name.clone(),
                        key,
                        ..Default::default()
                    })?,
                };
                units += written.consumed_capacity_units;
            }
            outcome.consumed_capacity_units.push((table_name, units));
        }
        Ok(outcome)
    }
}
