//! Backfills of new global secondary indexes (and of the TTL index), run in the background.

use std::sync::atomic::Ordering;

use super::Tables;
use crate::Result;

impl Tables {
    /// Backfills every global secondary index whose backfill has not finished (new ones, and
    /// any a restart interrupted), then marks it ACTIVE. Returns how many were finished.
    ///
    /// # Errors
    /// Storage failures; the backfill resumes on the next call.
    pub fn run_pending_backfills(&self) -> Result<usize> {
        let mut finished = 0;
        for entry in self.store.storage.live_tables() {
            let pending: Vec<String> = entry
                .definition
                .read()
                .backfilling
                .iter()
                .cloned()
                .collect();
            for name in pending {
                let Some(index) = entry.indexes().iter().find(|i| i.name == name).cloned() else {
                    continue;
                };
                self.store.storage.backfill_index(&entry, &index)?;
                let _ddl = self.store.storage.ddl.lock();
                if entry.dropped.load(Ordering::Acquire) {
                    continue;
                }
                let mut definition = entry.definition.read().clone();
                definition.backfilling.remove(&name);
                self.store.save_definition(&entry, definition)?;
                finished += 1;
            }
            if entry.definition.read().ttl_backfilling {
                self.store.storage.backfill_ttl(&entry)?;
                let _ddl = self.store.storage.ddl.lock();
                let mut definition = entry.definition.read().clone();
                if entry.dropped.load(Ordering::Acquire) || !definition.ttl_backfilling {
                    continue;
                }
                definition.ttl_backfilling = false;
                self.store.save_definition(&entry, definition)?;
                finished += 1;
            }
        }
        Ok(finished)
    }

    /// Resolves when UpdateTable or UpdateTimeToLive has made an index that needs a backfill.
    pub async fn backfill_requested(&self) {
        self.backfill_requested.notified().await;
    }
}
