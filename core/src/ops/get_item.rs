//! GetItem: read one item by key, optionally projected.

use super::read_units;
use crate::Result;
use crate::Store;
use crate::expr::Projection;
use crate::model::{Item, item_size};
use crate::storage::keys::item_key;

/// A GetItem request.
#[derive(Debug, Default)]
pub struct GetItemRequest {
    /// Table name.
    pub table_name: String,
    /// The item's key attributes.
    pub key: Item,
    /// Attributes to return (all when `None`).
    pub projection: Option<Projection>,
    /// Strongly consistent read (every read here is; it only changes the capacity charged).
    pub consistent_read: bool,
}

/// The result of a GetItem.
#[derive(Debug, Clone, PartialEq)]
pub struct GetItemOutcome {
    /// The item, projected, or `None` when there is none.
    pub item: Option<Item>,
    /// Read capacity units consumed.
    pub consumed_capacity_units: f64,
}

impl Store {
    /// Reads one item.
    ///
    /// # Errors
    /// ResourceNotFound, Validation (key), storage failures.
    pub fn get_item(&self, request: GetItemRequest) -> Result<GetItemOutcome> {
        let table = self.item_table(&request.table_name)?;
        table.shape.check_key(&request.key)?;
        let key_bytes = item_key(table.id, &table.shape, &request.key);
        let item = self.storage.read_item(&key_bytes)?;
        let units = read_units(item.as_ref().map_or(0, item_size), request.consistent_read);
        let item = match (&request.projection, item) {
            (Some(projection), Some(item)) => Some(projection.apply(&item)),
            (_, item) => item,
        };
        Ok(GetItemOutcome {
            item,
            consumed_capacity_units: units,
        })
    }
}
