//! TransactGetItems: up to 100 items read from one consistent snapshot.

use super::read_units;
use crate::expr::Projection;
use crate::model::{Item, item_size};
use crate::storage::keys::item_key;
use crate::{Error, Result, Store};

/// Most gets in one TransactGetItems.
const MAX_GETS: usize = 100;

/// One get of a TransactGetItems.
#[derive(Debug, Clone)]
pub struct TransactGetItem {
    /// Table name.
    pub table_name: String,
    /// The item's key.
    pub key: Item,
    /// Attributes to return.
    pub projection: Option<Projection>,
}

/// The result of a TransactGetItems.
#[derive(Debug, Clone, Default)]
pub struct TransactGetOutcome {
    /// Per get, in request order, the item (projected) or `None`.
    pub items: Vec<Option<Item>>,
    /// Read capacity units per table (transactional reads cost twice).
    pub consumed_capacity_units: Vec<(String, f64)>,
}

impl Store {
    /// Reads items as of one instant.
    ///
    /// # Errors
    /// Validation (count, two gets of one item); TransactionCanceled with a ValidationError
    /// for a key that does not fit its table; ResourceNotFound; storage failures.
    pub fn transact_get_items(&self, gets: Vec<TransactGetItem>) -> Result<TransactGetOutcome> {
        if gets.is_empty() || gets.len() > MAX_GETS {
            return Err(Error::validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to {MAX_GETS} and greater than or equal to 1"
            )));
        }
        let mut keys = Vec::with_capacity(gets.len());
        for (index, get) in gets.iter().enumerate() {
            let table = self.item_table(&get.table_name)?;
            // As in TransactWriteItems, a key that does not fit its table cancels the
            // transaction with a ValidationError for that action.
            match table.shape.check_key(&get.key) {
                Err(Error::Validation(message)) => {
                    return Err(crate::transactions::cancelled_by_validation(
                        gets.len(),
                        index,
                        message,
                    ));
                }
                other => other?,
            }
            let key = item_key(table.id, &table.shape, &get.key);
            // DynamoDB refuses two gets of one item as it refuses two writes of one item.
            if keys.contains(&key) {
                return Err(Error::validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            keys.push(key);
        }
        let snapshot = self.storage.snapshot();
        let mut outcome = TransactGetOutcome::default();
        let mut units: std::collections::HashMap<String, f64> = Default::default();
        for (get, key) in gets.iter().zip(&keys) {
            let item = snapshot.item(key)?;
            *units.entry(get.table_name.clone()).or_default() +=
                2.0 * read_units(item.as_ref().map_or(0, item_size), true);
            outcome.items.push(match (&get.projection, item) {
                (Some(projection), Some(item)) => Some(projection.apply(&item)),
                (_, item) => item,
            });
        }
        outcome.consumed_capacity_units = units.into_iter().collect();
        Ok(outcome)
    }
}
