//! BatchGetItem: up to 100 keys across tables, answered up to 16 MB; what does not fit comes
//! back as `UnprocessedKeys`.

use std::collections::HashSet;

use super::GetItemRequest;
use crate::expr::Projection;
use crate::model::{Item, item_size};
use crate::storage::keys::item_key;
use crate::{Error, Result, Store};

/// Most keys in one BatchGetItem.
pub(crate) const MAX_BATCH_GET_KEYS: usize = 100;
/// Largest BatchGetItem response, in item bytes.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The keys to read from one table and how.
#[derive(Debug, Default)]
pub struct KeysAndAttributes {
    /// Keys to read.
    pub keys: Vec<Item>,
    /// Attributes to return.
    pub projection: Option<Projection>,
    /// Strongly consistent reads (changes only the capacity charged).
    pub consistent_read: bool,
}

/// A BatchGetItem request.
#[derive(Debug, Default)]
pub struct BatchGetRequest {
    /// Per table, what to read.
    pub tables: Vec<(String, KeysAndAttributes)>,
}

/// The result of a BatchGetItem.
#[derive(Debug, Default)]
pub struct BatchGetOutcome {
    /// Found items per table (every requested table appears, possibly with no items).
    pub responses: Vec<(String, Vec<Item>)>,
    /// Keys not read because the response reached 16 MB, per table.
    pub unprocessed: Vec<(String, KeysAndAttributes)>,
    /// Read capacity units consumed per table.
    pub consumed_capacity_units: Vec<(String, f64)>,
}

impl Store {
    /// Reads many items.
    ///
    /// # Errors
    /// Validation (too many or duplicate keys, bad keys), ResourceNotFound, storage failures.
    pub fn batch_get_item(&self, request: BatchGetRequest) -> Result<BatchGetOutcome> {
        let total: usize = request.tables.iter().map(|(_, k)| k.keys.len()).sum();
        if total > MAX_BATCH_GET_KEYS {
            return Err(Error::validation(
                "Too many items requested for the BatchGetItem call",
            ));
        }
        for (table_name, wanted) in &request.tables {
            let table = self.item_table(table_name)?;
            if wanted.keys.is_empty() {
                return Err(Error::validation(format!(
                    "1 validation error detected: Value at 'RequestItems.{table_name}.member.Keys' failed to satisfy constraint: Member must have length greater than or equal to 1"
                )));
            }
            let mut seen = HashSet::new();
            for key in &wanted.keys {
                table.shape.check_key(key)?;
                if !seen.insert(item_key(table.id, &table.shape, key)) {
                    return Err(Error::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
            }
        }
        let mut outcome = BatchGetOutcome::default();
        let mut bytes = 0usize;
        for (table_name, wanted) in request.tables {
            let mut items = Vec::new();
            let mut units = 0.0;
            let mut left = Vec::new();
            for key in wanted.keys {
                if bytes >= MAX_RESPONSE_BYTES {
                    left.push(key);
                    continue;
                }
                let got = self.get_item(GetItemRequest {
                    table_name: table_name.clone(),
                    key,
                    projection: wanted.projection.clone(),
                    consistent_read: wanted.consistent_read,
                })?;
                units += got.consumed_capacity_units;
                if let Some(item) = got.item {
                    bytes += item_size(&item);
                    items.push(item);
                }
            }
            if !left.is_empty() {
                outcome.unprocessed.push((
                    table_name.clone(),
                    KeysAndAttributes {
                        keys: left,
                        projection: wanted.projection,
                        consistent_read: wanted.consistent_read,
                    },
                ));
            }
            outcome.responses.push((table_name.clone(), items));
            outcome.consumed_capacity_units.push((table_name, units));
        }
        Ok(outcome)
    }
}
