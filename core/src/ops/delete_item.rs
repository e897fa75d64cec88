//! DeleteItem: remove one item by key, optionally under a condition, leaving a stamped
//! tombstone for last-writer-wins replication.

use super::{ReturnValues, WriteOutcome};
use crate::Result;
use crate::Store;
use crate::changes::Cause;
use crate::expr::Condition;
use crate::model::Item;
use crate::write::Target;

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
        let table = self.item_table(&request.table_name)?;
        table.shape.check_key(&request.key)?;
        let target = Target::new(table, request.key, Cause::Request);
        self.replace_item(
            target,
            None,
            request.condition.as_ref(),
            request.return_old_on_condition_failure,
            request.return_values,
        )
    }
}
