//! Continuous backups, on-demand backups and restores, all read from the change log and the
//! item store ([`crate::storage::image`] says how a table is read as of a past change):
//!
//! - [`pitr`]: point-in-time recovery settings, the restorable window, the `pitr/<table id>`
//!   hold that keeps a table's history for its recovery period;
//! - [`backups`]: on-demand and system backups, copies in their own keyspaces;
//! - [`tables`]: restores into a new table, built in the background and resumed after a
//!   restart;
//! - [`external`]: the seams of exports and imports (a table as of an instant; a table built
//!   from outside items) and their job records.
//!
//! The node's job runner calls [`Store::run_pending_jobs`] at start and whenever
//! [`Store::jobs_requested`] fires.

pub mod backups;
pub mod external;
pub mod pitr;
pub mod tables;

pub use backups::{Backup, BackupStatus, BackupType, ListBackupsOutcome, ListBackupsRequest};
pub use external::TableAsOf;
pub use pitr::{MAX_RECOVERY_PERIOD_DAYS, RestorableWindow};
pub use tables::{RestoreOverrides, RestorePoint};

use crate::{Result, Store};

impl Store {
    /// Copies the backups still being created and builds the tables restores have not
    /// finished. Returns how many jobs finished.
    ///
    /// # Errors
    /// Storage failures; the jobs run again on the next call.
    pub fn run_pending_jobs(&self) -> Result<usize> {
        let backups = self.finish_pending_backups()?;
        let restores = self.run_pending_restores()?;
        Ok(backups + restores)
    }

    /// Resolves when a backup or a restore was asked for.
    pub async fn jobs_requested(&self) {
        self.jobs_requested.notified().await;
    }
}
