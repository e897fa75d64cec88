//! Storage's behaviours that only show through the store's operations: history trimming,
//! item collection sizes and the change-log format migration (tidemark-storage cannot reach
//! the operations, which live here).

mod trimming {
    use std::sync::Arc;

    use crate::changes::ChangeSeq;
    use crate::model::{AttributeValue, Item};
    use crate::ops::{CreateTableRequest, DeleteItemRequest, PutItemRequest};
    use crate::storage::keys::item_key;
    use crate::{Engine, ManualClock, StoreConfig};

    #[test]
    fn trimming_removes_old_records_and_their_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let mut config = StoreConfig::new(dir.path());
        config.history_window = std::time::Duration::from_secs(60);
        let store = Engine::open_with_clock(config, clock.clone()).unwrap();
        store
            .tables
            .create_table(CreateTableRequest::on_demand("tbl", "p", "S"))
            .unwrap();
        let key: Item = [("p".to_string(), AttributeValue::S("a".into()))].into();
        store
            .store
            .put_item(PutItemRequest {
                table_name: "tbl".into(),
                item: key.clone(),
                ..Default::default()
            })
            .unwrap();
        store
            .store
            .delete_item(DeleteItemRequest {
                table_name: "tbl".into(),
                key: key.clone(),
                ..Default::default()
            })
            .unwrap();
        let table = store.store.storage.table("tbl").unwrap();
        let stored_key = item_key(table.id, &table.shape, &key);
        assert!(
            store.store.storage.has_cell(&stored_key).unwrap(),
            "tombstone kept"
        );

        assert_eq!(
            store.trim_history().unwrap().records,
            0,
            "nothing is older than the window yet"
        );
        clock.advance(61_000);
        let other: Item = [("p".to_string(), AttributeValue::S("b".into()))].into();
        store
            .store
            .put_item(PutItemRequest {
                table_name: "tbl".into(),
                item: other,
                ..Default::default()
            })
            .unwrap();
        let report = store.trim_history().unwrap();
        assert_eq!((report.records, report.tombstones), (2, 1));
        assert!(!store.store.storage.has_cell(&stored_key).unwrap());
        let left: Vec<ChangeSeq> = store
            .store
            .read_changes(ChangeSeq::FIRST, 10)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(left, [ChangeSeq::new(3)]);
    }
}

#[allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod collections {
    use crate::model::{
        AttributeDefinition, AttributeValue, Item, KeySchemaElement, LocalSecondaryIndex,
        Projection, item_size,
    };
    use crate::ops::{CreateTableRequest, DeleteItemRequest, PutItemRequest};
    use crate::storage::collections::{ITEM_COLLECTION_LIMIT_BYTES, collection_key};
    use crate::{Engine, Error, Result, StoreConfig};

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
            !store.store.storage.has_collection_entry(&stored).unwrap(),
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
        store.store.storage.forget_collection_sizes().unwrap();
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
}

mod log_format {
    use std::sync::Arc;

    use crate::changes::{ChangeSeq, LogCursor, LogLimits};
    use crate::model::AttributeValue;
    use crate::ops::{CreateTableRequest, PutItemRequest};
    use crate::{Engine, ManualClock, StoreConfig};

    fn open(dir: &std::path::Path) -> Engine {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        Engine::open_with_clock(StoreConfig::for_tests(dir), clock).unwrap()
    }

    fn put(store: &Engine, k: &str) {
        let item = [("p".to_string(), AttributeValue::S(k.into()))].into();
        store
            .store
            .put_item(PutItemRequest {
                table_name: "tbl".into(),
                item,
                ..Default::default()
            })
            .unwrap();
    }

    #[test]
    fn entries_of_the_previous_format_are_brought_up_to_date_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .tables
            .create_table(CreateTableRequest::on_demand("tbl", "p", "S"))
            .unwrap();
        for k in ["a", "b", "c", "d", "e"] {
            put(&store, k);
        }
        let table_id = store.store.table_id("tbl").unwrap();
        // Make the folder look like one the previous release wrote.
        store.store.storage.write_previous_log_format().unwrap();
        drop(store);

        let store = open(dir.path());
        let changes = |store: &Engine| {
            let lag = store.store.table_lag(table_id, ChangeSeq::FIRST);
            lag.unwrap().records
        };
        assert_eq!(changes(&store), 5);
        put(&store, "f");
        assert_eq!(changes(&store), 6, "counting goes on");
        let mut per_lane = 0;
        for lane in 0..4 {
            let mut cursor = LogCursor::table(table_id, ChangeSeq::FIRST).lane(4, lane);
            per_lane += store
                .store
                .read_log(&mut cursor, LogLimits::records(100))
                .unwrap()
                .len();
        }
        assert_eq!(per_lane, 6, "partition bytes kept");
        drop(store);
        let store = open(dir.path());
        assert_eq!(changes(&store), 6, "migrated once");
    }
}
