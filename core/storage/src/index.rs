//! Secondary indexes: each index entry lives in the `indexes` keyspace under
//! `index id | index partition key | index sort key | table partition key | table sort key`
//! (the table's key makes entries of items sharing an index key distinct; a multi-attribute
//! GSI key puts each of its partition attributes, then each of its sort attributes, there),
//! and holds the item's projected attributes. Entries are written by the commit path in the
//! same batch as the item; items without the index's key attributes have no entry (sparse
//! indexes).

use tidemark_model::TableId;
use tidemark_model::model::{
    AttributeValue, Item, KeyShape, MAX_HASH_KEY_BYTES, MAX_RANGE_KEY_BYTES, Projection,
    TableDefinition,
};
use tidemark_model::{Error, Result};

use super::keys::encode_key_value;

/// Which attributes an index keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexProjection {
    /// The whole item.
    All,
    /// The table's and the index's key attributes.
    KeysOnly,
    /// The key attributes and these.
    Include(Vec<String>),
}

/// One secondary index of a table, ready for the write and read paths.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    /// The index's id: the prefix of its entries (a [`TableId`], from the same counter).
    pub id: TableId,
    /// The index's name.
    pub name: String,
    /// The index's key schema.
    pub shape: KeyShape,
    /// Which attributes its entries keep.
    pub projection: IndexProjection,
    /// True for a global secondary index, false for a local one.
    pub global: bool,
}

impl IndexInfo {
    /// Every index of a table definition.
    pub fn all_of(definition: &TableDefinition) -> Result<Vec<IndexInfo>> {
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
                shape: KeyShape::from_gsi_schema(&g.key_schema, &definition.attribute_definitions)?,
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

    /// The storage key of `item`'s entry, or `None` when the item lacks one of the index's key
    /// attributes or its type does not match (such items are simply not in the index). A
    /// multi-attribute key encodes its partition attributes, then its sort attributes, in
    /// schema order; a single-attribute one is the same encoding with one of each.
    pub fn entry_key(&self, table_shape: &KeyShape, item: &Item) -> Option<Vec<u8>> {
        let mut key = self.id.to_be_bytes().to_vec();
        let partition_len = self.shape.partition_len();
        for (position, attribute) in self.shape.attributes().enumerate() {
            let value = item.get(&attribute.name)?;
            if value.value_type() != attribute.scalar_type.value_type()
                || key_value_too_long(value, position < partition_len)
                || key_value_empty(value)
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

    /// The attributes of `item` this index keeps, borrowed, in name order: what
    /// [`IndexInfo::project`] copies.
    pub fn projected<'a>(
        &'a self,
        table_shape: &'a KeyShape,
        item: &'a Item,
    ) -> impl Iterator<Item = (&'a String, &'a AttributeValue)> + 'a {
        item.iter()
            .filter(move |(name, _)| self.projects(table_shape, name))
    }

    /// True when the index keeps the top-level attribute `name`.
    pub fn projects(&self, table_shape: &KeyShape, name: &str) -> bool {
        match &self.projection {
            IndexProjection::All => true,
            IndexProjection::KeysOnly => {
                table_shape.is_key_attribute(name) || self.shape.is_key_attribute(name)
            }
            IndexProjection::Include(extra) => {
                table_shape.is_key_attribute(name)
                    || self.shape.is_key_attribute(name)
                    || extra.iter().any(|n| n == name)
            }
        }
    }

    /// The size of `item`'s entry, as DynamoDB counts an item: what
    /// `item_size(&self.project(..))` gives, without the copy.
    pub fn projected_size(&self, table_shape: &KeyShape, item: &Item) -> usize {
        self.projected(table_shape, item)
            .map(|(name, value)| name.len() + value.size_bytes())
            .sum()
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
    pub fn key_attributes<'a>(&'a self, table_shape: &'a KeyShape) -> Vec<&'a str> {
        let mut names: Vec<&str> = self.shape.attributes().map(|a| a.name.as_str()).collect();
        for a in table_shape.attributes() {
            if !names.contains(&a.name.as_str()) {
                names.push(&a.name);
            }
        }
        names
    }
}

/// True for an empty string or binary value. Like an overlong one it never becomes an index
/// key: writes reject it, and a backfill skips the items that have it, as DynamoDB does.
fn key_value_empty(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::S(s) => s.is_empty(),
        AttributeValue::B(b) => b.is_empty(),
        _ => false,
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
pub fn check_index_keys(indexes: &[IndexInfo], item: &Item) -> Result<()> {
    for index in indexes {
        let partition_len = index.shape.partition_len();
        for (position, attribute) in index.shape.attributes().enumerate() {
            let partition = position < partition_len;
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
            let empty = key_value_empty(value);
            if key_value_too_long(value, partition) {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: Size of index key {} has exceeded the maximum size limit of {} bytes. IndexName: {}",
                    attribute.name,
                    if partition {
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

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use super::*;
    use crate::keys::query_range;
    use tidemark_model::key_condition::{KeyCondition, SortKeyCondition};
    use tidemark_model::model::{AttributeDefinition, KeySchemaElement, Number};

    fn element(name: &str, key_type: &str) -> KeySchemaElement {
        KeySchemaElement {
            attribute_name: name.into(),
            key_type: key_type.into(),
        }
    }

    fn definitions(types: &[(&str, &str)]) -> Vec<AttributeDefinition> {
        types
            .iter()
            .map(|(name, t)| AttributeDefinition {
                attribute_name: (*name).into(),
                attribute_type: (*t).into(),
            })
            .collect()
    }

    fn index(schema: &[KeySchemaElement], defs: &[AttributeDefinition]) -> IndexInfo {
        IndexInfo {
            id: TableId::new(9),
            name: "gsi".into(),
            shape: KeyShape::from_gsi_schema(schema, defs).unwrap(),
            projection: IndexProjection::All,
            global: true,
        }
    }

    fn table_shape() -> KeyShape {
        KeyShape::from_schema(&[element("p", "HASH")], &definitions(&[("p", "S")])).unwrap()
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: i64) -> AttributeValue {
        AttributeValue::N(Number::from(v))
    }

    /// `h1` (S), `h2` (N) partition, `r1` (N), `r2` (S) sort.
    fn two_by_two() -> IndexInfo {
        index(
            &[
                element("h1", "HASH"),
                element("h2", "HASH"),
                element("r1", "RANGE"),
                element("r2", "RANGE"),
            ],
            &definitions(&[("h1", "S"), ("h2", "N"), ("r1", "N"), ("r2", "S")]),
        )
    }

    fn item(p: &str, h1: &str, h2: i64, r1: i64, r2: &str) -> Item {
        [
            ("p".to_string(), s(p)),
            ("h1".to_string(), s(h1)),
            ("h2".to_string(), n(h2)),
            ("r1".to_string(), n(r1)),
            ("r2".to_string(), s(r2)),
        ]
        .into()
    }

    #[test]
    fn single_attribute_entries_keep_their_encoding() {
        let index = index(
            &[element("x", "HASH"), element("y", "RANGE")],
            &definitions(&[("x", "S"), ("y", "N")]),
        );
        assert!(!index.shape.is_multi_attribute());
        let entry: Item = [
            ("p".to_string(), s("k")),
            ("x".to_string(), s("a")),
            ("y".to_string(), n(5)),
        ]
        .into();
        let mut expected = 9u64.to_be_bytes().to_vec();
        for value in [s("a"), n(5), s("k")] {
            super::super::keys::encode_key_value(&value, &mut expected);
        }
        assert_eq!(index.entry_key(&table_shape(), &entry), Some(expected));
    }

    #[test]
    fn multi_attribute_entries_sort_by_partition_then_sort_attributes_in_schema_order() {
        let index = two_by_two();
        let table = table_shape();
        // Listed in the index's order: h1, then h2 numerically, then r1 numerically, then r2,
        // then the table key.
        let ordered = [
            item("z", "a", 2, 10, "b"),
            item("y", "a", 10, -5, "z"),
            item("x", "a", 10, 3, "a"),
            item("w", "a", 10, 3, "b"),
            item("a", "a", 10, 20, "a"),
            item("b", "b", -1, 0, "a"),
        ];
        let keys: Vec<Vec<u8>> = ordered
            .iter()
            .map(|i| index.entry_key(&table, i).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn an_item_without_every_key_attribute_has_no_entry() {
        let index = two_by_two();
        for missing in ["h1", "h2", "r1", "r2"] {
            let mut partial = item("p", "a", 1, 2, "b");
            partial.remove(missing);
            assert_eq!(index.entry_key(&table_shape(), &partial), None, "{missing}");
        }
        let mut mistyped = item("p", "a", 1, 2, "b");
        mistyped.insert("r1".into(), s("2"));
        assert_eq!(index.entry_key(&table_shape(), &mistyped), None);
    }

    fn selects(range: &crate::keys::KeyRange, key: &[u8]) -> bool {
        let above = match &range.lower {
            Bound::Included(low) => key >= low.as_slice(),
            Bound::Excluded(low) => key > low.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &range.upper {
            Bound::Included(high) => key <= high.as_slice(),
            Bound::Excluded(high) => key < high.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    #[test]
    fn query_ranges_bind_a_prefix_then_range_the_next_sort_attribute() {
        let index = two_by_two();
        let table = table_shape();
        let items = [
            item("1", "a", 1, 1, "a"),
            item("2", "a", 1, 1, "b"),
            item("3", "a", 1, 1, "c"),
            item("4", "a", 1, 2, "a"),
            item("5", "a", 2, 1, "b"),
            item("6", "b", 1, 1, "b"),
        ];
        let chosen = |condition: KeyCondition| -> Vec<String> {
            let range = query_range(index.id, &condition);
            items
                .iter()
                .filter(|i| selects(&range, &index.entry_key(&table, i).unwrap()))
                .map(|i| match i.get("p") {
                    Some(AttributeValue::S(p)) => p.clone(),
                    _ => unreachable!(),
                })
                .collect()
        };
        let condition =
            |prefix: Vec<AttributeValue>, sort: Option<SortKeyCondition>| KeyCondition {
                partition_value: s("a"),
                partition_rest: vec![n(1)],
                sort_prefix: prefix,
                sort,
            };
        assert_eq!(chosen(condition(vec![], None)), ["1", "2", "3", "4"]);
        assert_eq!(
            chosen(condition(vec![], Some(SortKeyCondition::Eq(n(1))))),
            ["1", "2", "3"]
        );
        assert_eq!(
            chosen(condition(vec![], Some(SortKeyCondition::Gt(n(1))))),
            ["4"]
        );
        assert_eq!(
            chosen(condition(vec![n(1)], Some(SortKeyCondition::Gt(s("a"))))),
            ["2", "3"]
        );
        assert_eq!(
            chosen(condition(vec![n(1)], Some(SortKeyCondition::Lt(s("b"))))),
            ["1"]
        );
        assert_eq!(
            chosen(condition(vec![n(1)], Some(SortKeyCondition::Le(s("b"))))),
            ["1", "2"]
        );
        assert_eq!(
            chosen(condition(
                vec![n(1)],
                Some(SortKeyCondition::Between(s("b"), s("c")))
            )),
            ["2", "3"]
        );
        assert_eq!(
            chosen(condition(
                vec![n(1)],
                Some(SortKeyCondition::BeginsWith(s("c")))
            )),
            ["3"]
        );
        assert_eq!(
            chosen(condition(vec![n(1)], Some(SortKeyCondition::Eq(s("b"))))),
            ["2"]
        );
    }
}
