//! The bound on what this node keeps for a region that does not answer (`--peer-hold-limit`),
//! and the replicas that, in this node's view, must be re-seeded: because of that bound, or
//! because the region's changes of a table were lost to this node (Kafka transport: its read
//! position fell out of the region's topic).
//!
//! A region away keeps history here in two ways: its hold `peer/<region>/<table id>` keeps
//! this node's own changes it has not acknowledged (direct transport), and it pins
//! `inbound/<table id>` (the tombstones an older write of its could still need; both
//! transports). Once it is unreachable and the oldest of that history is older than the
//! limit, this node lets go of it: the peer hold is released, the region no longer pins the
//! inbound hold, and the replica is recorded, durably (the table extension [`EXTENSION`]), as
//! needing a re-seed. From then on, until the replica is re-seeded (`antientropy::reseed`,
//! once the region answers again), removed or created again, this node ships nothing of the
//! table to it and refuses its changes of the table (which could bring back items whose
//! tombstones went meanwhile); through Kafka it does not read the region's topic of the
//! table. It is reported in DescribeTable, `GET /admin/replicas`, the gauge
//! `tidemark_replication_reseed_needed` and an error line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidemark_core::Store;
use tidemark_core::model::TableDefinition;
use tidemark_core::retention::HoldName;

use crate::membership::{GlobalTable, ReplicaStatus};
use crate::{Replicator, Result};

/// The table extension holding, per region, when this node let go of what it held for it (in
/// milliseconds since the epoch).
pub const EXTENSION: &str = "GlobalTableReseed";

/// Why this node stopped replicating a table with a region until it is re-seeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ReseedCause {
    /// The region did not answer while the history kept for it grew older than
    /// `--peer-hold-limit`.
    #[default]
    HoldLimit,
    /// The region's topic of the table (Kafka transport) no longer holds this node's read
    /// position: changes of the region's were lost to this node.
    LostTopicPosition,
}

impl ReseedCause {
    /// What DescribeTable says of a replica that needs a re-seed for this cause.
    pub fn description(self) -> &'static str {
        match self {
            ReseedCause::HoldLimit => {
                "Replication to this replica stopped: its region did not answer while the \
                 history kept for it grew older than --peer-hold-limit. It is re-seeded by \
                 itself when its region answers again."
            }
            ReseedCause::LostTopicPosition => {
                "Replication from this replica stopped: its replication topic no longer holds \
                 changes this region had not read (retention, or a broker that lost data). It \
                 is re-seeded by itself when its region answers."
            }
        }
    }
}

/// What this node recorded when it let go of a region's replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Reseed {
    /// When this node let go (milliseconds since the epoch).
    pub at_millis: u64,
    /// The clock up to which the region had delivered all its own changes of the table here
    /// when this node let go (a lower bound when it had not reported since this node
    /// started): a cell of the region's stamped up to it was here once, so one missing here
    /// now was deleted (see `antientropy::reseed`).
    pub delivered_clock: u64,
    /// Why (records made before it was kept were all for the hold limit).
    #[serde(default)]
    pub cause: ReseedCause,
}

/// A record as stored: records made before the delivered clock was kept hold only the
/// millisecond, and vouch for nothing having been here.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Record(Reseed),
    Millis(u64),
}

/// The regions whose replica of the table `definition` describes needs a re-seed, in this
/// node's view, with what was recorded when that was found.
pub fn reseed_needed(definition: &TableDefinition) -> BTreeMap<String, Reseed> {
    records(definition.extensions.get(EXTENSION))
}

/// The records an [`EXTENSION`] value holds.
fn records(value: Option<&serde_json::Value>) -> BTreeMap<String, Reseed> {
    let stored: BTreeMap<String, Stored> = value
        .and_then(|value| serde_json::from_value(value.clone()).ok())
        .unwrap_or_default();
    stored
        .into_iter()
        .map(|(region, record)| {
            let record = match record {
                Stored::Record(record) => record,
                Stored::Millis(at_millis) => Reseed {
                    at_millis,
                    delivered_clock: 0,
                    cause: ReseedCause::HoldLimit,
                },
            };
            (region, record)
        })
        .collect()
}

/// Saves `regions` as the replicas of `table` needing a re-seed.
pub(crate) fn save(store: &Store, table: &str, regions: &BTreeMap<String, Reseed>) -> Result<()> {
    let value = match regions.is_empty() {
        true => None,
        false => Some(
            serde_json::to_value(regions)
                .map_err(|e| tidemark_core::Error::Internal(e.to_string()))?,
        ),
    };
    store.set_table_extension(table, EXTENSION, value)?;
    Ok(())
}

impl Replicator {
    /// True when `region`'s replica of `table` needs a re-seed in this node's view.
    pub(crate) fn needs_reseed(&self, table: &str, region: &str) -> bool {
        self.store
            .table_definition(table)
            .is_ok_and(|definition| reseed_needed(&definition).contains_key(region))
    }

    /// True when this node let go of what it kept for `region` of the table `table_id`: no
    /// hold is set for it again until its replica is created again.
    pub(crate) fn let_go_of(&self, region: &str, table_id: tidemark_core::TableId) -> bool {
        self.store
            .tables_with_extension(EXTENSION)
            .into_iter()
            .filter(|t| t.table_id == table_id)
            .any(|t| t.value.get(region).is_some())
    }

    /// Forgets the re-seeds of replicas that `new` no longer names as ACTIVE (removed, or
    /// created again: a new replica is seeded from scratch). Called under the membership
    /// lock, before the holds are aligned.
    pub(crate) fn forget_reseeds(
        &self,
        table: &str,
        definition: &TableDefinition,
        new: &GlobalTable,
    ) -> Result<()> {
        let mut regions = reseed_needed(definition);
        let before = regions.len();
        regions.retain(|region, _| {
            new.replicas
                .get(region)
                .is_some_and(|r| r.status == ReplicaStatus::Active)
        });
        if regions.len() != before {
            save(&self.store, table, &regions)?;
        }
        Ok(())
    }

    /// Lets go of what this node keeps for every region that does not answer once the oldest
    /// of it is older than the limit, and reports the replicas needing a re-seed.
    pub(crate) fn enforce_hold_limit(&self) -> Result<()> {
        let limit = u64::try_from(self.config.peer_hold_limit.0.as_millis()).unwrap_or(u64::MAX);
        let now = self.store.clock().now_millis();
        let mut marked: BTreeMap<String, u64> = self
            .config
            .peers
            .iter()
            .map(|p| (p.region.clone(), 0))
            .collect();
        for (table, global) in GlobalTable::all(&self.store) {
            let Ok(definition) = self.store.table_definition(&table) else {
                continue;
            };
            let needed = reseed_needed(&definition);
            for (region, replica) in &global.replicas {
                if region == self.region() || replica.status != ReplicaStatus::Active {
                    continue;
                }
                if needed.contains_key(region) {
                    *marked.entry(region.clone()).or_default() += 1;
                    continue;
                }
                let link = self.link(region);
                if link.reachable || link.last_error.is_none() {
                    continue;
                }
                let held_for = self.oldest_held_for(definition.table_id, region, now)?;
                if held_for > limit {
                    let why = format!(
                        "the peer has not answered while the history kept for it grew older \
                         than --peer-hold-limit ({held_for} ms): it is no longer kept, \
                         replication of this table to and from the peer stopped"
                    );
                    self.let_go(&table, region, ReseedCause::HoldLimit, &why)?;
                    *marked.entry(region.clone()).or_default() += 1;
                }
            }
        }
        for (region, tables) in marked {
            metrics::gauge!("tidemark_replication_reseed_needed", "peer" => region)
                .set(tables as f64);
        }
        Ok(())
    }

    /// How old, in milliseconds, the oldest history this node keeps for `region` of a table
    /// is: its own changes `region` has not acknowledged, and the tombstones the inbound hold
    /// keeps (which `region`, not answering, pins).
    fn oldest_held_for(
        &self,
        table_id: tidemark_core::TableId,
        region: &str,
        now: u64,
    ) -> Result<u64> {
        let holds = [
            HoldName::Peer {
                region: region.to_string(),
                table_id,
            },
            HoldName::Inbound { table_id },
        ];
        let mut oldest = 0;
        for name in holds {
            let Some(hold) = self.store.hold(&name) else {
                continue;
            };
            if let Some(millis) = self.store.table_lag(table_id, hold.from)?.oldest_millis {
                oldest = oldest.max(now.saturating_sub(millis));
            }
        }
        Ok(oldest)
    }

    /// Records that `region`'s replica of `table` needs a re-seed, for `cause` (said in
    /// words in `why`), and releases its hold. Blocking.
    pub(crate) fn let_go(
        &self,
        table: &str,
        region: &str,
        cause: ReseedCause,
        why: &str,
    ) -> Result<()> {
        let guard = self.membership.lock();
        let definition = self.store.table_definition(table)?;
        let mut regions = reseed_needed(&definition);
        // What the region had delivered; unknown since a restart, the trim horizon is below
        // it, as the inbound hold the region pinned kept everything after what it delivered.
        let delivered = self
            .inbound
            .lock()
            .get(&(table.to_string(), region.to_string()))
            .copied();
        let delivered_clock = match delivered {
            Some(clock) => clock,
            None => self.replication.trim_horizon()?.0,
        };
        let record = Reseed {
            at_millis: self.store.clock().now_millis(),
            delivered_clock,
            cause,
        };
        regions.insert(region.to_string(), record);
        save(&self.store, table, &regions)?;
        self.store.release_hold(&HoldName::Peer {
            region: region.to_string(),
            table_id: definition.table_id,
        })?;
        tracing::error!(
            table,
            peer = region,
            "{why}; the peer's replica needs a re-seed (done by itself when it answers)"
        );
        self.membership_changed();
        drop(guard);
        // The tombstones it pinned go now, not at the next region's report (there may be
        // none).
        self.move_inbound_hold(table)
    }
}

#[cfg(test)]
mod tests {
    use tidemark_core::ops::CreateTableRequest;
    use tidemark_core::{Engine, StoreConfig};

    use super::*;
    use crate::peers::{Peer, ReplicationConfig};

    const TABLE: &str = "kept";

    fn open(dir: &std::path::Path) -> (Engine, std::sync::Arc<Replicator>) {
        let engine = Engine::open(StoreConfig::for_tests(dir)).expect("open");
        let replicator = Replicator::new(
            &engine,
            ReplicationConfig {
                region: "us".into(),
                peers: vec![Peer::parse("eu=http://127.0.0.1:9").expect("a peer")],
                ..ReplicationConfig::default()
            },
        );
        (engine, replicator)
    }

    #[test]
    fn a_record_of_the_millisecond_alone_vouches_for_nothing_delivered() {
        assert_eq!(
            records(Some(&serde_json::json!({"eu": 5}))),
            BTreeMap::from([(
                "eu".to_string(),
                Reseed {
                    at_millis: 5,
                    delivered_clock: 0,
                    cause: ReseedCause::HoldLimit,
                }
            )])
        );
    }

    #[test]
    fn a_replica_let_go_of_stays_so_across_a_restart() {
        let dir = tempfile::tempdir().expect("a folder");
        let table_id = {
            let (engine, replicator) = open(dir.path());
            engine
                .tables
                .create_table(CreateTableRequest::on_demand(TABLE, "p", "S"))
                .expect("a table");
            let table_id = engine.store.table_id(TABLE).expect("a table");
            let hold = HoldName::Peer {
                region: "eu".into(),
                table_id,
            };
            engine
                .store
                .set_hold(&hold, Some(table_id), engine.store.next_seq())
                .expect("a hold for eu");
            replicator
                .let_go(TABLE, "eu", ReseedCause::HoldLimit, "a test lets go")
                .expect("let go");
            assert!(engine.store.hold(&hold).is_none());
            table_id
        };

        let (_engine, replicator) = open(dir.path());
        assert!(replicator.needs_reseed(TABLE, "eu"));
        assert!(replicator.let_go_of("eu", table_id));
        assert!(!replicator.let_go_of("ap", table_id));
    }
}
