//! PutItem: replace a whole item, optionally under a condition.

use super::{ReturnValues, WriteOutcome, check_attribute_names, check_item_size};
use crate::Result;
use crate::Store;
use crate::changes::Cause;
use crate::expr::Condition;
use crate::model::Item;
use crate::write::Target;

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
        let table = self.item_table(&request.table_name)?;
        let keys = table.shape.key_of_item(&request.item)?;
        check_attribute_names(&request.item)?;
        check_item_size(&request.item)?;
        let target = Target::new(table, keys, Cause::Request);
        self.replace_item(
            target,
            Some(request.item),
            request.condition.as_ref(),
            request.return_old_on_condition_failure,
            request.return_values,
        )
    }
}
