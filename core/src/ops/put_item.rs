//! PutItem: replace a whole item, optionally under a condition.

use super::{
    ReturnValues, WriteOutcome, check_attribute_names, check_condition, check_item_size,
    write_units,
};
use crate::Result;
use crate::Store;
use crate::expr::Condition;
use crate::model::Item;
use crate::storage::commit::Mutation;
use crate::storage::keys::item_key;

/// A PutItem request.
#[derive(Debug, Default)]
pub struct PutItemRequest {
    /// Table name.
    pub table_name: String,
    /// The whole new item.
    pub item: Item,
    /// Condition on the old item.
    pub condition: Option<Condition>,
    /// `NONE` or `ALL_OLD`.
    pub return_values: ReturnValues,
    /// Return the old item with a ConditionalCheckFailed error.
    pub return_old_on_condition_failure: bool,
}

impl Store {
    /// Writes a whole item; a put identical to the stored item writes nothing.
    ///
    /// # Errors
    /// ResourceNotFound, Validation (key or size), ConditionalCheckFailed, storage failures.
    pub fn put_item(&self, request: PutItemRequest) -> Result<WriteOutcome> {
        let table = self.table(&request.table_name)?;
        let keys = table.shape.key_of_item(&request.item)?;
        check_attribute_names(&request.item)?;
        check_item_size(&request.item)?;
        let key_bytes = item_key(table.id, &table.shape, &keys);
        let storage = &self.storage;
        let _locks = storage.lock_keys(&[&key_bytes]);
        let old = storage.read_item(&key_bytes)?;
        check_condition(
            request.condition.as_ref(),
            old.as_ref(),
            request.return_old_on_condition_failure,
        )?;
        let units = write_units(old.as_ref(), Some(&request.item));
        let change_seq = if old.as_ref() == Some(&request.item) {
            None
        } else {
            let mutation = Mutation {
                table: table.clone(),
                key_bytes,
                keys,
                old: old.clone(),
                new: Some(request.item),
                by_service: false,
            };
            Some(storage.commit(std::slice::from_ref(&mutation))?)
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
