//! [`LogCursor`]: a reader's position in the change log and what it reads. GetRecords, the
//! Kafka publishers, the lag counter, the replicator's source and restore all read through
//! `Store::read_log` (in tidemark-core's `tail`), the one log reader:
//!
//! - it never returns a record past the durable watermark, so nothing read can be taken back
//!   by a crash; a cursor made [`LogCursor::on_disk`] (the replicator's) stops at what a
//!   journal sync has covered, so nothing read can be taken back by a power cut either;
//! - a cursor follows the whole node ([`LogScope::Node`]) or one table
//!   ([`LogScope::Table`], optionally one stream lane of it), all changes or only those this
//!   node originated ([`Origin::Local`]: what a replicator ships); filters are decided from the
//!   index entry (or the record's flag byte), before a dropped record is fetched or decoded;
//! - a read is bounded in records and in entries looked at, and moves the cursor past every
//!   entry it looked at, so a quiet lane next to busy ones costs a bounded read;
//! - `Store::wait_durable_past` lets a tailing task sleep until there is more to read.

use crate::changes::ChangeSeq;
use crate::model::TableId;

/// Which part of the log a cursor follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogScope {
    /// Every table's changes, in commit order.
    Node,
    /// One table's changes, optionally only one stream lane of them.
    Table {
        /// Internal id of the table.
        table_id: TableId,
        /// Only the records of this lane.
        lane: Option<Lane>,
    },
}

/// One lane of a table's changes: the records whose partition hash byte is `lane` modulo
/// `lanes` (a stream shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    /// Lanes the table's changes are split into.
    pub lanes: u8,
    /// This lane.
    pub lane: u8,
}

/// Whose changes a cursor returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Every change.
    #[default]
    Any,
    /// Only changes this node originated: client requests and its own TTL expiry, not
    /// replicated writes or restores.
    Local,
}

/// A reader's position in the log and what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    /// What the cursor follows.
    pub scope: LogScope,
    /// Whose changes it returns.
    pub origin: Origin,
    /// The next sequence to look at.
    pub next: ChangeSeq,
    /// The first sequence NOT to read (a closed shard's end), if any.
    pub end: Option<ChangeSeq>,
    /// Reads only what a journal sync has covered, whatever the durability mode.
    pub on_disk_only: bool,
}

impl LogCursor {
    /// A cursor over every table's changes from `from`.
    pub fn node(from: ChangeSeq) -> LogCursor {
        LogCursor {
            scope: LogScope::Node,
            origin: Origin::Any,
            next: from,
            end: None,
            on_disk_only: false,
        }
    }

    /// A cursor over one table's changes from `from`.
    pub fn table(table_id: TableId, from: ChangeSeq) -> LogCursor {
        LogCursor {
            scope: LogScope::Table {
                table_id,
                lane: None,
            },
            origin: Origin::Any,
            next: from,
            end: None,
            on_disk_only: false,
        }
    }

    /// Only the records of one lane (for table cursors).
    pub fn lane(mut self, lanes: u8, lane: u8) -> LogCursor {
        if let LogScope::Table { lane: slot, .. } = &mut self.scope {
            *slot = Some(Lane { lanes, lane });
        }
        self
    }

    /// Only the changes this node originated.
    pub fn local_only(mut self) -> LogCursor {
        self.origin = Origin::Local;
        self
    }

    /// Only changes a journal sync has covered (under `buffer` a committed change may not be
    /// yet): what other regions get must survive a power cut here.
    pub fn on_disk(mut self) -> LogCursor {
        self.on_disk_only = true;
        self
    }

    /// Stops before `end`.
    pub fn until(mut self, end: ChangeSeq) -> LogCursor {
        self.end = Some(end);
        self
    }

    /// True once the cursor has passed its end.
    pub fn is_finished(&self) -> bool {
        self.end.is_some_and(|end| self.next >= end)
    }
}

/// How much one read may return and look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most records returned.
    pub records: usize,
    /// Most index entries (or, node-wide, records) looked at, kept or not.
    pub scanned: usize,
    /// Most bytes of records returned (their keys and images, sized as DynamoDB sizes
    /// items); the record that reaches it is the last one, so a read returns at least one.
    pub bytes: usize,
}

impl LogLimits {
    /// At most `records` records, looking at as many entries as that takes.
    pub fn records(records: usize) -> LogLimits {
        LogLimits {
            records,
            scanned: usize::MAX,
            bytes: usize::MAX,
        }
    }
}

/// How far a table's readers are behind the durable log from a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableLag {
    /// Durable changes of the table at or after the position.
    pub records: u64,
    /// Commit time of the oldest of them, milliseconds since the Unix epoch.
    pub oldest_millis: Option<u64>,
}
