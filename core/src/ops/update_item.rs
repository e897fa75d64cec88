//! UpdateItem: read-modify-write of one item under its key lock, so concurrent updates
//! (`SET n = n + :one` from many clients) never lose each other's changes.

use super::{
    ReturnValues, WriteOutcome, check_condition, check_item_size, index_write_units, write_units,
};
use crate::changes::Cause;
use crate::expr::{Condition, Projection, UpdateExpression};
use crate::model::{Item, KeyShape};
use crate::write::{Decision, Target};
use crate::{Error, Result, Store};

/// An UpdateItem request.
#[derive(Debug, Default)]
pub struct UpdateItemRequest {
    /// Table name.
    pub table_name: String,
    /// The item's key attributes.
    pub key: Item,
    /// The update to apply (an absent update still creates a missing item, as DynamoDB does).
    pub update: Option<UpdateExpression>,
    /// Condition on the old item.
    pub condition: Option<Condition>,
    /// What to return.
    pub return_values: ReturnValues,
    /// Return the old item with a ConditionalCheckFailed error.
    pub return_old_on_condition_failure: bool,
}

impl Store {
    /// Updates (or creates) one item.
    ///
    /// # Errors
    /// ResourceNotFound, Validation (key, update on a key attribute, invalid paths, size),
    /// ConditionalCheckFailed, storage failures.
    pub fn update_item(&self, request: UpdateItemRequest) -> Result<WriteOutcome> {
        let table = self.item_table(&request.table_name)?;
        table.shape.check_key(&request.key)?;
        check_key_not_updated(&table.shape, request.update.as_ref())?;
        let target = Target::new(table.clone(), request.key.clone(), Cause::Request);
        let written = self.write_one(target, |cell| {
            let old = cell.item.clone();
            check_condition(
                request.condition.as_ref(),
                old.as_ref(),
                request.return_old_on_condition_failure,
            )?;
            let (new, creates_nothing) =
                updated_item(old.as_ref(), &request.key, request.update.as_ref())?;
            let decision = match creates_nothing {
                true => Decision::Keep,
                false => Decision::Write(Some(new.clone())),
            };
            Ok((decision, (old, new, creates_nothing)))
        })?;
        let (old, new, creates_nothing) = written.value;
        let change_seq = written.last_seq;
        let index_units =
            index_write_units(&table, old.as_ref(), (!creates_nothing).then_some(&new));
        let units = write_units(old.as_ref(), Some(&new))
            + index_units.iter().map(|u| u.units).sum::<f64>();
        let updated = || {
            Projection::from_paths(
                request
                    .update
                    .as_ref()
                    .map(|u| u.updated_paths())
                    .unwrap_or_default(),
            )
        };
        let attributes = match request.return_values {
            ReturnValues::None => None,
            ReturnValues::AllOld => old.clone(),
            ReturnValues::AllNew => (!creates_nothing).then_some(new),
            ReturnValues::UpdatedOld => old.as_ref().map(|o| updated().apply(o)),
            ReturnValues::UpdatedNew => (!creates_nothing).then(|| updated().apply(&new)),
        };
        let attributes = attributes.filter(|a| !a.is_empty());
        Ok(WriteOutcome {
            attributes,
            consumed_capacity_units: units,
            index_units,
            change_seq,
        })
    }
}

/// The item an update produces from `old` (or, for a missing item, from its key), checked
/// against the size limit, and whether the update leaves a missing item missing.
pub(crate) fn updated_item(
    old: Option<&Item>,
    key: &Item,
    update: Option<&UpdateExpression>,
) -> Result<(Item, bool)> {
    let mut new = old.cloned().unwrap_or_else(|| key.clone());
    let mut has_actions = false;
    if let Some(update) = update {
        has_actions = !update.updated_paths().is_empty();
        // DynamoDB ignores removals (even of nested paths) on an item that does not exist.
        if old.is_some() || !update.only_removes() {
            update.apply(&mut new)?;
        }
    }
    // An update of a missing item that only removes things does not create it.
    let creates_nothing = old.is_none() && has_actions && new == *key;
    check_item_size(&new)?;
    Ok((new, creates_nothing))
}

/// Rejects an update that writes a key attribute.
pub(crate) fn check_key_not_updated(
    shape: &KeyShape,
    update: Option<&UpdateExpression>,
) -> Result<()> {
    let key_attribute = update.and_then(|u| {
        u.top_level_attributes()
            .into_iter()
            .find(|a| shape.is_key_attribute(a))
    });
    match key_attribute {
        Some(name) => Err(Error::validation(format!(
            "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
        ))),
        None => Ok(()),
    }
}
