//! On-demand and system backups: exact copies of a table as of one change sequence, kept in
//! their own keyspace until deleted (or, for a system backup, until it expires).
//!
//! CreateBackup records the backup (CREATING) at the current change sequence and holds the
//! log from there; the job runner then copies the table as of that sequence
//! ([`crate::storage::image`]), marks the backup AVAILABLE and releases the hold. A restart
//! in between runs the copy again from the held log. DeleteTable finishes every backup of
//! the table still being copied, and takes a system backup of a table with point-in-time
//! recovery on, before the table's items go.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Backups;
use crate::changes::ChangeSeq;
use crate::model::TableDefinition;
use crate::ops::tables::{check_backup_name, coral};
use crate::retention::HoldName;
use crate::storage::catalog::TableEntry;
use crate::{Error, Result};

/// How long a system backup of a deleted table is kept (DynamoDB: 35 days).
const SYSTEM_BACKUP_DAYS: u64 = 35;

/// Who made a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupType {
    /// CreateBackup.
    User,
    /// DeleteTable of a table with point-in-time recovery on.
    System,
}

impl BackupType {
    /// DynamoDB's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::User => "USER",
            BackupType::System => "SYSTEM",
        }
    }
}

/// Where a backup is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupStatus {
    /// Being copied.
    Creating,
    /// Restorable.
    Available,
    /// Deleted (DeleteBackup's answer).
    Deleted,
}

impl BackupStatus {
    /// DynamoDB's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Creating => "CREATING",
            BackupStatus::Available => "AVAILABLE",
            BackupStatus::Deleted => "DELETED",
        }
    }
}

/// One backup, as kept in the catalog (`backup/<id hex>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Backup {
    /// Internal id (names the backup's keyspace).
    pub id: u64,
    /// `<table ARN>/backup/<creation millis>-<8 hex>`.
    pub arn: String,
    /// The name given to CreateBackup (or `<table>$DeletedTableBackup`).
    pub name: String,
    /// USER or SYSTEM.
    pub backup_type: BackupType,
    /// CREATING or AVAILABLE.
    pub status: BackupStatus,
    /// When it was taken, milliseconds since the Unix epoch: it holds the table as of then.
    pub created_millis: u64,
    /// When a system backup goes.
    pub expiry_millis: Option<u64>,
    /// The last change sequence it holds.
    pub at: ChangeSeq,
    /// The table's definition when the backup was taken.
    pub table: TableDefinition,
    /// Items copied (known once AVAILABLE).
    pub item_count: i64,
    /// Bytes of those items.
    pub size_bytes: i64,
}

/// ListBackups' filters.
#[derive(Debug, Clone, Default)]
pub struct ListBackupsRequest {
    /// Only backups of this table.
    pub table_name: Option<String>,
    /// Page size (1–100, default 100).
    pub limit: Option<i64>,
    /// Only backups taken at or after this instant (milliseconds).
    pub from_millis: Option<u64>,
    /// Only backups taken before this instant (milliseconds).
    pub until_millis: Option<u64>,
    /// `USER` (default), `SYSTEM`, `AWS_BACKUP` or `ALL`.
    pub backup_type: Option<String>,
    /// Resume after this backup.
    pub exclusive_start_backup_arn: Option<String>,
}

/// One page of ListBackups.
#[derive(Debug, Clone)]
pub struct ListBackupsOutcome {
    /// Backups in creation order.
    pub backups: Vec<Backup>,
    /// Where the next page starts.
    pub last_evaluated_backup_arn: Option<String>,
}

fn backup_key(id: u64) -> Vec<u8> {
    format!("backup/{id:016x}").into_bytes()
}

impl Backups {
    /// Loads every backup record at open, and drops backup copies whose record is gone (a
    /// crash between the two steps of DeleteBackup).
    pub(crate) fn load_backups(&self) -> Result<()> {
        let mut backups = self.backups.lock();
        for value in self.store.storage.catalog_values(b"backup/") {
            let value = value?;
            let backup: Backup = serde_json::from_slice(&value)
                .map_err(|e| Error::Corrupt(format!("a backup record: {e}")))?;
            backups.insert(backup.id, backup);
        }
        for id in self.store.storage.stored_backup_ids() {
            if !backups.contains_key(&id) {
                self.store.storage.drop_backup(id)?;
            }
        }
        Ok(())
    }

    fn save_backup(&self, backup: &Backup) -> Result<()> {
        let json = serde_json::to_vec(backup).map_err(|e| Error::Internal(e.to_string()))?;
        self.store
            .storage
            .write_catalog(&[(backup_key(backup.id), json)], &[])?;
        self.backups.lock().insert(backup.id, backup.clone());
        Ok(())
    }

    /// CreateBackup: records a backup of the table as of now and starts copying it; it is
    /// CREATING until the copy is done.
    ///
    /// # Errors
    /// Validation for a bad name; TableNotFound; TableInUse while a restore builds the table.
    pub fn create_backup(&self, table: &str, backup_name: &str) -> Result<Backup> {
        check_backup_name(backup_name, "backupName")?;
        let entry = self.backup_source(table)?;
        let backup = self.record_backup(&entry, backup_name, BackupType::User, None)?;
        self.jobs_requested.notify_one();
        Ok(backup)
    }

    /// Records a CREATING backup of `entry` as of the last change committed so far (or as of
    /// `at`), holding the log after it.
    fn record_backup(
        &self,
        entry: &TableEntry,
        name: &str,
        backup_type: BackupType,
        at: Option<ChangeSeq>,
    ) -> Result<Backup> {
        let id = uuid::Uuid::new_v4().as_u64_pair().0;
        let (at, created_millis) = match at {
            Some(at) => (at, self.store.clock.now_millis()),
            None => self.store.storage.with_sequence_boundary(|next| {
                Ok((next.saturating_prev(), self.store.clock.now_millis()))
            })?,
        };
        self.store
            .set_hold(&HoldName::Backup { backup_id: id }, None, at.next())?;
        let table = entry.definition.read().clone();
        let backup = Backup {
            id,
            arn: format!(
                "{}/backup/{created_millis:013}-{:08x}",
                table.table_arn, id as u32
            ),
            name: name.to_string(),
            backup_type,
            status: BackupStatus::Creating,
            created_millis,
            expiry_millis: (backup_type == BackupType::System)
                .then(|| created_millis + SYSTEM_BACKUP_DAYS * 24 * 3600 * 1000),
            at,
            table,
            item_count: 0,
            size_bytes: 0,
        };
        self.save_backup(&backup)?;
        Ok(backup)
    }

    /// Copies every backup still CREATING. Returns how many finished.
    pub(crate) fn finish_pending_backups(&self) -> Result<usize> {
        let pending: Vec<u64> = self
            .backups
            .lock()
            .values()
            .filter(|b| b.status == BackupStatus::Creating)
            .map(|b| b.id)
            .collect();
        let mut finished = 0;
        for id in pending {
            finished += usize::from(self.finish_backup(id)?);
        }
        Ok(finished)
    }

    /// Copies backup `id` if it is still CREATING; drops it if its table is gone (the copy
    /// can no longer be made). Returns true when it became AVAILABLE.
    fn finish_backup(&self, id: u64) -> Result<bool> {
        let _job = self.backup_jobs.lock();
        let Some(mut backup) = self.backups.lock().get(&id).cloned() else {
            return Ok(false);
        };
        if backup.status != BackupStatus::Creating {
            return Ok(false);
        }
        let Some(entry) = self.store.storage.table_by_id(backup.table.table_id) else {
            tracing::warn!(backup = %backup.arn, "the table was deleted before its backup was copied; dropping the backup");
            self.remove_backup(id)?;
            return Ok(false);
        };
        self.store.storage.wait_durable(backup.at)?;
        let image = self
            .store
            .storage
            .table_image(entry.id, &entry.shape, backup.at)?;
        let written = self.store.storage.write_backup(id, image)?;
        self.store.storage.sync_if_durable()?;
        backup.status = BackupStatus::Available;
        backup.item_count = written.items;
        backup.size_bytes = written.bytes;
        self.save_backup(&backup)?;
        self.store
            .release_hold(&HoldName::Backup { backup_id: id })?;
        Ok(true)
    }

    fn remove_backup(&self, id: u64) -> Result<()> {
        self.store.storage.write_catalog(&[], &[backup_key(id)])?;
        self.backups.lock().remove(&id);
        self.store
            .release_hold(&HoldName::Backup { backup_id: id })?;
        self.store.storage.drop_backup(id)
    }

    /// Before DeleteTable purges `entry` (no commit can reach it any more; its last change
    /// is `last`): finishes every backup of it still being copied, and takes the system
    /// backup of a table with point-in-time recovery on.
    pub(crate) fn back_up_before_delete(&self, entry: &TableEntry, last: ChangeSeq) -> Result<()> {
        if entry.definition.read().point_in_time_recovery.is_some() {
            let name = format!("{}$DeletedTableBackup", entry.name);
            self.record_backup(entry, &name, BackupType::System, Some(last))?;
        }
        let pending: Vec<u64> = self
            .backups
            .lock()
            .values()
            .filter(|b| b.status == BackupStatus::Creating && b.table.table_id == entry.id)
            .map(|b| b.id)
            .collect();
        for id in pending {
            self.finish_backup(id)?;
        }
        Ok(())
    }

    /// The backup with this ARN.
    ///
    /// # Errors
    /// BackupNotFound.
    pub fn describe_backup(&self, arn: &str) -> Result<Backup> {
        self.backups
            .lock()
            .values()
            .find(|b| b.arn == arn)
            .cloned()
            .ok_or_else(|| Error::BackupNotFound(format!("Backup not found: {arn}")))
    }

    /// DeleteBackup: drops the backup and its copy; answers it with status DELETED.
    ///
    /// # Errors
    /// BackupNotFound; BackupInUse while it is being created or restored from.
    pub fn delete_backup(&self, arn: &str) -> Result<Backup> {
        let _users = self.backup_users.lock();
        let mut backup = self.describe_backup(arn)?;
        if backup.status == BackupStatus::Creating {
            return Err(Error::BackupInUse(format!(
                "Backup is being created: {arn}"
            )));
        }
        if self.restoring_from(backup.id) {
            return Err(Error::BackupInUse(format!(
                "Backup is being restored from: {arn}"
            )));
        }
        self.remove_backup(backup.id)?;
        backup.status = BackupStatus::Deleted;
        Ok(backup)
    }

    /// ListBackups: backups in creation order, filtered, a page at a time.
    ///
    /// # Errors
    /// Validation for a bad limit or backup type.
    pub fn list_backups(&self, request: &ListBackupsRequest) -> Result<ListBackupsOutcome> {
        let limit = match request.limit {
            None => 100,
            Some(l) if (1..=100).contains(&l) => l as usize,
            Some(l) => {
                return Err(coral(
                    &l.to_string(),
                    "limit",
                    if l < 1 {
                        "Member must have value greater than or equal to 1"
                    } else {
                        "Member must have value less than or equal to 100"
                    },
                ));
            }
        };
        let types: &[BackupType] = match request.backup_type.as_deref() {
            None | Some("USER") => &[BackupType::User],
            Some("SYSTEM") => &[BackupType::System],
            Some("AWS_BACKUP") => &[],
            Some("ALL") => &[BackupType::User, BackupType::System],
            Some(other) => {
                return Err(coral(
                    other,
                    "backupType",
                    "Member must satisfy enum value set: [USER, SYSTEM, AWS_BACKUP, ALL]",
                ));
            }
        };
        let mut backups: Vec<Backup> = self
            .backups
            .lock()
            .values()
            .filter(|b| types.contains(&b.backup_type))
            .filter(|b| {
                request
                    .table_name
                    .as_ref()
                    .is_none_or(|t| *t == b.table.table_name)
            })
            .filter(|b| request.from_millis.is_none_or(|t| b.created_millis >= t))
            .filter(|b| request.until_millis.is_none_or(|t| b.created_millis < t))
            .cloned()
            .collect();
        backups.sort_by(|a, b| (a.created_millis, &a.arn).cmp(&(b.created_millis, &b.arn)));
        let start = match &request.exclusive_start_backup_arn {
            Some(arn) => backups
                .iter()
                .position(|b| b.arn == *arn)
                .map_or(0, |at| at + 1),
            None => 0,
        };
        let page: Vec<Backup> = backups.iter().skip(start).take(limit).cloned().collect();
        let last_evaluated_backup_arn = (backups.len() > start + page.len())
            .then(|| page.last().map(|b| b.arn.clone()))
            .flatten();
        Ok(ListBackupsOutcome {
            backups: page,
            last_evaluated_backup_arn,
        })
    }

    /// Drops system backups past their expiry.
    pub(crate) fn expire_backups(&self) -> Result<()> {
        let now = self.store.clock.now_millis();
        let expired: Vec<u64> = self
            .backups
            .lock()
            .values()
            .filter(|b| b.expiry_millis.is_some_and(|e| e <= now))
            .map(|b| b.id)
            .collect();
        for id in expired {
            self.remove_backup(id)?;
        }
        Ok(())
    }

    /// The backup `id`, when it can be restored from.
    pub(crate) fn available_backup(&self, arn: &str) -> Result<Arc<Backup>> {
        let backup = self.describe_backup(arn)?;
        if backup.status != BackupStatus::Available {
            return Err(Error::BackupInUse(format!(
                "Backup is being created: {arn}"
            )));
        }
        Ok(Arc::new(backup))
    }
}
