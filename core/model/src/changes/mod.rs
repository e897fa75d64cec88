//! The change log: one record per applied change, written in the same atomic commit as the
//! item it describes, keyed by a node-wide sequence so that key order is commit order.
//!
//! Each record carries two clocks: the last-writer-wins [`Stamp`] of the write (minted here
//! for local writes, carried over for replicated ones) and this node's own commit clock, a
//! hybrid-logical-clock reading that only goes forward in sequence order. The commit clock is
//! what "the last change at or before time T" and the history window are measured in.
//!
//! Streams, Kafka publishers, replication and point-in-time restore all read this log, and only
//! up to the durable watermark (`Store::durable_seq` in tidemark-core), so a reader never sees a record
//! that a crash could take back.

mod cursor;

pub use cursor::{Lane, LogCursor, LogLimits, LogScope, Origin, TableLag};

use crate::model::Item;
use crate::stamp::{HlcTimestamp, Stamp};

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

    /// The kind of a change from `old` to `new` (a delete of a missing item, which only a
    /// replicated delete records, is a remove).
    pub fn between(old: Option<&Item>, new: Option<&Item>) -> ChangeKind {
        match (old, new) {
            (None, Some(_)) => ChangeKind::Insert,
            (Some(_), Some(_)) => ChangeKind::Modify,
            (_, None) => ChangeKind::Remove,
        }
    }
}

/// Who or what made a write; recorded with its change and kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A client request to this node.
    Request,
    /// This node's TTL sweeper deleting an expired item (DynamoDB's service deletes).
    Expiry,
    /// A write made in another region, applied here with the stamp it was made with.
    Replica(Stamp),
    /// A restore job writing a table's past state; never shipped to other regions.
    Restore,
}

impl Cause {
    /// The recorded form of this cause.
    pub fn kind(&self) -> CauseKind {
        match self {
            Cause::Request => CauseKind::Request,
            Cause::Expiry => CauseKind::Expiry,
            Cause::Replica(_) => CauseKind::Replica,
            Cause::Restore => CauseKind::Restore,
        }
    }
}

/// A [`Cause`] as a change record keeps it (a replicated write's stamp is the record's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CauseKind {
    /// A client request to this node.
    Request,
    /// TTL expiry by this node.
    Expiry,
    /// Replicated from the region in the record's stamp.
    Replica,
    /// Written by a restore job.
    Restore,
}

impl CauseKind {
    /// True for changes this node originated (client requests and its own TTL expiry): the
    /// ones a replicator ships to other regions.
    pub fn is_local_origin(self) -> bool {
        matches!(self, CauseKind::Request | CauseKind::Expiry)
    }
}

/// One applied change to one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Position in the node-wide log.
    pub seq: ChangeSeq,
    /// Internal id of the table (a re-created table gets a new id).
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
    /// Who or what made the change.
    pub cause: CauseKind,
    /// This node's commit clock at the commit: monotone in sequence order.
    pub commit_clock: HlcTimestamp,
}

impl ChangeRecord {
    /// The region where the change was first applied.
    pub fn origin_region(&self) -> &str {
        &self.stamp.region
    }

    /// True when the service made the change (TTL expiry), not a user request.
    pub fn by_service(&self) -> bool {
        self.cause == CauseKind::Expiry
    }

    /// Commit time on this node, milliseconds since the Unix epoch (monotone in sequence
    /// order, unlike the wall clock).
    pub fn commit_time_millis(&self) -> u64 {
        self.commit_clock.physical_millis()
    }
}
