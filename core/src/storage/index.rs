//! Secondary indexes: each index entry lives in the `indexes` keyspace under
//! `index id | index partition key | index sort key | table partition key | table sort key`
//! (the table's key makes entries of items sharing an index key distinct), and holds the
//! item's projected attributes. Entries are written by the commit path in the same batch as
//! the item; items without the index's key attributes have no entry (sparse indexes).

use crate::model::{
    AttributeValue, Item, KeyShape, MAX_HASH_KEY_BYTES, MAX_RANGE_KEY_BYTES, Projection,
    TableDefinition,
};
use crate::{Error, Result};

use super::keys::encode_key_value;

/// Which attributes an index keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IndexProjection {
    /// The whole item.
    All,
    /// The table's and the index's key attributes.
    KeysOnly,
    /// The key attributes and these.
    Include(Vec<String>),
}

/// One secondary index of a table, ready for the write and read paths.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexInfo {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) shape: KeyShape,
    pub(crate) projection: IndexProjection,
    pub(crate) global: bool,
}

impl IndexInfo {
    /// Every index of a table definition.
    pub(crate) fn all_of(definition: &TableDefinition) -> Result<Vec<IndexInfo>> {
        let id_of = |name: &str| {
            definition.index_ids.get(name).copied().ok_or_else(|| {
                Error::Corrupt(format!(
                    "index {name} of {} has no id",
                    definition.table_name
                ))
            })
        };
        let projection = |p: &Projection| match p.projection_type.as_deref() {
            Some("KEYS_ONLY") => IndexProjection::KeysOnly,
            Some("INCLUDE") => {
                IndexProjection::Include(p.non_key_attributes.clone().unwrap_or_default())
            }
            _ => IndexProjection::All,
        };
        let mut out = Vec::new();
        for g in &definition.global_secondary_indexes {
            out.push(IndexInfo {
                id: id_of(&g.index_name)?,
                name: g.index_name.clone(),
                shape: KeyShape::from_schema(&g.key_schema, &definition.attribute_definitions)?,
                projection: projection(&g.projection),
                global: true,
            });
        }
        for l in &definition.local_secondary_indexes {
            out.push(IndexInfo {
                id: id_of(&l.index_name)?,
                name: l.index_name.clone(),
                shape: KeyShape::from_schema(&l.key_schema, &definition.attribute_definitions)?,
                projection: projection(&l.projection),
                global: false,
            });
        }
        Ok(out)
    }

    /// The storage key of `item`'s entry, or `None` when the item lacks the index key or its
    /// type does not match (such items are simply not in the index).
    pub(crate) fn entry_key(&self, table_shape: &KeyShape, item: &Item) -> Option<Vec<u8>> {
        let mut key = self.id.to_be_bytes().to_vec();
        for (position, attribute) in self.shape.attributes().enumerate() {
            let value = item.get(&attribute.name)?;
            if value.value_type() != attribute.scalar_type.value_type()
                || key_value_too_long(value, position == 0)
            {
                return None;
            }
            encode_key_value(value, &mut key);
        }
        for attribute in table_shape.attributes() {
            encode_key_value(item.get(&attribute.name)?, &mut key);
        }
        Some(key)
    }

    /// The attributes of `item` this index keeps.
    pub(crate) fn project(&self, table_shape: &KeyShape, item: &Item) -> Item {
        let keep_key =
            |name: &str| table_shape.is_key_attribute(name) || self.shape.is_key_attribute(name);
        match &self.projection {
            IndexProjection::All => item.clone(),
            IndexProjection::KeysOnly => item
                .iter()
                .filter(|(k, _)| keep_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            IndexProjection::Include(extra) => item
                .iter()
                .filter(|(k, _)| keep_key(k) || extra.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Names of the attributes that identify an entry: the index's keys, then the table's.
    pub(crate) fn key_attributes<'a>(&'a self, table_shape: &'a KeyShape) -> Vec<&'a str> {
        let mut names: Vec<&str> = self.shape.attributes().map(|a| a.name.as_str()).collect();
        for a in table_shape.attributes() {
            if !names.contains(&a.name.as_str()) {
                names.push(&a.name);
            }
        }
        names
    }
}

/// True when a key value is longer than DynamoDB allows (2048 bytes for a partition key,
/// 1024 for a sort key). Such values never become index keys: writes reject them, and a
/// backfill skips the items that have them, as DynamoDB does.
fn key_value_too_long(value: &AttributeValue, partition: bool) -> bool {
    let len = match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        _ => return false,
    };
    len > if partition {
        MAX_HASH_KEY_BYTES
    } else {
        MAX_RANGE_KEY_BYTES
    }
}

/// Rejects an item whose index key attributes have the wrong type, are empty or are too
/// long, as DynamoDB does on every write.
pub(crate) fn check_index_keys(indexes: &[IndexInfo], item: &Item) -> Result<()> {
    for index in indexes {
        for (position, attribute) in index.shape.attributes().enumerate() {
            let Some(value) = item.get(&attribute.name) else {
                continue;
            };
            let expected = attribute.scalar_type.value_type();
            if value.value_type() != expected {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                    attribute.name,
                    expected,
                    value.value_type(),
                    index.name
                )));
            }
            let empty = match value {
                AttributeValue::S(s) => s.is_empty(),
                AttributeValue::B(b) => b.is_empty(),
                _ => false,
            };
            if key_value_too_long(value, position == 0) {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: Size of index key {} exceeds the maximum of {} bytes. IndexName: {}",
                    attribute.name,
                    if position == 0 {
                        MAX_HASH_KEY_BYTES
                    } else {
                        MAX_RANGE_KEY_BYTES
                    },
                    index.name
                )));
            }
            if empty {
                return Err(Error::validation(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}",
                    index.name, attribute.name
                )));
            }
        }
    }
    Ok(())
}
