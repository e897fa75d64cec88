//! A global table's membership: which regions hold a replica, in what state, and the settings
//! every replica shares (billing, TTL, global secondary indexes). Every region keeps the same
//! document with the table (core's table extension `GlobalTable`); a change anywhere makes a
//! newer document, and regions keep the newest they have seen (last writer wins by its stamp),
//! so the group converges however the documents travel.
//!
//! A removed replica leaves the document at once and is recorded in it (`Removed`, with the
//! clock of the removal), so that the group does not wait for a region that may never answer
//! again, and a document made without hearing of the removal (the removed region's own, when
//! it comes back) neither wins the region back nor keeps it: [`GlobalTable::learn_removals`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidemark_core::model::{
    AttributeDefinition, GlobalSecondaryIndex, ProvisionedThroughput, TableDefinition,
};
use tidemark_core::{HlcTimestamp, Stamp, Store};

/// The table extension membership is kept in.
pub const EXTENSION: &str = "GlobalTable";
/// The current global tables version (UpdateTable `ReplicaUpdates`).
pub const VERSION: &str = "2019.11.21";
/// The legacy version (CreateGlobalTable, UpdateGlobalTable), still answered.
pub const LEGACY_VERSION: &str = "2017.11.29";

/// The state of one region's replica, as DynamoDB's `ReplicaStatus` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicaStatus {
    /// Being created and seeded from an existing replica.
    Creating,
    /// Seeding failed (the seeding region retries it).
    CreationFailed,
    /// Serving and replicating.
    Active,
    /// Being removed: the region drops its copy, the others stop shipping to it.
    Deleting,
}

impl ReplicaStatus {
    /// The name DynamoDB uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaStatus::Creating => "CREATING",
            ReplicaStatus::CreationFailed => "CREATION_FAILED",
            ReplicaStatus::Active => "ACTIVE",
            ReplicaStatus::Deleting => "DELETING",
        }
    }

    /// True while the replica takes replicated changes.
    pub fn receives_changes(self) -> bool {
        matches!(
            self,
            ReplicaStatus::Creating | ReplicaStatus::CreationFailed | ReplicaStatus::Active
        )
    }
}

/// One region's replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Replica {
    /// Its state.
    pub status: ReplicaStatus,
    /// Seeding progress in percent, while creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    /// The region seeding it, while creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeded_by: Option<String>,
}

impl Replica {
    /// A replica that is serving.
    pub fn active() -> Replica {
        Replica {
            status: ReplicaStatus::Active,
            progress: None,
            seeded_by: None,
        }
    }
}

/// The settings DynamoDB keeps the same in every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SharedSettings {
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub billing_mode: String,
    /// Capacity (zeros for on-demand tables).
    pub provisioned_throughput: ProvisionedThroughput,
    /// The TTL attribute, while TTL is enabled.
    #[serde(default)]
    pub time_to_live_attribute: Option<String>,
    /// Global secondary indexes.
    #[serde(default)]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    /// Attribute definitions (the table's and its indexes' keys).
    #[serde(default)]
    pub attribute_definitions: Vec<AttributeDefinition>,
}

impl SharedSettings {
    /// The shared settings of a table as stored.
    pub fn of(definition: &TableDefinition) -> SharedSettings {
        SharedSettings {
            billing_mode: definition.billing_mode.clone(),
            provisioned_throughput: definition.provisioned_throughput,
            time_to_live_attribute: definition.time_to_live_attribute.clone(),
            global_secondary_indexes: definition.global_secondary_indexes.clone(),
            attribute_definitions: definition.attribute_definitions.clone(),
        }
    }
}

/// A global table's membership document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GlobalTable {
    /// [`VERSION`], or [`LEGACY_VERSION`] for a group made with CreateGlobalTable.
    pub version: String,
    /// Every region holding a replica, this one included.
    pub replicas: BTreeMap<String, Replica>,
    /// The settings every replica shares.
    pub settings: SharedSettings,
    /// When and where this version of the document was made.
    pub stamp_clock: u64,
    /// The region that made this version.
    pub stamp_region: String,
    /// Regions removed from the group (ReplicaUpdates Delete), each with the clock of the
    /// document that removed it; kept after the region joins again, as what a document knows.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, u64>,
}

impl GlobalTable {
    /// The membership of `table` on this node, if it is a global table.
    pub fn of(store: &Store, table: &str) -> Option<GlobalTable> {
        let definition = store.table_definition(table).ok()?;
        Self::in_definition(&definition)
    }

    /// The membership a table definition holds, if any.
    pub fn in_definition(definition: &TableDefinition) -> Option<GlobalTable> {
        let value = definition.extensions.get(EXTENSION)?;
        match serde_json::from_value(value.clone()) {
            Ok(global) => Some(global),
            Err(e) => {
                tracing::error!(table = %definition.table_name, error = %e,
                    "the table's global table membership does not parse; it is ignored");
                None
            }
        }
    }

    /// Every global table on this node, with its name.
    pub fn all(store: &Store) -> Vec<(String, GlobalTable)> {
        store
            .tables_with_extension(EXTENSION)
            .into_iter()
            .filter_map(|t| Some((t.table_name, serde_json::from_value(t.value).ok()?)))
            .collect()
    }

    /// Saves this document with `table`, durably.
    ///
    /// # Errors
    /// The table does not exist; storage failures.
    pub fn save(&self, store: &Store, table: &str) -> tidemark_core::Result<()> {
        let value = serde_json::to_value(self)
            .map_err(|e| tidemark_core::Error::Internal(e.to_string()))?;
        store.set_table_extension(table, EXTENSION, Some(value))
    }

    /// Removes the membership from `table` (it is a single-region table again).
    ///
    /// # Errors
    /// The table does not exist; storage failures.
    pub fn clear(store: &Store, table: &str) -> tidemark_core::Result<()> {
        store.set_table_extension(table, EXTENSION, None)
    }

    /// The document's stamp.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            hlc: HlcTimestamp(self.stamp_clock),
            region: self.stamp_region.clone(),
        }
    }

    /// True when this document replaces `other` (last writer wins, as for items).
    pub fn supersedes(&self, other: Option<&GlobalTable>) -> bool {
        self.stamp()
            .wins_over(other.map(GlobalTable::stamp).as_ref())
    }

    /// Restamps the document as made now by `region`, after every version it replaces.
    pub fn restamp(&mut self, store: &Store, region: &str) {
        let now = HlcTimestamp(store.clock().now_millis() << 16);
        self.stamp_clock = now.0.max(self.stamp_clock + 1);
        self.stamp_region = region.to_string();
    }

    /// Removes `region`'s replica, recording the removal at this document's stamp (so restamp
    /// it first).
    pub fn remove_region(&mut self, region: &str) {
        self.replicas.remove(region);
        self.removed.insert(region.to_string(), self.stamp_clock);
    }

    /// True when `region` was removed by a document this one has heard of and not named again.
    pub fn has_removed(&self, region: &str) -> bool {
        self.removed.contains_key(region) && !self.replicas.contains_key(region)
    }

    /// Takes in the removals `other` records that this document had not heard of: a region
    /// removed there after anything this document knows leaves it too, unless `other` names it
    /// again. Returns whether anything changed (then the document must be restamped).
    pub fn learn_removals(&mut self, other: &GlobalTable) -> bool {
        let mut changed = false;
        for (region, &clock) in &other.removed {
            if self
                .removed
                .get(region)
                .is_some_and(|known| *known >= clock)
            {
                continue;
            }
            self.removed.insert(region.clone(), clock);
            if !other.replicas.contains_key(region) {
                self.replicas.remove(region);
            }
            changed = true;
        }
        changed
    }

    /// The regions other than `region` that take replicated changes.
    pub fn receivers_besides<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a str> {
        self.replicas
            .iter()
            .filter(move |(r, replica)| *r != region && replica.status.receives_changes())
            .map(|(r, _)| r.as_str())
    }

    /// True while a replica is being created or deleted (the table is `UPDATING`).
    pub fn is_updating(&self) -> bool {
        self.replicas
            .values()
            .any(|r| r.status != ReplicaStatus::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(clock: u64, region: &str) -> GlobalTable {
        GlobalTable {
            version: VERSION.into(),
            replicas: BTreeMap::from([
                ("eu".to_string(), Replica::active()),
                ("us".to_string(), Replica::active()),
            ]),
            settings: SharedSettings {
                billing_mode: "PAY_PER_REQUEST".into(),
                provisioned_throughput: ProvisionedThroughput {
                    read_capacity_units: 0,
                    write_capacity_units: 0,
                },
                time_to_live_attribute: None,
                global_secondary_indexes: Vec::new(),
                attribute_definitions: Vec::new(),
            },
            stamp_clock: clock,
            stamp_region: region.into(),
            removed: BTreeMap::new(),
        }
    }

    #[test]
    fn newer_documents_supersede_and_ties_break_by_region() {
        let old = document(5, "us");
        assert!(document(6, "eu").supersedes(Some(&old)));
        assert!(!document(4, "zz").supersedes(Some(&old)));
        assert!(
            !old.supersedes(Some(&old)),
            "the same document twice is a no-op"
        );
        assert!(document(5, "za").supersedes(Some(&old)));
        assert!(old.supersedes(None));
    }

    #[test]
    fn deleting_replicas_take_no_changes() {
        let mut doc = document(1, "us");
        doc.replicas.insert(
            "ap".into(),
            Replica {
                status: ReplicaStatus::Deleting,
                progress: None,
                seeded_by: None,
            },
        );
        let receivers: Vec<&str> = doc.receivers_besides("us").collect();
        assert_eq!(receivers, ["eu"]);
        assert!(doc.is_updating());
    }

    #[test]
    fn a_document_that_had_not_heard_of_a_removal_learns_it() {
        let mut removing = document(10, "us");
        removing.remove_region("eu");
        assert_eq!(removing.removed, BTreeMap::from([("eu".to_string(), 10)]));
        assert!(removing.has_removed("eu"));

        // eu's own document, newer by its stamp but made without hearing of the removal.
        let mut stale = document(20, "eu");
        assert!(stale.learn_removals(&removing));
        assert!(!stale.replicas.contains_key("eu"), "eu is out however new");
        assert_eq!(stale.removed, removing.removed);
        assert!(!stale.learn_removals(&removing), "learnt once");

        // eu joins again after its removal: a document that knows the removal keeps it in.
        let mut rejoined = removing.clone();
        rejoined.replicas.insert("eu".into(), Replica::active());
        assert!(!rejoined.has_removed("eu"));
        let mut knowing = document(30, "us");
        knowing.removed = removing.removed.clone();
        assert!(!knowing.learn_removals(&removing));
        assert!(knowing.replicas.contains_key("eu"));
        // A document that had not heard of the removal learns it, but keeps eu named when
        // the document it learns from names eu again.
        let mut older = document(5, "us");
        assert!(older.learn_removals(&rejoined));
        assert!(older.replicas.contains_key("eu"));
    }

    #[test]
    fn documents_without_removals_still_read() {
        let json = serde_json::json!({
            "Version": VERSION,
            "Replicas": {"us": {"Status": "ACTIVE"}},
            "Settings": {
                "BillingMode": "PAY_PER_REQUEST",
                "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
            },
            "StampClock": 3,
            "StampRegion": "us"
        });
        let doc: GlobalTable = serde_json::from_value(json).expect("an older document parses");
        assert!(doc.removed.is_empty());
        assert!(
            serde_json::to_value(&doc)
                .expect("json")
                .get("Removed")
                .is_none(),
            "nothing new is written while nothing was removed"
        );
    }

    #[test]
    fn the_document_round_trips_as_json() {
        let doc = document(7, "eu");
        let json = serde_json::to_value(&doc).expect("serializes");
        assert_eq!(json["Replicas"]["eu"]["Status"], "ACTIVE");
        assert_eq!(
            serde_json::from_value::<GlobalTable>(json).expect("parses"),
            doc
        );
    }
}
