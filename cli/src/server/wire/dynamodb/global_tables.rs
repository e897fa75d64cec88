//! Global tables on the wire: UpdateTable's `ReplicaUpdates` (version 2019.11.21), the
//! settings a global table's other replicas follow after UpdateTable or UpdateTimeToLive, and
//! the legacy calls of version 2017.11.29 (CreateGlobalTable, UpdateGlobalTable,
//! DescribeGlobalTable, ListGlobalTables). All of them await the replicator, which talks to
//! peers, so they run as the request's async task.

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidemark_replicator::ReplicaUpdate;
use tidemark_replicator::membership::{GlobalTable, LEGACY_VERSION, ReplicaStatus, VERSION};

use super::common::named_table;
use super::common::required;
use super::table_description::WireTableDescription;
use crate::server::AppState;
use crate::server::error::ApiError;

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::from_json(&e))
}

fn encode<T: Serialize>(output: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(output).map_err(|e| ApiError::internal(e.to_string()))
}

/// The `TableName` of a request, when it has one (before the operation checks the request).
pub(crate) fn table_name(store: &tidemark_core::Store, body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let given = value.get("TableName")?.as_str()?;
    store.table_name_of(given).ok().map(String::from)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplicaUpdatesInput {
    table_name: Option<String>,
    replica_updates: Vec<WireReplicaUpdate>,
    billing_mode: Option<Value>,
    provisioned_throughput: Option<Value>,
    stream_specification: Option<Value>,
    global_secondary_index_updates: Option<Value>,
}

/// One element of `ReplicaUpdates`: exactly one member is set. Overrides (throughput, KMS
/// key, table class, indexes) are accepted and not enforced: this node has no capacity
/// limits or per-replica encryption to apply them to.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireReplicaUpdate {
    create: Option<WireRegion>,
    update: Option<WireRegion>,
    delete: Option<WireRegion>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireRegion {
    region_name: Option<String>,
}

fn region_of(region: WireRegion) -> Result<String, ApiError> {
    required(region.region_name, "regionName")
}

fn convert(update: WireReplicaUpdate) -> Result<ReplicaUpdate, ApiError> {
    match (update.create, update.update, update.delete) {
        (Some(r), None, None) => Ok(ReplicaUpdate::Create(region_of(r)?)),
        (None, Some(r), None) => Ok(ReplicaUpdate::Update(region_of(r)?)),
        (None, None, Some(r)) => Ok(ReplicaUpdate::Delete(region_of(r)?)),
        _ => Err(ApiError::validation(
            "One or more parameter values were invalid: exactly one of Create, Update or Delete \
             must be specified in a ReplicationGroupUpdate",
        )),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateTableOutput {
    table_description: WireTableDescription,
}

/// UpdateTable with `ReplicaUpdates` (the request decoded as `value`): the replicator adds,
/// updates or removes the table's replicas in other regions.
pub(crate) async fn update_replicas(state: &AppState, value: Value) -> Result<Vec<u8>, ApiError> {
    let input: ReplicaUpdatesInput =
        serde_json::from_value(value).map_err(|e| ApiError::from_json(&e))?;
    let table = named_table(&state.engine.store, input.table_name)?;
    if input.billing_mode.is_some()
        || input.provisioned_throughput.is_some()
        || input.stream_specification.is_some()
        || input.global_secondary_index_updates.is_some()
    {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: ReplicaUpdates cannot be combined with \
             other table updates in one UpdateTable request",
        ));
    }
    let updates = input
        .replica_updates
        .into_iter()
        .map(convert)
        .collect::<Result<Vec<_>, _>>()?;
    state
        .replicator
        .update_replicas(&table, updates, VERSION)
        .await?;
    encode(&UpdateTableOutput {
        table_description: WireTableDescription::describe(&state.engine.store, &table)?,
    })
}

/// The other replicas take a global table's changed shared settings.
pub(crate) async fn follow_settings(state: &AppState, table: &str) {
    if GlobalTable::of(&state.engine.store, table).is_none() {
        return;
    }
    if let Err(e) = state.replicator.settings_changed(table).await {
        tracing::warn!(table, error = %e, "the other replicas did not take the new settings yet");
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGlobalTableInput {
    global_table_name: Option<String>,
    replication_group: Option<Vec<WireRegion>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GlobalTableNameInput {
    global_table_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateGlobalTableInput {
    global_table_name: Option<String>,
    replica_updates: Option<Vec<WireReplicaUpdate>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGlobalTablesInput {
    exclusive_start_global_table_name: Option<String>,
    limit: Option<i64>,
    region_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct GlobalTableDescriptionOutput {
    global_table_description: GlobalTableDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct GlobalTableDescription {
    replication_group: Vec<LegacyReplica>,
    global_table_arn: String,
    creation_date_time: f64,
    global_table_status: &'static str,
    global_table_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyReplica {
    region_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_status: Option<&'static str>,
}

/// The legacy description of a version 2017.11.29 global table.
fn legacy_description(state: &AppState, table: &str) -> Result<GlobalTableDescription, ApiError> {
    let store = &state.engine.store;
    let not_found = || {
        ApiError::service(
            "GlobalTableNotFoundException",
            format!("Global table with name: '{table}' does not exist."),
        )
    };
    let definition = store.table_definition(table).map_err(|_| not_found())?;
    let global = GlobalTable::in_definition(&definition)
        .filter(|g| g.version == LEGACY_VERSION)
        .ok_or_else(not_found)?;
    let status = |s: ReplicaStatus| match s {
        ReplicaStatus::Creating | ReplicaStatus::CreationFailed => "CREATING",
        ReplicaStatus::Active => "ACTIVE",
        ReplicaStatus::Deleting => "DELETING",
    };
    let creating = global.replicas.values().any(|r| {
        matches!(
            r.status,
            ReplicaStatus::Creating | ReplicaStatus::CreationFailed
        )
    });
    let table_status = match (creating, global.is_updating()) {
        (true, _) => "CREATING",
        (false, true) => "UPDATING",
        (false, false) => "ACTIVE",
    };
    Ok(GlobalTableDescription {
        replication_group: global
            .replicas
            .iter()
            .map(|(region, replica)| LegacyReplica {
                region_name: region.clone(),
                replica_status: Some(status(replica.status)),
            })
            .collect(),
        global_table_arn: format!(
            "arn:aws:dynamodb::{}:global-table/{table}",
            store.config().account_id
        ),
        creation_date_time: definition.creation_millis as f64 / 1000.0,
        global_table_status: table_status,
        global_table_name: table.to_string(),
    })
}

/// Applies replica updates to a version 2017.11.29 group and answers its description.
async fn change_legacy_replicas(
    state: &AppState,
    table: &str,
    updates: Vec<ReplicaUpdate>,
) -> Result<Vec<u8>, ApiError> {
    state
        .replicator
        .update_replicas(table, updates, LEGACY_VERSION)
        .await?;
    encode(&GlobalTableDescriptionOutput {
        global_table_description: legacy_description(state, table)?,
    })
}

pub(crate) async fn create_global_table(
    state: &AppState,
    body: &Bytes,
) -> Result<Vec<u8>, ApiError> {
    let input: CreateGlobalTableInput = parse(body)?;
    let table = required(input.global_table_name, "globalTableName")?;
    let group = required(input.replication_group, "replicationGroup")?
        .into_iter()
        .map(region_of)
        .collect::<Result<Vec<_>, _>>()?;
    let me = state.engine.store.config().region.clone();
    if state.engine.store.table_definition(&table).is_err() {
        return Err(ApiError::service(
            "TableNotFoundException",
            format!("Table: {table} not found in region {me}"),
        ));
    }
    if GlobalTable::of(&state.engine.store, &table).is_some() {
        return Err(ApiError::service(
            "GlobalTableAlreadyExistsException",
            "Global table with this name already exists",
        ));
    }
    if !group.contains(&me) {
        return Err(ApiError::validation(format!(
            "The replication group must include this region ({me}), where the call is made"
        )));
    }
    let updates: Vec<ReplicaUpdate> = group
        .into_iter()
        .filter(|r| *r != me)
        .map(ReplicaUpdate::Create)
        .collect();
    if updates.is_empty() {
        return Err(ApiError::validation(
            "The replication group must name at least one region besides this one",
        ));
    }
    change_legacy_replicas(state, &table, updates).await
}

pub(crate) async fn update_global_table(
    state: &AppState,
    body: &Bytes,
) -> Result<Vec<u8>, ApiError> {
    let input: UpdateGlobalTableInput = parse(body)?;
    let table = required(input.global_table_name, "globalTableName")?;
    let updates = required(input.replica_updates, "replicaUpdates")?
        .into_iter()
        .map(convert)
        .collect::<Result<Vec<_>, _>>()?;
    let held = legacy_description(state, &table)?;
    let named = |region: &str| {
        held.replication_group
            .iter()
            .any(|r| r.region_name == region)
    };
    for update in &updates {
        match update {
            ReplicaUpdate::Create(region) if named(region) => {
                return Err(ApiError::service(
                    "ReplicaAlreadyExistsException",
                    format!("Replica already exists in region {region}"),
                ));
            }
            ReplicaUpdate::Delete(region) if !named(region) => {
                return Err(ApiError::service(
                    "ReplicaNotFoundException",
                    format!("Replica does not exist in region {region}"),
                ));
            }
            ReplicaUpdate::Update(_) => {
                return Err(ApiError::validation(
                    "A replica update of version 2017.11.29 is a Create or a Delete",
                ));
            }
            _ => {}
        }
    }
    change_legacy_replicas(state, &table, updates).await
}

pub(crate) async fn describe_global_table(
    state: &AppState,
    body: &Bytes,
) -> Result<Vec<u8>, ApiError> {
    let input: GlobalTableNameInput = parse(body)?;
    let table = required(input.global_table_name, "globalTableName")?;
    encode(&GlobalTableDescriptionOutput {
        global_table_description: legacy_description(state, &table)?,
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListGlobalTablesOutput {
    global_tables: Vec<ListedGlobalTable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evaluated_global_table_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListedGlobalTable {
    global_table_name: String,
    replication_group: Vec<LegacyReplica>,
}

pub(crate) async fn list_global_tables(
    state: &AppState,
    body: &Bytes,
) -> Result<Vec<u8>, ApiError> {
    let input: ListGlobalTablesInput = parse(body)?;
    let limit = match input.limit {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{n}' at 'limit' failed to satisfy \
                 constraint: Member must have value between 1 and 100"
            )));
        }
    };
    let mut tables: Vec<ListedGlobalTable> = GlobalTable::all(&state.engine.store)
        .into_iter()
        .filter(|(_, g)| g.version == LEGACY_VERSION)
        .filter(|(_, g)| {
            input
                .region_name
                .as_ref()
                .is_none_or(|r| g.replicas.contains_key(r))
        })
        .filter(|(name, _)| {
            input
                .exclusive_start_global_table_name
                .as_ref()
                .is_none_or(|start| name > start)
        })
        .map(|(name, g)| ListedGlobalTable {
            global_table_name: name,
            replication_group: g
                .replicas
                .keys()
                .map(|r| LegacyReplica {
                    region_name: r.clone(),
                    replica_status: None,
                })
                .collect(),
        })
        .collect();
    let more = tables.len() > limit;
    tables.truncate(limit);
    let last = more
        .then(|| tables.last().map(|t| t.global_table_name.clone()))
        .flatten();
    encode(&ListGlobalTablesOutput {
        global_tables: tables,
        last_evaluated_global_table_name: last,
    })
}
