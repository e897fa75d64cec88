//! The change log: one record per applied change, written in the same atomic commit as the
//! item it describes, keyed by a node-wide sequence so that key order is commit order.
//!
//! Streams, Kafka publishers, replication and point-in-time restore all read this log, and only
//! up to the durable watermark ([`crate::Store::durable_seq`]), so a reader never sees a record
//! that a crash could take back.

use crate::model::Item;
use crate::stamp::Stamp;

/// A position in the node-wide change log (1 is the first record ever written).
pub type ChangeSeq = u64;

/// What a change did to its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The item did not exist before.
    Insert,
    /// The item existed and was changed.
    Modify,
    /// The item was deleted.
    Remove,
}

impl ChangeKind {
    /// DynamoDB Streams' `eventName`.
    pub fn event_name(self) -> &'static str {
        match self {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Modify => "MODIFY",
            ChangeKind::Remove => "REMOVE",
        }
    }
}

/// One applied change to one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Position in the node-wide log.
    pub seq: ChangeSeq,
    /// Internal id of the table (stable across renames of nothing; a re-created table gets a new id).
    pub table_id: u64,
    /// Table name at the time of the change.
    pub table_name: String,
    /// Insert, modify or remove.
    pub kind: ChangeKind,
    /// The item's key attributes.
    pub keys: Item,
    /// The whole item before the change (absent for inserts).
    pub old_image: Option<Item>,
    /// The whole item after the change (absent for removes).
    pub new_image: Option<Item>,
    /// Last-writer-wins stamp of the write; its region is the change's origin region.
    pub stamp: Stamp,
    /// True when the service made the change (TTL expiry), not a user request.
    pub by_service: bool,
    /// Wall-clock commit time, milliseconds since the Unix epoch.
    pub commit_time_millis: u64,
}

impl ChangeRecord {
    /// The region where the change was first applied.
    pub fn origin_region(&self) -> &str {
        &self.stamp.region
    }
}
