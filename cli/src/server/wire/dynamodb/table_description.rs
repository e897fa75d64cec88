//! `TableDescription` as DescribeTable, CreateTable, UpdateTable and DeleteTable answer it.

use serde::Serialize;
use tidemark_core::Store;
use tidemark_replicator::hold_limit;
use tidemark_replicator::membership::{GlobalTable, VERSION};

use crate::server::error::ApiError;
use tidemark_core::model::{
    AttributeDefinition, KeySchemaElement, Projection, RestoreSummary, StreamSpecification,
};
use tidemark_core::ops::{
    BillingModeSummary, IndexDescription, ProvisionedThroughputDescription, TableDescription,
    TableStatus, WarmThroughput,
};

/// `TableStatus`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum WireTableStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl From<TableStatus> for WireTableStatus {
    fn from(status: TableStatus) -> Self {
        match status {
            TableStatus::Active => WireTableStatus::Active,
            TableStatus::Deleting => WireTableStatus::Deleting,
            TableStatus::Creating => WireTableStatus::Creating,
        }
    }
}

/// `BillingModeSummary`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireBillingModeSummary {
    billing_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update_to_pay_per_request_date_time: Option<f64>,
}

impl From<BillingModeSummary> for WireBillingModeSummary {
    fn from(summary: BillingModeSummary) -> Self {
        WireBillingModeSummary {
            billing_mode: summary.billing_mode,
            last_update_to_pay_per_request_date_time: summary
                .last_update_to_pay_per_request_date_time,
        }
    }
}

/// `TableWarmThroughputDescription` or `GlobalSecondaryIndexWarmThroughputDescription`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireWarmThroughput {
    read_units_per_second: i64,
    write_units_per_second: i64,
    /// Always ACTIVE: the rates are there at once.
    status: &'static str,
}

impl From<WarmThroughput> for WireWarmThroughput {
    fn from(warm: WarmThroughput) -> Self {
        WireWarmThroughput {
            read_units_per_second: warm.read_units_per_second,
            write_units_per_second: warm.write_units_per_second,
            status: "ACTIVE",
        }
    }
}

/// `TableClassSummary`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTableClassSummary {
    table_class: String,
}

/// `ProvisionedThroughputDescription`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireProvisionedThroughput {
    number_of_decreases_today: i64,
    read_capacity_units: i64,
    write_capacity_units: i64,
}

impl From<ProvisionedThroughputDescription> for WireProvisionedThroughput {
    fn from(throughput: ProvisionedThroughputDescription) -> Self {
        WireProvisionedThroughput {
            number_of_decreases_today: throughput.number_of_decreases_today,
            read_capacity_units: throughput.read_capacity_units,
            write_capacity_units: throughput.write_capacity_units,
        }
    }
}

/// `GlobalSecondaryIndexDescription` or `LocalSecondaryIndexDescription`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireIndexDescription {
    index_name: String,
    key_schema: Vec<KeySchemaElement>,
    projection: Projection,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backfilling: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provisioned_throughput: Option<WireProvisionedThroughput>,
    index_arn: String,
    index_size_bytes: i64,
    item_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    warm_throughput: Option<WireWarmThroughput>,
}

impl From<IndexDescription> for WireIndexDescription {
    fn from(index: IndexDescription) -> Self {
        WireIndexDescription {
            index_name: index.index_name,
            key_schema: index.key_schema,
            projection: index.projection,
            index_status: index.index_status,
            backfilling: index.backfilling,
            provisioned_throughput: index.provisioned_throughput.map(Into::into),
            index_arn: index.index_arn,
            index_size_bytes: index.index_size_bytes,
            item_count: index.item_count,
            warm_throughput: index.warm_throughput.map(Into::into),
        }
    }
}

/// `TableDescription`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTableDescription {
    table_name: String,
    table_status: WireTableStatus,
    table_arn: String,
    table_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_schema: Option<Vec<KeySchemaElement>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribute_definitions: Option<Vec<AttributeDefinition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation_date_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    table_size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    billing_mode_summary: Option<WireBillingModeSummary>,
    provisioned_throughput: WireProvisionedThroughput,
    #[serde(skip_serializing_if = "Option::is_none")]
    global_secondary_indexes: Option<Vec<WireIndexDescription>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_secondary_indexes: Option<Vec<WireIndexDescription>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_specification: Option<StreamSpecification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_stream_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_stream_arn: Option<String>,
    deletion_protection_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    table_class_summary: Option<WireTableClassSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warm_throughput: Option<WireWarmThroughput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    global_table_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<Vec<WireReplicaDescription>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_summary: Option<WireRestoreSummary>,
}

/// `RestoreSummary`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireRestoreSummary {
    source_table_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_backup_arn: Option<String>,
    restore_date_time: f64,
    restore_in_progress: bool,
}

impl From<RestoreSummary> for WireRestoreSummary {
    fn from(summary: RestoreSummary) -> Self {
        WireRestoreSummary {
            source_table_arn: summary.source_table_arn,
            source_backup_arn: summary.source_backup_arn,
            restore_date_time: super::common::seconds(summary.restore_date_time_millis),
            restore_in_progress: summary.in_progress.is_some(),
        }
    }
}

/// One other region's replica, as DescribeTable lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireReplicaDescription {
    region_name: String,
    replica_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_status_percent_progress: Option<String>,
    /// Why a replica ACTIVE in the group is not replicating with this region (it needs a
    /// re-seed, see `tidemark_replicator::hold_limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_status_description: Option<String>,
}

impl WireTableDescription {
    /// Adds what a global table (version 2019.11.21) shows: its version and the replicas of
    /// the other regions; the table is UPDATING while one is being created or deleted.
    pub(crate) fn with_membership(mut self, global: Option<&GlobalTable>, region: &str) -> Self {
        let Some(global) = global.filter(|g| g.version == VERSION) else {
            return self;
        };
        self.global_table_version = Some(global.version.clone());
        self.replicas = Some(replica_descriptions(global, region));
        if global.is_updating() && matches!(self.table_status, WireTableStatus::Active) {
            self.table_status = WireTableStatus::Updating;
        }
        self
    }

    /// Describes `table` with its membership, as DescribeTable does.
    pub(crate) fn describe(store: &Store, table: &str) -> Result<Self, ApiError> {
        let description: WireTableDescription = store.describe_table(table)?.into();
        // A table being restored is described before its definition is live.
        let definition = store.table_definition(table).ok();
        let global = definition.as_ref().and_then(GlobalTable::in_definition);
        let reseeds = definition
            .as_ref()
            .map(hold_limit::reseed_needed)
            .unwrap_or_default();
        Ok(description
            .with_membership(global.as_ref(), &store.config().region)
            .with_reseeds(&reseeds))
    }

    /// Says of each replica in `needed` (this node stopped replicating with it until it is
    /// re-seeded) why, in `ReplicaStatusDescription`: its status stays the group's.
    fn with_reseeds(
        mut self,
        needed: &std::collections::BTreeMap<String, hold_limit::Reseed>,
    ) -> Self {
        for replica in self.replicas.iter_mut().flatten() {
            if let Some(record) = needed.get(&replica.region_name) {
                replica.replica_status_description = Some(record.cause.description().to_string());
            }
        }
        self
    }
}

/// The replicas of every region but `region`.
pub(crate) fn replica_descriptions(
    global: &GlobalTable,
    region: &str,
) -> Vec<WireReplicaDescription> {
    global
        .replicas
        .iter()
        .filter(|(r, _)| *r != region)
        .map(|(r, replica)| WireReplicaDescription {
            region_name: r.clone(),
            replica_status: replica.status.as_str().to_string(),
            replica_status_percent_progress: replica.progress.map(|p| p.to_string()),
            replica_status_description: None,
        })
        .collect()
}

impl From<TableDescription> for WireTableDescription {
    fn from(table: TableDescription) -> Self {
        let indexes = |list: Option<Vec<IndexDescription>>| {
            list.map(|l| l.into_iter().map(Into::into).collect())
        };
        WireTableDescription {
            table_name: table.table_name,
            table_status: table.table_status.into(),
            table_arn: table.table_arn,
            table_id: table.table_id,
            key_schema: table.key_schema,
            attribute_definitions: table.attribute_definitions,
            creation_date_time: table.creation_date_time,
            item_count: table.item_count,
            table_size_bytes: table.table_size_bytes,
            billing_mode_summary: table.billing_mode_summary.map(Into::into),
            provisioned_throughput: table.provisioned_throughput.into(),
            global_secondary_indexes: indexes(table.global_secondary_indexes),
            local_secondary_indexes: indexes(table.local_secondary_indexes),
            stream_specification: table.stream_specification,
            latest_stream_label: table.latest_stream_label,
            latest_stream_arn: table.latest_stream_arn,
            deletion_protection_enabled: table.deletion_protection_enabled,
            table_class_summary: table
                .table_class
                .map(|table_class| WireTableClassSummary { table_class }),
            warm_throughput: table.warm_throughput.map(Into::into),
            global_table_version: None,
            replicas: None,
            restore_summary: table.restore_summary.map(Into::into),
        }
    }
}
