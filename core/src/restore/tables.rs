//! RestoreTableToPointInTime and RestoreTableFromBackup: a new table, CREATING while the job
//! runner builds it from the source's history or from a backup, then ACTIVE.
//!
//! The restore is recorded in the target's definition (`RestoreSummary` with what it reads
//! from) before the call answers, so a restart resumes it: the runner empties the target and
//! builds it again. A restore whose source is gone meanwhile (the source table deleted
//! before a restart) cannot be built any more: the target is dropped, never left half-built;
//! a half-built table is never ACTIVE, and nobody can read or write it while CREATING.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Backups;
use crate::changes::ChangeSeq;
use crate::model::{
    GlobalSecondaryIndex, KeySchemaElement, LocalSecondaryIndex, ProvisionedThroughput,
    RestoreSource, RestoreSummary, TableDefinition,
};
use crate::ops::tables::check_name;
use crate::ops::{CreateTableRequest, TableDescription};
use crate::retention::HoldName;
use crate::storage::catalog::TableEntry;
use crate::storage::image::{ImageItem, load_batches};
use crate::{Error, Result};

/// Settings a restore may change from the source's.
#[derive(Debug, Clone, Default)]
pub struct RestoreOverrides {
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub billing_mode: Option<String>,
    /// The global secondary indexes to keep (a subset of the source's).
    pub global_secondary_indexes: Option<Vec<GlobalSecondaryIndex>>,
    /// The local secondary indexes to keep (a subset of the source's).
    pub local_secondary_indexes: Option<Vec<LocalSecondaryIndex>>,
    /// Capacity of a provisioned target.
    pub provisioned_throughput: Option<ProvisionedThroughput>,
}

/// The instant a point-in-time restore restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePoint {
    /// This instant, milliseconds since the Unix epoch.
    At(u64),
    /// The latest restorable instant (now).
    Latest,
}

impl Backups {
    /// RestoreTableToPointInTime: creates `target` (CREATING) holding `source` exactly as it
    /// was at `point`, to the millisecond; the job runner builds it.
    ///
    /// # Errors
    /// TableNotFound, PointInTimeRecoveryUnavailable, InvalidRestoreTime,
    /// TableAlreadyExists, Validation.
    pub fn restore_table_to_point_in_time(
        &self,
        source: &str,
        target: &str,
        point: RestorePoint,
        overrides: RestoreOverrides,
    ) -> Result<TableDescription> {
        check_name(target, "targetTableName")?;
        let entry = self.backup_source(source)?;
        let definition = entry.definition.read().clone();
        let settings = self.recovery_settings(&entry)?;
        self.check_target_free(target)?;
        let (millis, at) = self.resolve_point(settings, point)?;
        let hold = HoldName::Restore {
            target: target.to_string(),
        };
        self.store.set_hold(&hold, None, at.next())?;
        let summary = RestoreSummary {
            source_table_arn: definition.table_arn.clone(),
            source_backup_arn: None,
            restore_date_time_millis: millis,
            in_progress: Some(RestoreSource::Log {
                table_id: entry.id,
                at,
            }),
        };
        let created = self.create_restore_target(&definition, target, overrides, summary);
        if created.is_err() {
            self.store.release_hold(&hold)?;
        }
        self.jobs_requested.notify_one();
        created
    }

    /// The instant `point` names in a table with recovery `settings`, and the last change
    /// committed at or before it.
    ///
    /// # Errors
    /// InvalidRestoreTime outside the restorable window.
    pub(crate) fn resolve_point(
        &self,
        settings: crate::model::PitrSettings,
        point: RestorePoint,
    ) -> Result<(u64, ChangeSeq)> {
        let (last, now) = self.store.storage.with_sequence_boundary(|next| {
            Ok((next.saturating_prev(), self.store.clock.now_millis()))
        })?;
        let window = self.restorable_window(settings);
        match point {
            RestorePoint::Latest => Ok((now, last)),
            RestorePoint::At(millis) => {
                if millis < window.earliest_millis || millis > window.latest_millis {
                    return Err(Error::InvalidRestoreTime(format!(
                        "The time {} is outside the restorable window {} to {}",
                        iso_millis(millis),
                        iso_millis(window.earliest_millis),
                        iso_millis(window.latest_millis)
                    )));
                }
                Ok((millis, self.last_change_at(millis, last, now)?))
            }
        }
    }

    /// The last change committed at or before `millis` (which is at most `now`; `last` is
    /// the last change committed when `now` was read, so every later commit is later).
    fn last_change_at(&self, millis: u64, last: ChangeSeq, now: u64) -> Result<ChangeSeq> {
        if millis >= now {
            return Ok(last);
        }
        // Every change up to `last` must be searchable: the search reads durable changes.
        self.store.storage.wait_durable(last)?;
        Ok(match self.store.last_change_at_or_before(millis)? {
            Some(seq) => seq,
            // Every retained change is later: the table as of then is the log's start.
            None => self.store.oldest_retained_seq().saturating_prev(),
        })
    }

    /// RestoreTableFromBackup: creates `target` (CREATING) holding the backup's items; the
    /// job runner builds it.
    ///
    /// # Errors
    /// BackupNotFound, BackupInUse, TableAlreadyExists, Validation.
    pub fn restore_table_from_backup(
        &self,
        backup_arn: &str,
        target: &str,
        overrides: RestoreOverrides,
    ) -> Result<TableDescription> {
        check_name(target, "targetTableName")?;
        let backup = self.available_backup(backup_arn)?;
        self.check_target_free(target)?;
        let summary = RestoreSummary {
            source_table_arn: backup.table.table_arn.clone(),
            source_backup_arn: Some(backup.arn.clone()),
            restore_date_time_millis: backup.created_millis,
            in_progress: Some(RestoreSource::Backup {
                backup_id: backup.id,
            }),
        };
        // DeleteBackup takes this lock too, so it sees this restore once the backup is checked.
        let _users = self.backup_users.lock();
        self.available_backup(backup_arn)?;
        let created = self.create_restore_target(&backup.table, target, overrides, summary);
        self.jobs_requested.notify_one();
        created
    }

    fn check_target_free(&self, target: &str) -> Result<()> {
        match self.store.storage.table(target) {
            Some(_) => Err(Error::TableAlreadyExists(format!(
                "Table already exists: {target}"
            ))),
            None => Ok(()),
        }
    }

    /// True while a restore reads backup `backup_id`.
    pub(crate) fn restoring_from(&self, backup_id: u64) -> bool {
        self.store.storage.live_tables().iter().any(|t| {
            t.definition
                .read()
                .restore_summary
                .as_ref()
                .and_then(|s| s.in_progress)
                == Some(RestoreSource::Backup { backup_id })
        })
    }

    /// Creates the target of a restore from the source's definition and the overrides:
    /// key schema, indexes (all, or the subsets named), billing and capacity; no stream,
    /// TTL, tags or point-in-time recovery, as in DynamoDB.
    fn create_restore_target(
        &self,
        source: &TableDefinition,
        target: &str,
        overrides: RestoreOverrides,
        summary: RestoreSummary,
    ) -> Result<TableDescription> {
        let billing_mode = overrides
            .billing_mode
            .unwrap_or_else(|| source.billing_mode.clone());
        let on_demand = billing_mode == "PAY_PER_REQUEST";
        let mut gsis = chosen_indexes(
            overrides.global_secondary_indexes,
            &source.global_secondary_indexes,
            |g| (&g.index_name, &g.key_schema),
            "GlobalSecondaryIndexOverride",
        )?;
        if on_demand {
            for g in &mut gsis {
                g.provisioned_throughput = None;
            }
        }
        let lsis = chosen_indexes(
            overrides.local_secondary_indexes,
            &source.local_secondary_indexes,
            |l| (&l.index_name, &l.key_schema),
            "LocalSecondaryIndexOverride",
        )?;
        let provisioned_throughput = match on_demand {
            true => None,
            false => Some(
                overrides
                    .provisioned_throughput
                    .unwrap_or(source.provisioned_throughput),
            ),
        };
        let key_names: Vec<&str> = source
            .key_schema
            .iter()
            .chain(gsis.iter().flat_map(|g| &g.key_schema))
            .chain(lsis.iter().flat_map(|l| &l.key_schema))
            .map(|k| k.attribute_name.as_str())
            .collect();
        let attribute_definitions = source
            .attribute_definitions
            .iter()
            .filter(|d| key_names.contains(&d.attribute_name.as_str()))
            .cloned()
            .collect();
        let request = CreateTableRequest {
            table_name: target.to_string(),
            key_schema: source.key_schema.clone(),
            attribute_definitions,
            billing_mode: Some(billing_mode),
            provisioned_throughput,
            global_secondary_indexes: gsis,
            local_secondary_indexes: lsis,
            stream_specification: None,
            tags: Vec::new(),
            ..Default::default()
        };
        crate::tables::create_table_as(&self.store, request, Some(summary), None).map_err(|e| {
            match e {
                Error::ResourceInUse(message) => Error::TableAlreadyExists(message),
                other => other,
            }
        })
    }

    /// Builds every table a restore has not finished (new ones, and any a restart
    /// interrupted), then makes it ACTIVE. Returns how many were finished.
    pub(crate) fn run_pending_restores(&self) -> Result<usize> {
        let building: Vec<Arc<TableEntry>> = self
            .store
            .storage
            .live_tables()
            .into_iter()
            .filter(|t| t.building.load(Ordering::Acquire))
            .collect();
        let mut finished = 0;
        for entry in building {
            finished += usize::from(self.run_restore(&entry)?);
        }
        Ok(finished)
    }

    /// Releases the holds of restores whose target is not being built: a crash between
    /// setting a restore's hold and creating its target leaves one. Run at open, when no
    /// restore request is between the two.
    pub(crate) fn release_orphan_restore_holds(&self) -> Result<()> {
        for hold in self.store.holds() {
            let HoldName::Restore { target } = &hold.name else {
                continue;
            };
            if self
                .store
                .storage
                .table(target)
                .is_none_or(|t| !t.building.load(Ordering::Acquire))
            {
                self.store.release_hold(&hold.name)?;
            }
        }
        Ok(())
    }

    fn run_restore(&self, entry: &TableEntry) -> Result<bool> {
        let Some(source) = entry
            .definition
            .read()
            .restore_summary
            .as_ref()
            .and_then(|s| s.in_progress)
        else {
            return Ok(false);
        };
        self.store.storage.clear_table(entry)?;
        let started = std::time::Instant::now();
        let loaded = match source {
            RestoreSource::Log { table_id, at } => match self.store.storage.table_by_id(table_id) {
                Some(source) => {
                    self.store.storage.wait_durable(at)?;
                    let image = self
                        .store
                        .storage
                        .table_image(table_id, &source.shape, at)?;
                    tracing::info!(table = %entry.name, keys = image.undone(), ms = started.elapsed().as_millis() as u64, "restore read the changes to undo");
                    Some(self.load_table(entry, image)?)
                }
                None => None,
            },
            RestoreSource::Backup { backup_id } => {
                match self.backups.lock().contains_key(&backup_id) {
                    true => {
                        Some(self.load_table(entry, self.store.storage.backup_items(backup_id)?)?)
                    }
                    false => None,
                }
            }
        };
        let _ddl = self.store.storage.ddl.lock();
        let Some(items) = loaded else {
            tracing::warn!(table = %entry.name, "the source of the restore is gone; dropping the half-built table");
            self.store.drop_table(entry, |_| Ok(()))?;
            self.store.release_hold(&HoldName::Restore {
                target: entry.name.clone(),
            })?;
            return Ok(false);
        };
        let mut definition = entry.definition.read().clone();
        if let Some(summary) = definition.restore_summary.as_mut() {
            summary.in_progress = None;
        }
        self.store.save_definition(entry, definition)?;
        entry.building.store(false, Ordering::Release);
        self.store.release_hold(&HoldName::Restore {
            target: entry.name.clone(),
        })?;
        tracing::info!(table = %entry.name, items, ms = started.elapsed().as_millis() as u64, "restore finished");
        Ok(true)
    }

    /// Loads `items` into the table being built, in bounded batches. Returns the count.
    ///
    /// Reading (and decoding) the source runs on a thread of its own, one batch ahead of
    /// encoding and committing, so a restore uses two cores.
    fn load_table(
        &self,
        entry: &TableEntry,
        items: impl Iterator<Item = Result<ImageItem>> + Send,
    ) -> Result<u64> {
        let (batches, ready) = std::sync::mpsc::sync_channel::<Result<Vec<ImageItem>>>(2);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for batch in load_batches(items) {
                    let failed = batch.is_err();
                    // The receiver stops early only on an error; nothing is lost then.
                    if batches.send(batch).is_err() || failed {
                        return;
                    }
                }
            });
            self.store.storage.load_table(entry, ready.into_iter())
        })
    }
}

/// The indexes a restore keeps: the `chosen` ones, each one the source has (same name and key
/// schema), or all of the source's.
fn chosen_indexes<T: Clone>(
    chosen: Option<Vec<T>>,
    source: &[T],
    identity: impl Fn(&T) -> (&String, &Vec<KeySchemaElement>),
    member: &str,
) -> Result<Vec<T>> {
    let Some(chosen) = chosen else {
        return Ok(source.to_vec());
    };
    if let Some(unknown) = chosen
        .iter()
        .find(|c| !source.iter().any(|s| identity(s) == identity(c)))
    {
        return Err(Error::validation(format!(
            "{member} names an index the source does not have: {}",
            identity(unknown).0
        )));
    }
    Ok(chosen)
}

/// An instant as ISO 8601, for messages.
fn iso_millis(millis: u64) -> String {
    chrono::DateTime::from_timestamp_millis(millis as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| millis.to_string())
}
