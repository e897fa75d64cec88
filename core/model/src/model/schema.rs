//! Table schemas as DynamoDB describes them (serde in DynamoDB JSON shape), and the key shape
//! derived from them that every item operation checks keys against.

use serde::{Deserialize, Serialize};

use super::TableId;
use super::value::{AttributeValue, Item, ValueType};
use crate::changes::ChangeSeq;
use crate::{Error, Result};

/// Largest partition key value, in bytes.
pub const MAX_HASH_KEY_BYTES: usize = 2048;
/// Largest sort key value, in bytes.
pub const MAX_RANGE_KEY_BYTES: usize = 1024;

/// One element of a key schema (`HASH` or `RANGE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySchemaElement {
    /// Attribute name.
    pub attribute_name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

/// The declared scalar type of a key attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    /// Attribute name.
    pub attribute_name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

/// Provisioned read and write capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedThroughput {
    /// Read capacity units.
    pub read_capacity_units: i64,
    /// Write capacity units.
    pub write_capacity_units: i64,
}

/// Which attributes an index copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection_type: Option<String>,
    /// Extra attributes for `INCLUDE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_key_attributes: Option<Vec<String>>,
}

/// A global secondary index definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GlobalSecondaryIndex {
    /// Index name.
    pub index_name: String,
    /// The index's key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Projected attributes.
    pub projection: Projection,
    /// Capacity, for provisioned tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<ProvisionedThroughput>,
}

/// A local secondary index definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LocalSecondaryIndex {
    /// Index name.
    pub index_name: String,
    /// The index's key schema (same partition key as the table).
    pub key_schema: Vec<KeySchemaElement>,
    /// Projected attributes.
    pub projection: Projection,
}

/// Whether a table has a DynamoDB stream, and what its records carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    /// Stream on or off.
    pub stream_enabled: bool,
    /// `KEYS_ONLY`, `NEW_IMAGE`, `OLD_IMAGE` or `NEW_AND_OLD_IMAGES`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_view_type: Option<String>,
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

/// The scalar types a key attribute may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl ScalarType {
    /// Parses `S`, `N` or `B`.
    pub fn parse(name: &str) -> Option<ScalarType> {
        match name {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }

    /// The matching attribute-value type.
    pub fn value_type(self) -> ValueType {
        match self {
            ScalarType::S => ValueType::S,
            ScalarType::N => ValueType::N,
            ScalarType::B => ValueType::B,
        }
    }
}

/// One key attribute: its name and declared type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: String,
    /// Declared type.
    pub scalar_type: ScalarType,
}

/// Most partition-key (and most sort-key) attributes of a multi-attribute GSI key.
const MAX_INDEX_KEY_ATTRIBUTES: usize = 4;

/// The key of a table or index: partition key and optional sort key. A global secondary
/// index's partition and sort keys may each name up to four attributes (DynamoDB's
/// multi-attribute keys); tables and local indexes have one of each at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShape {
    /// Partition ("hash") key; the first one of a multi-attribute partition key.
    pub hash: KeyAttribute,
    /// Sort ("range") key; the first one of a multi-attribute sort key.
    pub range: Option<KeyAttribute>,
    /// The further partition-key attributes of a multi-attribute GSI key, in schema order.
    pub hash_rest: Vec<KeyAttribute>,
    /// The further sort-key attributes of a multi-attribute GSI key, in schema order (empty
    /// when `range` is `None`).
    pub range_rest: Vec<KeyAttribute>,
}

/// DynamoDB's refusal of a key schema naming an attribute `definitions` does not define.
pub fn undefined_key_attributes(
    key_schema: &[KeySchemaElement],
    definitions: &[AttributeDefinition],
) -> Error {
    Error::validation(format!(
        "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
        key_schema
            .iter()
            .map(|k| k.attribute_name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        definitions
            .iter()
            .map(|d| d.attribute_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The attribute a key schema element names, with its declared type.
fn key_attribute(
    element: &KeySchemaElement,
    key_schema: &[KeySchemaElement],
    definitions: &[AttributeDefinition],
) -> Result<KeyAttribute> {
    let definition = definitions
        .iter()
        .find(|d| d.attribute_name == element.attribute_name)
        .ok_or_else(|| undefined_key_attributes(key_schema, definitions))?;
    let scalar_type = ScalarType::parse(&definition.attribute_type).ok_or_else(|| {
        Error::validation(format!(
            "1 validation error detected: Value '{}' at 'attributeDefinitions.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]",
            definition.attribute_type
        ))
    })?;
    Ok(KeyAttribute {
        name: element.attribute_name.clone(),
        scalar_type,
    })
}

impl KeyShape {
    /// Builds the key shape from a key schema and attribute definitions (already validated).
    ///
    /// # Errors
    /// Validation error when the schema does not name a HASH key with a declared type.
    pub fn from_schema(
        key_schema: &[KeySchemaElement],
        definitions: &[AttributeDefinition],
    ) -> Result<KeyShape> {
        let attribute = |element| key_attribute(element, key_schema, definitions);
        // In DynamoDB's order (dynalite's validations/createTable.js, its messages recorded
        // against DynamoDB): the same name twice, then the first element's type, then the
        // second's.
        let (hash, range) = match key_schema {
            [h, r] if h.attribute_name == r.attribute_name => {
                return Err(Error::validation(
                    "Both the Hash Key and the Range Key element in the KeySchema have the same name",
                ));
            }
            [h, ..] if h.key_type != "HASH" && key_schema.len() <= 2 => {
                return Err(Error::validation(
                    "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
                ));
            }
            [_, r] if r.key_type != "RANGE" => {
                return Err(Error::validation(
                    "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
                ));
            }
            [h] => (attribute(h)?, None),
            [h, r] => (attribute(h)?, Some(attribute(r)?)),
            [] => {
                return Err(Error::validation(
                    "1 validation error detected: Value '[]' at 'keySchema' failed to satisfy constraint: Member must have length greater than or equal to 1",
                ));
            }
            [_, _, _, ..] => {
                return Err(Error::validation(
                    "1 validation error detected: Value at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2",
                ));
            }
        };
        Ok(KeyShape {
            hash,
            range,
            hash_rest: Vec::new(),
            range_rest: Vec::new(),
        })
    }

    /// Builds the key shape of a global secondary index: one to four `HASH` elements, then
    /// up to four `RANGE` elements. A schema of one `HASH` and at most one `RANGE` element
    /// gets exactly the checks and messages of [`KeyShape::from_schema`].
    ///
    /// # Errors
    /// Validation error for a misordered, oversized or duplicated schema, or an attribute
    /// without a declared type.
    pub fn from_gsi_schema(
        key_schema: &[KeySchemaElement],
        definitions: &[AttributeDefinition],
    ) -> Result<KeyShape> {
        let hashes = key_schema.iter().filter(|k| k.key_type == "HASH").count();
        let single = match key_schema {
            [h] => h.key_type == "HASH",
            [h, r] => h.key_type == "HASH" && r.key_type == "RANGE",
            _ => false,
        };
        let first_is_hash = key_schema.first().is_some_and(|k| k.key_type == "HASH");
        if single || !first_is_hash && key_schema.len() <= 2 {
            return KeyShape::from_schema(key_schema, definitions);
        }
        if !first_is_hash {
            return Err(Error::validation(
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ));
        }
        if let Some(other) = key_schema
            .iter()
            .find(|k| k.key_type != "HASH" && k.key_type != "RANGE")
        {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{}' at 'keySchema.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]",
                other.key_type
            )));
        }
        for (position, element) in key_schema.iter().enumerate() {
            if key_schema
                .iter()
                .take(position)
                .any(|k| k.attribute_name == element.attribute_name)
            {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: Two key elements of the KeySchema have the same name: {}",
                    element.attribute_name
                )));
            }
        }
        if key_schema.iter().skip(hashes).any(|k| k.key_type == "HASH") {
            return Err(Error::validation(
                "One or more parameter values were invalid: Invalid KeySchema: every HASH key element must precede all RANGE key elements",
            ));
        }
        let ranges = key_schema.len() - hashes;
        if hashes > MAX_INDEX_KEY_ATTRIBUTES {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: Invalid KeySchema: a KeySchema can have at most {MAX_INDEX_KEY_ATTRIBUTES} HASH key elements, but has {hashes}"
            )));
        }
        if ranges > MAX_INDEX_KEY_ATTRIBUTES {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: Invalid KeySchema: a KeySchema can have at most {MAX_INDEX_KEY_ATTRIBUTES} RANGE key elements, but has {ranges}"
            )));
        }
        let mut attributes = key_schema
            .iter()
            .map(|element| key_attribute(element, key_schema, definitions))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut partition: Vec<KeyAttribute> = attributes.by_ref().take(hashes).collect();
        let mut sort: Vec<KeyAttribute> = attributes.collect();
        // The first element is a HASH one (checked above), so `partition` is not empty.
        let Some(hash) = (!partition.is_empty()).then(|| partition.remove(0)) else {
            return KeyShape::from_schema(key_schema, definitions);
        };
        let range = (!sort.is_empty()).then(|| sort.remove(0));
        Ok(KeyShape {
            hash,
            range,
            hash_rest: partition,
            range_rest: sort,
        })
    }

    /// The key attributes: the partition key's, then the sort key's, each in schema order.
    pub fn attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        self.partition_attributes().chain(self.sort_attributes())
    }

    /// The partition key's attributes, in schema order.
    pub fn partition_attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.hash).chain(&self.hash_rest)
    }

    /// The sort key's attributes, in schema order (none without a sort key).
    pub fn sort_attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        self.range.iter().chain(&self.range_rest)
    }

    /// True for a multi-attribute (GSI) key: more than one partition or sort attribute.
    pub fn is_multi_attribute(&self) -> bool {
        !self.hash_rest.is_empty() || !self.range_rest.is_empty()
    }

    /// How many partition-key attributes the key has.
    pub fn partition_len(&self) -> usize {
        1 + self.hash_rest.len()
    }

    /// True when `name` is a key attribute.
    pub fn is_key_attribute(&self, name: &str) -> bool {
        self.attributes().any(|a| a.name == name)
    }

    /// Checks the key attributes of a whole item (PutItem) and returns the key.
    ///
    /// # Errors
    /// Validation error for a missing, mistyped, empty or oversized key attribute.
    pub fn key_of_item(&self, item: &Item) -> Result<Item> {
        let mut key = Item::new();
        for attribute in self.attributes() {
            let value = item.get(&attribute.name).ok_or_else(|| {
                Error::validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    attribute.name
                ))
            })?;
            check_key_value(attribute, value, self.range.as_ref() == Some(attribute))?;
            key.insert(attribute.name.clone(), value.clone());
        }
        Ok(key)
    }

    /// The key of an item a BatchWriteItem puts: as [`Self::key_of_item`], but a missing or
    /// mistyped key attribute is DynamoDB's "The provided key element does not match the
    /// schema" there, where PutItem names the attribute (dynalite's tests, recorded against
    /// DynamoDB).
    ///
    /// # Errors
    /// Validation error when the item's key does not match the schema.
    pub fn key_of_batch_item(&self, item: &Item) -> Result<Item> {
        let matches = self.attributes().all(|attribute| {
            item.get(&attribute.name)
                .is_some_and(|v| v.value_type() == attribute.scalar_type.value_type())
        });
        if !matches {
            return Err(Error::validation(
                "The provided key element does not match the schema",
            ));
        }
        self.key_of_item(item)
    }

    /// Checks a `Key` parameter (GetItem, UpdateItem, DeleteItem): exactly the key attributes.
    ///
    /// # Errors
    /// Validation error when the key does not match the schema.
    pub fn check_key(&self, key: &Item) -> Result<()> {
        let expected = 1 + usize::from(self.range.is_some());
        let mismatch = || Error::validation("The provided key element does not match the schema");
        if key.len() != expected {
            return Err(mismatch());
        }
        for attribute in self.attributes() {
            let value = key.get(&attribute.name).ok_or_else(mismatch)?;
            if value.value_type() != attribute.scalar_type.value_type() {
                return Err(mismatch());
            }
            check_key_value(attribute, value, self.range.as_ref() == Some(attribute))?;
        }
        Ok(())
    }

    /// The key attributes of an item that has already been checked.
    pub fn project_key(&self, item: &Item) -> Item {
        self.attributes()
            .filter_map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone())))
            .collect()
    }
}

/// What the refusal of a key attribute holding an empty string or binary says.
const EMPTY_KEY_VALUE: &str = "The AttributeValue for a key attribute cannot contain an empty";

/// True for the refusal of a key attribute holding an empty string or binary, which
/// TransactWriteItems gives outright where other key faults cancel the transaction.
pub fn is_empty_key_value(error: &Error) -> bool {
    matches!(error, Error::Validation(m) if m.contains(EMPTY_KEY_VALUE))
}

fn check_key_value(attribute: &KeyAttribute, value: &AttributeValue, is_range: bool) -> Result<()> {
    let expected = attribute.scalar_type.value_type();
    if value.value_type() != expected {
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
            attribute.name,
            expected,
            value.value_type()
        )));
    }
    let len = match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        _ => return Ok(()),
    };
    if len == 0 {
        return Err(Error::validation(format!(
            "One or more parameter values are not valid. {EMPTY_KEY_VALUE} {} value. Key: {}",
            if matches!(value, AttributeValue::S(_)) {
                "string"
            } else {
                "binary"
            },
            attribute.name
        )));
    }
    if is_range && len > MAX_RANGE_KEY_BYTES {
        return Err(Error::validation(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    if !is_range && len > MAX_HASH_KEY_BYTES {
        return Err(Error::validation(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    Ok(())
}

/// Everything the node keeps about a table, as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    /// Table name.
    pub table_name: String,
    /// Internal id; a table re-created under the same name gets a new one.
    pub table_id: TableId,
    /// Primary key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Declared types of key attributes (table and index keys).
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub billing_mode: String,
    /// Provisioned capacity (also kept, as zeros, for on-demand tables).
    pub provisioned_throughput: ProvisionedThroughput,
    /// Global secondary indexes.
    #[serde(default)]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    /// Local secondary indexes.
    #[serde(default)]
    pub local_secondary_indexes: Vec<LocalSecondaryIndex>,
    /// Stream settings, when a stream was ever configured.
    #[serde(default)]
    pub stream_specification: Option<StreamSpecification>,
    /// Label of the current stream (an ISO 8601 timestamp), when the stream is enabled.
    #[serde(default)]
    pub latest_stream_label: Option<String>,
    /// Resource tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The attribute holding items' expiry times, while TTL is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_attribute: Option<String>,
    /// Settings other crates keep with the table, by name (Kafka publishing keeps
    /// `Publish`): opaque to core, stored as top-level members of the definition.
    #[serde(flatten)]
    pub extensions: std::collections::BTreeMap<String, serde_json::Value>,
    /// True while the items that existed when TTL was enabled are being indexed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ttl_backfilling: bool,
    /// Creation time, milliseconds since the Unix epoch.
    pub creation_millis: u64,
    /// Global secondary indexes whose backfill has not finished (`IndexStatus: CREATING`).
    #[serde(default)]
    pub backfilling: std::collections::BTreeSet<String>,
    /// Storage ids of the secondary indexes, by index name.
    #[serde(default)]
    pub index_ids: std::collections::BTreeMap<String, TableId>,
    /// A UUID naming this incarnation of the table (DescribeTable's `TableId`).
    #[serde(default)]
    pub table_uuid: String,
    /// The table's ARN.
    pub table_arn: String,
    /// Point-in-time recovery, while enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time_recovery: Option<PitrSettings>,
    /// Where a restored table came from, and while it is being built what it is built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_summary: Option<RestoreSummary>,
    /// The ARN of the import that is building the table, until it is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importing: Option<String>,
    /// When the table last became on-demand, milliseconds since the Unix epoch (`None`: never,
    /// or a table saved before this was kept, which [`TableDefinition::on_demand_since`]
    /// answers for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_per_request_since: Option<u64>,
    /// The highest read and write rates the table was ever ready for (`WarmThroughput`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_throughput: Option<ProvisionedThroughput>,
    /// While true, DeleteTable refuses the table.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletion_protection: bool,
    /// `STANDARD` or `STANDARD_INFREQUENT_ACCESS`, once one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_class: Option<String>,
    /// On a cluster region, the log the table's writes go through: named after the position
    /// of the log record that created it, so every node names the same log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_log: Option<String>,
}

/// The read and write rates DynamoDB reports an on-demand table (and index) warm for.
pub const ON_DEMAND_WARM_THROUGHPUT: ProvisionedThroughput = ProvisionedThroughput {
    read_capacity_units: 12_000,
    write_capacity_units: 4_000,
};

impl TableDefinition {
    /// When the table last became on-demand, if it ever was: a table saved before this was
    /// kept, and on-demand now, has been since its creation.
    pub fn on_demand_since(&self) -> Option<u64> {
        match (self.pay_per_request_since, self.billing_mode.as_str()) {
            (Some(since), _) => Some(since),
            (None, "PAY_PER_REQUEST") => Some(self.creation_millis),
            (None, _) => None,
        }
    }

    /// The rates the table is warm for: the highest it was ever ready for.
    pub fn warm(&self) -> ProvisionedThroughput {
        let now = match self.billing_mode.as_str() {
            "PAY_PER_REQUEST" => ON_DEMAND_WARM_THROUGHPUT,
            _ => self.provisioned_throughput,
        };
        match self.warm_throughput {
            Some(w) => ProvisionedThroughput {
                read_capacity_units: w.read_capacity_units.max(now.read_capacity_units),
                write_capacity_units: w.write_capacity_units.max(now.write_capacity_units),
            },
            None => now,
        }
    }
}

impl TableDefinition {
    /// True while a restore or an import builds the table.
    pub fn is_building(&self) -> bool {
        self.importing.is_some()
            || self
                .restore_summary
                .as_ref()
                .is_some_and(|r| r.in_progress.is_some())
    }
}

/// A table's point-in-time recovery settings, while enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PitrSettings {
    /// When recovery was (last) enabled, milliseconds since the Unix epoch: the window starts
    /// there.
    pub enabled_millis: u64,
    /// How many days of history are restorable (1–35).
    pub recovery_period_days: u32,
}

/// DescribeTable's `RestoreSummary` of a restored table, plus what a restore in progress
/// reads from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreSummary {
    /// ARN of the table the data came from.
    pub source_table_arn: String,
    /// ARN of the backup the data came from, for a restore from a backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_backup_arn: Option<String>,
    /// The instant restored, milliseconds since the Unix epoch.
    pub restore_date_time_millis: u64,
    /// What the table is being built from; `None` once it is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<RestoreSource>,
}

/// What a restore builds its table from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreSource {
    /// The live table with this id, as of this change sequence (its later changes undone).
    Log {
        /// Internal id of the source table.
        table_id: TableId,
        /// The last change sequence restored.
        at: ChangeSeq,
    },
    /// The on-demand or system backup with this id.
    Backup {
        /// The backup's id (its catalog key).
        backup_id: u64,
    },
}

impl TableDefinition {
    /// The primary key shape.
    ///
    /// # Errors
    /// Validation error when the stored schema is inconsistent (never for tables the node created).
    pub fn key_shape(&self) -> Result<KeyShape> {
        KeyShape::from_schema(&self.key_schema, &self.attribute_definitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(elements: &[(&str, &str)]) -> Vec<KeySchemaElement> {
        elements
            .iter()
            .map(|(name, key_type)| KeySchemaElement {
                attribute_name: (*name).into(),
                key_type: (*key_type).into(),
            })
            .collect()
    }

    fn all_strings(names: &[&str]) -> Vec<AttributeDefinition> {
        names
            .iter()
            .map(|name| AttributeDefinition {
                attribute_name: (*name).into(),
                attribute_type: "S".into(),
            })
            .collect()
    }

    fn gsi_error(elements: &[(&str, &str)]) -> String {
        let names: Vec<&str> = elements.iter().map(|(n, _)| *n).collect();
        KeyShape::from_gsi_schema(&schema(elements), &all_strings(&names))
            .unwrap_err()
            .to_string()
    }

    fn names<'a>(attributes: impl Iterator<Item = &'a KeyAttribute>) -> Vec<&'a str> {
        attributes.map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn gsi_keys_take_up_to_four_attributes_each() {
        let defs = all_strings(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        let shape = KeyShape::from_gsi_schema(
            &schema(&[
                ("a", "HASH"),
                ("b", "HASH"),
                ("c", "HASH"),
                ("d", "HASH"),
                ("e", "RANGE"),
                ("f", "RANGE"),
                ("g", "RANGE"),
                ("h", "RANGE"),
            ]),
            &defs,
        )
        .unwrap();
        assert!(shape.is_multi_attribute());
        assert_eq!(shape.partition_len(), 4);
        assert_eq!(names(shape.partition_attributes()), ["a", "b", "c", "d"]);
        assert_eq!(names(shape.sort_attributes()), ["e", "f", "g", "h"]);
        let shape =
            KeyShape::from_gsi_schema(&schema(&[("a", "HASH"), ("b", "HASH")]), &defs).unwrap();
        assert_eq!(names(shape.attributes()), ["a", "b"]);
        assert!(shape.range.is_none());
        let single =
            KeyShape::from_gsi_schema(&schema(&[("a", "HASH"), ("b", "RANGE")]), &defs).unwrap();
        assert!(!single.is_multi_attribute());
        assert_eq!(
            single,
            KeyShape::from_schema(&schema(&[("a", "HASH"), ("b", "RANGE")]), &defs).unwrap()
        );
    }

    #[test]
    fn gsi_key_schema_errors() {
        let five_hashes = gsi_error(&[
            ("a", "HASH"),
            ("b", "HASH"),
            ("c", "HASH"),
            ("d", "HASH"),
            ("e", "HASH"),
        ]);
        assert!(five_hashes.contains("at most 4 HASH"), "{five_hashes}");
        let five_ranges = gsi_error(&[
            ("a", "HASH"),
            ("b", "RANGE"),
            ("c", "RANGE"),
            ("d", "RANGE"),
            ("e", "RANGE"),
            ("f", "RANGE"),
        ]);
        assert!(five_ranges.contains("at most 4 RANGE"), "{five_ranges}");
        let interleaved = gsi_error(&[("a", "HASH"), ("b", "RANGE"), ("c", "HASH")]);
        assert!(
            interleaved.contains("HASH key element must precede all RANGE"),
            "{interleaved}"
        );
        assert!(gsi_error(&[("a", "HASH"), ("a", "HASH")]).contains("same name"));
        assert!(gsi_error(&[("a", "HASH"), ("b", "HASH"), ("a", "RANGE")]).contains("same name"));
        assert_eq!(
            gsi_error(&[("a", "HASH"), ("a", "RANGE")]),
            "Both the Hash Key and the Range Key element in the KeySchema have the same name"
        );
        assert!(gsi_error(&[("a", "RANGE")]).contains("not a HASH key type"));
        assert!(
            gsi_error(&[("a", "RANGE"), ("b", "RANGE"), ("c", "RANGE")])
                .contains("not a HASH key type")
        );
        let undefined = KeyShape::from_gsi_schema(
            &schema(&[("a", "HASH"), ("b", "HASH")]),
            &all_strings(&["a"]),
        )
        .unwrap_err()
        .to_string();
        assert!(undefined.contains("AttributeDefinitions"), "{undefined}");
        // Tables keep their one-partition, one-sort-attribute schema.
        let table = KeyShape::from_schema(
            &schema(&[("a", "HASH"), ("b", "RANGE"), ("c", "RANGE")]),
            &all_strings(&["a", "b", "c"]),
        )
        .unwrap_err()
        .to_string();
        assert!(table.contains("less than or equal to 2"), "{table}");
    }
}
