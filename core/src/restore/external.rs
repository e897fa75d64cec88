//! Tables read out of the node and built from outside it (exports and imports, whose file
//! formats live in the streams crate); the records their jobs keep are the store's
//! (`ops/documents.rs`).
//!
//! An export reads the table as of an instant from one fjall snapshot, taken when it starts
//! ([`Backups::table_as_of`]). An import creates its table CREATING ([`Backups::create_importing_table`]),
//! fills it ([`Backups::load_import`]) and makes it ACTIVE ([`Backups::finish_import`]); a restart
//! in between leaves the table CREATING, and the importer starts it over or drops it.

use std::sync::atomic::Ordering;

use super::Backups;
use super::tables::RestorePoint;
use crate::model::{Item, TableDefinition};
use crate::ops::{CreateTableRequest, TableDescription};
use crate::storage::image::{ImageItem, load_batches};
use crate::storage::keys::item_key;
use crate::{Error, Result};

/// A table as of an instant, for an export.
pub struct TableAsOf {
    /// The table's definition now.
    pub definition: TableDefinition,
    /// The instant, milliseconds since the Unix epoch.
    pub millis: u64,
    /// Its items, in key order.
    pub items: Box<dyn Iterator<Item = Result<Item>> + Send>,
}

impl std::fmt::Debug for TableAsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableAsOf")
            .field("table", &self.definition.table_name)
            .field("millis", &self.millis)
            .finish_non_exhaustive()
    }
}

impl Backups {
    /// The table `table` (name or ARN) as of `point`, read from a snapshot taken now.
    ///
    /// # Errors
    /// TableNotFound; PointInTimeRecoveryUnavailable when recovery is off (DynamoDB exports
    /// need it); InvalidRestoreTime outside the window.
    pub fn table_as_of(&self, table: &str, point: RestorePoint) -> Result<TableAsOf> {
        let entry = self.backup_source(table)?;
        let definition = entry.definition.read().clone();
        let settings = self.recovery_settings(&entry)?;
        let (millis, at) = self.resolve_point(settings, point)?;
        self.store.storage.wait_durable(at)?;
        let image = self.store.storage.table_image(entry.id, &entry.shape, at)?;
        Ok(TableAsOf {
            definition,
            millis,
            items: Box::new(image.map(|item| item.map(|(_, item)| item))),
        })
    }

    /// Creates `request`'s table, CREATING until the import `import_arn` has filled it.
    ///
    /// # Errors
    /// As CreateTable.
    pub fn create_importing_table(
        &self,
        request: CreateTableRequest,
        import_arn: &str,
    ) -> Result<TableDescription> {
        crate::tables::create_table_as(&self.store, request, None, Some(import_arn.to_string()))
    }

    /// The tables imports are still building: table name and import ARN.
    pub fn importing_tables(&self) -> Vec<(String, String)> {
        self.store
            .storage
            .live_tables()
            .iter()
            .filter_map(|t| {
                let import = t.definition.read().importing.clone()?;
                Some((t.name.clone(), import))
            })
            .collect()
    }

    /// Fills `table`, which an import is building, with `items` (any order, each key once;
    /// what an earlier attempt left is removed first). Returns how many items it holds.
    ///
    /// # Errors
    /// Validation for an item without the table's key or over DynamoDB's limits (nothing is
    /// made visible: the table stays CREATING); storage failures.
    pub fn load_import(
        &self,
        table: &str,
        items: impl Iterator<Item = Result<Item>>,
    ) -> Result<u64> {
        let entry = self.store.table_even_building(table)?;
        if entry.definition.read().importing.is_none() {
            return Err(Error::ResourceInUse(format!(
                "Table {table} is not being imported"
            )));
        }
        self.store.storage.clear_table(&entry)?;
        let mut seen = std::collections::HashSet::new();
        let items = items.map(|item| -> Result<ImageItem> {
            let item = item?;
            let keys = entry.shape.key_of_item(&item)?;
            crate::ops::check_attribute_names(&item)?;
            crate::ops::check_item_size(&item)?;
            let key = item_key(entry.id, &entry.shape, &keys);
            let suffix = key.get(8..).map(<[u8]>::to_vec).unwrap_or_default();
            if !seen.insert(xxhash_rust::xxh3::xxh3_128(&suffix)) {
                return Err(Error::validation(format!(
                    "The input holds the item key {keys:?} more than once"
                )));
            }
            Ok((suffix, item))
        });
        let mut loaded = 0u64;
        for batch in load_batches(items) {
            let batch = batch?;
            // Lets crash tests stop a node in the middle of an import.
            fail::fail_point!("import-load");
            self.store.storage.load_unsorted(&entry, &batch)?;
            loaded += batch.len() as u64;
        }
        self.store.storage.sync_if_durable()?;
        Ok(loaded)
    }

    /// Makes `table`, filled by its import, ACTIVE.
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn finish_import(&self, table: &str) -> Result<()> {
        let _ddl = self.store.storage.ddl.lock();
        let entry = self.store.table_even_building(table)?;
        let mut definition = entry.definition.read().clone();
        definition.importing = None;
        let building = definition.is_building();
        self.store.save_definition(&entry, definition)?;
        entry.building.store(building, Ordering::Release);
        Ok(())
    }

    /// Drops `table`, which a failed import was building.
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn abandon_import(&self, table: &str) -> Result<()> {
        let _ddl = self.store.storage.ddl.lock();
        let entry = self.store.table_even_building(table)?;
        self.store.drop_table(&entry, |_| Ok(()))?;
        Ok(())
    }
}
