//! BatchWriteItem: up to 25 puts and deletes across tables. Each one is recorded exactly like a
//! single PutItem or DeleteItem (one change record each, none for a write that changes
//! nothing). They share one atomic commit, so one fsync serves the whole batch; DynamoDB
//! promises less (each write atomic, the batch not), so this is a strengthening.

use std::collections::HashSet;

use super::{IndexUnits, add_index_units, index_write_units, write_units};
use crate::changes::Cause;
use crate::model::Item;
use crate::storage::index::check_index_keys;
use crate::write::{Decision, Target};
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
    /// Write capacity units consumed per table, its indexes' included.
    pub consumed_capacity_units: Vec<(String, f64)>,
    /// The part of each table's units its secondary indexes took.
    pub index_units: Vec<(String, Vec<IndexUnits>)>,
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
                "1 validation error detected: Value at 'RequestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        if total > MAX_BATCH_WRITES {
            return Err(Error::validation(
                "Too many items requested for the BatchWriteItem call",
            ));
        }
        // Validate everything first; the batch is then applied in ONE atomic commit (one
        // fsync under `sync`), each write still recorded as its own change.
        let mut targets = Vec::with_capacity(total);
        let mut writes = Vec::with_capacity(total);
        for (table_name, table_writes) in request.tables {
            if table_writes.is_empty() {
                return Err(Error::validation(
                    "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
                ));
            }
            let table = self.item_table(&table_name)?;
            let mut seen = HashSet::new();
            for write in table_writes {
                let (key, new) = match write {
                    WriteRequest::Put(item) => {
                        let key = table.shape.key_of_batch_item(&item)?;
                        super::check_attribute_names(&item)?;
                        super::check_item_size(&item)?;
                        check_index_keys(&table.indexes(), &item)?;
                        (key, Some(item))
                    }
                    WriteRequest::Delete(key) => {
                        table.shape.check_key(&key)?;
                        (key, None)
                    }
                };
                let target = Target::new(table.clone(), key, Cause::Request);
                if !seen.insert(target.key_bytes.clone()) {
                    return Err(Error::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                targets.push(target);
                writes.push(new);
            }
        }
        let written = self.write(targets, |targets, cells| {
            let mut units: Vec<(String, f64)> = Vec::new();
            let mut by_index: Vec<(String, Vec<IndexUnits>)> = Vec::new();
            for ((target, cell), new) in targets.iter().zip(cells).zip(&writes) {
                let indexes = index_write_units(&target.table, cell.item.as_ref(), new.as_ref());
                let used = write_units(cell.item.as_ref(), new.as_ref())
                    + indexes.iter().map(|u| u.units).sum::<f64>();
                let table = &target.table.name;
                match units.iter_mut().find(|(name, _)| name == table) {
                    Some((_, total)) => *total += used,
                    None => units.push((table.clone(), used)),
                }
                match by_index.iter_mut().find(|(name, _)| name == table) {
                    Some((_, all)) => add_index_units(all, indexes),
                    None => by_index.push((table.clone(), indexes)),
                }
            }
            Ok((
                writes.into_iter().map(Decision::Write).collect(),
                (units, by_index),
            ))
        })?;
        let (units, by_index) = written.value;
        Ok(BatchWriteOutcome {
            unprocessed: Vec::new(),
            consumed_capacity_units: units,
            index_units: by_index,
        })
    }
}
