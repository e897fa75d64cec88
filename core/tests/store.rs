//! The store's durable structures and commit path, exercised directly (no HTTP): reopen tests
//! for items, tables, statistics and the change log; tombstones; the durable watermark in both
//! modes; key-lock atomicity under threads.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly on purpose"
)]

use std::sync::Arc;

use tidemark_core::model::{AttributeDefinition, AttributeValue, Item, KeySchemaElement};
use tidemark_core::ops::{CreateTableRequest, DeleteItemRequest, GetItemRequest, PutItemRequest};
use tidemark_core::{ChangeKind, Durability, ManualClock, Store, StoreConfig};

fn open(dir: &std::path::Path, durability: Durability) -> Store {
    let mut config = StoreConfig::new(dir);
    config.durability = durability;
    Store::open_with_clock(config, Arc::new(ManualClock::new(1_700_000_000_000))).unwrap()
}

fn create(store: &Store, name: &str) {
    store
        .create_table(CreateTableRequest {
            table_name: name.into(),
            key_schema: vec![KeySchemaElement {
                attribute_name: "p".into(),
                key_type: "HASH".into(),
            }],
            attribute_definitions: vec![AttributeDefinition {
                attribute_name: "p".into(),
                attribute_type: "S".into(),
            }],
            billing_mode: Some("PAY_PER_REQUEST".into()),
            ..Default::default()
        })
        .unwrap();
}

fn item(key: &str, v: &str) -> Item {
    [
        ("p".to_string(), AttributeValue::S(key.into())),
        ("v".to_string(), AttributeValue::S(v.into())),
    ]
    .into()
}

fn key(k: &str) -> Item {
    [("p".to_string(), AttributeValue::S(k.into()))].into()
}

fn put(store: &Store, table: &str, it: Item) -> Option<u64> {
    store
        .put_item(PutItemRequest {
            table_name: table.into(),
            item: it,
            ..Default::default()
        })
        .unwrap()
        .change_seq
}

fn get(store: &Store, table: &str, k: &str) -> Option<Item> {
    store
        .get_item(GetItemRequest {
            table_name: table.into(),
            key: key(k),
            ..Default::default()
        })
        .unwrap()
        .item
}

#[test]
fn everything_durable_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), Durability::Sync);
        create(&store, "tbl");
        for i in 0..50 {
            put(&store, "tbl", item(&format!("k{i}"), "x"));
        }
        store
            .delete_item(DeleteItemRequest {
                table_name: "tbl".into(),
                key: key("k0"),
                ..Default::default()
            })
            .unwrap();
    }
    let store = open(dir.path(), Durability::Sync);
    assert_eq!(get(&store, "tbl", "k1"), Some(item("k1", "x")));
    assert_eq!(
        get(&store, "tbl", "k0"),
        None,
        "the tombstone hides the item after reopen"
    );
    let described = store.describe_table("tbl").unwrap();
    assert_eq!(described.item_count, Some(49));
    let records = store.read_changes(1, 1000).unwrap();
    assert_eq!(records.len(), 51);
    assert_eq!(records.last().map(|r| r.kind), Some(ChangeKind::Remove));
    // Sequences and stamps continue where they stopped.
    let next = put(&store, "tbl", item("after", "y")).unwrap();
    assert_eq!(next, 52);
    let last_two = store.read_changes(51, 10).unwrap();
    assert!(last_two[0].stamp < last_two[1].stamp);
}

#[test]
fn a_put_over_a_tombstone_is_an_insert() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffer);
    create(&store, "tbl");
    put(&store, "tbl", item("a", "1"));
    store
        .delete_item(DeleteItemRequest {
            table_name: "tbl".into(),
            key: key("a"),
            ..Default::default()
        })
        .unwrap();
    put(&store, "tbl", item("a", "2"));
    let kinds: Vec<_> = store
        .read_changes(1, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        [ChangeKind::Insert, ChangeKind::Remove, ChangeKind::Insert]
    );
}

#[test]
fn identical_puts_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffer);
    create(&store, "tbl");
    assert_eq!(put(&store, "tbl", item("a", "1")), Some(1));
    assert_eq!(put(&store, "tbl", item("a", "1")), None);
    assert_eq!(store.read_changes(1, 10).unwrap().len(), 1);
}

#[test]
fn the_durable_watermark_covers_every_acknowledged_write() {
    for durability in [Durability::Sync, Durability::Buffer] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), durability));
        create(&store, "tbl");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        let seq = put(&store, "tbl", item(&format!("{t}-{i}"), "v")).unwrap();
                        assert!(
                            store.durable_seq() >= seq,
                            "{durability:?}: acknowledged before durable"
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.durable_seq(), 800);
        assert_eq!(store.read_changes(1, 10_000).unwrap().len(), 800);
    }
}

#[test]
fn deleted_tables_take_their_items_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffer);
    create(&store, "tbl");
    put(&store, "tbl", item("a", "1"));
    store.delete_table("tbl").unwrap();
    create(&store, "tbl");
    assert_eq!(get(&store, "tbl", "a"), None);
    assert_eq!(store.describe_table("tbl").unwrap().item_count, Some(0));
}

#[test]
fn a_second_open_of_the_same_folder_fails() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path(), Durability::Buffer);
    let second = Store::open(StoreConfig::new(dir.path()));
    assert!(second.is_err());
}
