//! Continuous backups, on-demand backups and restores: DescribeContinuousBackups,
//! UpdateContinuousBackups, RestoreTableToPointInTime, CreateBackup, DescribeBackup,
//! ListBackups, DeleteBackup, RestoreTableFromBackup.

use serde::{Deserialize, Serialize};
use tidemark_core::Engine;
use tidemark_core::model::{
    GlobalSecondaryIndex, KeySchemaElement, LocalSecondaryIndex, Projection, ProvisionedThroughput,
};
use tidemark_core::restore::{
    Backup, ListBackupsRequest, RestorableWindow, RestoreOverrides, RestorePoint,
};

use super::common::named_table;
use super::common::{millis, required, seconds};
use super::table_description::WireTableDescription;
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeContinuousBackupsInput {
    table_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateContinuousBackupsInput {
    table_name: Option<String>,
    point_in_time_recovery_specification: Option<PitrSpecification>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PitrSpecification {
    point_in_time_recovery_enabled: Option<bool>,
    recovery_period_in_days: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContinuousBackupsOutput {
    continuous_backups_description: ContinuousBackupsDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContinuousBackupsDescription {
    continuous_backups_status: &'static str,
    point_in_time_recovery_description: PitrDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PitrDescription {
    point_in_time_recovery_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_period_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    earliest_restorable_date_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_restorable_date_time: Option<f64>,
}

/// Continuous backups are reported with point-in-time recovery: the acceptance suite, checked
/// against DynamoDB, expects DISABLED on a new table (see docs/compatibility.md).
fn continuous_backups(window: Option<RestorableWindow>) -> ContinuousBackupsOutput {
    let status = if window.is_some() {
        "ENABLED"
    } else {
        "DISABLED"
    };
    ContinuousBackupsOutput {
        continuous_backups_description: ContinuousBackupsDescription {
            continuous_backups_status: status,
            point_in_time_recovery_description: PitrDescription {
                point_in_time_recovery_status: status,
                recovery_period_in_days: window.map(|w| w.recovery_period_days),
                earliest_restorable_date_time: window.map(|w| seconds(w.earliest_millis)),
                latest_restorable_date_time: window.map(|w| seconds(w.latest_millis)),
            },
        },
    }
}

pub(crate) fn describe_continuous_backups(
    engine: &Engine,
    input: DescribeContinuousBackupsInput,
) -> Result<ContinuousBackupsOutput, ApiError> {
    let table = named_table(&engine.store, input.table_name)?;
    Ok(continuous_backups(
        engine.backups.describe_continuous_backups(&table)?,
    ))
}

pub(crate) fn update_continuous_backups(
    engine: &Engine,
    input: UpdateContinuousBackupsInput,
) -> Result<ContinuousBackupsOutput, ApiError> {
    let table = named_table(&engine.store, input.table_name)?;
    let spec = required(
        input.point_in_time_recovery_specification,
        "pointInTimeRecoverySpecification",
    )?;
    let enabled = required(
        spec.point_in_time_recovery_enabled,
        "pointInTimeRecoverySpecification.pointInTimeRecoveryEnabled",
    )?;
    let window =
        engine
            .backups
            .update_continuous_backups(&table, enabled, spec.recovery_period_in_days)?;
    Ok(continuous_backups(window))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RestoreTableToPointInTimeInput {
    source_table_arn: Option<String>,
    source_table_name: Option<String>,
    target_table_name: Option<String>,
    use_latest_restorable_time: Option<bool>,
    restore_date_time: Option<f64>,
    #[serde(flatten)]
    overrides: WireOverrides,
}

/// The overrides both restores take. Throughput and encryption overrides DynamoDB accepts
/// are accepted; on-demand throughput and encryption have no effect here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireOverrides {
    billing_mode_override: Option<String>,
    global_secondary_index_override: Option<Vec<GlobalSecondaryIndex>>,
    local_secondary_index_override: Option<Vec<LocalSecondaryIndex>>,
    provisioned_throughput_override: Option<ProvisionedThroughput>,
    #[serde(rename = "SSESpecificationOverride")]
    _sse_specification_override: Option<serde_json::Value>,
    #[serde(rename = "OnDemandThroughputOverride")]
    _on_demand_throughput_override: Option<serde_json::Value>,
}

impl From<WireOverrides> for RestoreOverrides {
    fn from(o: WireOverrides) -> Self {
        RestoreOverrides {
            billing_mode: o.billing_mode_override,
            global_secondary_indexes: o.global_secondary_index_override,
            local_secondary_indexes: o.local_secondary_index_override,
            provisioned_throughput: o.provisioned_throughput_override,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RestoreOutput {
    table_description: WireTableDescription,
}

pub(crate) fn restore_table_to_point_in_time(
    engine: &Engine,
    input: RestoreTableToPointInTimeInput,
) -> Result<RestoreOutput, ApiError> {
    let source = match (input.source_table_name, input.source_table_arn) {
        (Some(name), None) => name,
        (None, Some(arn)) => arn,
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "Only one of SourceTableArn or SourceTableName can be specified",
            ));
        }
        (None, None) => {
            return Err(ApiError::validation(
                "Either SourceTableArn or SourceTableName must be specified",
            ));
        }
    };
    let target = required(input.target_table_name, "targetTableName")?;
    let latest = input.use_latest_restorable_time.unwrap_or(false);
    let point = match (latest, input.restore_date_time) {
        (true, Some(_)) => {
            return Err(ApiError::validation(
                "Only one of RestoreDateTime or UseLatestRestorableTime can be specified",
            ));
        }
        (true, None) => RestorePoint::Latest,
        (false, Some(at)) => RestorePoint::At(millis(at, "RestoreDateTime")?),
        (false, None) => {
            return Err(ApiError::validation(
                "Either RestoreDateTime or UseLatestRestorableTime must be specified",
            ));
        }
    };
    let description = engine.backups.restore_table_to_point_in_time(
        &source,
        &target,
        point,
        input.overrides.into(),
    )?;
    Ok(RestoreOutput {
        table_description: description.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RestoreTableFromBackupInput {
    target_table_name: Option<String>,
    backup_arn: Option<String>,
    #[serde(flatten)]
    overrides: WireOverrides,
}

pub(crate) fn restore_table_from_backup(
    engine: &Engine,
    input: RestoreTableFromBackupInput,
) -> Result<RestoreOutput, ApiError> {
    let target = required(input.target_table_name, "targetTableName")?;
    let arn = required(input.backup_arn, "backupArn")?;
    let description =
        engine
            .backups
            .restore_table_from_backup(&arn, &target, input.overrides.into())?;
    Ok(RestoreOutput {
        table_description: description.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateBackupInput {
    table_name: Option<String>,
    backup_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateBackupOutput {
    backup_details: BackupDetails,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct BackupDetails {
    backup_arn: String,
    backup_name: String,
    backup_size_bytes: i64,
    backup_status: &'static str,
    backup_type: &'static str,
    backup_creation_date_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_expiry_date_time: Option<f64>,
}

impl From<&Backup> for BackupDetails {
    fn from(b: &Backup) -> Self {
        BackupDetails {
            backup_arn: b.arn.clone(),
            backup_name: b.name.clone(),
            backup_size_bytes: b.size_bytes,
            backup_status: b.status.as_str(),
            backup_type: b.backup_type.as_str(),
            backup_creation_date_time: seconds(b.created_millis),
            backup_expiry_date_time: b.expiry_millis.map(seconds),
        }
    }
}

pub(crate) fn create_backup(
    engine: &Engine,
    input: CreateBackupInput,
) -> Result<CreateBackupOutput, ApiError> {
    let table = named_table(&engine.store, input.table_name)?;
    let name = required(input.backup_name, "backupName")?;
    let backup = engine.backups.create_backup(&table, &name)?;
    Ok(CreateBackupOutput {
        backup_details: (&backup).into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BackupArnInput {
    backup_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BackupDescriptionOutput {
    backup_description: BackupDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct BackupDescription {
    backup_details: BackupDetails,
    source_table_details: SourceTableDetails,
    source_table_feature_details: SourceTableFeatureDetails,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SourceTableDetails {
    table_name: String,
    table_id: String,
    table_arn: String,
    table_size_bytes: i64,
    key_schema: Vec<KeySchemaElement>,
    table_creation_date_time: f64,
    provisioned_throughput: ProvisionedThroughput,
    item_count: i64,
    billing_mode: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SourceTableFeatureDetails {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    local_secondary_indexes: Vec<IndexInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    global_secondary_indexes: Vec<IndexInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_description: Option<tidemark_core::model::StreamSpecification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_to_live_description: Option<TtlDescription>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct IndexInfo {
    index_name: String,
    key_schema: Vec<KeySchemaElement>,
    projection: Projection,
    #[serde(skip_serializing_if = "Option::is_none")]
    provisioned_throughput: Option<ProvisionedThroughput>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TtlDescription {
    time_to_live_status: &'static str,
    attribute_name: String,
}

impl From<&Backup> for BackupDescription {
    fn from(b: &Backup) -> Self {
        let t = &b.table;
        BackupDescription {
            backup_details: b.into(),
            source_table_details: SourceTableDetails {
                table_name: t.table_name.clone(),
                table_id: t.table_uuid.clone(),
                table_arn: t.table_arn.clone(),
                table_size_bytes: b.size_bytes,
                key_schema: t.key_schema.clone(),
                table_creation_date_time: seconds(t.creation_millis),
                provisioned_throughput: t.provisioned_throughput,
                item_count: b.item_count,
                billing_mode: t.billing_mode.clone(),
            },
            source_table_feature_details: SourceTableFeatureDetails {
                local_secondary_indexes: t
                    .local_secondary_indexes
                    .iter()
                    .map(|l| IndexInfo {
                        index_name: l.index_name.clone(),
                        key_schema: l.key_schema.clone(),
                        projection: l.projection.clone(),
                        provisioned_throughput: None,
                    })
                    .collect(),
                global_secondary_indexes: t
                    .global_secondary_indexes
                    .iter()
                    .map(|g| IndexInfo {
                        index_name: g.index_name.clone(),
                        key_schema: g.key_schema.clone(),
                        projection: g.projection.clone(),
                        provisioned_throughput: g.provisioned_throughput,
                    })
                    .collect(),
                stream_description: t.stream_specification.clone().filter(|s| s.stream_enabled),
                time_to_live_description: t.time_to_live_attribute.as_ref().map(|a| {
                    TtlDescription {
                        time_to_live_status: "ENABLED",
                        attribute_name: a.clone(),
                    }
                }),
            },
        }
    }
}

pub(crate) fn describe_backup(
    engine: &Engine,
    input: BackupArnInput,
) -> Result<BackupDescriptionOutput, ApiError> {
    let arn = required(input.backup_arn, "backupArn")?;
    Ok(BackupDescriptionOutput {
        backup_description: (&engine.backups.describe_backup(&arn)?).into(),
    })
}

pub(crate) fn delete_backup(
    engine: &Engine,
    input: BackupArnInput,
) -> Result<BackupDescriptionOutput, ApiError> {
    let arn = required(input.backup_arn, "backupArn")?;
    Ok(BackupDescriptionOutput {
        backup_description: (&engine.backups.delete_backup(&arn)?).into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListBackupsInput {
    table_name: Option<String>,
    limit: Option<i64>,
    time_range_lower_bound: Option<f64>,
    time_range_upper_bound: Option<f64>,
    exclusive_start_backup_arn: Option<String>,
    backup_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListBackupsOutput {
    backup_summaries: Vec<BackupSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evaluated_backup_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct BackupSummary {
    table_name: String,
    table_id: String,
    table_arn: String,
    #[serde(flatten)]
    details: BackupDetails,
}

pub(crate) fn list_backups(
    engine: &Engine,
    input: ListBackupsInput,
) -> Result<ListBackupsOutput, ApiError> {
    let request = ListBackupsRequest {
        table_name: input.table_name,
        limit: input.limit,
        from_millis: input
            .time_range_lower_bound
            .map(|s| millis(s, "TimeRangeLowerBound"))
            .transpose()?,
        until_millis: input
            .time_range_upper_bound
            .map(|s| millis(s, "TimeRangeUpperBound"))
            .transpose()?,
        backup_type: input.backup_type,
        exclusive_start_backup_arn: input.exclusive_start_backup_arn,
    };
    let outcome = engine.backups.list_backups(&request)?;
    Ok(ListBackupsOutput {
        backup_summaries: outcome
            .backups
            .iter()
            .map(|b| BackupSummary {
                table_name: b.table.table_name.clone(),
                table_id: b.table.table_uuid.clone(),
                table_arn: b.table.table_arn.clone(),
                details: b.into(),
            })
            .collect(),
        last_evaluated_backup_arn: outcome.last_evaluated_backup_arn,
    })
}
