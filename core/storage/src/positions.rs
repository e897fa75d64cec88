//! How far this node has applied each partition of a cluster region's logs: the next offset
//! to apply, per (log, partition). A logged write's batch carries its record's position, so
//! the items and the position move together and a restart resumes exactly where the items
//! stand.

use fjall::{OwnedWriteBatch, PersistMode};
use tidemark_model::changes::LogPosition;
use tidemark_model::{Error, Result};

use super::{OrFailure, Storage};

/// The key of a log partition's position: the log's name, a zero byte, the partition.
fn position_key(log: &str, partition: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(log.len() + 5);
    key.extend_from_slice(log.as_bytes());
    key.push(0);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// Adds to `batch` that `position`'s record is applied: its partition's next offset follows
/// it.
pub(crate) fn stage(
    batch: &mut OwnedWriteBatch,
    positions: &fjall::Keyspace,
    position: &LogPosition,
) {
    batch.insert(
        positions,
        position_key(&position.log, position.partition),
        (position.offset + 1).to_be_bytes(),
    );
}

impl Storage {
    /// The next offset this node applies from `partition` of `log` (0 before its first
    /// record).
    ///
    /// # Errors
    /// Storage failures; a stored position that is not one.
    pub fn next_log_offset(&self, log: &str, partition: u32) -> Result<u64> {
        let Some(bytes) = self
            .ks
            .positions
            .get(position_key(log, partition))
            .or_failure()?
        else {
            return Ok(0);
        };
        <[u8; 8]>::try_from(bytes.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Corrupt(format!("a log position of {} bytes", bytes.len())))
    }

    /// Records, durably, that every record of `partition` of `log` before `next` is applied:
    /// for logs whose records write outside the item batches (table definitions).
    ///
    /// # Errors
    /// Storage failures.
    pub fn save_log_offset(&self, log: &str, partition: u32, next: u64) -> Result<()> {
        self.ks
            .positions
            .insert(position_key(log, partition), next.to_be_bytes())
            .or_failure()?;
        self.db.persist(PersistMode::SyncData).or_failure()
    }
}
