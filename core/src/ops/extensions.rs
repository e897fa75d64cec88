//! Table extensions: settings other crates keep with a table (Kafka publishing keeps its topic
//! and format under `Publish`). Core stores them with the table's definition, so they persist,
//! go with the table when it is deleted and are only ever changed through core, without
//! knowing what they mean.

use crate::{Error, Result, Store, TableId};

/// One table's value of an extension.
#[derive(Debug, Clone, PartialEq)]
pub struct TableExtension {
    /// Internal id of the table.
    pub table_id: TableId,
    /// Its name.
    pub table_name: String,
    /// The extension's value.
    pub value: serde_json::Value,
}

/// Names core's own definition members take, which an extension cannot.
const RESERVED: &[&str] = &[
    "TableName",
    "TableId",
    "KeySchema",
    "AttributeDefinitions",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
    "LatestStreamLabel",
    "Tags",
    "TimeToLiveAttribute",
    "TtlBackfilling",
    "CreationMillis",
    "Backfilling",
    "IndexIds",
    "TableUuid",
    "TableArn",
];

impl Store {
    /// Sets (`Some`) or clears (`None`) the extension `name` of a table, durably.
    ///
    /// # Errors
    /// ResourceNotFound; Validation for a name core uses itself; storage failures.
    pub fn set_table_extension(
        &self,
        table_name: &str,
        name: &str,
        value: Option<serde_json::Value>,
    ) -> Result<()> {
        if name.is_empty() || RESERVED.contains(&name) {
            return Err(Error::validation(format!(
                "{name:?} cannot name a table extension"
            )));
        }
        let entry = self.table(table_name)?;
        let _ddl = self.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        match value {
            Some(value) => definition.extensions.insert(name.to_string(), value),
            None => definition.extensions.remove(name),
        };
        self.save_definition(&entry, definition)
    }

    /// The extension `name` of every live table that has it, by table name.
    pub fn tables_with_extension(&self, name: &str) -> Vec<TableExtension> {
        let mut out: Vec<TableExtension> = self
            .storage
            .live_tables()
            .iter()
            .filter_map(|t| {
                let value = t.definition.read().extensions.get(name).cloned()?;
                Some(TableExtension {
                    table_id: t.id,
                    table_name: t.name.clone(),
                    value,
                })
            })
            .collect();
        out.sort_by(|a, b| a.table_name.cmp(&b.table_name));
        out
    }
}
