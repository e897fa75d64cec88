//! What the replicator's unit tests share: a region's replicator on a real store, and a table
//! made global by hand, as a membership exchange would leave it.

use std::sync::Arc;

use tidemark_core::Engine;
use tidemark_core::ops::CreateTableRequest;

use crate::Replicator;
use crate::membership::{GlobalTable, Replica, SharedSettings, VERSION};
use crate::peers::{Peer, ReplicationConfig};
use crate::protocol::ChangeBatch;

/// The replicator of `region` on `engine` (direct transport), its peers given as `REGION=URL`.
pub(crate) fn replicator(engine: &Engine, region: &str, peers: &[&str]) -> Arc<Replicator> {
    Replicator::new(
        engine,
        ReplicationConfig {
            region: region.into(),
            peers: peers
                .iter()
                .map(|p| Peer::parse(p).expect("a peer"))
                .collect(),
            ..ReplicationConfig::default()
        },
    )
}

/// Delivers `from`'s report, as its shipper's heartbeats carry it, that every change of its
/// own of `table` up to `clock` has reached `replicator`.
pub(crate) fn heartbeat(replicator: &Replicator, from: &str, table: &str, clock: u64) {
    replicator
        .receive_changes(
            from,
            ChangeBatch {
                changes: Vec::new(),
                delivered: [(table.to_string(), clock)].into(),
            },
        )
        .expect("a heartbeat");
}

/// Makes `table` (created first, keyed by the string `p`, when it does not exist) a global
/// table of `replicas`, adopted by `replicator` as a document region `us` stamped at
/// `stamp_clock`, so its holds are set as membership would set them.
pub(crate) fn make_global(
    engine: &Engine,
    replicator: &Replicator,
    table: &str,
    replicas: &[(&str, Replica)],
    stamp_clock: u64,
) {
    if engine.store.table_definition(table).is_err() {
        engine
            .tables
            .create_table(CreateTableRequest::on_demand(table, "p", "S"))
            .expect("create");
    }
    let definition = engine.store.table_definition(table).expect("a table");
    let global = GlobalTable {
        version: VERSION.into(),
        replicas: replicas
            .iter()
            .map(|(region, replica)| (region.to_string(), replica.clone()))
            .collect(),
        settings: SharedSettings::of(&definition),
        stamp_clock,
        stamp_region: "us".into(),
        removed: Default::default(),
        setting_stamps: Default::default(),
    };
    let _guard = replicator.membership.lock();
    replicator
        .adopt(table, &definition, None, global)
        .expect("global");
}

/// Every region of `regions`, with an ACTIVE replica.
pub(crate) fn active(regions: &[&'static str]) -> Vec<(&'static str, Replica)> {
    regions.iter().map(|r| (*r, Replica::active())).collect()
}
