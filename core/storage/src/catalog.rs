//! Table metadata: the in-memory catalog of live tables, backed by the `catalog` keyspace
//! (table definitions as JSON) and the `stats` keyspace (exact item counts and sizes).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::RwLock;

use super::index::IndexInfo;
use tidemark_model::Result;
use tidemark_model::model::{KeyShape, TableDefinition, TableId};
use tidemark_model::stream_log::StreamInfo;

/// A live table as the operations see it.
#[derive(Debug)]
pub struct TableEntry {
    /// The table's id: the prefix of its keys in every keyspace.
    pub id: TableId,
    /// The table's name.
    pub name: String,
    /// The table's key schema.
    pub shape: KeyShape,
    /// The table's definition as DescribeTable shows it.
    pub definition: RwLock<TableDefinition>,
    /// Secondary indexes the write path maintains (replaced whole when indexes change).
    pub indexes: RwLock<Arc<Vec<IndexInfo>>>,
    /// Set (under the sequencer lock) when the table is deleted, so no commit lands after.
    pub dropped: AtomicBool,
    /// The TTL attribute while TTL is enabled; the commit path indexes its values.
    pub ttl_attribute: RwLock<Option<Arc<str>>>,
    /// True while a restore or an import builds the table: only DescribeTable and ListTables
    /// see it.
    pub building: AtomicBool,
}

impl TableEntry {
    /// The entry of a table with this definition and key schema.
    pub fn new(definition: TableDefinition, shape: KeyShape) -> Result<Self> {
        let indexes = IndexInfo::all_of(&definition)?;
        let ttl_attribute = definition.time_to_live_attribute.as_deref().map(Arc::from);
        let building = definition.is_building();
        Ok(TableEntry {
            building: AtomicBool::new(building),
            ttl_attribute: RwLock::new(ttl_attribute),
            id: definition.table_id,
            name: definition.table_name.clone(),
            shape,
            definition: RwLock::new(definition),
            dropped: AtomicBool::new(false),
            indexes: RwLock::new(Arc::new(indexes)),
        })
    }

    /// The TTL attribute, while TTL is enabled.
    pub fn ttl_attribute(&self) -> Option<Arc<str>> {
        self.ttl_attribute.read().clone()
    }

    /// The table's secondary indexes.
    pub fn indexes(&self) -> Arc<Vec<IndexInfo>> {
        self.indexes.read().clone()
    }
}

/// Live tables by name, and every kept stream by table id and label.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Live tables by name.
    pub tables: RwLock<HashMap<String, Arc<TableEntry>>>,
    /// Every kept stream, by table id and label.
    pub streams: RwLock<HashMap<(TableId, String), Arc<StreamInfo>>>,
}

/// Catalog keyspace key of a table definition.
pub fn table_key(name: &str) -> Vec<u8> {
    [b"table/".as_slice(), name.as_bytes()].concat()
}

/// Catalog keyspace key of the next table id.
pub const NEXT_TABLE_ID_KEY: &[u8] = b"meta/next_table_id";
