//! What travels between peers, as JSON over HTTP: batches of changes (`POST
//! /_tidemark/peer/changes`) and membership documents (`POST /_tidemark/peer/membership`,
//! `POST /_tidemark/peer/replica`). Every request carries the sending region and the shared
//! secret in headers ([`crate::peers`]).

use serde::{Deserialize, Serialize};
use tidemark_core::model::{Item, TableDefinition};
use tidemark_core::replication::RemoteChange;
use tidemark_core::{HlcTimestamp, Stamp};

use crate::membership::GlobalTable;

/// Path of change batches.
pub const CHANGES_PATH: &str = "/_tidemark/peer/changes";
/// Path of membership documents.
pub const MEMBERSHIP_PATH: &str = "/_tidemark/peer/membership";
/// Path of replica creation.
pub const CREATE_REPLICA_PATH: &str = "/_tidemark/peer/replica";

/// One change as shipped: the item's key, its new image (none for a delete) and its stamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireChange {
    /// Table name.
    #[serde(rename = "t")]
    pub table: String,
    /// Key attributes.
    #[serde(rename = "k")]
    pub keys: Item,
    /// The item after the change; absent for a delete.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub new_image: Option<Item>,
    /// Stamp clock.
    #[serde(rename = "c")]
    pub clock: u64,
    /// Stamp region: where the change was made.
    #[serde(rename = "r")]
    pub region: String,
}

impl From<RemoteChange> for WireChange {
    fn from(change: RemoteChange) -> WireChange {
        WireChange {
            table: change.table_name,
            keys: change.keys,
            new_image: change.new_image,
            clock: change.stamp.hlc.0,
            region: change.stamp.region,
        }
    }
}

impl From<WireChange> for RemoteChange {
    fn from(change: WireChange) -> RemoteChange {
        RemoteChange {
            table_name: change.table,
            keys: change.keys,
            new_image: change.new_image,
            stamp: Stamp {
                hlc: HlcTimestamp(change.clock),
                region: change.region,
            },
        }
    }
}

/// A batch of changes, in the sender's log order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChangeBatch {
    /// The changes.
    pub changes: Vec<WireChange>,
    /// Per table, a clock such that, once this batch is applied, the receiver has every
    /// change of the table the sender made with a stamp at or before it (so the receiver
    /// knows no older write of the sender's is still on its way).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub delivered: std::collections::BTreeMap<String, u64>,
}

/// What the receiver made of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// Changes applied.
    pub written: u64,
    /// Changes seen before.
    pub duplicates: u64,
    /// Changes discarded because a newer write was already there.
    pub lost: u64,
    /// Tables the receiver does not have (its replica was deleted there).
    #[serde(default)]
    pub missing_tables: Vec<String>,
}

/// A membership document for one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipMessage {
    /// The table.
    pub table: String,
    /// The sender's document.
    pub global: GlobalTable,
}

/// The receiver's answer to a membership document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MembershipAnswer {
    /// It holds this document now (the sent one, or a newer one of its own).
    Holds(GlobalTable),
    /// It has no such table (its replica was deleted, or it dropped it now).
    NoTable,
}

/// A request to create a replica: the source's table definition and the membership it joins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateReplicaMessage {
    /// The table as the source holds it.
    pub definition: TableDefinition,
    /// The membership with the new replica in it.
    pub global: GlobalTable,
    /// Version 2017.11.29 forms a group of tables that already exist: an empty table of the
    /// same key schema in the new replica's region joins instead of being refused.
    #[serde(default)]
    pub adopt_existing: bool,
}

/// A refusal from a peer, with the DynamoDB error type to pass on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerRefusal {
    /// DynamoDB exception name.
    pub error: String,
    /// Why.
    pub message: String,
}
