//! UpdateTable: billing mode, throughput, stream, and global secondary indexes.

use std::sync::Arc;

use super::Tables;
use super::create::check_table_class;
use crate::model::{
    AttributeDefinition, GlobalSecondaryIndex, KeyShape, ProvisionedThroughput, ScalarType,
    StreamSpecification, TableDefinition,
};
use crate::ops::describe_table::{TableDescription, TableStatus};
use crate::ops::tables::{
    MAX_GSIS, check_key_name_length, check_name, check_projection, check_stream_spec,
    check_throughput, coral,
};
use crate::storage::catalog::{NEXT_TABLE_ID_KEY, TableEntry, table_key};
use crate::storage::index::IndexInfo;
use crate::storage::stream_catalog_entry;
use crate::{Error, Result, TableId};

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
    /// Turn deletion protection on or off.
    pub deletion_protection_enabled: Option<bool>,
    /// New table class.
    pub table_class: Option<String>,
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

/// What an UpdateTable did to the table's indexes.
enum IndexChange {
    None,
    Created,
    Deleted(TableId),
}

/// DynamoDB's refusal of a table's throughput set to what it is (dynalite's
/// test/updateTable.js, recorded against DynamoDB).
fn unchanged_throughput(t: ProvisionedThroughput) -> Error {
    let (read, write) = (t.read_capacity_units, t.write_capacity_units);
    Error::validation(format!(
        "The provisioned throughput for the table will not change. The requested value equals \
         the current value. Current ReadCapacityUnits provisioned for the table: {read}. \
         Requested ReadCapacityUnits: {read}. Current WriteCapacityUnits provisioned for the \
         table: {write}. Requested WriteCapacityUnits: {write}. Refer to the Amazon DynamoDB \
         Developer Guide for current limits and how to request higher limits."
    ))
}

impl Tables {
    /// Changes billing mode, throughput or stream settings.
    ///
    /// # Errors
    /// ResourceNotFound, Validation.
    pub fn update_table(&self, request: UpdateTableRequest) -> Result<TableDescription> {
        let entry = self.store.table(&request.table_name)?;
        if request.billing_mode.is_none()
            && request.provisioned_throughput.is_none()
            && request.stream_specification.is_none()
            && request.global_secondary_index_updates.is_empty()
            && request.deletion_protection_enabled.is_none()
            && request.table_class.is_none()
        {
            return Err(Error::validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
            ));
        }
        let _ddl = self.store.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        let provisioned_before =
            (definition.billing_mode == "PROVISIONED").then_some(definition.provisioned_throughput);
        let warm_before = definition.warm();
        let on_demand_before = definition.billing_mode == "PAY_PER_REQUEST";
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
                if provisioned_before == Some(t) {
                    return Err(unchanged_throughput(t));
                }
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
            match check_stream_spec(spec, false)? {
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
        if let Some(class) = &request.table_class {
            check_table_class(class)?;
            definition.table_class = Some(class.clone());
        }
        if let Some(protect) = request.deletion_protection_enabled {
            definition.deletion_protection = protect;
        }
        if definition.billing_mode == "PAY_PER_REQUEST" && !on_demand_before {
            definition.pay_per_request_since = Some(self.store.now_millis());
        }
        definition.warm_throughput = Some(warm_before);
        definition.warm_throughput = Some(definition.warm());
        let index_change = self.apply_gsi_updates(&mut definition, &request)?;
        if request.stream_specification.is_some() {
            self.save_definition_and_stream(&entry, definition)?;
        } else {
            self.store.save_definition(&entry, definition)?;
        }
        self.finish_index_change(&entry, index_change)?;
        Ok(self.store.describe(&entry, TableStatus::Active))
    }

    /// Saves a definition whose stream was just enabled or disabled, together with the new
    /// stream (or the old one's end), at a boundary no commit can cross.
    fn save_definition_and_stream(
        &self,
        entry: &TableEntry,
        mut definition: TableDefinition,
    ) -> Result<()> {
        let now = self.store.now_millis();
        self.store.storage.with_sequence_boundary(|boundary| {
            let mut streams = self.store.end_streams(entry.id, boundary, now);
            if let Some(spec) = definition
                .stream_specification
                .clone()
                .filter(|s| s.stream_enabled)
            {
                let stream = self.store.new_stream(&definition, &spec, boundary, now);
                definition.latest_stream_label = Some(stream.label.clone());
                streams.push(stream);
            }
            let json =
                serde_json::to_vec(&definition).map_err(|e| Error::Internal(e.to_string()))?;
            let mut puts = vec![(table_key(&definition.table_name), json)];
            for stream in &streams {
                puts.push(stream_catalog_entry(stream)?);
            }
            self.store.storage.write_catalog(&puts, &[])?;
            self.store.storage.install_streams(streams, &[]);
            *entry.definition.write() = definition;
            Ok(())
        })
    }

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
                    for (i, new) in request.attribute_definitions.iter().enumerate() {
                        let at = |member: &str| {
                            format!("attributeDefinitions.{}.member.{member}", i + 1)
                        };
                        check_key_name_length(&new.attribute_name, &at("attributeName"))?;
                        if ScalarType::parse(&new.attribute_type).is_none() {
                            return Err(coral(
                                &new.attribute_type,
                                &at("attributeType"),
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
                    KeyShape::from_gsi_schema(&gsi.key_schema, &definition.attribute_definitions)?;
                    check_projection(&gsi.projection)?;
                    let id = self.store.storage.next_table_id()?;
                    self.store.storage.write_catalog(
                        &[(NEXT_TABLE_ID_KEY.to_vec(), id.next().to_be_bytes().to_vec())],
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
                    let id = definition.index_ids.remove(name).ok_or_else(|| {
                        Error::Corrupt(format!(
                            "index {name} of {} has no id",
                            definition.table_name
                        ))
                    })?;
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
            IndexChange::Created => self.request_backfill(),
            IndexChange::Deleted(id) => self.store.storage.purge_index(id)?,
            IndexChange::None => {}
        }
        Ok(())
    }
}
