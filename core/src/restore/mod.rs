//! [`Backups`]: continuous backups, on-demand backups and restores, all read from the change
//! log and the item store ([`crate::storage::image`] says how a table is read as of a past
//! change):
//!
//! - [`pitr`]: point-in-time recovery settings, the restorable window, the `pitr/<table id>`
//!   hold that keeps a table's history for its recovery period;
//! - [`backups`]: on-demand and system backups, copies in their own keyspaces;
//! - [`tables`]: restores into a new table, built in the background and resumed after a
//!   restart;
//! - [`external`]: the seams of exports and imports (a table as of an instant; a table built
//!   from outside items); their job records are the store's (`Store::save_document`).
//!
//! The node's job runner calls [`Backups::run_pending_jobs`] at start and whenever
//! [`Backups::jobs_requested`] fires; its history trimmer calls [`Backups::release_history`]
//! before [`Store::trim_history`], so the store trims without knowing about backups.

pub mod backups;
pub mod external;
pub mod pitr;
pub mod tables;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

pub use backups::{Backup, BackupStatus, BackupType, ListBackupsOutcome, ListBackupsRequest};
pub use external::TableAsOf;
pub use pitr::{MAX_RECOVERY_PERIOD_DAYS, RestorableWindow};
pub use tables::{RestoreOverrides, RestorePoint};

use crate::{Result, Store};

/// Backups, point-in-time recovery and restores over the store.
#[derive(Debug)]
pub struct Backups {
    store: Arc<Store>,
    /// Every backup, by id.
    backups: Mutex<BTreeMap<u64, Backup>>,
    /// Held while a backup is copied, so one backup is never copied twice at once.
    backup_jobs: Mutex<()>,
    /// Held by DeleteBackup and by a restore from a backup while it checks and records it.
    backup_users: Mutex<()>,
    /// Woken when a backup or a restore was asked for.
    jobs_requested: Notify,
}

impl Backups {
    /// Opens the backups of `store`: loads every backup record, and releases the holds of
    /// restores a crash left without their target. Run once, right after the store opens.
    ///
    /// # Errors
    /// Storage failures; Corrupt for a record that does not decode.
    pub fn open(store: Arc<Store>) -> Result<Backups> {
        let backups = Backups {
            store,
            backups: Mutex::default(),
            backup_jobs: Mutex::default(),
            backup_users: Mutex::default(),
            jobs_requested: Notify::new(),
        };
        backups.load_backups()?;
        backups.release_orphan_restore_holds()?;
        Ok(backups)
    }

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

    /// Lets go of the history backups no longer need: moves each recovery hold up to its
    /// window's start and drops system backups past their expiry. The history trimmer runs
    /// this before [`Store::trim_history`].
    ///
    /// # Errors
    /// Storage failures.
    pub fn release_history(&self) -> Result<()> {
        self.advance_recovery_holds()?;
        self.expire_backups()
    }
}
