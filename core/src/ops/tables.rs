//! Table operations: create, describe, list, update, delete, and tags.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::changes::ChangeSeq;
use crate::model::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyShape, LocalSecondaryIndex,
    Projection, ProvisionedThroughput, ScalarType, StreamSpecification, TableDefinition, Tag,
};
use crate::storage::catalog::{NEXT_TABLE_ID_KEY, TableEntry, table_key};
use crate::storage::index::IndexInfo;
use crate::storage::stream_catalog_entry;
use crate::stream_log::{Generation, StreamEnd, StreamInfo};
use crate::{Error, Result, Store};

const MAX_LSIS: usize = 5;
const MAX_GSIS: usize = 20;
/// Longest name of a key attribute (table or index), in bytes.
const MAX_KEY_NAME_BYTES: usize = 255;

/// A CreateTable request.
#[derive(Debug, Default, Clone)]
pub struct CreateTableRequest {
    /// Table name.
    pub table_name: String,
    /// Primary key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Types of every key attribute of the table and its indexes.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// `PROVISIONED` (default) or `PAY_PER_REQUEST`.
    pub billing_mode: Option<String>,
    /// Capacity, required for provisioned tables.
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// Global secondary indexes.
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    /// Local secondary indexes.
    pub local_secondary_indexes: Vec<LocalSecondaryIndex>,
    /// Stream settings.
    pub stream_specification: Option<StreamSpecification>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// An UpdateTable request (billing, throughput, stream).
#[derive(Debug, Default, Clone)]
pub struct UpdateTableRequest {
    /// Table name.
    pub table_name: String,
    /// New billing mode.
    pub billing_mode: Option<String>,
    /// New capacity.
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// New stream settings.
    pub stream_specification: Option<StreamSpecification>,
    /// Types of the key attributes of indexes being created.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// Global secondary indexes to create, update or delete (at most one create or delete).
    pub global_secondary_index_updates: Vec<GsiUpdate>,
}

/// One element of UpdateTable's `GlobalSecondaryIndexUpdates`.
#[derive(Debug, Clone)]
pub enum GsiUpdate {
    /// Create an index and backfill it from the table's items.
    Create(GlobalSecondaryIndex),
    /// Change an index's provisioned throughput.
    Update {
        /// Index name.
        index_name: String,
        /// New capacity.
        provisioned_throughput: ProvisionedThroughput,
    },
    /// Delete an index and its entries.
    Delete(String),
}

/// A table's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TableStatus {
    /// Ready.
    Active,
    /// Being deleted (DeleteTable's answer).
    Deleting,
}

/// `BillingModeSummary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BillingModeSummary {
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub billing_mode: String,
    /// When the table became on-demand (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_to_pay_per_request_date_time: Option<f64>,
}

/// `ProvisionedThroughput` as described.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedThroughputDescription {
    /// Always 0 here.
    pub number_of_decreases_today: i64,
    /// Read capacity units (0 for on-demand tables).
    pub read_capacity_units: i64,
    /// Write capacity units (0 for on-demand tables).
    pub write_capacity_units: i64,
}

/// An index as described.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDescription {
    /// Index name.
    pub index_name: String,
    /// Index key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Projection.
    pub projection: Projection,
    /// `ACTIVE` for global indexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_status: Option<String>,
    /// True while a global index created by UpdateTable is being backfilled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfilling: Option<bool>,
    /// Capacity of global indexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<ProvisionedThroughputDescription>,
    /// The index's ARN.
    pub index_arn: String,
    /// Size (0 until indexes are maintained).
    pub index_size_bytes: i64,
    /// Items (0 until indexes are maintained).
    pub item_count: i64,
}

/// DynamoDB's `TableDescription`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDescription {
    /// Table name.
    pub table_name: String,
    /// `ACTIVE` or `DELETING`.
    pub table_status: TableStatus,
    /// The table's ARN.
    pub table_arn: String,
    /// A UUID naming this incarnation of the table.
    pub table_id: String,
    /// Key schema (absent in DeleteTable's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_schema: Option<Vec<KeySchemaElement>>,
    /// Attribute definitions (absent in DeleteTable's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_definitions: Option<Vec<AttributeDefinition>>,
    /// Creation time in seconds since the epoch (absent in DeleteTable's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date_time: Option<f64>,
    /// Exact item count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_count: Option<i64>,
    /// Exact size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_size_bytes: Option<i64>,
    /// Billing mode.
    pub billing_mode_summary: BillingModeSummary,
    /// Capacity.
    pub provisioned_throughput: ProvisionedThroughputDescription,
    /// Global secondary indexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_secondary_indexes: Option<Vec<IndexDescription>>,
    /// Local secondary indexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_secondary_indexes: Option<Vec<IndexDescription>>,
    /// Stream settings (only while a stream is enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_specification: Option<StreamSpecification>,
    /// Current stream label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_stream_label: Option<String>,
    /// Current stream ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_stream_arn: Option<String>,
    /// Deletion protection (never enabled here).
    pub deletion_protection_enabled: bool,
}

/// What an UpdateTable did to the table's indexes.
enum IndexChange {
    None,
    Created,
    Deleted(u64),
}

/// The result of ListTables.
#[derive(Debug, Clone, PartialEq)]
pub struct ListTablesOutcome {
    /// Names, in order.
    pub table_names: Vec<String>,
    /// Where the next page starts, when there is one.
    pub last_evaluated_table_name: Option<String>,
}

fn coral(value: &str, field: &str, constraint: &str) -> Error {
    Error::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

/// Checks a table or index name: 3–255 characters of `[a-zA-Z0-9_.-]`.
pub(crate) fn check_name(name: &str, field: &str) -> Result<()> {
    if name.len() < 3 {
        return Err(coral(
            name,
            field,
            "Member must have length greater than or equal to 3",
        ));
    }
    if name.len() > 255 {
        return Err(coral(
            name,
            field,
            "Member must have length less than or equal to 255",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(coral(
            name,
            field,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

fn check_projection(projection: &Projection) -> Result<()> {
    match projection.projection_type.as_deref() {
        Some("ALL") | Some("KEYS_ONLY") | None => {
            if projection.non_key_attributes.is_some() {
                return Err(Error::validation(
                    "One or more parameter values were invalid: ProjectionType is not INCLUDE, but NonKeyAttributes is specified",
                ));
            }
            Ok(())
        }
        Some("INCLUDE") => Ok(()),
        Some(other) => Err(coral(
            other,
            "projection.projectionType",
            "Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]",
        )),
    }
}

fn millis_to_seconds(millis: u64) -> f64 {
    millis as f64 / 1000.0
}

impl Store {
    /// Applies GlobalSecondaryIndexUpdates to a table definition (not yet saved).
    fn apply_gsi_updates(
        &self,
        definition: &mut TableDefinition,
        request: &UpdateTableRequest,
    ) -> Result<IndexChange> {
        let updates = &request.global_secondary_index_updates;
        let structural = updates
            .iter()
            .filter(|u| !matches!(u, GsiUpdate::Update { .. }))
            .count();
        if structural > 1 {
            return Err(Error::LimitExceeded(
                "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table".into(),
            ));
        }
        let mut change = IndexChange::None;
        for update in updates {
            match update {
                GsiUpdate::Create(gsi) => {
                    check_name(
                        &gsi.index_name,
                        "globalSecondaryIndexUpdates.member.create.indexName",
                    )?;
                    let exists = definition
                        .global_secondary_indexes
                        .iter()
                        .any(|g| g.index_name == gsi.index_name)
                        || definition
                            .local_secondary_indexes
                            .iter()
                            .any(|l| l.index_name == gsi.index_name);
                    if exists {
                        return Err(Error::validation(format!(
                            "One or more parameter values were invalid: Index with name: {} already exists",
                            gsi.index_name
                        )));
                    }
                    if definition.global_secondary_indexes.len() >= MAX_GSIS {
                        return Err(Error::LimitExceeded(
                            "Subscriber limit exceeded: The number of global secondary indexes exceeds the per-table limit of 20".into(),
                        ));
                    }
                    for new in &request.attribute_definitions {
                        check_key_name_length(
                            &new.attribute_name,
                            "attributeDefinitions.member.attributeName",
                        )?;
                        if ScalarType::parse(&new.attribute_type).is_none() {
                            return Err(coral(
                                &new.attribute_type,
                                "attributeDefinitions.member.attributeType",
                                "Member must satisfy enum value set: [B, N, S]",
                            ));
                        }
                        match definition
                            .attribute_definitions
                            .iter()
                            .find(|d| d.attribute_name == new.attribute_name)
                        {
                            Some(old) if old.attribute_type != new.attribute_type => {
                                return Err(Error::validation(format!(
                                    "One or more parameter values were invalid: Attribute {} is redefined with type {} but is already of type {}",
                                    new.attribute_name, new.attribute_type, old.attribute_type
                                )));
                            }
                            Some(_) => {}
                            None => definition.attribute_definitions.push(new.clone()),
                        }
                    }
                    for element in &gsi.key_schema {
                        check_key_name_length(
                            &element.attribute_name,
                            "globalSecondaryIndexUpdates.member.create.keySchema.member.attributeName",
                        )?;
                    }
                    // DynamoDB wants the new index's key types in this request, even for
                    // attributes the table already declares.
                    if let Some(missing) = gsi.key_schema.iter().find(|k| {
                        !request
                            .attribute_definitions
                            .iter()
                            .any(|d| d.attribute_name == k.attribute_name)
                    }) {
                        return Err(Error::validation(format!(
                            "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                            missing.attribute_name,
                            request
                                .attribute_definitions
                                .iter()
                                .map(|d| d.attribute_name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    KeyShape::from_schema(&gsi.key_schema, &definition.attribute_definitions)?;
                    check_projection(&gsi.projection)?;
                    let id = self.storage.next_table_id()?;
                    self.storage.write_catalog(
                        &[(NEXT_TABLE_ID_KEY.to_vec(), (id + 1).to_be_bytes().to_vec())],
                        &[],
                    )?;
                    definition.index_ids.insert(gsi.index_name.clone(), id);
                    definition.global_secondary_indexes.push(gsi.clone());
                    definition.backfilling.insert(gsi.index_name.clone());
                    change = IndexChange::Created;
                }
                GsiUpdate::Delete(name) => {
                    let before = definition.global_secondary_indexes.len();
                    definition
                        .global_secondary_indexes
                        .retain(|g| g.index_name != *name);
                    if definition.global_secondary_indexes.len() == before {
                        return Err(Error::ResourceNotFound(format!(
                            "Requested resource not found: Index: {name} not found"
                        )));
                    }
                    let id = definition.index_ids.remove(name).unwrap_or_default();
                    definition.backfilling.remove(name);
                    change = IndexChange::Deleted(id);
                }
                GsiUpdate::Update {
                    index_name,
                    provisioned_throughput,
                } => {
                    let gsi = definition
                        .global_secondary_indexes
                        .iter_mut()
                        .find(|g| g.index_name == *index_name)
                        .ok_or_else(|| {
                            Error::ResourceNotFound(format!(
                                "Requested resource not found: Index: {index_name} not found"
                            ))
                        })?;
                    check_throughput(provisioned_throughput)?;
                    gsi.provisioned_throughput = Some(*provisioned_throughput);
                }
            }
        }
        Ok(change)
    }

    /// Makes the write path maintain the saved definition's indexes, then backfills a created
    /// index or removes a deleted one's entries.
    fn finish_index_change(&self, entry: &TableEntry, change: IndexChange) -> Result<()> {
        if matches!(change, IndexChange::None) {
            return Ok(());
        }
        let indexes = Arc::new(IndexInfo::all_of(&entry.definition.read())?);
        // IMPORTANT: swapped before the backfill starts, so every write from here on
        // maintains the new index; the backfill covers the items written before.
        *entry.indexes.write() = indexes.clone();
        match change {
            // The backfill runs in the background (`run_pending_backfills`).
            IndexChange::Created => self.backfill_requested.notify_one(),
            IndexChange::Deleted(id) => self.storage.purge_index(id)?,
            IndexChange::None => {}
        }
        Ok(())
    }

    /// Backfills every global secondary index whose backfill has not finished (new ones, and
    /// any a restart interrupted), then marks it ACTIVE. Returns how many were finished.
    ///
    /// # Errors
    /// Storage failures; the backfill resumes on the next call.
    pub fn run_pending_backfills(&self) -> Result<usize> {
        let mut finished = 0;
        for entry in self.storage.live_tables() {
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
                self.storage.backfill_index(&entry, &index)?;
                let _ddl = self.storage.ddl.lock();
                if entry.dropped.load(Ordering::Acquire) {
                    continue;
                }
                let mut definition = entry.definition.read().clone();
                definition.backfilling.remove(&name);
                self.save_definition(&entry, definition)?;
                finished += 1;
            }
            if entry.definition.read().ttl_backfilling {
                self.storage.backfill_ttl(&entry)?;
                let _ddl = self.storage.ddl.lock();
                let mut definition = entry.definition.read().clone();
                if entry.dropped.load(Ordering::Acquire) || !definition.ttl_backfilling {
                    continue;
                }
                definition.ttl_backfilling = false;
                self.save_definition(&entry, definition)?;
                finished += 1;
            }
        }
        Ok(finished)
    }

    /// Resolves when UpdateTable has created an index that needs a backfill.
    pub async fn backfill_requested(&self) {
        self.backfill_requested.notified().await;
    }

    pub(crate) fn table(&self, name: &str) -> Result<Arc<TableEntry>> {
        check_name(name, "tableName")?;
        self.storage.table(name).ok_or_else(|| {
            Error::ResourceNotFound(format!(
                "Requested resource not found: Table: {name} not found"
            ))
        })
    }

    fn table_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.config.region, self.config.account_id, name
        )
    }

    /// The table named by an ARN of this node's region and account.
    fn table_by_arn(&self, arn: &str) -> Result<Arc<TableEntry>> {
        let prefix = format!(
            "arn:aws:dynamodb:{}:{}:table/",
            self.config.region, self.config.account_id
        );
        match arn.strip_prefix(&prefix) {
            Some(name) if !name.contains('/') => self.table(name).map_err(|_| {
                Error::ResourceNotFound(format!(
                    "Requested resource not found: ResourcArn: {arn} not found"
                ))
            }),
            _ if !arn.starts_with("arn:") => Err(Error::validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}: ARNs must start with 'arn:'"
            ))),
            _ => Err(Error::validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))),
        }
    }

    /// Creates a table; it is ACTIVE at once.
    ///
    /// # Errors
    /// Validation for a bad schema, ResourceInUse when the name is taken.
    pub fn create_table(&self, request: CreateTableRequest) -> Result<TableDescription> {
        check_name(&request.table_name, "tableName")?;
        let mut seen = HashSet::new();
        for definition in &request.attribute_definitions {
            if !seen.insert(definition.attribute_name.as_str()) {
                return Err(Error::validation(format!(
                    "Cannot have two attributes with the same name: Duplicate AttributeName: {}",
                    definition.attribute_name
                )));
            }
            check_key_name_length(
                &definition.attribute_name,
                "attributeDefinitions.member.attributeName",
            )?;
            if definition.attribute_name.is_empty() {
                return Err(Error::validation(
                    "One or more parameter values were invalid: Empty AttributeName in AttributeDefinitions",
                ));
            }
            if ScalarType::parse(&definition.attribute_type).is_none() {
                return Err(coral(
                    &definition.attribute_type,
                    "attributeDefinitions.member.attributeType",
                    "Member must satisfy enum value set: [B, N, S]",
                ));
            }
        }
        let index_key_names = request
            .global_secondary_indexes
            .iter()
            .flat_map(|g| &g.key_schema)
            .chain(
                request
                    .local_secondary_indexes
                    .iter()
                    .flat_map(|l| &l.key_schema),
            );
        for element in request.key_schema.iter().chain(index_key_names) {
            check_key_name_length(&element.attribute_name, "keySchema.member.attributeName")?;
        }
        for element in &request.key_schema {
            if element.key_type != "HASH" && element.key_type != "RANGE" {
                return Err(coral(
                    &element.key_type,
                    "keySchema.member.keyType",
                    "Member must satisfy enum value set: [HASH, RANGE]",
                ));
            }
        }
        let shape = KeyShape::from_schema(&request.key_schema, &request.attribute_definitions)?;

        let mut used: HashSet<&str> = request
            .key_schema
            .iter()
            .map(|k| k.attribute_name.as_str())
            .collect();
        let mut index_names = HashSet::new();
        if request.local_secondary_indexes.len() > MAX_LSIS {
            return Err(Error::validation(
                "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of 5",
            ));
        }
        if request.global_secondary_indexes.len() > MAX_GSIS {
            return Err(Error::LimitExceeded(
                "Subscriber limit exceeded: The number of global secondary indexes exceeds the per-table limit of 20".into(),
            ));
        }
        for lsi in &request.local_secondary_indexes {
            check_name(&lsi.index_name, "localSecondaryIndexes.member.indexName")?;
            if !index_names.insert(lsi.index_name.as_str()) {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: Duplicate index name: {}",
                    lsi.index_name
                )));
            }
            let index_shape =
                KeyShape::from_schema(&lsi.key_schema, &request.attribute_definitions)?;
            if shape.range.is_none() {
                return Err(Error::validation(
                    "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
                ));
            }
            if index_shape.hash.name != shape.hash.name || index_shape.range.is_none() {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                    lsi.index_name, index_shape.hash.name, shape.hash.name
                )));
            }
            check_projection(&lsi.projection)?;
            used.extend(lsi.key_schema.iter().map(|k| k.attribute_name.as_str()));
        }
        let billing_mode = request
            .billing_mode
            .clone()
            .unwrap_or_else(|| "PROVISIONED".into());
        for gsi in &request.global_secondary_indexes {
            check_name(&gsi.index_name, "globalSecondaryIndexes.member.indexName")?;
            if !index_names.insert(gsi.index_name.as_str()) {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: Duplicate index name: {}",
                    gsi.index_name
                )));
            }
            KeyShape::from_schema(&gsi.key_schema, &request.attribute_definitions)?;
            check_projection(&gsi.projection)?;
            if billing_mode == "PROVISIONED" && gsi.provisioned_throughput.is_none() {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: ProvisionedThroughput must be specified for index: {}",
                    gsi.index_name
                )));
            }
            used.extend(gsi.key_schema.iter().map(|k| k.attribute_name.as_str()));
        }
        if request
            .attribute_definitions
            .iter()
            .any(|d| !used.contains(d.attribute_name.as_str()))
        {
            return Err(Error::validation(
                "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
        let provisioned_throughput = match (billing_mode.as_str(), request.provisioned_throughput) {
            ("PROVISIONED", Some(t)) => {
                check_throughput(&t)?;
                t
            }
            ("PROVISIONED", None) => {
                return Err(Error::validation(
                    "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                ));
            }
            ("PAY_PER_REQUEST", None) => ProvisionedThroughput {
                read_capacity_units: 0,
                write_capacity_units: 0,
            },
            ("PAY_PER_REQUEST", Some(_)) => {
                return Err(Error::validation(
                    "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            (other, _) => {
                return Err(coral(
                    other,
                    "billingMode",
                    "Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]",
                ));
            }
        };
        check_tags(&request.tags)?;
        let stream_specification = match &request.stream_specification {
            Some(spec) => check_stream_spec(spec)?,
            None => None,
        };

        let _ddl = self.storage.ddl.lock();
        if self.storage.table(&request.table_name).is_some() {
            return Err(Error::ResourceInUse(format!(
                "Table already exists: {}",
                request.table_name
            )));
        }
        let table_id = self.storage.next_table_id()?;
        let index_ids: std::collections::BTreeMap<String, u64> = request
            .global_secondary_indexes
            .iter()
            .map(|g| g.index_name.clone())
            .chain(
                request
                    .local_secondary_indexes
                    .iter()
                    .map(|l| l.index_name.clone()),
            )
            .zip(table_id + 1..)
            .collect();
        let next_id = table_id + 1 + index_ids.len() as u64;
        let now = self.clock.now_millis();
        let latest_stream_label = stream_specification.as_ref().map(|_| stream_label(now));
        let definition = TableDefinition {
            table_name: request.table_name.clone(),
            table_id,
            key_schema: request.key_schema,
            attribute_definitions: request.attribute_definitions,
            billing_mode,
            provisioned_throughput,
            global_secondary_indexes: request.global_secondary_indexes,
            local_secondary_indexes: request.local_secondary_indexes,
            stream_specification,
            latest_stream_label,
            tags: request.tags,
            time_to_live_attribute: None,
            ttl_backfilling: false,
            extensions: Default::default(),
            creation_millis: now,
            table_uuid: uuid::Uuid::new_v4().to_string(),
            index_ids,
            backfilling: Default::default(),
            table_arn: self.table_arn(&request.table_name),
        };
        let json = serde_json::to_vec(&definition).map_err(|e| Error::Internal(e.to_string()))?;
        let mut puts = vec![
            (table_key(&definition.table_name), json),
            (NEXT_TABLE_ID_KEY.to_vec(), next_id.to_be_bytes().to_vec()),
        ];
        let stream = match &definition.stream_specification {
            Some(spec) => self.storage.with_sequence_boundary(|boundary| {
                Ok(Some(self.new_stream(&definition, spec, boundary, now)))
            })?,
            None => None,
        };
        if let Some(stream) = &stream {
            puts.push(stream_catalog_entry(stream)?);
        }
        self.storage.write_catalog(&puts, &[])?;
        self.storage
            .install_streams(stream.into_iter().collect(), &[]);
        let entry = Arc::new(TableEntry::new(definition, shape)?);
        self.storage
            .catalog
            .tables
            .write()
            .insert(entry.name.clone(), entry.clone());
        Ok(self.describe(&entry, TableStatus::Active))
    }

    fn describe(&self, entry: &TableEntry, status: TableStatus) -> TableDescription {
        let definition = entry.definition.read();
        let stats = self.storage.table_stats(entry.id);
        let on_demand = definition.billing_mode == "PAY_PER_REQUEST";
        let throughput = |t: &ProvisionedThroughput| ProvisionedThroughputDescription {
            number_of_decreases_today: 0,
            read_capacity_units: t.read_capacity_units,
            write_capacity_units: t.write_capacity_units,
        };
        let index_arn = |name: &str| format!("{}/index/{}", definition.table_arn, name);
        let index_stats = |name: &str| {
            definition
                .index_ids
                .get(name)
                .map(|id| self.storage.table_stats(*id))
                .unwrap_or_default()
        };
        let full = status == TableStatus::Active;
        let gsis: Vec<IndexDescription> = definition
            .global_secondary_indexes
            .iter()
            .map(|g| IndexDescription {
                index_name: g.index_name.clone(),
                key_schema: g.key_schema.clone(),
                projection: g.projection.clone(),
                index_status: Some(
                    if definition.backfilling.contains(&g.index_name) {
                        "CREATING"
                    } else {
                        "ACTIVE"
                    }
                    .into(),
                ),
                backfilling: definition
                    .backfilling
                    .contains(&g.index_name)
                    .then_some(true),
                provisioned_throughput: Some(throughput(&g.provisioned_throughput.unwrap_or(
                    ProvisionedThroughput {
                        read_capacity_units: 0,
                        write_capacity_units: 0,
                    },
                ))),
                index_arn: index_arn(&g.index_name),
                index_size_bytes: index_stats(&g.index_name).bytes,
                item_count: index_stats(&g.index_name).items,
            })
            .collect();
        let lsis: Vec<IndexDescription> = definition
            .local_secondary_indexes
            .iter()
            .map(|l| IndexDescription {
                index_name: l.index_name.clone(),
                key_schema: l.key_schema.clone(),
                projection: l.projection.clone(),
                index_status: None,
                backfilling: None,
                provisioned_throughput: None,
                index_arn: index_arn(&l.index_name),
                index_size_bytes: index_stats(&l.index_name).bytes,
                item_count: index_stats(&l.index_name).items,
            })
            .collect();
        let stream_on = definition
            .stream_specification
            .as_ref()
            .is_some_and(|s| s.stream_enabled);
        // The latest stream stays described after a disable, while it is still readable.
        let latest_stream = definition.latest_stream_label.as_ref().and_then(|label| {
            self.storage
                .catalog
                .streams
                .read()
                .get(&(entry.id, label.clone()))
                .cloned()
        });
        TableDescription {
            table_name: definition.table_name.clone(),
            table_status: status,
            table_arn: definition.table_arn.clone(),
            table_id: definition.table_uuid.clone(),
            key_schema: full.then(|| definition.key_schema.clone()),
            attribute_definitions: full.then(|| definition.attribute_definitions.clone()),
            creation_date_time: full.then(|| millis_to_seconds(definition.creation_millis)),
            item_count: Some(stats.items),
            table_size_bytes: Some(stats.bytes),
            billing_mode_summary: BillingModeSummary {
                billing_mode: definition.billing_mode.clone(),
                last_update_to_pay_per_request_date_time: on_demand
                    .then(|| millis_to_seconds(definition.creation_millis)),
            },
            provisioned_throughput: throughput(&definition.provisioned_throughput),
            global_secondary_indexes: (full && !gsis.is_empty()).then_some(gsis),
            local_secondary_indexes: (full && !lsis.is_empty()).then_some(lsis),
            stream_specification: definition
                .stream_specification
                .clone()
                .filter(|_| stream_on),
            latest_stream_label: latest_stream.as_ref().map(|s| s.label.clone()),
            latest_stream_arn: latest_stream.as_ref().map(|s| s.arn()),
            deletion_protection_enabled: false,
        }
    }

    /// Describes a table.
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn describe_table(&self, name: &str) -> Result<TableDescription> {
        let entry = self.table(name)?;
        Ok(self.describe(&entry, TableStatus::Active))
    }

    /// Lists table names in order, from just after `exclusive_start`, at most `limit`.
    ///
    /// # Errors
    /// Validation for a limit outside 1..=100.
    pub fn list_tables(
        &self,
        exclusive_start: Option<&str>,
        limit: Option<i64>,
    ) -> Result<ListTablesOutcome> {
        let limit = match limit {
            None => 100,
            Some(l) if (1..=100).contains(&l) => l as usize,
            Some(l) if l < 1 => {
                return Err(coral(
                    &l.to_string(),
                    "limit",
                    "Member must have value greater than or equal to 1",
                ));
            }
            Some(l) => {
                return Err(coral(
                    &l.to_string(),
                    "limit",
                    "Member must have value less than or equal to 100",
                ));
            }
        };
        let mut names: Vec<String> = self.storage.catalog.tables.read().keys().cloned().collect();
        names.sort();
        let start = match exclusive_start {
            Some(after) => names.partition_point(|n| n.as_str() <= after),
            None => 0,
        };
        let page: Vec<String> = names.iter().skip(start).take(limit).cloned().collect();
        let more = names.len() > start + page.len();
        let last_evaluated_table_name = if more { page.last().cloned() } else { None };
        Ok(ListTablesOutcome {
            table_names: page,
            last_evaluated_table_name,
        })
    }

    /// Changes billing mode, throughput or stream settings.
    ///
    /// # Errors
    /// ResourceNotFound, Validation.
    pub fn update_table(&self, request: UpdateTableRequest) -> Result<TableDescription> {
        let entry = self.table(&request.table_name)?;
        if request.billing_mode.is_none()
            && request.provisioned_throughput.is_none()
            && request.stream_specification.is_none()
            && request.global_secondary_index_updates.is_empty()
        {
            return Err(Error::validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
            ));
        }
        let _ddl = self.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        if let Some(mode) = &request.billing_mode {
            if mode != "PROVISIONED" && mode != "PAY_PER_REQUEST" {
                return Err(coral(
                    mode,
                    "billingMode",
                    "Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]",
                ));
            }
            definition.billing_mode = mode.clone();
        }
        match (
            definition.billing_mode.as_str(),
            request.provisioned_throughput,
        ) {
            ("PAY_PER_REQUEST", Some(_)) => {
                return Err(Error::validation(
                    "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            ("PAY_PER_REQUEST", None) => {
                definition.provisioned_throughput = ProvisionedThroughput {
                    read_capacity_units: 0,
                    write_capacity_units: 0,
                };
            }
            (_, Some(t)) => {
                check_throughput(&t)?;
                definition.provisioned_throughput = t;
            }
            (_, None) => {
                if definition.provisioned_throughput.read_capacity_units == 0 {
                    return Err(Error::validation(
                        "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                    ));
                }
            }
        }
        if let Some(spec) = &request.stream_specification {
            let currently_on = definition
                .stream_specification
                .as_ref()
                .is_some_and(|s| s.stream_enabled);
            match check_stream_spec(spec)? {
                Some(_) if currently_on => {
                    return Err(Error::validation(format!(
                        "Table already has an enabled stream: {}",
                        definition.table_arn
                    )));
                }
                Some(on) => {
                    definition.stream_specification = Some(on);
                }
                None if !currently_on => {
                    return Err(Error::validation(format!(
                        "No stream to disable: table {} has no enabled stream",
                        definition.table_name
                    )));
                }
                None => {
                    if let Some(s) = definition.stream_specification.as_mut() {
                        s.stream_enabled = false;
                    }
                }
            }
        }
        let index_change = self.apply_gsi_updates(&mut definition, &request)?;
        if request.stream_specification.is_some() {
            self.save_definition_and_stream(&entry, definition)?;
        } else {
            self.save_definition(&entry, definition)?;
        }
        self.finish_index_change(&entry, index_change)?;
        Ok(self.describe(&entry, TableStatus::Active))
    }

    /// Saves a definition whose stream was just enabled or disabled, together with the new
    /// stream (or the old one's end), at a boundary no commit can cross.
    fn save_definition_and_stream(
        &self,
        entry: &TableEntry,
        mut definition: TableDefinition,
    ) -> Result<()> {
        let now = self.clock.now_millis();
        self.storage.with_sequence_boundary(|boundary| {
            let mut streams = self.end_streams(entry.id, boundary, now);
            if let Some(spec) = definition
                .stream_specification
                .clone()
                .filter(|s| s.stream_enabled)
            {
                let stream = self.new_stream(&definition, &spec, boundary, now);
                definition.latest_stream_label = Some(stream.label.clone());
                streams.push(stream);
            }
            let json =
                serde_json::to_vec(&definition).map_err(|e| Error::Internal(e.to_string()))?;
            let mut puts = vec![(table_key(&definition.table_name), json)];
            for stream in &streams {
                puts.push(stream_catalog_entry(stream)?);
            }
            self.storage.write_catalog(&puts, &[])?;
            self.storage.install_streams(streams, &[]);
            *entry.definition.write() = definition;
            Ok(())
        })
    }

    /// A new stream of the table, starting at `boundary`, labelled after `now` (moved on by
    /// a millisecond if an earlier stream of the table already has that label).
    fn new_stream(
        &self,
        definition: &TableDefinition,
        spec: &StreamSpecification,
        boundary: ChangeSeq,
        now: u64,
    ) -> StreamInfo {
        let latest = self
            .storage
            .catalog
            .streams
            .read()
            .values()
            .filter(|s| s.table_id == definition.table_id)
            .map(|s| s.created_millis())
            .max();
        let created = latest.map_or(now, |l| now.max(l + 1));
        StreamInfo {
            table_id: definition.table_id,
            table_name: definition.table_name.clone(),
            table_arn: definition.table_arn.clone(),
            label: stream_label(created),
            view_type: spec.stream_view_type.clone().unwrap_or_default(),
            key_schema: definition.key_schema.clone(),
            shards: self.config.stream_shards.max(1),
            generations: vec![Generation {
                start_seq: boundary,
                start_millis: created,
            }],
            end: None,
        }
    }

    /// The table's open streams, ended at `boundary` (not yet saved).
    fn end_streams(&self, table_id: u64, boundary: ChangeSeq, now: u64) -> Vec<StreamInfo> {
        self.storage
            .catalog
            .streams
            .read()
            .values()
            .filter(|s| s.table_id == table_id && s.end.is_none())
            .map(|s| {
                let mut ended = (**s).clone();
                ended.end = Some(StreamEnd {
                    seq: boundary,
                    millis: now,
                });
                ended
            })
            .collect()
    }

    pub(crate) fn save_definition(
        &self,
        entry: &TableEntry,
        definition: TableDefinition,
    ) -> Result<()> {
        let json = serde_json::to_vec(&definition).map_err(|e| Error::Internal(e.to_string()))?;
        self.storage
            .write_catalog(&[(table_key(&definition.table_name), json)], &[])?;
        *entry.definition.write() = definition;
        Ok(())
    }

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

    /// Adds or replaces tags on a table.
    ///
    /// # Errors
    /// ResourceNotFound, Validation for a bad ARN or tag.
    pub fn tag_resource(&self, arn: &str, tags: Vec<Tag>) -> Result<()> {
        let entry = self.table_by_arn(arn)?;
        if tags.is_empty() {
            return Err(Error::validation(
                "1 validation error detected: Value '[]' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        check_tags(&tags)?;
        let _ddl = self.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        for tag in tags {
            definition.tags.retain(|t| t.key != tag.key);
            definition.tags.push(tag);
        }
        if definition.tags.len() > 50 {
            return Err(Error::validation(
                "The number of tags exceeds the limit of 50",
            ));
        }
        self.save_definition(&entry, definition)
    }

    /// Removes tags from a table.
    ///
    /// # Errors
    /// ResourceNotFound, Validation for a bad ARN.
    pub fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()> {
        let entry = self.table_by_arn(arn)?;
        let _ddl = self.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        definition.tags.retain(|t| !keys.contains(&t.key));
        self.save_definition(&entry, definition)
    }

    /// The tags of a table.
    ///
    /// # Errors
    /// ResourceNotFound, Validation for a bad ARN.
    pub fn list_tags(&self, arn: &str) -> Result<Vec<Tag>> {
        Ok(self.table_by_arn(arn)?.definition.read().tags.clone())
    }
}

/// Most tags on one table.
const MAX_TAGS: usize = 50;

/// Checks tags the way AWS does: keys of 1–128 and values of up to 256 characters drawn from
/// letters, digits, white space and `_ . : / = + - @`; at most 50 per table.
fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: The number of tags exceeds the limit of {MAX_TAGS}"
        )));
    }
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    for tag in tags {
        let key_len = tag.key.chars().count();
        if !(1..=128).contains(&key_len) || !tag.key.chars().all(allowed) {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{}' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128 and satisfy regular expression pattern: ^([\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*)$",
                tag.key
            )));
        }
        if tag.value.chars().count() > 256 || !tag.value.chars().all(allowed) {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{}' at 'tags.member.value' failed to satisfy constraint: Member must have length at most 256 and satisfy regular expression pattern: ^([\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*)$",
                tag.value
            )));
        }
    }
    Ok(())
}

/// Key attribute names (table and index keys, and their definitions) are at most 255 bytes;
/// `field` names the request member in the error, as DynamoDB's validation messages do.
fn check_key_name_length(name: &str, field: &str) -> Result<()> {
    if name.len() > MAX_KEY_NAME_BYTES {
        return Err(coral(
            name,
            field,
            "Member must have length less than or equal to 255",
        ));
    }
    Ok(())
}

fn check_throughput(t: &ProvisionedThroughput) -> Result<()> {
    if t.read_capacity_units < 1 {
        return Err(coral(
            &t.read_capacity_units.to_string(),
            "provisionedThroughput.readCapacityUnits",
            "Member must have value greater than or equal to 1",
        ));
    }
    if t.write_capacity_units < 1 {
        return Err(coral(
            &t.write_capacity_units.to_string(),
            "provisionedThroughput.writeCapacityUnits",
            "Member must have value greater than or equal to 1",
        ));
    }
    Ok(())
}

/// Validates a stream specification; `Some` when it enables a stream.
fn check_stream_spec(spec: &StreamSpecification) -> Result<Option<StreamSpecification>> {
    if !spec.stream_enabled {
        if spec.stream_view_type.is_some() {
            return Err(Error::validation(
                "One or more parameter values were invalid: StreamViewType should not be specified when StreamEnabled is false",
            ));
        }
        return Ok(None);
    }
    match spec.stream_view_type.as_deref() {
        Some("KEYS_ONLY" | "NEW_IMAGE" | "OLD_IMAGE" | "NEW_AND_OLD_IMAGES") => {
            Ok(Some(spec.clone()))
        }
        Some(other) => Err(coral(
            other,
            "streamSpecification.streamViewType",
            "Member must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]",
        )),
        None => Err(Error::validation(
            "One or more parameter values were invalid: StreamViewType must be specified when StreamEnabled is true",
        )),
    }
}

/// A stream label: the ISO 8601 time the stream was enabled, as DynamoDB labels streams.
fn stream_label(millis: u64) -> String {
    chrono::DateTime::from_timestamp_millis(millis as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_labels_are_iso8601() {
        assert_eq!(stream_label(0), "1970-01-01T00:00:00.000");
        assert_eq!(stream_label(1_700_000_000_123), "2023-11-14T22:13:20.123");
    }
}
