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
//!
//! Two regions may change the document at once (during a partition, or just within one
//! exchange period), so documents are merged rather than one replacing the other
//! ([`GlobalTable::merge`]): each shared setting is a register with its own stamp (billing
//! and capacity as one, the TTL attribute as one, each global secondary index by name, a
//! deleted index keeping its stamp as a stamped absence), each replica entry has its own
//! stamp, and removals are the remove-set `Removed`; the merge takes the newer of every
//! register. The document's own stamp still says which version is newest as a whole (and
//! what an older node, which replaces documents whole, compares). A register without its own
//! stamp (a document from an older node) has the document's.

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

/// When and where one part of a membership document (a setting, a replica entry) was last
/// changed. Ordered as item stamps are: clock, then region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartStamp {
    /// The clock of the document that made the change.
    pub clock: u64,
    /// The region that made it.
    pub region: String,
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
    /// When this entry was last changed (`None` in documents from older nodes: the
    /// document's stamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<PartStamp>,
}

impl Replica {
    /// A replica that is serving.
    pub fn active() -> Replica {
        Replica {
            status: ReplicaStatus::Active,
            progress: None,
            seeded_by: None,
            stamp: None,
        }
    }

    /// A new replica, being created and seeded by the region `seeder`.
    pub fn creating(seeder: &str) -> Replica {
        Replica {
            status: ReplicaStatus::Creating,
            progress: Some(0),
            seeded_by: Some(seeder.to_string()),
            stamp: None,
        }
    }

    /// The entry without its stamp: what it says, to compare.
    pub fn unstamped(&self) -> Replica {
        Replica {
            stamp: None,
            ..self.clone()
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

/// When each shared setting was last changed. A setting without a stamp here (every one, in
/// documents from older nodes) was last changed by the document's own stamp.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SettingStamps {
    /// Billing mode and provisioned throughput, one register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<PartStamp>,
    /// The TTL attribute (enabled or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<PartStamp>,
    /// Per global secondary index name, present or deleted (a deleted index keeps its stamp,
    /// so that an older document naming it does not bring it back).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub indexes: BTreeMap<String, PartStamp>,
}

impl SettingStamps {
    /// True for a document from an older node, which stamped nothing per setting.
    pub fn is_unset(&self) -> bool {
        self.capacity.is_none() && self.time_to_live.is_none() && self.indexes.is_empty()
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
    /// When each shared setting was last changed.
    #[serde(default, skip_serializing_if = "SettingStamps::is_unset")]
    pub setting_stamps: SettingStamps,
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

    /// The document's stamp, as a part's.
    pub fn part_stamp(&self) -> PartStamp {
        PartStamp {
            clock: self.stamp_clock,
            region: self.stamp_region.clone(),
        }
    }

    /// Restamps the document as made now by `region`, after every version it replaces. Every
    /// part keeps the stamp it had (a part that had none gets the old document stamp first),
    /// so that only what the caller changes next is newer.
    pub fn restamp(&mut self, store: &Store, region: &str) {
        self.pin_stamps(None);
        let now = HlcTimestamp(store.clock().now_millis() << 16);
        self.stamp_clock = now.0.max(self.stamp_clock + 1);
        self.stamp_region = region.to_string();
    }

    /// Gives every part without a stamp of its own the document's stamp, and, for a document
    /// from an older node (nothing stamped per setting), a stamped absence to every index
    /// `other` names that this document does not: an older node replaced documents whole, so
    /// what it left out it had deleted, as of its stamp.
    fn pin_stamps(&mut self, other: Option<&GlobalTable>) {
        let own = self.part_stamp();
        if self.setting_stamps.is_unset()
            && let Some(other) = other
        {
            let names = other
                .settings
                .global_secondary_indexes
                .iter()
                .map(|i| &i.index_name)
                .chain(other.setting_stamps.indexes.keys());
            for name in names {
                self.setting_stamps
                    .indexes
                    .entry(name.clone())
                    .or_insert_with(|| own.clone());
            }
        }
        let stamps = &mut self.setting_stamps;
        stamps.capacity.get_or_insert_with(|| own.clone());
        stamps.time_to_live.get_or_insert_with(|| own.clone());
        for index in &self.settings.global_secondary_indexes {
            stamps
                .indexes
                .entry(index.index_name.clone())
                .or_insert_with(|| own.clone());
        }
        for replica in self.replicas.values_mut() {
            replica.stamp.get_or_insert_with(|| own.clone());
        }
    }

    /// Takes `local`, the shared settings of this region's table after a change here, into
    /// the document: the settings that differ get the document's stamp (so restamp it first);
    /// the others keep theirs. Returns whether anything differed.
    pub fn record_settings(&mut self, local: &SharedSettings) -> bool {
        let stamp = self.part_stamp();
        let mut changed = false;
        let held = &mut self.settings;
        if held.billing_mode != local.billing_mode
            || held.provisioned_throughput != local.provisioned_throughput
        {
            held.billing_mode = local.billing_mode.clone();
            held.provisioned_throughput = local.provisioned_throughput;
            self.setting_stamps.capacity = Some(stamp.clone());
            changed = true;
        }
        if held.time_to_live_attribute != local.time_to_live_attribute {
            held.time_to_live_attribute = local.time_to_live_attribute.clone();
            self.setting_stamps.time_to_live = Some(stamp.clone());
            changed = true;
        }
        let index_names: std::collections::BTreeSet<&String> = held
            .global_secondary_indexes
            .iter()
            .chain(&local.global_secondary_indexes)
            .map(|i| &i.index_name)
            .collect();
        for name in index_names {
            let find = |list: &[GlobalSecondaryIndex]| {
                list.iter().find(|i| &i.index_name == name).cloned()
            };
            if find(&held.global_secondary_indexes) != find(&local.global_secondary_indexes) {
                self.setting_stamps
                    .indexes
                    .insert(name.clone(), stamp.clone());
                changed = true;
            }
        }
        let by_name = |list: &[AttributeDefinition]| -> BTreeMap<String, String> {
            list.iter()
                .map(|d| (d.attribute_name.clone(), d.attribute_type.clone()))
                .collect()
        };
        if by_name(&held.attribute_definitions) != by_name(&local.attribute_definitions) {
            changed = true;
        }
        if changed {
            held.global_secondary_indexes = local.global_secondary_indexes.clone();
            held.attribute_definitions = local.attribute_definitions.clone();
        }
        changed
    }

    /// The document both this one and `other` lead to: for every shared setting and replica
    /// entry the newer of the two, every removal either records (a replica entry stays only if
    /// it is newer than its region's last removal), and the version and document stamp of the
    /// newer document. Neither side's change is lost, in whatever order documents meet.
    pub fn merge(&self, other: &GlobalTable) -> GlobalTable {
        let replicas = self.merged_replicas(other);
        let (mut a, mut b) = (self.clone(), other.clone());
        a.pin_stamps(Some(other));
        b.pin_stamps(Some(self));
        let (newer, older) = match b.supersedes(Some(&a)) {
            true => (b, a),
            false => (a, b),
        };
        let mut out = newer.clone();
        out.replicas = replicas;
        for (region, clock) in &older.removed {
            let known = out.removed.entry(region.clone()).or_insert(*clock);
            *known = (*known).max(*clock);
        }
        let (stamps, older_stamps) = (&mut out.setting_stamps, &older.setting_stamps);
        if older_stamps.capacity > stamps.capacity {
            stamps.capacity = older_stamps.capacity.clone();
            out.settings.billing_mode = older.settings.billing_mode.clone();
            out.settings.provisioned_throughput = older.settings.provisioned_throughput;
        }
        if older_stamps.time_to_live > stamps.time_to_live {
            stamps.time_to_live = older_stamps.time_to_live.clone();
            out.settings.time_to_live_attribute = older.settings.time_to_live_attribute.clone();
        }
        for (name, stamp) in &older_stamps.indexes {
            if stamps.indexes.get(name).is_some_and(|held| held >= stamp) {
                continue;
            }
            stamps.indexes.insert(name.clone(), stamp.clone());
            let indexes = &mut out.settings.global_secondary_indexes;
            indexes.retain(|i| &i.index_name != name);
            if let Some(index) = older
                .settings
                .global_secondary_indexes
                .iter()
                .find(|i| &i.index_name == name)
            {
                indexes.push(index.clone());
            }
        }
        out.settings.attribute_definitions = merged_attribute_definitions(
            &newer.settings.attribute_definitions,
            &older.settings.attribute_definitions,
            &out.settings.global_secondary_indexes,
        );
        out
    }

    /// The replica entries of the merge of this document and `other`: per region the newer
    /// entry, unless the region was removed after it (by either document). An entry without a
    /// stamp (from an older node) outlives a removal only when its document knew of it.
    fn merged_replicas(&self, other: &GlobalTable) -> BTreeMap<String, Replica> {
        let removal = |region: &str| {
            let ours = self.removed.get(region).copied();
            ours.max(other.removed.get(region).copied())
        };
        let mut out = BTreeMap::new();
        for from in [self, other] {
            for (region, replica) in &from.replicas {
                let stamp = replica.stamp.clone().unwrap_or_else(|| from.part_stamp());
                let outlives_removal = match (removal(region), &replica.stamp) {
                    (None, _) => true,
                    (Some(removed), Some(stamp)) => stamp.clock > removed,
                    (Some(removed), None) => from.removed.get(region) >= Some(&removed),
                };
                let newer = match out.get(region) {
                    Some(Replica {
                        stamp: Some(held), ..
                    }) => stamp > *held,
                    _ => true,
                };
                if outlives_removal && newer {
                    out.insert(
                        region.clone(),
                        Replica {
                            stamp: Some(stamp),
                            ..replica.clone()
                        },
                    );
                }
            }
        }
        out
    }

    /// True when this document says everything `other` says (it is `other`, or newer in
    /// every part): merging `other` into it changes nothing.
    pub fn includes(&self, other: &GlobalTable) -> bool {
        self.merge(other).same_content(self)
    }

    /// True when the two documents say the same, whatever their document stamps and however
    /// the parts' stamps were written (a part without a stamp has the document's).
    pub fn same_content(&self, other: &GlobalTable) -> bool {
        let comparable = |doc: &GlobalTable| {
            let mut doc = doc.clone();
            doc.pin_stamps(None);
            doc.stamp_clock = 0;
            doc.stamp_region = String::new();
            doc.settings
                .global_secondary_indexes
                .sort_by(|a, b| a.index_name.cmp(&b.index_name));
            doc.settings
                .attribute_definitions
                .sort_by(|a, b| a.attribute_name.cmp(&b.attribute_name));
            doc
        };
        comparable(self) == comparable(other)
    }

    /// Removes `region`'s replica, recording the removal at this document's stamp (so restamp
    /// it first). Every removal is recorded, as the remove-set of the replica entries: a
    /// document that still names the region does not bring it back on merging.
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

/// The attribute definitions of a merge: each attribute either document defines (`newer`'s
/// type first), kept when both define it (the table's own keys are in every document) or a
/// present index has it as a key (an attribute only one side defined belongs to an index that
/// side added, so it goes when the index lost).
fn merged_attribute_definitions(
    newer: &[AttributeDefinition],
    older: &[AttributeDefinition],
    indexes: &[GlobalSecondaryIndex],
) -> Vec<AttributeDefinition> {
    let defines =
        |list: &[AttributeDefinition], name: &str| list.iter().any(|d| d.attribute_name == name);
    let index_key = |name: &str| {
        indexes
            .iter()
            .flat_map(|i| &i.key_schema)
            .any(|k| k.attribute_name == name)
    };
    let mut out: Vec<AttributeDefinition> = Vec::new();
    for definition in newer.iter().chain(older) {
        let name = definition.attribute_name.as_str();
        if defines(&out, name) {
            continue;
        }
        if (defines(newer, name) && defines(older, name)) || index_key(name) {
            out.push(definition.clone());
        }
    }
    out
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
            setting_stamps: Default::default(),
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
                ..Replica::active()
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

    /// `doc` restamped at `clock` by `region`, as [`GlobalTable::restamp`] does with a clock.
    fn restamped(doc: &GlobalTable, clock: u64, region: &str) -> GlobalTable {
        let mut doc = doc.clone();
        doc.pin_stamps(None);
        doc.stamp_clock = clock;
        doc.stamp_region = region.into();
        doc
    }

    fn index(name: &str, key: &str) -> GlobalSecondaryIndex {
        GlobalSecondaryIndex {
            index_name: name.into(),
            key_schema: vec![tidemark_core::model::KeySchemaElement {
                attribute_name: key.into(),
                key_type: "HASH".into(),
            }],
            projection: tidemark_core::model::Projection {
                projection_type: Some("ALL".into()),
                non_key_attributes: None,
            },
            provisioned_throughput: None,
        }
    }

    fn defined(name: &str) -> AttributeDefinition {
        AttributeDefinition {
            attribute_name: name.into(),
            attribute_type: "S".into(),
        }
    }

    /// `doc` with `settings` changed here, as `settings_changed` records it.
    fn changed(doc: &GlobalTable, change: impl FnOnce(&mut SharedSettings)) -> GlobalTable {
        let mut settings = doc.settings.clone();
        change(&mut settings);
        let mut doc = doc.clone();
        assert!(doc.record_settings(&settings));
        doc
    }

    #[test]
    fn settings_changed_in_two_documents_both_survive_their_merge() {
        let mut base = document(1, "us");
        base.settings.attribute_definitions = vec![defined("p")];
        let base = restamped(&base, 2, "us");
        let ttl = changed(&restamped(&base, 5, "us"), |s| {
            s.time_to_live_attribute = Some("expires".into())
        });
        let indexed = changed(&restamped(&base, 6, "eu"), |s| {
            s.global_secondary_indexes.push(index("by_g", "g"));
            s.attribute_definitions.push(defined("g"));
        });
        assert_eq!(
            ttl.setting_stamps.capacity, base.setting_stamps.capacity,
            "an unchanged setting keeps its stamp"
        );

        let merged = ttl.merge(&indexed);
        assert!(merged.same_content(&indexed.merge(&ttl)), "in any order");
        assert_eq!(
            merged.stamp(),
            indexed.stamp(),
            "the newer document's stamp"
        );
        assert_eq!(
            merged.settings.time_to_live_attribute.as_deref(),
            Some("expires")
        );
        assert_eq!(
            merged.settings.global_secondary_indexes,
            [index("by_g", "g")]
        );
        assert_eq!(
            merged.settings.attribute_definitions,
            [defined("p"), defined("g")]
        );
        assert!(merged.includes(&ttl) && merged.includes(&indexed));
        assert!(!ttl.includes(&indexed) && !indexed.includes(&ttl));

        // A deleted index is a stamped absence: an older document naming it does not bring
        // it back, and its key attribute goes with it.
        let deleted = changed(&restamped(&merged, 9, "us"), |s| {
            s.global_secondary_indexes.clear();
            s.attribute_definitions.retain(|d| d.attribute_name != "g");
        });
        for merged in [deleted.merge(&indexed), indexed.merge(&deleted)] {
            assert!(merged.settings.global_secondary_indexes.is_empty());
            assert_eq!(merged.settings.attribute_definitions, [defined("p")]);
            assert_eq!(
                merged.settings.time_to_live_attribute.as_deref(),
                Some("expires")
            );
        }
        // Added again later, it is back.
        let again = changed(&restamped(&indexed, 10, "eu"), |s| {
            s.global_secondary_indexes[0].projection.projection_type = Some("KEYS_ONLY".into());
        });
        assert_eq!(
            deleted.merge(&again).settings.global_secondary_indexes,
            again.settings.global_secondary_indexes
        );
    }

    #[test]
    fn replica_entries_merge_as_an_add_and_remove_set() {
        let base = restamped(&document(1, "us"), 2, "us");
        // us adds ap while eu changes a setting, neither hearing of the other.
        let mut adding = restamped(&base, 5, "us");
        adding.replicas.insert(
            "ap".into(),
            Replica {
                stamp: Some(adding.part_stamp()),
                ..Replica::creating("us")
            },
        );
        let setting = changed(&restamped(&base, 6, "eu"), |s| {
            s.time_to_live_attribute = Some("expires".into())
        });
        let merged = setting.merge(&adding);
        assert_eq!(
            merged.replicas["ap"].seeded_by.as_deref(),
            Some("us"),
            "the new replica stays, with its seeder"
        );
        assert!(merged.settings.time_to_live_attribute.is_some());

        // A removal after the entry wins; an entry after the removal (created again) wins.
        let mut removing = restamped(&merged, 8, "eu");
        removing.remove_region("ap");
        let mut progressed = restamped(&merged, 7, "us");
        progressed.replicas.get_mut("ap").expect("ap").progress = Some(50);
        progressed.replicas.get_mut("ap").expect("ap").stamp = Some(progressed.part_stamp());
        assert!(!progressed.merge(&removing).replicas.contains_key("ap"));
        assert!(!removing.merge(&progressed).replicas.contains_key("ap"));
        let mut created_again = restamped(&removing, 9, "us");
        created_again.replicas.insert(
            "ap".into(),
            Replica {
                stamp: Some(created_again.part_stamp()),
                ..Replica::creating("us")
            },
        );
        assert!(created_again.merge(&progressed).replicas.contains_key("ap"));
        assert_eq!(
            created_again.merge(&progressed).replicas["ap"].progress,
            Some(0),
            "the newer entry"
        );
    }

    #[test]
    fn a_document_from_an_older_node_still_reads_and_merges() {
        // Made by an older node: no stamp per setting or per replica, and TTL on.
        let json = serde_json::json!({
            "Version": VERSION,
            "Replicas": {"us": {"Status": "ACTIVE"}, "eu": {"Status": "ACTIVE"}},
            "Settings": {
                "BillingMode": "PAY_PER_REQUEST",
                "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
                "TimeToLiveAttribute": "expires",
                "AttributeDefinitions": [{"AttributeName": "p", "AttributeType": "S"}]
            },
            "StampClock": 10,
            "StampRegion": "eu"
        });
        let old: GlobalTable = serde_json::from_value(json).expect("an older document parses");
        assert!(old.setting_stamps.is_unset());

        let mut base = document(1, "us");
        base.settings.attribute_definitions = vec![defined("p")];
        let base = restamped(&base, 2, "us");
        // Before the old document: an index that the older node did not keep (it replaced
        // documents whole, so it deleted it as of its stamp).
        let early = changed(&restamped(&base, 4, "us"), |s| {
            s.global_secondary_indexes.push(index("early", "e"));
            s.attribute_definitions.push(defined("e"));
        });
        // After it: billing changed and another index added here.
        let late = changed(&restamped(&early, 12, "us"), |s| {
            s.billing_mode = "PROVISIONED".into();
            s.provisioned_throughput.read_capacity_units = 5;
            s.global_secondary_indexes.push(index("late", "l"));
            s.attribute_definitions.push(defined("l"));
        });

        for merged in [late.merge(&old), old.merge(&late)] {
            assert_eq!(
                merged.settings.time_to_live_attribute.as_deref(),
                Some("expires"),
                "the old document's settings have its stamp, newer than the TTL's here"
            );
            assert_eq!(merged.settings.billing_mode, "PROVISIONED");
            let names: Vec<&str> = merged
                .settings
                .global_secondary_indexes
                .iter()
                .map(|i| i.index_name.as_str())
                .collect();
            assert_eq!(names, ["late"]);
            assert_eq!(
                merged.settings.attribute_definitions,
                [defined("p"), defined("l")]
            );
            assert_eq!(merged.replicas.len(), 2);
            assert!(
                merged.replicas.values().all(|r| r.stamp.is_some()),
                "pinned"
            );
        }
        assert!(
            serde_json::to_value(late.merge(&old))
                .expect("json")
                .get("Settings")
                .is_some_and(|s| s.get("TimeToLiveAttribute").is_some()),
            "what an older node reads is where it was"
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
