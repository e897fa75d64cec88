//! DescribeTable, and the table description CreateTable, UpdateTable and DeleteTable answer
//! with too.

use crate::model::{
    AttributeDefinition, KeySchemaElement, ON_DEMAND_WARM_THROUGHPUT, Projection,
    ProvisionedThroughput, RestoreSummary, StreamSpecification,
};
use crate::storage::catalog::TableEntry;
use crate::{Result, Store};

/// A table's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStatus {
    /// Ready.
    Active,
    /// Being deleted (DeleteTable's answer).
    Deleting,
    /// Being built by a restore.
    Creating,
}

/// `BillingModeSummary`.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingModeSummary {
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub billing_mode: String,
    /// When the table became on-demand (seconds since the epoch).
    pub last_update_to_pay_per_request_date_time: Option<f64>,
}

/// `WarmThroughput`: the read and write rates a table or index is ready for at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmThroughput {
    /// Reads per second.
    pub read_units_per_second: i64,
    /// Writes per second.
    pub write_units_per_second: i64,
}

impl From<ProvisionedThroughput> for WarmThroughput {
    fn from(t: ProvisionedThroughput) -> Self {
        WarmThroughput {
            read_units_per_second: t.read_capacity_units,
            write_units_per_second: t.write_capacity_units,
        }
    }
}

/// `ProvisionedThroughput` as described.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionedThroughputDescription {
    /// Always 0 here.
    pub number_of_decreases_today: i64,
    /// Read capacity units (0 for on-demand tables).
    pub read_capacity_units: i64,
    /// Write capacity units (0 for on-demand tables).
    pub write_capacity_units: i64,
}

/// An index as described.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDescription {
    /// Index name.
    pub index_name: String,
    /// Index key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Projection.
    pub projection: Projection,
    /// `ACTIVE` for global indexes.
    pub index_status: Option<String>,
    /// True while a global index created by UpdateTable is being backfilled.
    pub backfilling: Option<bool>,
    /// Capacity of global indexes.
    pub provisioned_throughput: Option<ProvisionedThroughputDescription>,
    /// The index's ARN.
    pub index_arn: String,
    /// Size (0 until indexes are maintained).
    pub index_size_bytes: i64,
    /// Items (0 until indexes are maintained).
    pub item_count: i64,
    /// The rates a global index is warm for.
    pub warm_throughput: Option<WarmThroughput>,
}

/// DynamoDB's `TableDescription`.
#[derive(Debug, Clone, PartialEq)]
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
    pub key_schema: Option<Vec<KeySchemaElement>>,
    /// Attribute definitions (absent in DeleteTable's answer).
    pub attribute_definitions: Option<Vec<AttributeDefinition>>,
    /// Creation time in seconds since the epoch (absent in DeleteTable's answer).
    pub creation_date_time: Option<f64>,
    /// Exact item count.
    pub item_count: Option<i64>,
    /// Exact size in bytes.
    pub table_size_bytes: Option<i64>,
    /// Billing mode, for a table that was ever on-demand (DynamoDB sends none for a table
    /// that was only ever provisioned).
    pub billing_mode_summary: Option<BillingModeSummary>,
    /// Capacity.
    pub provisioned_throughput: ProvisionedThroughputDescription,
    /// Global secondary indexes.
    pub global_secondary_indexes: Option<Vec<IndexDescription>>,
    /// Local secondary indexes.
    pub local_secondary_indexes: Option<Vec<IndexDescription>>,
    /// Stream settings (only while a stream is enabled).
    pub stream_specification: Option<StreamSpecification>,
    /// Current stream label.
    pub latest_stream_label: Option<String>,
    /// Current stream ARN.
    pub latest_stream_arn: Option<String>,
    /// Whether DeleteTable refuses the table.
    pub deletion_protection_enabled: bool,
    /// The table class, once one was asked for.
    pub table_class: Option<String>,
    /// The rates the table is warm for (DescribeTable and UpdateTable answer with it).
    pub warm_throughput: Option<WarmThroughput>,
    /// Where a restored table came from.
    pub restore_summary: Option<RestoreSummary>,
}

impl Store {
    /// Describes a table.
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn describe_table(&self, name: &str) -> Result<TableDescription> {
        let entry = self.table_even_building(name)?;
        let status = match entry.building.load(std::sync::atomic::Ordering::Acquire) {
            true => TableStatus::Creating,
            false => TableStatus::Active,
        };
        Ok(self.describe(&entry, status))
    }

    /// Every live table's name, items and bytes (DescribeTable's counts), for the metrics.
    pub fn table_sizes(&self) -> Vec<(String, i64, i64)> {
        self.storage
            .live_tables()
            .iter()
            .map(|entry| {
                let stats = self.storage.table_stats(entry.id);
                (entry.name.clone(), stats.items, stats.bytes)
            })
            .collect()
    }

    /// The table as DescribeTable and the other table operations describe it, in `status`.
    pub(crate) fn describe(&self, entry: &TableEntry, status: TableStatus) -> TableDescription {
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
        let full = status != TableStatus::Deleting;
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
                warm_throughput: Some(
                    match (on_demand, g.provisioned_throughput) {
                        (false, Some(t)) => t,
                        _ => ON_DEMAND_WARM_THROUGHPUT,
                    }
                    .into(),
                ),
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
                warm_throughput: None,
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
            billing_mode_summary: definition
                .on_demand_since()
                .map(|since| BillingModeSummary {
                    billing_mode: definition.billing_mode.clone(),
                    last_update_to_pay_per_request_date_time: Some(millis_to_seconds(since)),
                }),
            provisioned_throughput: throughput(&definition.provisioned_throughput),
            global_secondary_indexes: (full && !gsis.is_empty()).then_some(gsis),
            local_secondary_indexes: (full && !lsis.is_empty()).then_some(lsis),
            stream_specification: definition
                .stream_specification
                .clone()
                .filter(|_| stream_on),
            latest_stream_label: latest_stream.as_ref().map(|s| s.label.clone()),
            latest_stream_arn: latest_stream.as_ref().map(|s| s.arn()),
            deletion_protection_enabled: definition.deletion_protection,
            table_class: definition.table_class.clone(),
            warm_throughput: Some(definition.warm().into()),
            restore_summary: definition.restore_summary.clone(),
        }
    }
}

fn millis_to_seconds(millis: u64) -> f64 {
    millis as f64 / 1000.0
}
