//! Continuous backups: point-in-time recovery settings, the restorable window, and the hold
//! that keeps a table's history for its recovery period.

use super::Backups;
use crate::model::PitrSettings;
use crate::ops::tables::coral;
use crate::retention::HoldName;
use crate::storage::catalog::TableEntry;
use crate::{Error, Result};

/// Longest recovery period DynamoDB offers, and the default.
pub const MAX_RECOVERY_PERIOD_DAYS: u32 = 35;
const DAY_MILLIS: u64 = 24 * 3600 * 1000;

/// DescribeContinuousBackups' `PointInTimeRecoveryDescription` of a table with recovery on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorableWindow {
    /// Days of history kept.
    pub recovery_period_days: u32,
    /// The earliest restorable instant, milliseconds since the Unix epoch.
    pub earliest_millis: u64,
    /// The latest restorable instant: now (every acknowledged write is durable).
    pub latest_millis: u64,
}

impl Backups {
    /// The table named by `name_or_arn` for the backup operations, which answer
    /// TableNotFoundException for a missing one (or one a restore is still building:
    /// TableInUseException).
    pub(crate) fn backup_source(&self, name_or_arn: &str) -> Result<std::sync::Arc<TableEntry>> {
        let name = name_or_arn
            .strip_prefix("arn:")
            .and_then(|arn| arn.split_once(":table/").map(|(_, name)| name))
            .unwrap_or(name_or_arn);
        let entry = self
            .store
            .storage
            .table(name)
            .ok_or_else(|| Error::TableNotFound(format!("Table not found: {name}")))?;
        if entry.building.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::TableInUse(format!(
                "Table is being restored: {name}"
            )));
        }
        Ok(entry)
    }

    /// The recovery settings of `entry`, which restores and exports need.
    ///
    /// # Errors
    /// PointInTimeRecoveryUnavailable while recovery is off.
    pub(crate) fn recovery_settings(&self, entry: &TableEntry) -> Result<PitrSettings> {
        entry
            .definition
            .read()
            .point_in_time_recovery
            .ok_or_else(|| {
                Error::PointInTimeRecoveryUnavailable(format!(
                    "Point in time recovery is not enabled for table '{}'",
                    entry.name
                ))
            })
    }

    /// DescribeContinuousBackups: the restorable window, or `None` while point-in-time
    /// recovery is off.
    ///
    /// # Errors
    /// TableNotFound.
    pub fn describe_continuous_backups(&self, table: &str) -> Result<Option<RestorableWindow>> {
        let entry = self.backup_source(table)?;
        let settings = entry.definition.read().point_in_time_recovery;
        Ok(settings.map(|s| self.restorable_window(s)))
    }

    /// UpdateContinuousBackups: turns point-in-time recovery on (keeping the table's history
    /// from now on, for `recovery_period_days`, default 35) or off (the history goes; turning
    /// it on again starts a new window). Changing the period of an enabled table keeps its
    /// window's start.
    ///
    /// # Errors
    /// Validation for a period outside 1–35; TableNotFound.
    pub fn update_continuous_backups(
        &self,
        table: &str,
        enabled: bool,
        recovery_period_days: Option<i64>,
    ) -> Result<Option<RestorableWindow>> {
        let days = match recovery_period_days {
            None => MAX_RECOVERY_PERIOD_DAYS,
            Some(d) if d < 1 => {
                return Err(coral(
                    &d.to_string(),
                    "pointInTimeRecoverySpecification.recoveryPeriodInDays",
                    "Member must have value greater than or equal to 1",
                ));
            }
            Some(d) if d > i64::from(MAX_RECOVERY_PERIOD_DAYS) => {
                return Err(coral(
                    &d.to_string(),
                    "pointInTimeRecoverySpecification.recoveryPeriodInDays",
                    "Member must have value less than or equal to 35",
                ));
            }
            Some(d) => d as u32,
        };
        if !enabled && recovery_period_days.is_some() {
            return Err(Error::validation(
                "RecoveryPeriodInDays can only be set when PointInTimeRecoveryEnabled is true",
            ));
        }
        let _ddl = self.store.storage.ddl.lock();
        let entry = self.backup_source(table)?;
        let mut definition = entry.definition.read().clone();
        let hold = HoldName::Pitr { table_id: entry.id };
        definition.point_in_time_recovery = match (enabled, definition.point_in_time_recovery) {
            (false, _) => {
                self.store.release_hold(&hold)?;
                None
            }
            (true, Some(current)) => Some(PitrSettings {
                recovery_period_days: days,
                ..current
            }),
            (true, None) => {
                // IMPORTANT: the hold starts at the next change, so every change from the
                // window's start on is kept to be undone.
                let (from, now) = self
                    .store
                    .storage
                    .with_sequence_boundary(|next| Ok((next, self.store.clock.now_millis())))?;
                self.store.set_hold(&hold, Some(entry.id), from)?;
                Some(PitrSettings {
                    enabled_millis: now,
                    recovery_period_days: days,
                })
            }
        };
        let settings = definition.point_in_time_recovery;
        self.store.save_definition(&entry, definition)?;
        Ok(settings.map(|s| self.restorable_window(s)))
    }

    /// The window a table with `settings` can be restored to, now.
    pub(crate) fn restorable_window(&self, settings: PitrSettings) -> RestorableWindow {
        let now = self.store.clock.now_millis();
        let period = u64::from(settings.recovery_period_days) * DAY_MILLIS;
        RestorableWindow {
            recovery_period_days: settings.recovery_period_days,
            earliest_millis: settings.enabled_millis.max(now.saturating_sub(period)),
            latest_millis: now.max(settings.enabled_millis),
        }
    }

    /// Moves each recovery hold up to its window's start, so history older than a table's
    /// recovery period can be trimmed.
    pub(crate) fn advance_recovery_holds(&self) -> Result<()> {
        for entry in self.store.storage.live_tables() {
            let Some(settings) = entry.definition.read().point_in_time_recovery else {
                continue;
            };
            let window = self.restorable_window(settings);
            if let Some(seq) = self
                .store
                .last_change_at_or_before(window.earliest_millis)?
            {
                self.store
                    .advance_hold(&HoldName::Pitr { table_id: entry.id }, seq.next())?;
            }
        }
        Ok(())
    }
}
