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
use crate::model::{Item, KeyShape, item_size};
use crate::{Error, Result};

/// Catalog key recording that `collections` holds the size of every collection.
const COLLECTIONS_FORMAT_KEY: &[u8] = b"meta/collections_format";

/// DynamoDB's item collection limit (DG: "Item collection size limit").
pub const ITEM_COLLECTION_LIMIT_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// DynamoDB's message when a write would take a collection past the limit (the documented
/// `message` of ItemCollectionSizeLimitExceededException in the API reference).
pub(crate) const LIMIT_MESSAGE: &str =
    "The total size of an item collection has exceeded the maximum limit of 10 gigabytes.";

/// True when `indexes` include a local one: only then are collections sized and limited.
pub(crate) fn has_local_index(indexes: &[IndexInfo]) -> bool {
    indexes.iter().any(|i| !i.global)
}

/// The `collections` key of the collection `item` belongs to (the item's partition key
/// value, encoded as in item keys); `None` when the item lacks it.
pub(crate) fn collection_key(table_id: u64, shape: &KeyShape, item: &Item) -> Option<Vec<u8>> {
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
    match ks.collections.get(key)? {
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
    pub(crate) fn collection_size(&self, key: &[u8]) -> Result<i64> {
        stored_size(&self.ks, key)
    }

    /// Computes every collection size of a database that predates the `collections`
    /// keyspace, once: a walk of each table with local indexes, committed with the marker
    /// that says it is done. Runs at open, before any write can race it.
    pub(crate) fn migrate_collections(&self) -> Result<()> {
        if self.ks.catalog.contains_key(COLLECTIONS_FORMAT_KEY)? {
            return Ok(());
        }
        for table in self.live_tables() {
            self.rebuild_collections(&table)?;
        }
        self.ks.catalog.insert(COLLECTIONS_FORMAT_KEY, [1])?;
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
        batch.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::*;
    use crate::model::{
        AttributeDefinition, AttributeValue, KeySchemaElement, LocalSecondaryIndex, Projection,
    };
    use crate::ops::{CreateTableRequest, DeleteItemRequest, PutItemRequest};
    use crate::{Engine, StoreConfig};

    fn element(name: &str, key_type: &str) -> KeySchemaElement {
        KeySchemaElement {
            attribute_name: name.into(),
            key_type: key_type.into(),
        }
    }

    fn open(dir: &std::path::Path, limit: u64) -> Engine {
        let mut config = StoreConfig::for_tests(dir);
        config.item_collection_limit_bytes = limit;
        Engine::open(config).unwrap()
    }

    /// Table `coll` keyed by `p`/`c`, with a local index on `x` projecting only keys.
    fn create(store: &Engine) {
        let mut request = CreateTableRequest::on_demand("coll", "p", "S");
        request.key_schema.push(element("c", "RANGE"));
        for name in ["c", "x"] {
            request.attribute_definitions.push(AttributeDefinition {
                attribute_name: name.into(),
                attribute_type: "S".into(),
            });
        }
        request.local_secondary_indexes.push(LocalSecondaryIndex {
            index_name: "by_x".into(),
            key_schema: vec![element("p", "HASH"), element("x", "RANGE")],
            projection: Projection {
                projection_type: Some("KEYS_ONLY".into()),
                non_key_attributes: None,
            },
        });
        store.tables.create_table(request).unwrap();
    }

    fn item(p: &str, c: &str, x: Option<&str>, pad: usize) -> Item {
        let mut item: Item = [
            ("p".to_string(), AttributeValue::S(p.into())),
            ("c".to_string(), AttributeValue::S(c.into())),
            ("pad".to_string(), AttributeValue::S("z".repeat(pad))),
        ]
        .into();
        if let Some(x) = x {
            item.insert("x".into(), AttributeValue::S(x.into()));
        }
        item
    }

    fn put(store: &Engine, item: Item) -> Result<()> {
        store
            .store
            .put_item(PutItemRequest {
                table_name: "coll".into(),
                item,
                ..Default::default()
            })
            .map(|_| ())
    }

    fn size(store: &Engine, p: &str) -> u64 {
        size_in(store, "coll", p)
    }

    fn size_in(store: &Engine, table: &str, p: &str) -> u64 {
        let key: Item = [("p".to_string(), AttributeValue::S(p.into()))].into();
        store
            .store
            .item_collection_metrics(table, &key)
            .unwrap()
            .unwrap()
            .size_bytes
    }

    /// Items plus their local index entries (keys only: p, c, x).
    fn expected(items: &[Item]) -> u64 {
        items
            .iter()
            .map(|i| {
                let entry = i.get("x").map_or(0, |_| {
                    let keys: Item = ["p", "c", "x"]
                        .iter()
                        .map(|n| ((*n).to_string(), i.get(*n).unwrap().clone()))
                        .collect();
                    item_size(&keys)
                });
                (item_size(i) + entry) as u64
            })
            .sum()
    }

    #[test]
    fn sizes_follow_every_write_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), ITEM_COLLECTION_LIMIT_BYTES);
        create(&store);
        let a1 = item("a", "1", Some("v"), 10);
        let a2 = item("a", "2", None, 20);
        put(&store, a1.clone()).unwrap();
        put(&store, a2.clone()).unwrap();
        put(&store, item("b", "1", Some("w"), 5)).unwrap();
        assert_eq!(size(&store, "a"), expected(&[a1.clone(), a2.clone()]));
        let a1_bigger = item("a", "1", Some("v"), 300);
        put(&store, a1_bigger.clone()).unwrap();
        assert_eq!(
            size(&store, "a"),
            expected(&[a1_bigger.clone(), a2.clone()])
        );
        let key = |c: &str| -> Item {
            [
                ("p".to_string(), AttributeValue::S("a".into())),
                ("c".to_string(), AttributeValue::S(c.into())),
            ]
            .into()
        };
        store
            .store
            .delete_item(DeleteItemRequest {
                table_name: "coll".into(),
                key: key("2"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            size(&store, "a"),
            expected(std::slice::from_ref(&a1_bigger))
        );
        drop(store);
        let store = open(dir.path(), ITEM_COLLECTION_LIMIT_BYTES);
        assert_eq!(size(&store, "a"), expected(&[a1_bigger]));
        store
            .store
            .delete_item(DeleteItemRequest {
                table_name: "coll".into(),
                key: key("1"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(size(&store, "a"), 0);
        let table = store.store.table("coll").unwrap();
        let stored = collection_key(table.id, &table.shape, &key("1")).unwrap();
        assert!(
            !store
                .store
                .storage
                .ks
                .collections
                .contains_key(stored)
                .unwrap(),
            "an empty collection keeps no entry"
        );
    }

    #[test]
    fn a_database_without_sizes_gets_them_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), ITEM_COLLECTION_LIMIT_BYTES);
        create(&store);
        let items = [item("a", "1", Some("v"), 10), item("a", "2", None, 70)];
        for i in &items {
            put(&store, i.clone()).unwrap();
        }
        // What a database written before the keyspace existed looks like.
        for guard in store.store.storage.ks.collections.iter() {
            store
                .store
                .storage
                .ks
                .collections
                .remove(guard.key().unwrap())
                .unwrap();
        }
        store
            .store
            .storage
            .ks
            .catalog
            .remove(COLLECTIONS_FORMAT_KEY)
            .unwrap();
        drop(store);
        let store = open(dir.path(), ITEM_COLLECTION_LIMIT_BYTES);
        assert_eq!(size(&store, "a"), expected(&items));
    }

    #[test]
    fn a_restored_table_has_the_sizes_of_its_items() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), ITEM_COLLECTION_LIMIT_BYTES);
        create(&store);
        let items = [item("a", "1", Some("v"), 10), item("a", "2", None, 70)];
        for i in &items {
            put(&store, i.clone()).unwrap();
        }
        let backup = store.backups.create_backup("coll", "before").unwrap();
        assert_eq!(store.backups.run_pending_jobs().unwrap(), 1);
        store
            .backups
            .restore_table_from_backup(&backup.arn, "restored", Default::default())
            .unwrap();
        assert_eq!(store.backups.run_pending_jobs().unwrap(), 1);
        assert_eq!(size_in(&store, "restored", "a"), expected(&items));
    }

    #[test]
    fn a_write_past_the_limit_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let first = item("a", "1", Some("v"), 500);
        let limit = expected(std::slice::from_ref(&first)) + 100;
        let store = open(dir.path(), limit);
        create(&store);
        put(&store, first.clone()).unwrap();
        let refused = put(&store, item("a", "2", None, 200));
        assert!(
            matches!(refused, Err(Error::ItemCollectionSizeLimitExceeded { .. })),
            "{refused:?}"
        );
        assert_eq!(size(&store, "a"), expected(std::slice::from_ref(&first)));
        let table = store.store.table("coll").unwrap();
        assert_eq!(
            store.store.storage.table_stats(table.id).items,
            1,
            "nothing was written"
        );
        // Other collections, and writes that shrink this one, go on.
        put(&store, item("b", "1", None, 200)).unwrap();
        let smaller = item("a", "1", Some("v"), 100);
        put(&store, smaller.clone()).unwrap();
        assert_eq!(size(&store, "a"), expected(&[smaller]));
    }

    #[test]
    fn sizes_round_trip_and_damage_is_an_error() {
        assert_eq!(decode_size(&encode_size(12_345)).ok(), Some(12_345));
        assert!(matches!(decode_size(&[1, 2, 3]), Err(Error::Corrupt(_))));
    }
}
