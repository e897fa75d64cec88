//! DynamoDB streams as slices of the change log.
//!
//! A stream ([`StreamInfo`]) is born when a table's stream is enabled and covers the table's
//! change records from that moment's sequence until it is disabled or the table deleted. Its
//! records are split into `shards` lanes by a hash of the partition key, so one item's records
//! always share a lane, and time into generations: every rotation starts a new generation of
//! lanes, each the child of the same lane one generation before. Boundaries are change
//! sequences taken under the commit sequencer, so every record falls in exactly one shard.
//!
//! The streams crate renders all of this (shard ids, iterators, records); core only keeps the
//! boundaries durable (its `ops` enable, rotate and expire streams) and serves the
//! table's slice of the log up to the durable watermark.

use serde::{Deserialize, Serialize};

use crate::changes::ChangeSeq;
use crate::model::{KeySchemaElement, TableId};

/// One stream of one table: its identity, view type and shard boundaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamInfo {
    /// Internal id of the table the stream belongs to.
    pub table_id: TableId,
    /// Name of that table.
    pub table_name: String,
    /// ARN of that table.
    pub table_arn: String,
    /// The stream label (ISO 8601 time of enabling, unique per table).
    pub label: String,
    /// `KEYS_ONLY`, `NEW_IMAGE`, `OLD_IMAGE` or `NEW_AND_OLD_IMAGES`.
    pub view_type: String,
    /// The table's key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Lanes (shards) per generation.
    pub shards: u8,
    /// Generations in order; the first starts with the stream.
    pub generations: Vec<Generation>,
    /// Set once the stream is disabled or its table deleted.
    pub end: Option<StreamEnd>,
}

/// The start of one generation of shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Generation {
    /// First change sequence in the generation.
    pub start_seq: ChangeSeq,
    /// When the generation started, milliseconds since the Unix epoch.
    pub start_millis: u64,
}

/// Where a stream stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamEnd {
    /// First change sequence NOT in the stream.
    pub seq: ChangeSeq,
    /// When the stream stopped, milliseconds since the Unix epoch.
    pub millis: u64,
}

impl StreamInfo {
    /// The stream's ARN.
    pub fn arn(&self) -> String {
        format!("{}/stream/{}", self.table_arn, self.label)
    }

    /// When the stream was enabled, milliseconds since the Unix epoch.
    pub fn created_millis(&self) -> u64 {
        self.generations.first().map_or(0, |g| g.start_millis)
    }

    /// First change sequence of the stream.
    pub fn start_seq(&self) -> ChangeSeq {
        self.generations
            .first()
            .map_or(ChangeSeq::ZERO, |g| g.start_seq)
    }

    /// First sequence after generation `index` (`None` while it is open).
    pub fn generation_end(&self, index: usize) -> Option<ChangeSeq> {
        match self.generations.get(index + 1) {
            Some(next) => Some(next.start_seq),
            None => self.end.map(|e| e.seq),
        }
    }

    /// The lane of a record with the given partition hash byte.
    pub fn lane_of(&self, partition: u8) -> u8 {
        partition % self.shards.max(1)
    }
}
