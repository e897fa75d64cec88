//! DeleteTable: back the table up if it asks for that, then drop it (the store ends its
//! streams, drops it from the catalog and purges its items).

use std::sync::atomic::Ordering;

use super::Tables;
use crate::Error;
use crate::Result;
use crate::ops::describe_table::TableDescription;

impl Tables {
    /// Deletes a table and all its items. Its change records stay for the history window. A
    /// table with point-in-time recovery on leaves a system backup of its last state.
    ///
    /// # Errors
    /// ResourceNotFound; ResourceInUse while a restore builds the table.
    pub fn delete_table(&self, name: &str) -> Result<TableDescription> {
        let _ddl = self.store.storage.ddl.lock();
        let entry = self.store.table_even_building(name)?;
        if entry.definition.read().deletion_protection {
            return Err(Error::validation(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
            ));
        }
        if entry.building.load(Ordering::Acquire) {
            return Err(Error::ResourceInUse(format!(
                "Attempt to change a resource which is still in use: Table is being created: {name}"
            )));
        }
        let mut description = self.store.drop_table(&entry, |last| {
            self.backups.back_up_before_delete(&entry, last)
        })?;
        // DeleteTable's answer has no warm rates.
        description.warm_throughput = None;
        Ok(description)
    }
}
