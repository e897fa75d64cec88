//! What several table operations share: finding a table (by name or ARN), saving its
//! definition, opening and ending its streams, and the validation rules for names, keys,
//! projections, throughput and stream settings.

use std::sync::Arc;

use crate::changes::ChangeSeq;
use crate::model::{Projection, ProvisionedThroughput, StreamSpecification, TableDefinition};
use std::sync::atomic::Ordering;

use super::describe_table::{TableDescription, TableStatus};
use crate::storage::catalog::{TableEntry, table_key};
use crate::storage::stream_catalog_entry;
use crate::stream_log::{Generation, StreamEnd, StreamInfo};
use crate::{Error, Result, Store, TableId, Violations};

pub(crate) const MAX_LSIS: usize = 5;
pub(crate) const MAX_GSIS: usize = 20;
/// Longest name of a key attribute (table or index), in bytes.
const MAX_KEY_NAME_BYTES: usize = 255;

impl Store {
    /// The internal id of a live table.
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn table_id(&self, table_name: &str) -> Result<TableId> {
        Ok(self.table(table_name)?.id)
    }

    /// Everything the node keeps about a live table, as stored (replication copies a table's
    /// schema and shared settings from it).
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn table_definition(&self, table_name: &str) -> Result<TableDefinition> {
        Ok(self.table(table_name)?.definition.read().clone())
    }

    /// The definitions of every table, in name order (tables a restore is building included).
    pub fn table_definitions(&self) -> Vec<TableDefinition> {
        let tables = self.storage.catalog.tables.read();
        let mut definitions: Vec<TableDefinition> = tables
            .values()
            .map(|t| t.definition.read().clone())
            .collect();
        definitions.sort_by(|a, b| a.table_name.cmp(&b.table_name));
        definitions
    }

    /// The live table `name`, ready for use (a table a restore is still building is not).
    pub(crate) fn table(&self, name: &str) -> Result<Arc<TableEntry>> {
        let entry = self.table_even_building(name)?;
        if entry.building.load(std::sync::atomic::Ordering::Acquire) {
            return Err(not_found(name));
        }
        Ok(entry)
    }

    /// The live table `name` for an item operation (GetItem to TransactWriteItems): a missing
    /// table is DynamoDB's bare `Requested resource not found` there, where the table
    /// operations name it.
    ///
    /// # Errors
    /// ResourceNotFound; Validation for a bad name.
    pub(crate) fn item_table(&self, name: &str) -> Result<Arc<TableEntry>> {
        self.table(name).map_err(|e| match e {
            Error::ResourceNotFound(_) => Error::ResourceNotFound(ITEM_TABLE_NOT_FOUND.into()),
            other => other,
        })
    }

    /// The live table `name`, also while a restore builds it.
    ///
    /// A request carrying a value nested too deep, whose report was deferred, is refused here:
    /// DynamoDB reports it after the request's other faults and before its table is looked up
    /// (`tidemark_model::model::Nesting::Defer`).
    pub(crate) fn table_even_building(&self, name: &str) -> Result<Arc<TableEntry>> {
        if let Some(fault) = crate::model::deferred_nesting_fault() {
            return Err(Error::validation(fault));
        }
        let name = self.table_name_of(name)?;
        self.storage.table(name).ok_or_else(|| not_found(name))
    }

    /// The table a `TableName` names: the name itself, or the name in the table's ARN (as
    /// DynamoDB takes ARNs in every call but CreateTable). An ARN of another account is
    /// AccessDeniedException, one of another region a validation error, as DynamoDB answers.
    ///
    /// # Errors
    /// Validation for a bad name or ARN; AccessDenied.
    pub fn table_name_of<'a>(&self, reference: &'a str) -> Result<&'a str> {
        let mut violations = Violations::default();
        violations.table_reference(reference, "tableName");
        violations.check()?;
        if !reference.starts_with("arn:") {
            return Ok(reference);
        }
        let malformed = || {
            Error::validation(format!(
                "1 validation error detected: Value '{reference}' at 'tableName' failed to satisfy constraint: Valid ARN format is 'arn:<awsPartition>:<vendor>:<region>:<subscriber>:resourceType/resourceName', where Resource name must have length less than or equal to 255, Resource name must have length greater than or equal to 3, Resource name must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
            ))
        };
        let parts: Vec<&str> = reference.splitn(6, ':').collect();
        let [_, _, service, region, account, resource] = parts[..] else {
            return Err(malformed());
        };
        let name = match resource.strip_prefix("table/") {
            Some(name) if service == "dynamodb" && crate::error::is_name(name) => name,
            _ => return Err(malformed()),
        };
        if !(3..=255).contains(&name.len()) {
            return Err(malformed());
        }
        if region != self.config.region {
            return Err(Error::validation(format!(
                "1 validation error detected: Invalid AWS region in '{reference}'"
            )));
        }
        if account != self.config.account_id {
            return Err(Error::AccessDenied("Access is denied".into()));
        }
        Ok(name)
    }

    pub(crate) fn table_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.config.region, self.config.account_id, name
        )
    }

    /// The table named by an ARN of this node's region and account. An ARN of another
    /// account is AccessDeniedException, as DynamoDB answers a caller without rights there.
    pub(crate) fn table_by_arn(&self, arn: &str) -> Result<Arc<TableEntry>> {
        let prefix = format!(
            "arn:aws:dynamodb:{}:{}:table/",
            self.config.region, self.config.account_id
        );
        let account = arn.split(':').nth(4);
        match arn.strip_prefix(&prefix) {
            Some(name) if !name.contains('/') => self.table(name).map_err(|_| {
                Error::ResourceNotFound(format!(
                    "Requested resource not found: ResourcArn: {arn} not found"
                ))
            }),
            _ if !arn.starts_with("arn:") => Err(Error::validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}: ARNs must start with 'arn:'"
            ))),
            _ if arn.starts_with("arn:aws:dynamodb:")
                && account.is_some_and(|a| !a.is_empty() && a != self.config.account_id) =>
            {
                Err(Error::AccessDenied("Access is denied".into()))
            }
            _ => Err(Error::validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))),
        }
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

    /// Drops a table (the caller holds the DDL lock): ends its streams, removes it from the
    /// catalog, releases its holds and purges its items. `before_purge` runs once no commit
    /// can reach the table any more, with its last change (DeleteTable backs it up there);
    /// when it fails, the table stays.
    pub(crate) fn drop_table(
        &self,
        entry: &TableEntry,
        before_purge: impl FnOnce(ChangeSeq) -> Result<()>,
    ) -> Result<TableDescription> {
        let name = entry.name.as_str();
        let description = self.describe(entry, TableStatus::Deleting);
        let now = self.clock.now_millis();
        // IMPORTANT: set under the sequencer lock, so no commit for this table lands after
        // the catalog entry is gone, and its streams end exactly there.
        let (ended, boundary) = self.storage.with_sequence_boundary(|boundary| {
            entry.dropped.store(true, Ordering::Release);
            Ok((self.end_streams(entry.id, boundary, now), boundary))
        })?;
        if let Err(e) = before_purge(boundary.saturating_prev()) {
            entry.dropped.store(false, Ordering::Release);
            return Err(e);
        }
        let mut puts = Vec::new();
        for stream in &ended {
            puts.push(stream_catalog_entry(stream)?);
        }
        self.storage.write_catalog(&puts, &[table_key(name)])?;
        self.storage.install_streams(ended, &[]);
        self.release_table_holds(entry.id)?;
        self.storage.forget_table(entry)?;
        Ok(description)
    }

    /// A new stream of the table, starting at `boundary`, labelled after `now` (moved on by
    /// a millisecond if an earlier stream of the table already has that label).
    pub(crate) fn new_stream(
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
    pub(crate) fn end_streams(
        &self,
        table_id: TableId,
        boundary: ChangeSeq,
        now: u64,
    ) -> Vec<StreamInfo> {
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
}

pub(crate) fn coral(value: &str, field: &str, constraint: &str) -> Error {
    Violations::one(value, field, constraint)
}

/// What an item operation says of a table that does not exist (DynamoDB names no table).
pub(crate) const ITEM_TABLE_NOT_FOUND: &str = "Requested resource not found";

fn not_found(name: &str) -> Error {
    Error::ResourceNotFound(format!(
        "Requested resource not found: Table: {name} not found"
    ))
}

/// Checks a table or index name: 3–255 characters of `[a-zA-Z0-9_.-]`; a name breaking both
/// rules gets both violations, the length first, as DynamoDB reports them for `tableName`.
pub(crate) fn check_name(name: &str, field: &str) -> Result<()> {
    let mut violations = Violations::default();
    violations.name(name, field);
    violations.check()
}

/// Checks a backup name: the same rules as [`check_name`], but DynamoDB reports a
/// `backupName` breaking both with the pattern first.
pub(crate) fn check_backup_name(name: &str, field: &str) -> Result<()> {
    let mut violations = Violations::default();
    if !crate::error::is_name(name) {
        violations.breaks(name, field, crate::error::NAME_PATTERN);
    }
    violations.length(name, field, 3, 255);
    violations.check()
}

pub(crate) fn check_projection(projection: &Projection) -> Result<()> {
    let invalid = |why: String| {
        Err(Error::validation(format!(
            "One or more parameter values were invalid: {why}"
        )))
    };
    let attributes = projection.non_key_attributes.as_deref().unwrap_or_default();
    match projection.projection_type.as_deref() {
        Some(kind @ ("ALL" | "KEYS_ONLY")) if projection.non_key_attributes.is_some() => invalid(
            format!("ProjectionType is {kind}, but NonKeyAttributes is specified"),
        ),
        Some("ALL" | "KEYS_ONLY") => Ok(()),
        Some("INCLUDE") if attributes.is_empty() => {
            invalid("ProjectionType is INCLUDE, but NonKeyAttributes is not specified".to_string())
        }
        Some("INCLUDE") => {
            if let Some(long) = attributes.iter().find(|n| n.len() > MAX_KEY_NAME_BYTES) {
                return Err(coral(
                    long,
                    "projection.nonKeyAttributes.member",
                    "Member must have length less than or equal to 255",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            match attributes.iter().find(|name| !seen.insert(name.as_str())) {
                Some(twice) => invalid(format!(
                    "Duplicate attribute name in NonKeyAttributes: {twice}"
                )),
                None => Ok(()),
            }
        }
        None => Err(Error::validation("Unknown ProjectionType: null")),
        Some(other) => Err(coral(
            other,
            "projection.projectionType",
            "Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]",
        )),
    }
}

/// Key attribute names (table and index keys, and their definitions) are at most 255 bytes;
/// `field` names the request member in the error, as DynamoDB's validation messages do.
pub(crate) fn check_key_name_length(name: &str, field: &str) -> Result<()> {
    if name.len() > MAX_KEY_NAME_BYTES {
        return Err(coral(
            name,
            field,
            "Member must have length less than or equal to 255",
        ));
    }
    Ok(())
}

pub(crate) fn check_throughput(t: &ProvisionedThroughput) -> Result<()> {
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
pub(crate) fn check_stream_spec(
    spec: &StreamSpecification,
    creating: bool,
) -> Result<Option<StreamSpecification>> {
    if !spec.stream_enabled {
        if spec.stream_view_type.is_some() {
            return Err(Error::validation(match creating {
                // Sic (conformance, recorded against AWS).
                true => {
                    "One or more parameter values were invalid: Table is being created with a stream disabled, UpdateViewType should not be specified"
                }
                false => {
                    "One or more parameter values were invalid: StreamViewType should not be specified when StreamEnabled is false"
                }
            }));
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
pub(crate) fn stream_label(millis: u64) -> String {
    chrono::DateTime::from_timestamp_millis(millis as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<()>) -> String {
        match result {
            Err(Error::Validation(message)) => message,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn a_name_breaking_both_rules_gets_both_violations_in_dynamodbs_order() {
        assert!(check_name("orders.v2", "tableName").is_ok());
        assert_eq!(
            message(check_name("", "tableName")),
            "2 validation errors detected: Value '' at 'tableName' failed to satisfy constraint: \
             Member must have length greater than or equal to 3; Value '' at 'tableName' failed \
             to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
        assert_eq!(
            message(check_name("a b", "tableName")),
            "1 validation error detected: Value 'a b' at 'tableName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
        assert!(
            message(check_backup_name("", "backupName"))
                .starts_with("2 validation errors detected: Value '' at 'backupName' failed to satisfy constraint: Member must satisfy regular expression pattern")
        );
    }

    #[test]
    fn stream_labels_are_iso8601() {
        assert_eq!(stream_label(0), "1970-01-01T00:00:00.000");
        assert_eq!(stream_label(1_700_000_000_123), "2023-11-14T22:13:20.123");
    }
}
