//! Anti-entropy between replicators on real stores, joined by an in-memory transport that
//! calls the other side's receiving functions (messages through JSON, batches through their
//! binary form, as on the wire). The replicas are made to differ by applying cells to one
//! store only, as a lost change or a restored disk would leave them.

use std::collections::BTreeMap;
use std::sync::Arc;

use tempfile::TempDir;
use tidemark_core::model::{AttributeValue, Item};
use tidemark_core::ops::GetItemRequest;
use tidemark_core::replication::RemoteChange;
use tidemark_core::retention::HoldName;
use tidemark_core::{Engine, HlcTimestamp, StoreConfig};

use super::*;
use crate::membership::Replica;
use crate::test_support;

const TABLE: &str = "accounts";

/// A region: its replicator and engine.
struct Region {
    replicator: Arc<Replicator>,
    engine: Engine,
    _dir: TempDir,
}

/// The other region, reached in memory.
struct Link {
    peer: Arc<Replicator>,
}

fn over_json<T: Serialize + serde::de::DeserializeOwned>(message: &T) -> T {
    serde_json::from_slice(&serde_json::to_vec(message).expect("serializes")).expect("parses")
}

impl Link {
    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Replicator) -> Result<T> + Send + 'static,
    ) -> std::result::Result<T, PeerError> {
        let peer = self.peer.clone();
        let region = peer.region().to_string();
        tokio::task::spawn_blocking(move || work(&peer))
            .await
            .expect("no panic")
            .map_err(|e| PeerError::Refused {
                region,
                refusal: crate::protocol::PeerRefusal {
                    error: "ValidationException".into(),
                    message: e.to_string(),
                },
            })
    }
}

impl EntropyTransport for Link {
    fn digest<'a>(&'a self, _: &'a Peer, r: &'a DigestRequest) -> EntropyRequest<'a, DigestAnswer> {
        let r = over_json(r);
        Box::pin(async move { Ok(over_json(&self.call(move |p| p.receive_digest(r)).await?)) })
    }

    fn cells<'a>(&'a self, _: &'a Peer, r: &'a CellsRequest) -> EntropyRequest<'a, CellsAnswer> {
        let r = over_json(r);
        Box::pin(async move {
            Ok(over_json(
                &self.call(move |p| p.receive_cells_request(r)).await?,
            ))
        })
    }

    fn fetch<'a>(&'a self, _: &'a Peer, r: &'a FetchRequest) -> EntropyRequest<'a, ChangeBatch> {
        let r = over_json(r);
        Box::pin(async move { Ok(over_json(&self.call(move |p| p.receive_fetch(r)).await?)) })
    }

    fn repair<'a>(&'a self, _: &'a Peer, b: &'a ChangeBatch) -> EntropyRequest<'a, BatchAnswer> {
        let batch = ChangeBatch::decode(&b.encode()).expect("decodes");
        let from = self.peer.config().peers[0].region.clone();
        Box::pin(self.call(move |p| p.receive_repair(&from, batch)))
    }
}

fn region(name: &str, other: &str) -> Region {
    let dir = tempfile::tempdir().expect("a folder");
    let mut config = StoreConfig::for_tests(dir.path());
    // History goes as soon as no hold keeps it, so a test can trim tombstones.
    config.history_window = std::time::Duration::ZERO;
    let engine = Engine::open(config).expect("open");
    let peer = format!("{other}=http://127.0.0.1:9");
    let replicator = test_support::replicator(&engine, name, &[&peer]);
    let replicas = [(name, Replica::active()), (other, Replica::active())];
    test_support::make_global(&engine, &replicator, TABLE, &replicas, 1);
    Region {
        replicator,
        engine,
        _dir: dir,
    }
}

/// `us` and `eu`, each having heard from the other that everything up to `delivered` is
/// there (as the shippers' heartbeats say).
fn pair(delivered: u64) -> (Region, Region) {
    let (us, eu) = (region("us", "eu"), region("eu", "us"));
    for (r, other) in [(&us, "eu"), (&eu, "us")] {
        r.replicator
            .inbound
            .lock()
            .insert((TABLE.to_string(), other.to_string()), delivered);
    }
    (us, eu)
}

fn keys(k: &str) -> Item {
    [("p".to_string(), AttributeValue::S(k.into()))].into()
}

fn cell(k: &str, value: Option<&str>, hlc: u64, region: &str) -> RemoteChange {
    RemoteChange {
        table_name: TABLE.into(),
        keys: keys(k),
        new_image: value.map(|v| {
            let mut item = keys(k);
            item.insert("v".into(), AttributeValue::S(v.into()));
            item
        }),
        stamp: Stamp {
            hlc: HlcTimestamp(hlc),
            region: region.into(),
        },
    }
}

/// Writes cells into one region only (what replication should have brought, and did not).
fn write_only_in(r: &Region, cells: Vec<RemoteChange>) {
    r.engine
        .replication
        .apply_remote_batch(cells)
        .expect("applied");
}

fn value_in(r: &Region, k: &str) -> Option<String> {
    let item = r
        .engine
        .store
        .get_item(GetItemRequest {
            table_name: TABLE.into(),
            key: keys(k),
            consistent_read: true,
            ..Default::default()
        })
        .expect("a read")
        .item?;
    match item.get("v") {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => Some(String::new()),
    }
}

fn stamp_in(r: &Region, k: &str) -> Option<Stamp> {
    let snapshot = r.engine.replication.snapshot_table(TABLE).expect("a table");
    let page = r
        .engine
        .replication
        .snapshot_page(&snapshot, None, 10_000, usize::MAX)
        .expect("a page");
    page.changes
        .into_iter()
        .find(|c| c.keys == keys(k))
        .map(|c| c.stamp)
}

async fn verify(from: &Region, to: &Region) -> PeerVerification {
    let link = Link {
        peer: to.replicator.clone(),
    };
    let mut report = from
        .replicator
        .verify_table_with(&link, TABLE)
        .await
        .expect("verified");
    assert_eq!(report.regions.len(), 1);
    report.regions.remove(0)
}

/// Every region has what replication brought it: the same cells in both.
fn replicated(us: &Region, eu: &Region, cells: Vec<RemoteChange>) {
    write_only_in(us, cells.clone());
    write_only_in(eu, cells);
}

#[tokio::test]
async fn replicas_that_agree_differ_in_no_bucket() {
    let (us, eu) = pair(1_000);
    replicated(
        &us,
        &eu,
        (0..500)
            .map(|i| cell(&format!("k{i}"), (i % 7 != 0).then_some("v"), 10 + i, "us"))
            .collect(),
    );
    let report = verify(&us, &eu).await;
    assert_eq!(report.error, None);
    assert_eq!(report.cells_compared, 500);
    assert_eq!(report.peer_cells_compared, 500);
    assert_eq!(report.buckets_differing, 0);
    assert_eq!(report.cells_differing, 0);
    assert_eq!(report.repaired_here + report.repaired_there, 0);
    assert_eq!(report.buckets, 16, "the fewest buckets, for a small table");
    assert!(
        report.bytes_exchanged > 0 && report.bytes_exchanged < 1_000,
        "a digest of 16 buckets and its request: {} bytes",
        report.bytes_exchanged
    );
}

#[tokio::test]
async fn lost_and_stale_cells_are_found_and_the_newer_cell_wins_on_both_sides() {
    let (us, eu) = pair(1_000);
    replicated(
        &us,
        &eu,
        (0..300)
            .map(|i| cell(&format!("k{i}"), Some("same"), 10 + i, "us"))
            .collect(),
    );
    // A change eu never applied; a delete us never applied; an item each side has a
    // different version of, the newer one in eu (so us's older one must not win there).
    write_only_in(&us, vec![cell("lost", Some("from-us"), 400, "us")]);
    write_only_in(&eu, vec![cell("k1", None, 410, "eu")]);
    write_only_in(&us, vec![cell("k2", Some("older"), 420, "us")]);
    write_only_in(&eu, vec![cell("k2", Some("newer"), 430, "eu")]);

    let report = verify(&us, &eu).await;

    assert_eq!(report.error, None);
    assert!(report.buckets_differing >= 1 && report.buckets_differing <= 3);
    assert_eq!(report.cells_differing, 3, "{report:?}");
    assert_eq!(report.repaired_there, 1, "the lost item went to eu");
    assert_eq!(
        report.repaired_here, 2,
        "eu's delete and newer version came here"
    );
    assert_eq!(report.unresolved, 0);
    assert_eq!(report.repaired_keys.len(), 3);
    for r in [&us, &eu] {
        assert_eq!(value_in(r, "lost").as_deref(), Some("from-us"));
        assert_eq!(value_in(r, "k1"), None, "deleted everywhere");
        assert_eq!(
            value_in(r, "k2").as_deref(),
            Some("newer"),
            "never the older one"
        );
        assert_eq!(
            stamp_in(r, "k2").map(|s| s.hlc.0),
            Some(430),
            "the winner keeps its stamp"
        );
    }
    let again = verify(&eu, &us).await;
    assert_eq!(again.buckets_differing, 0, "repaired: nothing differs now");
}

#[tokio::test]
async fn scattered_differences_are_narrowed_down_before_cells_are_listed() {
    let (us, eu) = pair(100_000);
    // 64 buckets of about 160 cells each, and 40 lost changes scattered over them.
    replicated(
        &us,
        &eu,
        (0..10_000)
            .map(|i| cell(&format!("k{i}"), Some("same"), 10 + i, "us"))
            .collect(),
    );
    write_only_in(
        &us,
        (0..40)
            .map(|i| cell(&format!("k{}", i * 251), Some("lost"), 20_000 + i, "us"))
            .collect(),
    );

    let report = verify(&us, &eu).await;

    assert_eq!(report.error, None);
    assert!(report.buckets_differing > 8, "{report:?}");
    assert!(
        report.buckets_listed <= 40,
        "only the narrowed buckets holding a difference are listed: {report:?}"
    );
    assert_eq!(report.cells_differing, 40);
    assert_eq!(report.repaired_there, 40);
    // Listing the differing buckets whole would have moved every cell of theirs, each about
    // 60 bytes as JSON.
    let whole = report.buckets_differing * (report.cells_compared / report.buckets) * 60;
    assert!(
        report.bytes_exchanged < whole / 4,
        "{} bytes, against about {whole} for the whole buckets",
        report.bytes_exchanged
    );
    for i in 0..40 {
        assert_eq!(
            value_in(&eu, &format!("k{}", i * 251)).as_deref(),
            Some("lost")
        );
    }
    assert_eq!(verify(&eu, &us).await.buckets_differing, 0);
}

#[test]
fn a_narrowed_digest_places_each_child_under_its_parent() {
    let narrowed = Within {
        buckets_log2: 4,
        buckets: vec![9, 2],
    };
    narrowed.check(8).expect("a valid narrowing");
    let lookup = [(9, 0), (2, 1)].into_iter().collect();
    assert_eq!(narrowed.slot(&lookup, (9 << 4) | 5, 8), Some(5));
    assert_eq!(narrowed.slot(&lookup, (2 << 4) | 15, 8), Some(31));
    assert_eq!(narrowed.slot(&lookup, 3 << 4, 8), None, "not narrowed");
    assert_eq!(narrowed.bucket_at(5, 8), Some((9 << 4) | 5));
    assert_eq!(narrowed.bucket_at(31, 8), Some((2 << 4) | 15));
    assert_eq!(narrowed.bucket_at(32, 8), None);
    for key in [b"a".as_slice(), b"k17", b"zzz"] {
        assert_eq!(
            bucket_of(key, 8) >> 4,
            bucket_of(key, 4),
            "a child keeps its parent's bits"
        );
    }
    assert!(narrowed.check(4).is_err(), "not finer");
    assert!(narrowed.check(9).is_err(), "more than 16 children each");
    let outside = Within {
        buckets_log2: 4,
        buckets: vec![16],
    };
    assert!(outside.check(8).is_err(), "no bucket 16 of 2^4");
}

#[tokio::test]
async fn cells_past_what_every_region_delivered_are_not_compared() {
    let (us, eu) = pair(1_000);
    replicated(&us, &eu, vec![cell("a", Some("1"), 10, "us")]);
    // Stamped after the cut-off: replication may still bring it, so it is no difference.
    write_only_in(&us, vec![cell("fresh", Some("1"), 2_000, "us")]);
    write_only_in(&us, vec![cell("a", Some("2"), 2_001, "us")]);

    let report = verify(&us, &eu).await;

    assert_eq!(report.error, None);
    assert_eq!(report.cells_differing, 0, "{report:?}");
    assert_eq!(value_in(&eu, "fresh"), None, "left to replication");
    assert_eq!(value_in(&eu, "a").as_deref(), Some("1"));
}

#[tokio::test]
async fn an_idle_region_does_not_hold_back_the_comparison_of_the_others_cells() {
    let (us, eu) = pair(1_000);
    // us has been idle since clock 100: that is what it said it delivered to eu.
    eu.replicator
        .inbound
        .lock()
        .insert((TABLE.to_string(), "us".to_string()), 100);
    write_only_in(&eu, vec![cell("eu-made", Some("1"), 500, "eu")]);

    let report = verify(&us, &eu).await;

    assert_eq!(report.error, None);
    assert_eq!(report.repaired_here, 1, "{report:?}");
    assert_eq!(value_in(&us, "eu-made").as_deref(), Some("1"));
}

#[tokio::test]
async fn the_background_comparison_repairs_without_being_asked() {
    let (us, eu) = pair(1_000);
    write_only_in(&us, vec![cell("lost", Some("1"), 10, "us")]);
    let shutdown = CancellationToken::new();
    let config = AntiEntropyConfig {
        interval: std::time::Duration::from_millis(20),
        cells_per_second: 1_000_000,
    };
    // Of the pair, the region whose name sorts first ("eu") starts the comparisons.
    let link = Link {
        peer: us.replicator.clone(),
    };
    let running = tokio::spawn({
        let (eu, token) = (eu.replicator.clone(), shutdown.clone());
        async move { eu.run_anti_entropy_with(&link, config, token).await }
    });
    let mut repaired = false;
    for _ in 0..200 {
        if value_in(&eu, "lost").is_some() {
            repaired = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    running.await.expect("no panic").expect("no store failure");
    assert!(repaired, "the background comparison repaired eu within 2 s");
}

#[tokio::test]
async fn nothing_is_compared_before_every_region_said_what_it_delivered() {
    let (us, eu) = (region("us", "eu"), region("eu", "us"));
    let link = Link {
        peer: eu.replicator.clone(),
    };
    let report = us
        .replicator
        .verify_table_with(&link, TABLE)
        .await
        .expect("a report");
    let error = report.regions[0].error.clone().expect("refused");
    assert!(error.contains("has not said what it delivered"), "{error}");
    assert!(matches!(
        us.replicator.verify_table_with(&link, "missing").await,
        Err(Error::Validation(m)) if m.contains("is not a global table")
    ));
}

/// Bounds comparing every cell made in `us` up to `cutoff`.
fn up_to(cutoff: u64) -> Bounds {
    Bounds {
        cutoffs: BTreeMap::from([("us".to_string(), cutoff)]),
        floor: 0,
    }
}

#[test]
fn each_regions_cells_are_compared_up_to_what_it_delivered() {
    let cell = |k: &str, hlc: u64, region: &str| CellStamp {
        key: k.as_bytes().to_vec(),
        stamp: Stamp {
            hlc: HlcTimestamp(hlc),
            region: region.into(),
        },
        live: true,
    };
    // us delivered up to 100 to eu, eu up to 500 to us; ap up to 300 to us and 200 to eu.
    let ours = Bounds {
        cutoffs: BTreeMap::from([
            ("us".to_string(), u64::MAX),
            ("eu".to_string(), 500),
            ("ap".to_string(), 300),
        ]),
        floor: 7,
    };
    let theirs = Bounds {
        cutoffs: BTreeMap::from([
            ("eu".to_string(), u64::MAX),
            ("us".to_string(), 100),
            ("ap".to_string(), 200),
        ]),
        floor: 3,
    };
    let both = ours.narrowed(&theirs);
    assert_eq!(both, theirs.narrowed(&ours), "the same bounds either way");
    assert_eq!(
        both.cutoffs,
        BTreeMap::from([
            ("us".to_string(), 100),
            ("eu".to_string(), 500),
            ("ap".to_string(), 200)
        ])
    );
    assert_eq!(both.floor, 7);
    assert_eq!(
        both.cutoff_of("gone"),
        100,
        "a region that left: the lowest"
    );
    // eu's cell at 400 is compared although us (idle) delivered only up to 100.
    let plan = Plan::of(
        Vec::new(),
        vec![
            cell("eu-made", 400, "eu"),
            cell("us-made", 150, "us"),
            cell("ap-made", 250, "ap"),
        ],
        &both,
        0,
        0,
    );
    assert_eq!(plan.fetch, vec![b"eu-made".to_vec()]);
}

#[test]
fn an_item_live_on_one_side_only_before_the_others_trim_horizon_is_never_shipped() {
    let cell = |k: &str, hlc: u64, live: bool| CellStamp {
        key: k.as_bytes().to_vec(),
        stamp: Stamp {
            hlc: HlcTimestamp(hlc),
            region: "us".into(),
        },
        live,
    };
    // The peer trimmed tombstones older than 100: "old" may be an item deleted there.
    let plan = Plan::of(
        vec![
            cell("old", 50, true),
            cell("recent", 150, true),
            cell("gone", 50, false),
        ],
        Vec::new(),
        &up_to(1_000),
        0,
        100,
    );
    assert_eq!(plan.unresolved, vec![(b"old".to_vec(), true)]);
    assert_eq!(plan.send, vec![b"recent".to_vec()]);
    assert!(
        plan.fetch.is_empty(),
        "a trimmed tombstone is no difference"
    );

    // The same the other way round, with a tombstone newer than the horizon, which is sent.
    let plan = Plan::of(
        Vec::new(),
        vec![cell("old", 50, true), cell("deleted", 150, false)],
        &up_to(1_000),
        100,
        0,
    );
    assert_eq!(plan.unresolved, vec![(b"old".to_vec(), false)]);
    assert_eq!(plan.fetch, vec![b"deleted".to_vec()]);
}

#[tokio::test]
async fn an_item_whose_delete_may_have_been_trimmed_is_reported_and_left_alone() {
    let (us, eu) = pair(u64::MAX >> 1);
    replicated(&us, &eu, vec![cell("deleted", Some("1"), 10, "us")]);
    // eu deletes it; the delete never reaches us; then eu trims its history, tombstone and
    // all (every region having passed it, as far as eu knows).
    write_only_in(&eu, vec![cell("deleted", None, 20, "eu")]);
    replicated(&us, &eu, vec![cell("later", Some("1"), 30, "eu")]);
    let table_id = eu.engine.store.table_id(TABLE).expect("a table");
    for hold in [
        HoldName::Inbound { table_id },
        HoldName::Peer {
            region: "us".into(),
            table_id,
        },
    ] {
        eu.engine.store.release_hold(&hold).expect("released");
    }
    assert!(eu.engine.store.holds().is_empty());
    // Past the millisecond of the last commit, which the trimmer keeps.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let trimmed = eu.engine.store.trim_history().expect("trimmed");
    assert_eq!(trimmed.tombstones, 1, "eu's tombstone is gone");

    let report = verify(&us, &eu).await;

    assert_eq!(report.error, None);
    assert_eq!(report.unresolved, 1, "{report:?}");
    assert_eq!(report.repaired_here + report.repaired_there, 0);
    assert_eq!(
        report.unresolved_keys,
        [UnresolvedKey {
            keys: keys("deleted"),
            live_in: "us".into(),
        }]
    );
    assert_eq!(
        value_in(&eu, "deleted"),
        None,
        "the deleted item is not brought back"
    );
    assert_eq!(
        value_in(&us, "deleted").as_deref(),
        Some("1"),
        "nor removed"
    );
}

#[test]
fn bucket_counts_follow_the_table_size_within_limits() {
    assert_eq!(buckets_log2_for(0), MIN_BUCKETS_LOG2);
    assert_eq!(
        buckets_log2_for(1_000_000),
        12,
        "4,096 buckets of ~244 cells"
    );
    assert_eq!(buckets_log2_for(u64::MAX), MAX_BUCKETS_LOG2);
}

#[test]
fn a_paced_scan_waits_until_it_is_within_its_rate() {
    let started = Instant::now();
    Pace::new(0).after(1_000_000);
    assert!(started.elapsed() < Duration::from_millis(50), "no limit");
    let pace = Pace::new(1_000);
    pace.after(100);
    assert!(
        started.elapsed() >= Duration::from_millis(95),
        "100 cells at 1,000 a second take 100 ms"
    );
}
