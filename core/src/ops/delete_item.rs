//! DeleteItem: remove one item by key, optionally under a condition, leaving a stamped
//! tombstone for last-writer-wins replication.

use super::{ReturnValues, WriteOutcome, check_condition, write_units};
use crate::Result;
use crate::Store;
use crate::expr::Condition;
use crate::model::Item;
use crate::storage::commit::Mutation;
use crate::storage::keys::item_key;

/// A DeleteItem request.
#[derive(Debug, Default)]
pub struct DeleteItemRequest {
    /// Table name.
    pub table_name: String,
    /// The item's key attributes.
    pub key: Item,
    /// Condition on the old item.
    pub condition: Option<Condition>,
    /// `NONE` or `ALL_OLD`.
    pub return_values: ReturnValues,
    /// Return the old item with a ConditionalCheckFailed error.
    pub return_old_on_condition_failure: bool,
}

impl Store {
    /// Deletes one item; deleting a missing item writes nothing.
    ///
    /// # Errors
    /// ResourceNotFound, Validation (key), ConditionalCheckFailed, storage failures.
    pub fn delete_item(&self, request: DeleteItemRequest) -> Result<WriteOutcome> {
        let table = self.table(&request.table_name)?;
        table.shape.check_key(&request.key)?;
        let key_bytes = item_key(table.id, &table.shape, &request.key);
        let storage = &self.storage;
        let _locks = storage.lock_keys(&[&key_bytes]);
        let old = storage.read_item(&key_bytes)?;
        check_condition(
            request.condition.as_ref(),
            old.as_ref(),
            request.return_old_on_condition_failure,
        )?;
        let units = write_units(old.as_ref(), None);
        let change_seq = match &old {
            None => None,
            Some(_) => {
                let mutation = Mutation {
                    table: table.clone(),
                    key_bytes,
                    keys: request.key,
                    old: old.clone(),
                    new: None,
                    by_service: false,
                };
                Some(storage.commit(std::slice::from_ref(&mutation))?)
            }
        };
        let attributes = match request.return_values {
            ReturnValues::AllOld => old,
            _ => None,
        };
        Ok(WriteOutcome {
            attributes,
            consumed_capacity_units: units,
            change_seq,
        })
    }
}
