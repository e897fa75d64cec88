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

use serde::{Deserialize, Serialize};

use crate::model::{Item, TableId};
use crate::stamp::{HlcTimestamp, Stamp};

/// A position in the node-wide change log (1 is the first record ever written).
///
/// Stored keys hold it as 8 big-endian bytes ([`ChangeSeq::to_be_bytes`]), so key order is
/// sequence order; JSON documents and headers hold the plain number, as `Display` prints it.
/// There is no arithmetic on it beyond stepping to a neighbour and counting the records
/// between two positions: a sequence is a position, not a quantity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ChangeSeq(u64);

impl ChangeSeq {
    /// The position before the first record: an empty log's watermark, and a reader's "from the
    /// beginning".
    pub const ZERO: ChangeSeq = ChangeSeq(0);

    /// The first record ever written.
    pub const FIRST: ChangeSeq = ChangeSeq(1);

    /// The last position there can be: a bound no sequence is past ("no limit").
    pub const MAX: ChangeSeq = ChangeSeq(u64::MAX);

    /// The sequence right before this one ([`ChangeSeq::ZERO`] stays put).
    pub const fn saturating_prev(self) -> ChangeSeq {
        ChangeSeq(self.0.saturating_sub(1))
    }

    /// The sequence right before this one, if this is not [`ChangeSeq::ZERO`].
    pub const fn checked_prev(self) -> Option<ChangeSeq> {
        match self.0.checked_sub(1) {
            Some(n) => Some(ChangeSeq(n)),
            None => None,
        }
    }

    /// How many steps lead from `earlier` to this one: the count of sequences from `earlier`
    /// (inclusive) up to this one (exclusive), 0 when `earlier` is not before it.
    pub const fn distance_from(self, earlier: ChangeSeq) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The sequence halfway between this one and `other`, rounded down (a binary
    /// search's probe).
    pub const fn midpoint(self, other: ChangeSeq) -> ChangeSeq {
        ChangeSeq(self.0.midpoint(other.0))
    }
}

crate::numbered::numbered!(ChangeSeq);

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
    /// A write taken from the region's log of a cluster region and applied in log order: its
    /// stamp is the log record's (moved past the item's by the write path), and the log
    /// position is committed with it.
    Logged(Box<LoggedWrite>),
}

/// Where a write stands in a region's log: a partition of a Kafka topic, and an offset in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogPosition {
    /// The log (a Kafka topic).
    pub log: String,
    /// Its partition.
    pub partition: u32,
    /// The record's offset in the partition.
    pub offset: u64,
}

impl LogPosition {
    /// The log of a table created by the record at this position: named after it, so every
    /// node that applies the record names the same log, and a table created again under the
    /// same name gets another.
    pub fn created_log(&self) -> String {
        format!("{}.{}", self.log, self.offset)
    }
}

/// A write read from a cluster region's log, as every copy of its partition applies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoggedWrite {
    /// The stamp the node that took the request gave it.
    pub stamp: Stamp,
    /// What made it: a client request, or TTL expiry decided by one copy.
    pub kind: CauseKind,
    /// The record it was read from.
    pub position: LogPosition,
}

impl Cause {
    /// The recorded form of this cause.
    pub fn kind(&self) -> CauseKind {
        match self {
            Cause::Request => CauseKind::Request,
            Cause::Expiry => CauseKind::Expiry,
            Cause::Replica(_) => CauseKind::Replica,
            Cause::Restore => CauseKind::Restore,
            Cause::Logged(logged) => logged.kind,
        }
    }

    /// The stamp a write brings with it (replicated and logged writes); `None` for the writes
    /// this node stamps as it commits them.
    pub fn carried_stamp(&self) -> Option<&Stamp> {
        match self {
            Cause::Replica(stamp) => Some(stamp),
            Cause::Logged(logged) => Some(&logged.stamp),
            Cause::Request | Cause::Expiry | Cause::Restore => None,
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
    pub table_id: TableId,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_is_written_as_its_plain_number() {
        let seq = ChangeSeq::new(42);
        assert_eq!(serde_json::to_string(&seq).unwrap(), "42");
        assert_eq!(serde_json::from_str::<ChangeSeq>("42").unwrap(), seq);
        assert_eq!(seq.to_string(), "42");
        assert_eq!("42".parse::<ChangeSeq>().unwrap(), seq);
        assert_eq!(ChangeSeq::from_be_bytes(seq.to_be_bytes()), seq);
        assert!(
            ChangeSeq::new(255).to_be_bytes() < ChangeSeq::new(256).to_be_bytes(),
            "key order is sequence order"
        );
    }

    #[test]
    fn steps_stop_at_zero_and_distances_never_go_negative() {
        let seq = ChangeSeq::new(10);
        assert_eq!(seq.next(), ChangeSeq::new(11));
        assert_eq!(seq.saturating_prev(), ChangeSeq::new(9));
        assert_eq!(ChangeSeq::ZERO.saturating_prev(), ChangeSeq::ZERO);
        assert_eq!(ChangeSeq::ZERO.checked_prev(), None);
        assert_eq!(ChangeSeq::FIRST.checked_prev(), Some(ChangeSeq::ZERO));
        assert_eq!(seq.distance_from(ChangeSeq::new(4)), 6);
        assert_eq!(ChangeSeq::new(4).distance_from(seq), 0);
        assert_eq!(ChangeSeq::new(4).midpoint(seq), ChangeSeq::new(7));
        assert_eq!(
            ChangeSeq::new(4).midpoint(ChangeSeq::MAX).get(),
            u64::MAX / 2 + 2
        );
    }
}
