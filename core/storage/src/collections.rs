//! Item collection sizes of tables with local secondary indexes.
//!
//! DynamoDB's item collection is every item of one partition key value plus their local
//! secondary index entries; on a table with local indexes it is limited to 10 GB
//! (ItemCollectionSizeLimitExceededException) and reported by `ReturnItemCollectionMetrics`.
//! The `collections` keyspace keeps each collection's size, `table id (u64 BE) | partition
//! key` → bytes (i64 BE), exactly: the commit path adds each write's change in the write's
//! own batch, under the sequencer, so reading a size is one lookup. A collection that
//! reaches zero bytes is removed, so a missing key means an empty collection. Tables without
//! local indexes have no entries.
//!
//! Databases written before this keyspace existed have no sizes: [`Storage::open`] computes
//! them once, by a walk of every table with local indexes, and then records
//! `meta/collections_format` in the catalog (see [`Storage::migrate_collections`]).

use std::collections::HashMap;

use super::catalog::TableEntry;
use super::index::IndexInfo;
use super::keys::{KeyRange, encode_key_value, table_prefix};
use super::{Keyspaces, Storage};
use crate::OrFailure;
use tidemark_model::TableId;
use tidemark_model::model::{Item, KeyShape, item_size};
use tidemark_model::{Error, Result};

/// Catalog key recording that `collections` holds the size of every collection.
const COLLECTIONS_FORMAT_KEY: &[u8] = b"meta/collections_format";

/// DynamoDB's item collection limit (DG: "Item collection size limit").
pub const ITEM_COLLECTION_LIMIT_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// True when `indexes` include a local one: only then are collections sized and limited.
pub fn has_local_index(indexes: &[IndexInfo]) -> bool {
    indexes.iter().any(|i| !i.global)
}

/// The `collections` key of the collection `item` belongs to (the item's partition key
/// value, encoded as in item keys); `None` when the item lacks it.
pub fn collection_key(table_id: TableId, shape: &KeyShape, item: &Item) -> Option<Vec<u8>> {
    let value = item.get(&shape.hash.name)?;
    let mut key = table_prefix(table_id).to_vec();
    encode_key_value(value, &mut key);
    Some(key)
}

/// What `item` adds to its collection: its own size plus its entry in each local index that
/// holds it (the projected attributes, keys included).
pub(crate) fn collection_bytes(shape: &KeyShape, indexes: &[IndexInfo], item: &Item) -> i64 {
    let mut bytes = item_size(item) as i64;
    for index in indexes.iter().filter(|i| !i.global) {
        if index.entry_key(shape, item).is_some() {
            bytes += index.projected_size(shape, item) as i64;
        }
    }
    bytes
}

pub(crate) fn encode_size(bytes: i64) -> [u8; 8] {
    bytes.to_be_bytes()
}

/// The size stored for the collection under `key` (zero when it has none).
pub(crate) fn stored_size(ks: &Keyspaces, key: &[u8]) -> Result<i64> {
    match ks.collections.get(key).or_failure()? {
        Some(value) => decode_size(&value),
        None => Ok(0),
    }
}

pub(crate) fn decode_size(value: &[u8]) -> Result<i64> {
    <[u8; 8]>::try_from(value)
        .map(i64::from_be_bytes)
        .map_err(|_| Error::Corrupt(format!("an item collection size of {} bytes", value.len())))
}

impl Storage {
    /// The stored size of the collection under `key` (zero when it has none).
    pub fn collection_size(&self, key: &[u8]) -> Result<i64> {
        stored_size(&self.ks, key)
    }

    /// Computes every collection size of a database that predates the `collections`
    /// keyspace, once: a walk of each table with local indexes, committed with the marker
    /// that says it is done. Runs at open, before any write can race it.
    pub(crate) fn migrate_collections(&self) -> Result<()> {
        if self
            .ks
            .catalog
            .contains_key(COLLECTIONS_FORMAT_KEY)
            .or_failure()?
        {
            return Ok(());
        }
        for table in self.live_tables() {
            self.rebuild_collections(&table)?;
        }
        self.ks
            .catalog
            .insert(COLLECTIONS_FORMAT_KEY, [1])
            .or_failure()?;
        self.sync_if_durable()
    }

    /// Recomputes the collection sizes of `table` from its items.
    fn rebuild_collections(&self, table: &TableEntry) -> Result<()> {
        let indexes = table.indexes();
        if !has_local_index(&indexes) {
            return Ok(());
        }
        let mut sizes: HashMap<Vec<u8>, i64> = HashMap::new();
        for item in self.items_in(KeyRange::prefix(&table_prefix(table.id)), false) {
            let item = item?;
            if let Some(key) = collection_key(table.id, &table.shape, &item) {
                *sizes.entry(key).or_default() += collection_bytes(&table.shape, &indexes, &item);
            }
        }
        let mut batch = self.db.batch();
        for (key, bytes) in sizes {
            batch.insert(&self.ks.collections, key, encode_size(bytes));
        }
        batch.commit().or_failure()?;
        Ok(())
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Storage {
    /// True when a size is stored for the collection under `key`.
    ///
    /// # Errors
    /// Storage failures.
    pub fn has_collection_entry(&self, key: &[u8]) -> Result<bool> {
        self.ks.collections.contains_key(key).or_failure()
    }

    /// Removes every collection size and the mark that they are complete: what a database
    /// written before the `collections` keyspace existed looks like.
    ///
    /// # Errors
    /// Storage failures.
    pub fn forget_collection_sizes(&self) -> Result<()> {
        for guard in self.ks.collections.iter() {
            self.ks
                .collections
                .remove(guard.key().or_failure()?)
                .or_failure()?;
        }
        self.ks.catalog.remove(COLLECTIONS_FORMAT_KEY).or_failure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_and_damage_is_an_error() {
        assert_eq!(decode_size(&encode_size(12_345)).ok(), Some(12_345));
        assert!(matches!(decode_size(&[1, 2, 3]), Err(Error::Corrupt(_))));
    }
}
