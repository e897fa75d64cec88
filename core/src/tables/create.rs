//! CreateTable: check the schema, indexes, billing, stream and tags, then save the table.

use std::collections::HashSet;
use std::sync::Arc;

use super::Tables;
use super::tags::check_tags;
use crate::model::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyShape, LocalSecondaryIndex,
    ProvisionedThroughput, ScalarType, StreamSpecification, TableDefinition, Tag,
    undefined_key_attributes,
};
use crate::ops::describe_table::{TableDescription, TableStatus};
use crate::ops::tables::{
    MAX_GSIS, MAX_LSIS, check_key_name_length, check_name, check_projection, check_stream_spec,
    check_throughput, coral, stream_label,
};
use crate::storage::catalog::{NEXT_TABLE_ID_KEY, TableEntry, table_key};
use crate::storage::stream_catalog_entry;
use crate::{Error, Result, Store, TableId};

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
    /// Refuse DeleteTable until this is turned off.
    pub deletion_protection_enabled: bool,
    /// `STANDARD` (the default) or `STANDARD_INFREQUENT_ACCESS`.
    pub table_class: Option<String>,
}

/// The table classes, in DynamoDB's order for its message.
pub(crate) const TABLE_CLASSES: [&str; 2] = ["STANDARD", "STANDARD_INFREQUENT_ACCESS"];

/// Checks a table class.
pub(crate) fn check_table_class(class: &str) -> Result<()> {
    match TABLE_CLASSES.contains(&class) {
        true => Ok(()),
        false => Err(crate::Violations::not_one_of(
            class,
            "tableClass",
            &TABLE_CLASSES,
        )),
    }
}

impl CreateTableRequest {
    /// An on-demand table keyed by one partition-key attribute of type `key_type` (`S`, `N`
    /// or `B`), with nothing else set.
    pub fn on_demand(
        table_name: impl Into<String>,
        partition_key: impl Into<String>,
        key_type: &str,
    ) -> CreateTableRequest {
        let partition_key = partition_key.into();
        CreateTableRequest {
            table_name: table_name.into(),
            key_schema: vec![KeySchemaElement {
                attribute_name: partition_key.clone(),
                key_type: "HASH".into(),
            }],
            attribute_definitions: vec![AttributeDefinition {
                attribute_name: partition_key,
                attribute_type: key_type.into(),
            }],
            billing_mode: Some("PAY_PER_REQUEST".into()),
            ..Default::default()
        }
    }
}

impl Tables {
    /// Creates a table; it is ACTIVE at once.
    ///
    /// # Errors
    /// Validation for a bad schema, ResourceInUse when the name is taken.
    pub fn create_table(&self, request: CreateTableRequest) -> Result<TableDescription> {
        create_table_as(&self.store, request, None, None)
    }
}

/// Creates a table; with a restore summary whose restore is in progress, or the ARN of the
/// import that fills it, the table is CREATING until it is built. Restores and imports create
/// their tables through this too.
pub(crate) fn create_table_as(
    store: &Store,
    request: CreateTableRequest,
    restore_summary: Option<crate::model::RestoreSummary>,
    importing: Option<String>,
) -> Result<TableDescription> {
    check_name(&request.table_name, "tableName")?;
    let billing_mode = request
        .billing_mode
        .clone()
        .unwrap_or_else(|| "PROVISIONED".into());
    // Billing before the key schema, as DynamoDB checks them (dynalite's test/createTable.js).
    let provisioned_throughput = table_throughput(&billing_mode, request.provisioned_throughput)?;
    let on_demand = billing_mode == "PAY_PER_REQUEST";
    let shape = check_key_schema(&request)?;
    check_indexes(&request, &shape, &billing_mode)?;
    check_tags(&request.tags)?;
    if let Some(class) = &request.table_class {
        check_table_class(class)?;
    }
    let stream_specification = match &request.stream_specification {
        Some(spec) => check_stream_spec(spec, true)?,
        None => None,
    };

    let _ddl = store.storage.ddl.lock();
    if store.storage.table(&request.table_name).is_some() {
        return Err(Error::ResourceInUse(format!(
            "Table already exists: {}",
            request.table_name
        )));
    }
    let table_id = store.storage.next_table_id()?;
    let index_ids = index_ids(&request, table_id);
    let next_id = index_ids.values().copied().max().unwrap_or(table_id).next();
    let now = store.now_millis();
    // A table created by a log record is the same table on every node that applies it: its
    // log and its TableId follow from the record's position.
    let write_log = store.applying_position().map(|at| at.created_log());
    let table_uuid = match &write_log {
        Some(log) => uuid::Builder::from_random_bytes(
            xxhash_rust::xxh3::xxh3_128(log.as_bytes()).to_be_bytes(),
        )
        .into_uuid(),
        None => uuid::Uuid::new_v4(),
    };
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
        table_uuid: table_uuid.to_string(),
        index_ids,
        backfilling: Default::default(),
        table_arn: store.table_arn(&request.table_name),
        point_in_time_recovery: None,
        restore_summary,
        importing,
        pay_per_request_since: on_demand.then_some(now),
        warm_throughput: None,
        deletion_protection: request.deletion_protection_enabled,
        table_class: request.table_class,
        write_log,
    };
    let entry = install_table(store, definition, shape, next_id, now)?;
    let status = match entry.building.load(std::sync::atomic::Ordering::Acquire) {
        true => TableStatus::Creating,
        false => TableStatus::Active,
    };
    // CreateTable's answer has no warm rates, and no date of the switch to on-demand.
    let mut description = store.describe(&entry, status);
    description.warm_throughput = None;
    for index in description.global_secondary_indexes.iter_mut().flatten() {
        index.warm_throughput = None;
    }
    if let Some(summary) = &mut description.billing_mode_summary {
        summary.last_update_to_pay_per_request_date_time = None;
    }
    Ok(description)
}

/// Checks the attribute definitions and the table's key schema; the table's key shape.
fn check_key_schema(request: &CreateTableRequest) -> Result<KeyShape> {
    // Members are numbered from 1 in DynamoDB's messages, as `keySchema.2.member.keyType`.
    let mut seen = HashSet::new();
    for (i, definition) in request.attribute_definitions.iter().enumerate() {
        let at = |member: &str| format!("attributeDefinitions.{}.member.{member}", i + 1);
        if !seen.insert(definition.attribute_name.as_str()) {
            return Err(Error::validation(format!(
                "Cannot have two attributes with the same name: Duplicate AttributeName: {}",
                definition.attribute_name
            )));
        }
        check_key_name_length(&definition.attribute_name, &at("attributeName"))?;
        if definition.attribute_name.is_empty() {
            return Err(Error::validation(
                "One or more parameter values were invalid: Empty AttributeName in AttributeDefinitions",
            ));
        }
        if ScalarType::parse(&definition.attribute_type).is_none() {
            return Err(coral(
                &definition.attribute_type,
                &at("attributeType"),
                "Member must satisfy enum value set: [B, N, S]",
            ));
        }
    }
    // Every key schema, the table's and its indexes', with where it stands in the request;
    // its elements' names are checked before their key types.
    let mut schemas: Vec<(String, &[KeySchemaElement])> =
        vec![(String::new(), &request.key_schema)];
    for (g, gsi) in request.global_secondary_indexes.iter().enumerate() {
        schemas.push((
            format!("globalSecondaryIndexes.{}.member.", g + 1),
            &gsi.key_schema,
        ));
    }
    for (l, lsi) in request.local_secondary_indexes.iter().enumerate() {
        schemas.push((
            format!("localSecondaryIndexes.{}.member.", l + 1),
            &lsi.key_schema,
        ));
    }
    let elements = || {
        schemas.iter().flat_map(|(prefix, schema)| {
            schema
                .iter()
                .enumerate()
                .map(move |(k, e)| (format!("{prefix}keySchema.{}.member", k + 1), e))
        })
    };
    for (at, element) in elements() {
        check_key_name_length(&element.attribute_name, &format!("{at}.attributeName"))?;
    }
    for (at, element) in elements() {
        if element.key_type != "HASH" && element.key_type != "RANGE" {
            return Err(coral(
                &element.key_type,
                &format!("{at}.keyType"),
                "Member must satisfy enum value set: [HASH, RANGE]",
            ));
        }
    }
    // Definitions first, as DynamoDB checks them (dynalite's validations/createTable.js):
    // more key elements than definitions, then a key attribute not defined.
    let (keys, definitions) = (&request.key_schema, &request.attribute_definitions);
    if (1..=2).contains(&keys.len()) {
        if keys.len() > definitions.len() {
            return Err(Error::validation(
                "Invalid KeySchema: Some index key attribute have no definition",
            ));
        }
        if keys.iter().any(|k| {
            !definitions
                .iter()
                .any(|d| d.attribute_name == k.attribute_name)
        }) {
            return Err(undefined_key_attributes(keys, definitions));
        }
    }
    KeyShape::from_schema(keys, definitions)
}

/// Checks the indexes (counts, names, key schemas, projections) against the table's key
/// `shape` (under `billing_mode`, a provisioned table's global indexes need their capacity),
/// and that every attribute definition is a key of the table or of an index.
fn check_indexes(request: &CreateTableRequest, shape: &KeyShape, billing_mode: &str) -> Result<()> {
    let mut used: HashSet<&str> = request
        .key_schema
        .iter()
        .map(|k| k.attribute_name.as_str())
        .collect();
    let mut index_names = HashSet::new();
    // Every index name's violations in one error, the global indexes' first (conformance
    // validation-ordering/createTable.test.ts, recorded against AWS).
    let mut names = crate::Violations::default();
    for (g, gsi) in request.global_secondary_indexes.iter().enumerate() {
        let at = format!("globalSecondaryIndexes.{}.member.indexName", g + 1);
        names.name(&gsi.index_name, &at);
    }
    for (l, lsi) in request.local_secondary_indexes.iter().enumerate() {
        let at = format!("localSecondaryIndexes.{}.member.indexName", l + 1);
        names.name(&lsi.index_name, &at);
    }
    names.check()?;
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
        if !index_names.insert(lsi.index_name.as_str()) {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: Duplicate index name: {}",
                lsi.index_name
            )));
        }
        let index_shape = KeyShape::from_schema(&lsi.key_schema, &request.attribute_definitions)?;
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
    for gsi in &request.global_secondary_indexes {
        if !index_names.insert(gsi.index_name.as_str()) {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: Duplicate index name: {}",
                gsi.index_name
            )));
        }
        KeyShape::from_gsi_schema(&gsi.key_schema, &request.attribute_definitions)?;
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
    Ok(())
}

/// The table's capacity under `billing_mode` (zero when on demand).
fn table_throughput(
    billing_mode: &str,
    requested: Option<ProvisionedThroughput>,
) -> Result<ProvisionedThroughput> {
    match (billing_mode, requested) {
        ("PROVISIONED", Some(t)) => {
            check_throughput(&t)?;
            Ok(t)
        }
        ("PROVISIONED", None) => Err(Error::validation(
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        )),
        ("PAY_PER_REQUEST", None) => Ok(ProvisionedThroughput {
            read_capacity_units: 0,
            write_capacity_units: 0,
        }),
        ("PAY_PER_REQUEST", Some(_)) => Err(Error::validation(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (other, _) => Err(coral(
            other,
            "billingMode",
            "Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]",
        )),
    }
}

/// The ids of the table's indexes, the ones right after `table_id`, in request order (global
/// indexes first).
fn index_ids(
    request: &CreateTableRequest,
    table_id: TableId,
) -> std::collections::BTreeMap<String, TableId> {
    request
        .global_secondary_indexes
        .iter()
        .map(|g| g.index_name.clone())
        .chain(
            request
                .local_secondary_indexes
                .iter()
                .map(|l| l.index_name.clone()),
        )
        .zip(std::iter::successors(Some(table_id.next()), |id| {
            Some(id.next())
        }))
        .collect()
}

/// Saves a new table's definition (with the next free id, `next_id`, and its first stream if
/// it has one) and puts it in the catalog. The caller holds the DDL lock.
fn install_table(
    store: &Store,
    definition: TableDefinition,
    shape: KeyShape,
    next_id: TableId,
    now: u64,
) -> Result<Arc<TableEntry>> {
    let json = serde_json::to_vec(&definition).map_err(|e| Error::Internal(e.to_string()))?;
    let mut puts = vec![
        (table_key(&definition.table_name), json),
        (NEXT_TABLE_ID_KEY.to_vec(), next_id.to_be_bytes().to_vec()),
    ];
    let stream = match &definition.stream_specification {
        Some(spec) => store.storage.with_sequence_boundary(|boundary| {
            Ok(Some(store.new_stream(&definition, spec, boundary, now)))
        })?,
        None => None,
    };
    if let Some(stream) = &stream {
        puts.push(stream_catalog_entry(stream)?);
    }
    store.storage.write_catalog(&puts, &[])?;
    store
        .storage
        .install_streams(stream.into_iter().collect(), &[]);
    let entry = Arc::new(TableEntry::new(definition, shape)?);
    store
        .storage
        .catalog
        .tables
        .write()
        .insert(entry.name.clone(), entry.clone());
    Ok(entry)
}
