//! The control plane against an in-memory network of replicators, each on its own store:
//! requests go through [`ControlTransport`] to the other replicator's receiving side (as the
//! peer endpoints call it, messages encoded and decoded as they travel), and a region that
//! is not in the network, or is in an outage, is unreachable.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tempfile::TempDir;
use tidemark_core::model::{AttributeValue, Item};
use tidemark_core::ops::{
    CreateTableRequest, DeleteItemRequest, PutItemRequest, ScanRequest, UpdateTimeToLiveRequest,
};
use tidemark_core::retention::HoldName;
use tidemark_core::{Engine, Store, StoreConfig};

use super::transport::{ControlTransport, PeerRequest};
use super::*;
use crate::antientropy::{
    CellsAnswer, CellsRequest, DigestAnswer, DigestRequest, EntropyRequest, EntropyTransport,
    FetchRequest,
};
use crate::client::{PeerClient, PeerError};
use crate::membership::VERSION;
use crate::peers::{Peer, PeerHoldLimit, ReplicationConfig, Transport};
use crate::protocol::{BatchAnswer, PeerRefusal};
use crate::test_support;

const TABLE: &str = "orders";
/// Every region of the tests' group; each node has the others as peers.
const REGIONS: [&str; 3] = ["us", "eu", "ap"];

/// What a request asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Asked {
    CreateReplica,
    Membership,
    SeedPage,
    /// A comparison's or re-seed's request.
    Entropy,
}

/// The regions reachable in memory, the requests made, and outages.
#[derive(Debug, Default)]
struct Network {
    nodes: Mutex<BTreeMap<String, Weak<Replicator>>>,
    /// Every request, in order: `(to, what)`.
    requests: Mutex<Vec<(String, Asked)>>,
    /// Per region and request kind, how many more such requests fail as unreachable.
    outages: Mutex<BTreeMap<(String, Asked), usize>>,
    /// Pairs of regions cut apart (a partition between them, both ways), the lower first.
    cut: Mutex<std::collections::BTreeSet<(String, String)>>,
}

/// One region of the network: its replicator and store.
struct Region {
    replicator: Arc<Replicator>,
    store: Arc<Store>,
    engine: Engine,
    _dir: TempDir,
}

impl Network {
    fn new() -> Arc<Network> {
        Arc::new(Network::default())
    }

    /// A node for `region`, reachable from the others.
    fn join(self: &Arc<Self>, region: &str) -> Region {
        self.join_with_limit(region, PeerHoldLimit::DEFAULT.0)
    }

    /// A node for `region` that lets go of what it holds for a peer that does not answer
    /// once the oldest of it is older than `hold_limit`; its history goes as soon as no hold
    /// keeps it, so a test can trim tombstones.
    fn join_with_limit(self: &Arc<Self>, region: &str, hold_limit: Duration) -> Region {
        self.join_with(region, hold_limit, Transport::Direct)
    }

    /// A node for `region` as [`Network::join_with_limit`] makes it, whose changes travel
    /// by `transport` (nothing is shipped or read here: only the control plane runs).
    fn join_with(
        self: &Arc<Self>,
        region: &str,
        hold_limit: Duration,
        transport: Transport,
    ) -> Region {
        let dir = tempfile::tempdir().expect("a folder");
        let mut store_config = StoreConfig::for_tests(dir.path());
        // Its own writes are stamped by its region, as on a node.
        store_config.region = region.into();
        if hold_limit != PeerHoldLimit::DEFAULT.0 {
            store_config.history_window = Duration::ZERO;
        }
        let engine = Engine::open(store_config).expect("open");
        let store = engine.store.clone();
        let config = ReplicationConfig {
            region: region.into(),
            peers: REGIONS
                .iter()
                .filter(|r| **r != region)
                // Never dialled: the control plane goes through the network.
                .map(|r| Peer::parse(&format!("{r}=http://127.0.0.1:9")).expect("a peer"))
                .collect(),
            transport,
            peer_hold_limit: PeerHoldLimit(hold_limit),
            ..ReplicationConfig::default()
        };
        let link = Arc::new(Link {
            from: region.into(),
            network: self.clone(),
        });
        let client = PeerClient::new(&config, engine.store.clock().clone());
        let replicator = Replicator::with_control(&engine, config, client, link);
        self.nodes
            .lock()
            .insert(region.into(), Arc::downgrade(&replicator));
        Region {
            replicator,
            store,
            engine,
            _dir: dir,
        }
    }

    /// `region`'s next `count` requests of kind `asked` fail as unreachable.
    fn fail_next(&self, region: &str, asked: Asked, count: usize) {
        self.outages.lock().insert((region.into(), asked), count);
    }

    /// `region` leaves the network (unreachable) or comes back.
    fn set_reachable(&self, region: &Region, reachable: bool) {
        let name = region.replicator.region().to_string();
        match reachable {
            true => self
                .nodes
                .lock()
                .insert(name, Arc::downgrade(&region.replicator)),
            false => self.nodes.lock().remove(&name),
        };
    }

    /// Cuts `a` and `b` apart (both ways), or heals the cut; each still reaches the others.
    fn set_cut(&self, a: &str, b: &str, cut: bool) {
        let pair = match a < b {
            true => (a.to_string(), b.to_string()),
            false => (b.to_string(), a.to_string()),
        };
        match cut {
            true => self.cut.lock().insert(pair),
            false => self.cut.lock().remove(&pair),
        };
    }

    /// What was asked of `region`, in order.
    fn asked_of(&self, region: &str) -> Vec<Asked> {
        self.requests
            .lock()
            .iter()
            .filter(|(to, _)| to == region)
            .map(|(_, asked)| *asked)
            .collect()
    }

    /// The replicator answering `from`'s request to `region`, unless it is unreachable now.
    fn route(&self, from: &str, region: &str, asked: Asked) -> Option<Arc<Replicator>> {
        self.requests.lock().push((region.into(), asked));
        let (low, high) = match from < region {
            true => (from, region),
            false => (region, from),
        };
        if self
            .cut
            .lock()
            .contains(&(low.to_string(), high.to_string()))
        {
            return None;
        }
        if let Some(left) = self.outages.lock().get_mut(&(region.into(), asked))
            && *left > 0
        {
            *left -= 1;
            return None;
        }
        self.nodes.lock().get(region).and_then(Weak::upgrade)
    }
}

/// One node's way into the network.
#[derive(Debug)]
struct Link {
    from: String,
    network: Arc<Network>,
}

impl Link {
    /// Runs `work` on `peer`'s replicator off the reactor, as its peer endpoints do; its
    /// error comes back as the peer's refusal.
    async fn call<T: Send + 'static>(
        &self,
        peer: &Peer,
        asked: Asked,
        work: impl FnOnce(&Replicator) -> Result<T> + Send + 'static,
    ) -> Result<T, PeerError> {
        let region = peer.region.clone();
        let Some(node) = self.network.route(&self.from, &region, asked) else {
            return Err(PeerError::Unreachable {
                region,
                message: "not in the test network".into(),
            });
        };
        let outcome = tokio::task::spawn_blocking(move || work(&node))
            .await
            .expect("the peer's work does not panic");
        outcome.map_err(|e| PeerError::Refused {
            region,
            refusal: PeerRefusal {
                error: match e {
                    Error::Validation(_) => "ValidationException",
                    Error::InUse(_) => "ResourceInUseException",
                    _ => "InternalServerError",
                }
                .into(),
                message: e.to_string(),
            },
        })
    }
}

/// A JSON message as the receiving peer reads it.
fn over_json<T: serde::Serialize + serde::de::DeserializeOwned>(message: &T) -> T {
    let json = serde_json::to_vec(message).expect("serializes");
    serde_json::from_slice(&json).expect("parses")
}

impl ControlTransport for Link {
    fn create_replica<'a>(
        &'a self,
        peer: &'a Peer,
        message: &'a CreateReplicaMessage,
    ) -> PeerRequest<'a, ()> {
        let message = over_json(message);
        Box::pin(self.call(peer, Asked::CreateReplica, move |node| {
            node.receive_create_replica(message)
        }))
    }

    fn send_membership<'a>(
        &'a self,
        peer: &'a Peer,
        message: &'a MembershipMessage,
    ) -> PeerRequest<'a, MembershipAnswer> {
        let message = over_json(message);
        Box::pin(self.call(peer, Asked::Membership, move |node| {
            node.receive_membership(&message.table, message.global)
        }))
    }

    fn send_seed_page<'a>(&'a self, peer: &'a Peer, batch: &'a ChangeBatch) -> PeerRequest<'a, ()> {
        let batch = ChangeBatch::decode(&batch.encode()).expect("a batch decodes");
        let from = self.from.clone();
        Box::pin(self.call(peer, Asked::SeedPage, move |node| {
            node.receive_seed_page(&from, batch).map(|_| ())
        }))
    }

    fn entropy(&self) -> &dyn EntropyTransport {
        self
    }
}

impl EntropyTransport for Link {
    fn digest<'a>(
        &'a self,
        peer: &'a Peer,
        r: &'a DigestRequest,
    ) -> EntropyRequest<'a, DigestAnswer> {
        let r = over_json(r);
        Box::pin(self.call(peer, Asked::Entropy, move |node| node.receive_digest(r)))
    }

    fn cells<'a>(&'a self, peer: &'a Peer, r: &'a CellsRequest) -> EntropyRequest<'a, CellsAnswer> {
        let r = over_json(r);
        Box::pin(self.call(peer, Asked::Entropy, move |node| {
            node.receive_cells_request(r)
        }))
    }

    fn fetch<'a>(&'a self, peer: &'a Peer, r: &'a FetchRequest) -> EntropyRequest<'a, ChangeBatch> {
        let r = over_json(r);
        Box::pin(self.call(peer, Asked::Entropy, move |node| node.receive_fetch(r)))
    }

    fn repair<'a>(&'a self, peer: &'a Peer, b: &'a ChangeBatch) -> EntropyRequest<'a, BatchAnswer> {
        let batch = ChangeBatch::decode(&b.encode()).expect("a batch decodes");
        let from = self.from.clone();
        Box::pin(self.call(peer, Asked::Entropy, move |node| {
            node.receive_repair(&from, batch)
        }))
    }
}

fn key(k: &str) -> Item {
    [("p".to_string(), AttributeValue::S(k.into()))].into()
}

fn create_table(engine: &Engine) {
    engine
        .tables
        .create_table(CreateTableRequest::on_demand(TABLE, "p", "S"))
        .expect("a table");
}

fn put(store: &Store, k: &str) {
    store
        .put_item(PutItemRequest {
            table_name: TABLE.into(),
            item: key(k),
            ..Default::default()
        })
        .expect("a put");
}

fn delete(store: &Store, k: &str) {
    store
        .delete_item(DeleteItemRequest {
            table_name: TABLE.into(),
            key: key(k),
            ..Default::default()
        })
        .expect("a delete");
}

/// `away` leaves the network, and `from` finds that out at its next membership exchange.
async fn goes_away(network: &Network, from: &Region, away: &Region) {
    network.set_reachable(away, false);
    let held = GlobalTable::of(&from.store, TABLE).expect("global");
    assert!(
        from.replicator
            .send_membership(TABLE, away.replicator.region(), &held)
            .await
            .is_err()
    );
}

fn item_count(store: &Store) -> usize {
    store
        .scan(ScanRequest {
            table_name: TABLE.into(),
            ..Default::default()
        })
        .expect("a scan")
        .count
}

fn status_in(store: &Store, region: &str) -> Option<ReplicaStatus> {
    GlobalTable::of(store, TABLE)?
        .replicas
        .get(region)
        .map(|r| r.status)
}

fn peer_hold(store: &Store, region: &str) -> HoldName {
    HoldName::Peer {
        region: region.into(),
        table_id: store.table_id(TABLE).expect("a table"),
    }
}

/// Waits (a few seconds at most) until `done`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A membership made in `us` of replicas in `us` and `eu`, both ACTIVE.
fn us_and_eu(settings: SharedSettings) -> GlobalTable {
    GlobalTable {
        version: VERSION.into(),
        replicas: BTreeMap::from([
            ("us".to_string(), Replica::active()),
            ("eu".to_string(), Replica::active()),
        ]),
        settings,
        stamp_clock: 1,
        stamp_region: "us".into(),
        removed: BTreeMap::new(),
        setting_stamps: Default::default(),
    }
}

fn create(region: &str) -> Vec<ReplicaUpdate> {
    vec![ReplicaUpdate::Create(region.into())]
}

/// `us` with a table of three items, made global with a replica in `eu`, ACTIVE in both.
async fn global_pair(network: &Arc<Network>) -> (Region, Region) {
    let (us, eu) = (network.join("us"), network.join("eu"));
    create_table(&us.engine);
    for k in ["a", "b", "c"] {
        put(&us.store, k);
    }
    add_replica(&us, &eu).await;
    (us, eu)
}

/// Adds `to`'s replica of the table from `from`, and waits until it is ACTIVE in both.
async fn add_replica(from: &Region, to: &Region) {
    let region = to.replicator.region();
    from.replicator
        .update_replicas(TABLE, create(region), VERSION)
        .await
        .expect("the replica is created");
    eventually(&format!("{region} is ACTIVE in both regions"), || {
        status_in(&from.store, region) == Some(ReplicaStatus::Active)
            && status_in(&to.store, region) == Some(ReplicaStatus::Active)
    })
    .await;
}

#[tokio::test]
async fn a_new_replica_is_created_before_it_is_named_then_seeded_and_made_active() {
    let network = Network::new();
    let (us, eu) = (network.join("us"), network.join("eu"));
    create_table(&us.engine);
    for k in ["a", "b", "c", "gone"] {
        put(&us.store, k);
    }
    delete(&us.store, "gone");

    let after = us
        .replicator
        .update_replicas(TABLE, create("eu"), VERSION)
        .await
        .expect("the replica is created")
        .expect("the table is global");

    assert_eq!(after.replicas["us"].unstamped(), Replica::active());
    assert_eq!(
        after.replicas["eu"],
        Replica {
            stamp: Some(after.part_stamp()),
            ..Replica::creating("us")
        },
        "the new entry is stamped with the document that adds it"
    );
    assert_eq!(
        network.asked_of("eu").first(),
        Some(&Asked::CreateReplica),
        "the new region makes its table before any document names it"
    );
    assert!(
        eu.store.table_definition(TABLE).is_ok(),
        "made before the call answers"
    );
    assert!(
        us.store.hold(&peer_hold(&us.store, "eu")).is_some(),
        "this region keeps its changes for the new replica"
    );
    let table_id = us.store.table_id(TABLE).expect("a table");
    assert!(us.store.hold(&HoldName::Inbound { table_id }).is_some());

    eventually("eu is ACTIVE in both regions", || {
        status_in(&us.store, "eu") == Some(ReplicaStatus::Active)
            && status_in(&eu.store, "eu") == Some(ReplicaStatus::Active)
    })
    .await;
    assert_eq!(
        item_count(&eu.store),
        3,
        "the snapshot's items, not the deleted one"
    );
    assert!(network.asked_of("eu").contains(&Asked::SeedPage));
    assert!(
        GlobalTable::of(&us.store, TABLE)
            .expect("global")
            .replicas
            .values()
            .all(|r| r.progress.is_none() && r.seeded_by.is_none()),
        "an ACTIVE replica carries no seeding state"
    );
}

#[tokio::test]
async fn seeding_outlasts_a_peer_that_drops_pages() {
    let network = Network::new();
    let (us, eu) = (network.join("us"), network.join("eu"));
    create_table(&us.engine);
    put(&us.store, "a");
    network.fail_next("eu", Asked::SeedPage, 2);

    us.replicator
        .update_replicas(TABLE, create("eu"), VERSION)
        .await
        .expect("the replica is created");

    eventually("eu is ACTIVE here", || {
        status_in(&us.store, "eu") == Some(ReplicaStatus::Active)
    })
    .await;
    let pages = network
        .asked_of("eu")
        .iter()
        .filter(|a| **a == Asked::SeedPage)
        .count();
    assert_eq!(pages, 3, "the page is sent again until it arrives");
    assert_eq!(item_count(&eu.store), 1);
}

#[tokio::test]
async fn a_region_that_refuses_its_replica_leaves_the_table_as_it_was() {
    let network = Network::new();
    let (us, eu) = (network.join("us"), network.join("eu"));
    create_table(&us.engine);
    // A table of that name outside the group, with an item: eu cannot take a replica.
    create_table(&eu.engine);
    put(&eu.store, "theirs");

    let refused = us
        .replicator
        .update_replicas(TABLE, create("eu"), VERSION)
        .await;

    match refused {
        Err(Error::Peer(PeerError::Refused { region, refusal })) => {
            assert_eq!(region, "eu");
            assert_eq!(refusal.error, "ValidationException");
            assert!(refusal.message.contains("already exists in region eu"));
        }
        other => panic!("expected eu's refusal, got {other:?}"),
    }
    assert!(GlobalTable::of(&us.store, TABLE).is_none(), "still local");
    assert!(
        us.store.holds().is_empty(),
        "no hold set for the refused region"
    );
    assert!(GlobalTable::of(&eu.store, TABLE).is_none());
    assert_eq!(item_count(&eu.store), 1, "eu's own table is untouched");
    assert_eq!(network.asked_of("eu"), [Asked::CreateReplica]);
}

#[tokio::test]
async fn an_unreachable_region_fails_the_new_replica_and_changes_nothing() {
    let network = Network::new();
    let us = network.join("us");
    create_table(&us.engine);

    let failed = us
        .replicator
        .update_replicas(TABLE, create("eu"), VERSION)
        .await;

    assert!(
        matches!(&failed, Err(Error::Peer(PeerError::Unreachable { region, .. })) if region == "eu"),
        "{failed:?}"
    );
    assert!(GlobalTable::of(&us.store, TABLE).is_none());
    assert!(us.store.holds().is_empty());
    assert_eq!(network.asked_of("eu"), [Asked::CreateReplica]);
}

#[tokio::test]
async fn a_removed_replica_leaves_at_once_and_its_region_drops_it() {
    let network = Network::new();
    let (us, eu) = global_pair(&network).await;
    assert!(us.store.hold(&peer_hold(&us.store, "eu")).is_some());

    let after = us
        .replicator
        .update_replicas(TABLE, vec![ReplicaUpdate::Delete("eu".into())], VERSION)
        .await
        .expect("the replica is removed")
        .expect("the table stays");

    assert_eq!(after.replicas.keys().collect::<Vec<_>>(), ["us"]);
    assert!(
        GlobalTable::of(&us.store, TABLE).is_none(),
        "us alone: a single-region table again"
    );
    assert!(us.store.holds().is_empty(), "nothing is kept for eu");
    eventually("eu dropped its table", || {
        eu.store.table_definition(TABLE).is_err()
    })
    .await;
    assert_eq!(item_count(&us.store), 3, "this region's table stays");
}

/// `us`, `eu` and `ap`, all ACTIVE, each table with the items a, b and c.
async fn global_trio(network: &Arc<Network>) -> (Region, Region, Region) {
    let (us, eu) = global_pair(network).await;
    let ap = network.join("ap");
    us.replicator
        .update_replicas(TABLE, create("ap"), VERSION)
        .await
        .expect("the replica is created");
    eventually("ap is ACTIVE in every region", || {
        [&us, &eu, &ap]
            .iter()
            .all(|r| status_in(&r.store, "ap") == Some(ReplicaStatus::Active))
    })
    .await;
    (us, eu, ap)
}

#[tokio::test]
async fn an_unreachable_region_is_removed_at_once_and_never_comes_back() {
    let network = Network::new();
    let (us, eu, ap) = global_trio(&network).await;
    let stale = GlobalTable::of(&ap.store, TABLE).expect("global in ap");
    network.set_reachable(&ap, false);

    let after = us
        .replicator
        .update_replicas(TABLE, vec![ReplicaUpdate::Delete("ap".into())], VERSION)
        .await
        .expect("the replica is removed without ap answering")
        .expect("still global with eu");

    assert_eq!(
        after.replicas.keys().collect::<Vec<_>>(),
        ["eu", "us"],
        "ap is gone from the document at once"
    );
    assert!(!after.is_updating(), "the table is ACTIVE");
    assert!(after.has_removed("ap"));
    assert!(us.store.hold(&peer_hold(&us.store, "ap")).is_none());
    us.replicator
        .update_replicas(TABLE, vec![ReplicaUpdate::Update("eu".into())], VERSION)
        .await
        .expect("the next control-plane call is accepted at once");
    eventually("eu heard of the removal and holds nothing for ap", || {
        GlobalTable::of(&eu.store, TABLE).is_some_and(|g| g.has_removed("ap"))
            && eu.store.hold(&peer_hold(&eu.store, "ap")).is_none()
    })
    .await;

    // Tombstones are no longer kept for ap: us's inbound hold moves once eu (the only other
    // replica now) says what it delivered.
    let table_id = us.store.table_id(TABLE).expect("a table");
    let inbound = HoldName::Inbound { table_id };
    let before = us.store.hold(&inbound).expect("an inbound hold").from;
    put(&us.store, "later");
    let delivered = (us.store.clock().now_millis() + 1_000) << 16;
    test_support::heartbeat(&us.replicator, "eu", TABLE, delivered);
    assert!(
        us.store.hold(&inbound).expect("held").from > before,
        "ap, removed, does not pin the inbound hold"
    );

    // ap comes back with its stale document, which it made newer while away: it is told it
    // is out, drops its copy, and is not named again.
    network.set_reachable(&ap, true);
    ap.engine
        .ttl
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: TABLE.into(),
            enabled: true,
            attribute_name: "expires".into(),
        })
        .expect("TTL on in ap");
    let mut newer = stale.clone();
    newer.settings = SharedSettings::of(&ap.store.table_definition(TABLE).expect("a table"));
    newer.stamp_region = "ap".into();
    newer.stamp_clock = GlobalTable::of(&us.store, TABLE)
        .expect("global")
        .stamp_clock
        + 1;
    newer.save(&ap.store, TABLE).expect("saved");
    assert!(newer.supersedes(GlobalTable::of(&us.store, TABLE).as_ref()));

    // Before it hears of its removal, it ships: us refuses its changes.
    let refused = us
        .replicator
        .receive_changes(
            "ap",
            ChangeBatch {
                changes: vec![stamped(
                    "from-ap",
                    "ap",
                    ap.store.clock().now_millis() << 16,
                )],
                delivered: BTreeMap::new(),
            },
        )
        .expect("answered");
    assert_eq!(refused.written, 0);
    assert_eq!(refused.missing_tables, [TABLE]);
    assert_eq!(
        item_count(&us.store),
        4,
        "a, b, c and later: nothing from ap"
    );

    ap.replicator
        .send_membership(TABLE, "us", &newer)
        .await
        .expect("us answers");
    assert!(
        ap.store.table_definition(TABLE).is_err(),
        "ap dropped its copy"
    );
    for region in [&us, &eu] {
        let held = GlobalTable::of(&region.store, TABLE).expect("global");
        assert!(held.has_removed("ap"), "{held:?}");
    }
    assert!(us.store.hold(&peer_hold(&us.store, "ap")).is_none());
}

#[tokio::test]
async fn a_survivor_that_meets_the_removed_regions_document_keeps_it_out() {
    let network = Network::new();
    let (us, _eu, ap) = global_trio(&network).await;
    let stale = GlobalTable::of(&ap.store, TABLE).expect("global in ap");
    network.set_reachable(&ap, false);
    us.replicator
        .update_replicas(TABLE, vec![ReplicaUpdate::Delete("ap".into())], VERSION)
        .await
        .expect("removed");
    let removing = GlobalTable::of(&us.store, TABLE).expect("global");

    // ap's document, made later than the removal by its stamp, reaches us.
    let mut newer = stale;
    newer.stamp_clock = removing.stamp_clock + 1;
    let answer = us
        .replicator
        .receive_membership(TABLE, newer.clone())
        .expect("answered");

    let MembershipAnswer::Holds(held) = answer else {
        panic!("us keeps the table");
    };
    assert!(held.has_removed("ap"), "ap is not named again: {held:?}");
    assert!(
        held.supersedes(Some(&newer)),
        "restamped: the merged document wins over ap's"
    );
    assert_eq!(GlobalTable::of(&us.store, TABLE), Some(held));
    assert!(us.store.hold(&peer_hold(&us.store, "ap")).is_none());
}

#[tokio::test]
async fn a_replica_deleted_in_its_own_region_leaves_the_group_at_the_next_exchange() {
    let network = Network::new();
    let (us, eu) = global_pair(&network).await;
    eu.engine.tables.delete_table(TABLE).expect("deleted in eu");
    let held = GlobalTable::of(&us.store, TABLE).expect("global");

    us.replicator
        .send_membership(TABLE, "eu", &held)
        .await
        .expect("eu answers");

    assert!(GlobalTable::of(&us.store, TABLE).is_none());
    assert!(us.store.hold(&peer_hold(&us.store, "eu")).is_none());
}

#[tokio::test]
async fn a_newer_membership_in_a_peers_answer_is_adopted_and_an_older_one_is_not() {
    let network = Network::new();
    let (us, eu) = global_pair(&network).await;
    let before = GlobalTable::of(&us.store, TABLE).expect("global");

    // eu changes a shared setting while us is cut off: its newer document does not arrive.
    network.set_reachable(&us, false);
    let offered = network.asked_of("us").len();
    eu.engine
        .ttl
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: TABLE.into(),
            enabled: true,
            attribute_name: "expires".into(),
        })
        .expect("TTL on in eu");
    eu.replicator
        .settings_changed(TABLE)
        .await
        .expect("settings saved");
    eventually("eu tried to send its document", || {
        network.asked_of("us").len() > offered
    })
    .await;
    network.set_reachable(&us, true);
    assert_eq!(GlobalTable::of(&us.store, TABLE), Some(before.clone()));
    let newer = GlobalTable::of(&eu.store, TABLE).expect("global");
    assert!(newer.supersedes(Some(&before)));

    // us offers its older document at the next exchange: eu keeps its own and answers with
    // it, and us takes it, shared setting included.
    let current = us
        .replicator
        .send_membership(TABLE, "eu", &before)
        .await
        .expect("eu answers");
    assert!(
        current,
        "eu holds a document at least as new as the one sent"
    );
    assert_eq!(GlobalTable::of(&eu.store, TABLE), Some(newer.clone()));
    assert_eq!(GlobalTable::of(&us.store, TABLE), Some(newer));
    assert_eq!(
        us.store
            .table_definition(TABLE)
            .expect("a table")
            .time_to_live_attribute
            .as_deref(),
        Some("expires")
    );
}

#[tokio::test]
async fn an_unreachable_peer_is_shown_in_its_link_and_recovers() {
    let network = Network::new();
    let (us, eu) = global_pair(&network).await;
    let held = GlobalTable::of(&us.store, TABLE).expect("global");

    network.set_reachable(&eu, false);
    let failed = us.replicator.send_membership(TABLE, "eu", &held).await;
    assert!(matches!(
        failed,
        Err(Error::Peer(PeerError::Unreachable { .. }))
    ));
    let link = us.replicator.link("eu");
    assert!(!link.reachable);
    assert!(link.last_error.is_some_and(|e| e.contains("unreachable")));
    assert_eq!(
        GlobalTable::of(&us.store, TABLE),
        Some(held.clone()),
        "an unanswered exchange changes nothing"
    );

    network.set_reachable(&eu, true);
    assert!(
        us.replicator
            .send_membership(TABLE, "eu", &held)
            .await
            .expect("eu answers")
    );
    let link = us.replicator.link("eu");
    assert!(link.reachable);
    assert_eq!(link.last_error, None);
}

#[tokio::test]
async fn replica_updates_are_checked_before_any_peer_is_asked() {
    let network = Network::new();
    let us = network.join("us");
    create_table(&us.engine);
    let refused = |outcome: Result<Option<GlobalTable>>, wanted: &str| match outcome {
        Err(Error::Validation(message)) => {
            assert!(message.contains(wanted), "{message:?} lacks {wanted:?}")
        }
        other => panic!("expected a validation error with {wanted:?}, got {other:?}"),
    };
    let r = &us.replicator;
    refused(
        r.update_replicas(TABLE, Vec::new(), VERSION).await,
        "Member must have length greater than or equal to 1",
    );
    refused(
        r.update_replicas(TABLE, create("us"), VERSION).await,
        "Cannot add, delete, or update the local region",
    );
    refused(
        r.update_replicas(TABLE, create("mars"), VERSION).await,
        "Region mars is not available to this table",
    );
    refused(
        r.update_replicas(TABLE, vec![ReplicaUpdate::Delete("eu".into())], VERSION)
            .await,
        "the replica in region eu does not exist for table orders",
    );
    assert!(matches!(
        r.update_replicas("missing", create("eu"), VERSION).await,
        Err(Error::Core(tidemark_core::Error::ResourceNotFound(_)))
    ));
    assert!(network.requests.lock().is_empty(), "no peer was asked");
    assert!(GlobalTable::of(&us.store, TABLE).is_none());
}

#[tokio::test]
async fn updates_of_a_global_table_are_checked_against_its_membership() {
    let network = Network::new();
    let us = network.join("us");
    create_table(&us.engine);
    let definition = us.store.table_definition(TABLE).expect("a table");
    let mut held = us_and_eu(SharedSettings::of(&definition));
    let check = |held: &GlobalTable, updates: Vec<ReplicaUpdate>, version: &str| {
        us.replicator
            .check_replica_updates(TABLE, Some(held), &updates, version)
    };

    assert!(matches!(
        check(&held, create("eu"), VERSION),
        Err(Error::Validation(m)) if m.contains("already existed as tables: region eu")
    ));
    assert!(matches!(
        check(&held, create("ap"), LEGACY_VERSION),
        Err(Error::Validation(m)) if m.contains("is a global table of version 2019.11.21")
    ));
    check(&held, create("ap"), VERSION).expect("a new region may join");
    check(&held, vec![ReplicaUpdate::Update("eu".into())], VERSION).expect("eu exists");

    held.replicas.get_mut("eu").expect("eu").status = ReplicaStatus::Creating;
    assert!(matches!(
        check(&held, create("ap"), VERSION),
        Err(Error::InUse(m)) if m.contains("Table is being updated: orders")
    ));
}

#[test]
fn replica_updates_change_only_the_region_they_name() {
    let mut global = us_and_eu(SharedSettings {
        billing_mode: "PAY_PER_REQUEST".into(),
        provisioned_throughput: tidemark_core::model::ProvisionedThroughput {
            read_capacity_units: 0,
            write_capacity_units: 0,
        },
        time_to_live_attribute: None,
        global_secondary_indexes: Vec::new(),
        attribute_definitions: Vec::new(),
    });
    let unchanged = global.clone();
    apply_replica_update(&mut global, &ReplicaUpdate::Update("eu".into()), "us");
    assert_eq!(global, unchanged, "an update changes nothing shared");

    apply_replica_update(&mut global, &ReplicaUpdate::Create("ap".into()), "us");
    apply_replica_update(&mut global, &ReplicaUpdate::Delete("eu".into()), "us");
    assert_eq!(
        global.replicas,
        BTreeMap::from([
            ("us".to_string(), Replica::active()),
            (
                "ap".to_string(),
                Replica {
                    stamp: Some(global.part_stamp()),
                    ..Replica::creating("us")
                }
            ),
        ])
    );
    assert_eq!(
        global.removed,
        BTreeMap::from([("eu".to_string(), global.stamp_clock)]),
        "the removal is recorded at the document's stamp"
    );
    assert!(global.is_updating(), "ap is being created");
    assert_eq!(global.receivers_besides("us").collect::<Vec<_>>(), ["ap"]);
}

#[tokio::test]
async fn a_peer_away_past_the_hold_limit_is_let_go_of_and_reported() {
    let network = Network::new();
    let limit = Duration::from_millis(300);
    let us = network.join_with_limit("us", limit);
    let (eu, ap) = (network.join("eu"), network.join("ap"));
    create_table(&us.engine);
    put(&us.store, "a");
    us.replicator
        .update_replicas(TABLE, [create("eu"), create("ap")].concat(), VERSION)
        .await
        .expect("the replicas are created");
    eventually("eu and ap are ACTIVE in every region", || {
        [&us, &eu, &ap].iter().all(|r| {
            status_in(&r.store, "eu") == Some(ReplicaStatus::Active)
                && status_in(&r.store, "ap") == Some(ReplicaStatus::Active)
        })
    })
    .await;

    goes_away(&network, &us, &ap).await;
    put(&us.store, "while-away");
    us.replicator.enforce_hold_limit().expect("checked");
    assert!(
        us.store.hold(&peer_hold(&us.store, "ap")).is_some(),
        "what is kept for ap is younger than the limit"
    );
    assert!(!us.replicator.needs_reseed(TABLE, "ap"));

    tokio::time::sleep(limit + Duration::from_millis(100)).await;
    us.replicator.enforce_hold_limit().expect("checked");

    assert!(
        us.store.hold(&peer_hold(&us.store, "ap")).is_none(),
        "nothing more is kept for ap"
    );
    assert!(
        us.store.hold(&peer_hold(&us.store, "eu")).is_some(),
        "eu answers: its hold stays"
    );
    let reported: BTreeMap<String, bool> = us
        .replicator
        .status()
        .into_iter()
        .map(|link| (link.region, link.needs_reseed))
        .collect();
    assert_eq!(
        reported,
        BTreeMap::from([("ap".to_string(), true), ("eu".to_string(), false)])
    );
    let definition = us.store.table_definition(TABLE).expect("a table");
    assert!(
        crate::hold_limit::reseed_needed(&definition).contains_key("ap"),
        "recorded with the table, durably"
    );
    assert_eq!(
        GlobalTable::of(&us.store, TABLE).map(|g| g.replicas["ap"].status),
        Some(ReplicaStatus::Active),
        "the group's view of ap is unchanged: only this node stopped keeping history for it"
    );

    // ap no longer pins tombstones: the inbound hold moves on eu's report alone.
    let inbound = HoldName::Inbound {
        table_id: definition.table_id,
    };
    let before = us.store.hold(&inbound).expect("an inbound hold").from;
    put(&us.store, "later");
    let delivered = (us.store.clock().now_millis() + 1_000) << 16;
    test_support::heartbeat(&us.replicator, "eu", TABLE, delivered);
    assert!(us.store.hold(&inbound).expect("held").from > before);

    // ap's changes are refused until it is re-seeded: they could bring back items whose
    // tombstones went meanwhile.
    let refused = us
        .replicator
        .receive_changes(
            "ap",
            ChangeBatch {
                changes: vec![stamped(
                    "from-ap",
                    "ap",
                    us.store.clock().now_millis() << 16,
                )],
                delivered: BTreeMap::new(),
            },
        )
        .expect("answered");
    assert_eq!(refused.missing_tables, [TABLE]);

    // A later membership change does not set the hold again.
    us.replicator
        .update_replicas(TABLE, vec![ReplicaUpdate::Update("eu".into())], VERSION)
        .await
        .expect("accepted");
    assert!(us.store.hold(&peer_hold(&us.store, "ap")).is_none());

    // Removing ap forgets the re-seed.
    us.replicator
        .update_replicas(TABLE, vec![ReplicaUpdate::Delete("ap".into())], VERSION)
        .await
        .expect("removed");
    let definition = us.store.table_definition(TABLE).expect("a table");
    assert!(crate::hold_limit::reseed_needed(&definition).is_empty());
}

/// The keys of `store`'s items, sorted.
fn item_keys(store: &Store) -> Vec<String> {
    let mut keys: Vec<String> = store
        .scan(ScanRequest {
            table_name: TABLE.into(),
            ..Default::default()
        })
        .expect("a scan")
        .items
        .iter()
        .filter_map(|item| match item.get("p") {
            Some(AttributeValue::S(k)) => Some(k.clone()),
            _ => None,
        })
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_region_away_past_the_hold_limit_is_let_go_of_through_kafka_too() {
    let network = Network::new();
    let limit = Duration::from_millis(300);
    let kafka = || Transport::Kafka {
        cluster: tidemark_kafka::KafkaSettings::new("127.0.0.1:9"),
        topic_retention: Duration::from_secs(60),
    };
    let us = network.join_with("us", limit, kafka());
    let ap = network.join_with("ap", PeerHoldLimit::DEFAULT.0, kafka());
    create_table(&us.engine);
    add_replica(&us, &ap).await;
    // What ap's topic said it delivered, as the Kafka reader takes it.
    let delivered = ap.store.clock().now_millis() << 16;
    us.replicator
        .inbound
        .lock()
        .insert((TABLE.to_string(), "ap".to_string()), delivered);
    assert_eq!(
        us.replicator.consumed_topics(),
        [(TABLE.to_string(), "ap".to_string())]
    );

    // ap goes away; us deletes an item, whose tombstone ap pins.
    goes_away(&network, &us, &ap).await;
    put(&us.store, "d");
    delete(&us.store, "d");
    us.replicator.enforce_hold_limit().expect("checked");
    assert!(!us.replicator.needs_reseed(TABLE, "ap"), "not yet");

    tokio::time::sleep(limit + Duration::from_millis(100)).await;
    us.replicator.enforce_hold_limit().expect("checked");
    assert!(us.replicator.needs_reseed(TABLE, "ap"));
    assert!(
        us.replicator.consumed_topics().is_empty(),
        "ap's topic is not read until ap is re-seeded"
    );
    let table_id = us.store.table_id(TABLE).expect("a table");
    let inbound = us
        .store
        .hold(&HoldName::Inbound { table_id })
        .expect("held");
    assert!(
        inbound.from > us.store.next_seq().saturating_prev(),
        "nothing pins the tombstones for ap any more: {inbound:?}"
    );
    let definition = us.store.table_definition(TABLE).expect("a table");
    assert_eq!(
        crate::hold_limit::reseed_needed(&definition)["ap"].cause,
        crate::hold_limit::ReseedCause::HoldLimit
    );
}

#[tokio::test]
async fn a_region_let_go_of_is_re_seeded_when_it_returns_keeping_its_writes_and_our_deletes() {
    let network = Network::new();
    let limit = Duration::from_millis(300);
    let us = network.join_with_limit("us", limit);
    let ap = network.join_with_limit("ap", limit);
    create_table(&us.engine);
    for k in ["base", "d", "x"] {
        put(&us.store, k);
    }
    add_replica(&us, &ap).await;
    assert_eq!(item_keys(&ap.store), ["base", "d", "x"]);
    // Each shipper says what it delivered, as its heartbeats do.
    for (from, to) in [(&ap, &us), (&us, &ap)] {
        let delivered = from.store.clock().now_millis() << 16;
        test_support::heartbeat(&to.replicator, from.replicator.region(), TABLE, delivered);
    }

    // ap goes away past the limit; meanwhile us deletes d (and trims its tombstone) and
    // writes n, and ap writes a.
    goes_away(&network, &us, &ap).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(&ap.store, "a");
    delete(&us.store, "d");
    put(&us.store, "n");
    tokio::time::sleep(limit + Duration::from_millis(100)).await;
    us.replicator.enforce_hold_limit().expect("checked");
    assert!(us.replicator.needs_reseed(TABLE, "ap"));
    let table_id = us.store.table_id(TABLE).expect("a table");
    us.store
        .release_hold(&HoldName::Inbound { table_id })
        .expect("released");
    assert!(us.store.holds().is_empty(), "nothing pins d's tombstone");
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(&us.store, "after-trim");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let trimmed = us.store.trim_history().expect("trimmed");
    assert_eq!(trimmed.tombstones, 1, "d's tombstone is gone");
    // ap, away too, deletes x and trims its tombstone (as a region that let go of us, or
    // that went on reading us through Kafka, does).
    delete(&ap.store, "x");
    for hold in ap.store.holds() {
        ap.store.release_hold(&hold.name).expect("released");
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(&ap.store, "after-trim-there");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        ap.store.trim_history().expect("trimmed").tombstones,
        1,
        "x's tombstone is gone"
    );

    // ap answers again: the exchange re-seeds it.
    network.set_reachable(&ap, true);
    let shutdown = CancellationToken::new();
    let exchange = tokio::spawn(us.replicator.clone().exchange_membership(shutdown.clone()));
    eventually("ap is re-seeded", || {
        !us.replicator.needs_reseed(TABLE, "ap")
    })
    .await;
    shutdown.cancel();
    exchange.await.expect("joined").expect("the exchange ends");

    let expected = ["a", "after-trim", "after-trim-there", "base", "n"];
    assert_eq!(
        item_keys(&us.store),
        expected,
        "a came here, d stays deleted, x was deleted here"
    );
    assert_eq!(
        item_keys(&ap.store),
        expected,
        "n went there, d was deleted there, x stays deleted"
    );
    assert!(
        us.store.hold(&peer_hold(&us.store, "ap")).is_some(),
        "what ap has not got is kept for it again"
    );
    let later = us
        .replicator
        .receive_changes(
            "ap",
            ChangeBatch {
                changes: vec![stamped("later", "ap", ap.store.clock().now_millis() << 16)],
                delivered: BTreeMap::new(),
            },
        )
        .expect("applied");
    assert_eq!((later.written, later.missing_tables.len()), (1, 0));
}

#[tokio::test]
async fn a_replica_an_older_node_left_deleting_is_removed_by_the_exchange() {
    let network = Network::new();
    let (us, eu, ap) = global_trio(&network).await;
    network.set_reachable(&ap, false);
    // What a node before removals were recorded made of ReplicaUpdates Delete{ap}.
    let current = GlobalTable::of(&us.store, TABLE).expect("global");
    let mut old_style = current.clone();
    old_style.replicas.get_mut("ap").expect("ap").status = ReplicaStatus::Deleting;
    old_style.restamp(&us.store, "us");
    {
        let _guard = us.replicator.membership.lock();
        let definition = us.store.table_definition(TABLE).expect("a table");
        us.replicator
            .adopt(TABLE, &definition, Some(&current), old_style.clone())
            .expect("adopted");
    }
    assert!(old_style.is_updating(), "stuck while ap does not answer");

    us.replicator.finish_deleting(TABLE).expect("finished");

    let held = GlobalTable::of(&us.store, TABLE).expect("global");
    assert_eq!(held.replicas.keys().collect::<Vec<_>>(), ["eu", "us"]);
    assert!(held.has_removed("ap"));
    assert!(!held.is_updating(), "the table is ACTIVE again");
    assert!(us.store.hold(&peer_hold(&us.store, "ap")).is_none());
    eventually("eu took the finished removal", || {
        GlobalTable::of(&eu.store, TABLE).is_some_and(|g| g.has_removed("ap"))
    })
    .await;
}

/// Turns TTL on in `region`'s table, on the attribute `expires`, as UpdateTimeToLive there
/// does, and tells its replicator.
async fn enable_ttl_in(region: &Region) {
    region
        .engine
        .ttl
        .update_time_to_live(UpdateTimeToLiveRequest {
            table_name: TABLE.into(),
            enabled: true,
            attribute_name: "expires".into(),
        })
        .expect("TTL on");
    region
        .replicator
        .settings_changed(TABLE)
        .await
        .expect("settings saved");
}

/// Adds the global secondary index `by_g` (on the attribute `g`) to `region`'s table, as
/// UpdateTable there does, and tells its replicator.
async fn add_index_in(region: &Region) {
    use tidemark_core::model::{
        AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, Projection,
    };
    use tidemark_core::ops::{GsiUpdate, UpdateTableRequest};
    region
        .engine
        .tables
        .update_table(UpdateTableRequest {
            table_name: TABLE.into(),
            attribute_definitions: vec![AttributeDefinition {
                attribute_name: "g".into(),
                attribute_type: "S".into(),
            }],
            global_secondary_index_updates: vec![GsiUpdate::Create(GlobalSecondaryIndex {
                index_name: "by_g".into(),
                key_schema: vec![KeySchemaElement {
                    attribute_name: "g".into(),
                    key_type: "HASH".into(),
                }],
                projection: Projection {
                    projection_type: Some("ALL".into()),
                    non_key_attributes: None,
                },
                provisioned_throughput: None,
            })],
            ..Default::default()
        })
        .expect("an index added");
    region
        .replicator
        .settings_changed(TABLE)
        .await
        .expect("settings saved");
}

/// The TTL attribute and the global secondary index names of `store`'s table.
fn table_settings(store: &Store) -> (Option<String>, Vec<String>) {
    let definition = store.table_definition(TABLE).expect("a table");
    let indexes = definition
        .global_secondary_indexes
        .iter()
        .map(|i| i.index_name.clone())
        .collect();
    (definition.time_to_live_attribute, indexes)
}

/// Waits (up to `within`) until `done`.
async fn eventually_within(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn settings_changed_in_two_regions_cut_apart_both_take_effect_after_the_heal() {
    let network = Network::new();
    let (us, eu) = global_pair(&network).await;
    network.set_cut("us", "eu", true);
    let (to_us, to_eu) = (network.asked_of("us").len(), network.asked_of("eu").len());

    enable_ttl_in(&us).await;
    // A later millisecond: documents made within one would tie, broken by region name.
    tokio::time::sleep(Duration::from_millis(2)).await;
    add_index_in(&eu).await;
    eventually(
        "each region tried to send its document across the cut",
        || network.asked_of("us").len() > to_us && network.asked_of("eu").len() > to_eu,
    )
    .await;
    assert_eq!(table_settings(&us.store), (Some("expires".into()), vec![]));
    assert_eq!(table_settings(&eu.store), (None, vec!["by_g".to_string()]));
    let us_doc = GlobalTable::of(&us.store, TABLE).expect("global");
    assert!(
        GlobalTable::of(&eu.store, TABLE)
            .expect("global")
            .supersedes(Some(&us_doc)),
        "eu's document is the later one: taken whole, it would undo us's TTL"
    );

    // The heal, then the exchange: us offers its document to eu.
    network.set_cut("us", "eu", false);
    assert!(
        us.replicator
            .send_membership(TABLE, "eu", &us_doc)
            .await
            .expect("eu answers"),
        "eu holds everything us's document says"
    );

    for region in [&us, &eu] {
        assert_eq!(
            table_settings(&region.store),
            (Some("expires".into()), vec!["by_g".to_string()]),
            "both changes took effect in {}",
            region.replicator.region()
        );
    }
    let merged = GlobalTable::of(&us.store, TABLE).expect("global");
    assert_eq!(GlobalTable::of(&eu.store, TABLE), Some(merged.clone()));
    assert!(
        merged
            .settings
            .attribute_definitions
            .iter()
            .any(|d| d.attribute_name == "g"),
        "the index's key stays defined"
    );
    assert!(
        !us.replicator
            .reconcile(&merged, us_doc)
            .is_some_and(|next| next != merged),
        "us's old document, met again, changes nothing"
    );
}

#[tokio::test]
async fn a_replica_added_in_one_region_while_another_changes_a_setting_keeps_its_table() {
    let network = Network::new();
    let (us, eu) = global_pair(&network).await;
    let ap = network.join("ap");
    network.set_cut("us", "eu", true);
    network.set_cut("ap", "eu", true);

    us.replicator
        .update_replicas(TABLE, create("ap"), VERSION)
        .await
        .expect("ap's replica is created while eu is cut off");
    tokio::time::sleep(Duration::from_millis(2)).await;
    enable_ttl_in(&eu).await;
    let eu_doc = GlobalTable::of(&eu.store, TABLE).expect("global");
    assert!(
        eu_doc.supersedes(GlobalTable::of(&us.store, TABLE).as_ref()),
        "eu's change is the later: taken whole, its document would drop ap"
    );

    // The heal, then the exchange: eu offers its document to us, us to ap.
    network.set_cut("us", "eu", false);
    network.set_cut("ap", "eu", false);
    eu.replicator
        .send_membership(TABLE, "us", &eu_doc)
        .await
        .expect("us answers");
    let us_doc = GlobalTable::of(&us.store, TABLE).expect("global");
    assert!(us_doc.replicas.contains_key("ap"), "{us_doc:?}");
    us.replicator
        .send_membership(TABLE, "ap", &us_doc)
        .await
        .expect("ap answers");
    assert!(
        ap.store.table_definition(TABLE).is_ok(),
        "ap keeps its table"
    );

    // Seeding waits for eu to hold the document naming ap (it retries every few seconds),
    // then ap is ACTIVE everywhere, with eu's TTL.
    eventually_within("ap is ACTIVE in every region", MAX_BACKOFF * 3, || {
        [&us, &eu, &ap]
            .iter()
            .all(|r| status_in(&r.store, "ap") == Some(ReplicaStatus::Active))
    })
    .await;
    for region in [&us, &eu, &ap] {
        assert_eq!(
            table_settings(&region.store).0.as_deref(),
            Some("expires"),
            "eu's TTL took effect in {}",
            region.replicator.region()
        );
    }
    assert_eq!(item_count(&ap.store), 3, "ap was seeded");
    assert!(
        eu.store.hold(&peer_hold(&eu.store, "ap")).is_some(),
        "eu ships to ap"
    );
}

#[tokio::test]
async fn a_new_replicas_hold_starts_where_its_recorded_seeder_had_this_regions_changes() {
    let network = Network::new();
    let us = network.join("us");
    create_table(&us.engine);
    put(&us.store, "a");
    let definition = us.store.table_definition(TABLE).expect("a table");
    let held = us_and_eu(SharedSettings::of(&definition));
    let adopt = |held: Option<&GlobalTable>, global: GlobalTable| {
        let _guard = us.replicator.membership.lock();
        us.replicator
            .adopt(TABLE, &definition, held, global)
            .expect("adopted");
    };
    adopt(None, held.clone());
    put(&us.store, "b");
    // eu has had everything up to here from us.
    let acknowledged = us.store.next_seq();
    us.store
        .advance_hold(&peer_hold(&us.store, "eu"), acknowledged)
        .expect("advanced");
    put(&us.store, "c");

    // ap's new replica, seeded by eu, in a document us stamped last (as when us merges it
    // with a change of its own).
    let mut global = held.clone();
    global.restamp(&us.store, "us");
    global.replicas.insert(
        "ap".into(),
        Replica {
            stamp: Some(global.part_stamp()),
            ..Replica::creating("eu")
        },
    );
    adopt(Some(&held), global);

    assert_eq!(
        us.store.hold(&peer_hold(&us.store, "ap")).map(|h| h.from),
        Some(acknowledged),
        "ap gets from us what eu, its seeder, had not had from us (c), and no less"
    );
}

/// A change of `k` stamped by `region` at `clock`, as shipped.
fn stamped(k: &str, region: &str, clock: u64) -> WireChange {
    WireChange {
        table: TABLE.into(),
        keys: key(k),
        new_image: Some(key(k)),
        clock,
        region: region.into(),
    }
}

/// Waits (fifteen seconds at most, past a seeder's longest backoff) until `done`.
async fn within_seconds(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1_500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn a_batch_with_another_regions_change_is_refused_whole() {
    let network = Network::new();
    let (us, _eu) = global_pair(&network).await;
    let clock = us.store.clock().now_millis() << 16;
    let table_id = us.store.table_id(TABLE).expect("a table");
    let inbound = HoldName::Inbound { table_id };
    let held = us.store.hold(&inbound).map(|h| h.from);

    let refused = us.replicator.receive_changes(
        "eu",
        ChangeBatch {
            changes: vec![stamped("eu-own", "eu", clock), stamped("ap-s", "ap", clock)],
            delivered: BTreeMap::from([(TABLE.to_string(), clock)]),
        },
    );

    match refused {
        Err(Error::NotAllowed(message)) => assert_eq!(
            message,
            "a change batch from region eu carries a change of table orders stamped by region \
             ap; a region ships only its own changes, so the batch is refused whole"
        ),
        other => panic!("expected the batch to be refused, got {other:?}"),
    }
    assert_eq!(
        item_count(&us.store),
        3,
        "not even eu's own change is applied"
    );
    assert_eq!(
        us.replicator
            .inbound
            .lock()
            .get(&(TABLE.to_string(), "eu".to_string())),
        None,
        "nor its delivered-through clock taken"
    );
    assert_eq!(us.store.hold(&inbound).map(|h| h.from), held);

    let answer = us
        .replicator
        .receive_changes(
            "eu",
            ChangeBatch {
                changes: vec![stamped("eu-own", "eu", clock)],
                ..ChangeBatch::default()
            },
        )
        .expect("a batch of eu's own changes is applied");
    assert_eq!(answer.written, 1);
}

#[tokio::test]
async fn a_repair_carries_any_regions_cells_but_no_delivered_clocks() {
    let network = Network::new();
    let (us, _eu) = global_pair(&network).await;
    let clock = us.store.clock().now_millis() << 16;
    // Anti-entropy repairs with the newer cells eu holds, a third region's among them.
    let cells = vec![stamped("eu-own", "eu", clock), stamped("ap-s", "ap", clock)];
    let refused = us.replicator.receive_repair(
        "eu",
        ChangeBatch {
            changes: cells.clone(),
            delivered: BTreeMap::from([(TABLE.to_string(), clock)]),
        },
    );
    assert!(
        matches!(refused, Err(Error::NotAllowed(_))),
        "a repair says nothing of what regions delivered: {refused:?}"
    );
    let answer = us
        .replicator
        .receive_repair(
            "eu",
            ChangeBatch {
                changes: cells,
                ..ChangeBatch::default()
            },
        )
        .expect("a repair with a third region's cell is applied");
    assert_eq!(answer.written, 2);
    assert_eq!(item_count(&us.store), 5);
}

#[tokio::test]
async fn a_new_replica_is_seeded_with_every_regions_cells_by_its_seeder_alone() {
    let network = Network::new();
    let (us, eu) = global_pair(&network).await;
    let ap = network.join("ap");
    // A write made in eu, which us holds: the snapshot us seeds ap from carries eu's stamp.
    let clock = us.store.clock().now_millis() << 16;
    us.replicator
        .receive_changes(
            "eu",
            ChangeBatch {
                changes: vec![stamped("from-eu", "eu", clock)],
                ..ChangeBatch::default()
            },
        )
        .expect("eu's change is applied");
    // While eu cannot hear of ap, us does not start sending ap pages: ap's replica stays
    // CREATING, seeded by us.
    network.set_reachable(&eu, false);
    us.replicator
        .update_replicas(TABLE, create("ap"), VERSION)
        .await
        .expect("the replica is created");
    assert_eq!(status_in(&ap.store, "ap"), Some(ReplicaStatus::Creating));

    let page = || ChangeBatch {
        changes: vec![stamped("forged", "eu", clock + 1)],
        ..ChangeBatch::default()
    };
    match ap.replicator.receive_seed_page("eu", page()) {
        Err(Error::NotAllowed(message)) => assert_eq!(
            message,
            "region eu sent a seeding page of table orders, but it is not seeding this \
             region's replica of it; the page is refused"
        ),
        other => panic!("expected a page from a region that is not seeding refused: {other:?}"),
    }
    let with_clocks = ChangeBatch {
        delivered: BTreeMap::from([(TABLE.to_string(), clock)]),
        ..page()
    };
    assert!(
        matches!(
            ap.replicator.receive_seed_page("us", with_clocks),
            Err(Error::NotAllowed(_))
        ),
        "a seeding page carries no delivered-through clocks"
    );
    assert_eq!(item_count(&ap.store), 0, "nothing refused was applied");

    network.set_reachable(&eu, true);
    within_seconds("ap is ACTIVE in us and ap", || {
        status_in(&us.store, "ap") == Some(ReplicaStatus::Active)
            && status_in(&ap.store, "ap") == Some(ReplicaStatus::Active)
    })
    .await;
    assert_eq!(
        item_count(&ap.store),
        4,
        "us's three items and eu's, through the seeding path"
    );
    assert!(
        matches!(
            ap.replicator.receive_seed_page("us", page()),
            Err(Error::NotAllowed(_))
        ),
        "an ACTIVE replica takes no more seeding pages"
    );
}
