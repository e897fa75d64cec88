//! Item collection metrics: the size of the item collection a write touched, for
//! `ReturnItemCollectionMetrics`, read from the sizes the commit path keeps (one lookup).

use crate::model::Item;
use crate::storage::collections::{collection_key, has_local_index};
use crate::{Result, Store};

pub use crate::storage::collections::ITEM_COLLECTION_LIMIT_BYTES;

/// The size of one item collection of a table with local secondary indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemCollectionMetrics {
    /// The collection's partition key attribute and value.
    pub key: Item,
    /// Bytes of its items and their local index entries.
    pub size_bytes: u64,
}

impl ItemCollectionMetrics {
    /// `SizeEstimateRangeGB`: the whole gigabytes around the size, as DynamoDB reports it
    /// (`[0.0, 1.0]` for a collection under 1 GB in the developer guide's examples of
    /// `ItemCollectionMetrics`).
    pub fn size_estimate_range_gb(&self) -> [f64; 2] {
        let low = (self.size_bytes / (1024 * 1024 * 1024)) as f64;
        [low, low + 1.0]
    }
}

impl Store {
    /// The collection `key` (an item or its key) belongs to in `table_name`, with its size
    /// now; `None` for a table without local secondary indexes, which DynamoDB reports
    /// nothing for. Read after a write, so it may include writes committed since.
    ///
    /// # Errors
    /// ResourceNotFound, storage failures.
    pub fn item_collection_metrics(
        &self,
        table_name: &str,
        key: &Item,
    ) -> Result<Option<ItemCollectionMetrics>> {
        let table = self.table(table_name)?;
        if !has_local_index(&table.indexes()) {
            return Ok(None);
        }
        let hash = &table.shape.hash.name;
        let (Some(value), Some(storage_key)) =
            (key.get(hash), collection_key(table.id, &table.shape, key))
        else {
            return Ok(None);
        };
        let size = self.storage.collection_size(&storage_key)?;
        Ok(Some(ItemCollectionMetrics {
            key: [(hash.clone(), value.clone())].into(),
            size_bytes: u64::try_from(size).unwrap_or(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(size_bytes: u64) -> [f64; 2] {
        ItemCollectionMetrics {
            key: Item::default(),
            size_bytes,
        }
        .size_estimate_range_gb()
    }

    #[test]
    fn the_estimate_is_the_whole_gigabytes_around_the_size() {
        const GB: u64 = 1024 * 1024 * 1024;
        assert_eq!(estimate(0), [0.0, 1.0]);
        assert_eq!(estimate(1), [0.0, 1.0]);
        assert_eq!(estimate(GB - 1), [0.0, 1.0]);
        assert_eq!(estimate(GB), [1.0, 2.0]);
        assert_eq!(estimate(10 * GB - 1), [9.0, 10.0]);
    }
}
