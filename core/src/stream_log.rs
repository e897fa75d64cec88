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
//! boundaries durable and serves the table's slice of the log up to the durable watermark.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::changes::ChangeSeq;
use crate::model::KeySchemaElement;
use crate::store::Store;

/// One stream of one table: its identity, view type and shard boundaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamInfo {
    /// Internal id of the table the stream belongs to.
    pub table_id: u64,
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
        self.generations.first().map_or(0, |g| g.start_seq)
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

/// A stream's catalog key: `stream/` + table id (hex) + `/` + label.
pub(crate) fn stream_key(table_id: u64, label: &str) -> Vec<u8> {
    format!("stream/{table_id:016x}/{label}").into_bytes()
}

impl Store {
    /// Every stream still kept (enabled, or ended within the retention window), by ARN.
    pub fn streams(&self) -> Vec<Arc<StreamInfo>> {
        let mut all: Vec<Arc<StreamInfo>> = self
            .storage
            .catalog
            .streams
            .read()
            .values()
            .cloned()
            .collect();
        all.sort_by_cached_key(|s| s.arn());
        all
    }

    /// The stream of table `table_name` labelled `label`, if kept.
    pub fn stream(&self, table_name: &str, label: &str) -> Option<Arc<StreamInfo>> {
        self.storage
            .catalog
            .streams
            .read()
            .values()
            .find(|s| s.table_name == table_name && s.label == label)
            .cloned()
    }

    /// The oldest change sequence still in the log (everything before it was trimmed).
    pub fn oldest_retained_seq(&self) -> ChangeSeq {
        self.storage.oldest_retained.load(Ordering::Acquire)
    }

    /// Starts a new generation of shards in every enabled stream whose current generation is
    /// at least `period` old and has seen a commit. Returns how many streams rotated.
    ///
    /// # Errors
    /// Storage failures.
    pub fn rotate_stream_shards(&self, period: Duration) -> Result<usize> {
        let period = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        let now = self.clock.now_millis();
        let due = |s: &StreamInfo| {
            s.end.is_none()
                && s.generations
                    .last()
                    .is_some_and(|g| now.saturating_sub(g.start_millis) >= period)
        };
        let candidates: Vec<Arc<StreamInfo>> = self
            .storage
            .catalog
            .streams
            .read()
            .values()
            .filter(|s| due(s))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return Ok(0);
        }
        let _ddl = self.storage.ddl.lock();
        self.storage.with_sequence_boundary(|boundary| {
            let mut rotated = Vec::new();
            for stream in candidates {
                // Re-read: a disable may have ended it meanwhile.
                let current = self
                    .storage
                    .catalog
                    .streams
                    .read()
                    .get(&(stream.table_id, stream.label.clone()))
                    .cloned();
                let Some(current) = current.filter(|s| due(s)) else {
                    continue;
                };
                // A generation without any commit since its start would be empty and would
                // end before it starts: wait for the next commit.
                if current
                    .generations
                    .last()
                    .is_some_and(|g| g.start_seq >= boundary)
                {
                    continue;
                }
                let mut next = (*current).clone();
                next.generations.push(Generation {
                    start_seq: boundary,
                    start_millis: now,
                });
                rotated.push(next);
            }
            let count = rotated.len();
            self.storage.save_streams(rotated, &[])?;
            Ok(count)
        })
    }

    /// Forgets streams that ended before `cutoff_millis` and generations whose successors
    /// start at or before the oldest retained record (their records are all trimmed).
    pub(crate) fn expire_streams(&self, cutoff_millis: u64) -> Result<()> {
        let oldest = self.oldest_retained_seq();
        let _ddl = self.storage.ddl.lock();
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for stream in self.storage.catalog.streams.read().values() {
            if stream.end.is_some_and(|e| e.millis < cutoff_millis) {
                removed.push((stream.table_id, stream.label.clone()));
                continue;
            }
            let dead = stream
                .generations
                .iter()
                .skip(1)
                .take_while(|g| g.start_seq <= oldest)
                .count();
            if dead > 0 {
                let mut kept = (**stream).clone();
                kept.generations.drain(..dead);
                changed.push(kept);
            }
        }
        if changed.is_empty() && removed.is_empty() {
            return Ok(());
        }
        self.storage.save_streams(changed, &removed)
    }
}
