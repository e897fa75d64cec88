//! The lifecycle of DynamoDB streams as slices of the log: listing them, rotating their shard
//! generations at sequence boundaries, and forgetting what the history window trimmed.

use std::sync::Arc;
use std::time::Duration;

use crate::changes::ChangeSeq;
use crate::stream_log::{Generation, StreamInfo};
use crate::{Result, Store};

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
        self.storage.oldest_retained.load()
    }

    /// The oldest change sequence of table `table_id` still in the log: every record of the
    /// table before it was trimmed (records of other tables before it may be kept, for their
    /// own holds).
    pub fn oldest_retained_seq_of(&self, table_id: crate::TableId) -> ChangeSeq {
        self.storage.oldest_retained_of(table_id)
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
        let _ddl = self.storage.ddl.lock();
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for stream in self.storage.catalog.streams.read().values() {
            if stream.end.is_some_and(|e| e.millis < cutoff_millis) {
                removed.push((stream.table_id, stream.label.clone()));
                continue;
            }
            let oldest = self.oldest_retained_seq_of(stream.table_id);
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
