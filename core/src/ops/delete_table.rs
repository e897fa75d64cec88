//! DeleteTable: end the table's streams, drop it from the catalog, purge its items.

use std::sync::atomic::Ordering;

use super::describe_table::{TableDescription, TableStatus};
use crate::storage::catalog::table_key;
use crate::storage::stream_catalog_entry;
use crate::{Result, Store};

impl Store {
    /// Deletes a table and all its items. Its change records stay for the history window.
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn delete_table(&self, name: &str) -> Result<TableDescription> {
        let _ddl = self.storage.ddl.lock();
        let entry = self.table(name)?;
        let description = self.describe(&entry, TableStatus::Deleting);
        let now = self.clock.now_millis();
        // IMPORTANT: set under the sequencer lock, so no commit for this table lands after
        // the catalog entry is gone, and its streams end exactly there.
        let ended = self.storage.with_sequence_boundary(|boundary| {
            entry.dropped.store(true, Ordering::Release);
            Ok(self.end_streams(entry.id, boundary, now))
        })?;
        let mut puts = Vec::new();
        for stream in &ended {
            puts.push(stream_catalog_entry(stream)?);
        }
        self.storage.write_catalog(&puts, &[table_key(name)])?;
        self.storage.install_streams(ended, &[]);
        self.release_table_holds(entry.id)?;
        self.storage.catalog.tables.write().remove(name);
        let index_ids: Vec<u64> = entry.indexes().iter().map(|i| i.id).collect();
        self.storage.purge_table_items(entry.id, &index_ids)?;
        self.storage
            .pipeline
            .sequencer
            .lock()
            .stats
            .remove(&entry.id);
        Ok(description)
    }
}
