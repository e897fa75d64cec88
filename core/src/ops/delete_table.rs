//! DeleteTable: back the table up if it asks for that, end its streams, drop it from the
//! catalog, purge its items.

use std::sync::atomic::Ordering;

use super::describe_table::{TableDescription, TableStatus};
use crate::storage::catalog::{TableEntry, table_key};
use crate::storage::stream_catalog_entry;
use crate::{Error, Result, Store};

impl Store {
    /// Deletes a table and all its items. Its change records stay for the history window. A
    /// table with point-in-time recovery on leaves a system backup of its last state.
    ///
    /// # Errors
    /// ResourceNotFound; ResourceInUse while a restore builds the table.
    pub fn delete_table(&self, name: &str) -> Result<TableDescription> {
        let _ddl = self.storage.ddl.lock();
        let entry = self.table_even_building(name)?;
        if entry.building.load(Ordering::Acquire) {
            return Err(Error::ResourceInUse(format!(
                "Attempt to change a resource which is still in use: Table is being created: {name}"
            )));
        }
        self.drop_table(&entry, true)
    }

    /// Drops a table (the caller holds the DDL lock); with `back_up`, first finishes the
    /// backups of it still being copied and takes its system backup.
    pub(crate) fn drop_table(&self, entry: &TableEntry, back_up: bool) -> Result<TableDescription> {
        let name = entry.name.as_str();
        let description = self.describe(entry, TableStatus::Deleting);
        let now = self.clock.now_millis();
        // IMPORTANT: set under the sequencer lock, so no commit for this table lands after
        // the catalog entry is gone, and its streams end exactly there.
        let (ended, boundary) = self.storage.with_sequence_boundary(|boundary| {
            entry.dropped.store(true, Ordering::Release);
            Ok((self.end_streams(entry.id, boundary, now), boundary))
        })?;
        if back_up && let Err(e) = self.back_up_before_delete(entry, boundary - 1) {
            entry.dropped.store(false, Ordering::Release);
            return Err(e);
        }
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
