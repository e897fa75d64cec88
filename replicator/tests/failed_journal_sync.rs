//! A receiver whose journal sync fails never acknowledges the batch it applied, even under
//! `buffer`: the sender keeps it and sends it again (to this node restarted, after journal
//! recovery). Its own process, because the `journal-sync` failpoint fails every store of the
//! process it is set in.

use std::collections::BTreeMap;

use tidemark_core::model::{AttributeValue, Item};
use tidemark_core::ops::{CreateTableRequest, GetItemRequest};
use tidemark_core::{Durability, Engine, StoreConfig};
use tidemark_replicator::Replicator;
use tidemark_replicator::membership::{GlobalTable, Replica, SharedSettings, VERSION};
use tidemark_replicator::peers::{Peer, ReplicationConfig, Transport};
use tidemark_replicator::protocol::{ChangeBatch, CreateReplicaMessage, WireChange};

const TABLE: &str = "received";

fn keys(k: &str) -> Item {
    [("p".to_string(), AttributeValue::S(k.into()))].into()
}

#[test]
fn a_batch_is_not_acknowledged_when_the_journal_sync_fails() {
    // The definition a source region sends with a new replica.
    let source_dir = tempfile::tempdir().expect("a folder");
    let source = Engine::open(StoreConfig::for_tests(source_dir.path())).expect("open");
    source
        .tables
        .create_table(CreateTableRequest::on_demand(TABLE, "p", "S"))
        .expect("create");
    let definition = source.store.table_definition(TABLE).expect("a table");

    let dir = tempfile::tempdir().expect("a folder");
    let mut config = StoreConfig::new(dir.path());
    config.durability = Durability::Buffer;
    let receiver = Engine::open(config).expect("open");
    let replicator = Replicator::new(
        &receiver,
        ReplicationConfig {
            region: "us".into(),
            peers: vec![Peer::parse("eu=http://127.0.0.1:9").expect("a peer")],
            secret: None,
            transport: Transport::Direct,
        },
    );
    replicator
        .receive_create_replica(CreateReplicaMessage {
            global: GlobalTable {
                version: VERSION.into(),
                replicas: ["us", "eu"]
                    .iter()
                    .map(|r| (r.to_string(), Replica::active()))
                    .collect::<BTreeMap<_, _>>(),
                settings: SharedSettings::of(&definition),
                stamp_clock: 1,
                stamp_region: "eu".into(),
            },
            definition,
            adopt_existing: false,
        })
        .expect("a replica");

    fail::cfg("journal-sync", "return").expect("a failpoint action");
    let clock = receiver.store.clock().now_millis() << 16;
    let answer = replicator.receive_changes(
        "eu",
        ChangeBatch {
            changes: vec![WireChange {
                table: TABLE.into(),
                keys: keys("lost"),
                new_image: Some(keys("lost")),
                clock,
                region: "eu".into(),
            }],
            delivered: BTreeMap::new(),
        },
    );
    fail::remove("journal-sync");
    let visible = receiver
        .store
        .get_item(GetItemRequest {
            table_name: TABLE.into(),
            key: keys("lost"),
            ..Default::default()
        })
        .expect("a read")
        .item
        .is_some();
    assert!(visible, "the batch was applied (committed) before the sync");
    match answer {
        Err(tidemark_replicator::Error::Core(e)) => assert!(e.is_fatal(), "{e}"),
        other => panic!("a batch whose sync failed must not be acknowledged: {other:?}"),
    }
    assert!(
        receiver.store.halt().reason().is_some(),
        "the node stops: what reached its disk is unknown"
    );
}
