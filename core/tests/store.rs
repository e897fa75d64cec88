//! The store's durable structures and commit path, exercised directly (no HTTP): reopen tests
//! for items, tables, statistics and the change log; tombstones; the durable watermark in both
//! modes; key-lock atomicity under threads; stream boundaries; TTL expiry; retention holds.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly on purpose"
)]

use std::sync::Arc;

use std::time::Duration;
use tidemark_core::Engine;
use tidemark_core::model::{AttributeValue, Item};

use tidemark_core::changes::{ChangeSeq, LogCursor, LogLimits};
use tidemark_core::model::StreamSpecification;
use tidemark_core::ops::{
    CreateTableRequest, DeleteItemRequest, GetItemRequest, PutItemRequest, UpdateTableRequest,
    UpdateTimeToLiveRequest,
};
use tidemark_core::replication::RemoteChange;
use tidemark_core::retention::HoldName;
use tidemark_core::{
    CauseKind, ChangeKind, Durability, HlcTimestamp, ManualClock, Stamp, StoreConfig, TableId,
};

fn open(dir: &std::path::Path, durability: Durability) -> Engine {
    let mut config = StoreConfig::new(dir);
    config.durability = durability;
    Engine::open_with_clock(config, Arc::new(ManualClock::new(1_700_000_000_000))).unwrap()
}

fn create(store: &Engine, name: &str) {
    store
        .tables
        .create_table(CreateTableRequest::on_demand(name, "p", "S"))
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

fn put(store: &Engine, table: &str, it: Item) -> Option<ChangeSeq> {
    store
        .store
        .put_item(PutItemRequest {
            table_name: table.into(),
            item: it,
            ..Default::default()
        })
        .unwrap()
        .change_seq
}

fn get(store: &Engine, table: &str, k: &str) -> Option<Item> {
    store
        .store
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
            .store
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
    let described = store.store.describe_table("tbl").unwrap();
    assert_eq!(described.item_count, Some(49));
    let records = store.store.read_changes(ChangeSeq::FIRST, 1000).unwrap();
    assert_eq!(records.len(), 51);
    assert_eq!(records.last().map(|r| r.kind), Some(ChangeKind::Remove));
    // Sequences and stamps continue where they stopped.
    let next = put(&store, "tbl", item("after", "y")).unwrap();
    assert_eq!(next, ChangeSeq::new(52));
    let last_two = store.store.read_changes(ChangeSeq::new(51), 10).unwrap();
    assert!(last_two[0].stamp < last_two[1].stamp);
}

#[test]
fn a_put_over_a_tombstone_is_an_insert() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffer);
    create(&store, "tbl");
    put(&store, "tbl", item("a", "1"));
    store
        .store
        .delete_item(DeleteItemRequest {
            table_name: "tbl".into(),
            key: key("a"),
            ..Default::default()
        })
        .unwrap();
    put(&store, "tbl", item("a", "2"));
    let kinds: Vec<_> = store
        .store
        .read_changes(ChangeSeq::FIRST, 10)
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
    assert_eq!(put(&store, "tbl", item("a", "1")), Some(ChangeSeq::FIRST));
    assert_eq!(put(&store, "tbl", item("a", "1")), None);
    assert_eq!(
        store
            .store
            .read_changes(ChangeSeq::FIRST, 10)
            .unwrap()
            .len(),
        1
    );
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
                            store.store.durable_seq() >= seq,
                            "{durability:?}: acknowledged before durable"
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.store.durable_seq(), ChangeSeq::new(800));
        assert_eq!(
            store
                .store
                .read_changes(ChangeSeq::FIRST, 10_000)
                .unwrap()
                .len(),
            800
        );
    }
}

#[test]
fn deferred_durability_waits_are_collected_and_awaited() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Sync);
    create(&store, "tbl");

    let (seqs, pending) = store.store.deferring_durability(|| {
        let first = put(&store, "tbl", item("a", "1")).unwrap();
        // A nested scope's writes stay pending in the enclosing one.
        let (second, inner) = store
            .store
            .deferring_durability(|| put(&store, "tbl", item("b", "1")));
        (first, second.unwrap(), inner)
    });
    let (first, second, inner) = seqs;
    assert!(first < second);
    assert_eq!(inner.last_seq(), Some(second));
    assert_eq!(
        pending.last_seq(),
        Some(second),
        "the outer scope waits for the nested write too"
    );
    runtime.block_on(store.store.wait_durable(pending)).unwrap();
    assert!(store.store.durable_seq() >= second);

    let (nothing, pending) = store.store.deferring_durability(|| 1 + 1);
    assert_eq!(nothing, 2);
    assert_eq!(pending.last_seq(), None);
    runtime.block_on(store.store.wait_durable(pending)).unwrap();

    // A scope left by a panic leaves the thread waiting inline again.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.store.deferring_durability(|| {
            put(&store, "tbl", item("c", "1"));
            panic!("operation failed");
        })
    }));
    assert!(unwound.is_err());
    let after = put(&store, "tbl", item("d", "1")).unwrap();
    assert!(
        store.store.durable_seq() >= after,
        "a write outside any scope is durable when it returns"
    );
}

#[test]
fn a_read_over_its_budget_is_void_and_the_thread_reads_unbudgeted_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffer);
    create(&store, "tbl");
    let payload = "x".repeat(2_000);
    for i in 0..50 {
        put(&store, "tbl", item(&format!("k{i:02}"), &payload));
    }
    let scan = || {
        store
            .store
            .scan(tidemark_core::ops::ScanRequest {
                table_name: "tbl".into(),
                ..Default::default()
            })
            .map(|page| page.count)
    };
    // 50 items of ~2 KB: about 100 KB in one page.
    assert!(store.store.within_read_budget(64 * 1024, scan).is_none());
    assert_eq!(
        store
            .store
            .within_read_budget(1024 * 1024, scan)
            .map(|count| count.unwrap()),
        Some(50)
    );
    assert_eq!(
        scan_count(&store, "tbl"),
        50,
        "no budget is left on the thread"
    );
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.store.within_read_budget(1, || panic!("read failed"))
    }));
    assert!(unwound.is_err());
    assert_eq!(
        scan_count(&store, "tbl"),
        50,
        "a panic leaves no budget behind"
    );
}

#[test]
fn deleted_tables_take_their_items_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffer);
    create(&store, "tbl");
    put(&store, "tbl", item("a", "1"));
    store.tables.delete_table("tbl").unwrap();
    create(&store, "tbl");
    assert_eq!(get(&store, "tbl", "a"), None);
    assert_eq!(
        store.store.describe_table("tbl").unwrap().item_count,
        Some(0)
    );
}

#[test]
fn a_second_open_of_the_same_folder_fails() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path(), Durability::Buffer);
    let second = Engine::open(StoreConfig::new(dir.path()));
    assert!(second.is_err());
}

fn open_with(dir: &std::path::Path, clock: Arc<ManualClock>) -> Engine {
    let mut config = StoreConfig::new(dir);
    config.durability = Durability::Buffer;
    config.stream_shards = 2;
    Engine::open_with_clock(config, clock).unwrap()
}

fn set_stream(store: &Engine, table: &str, enabled: bool) {
    store
        .tables
        .update_table(UpdateTableRequest {
            table_name: table.into(),
            stream_specification: Some(StreamSpecification {
                stream_enabled: enabled,
                stream_view_type: enabled.then(|| "NEW_AND_OLD_IMAGES".to_string()),
            }),
            ..Default::default()
        })
        .unwrap();
}

/// The sequences of the table's records in `from..=through` that fall in `lane`.
fn lane_seqs(
    store: &Engine,
    table_id: TableId,
    lanes: u8,
    lane: u8,
    from: ChangeSeq,
    through: ChangeSeq,
) -> Vec<ChangeSeq> {
    let mut cursor = LogCursor::table(table_id, from)
        .lane(lanes, lane)
        .until(through.next());
    store
        .store
        .read_log(&mut cursor, LogLimits::records(usize::MAX))
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

#[test]
fn stream_boundaries_split_the_log_exactly_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = open_with(dir.path(), clock.clone());
    create(&store, "tbl");
    let before = put(&store, "tbl", item("a", "0")).unwrap();
    set_stream(&store, "tbl", true);
    let first = put(&store, "tbl", item("a", "1")).unwrap();
    clock.advance(10_000);
    assert_eq!(
        store
            .store
            .rotate_stream_shards(Duration::from_secs(5))
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .store
            .rotate_stream_shards(Duration::from_secs(5))
            .unwrap(),
        0,
        "no commit since the last generation started"
    );
    let second = put(&store, "tbl", item("a", "2")).unwrap();
    set_stream(&store, "tbl", false);
    let after = put(&store, "tbl", item("a", "3")).unwrap();

    let streams = store.store.streams();
    assert_eq!(streams.len(), 1);
    let stream = &streams[0];
    assert_eq!(stream.generations.len(), 2);
    assert!(stream.start_seq() > before && stream.start_seq() <= first);
    assert!(stream.generation_end(0).unwrap() > first);
    assert!(stream.generation_end(0).unwrap() <= second);
    let end = stream.end.unwrap().seq;
    assert!(end > second && end <= after);

    // One key: all its records are in one lane, split by the generation boundary.
    let lane = (0..stream.shards)
        .find(|&l| lane_seqs(&store, stream.table_id, stream.shards, l, first, first) == [first])
        .unwrap();
    let g0_end = stream.generation_end(0).unwrap();
    assert_eq!(
        lane_seqs(
            &store,
            stream.table_id,
            2,
            lane,
            stream.start_seq(),
            g0_end.saturating_prev()
        ),
        [first]
    );
    assert_eq!(
        lane_seqs(
            &store,
            stream.table_id,
            2,
            lane,
            g0_end,
            end.saturating_prev()
        ),
        [second]
    );
    assert!(
        lane_seqs(
            &store,
            stream.table_id,
            2,
            1 - lane,
            stream.start_seq(),
            end
        )
        .is_empty()
    );

    let arn = stream.arn();
    drop(store);
    let store = open_with(dir.path(), clock.clone());
    let reopened = store.store.streams();
    assert_eq!(reopened.len(), 1);
    assert_eq!(reopened[0].arn(), arn);
    assert_eq!(reopened[0].generations, stream.generations);
    assert_eq!(reopened[0].end, stream.end);

    // A disabled stream is dropped once it ended before the history window.
    clock.advance(25 * 3600 * 1000);
    put(&store, "tbl", item("b", "1"));
    store.trim_history().unwrap();
    assert!(store.store.streams().is_empty());
}

fn ttl_item(k: &str, expires: AttributeValue) -> Item {
    [
        ("p".to_string(), AttributeValue::S(k.into())),
        ("exp".to_string(), expires),
    ]
    .into()
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.into())
}

#[test]
fn ttl_expires_due_items_once_with_service_records() {
    let dir = tempfile::tempdir().unwrap();
    let now = 1_700_000_000_000u64;
    let clock = Arc::new(ManualClock::new(now));
    let store = open_with(dir.path(), clock.clone());
    create(&store, "tbl");
    let secs = (now / 1000) as i64;
    put(&store, "tbl", ttl_item("before-enable", number(secs - 10)));
    store
        .ttl
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: "tbl".into(),
            enabled: true,
            attribute_name: "exp".into(),
        })
        .unwrap();
    assert_eq!(store.tables.run_pending_backfills().unwrap(), 1);
    put(&store, "tbl", ttl_item("due", number(secs - 1)));
    put(&store, "tbl", ttl_item("future", number(secs + 60)));
    put(
        &store,
        "tbl",
        ttl_item("string", AttributeValue::S((secs - 1).to_string())),
    );
    put(&store, "tbl", ttl_item("millis", number(secs * 1000 - 1)));
    put(
        &store,
        "tbl",
        ttl_item("ancient", number(secs - 6 * 365 * 86400)),
    );
    put(&store, "tbl", ttl_item("rescued", number(secs - 5)));
    put(&store, "tbl", ttl_item("rescued", number(secs + 600)));
    let last_user_write = store.store.durable_seq();

    let report = store.ttl.expire_due_items(1000).unwrap();
    assert_eq!(report.expired, 2);
    assert_eq!(report.next_due_second, Some(secs as u64 + 60));
    assert_eq!(
        store.ttl.expire_due_items(1000).unwrap().expired,
        0,
        "nothing twice"
    );
    for gone in ["before-enable", "due"] {
        assert_eq!(get(&store, "tbl", gone), None, "{gone}");
    }
    for kept in ["future", "string", "millis", "ancient", "rescued"] {
        assert!(get(&store, "tbl", kept).is_some(), "{kept}");
    }
    let removes = store
        .store
        .read_changes(last_user_write.next(), 100)
        .unwrap();
    assert_eq!(removes.len(), 2);
    assert!(
        removes
            .iter()
            .all(|r| r.kind == ChangeKind::Remove && r.by_service() && r.old_image.is_some())
    );

    clock.advance(61_000);
    assert_eq!(store.ttl.expire_due_items(1000).unwrap().expired, 1);
    assert_eq!(get(&store, "tbl", "future"), None);
}

#[test]
fn held_records_outlive_the_history_window() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let engine = open_with(dir.path(), clock.clone());
    let store = &engine.store;
    create(&engine, "tbl");
    put(&engine, "tbl", item("a", "0")).unwrap();
    let table_id = store.table_id("tbl").unwrap();
    let hold = HoldName::Publish { table_id };
    store
        .set_hold(&hold, Some(table_id), store.next_seq())
        .unwrap();
    let first = put(&engine, "tbl", item("a", "1")).unwrap();
    let second = put(&engine, "tbl", item("a", "2")).unwrap();
    let third = put(&engine, "tbl", item("a", "3")).unwrap();
    clock.advance(25 * 3600 * 1000);
    put(&engine, "tbl", item("b", "1"));
    engine.trim_history().unwrap();
    assert_eq!(
        store.oldest_retained_seq(),
        first,
        "only what the hold needs is kept"
    );

    assert!(store.advance_hold(&hold, second.next()).unwrap());
    assert!(store.advance_hold(&hold, first).unwrap(), "never back");
    drop(engine);
    let engine = open_with(dir.path(), clock.clone());
    let store = &engine.store;
    assert_eq!(store.hold(&hold).unwrap().from, second.next());
    engine.trim_history().unwrap();
    assert_eq!(
        store.oldest_retained_seq(),
        third,
        "the hold survives a reopen"
    );

    engine.tables.delete_table("tbl").unwrap();
    assert!(store.hold(&hold).is_none(), "a table's holds go with it");
    engine.trim_history().unwrap();
    assert!(
        store.oldest_retained_seq() > third,
        "nothing is held any more"
    );
}

fn table_log(store: &Engine, table: &str) -> Vec<ChangeSeq> {
    let table_id = store.store.table_id(table).unwrap();
    store
        .store
        .read_log(
            &mut LogCursor::table(table_id, ChangeSeq::FIRST),
            LogLimits::records(100),
        )
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

#[test]
fn a_tables_hold_keeps_only_that_tables_history() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let engine = open_with(dir.path(), clock.clone());
    let store = &engine.store;
    create(&engine, "held");
    create(&engine, "free");
    create(&engine, "later");
    let held_id = store.table_id("held").unwrap();
    let free_id = store.table_id("free").unwrap();
    let hold = HoldName::Publish { table_id: held_id };
    store
        .set_hold(&hold, Some(held_id), store.next_seq())
        .unwrap();
    // The two tables' changes interleave in the log.
    let held_first = put(&engine, "held", item("a", "1")).unwrap();
    put(&engine, "free", item("x", "1")).unwrap();
    let held_second = put(&engine, "held", item("b", "1")).unwrap();
    for i in 0..8 {
        put(&engine, "free", item(&format!("y{i}"), "1")).unwrap();
    }
    put(&engine, "free", item("gone", "1")).unwrap();
    let free_last = store
        .delete_item(DeleteItemRequest {
            table_name: "free".into(),
            key: key("gone"),
            ..Default::default()
        })
        .unwrap()
        .change_seq
        .unwrap();
    clock.advance(25 * 3600 * 1000);
    let newest = put(&engine, "later", item("n", "1")).unwrap();

    let report = engine.trim_history().unwrap();
    assert_eq!(
        (report.records, report.tombstones),
        (11, 1),
        "the free table's history goes, its tombstone with it, whatever the held one keeps"
    );
    assert_eq!(table_log(&engine, "held"), [held_first, held_second]);
    assert!(table_log(&engine, "free").is_empty());
    assert_eq!(store.oldest_retained_seq(), held_first);
    assert_eq!(store.oldest_retained_seq_of(held_id), held_first);
    assert_eq!(
        store.oldest_retained_seq_of(free_id),
        free_last.next(),
        "a reader of the free table before here has lost records"
    );
    // The log now has gaps; a point in time still maps to the last change kept by then.
    assert_eq!(
        store.last_change_at_or_before(1_700_000_000_000).unwrap(),
        Some(held_second)
    );
    assert_eq!(
        store
            .last_change_at_or_before(1_700_000_000_000 + 25 * 3600 * 1000)
            .unwrap(),
        Some(newest)
    );

    drop(engine);
    let engine = open_with(dir.path(), clock.clone());
    let store = &engine.store;
    assert_eq!(
        store.oldest_retained_seq_of(free_id),
        free_last.next(),
        "where a table's trimmed records end survives a reopen"
    );
    store.release_hold(&hold).unwrap();
    engine.trim_history().unwrap();
    assert!(table_log(&engine, "held").is_empty(), "released: trimmed");
    assert_eq!(store.oldest_retained_seq(), newest);
    assert_eq!(store.oldest_retained_seq_of(free_id), newest);
}

#[test]
fn tombstones_stay_while_a_peer_has_not_passed_their_remove() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let engine = open_with(dir.path(), clock.clone());
    let store = &engine.store;
    create(&engine, "tbl");
    put(&engine, "tbl", item("gone", "0")).unwrap();
    let hold = HoldName::Peer {
        region: "eu-west-1".into(),
        table_id: store.table_id("tbl").unwrap(),
    };
    store.set_hold(&hold, None, ChangeSeq::FIRST).unwrap();
    let remove = store
        .delete_item(DeleteItemRequest {
            table_name: "tbl".into(),
            key: key("gone"),
            ..Default::default()
        })
        .unwrap()
        .change_seq
        .unwrap();
    clock.advance(25 * 3600 * 1000);
    put(&engine, "tbl", item("later", "0")).unwrap();
    let report = engine.trim_history().unwrap();
    assert_eq!(
        (report.records, report.tombstones),
        (0, 0),
        "the peer is behind"
    );

    store.advance_hold(&hold, remove).unwrap();
    let report = engine.trim_history().unwrap();
    assert_eq!(
        (report.records, report.tombstones),
        (1, 0),
        "the put before the REMOVE goes; the REMOVE and its tombstone stay"
    );

    store.advance_hold(&hold, remove.next()).unwrap();
    let report = engine.trim_history().unwrap();
    assert_eq!(
        (report.records, report.tombstones),
        (1, 1),
        "once the peer passed the REMOVE, the tombstone goes with it"
    );
    store.release_hold(&hold).unwrap();
    assert!(store.holds().is_empty());
}

fn stamp(hlc: u64, region: &str) -> Stamp {
    Stamp {
        hlc: HlcTimestamp(hlc),
        region: region.into(),
    }
}

fn remote(k: &str, v: Option<&str>, stamp: Stamp) -> RemoteChange {
    RemoteChange {
        table_name: "tbl".into(),
        keys: key(k),
        new_image: v.map(|v| item(k, v)),
        stamp,
    }
}

#[test]
fn a_replicated_stamp_at_the_top_of_the_clock_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = open_with(dir.path(), clock.clone());
    create(&store, "tbl");
    let first = put(&store, "tbl", item("a", "local")).unwrap();

    // No reading exists after u64::MAX: applying it would leave the clock nothing to tick to.
    let refused =
        store
            .replication
            .apply_remote(remote("a", Some("remote"), stamp(u64::MAX, "eu-west-1")));
    assert!(
        matches!(&refused, Err(tidemark_core::Error::Internal(m)) if m.contains("top of its range")),
        "{refused:?}"
    );
    assert_eq!(get(&store, "tbl", "a"), Some(item("a", "local")));

    // The clock did not observe it: local writes go on with ordinary readings.
    let next = put(&store, "tbl", item("a", "again")).unwrap();
    let record = &store.store.read_changes(next, 1).unwrap()[0];
    assert_eq!(record.stamp.hlc.physical_millis(), 1_700_000_000_000);
    assert_eq!(next, first.next(), "the refused write took no sequence");

    // A wall clock past what a stamp can hold refuses local writes instead of wrapping.
    clock.set(tidemark_core::stamp::MAX_PHYSICAL_MILLIS + 1);
    let wrapped = store.store.put_item(PutItemRequest {
        table_name: "tbl".into(),
        item: item("a", "future"),
        ..Default::default()
    });
    assert!(
        matches!(&wrapped, Err(tidemark_core::Error::Internal(m)) if m.contains("wall clock")),
        "{wrapped:?}"
    );
    assert_eq!(get(&store, "tbl", "a"), Some(item("a", "again")));
}

#[test]
fn a_raised_write_fence_pauses_this_nodes_writes_but_not_replicated_ones_or_reads() {
    let dir = tempfile::tempdir().unwrap();
    let now = 1_700_000_000_000u64;
    let store = open_with(dir.path(), Arc::new(ManualClock::new(now)));
    create(&store, "tbl");
    put(&store, "tbl", item("a", "before"));
    store
        .ttl
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: "tbl".into(),
            enabled: true,
            attribute_name: "exp".into(),
        })
        .unwrap();
    put(
        &store,
        "tbl",
        ttl_item("due", number((now / 1000) as i64 - 1)),
    );

    store.store.write_fence().raise("the clock is off");
    let refused = store.store.put_item(PutItemRequest {
        table_name: "tbl".into(),
        item: item("a", "during"),
        ..Default::default()
    });
    assert!(
        matches!(&refused, Err(tidemark_core::Error::WritesPaused(m)) if m == "the clock is off"),
        "{refused:?}"
    );
    assert!(matches!(
        store.ttl.expire_due_items(1000),
        Err(tidemark_core::Error::WritesPaused(_))
    ));
    assert!(get(&store, "tbl", "due").is_some(), "expiry waits too");
    store
        .replication
        .apply_remote(remote(
            "b",
            Some("replicated"),
            stamp(now << 16, "eu-west-1"),
        ))
        .unwrap();
    assert_eq!(get(&store, "tbl", "b"), Some(item("b", "replicated")));
    assert_eq!(get(&store, "tbl", "a"), Some(item("a", "before")));

    store.store.write_fence().lower();
    put(&store, "tbl", item("a", "after"));
    assert_eq!(get(&store, "tbl", "a"), Some(item("a", "after")));
    assert_eq!(store.ttl.expire_due_items(1000).unwrap().expired, 1);
}

#[test]
fn replicated_writes_win_by_stamp_and_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = open_with(dir.path(), clock.clone());
    create(&store, "tbl");
    let local = put(&store, "tbl", item("a", "local")).unwrap();
    let local_stamp = store.store.read_changes(local, 1).unwrap()[0].stamp.clone();

    let older = stamp(local_stamp.hlc.0 - 1, "eu-west-1");
    assert_eq!(
        store
            .replication
            .apply_remote(remote("a", Some("old"), older))
            .unwrap(),
        None
    );
    assert_eq!(get(&store, "tbl", "a"), Some(item("a", "local")));

    let newer = stamp(local_stamp.hlc.0 + 5, "eu-west-1");
    let applied = store
        .replication
        .apply_remote(remote("a", Some("remote"), newer.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(get(&store, "tbl", "a"), Some(item("a", "remote")));
    let record = &store.store.read_changes(applied, 1).unwrap()[0];
    assert_eq!(record.cause, CauseKind::Replica);
    assert_eq!(record.stamp, newer, "the stamp it came with");
    assert_eq!(record.origin_region(), "eu-west-1");
    assert!(
        record.commit_clock > newer.hlc,
        "the local clock observed it"
    );
    assert_eq!(
        store
            .replication
            .apply_remote(remote("a", Some("remote"), newer.clone()))
            .unwrap(),
        None,
        "the same write seen twice applies once"
    );

    // A replicated delete of an item never seen here still leaves its stamp behind, so an
    // older write arriving later cannot bring the item back.
    let delete = stamp(local_stamp.hlc.0 + 10, "ap-south-1");
    let removed = store
        .replication
        .apply_remote(remote("b", None, delete.clone()))
        .unwrap()
        .unwrap();
    assert!(
        store.store.read_changes(removed, 1).unwrap().is_empty(),
        "nothing anyone could see changed, so no reader gets a record"
    );
    let before_delete = stamp(local_stamp.hlc.0 + 9, "us-west-2");
    assert_eq!(
        store
            .replication
            .apply_remote(remote("b", Some("late"), before_delete))
            .unwrap(),
        None
    );
    assert_eq!(get(&store, "tbl", "b"), None);

    let local_after = put(&store, "tbl", item("a", "mine")).unwrap();
    let record = &store.store.read_changes(local_after, 1).unwrap()[0];
    assert_eq!(record.cause, CauseKind::Request);
    assert!(
        record.stamp > delete,
        "a later local write wins over what it observed"
    );
}

#[test]
fn the_clock_restarts_past_every_stamp_even_after_older_remote_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = open_with(dir.path(), clock.clone());
    create(&store, "tbl");
    let mut local_stamps = Vec::new();
    for i in 0..5 {
        let seq = put(&store, "tbl", item(&format!("l{i}"), "v")).unwrap();
        local_stamps.push(store.store.read_changes(seq, 1).unwrap()[0].stamp.clone());
    }
    // The newest records come from a region whose clock is an hour behind.
    let behind = (1_700_000_000_000 - 3_600_000) << 16;
    for i in 0..3 {
        let applied = store.replication.apply_remote(remote(
            &format!("r{i}"),
            Some("v"),
            stamp(behind + i, "eu-west-1"),
        ));
        assert!(applied.unwrap().is_some());
    }
    drop(store);
    // ... and this node's wall clock went back too.
    clock.set(1_700_000_000_000 - 60_000);
    let store = open_with(dir.path(), clock.clone());
    let causes: Vec<CauseKind> = store
        .store
        .read_changes(ChangeSeq::FIRST, 100)
        .unwrap()
        .iter()
        .map(|r| r.cause)
        .collect();
    assert_eq!(
        causes,
        [[CauseKind::Request; 5].as_slice(), &[CauseKind::Replica; 3]].concat(),
        "causes survive a restart"
    );
    let seq = put(&store, "tbl", item("l-after", "v")).unwrap();
    let after = store.store.read_changes(seq, 1).unwrap()[0].stamp.clone();
    for earlier in &local_stamps {
        assert!(after > *earlier, "{after} must be past {earlier}");
    }
}

#[test]
fn the_last_change_at_or_before_a_time_is_found_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = open_with(dir.path(), clock.clone());
    assert_eq!(
        store.store.last_change_at_or_before(u64::MAX).unwrap(),
        None,
        "empty log"
    );
    create(&store, "tbl");
    let mut seqs = Vec::new();
    for i in 0..20 {
        seqs.push(put(&store, "tbl", item(&format!("k{i}"), "v")).unwrap());
        clock.advance(1000);
    }
    let start = 1_700_000_000_000;
    assert_eq!(
        store.store.last_change_at_or_before(start - 1).unwrap(),
        None
    );
    assert_eq!(
        store.store.last_change_at_or_before(start).unwrap(),
        Some(seqs[0])
    );
    assert_eq!(
        store.store.last_change_at_or_before(start + 999).unwrap(),
        Some(seqs[0])
    );
    assert_eq!(
        store.store.last_change_at_or_before(start + 7_500).unwrap(),
        Some(seqs[7])
    );
    assert_eq!(
        store.store.last_change_at_or_before(u64::MAX).unwrap(),
        Some(seqs[19])
    );
    // The wall clock going back does not make the log's time go back.
    clock.set(start);
    let late = put(&store, "tbl", item("late", "v")).unwrap();
    assert_eq!(
        store.store.last_change_at_or_before(start + 7_500).unwrap(),
        Some(seqs[7])
    );
    assert_eq!(
        store.store.last_change_at_or_before(u64::MAX).unwrap(),
        Some(late)
    );
}

fn scan_count(store: &Engine, table: &str) -> usize {
    store
        .store
        .scan(tidemark_core::ops::ScanRequest {
            table_name: table.into(),
            ..Default::default()
        })
        .unwrap()
        .count
}

#[test]
fn a_backup_survives_reopen_and_restores_its_items() {
    let dir = tempfile::tempdir().unwrap();
    let arn = {
        let store = open(dir.path(), Durability::Sync);
        create(&store, "tbl");
        for i in 0..20 {
            put(&store, "tbl", item(&format!("k{i}"), "x"));
        }
        let backup = store.backups.create_backup("tbl", "first").unwrap();
        assert_eq!(store.backups.run_pending_jobs().unwrap(), 1);
        backup.arn
    };
    let store = open(dir.path(), Durability::Sync);
    store
        .backups
        .restore_table_from_backup(&arn, "copy", Default::default())
        .unwrap();
    assert_eq!(store.backups.run_pending_jobs().unwrap(), 1);
    assert_eq!(scan_count(&store, "copy"), 20);
}

#[test]
fn a_restored_table_survives_reopen_with_its_items() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), Durability::Sync);
        create(&store, "tbl");
        store
            .backups
            .update_continuous_backups("tbl", true, None)
            .unwrap();
        for i in 0..30 {
            put(&store, "tbl", item(&format!("k{i}"), "x"));
        }
        store
            .backups
            .restore_table_to_point_in_time(
                "tbl",
                "copy",
                tidemark_core::restore::RestorePoint::Latest,
                Default::default(),
            )
            .unwrap();
        assert_eq!(store.backups.run_pending_jobs().unwrap(), 1);
        assert_eq!(scan_count(&store, "copy"), 30);
    }
    let store = open(dir.path(), Durability::Sync);
    assert_eq!(scan_count(&store, "copy"), 30);
    put(&store, "copy", item("k1", "changed"));
    assert_eq!(get(&store, "copy", "k1"), Some(item("k1", "changed")));
    assert_eq!(scan_count(&store, "copy"), 30);
}

#[test]
fn the_recovery_window_moves_with_the_clock_and_keeps_only_its_history() {
    const DAY: u64 = 24 * 3600 * 1000;
    let dir = tempfile::tempdir().unwrap();
    let start = 1_700_000_000_000;
    let clock = Arc::new(ManualClock::new(start));
    let mut config = StoreConfig::new(dir.path());
    config.durability = Durability::Buffer;
    config.history_window = Duration::from_secs(3600);
    let store = Engine::open_with_clock(config, clock.clone()).unwrap();
    create(&store, "tbl");
    let window = store
        .backups
        .update_continuous_backups("tbl", true, Some(1))
        .unwrap()
        .unwrap();
    assert_eq!(
        (window.earliest_millis, window.recovery_period_days),
        (start, 1)
    );
    let first = put(&store, "tbl", item("k0", "then")).unwrap();
    clock.set(start + 2 * DAY);
    put(&store, "tbl", item("k1", "now"));
    store.trim_history().unwrap();
    let window = store
        .backups
        .describe_continuous_backups("tbl")
        .unwrap()
        .unwrap();
    assert_eq!(window.earliest_millis, start + DAY);
    assert!(
        store.store.oldest_retained_seq() > first,
        "history older than the recovery period is trimmed"
    );
    let point = |millis| tidemark_core::restore::RestorePoint::At(millis);
    let too_early = store.backups.restore_table_to_point_in_time(
        "tbl",
        "old",
        point(start + 1),
        Default::default(),
    );
    assert!(
        matches!(too_early, Err(tidemark_core::Error::InvalidRestoreTime(_))),
        "{too_early:?}"
    );
    store
        .backups
        .restore_table_to_point_in_time("tbl", "copy", point(start + DAY + 1), Default::default())
        .unwrap();
    store.backups.run_pending_jobs().unwrap();
    assert_eq!(get(&store, "copy", "k0"), Some(item("k0", "then")));
    assert_eq!(get(&store, "copy", "k1"), None);
}

#[test]
fn deleting_a_table_finishes_its_backups_and_a_restore_without_its_source_goes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), Durability::Buffer);
        create(&store, "tbl");
        store
            .backups
            .update_continuous_backups("tbl", true, None)
            .unwrap();
        for i in 0..10 {
            put(&store, "tbl", item(&format!("k{i}"), "x"));
        }
        let backup = store.backups.create_backup("tbl", "pending").unwrap();
        store
            .backups
            .restore_table_to_point_in_time(
                "tbl",
                "copy",
                tidemark_core::restore::RestorePoint::Latest,
                Default::default(),
            )
            .unwrap();
        // Neither job has run when the source goes: the backup is finished on the way out.
        store.tables.delete_table("tbl").unwrap();
        let finished = store.backups.describe_backup(&backup.arn).unwrap();
        assert_eq!(
            finished.status,
            tidemark_core::restore::BackupStatus::Available
        );
        assert_eq!(finished.item_count, 10);
    }
    // The restore could not be built before the source went: after a restart it is dropped,
    // never left half-built.
    let store = open(dir.path(), Durability::Buffer);
    assert!(store.store.describe_table("copy").is_ok());
    store.backups.run_pending_jobs().unwrap();
    assert!(store.store.describe_table("copy").is_err());
    assert!(
        store
            .store
            .holds()
            .iter()
            .all(|h| !matches!(h.name, HoldName::Restore { .. }))
    );
}

#[test]
fn a_restore_undoing_tens_of_thousands_of_changes_read_in_parts_is_exact() {
    // Enough changes after the instant that the restore reads them in parts on several
    // threads: keys first changed in the later part, keys changed in both, keys deleted in
    // the first and written again in the second, and keys born after the instant.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = open_with(dir.path(), clock.clone());
    create(&store, "tbl");
    store
        .backups
        .update_continuous_backups("tbl", true, None)
        .unwrap();
    for i in 0..2_000 {
        put(&store, "tbl", item(&format!("k{i:04}"), "then"));
    }
    let then = 1_700_000_000_000;
    clock.set(then + 1_000);
    let delete = |k: &str| {
        store
            .store
            .delete_item(DeleteItemRequest {
                table_name: "tbl".into(),
                key: key(k),
                ..Default::default()
            })
            .unwrap();
    };
    // The first half of the later changes touches keys 0..1000 only; the second half every
    // key, and keys that did not exist.
    for round in 0..30 {
        for i in 0..1_000 {
            match (round + i) % 7 {
                0 => delete(&format!("k{i:04}")),
                _ => drop(put(
                    &store,
                    "tbl",
                    item(&format!("k{i:04}"), &format!("r{round}")),
                )),
            }
        }
    }
    for round in 0..15 {
        for i in (0..3_000).step_by(2).map(|i| i + round % 2) {
            match (round + i) % 5 {
                0 => delete(&format!("k{i:04}")),
                _ => drop(put(
                    &store,
                    "tbl",
                    item(&format!("k{i:04}"), &format!("s{round}")),
                )),
            }
        }
    }
    store
        .backups
        .restore_table_to_point_in_time(
            "tbl",
            "copy",
            tidemark_core::restore::RestorePoint::At(then),
            Default::default(),
        )
        .unwrap();
    assert_eq!(store.backups.run_pending_jobs().unwrap(), 1);
    let mut restored = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .store
            .scan(tidemark_core::ops::ScanRequest {
                table_name: "copy".into(),
                options: tidemark_core::ops::PageOptions {
                    exclusive_start_key: start,
                    ..Default::default()
                },
                ..Default::default()
            })
            .unwrap();
        restored.extend(page.items);
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    restored.sort_by_key(|i| format!("{:?}", i.get("p")));
    let expected: Vec<Item> = (0..2_000)
        .map(|i| item(&format!("k{i:04}"), "then"))
        .collect();
    assert_eq!(restored.len(), expected.len());
    assert!(
        restored == expected,
        "the restored table differs from the table then"
    );
}

#[test]
fn a_table_is_empty_before_a_change_when_it_held_no_item_then() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffer);
    create(&store, "tbl");
    create(&store, "other");
    store
        .store
        .set_hold(&HoldName::Backup { backup_id: 1 }, None, ChangeSeq::ZERO)
        .unwrap();
    let first = put(&store, "tbl", item("a", "1")).unwrap();
    put(&store, "other", item("x", "1"));
    assert!(store.store.table_empty_before("tbl", first).unwrap());
    assert!(!store.store.table_empty_before("tbl", first.next()).unwrap());
    let deleted = store
        .store
        .delete_item(DeleteItemRequest {
            table_name: "tbl".into(),
            key: key("a"),
            ..Default::default()
        })
        .unwrap()
        .change_seq
        .unwrap();
    assert!(!store.store.table_empty_before("tbl", deleted).unwrap());
    assert!(
        store
            .store
            .table_empty_before("tbl", store.store.next_seq())
            .unwrap()
    );
    assert!(
        !store
            .store
            .table_empty_before("other", store.store.next_seq())
            .unwrap()
    );
}

/// Runs `operation` as the application of a record at `offset` of partition 3 of log `log`,
/// stamped at `hlc` milliseconds by region `r`.
fn applied<T>(
    store: &tidemark_core::Store,
    hlc: u64,
    offset: u64,
    operation: impl FnOnce() -> T,
) -> T {
    let stamp = Stamp {
        hlc: HlcTimestamp(hlc << 16),
        region: "r".into(),
    };
    let position = tidemark_core::changes::LogPosition {
        log: "log".into(),
        partition: 3,
        offset,
    };
    store.applying_logged(stamp, position, operation)
}

fn read_all(store: &Engine, table_id: TableId) -> Vec<tidemark_core::changes::ChangeRecord> {
    store
        .store
        .read_log(
            &mut LogCursor::table(table_id, ChangeSeq::FIRST),
            LogLimits::records(usize::MAX),
        )
        .unwrap()
}

#[test]
fn a_logged_write_commits_its_log_position_and_a_stamp_that_grows_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let table_id;
    {
        let engine = open(dir.path(), Durability::Sync);
        create(&engine, "tab");
        table_id = engine.store.table_definition("tab").unwrap().table_id;
        let store = &engine.store;
        assert_eq!(store.next_log_offset("log", 3).unwrap(), 0);
        applied(store, 2_000_000_000_000, 0, || {
            put(&engine, "tab", item("a", "1"))
        });
        assert_eq!(store.next_log_offset("log", 3).unwrap(), 1);
        assert_eq!(
            store.next_log_offset("log", 2).unwrap(),
            0,
            "one partition moved"
        );
        // A later record from a node whose clock is behind: its stamp moves past the item's.
        applied(store, 1_000_000_000_000, 1, || {
            put(&engine, "tab", item("a", "2"))
        });
        // A record that changes nothing moves nothing (applying it again changes nothing).
        applied(store, 3_000_000_000_000, 2, || {
            put(&engine, "tab", item("a", "2"))
        });
        assert_eq!(store.next_log_offset("log", 3).unwrap(), 2);
        let records = read_all(&engine, table_id);
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.cause == CauseKind::Request));
        assert_eq!(records[0].stamp.hlc, HlcTimestamp(2_000_000_000_000 << 16));
        assert_eq!(
            records[1].stamp.hlc,
            HlcTimestamp((2_000_000_000_000 << 16) + 1),
            "stamps follow the log's order, not the clocks of the nodes that took the writes"
        );
        assert!(
            records[1].commit_clock >= records[1].stamp.hlc,
            "the node's clock observed the carried stamp"
        );
    }
    let engine = open(dir.path(), Durability::Sync);
    assert_eq!(engine.store.next_log_offset("log", 3).unwrap(), 2);
    engine.store.save_log_offset("tables", 0, 7).unwrap();
    assert_eq!(engine.store.next_log_offset("tables", 0).unwrap(), 7);
    assert_eq!(read_all(&engine, table_id).len(), 2);
}

#[test]
fn a_store_that_writes_through_its_log_refuses_writes_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), Durability::Buffer);
    create(&engine, "tab");
    engine.store.require_logged_writes();
    let refused = engine.store.put_item(PutItemRequest {
        table_name: "tab".into(),
        item: item("a", "1"),
        ..Default::default()
    });
    assert!(
        matches!(&refused, Err(tidemark_core::Error::Validation(m)) if m.contains("cluster region")),
        "{refused:?}"
    );
    assert_eq!(get(&engine, "tab", "a"), None);
    applied(&engine.store, 2_000_000_000_000, 0, || {
        put(&engine, "tab", item("a", "1"))
    });
    assert_eq!(get(&engine, "tab", "a"), Some(item("a", "1")));
    assert_eq!(
        applied(&engine.store, 2_000_000_000_000, 1, || engine
            .store
            .now_millis()),
        2_000_000_000_000,
        "what a record's application stamps takes the record's time"
    );
}
