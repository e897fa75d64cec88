//! [`Engine`]: the store and the services over it, opened together and cloned cheaply. It
//! only wires: every operation lives in its service's module, and each service holds the
//! `Arc<Store>` (and the other services) it needs.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::replication::Replication;
use crate::restore::Backups;
use crate::tables::Tables;
use crate::transactions::Transactions;
use crate::ttl::Ttl;
use crate::{Result, Store, StoreConfig, TrimReport};

/// The store and its services.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Item reads and writes, snapshots, the log, holds, table definitions.
    pub store: Arc<Store>,
    /// CreateTable, UpdateTable, DeleteTable, tags, index backfills.
    pub tables: Arc<Tables>,
    /// Backups, point-in-time recovery, restores, imports.
    pub backups: Arc<Backups>,
    /// TransactWriteItems and ExecuteTransaction.
    pub transactions: Arc<Transactions>,
    /// UpdateTimeToLive, DescribeTimeToLive, expiry.
    pub ttl: Arc<Ttl>,
    /// Replicated writes and replica seeding.
    pub replication: Arc<Replication>,
}

impl Engine {
    /// Opens (or creates) the store in `config.data_dir` with the system clock, and its
    /// services.
    ///
    /// # Errors
    /// Storage failures, including a data folder already open by another process.
    pub fn open(config: StoreConfig) -> Result<Engine> {
        Engine::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens the store with an injected clock, and its services.
    ///
    /// # Errors
    /// Storage failures, including a data folder already open by another process.
    pub fn open_with_clock(config: StoreConfig, clock: Arc<dyn Clock>) -> Result<Engine> {
        Engine::over(Arc::new(Store::open_with_clock(config, clock)?))
    }

    /// The services over a store just opened.
    ///
    /// # Errors
    /// Storage failures while loading the backups.
    pub fn over(store: Arc<Store>) -> Result<Engine> {
        let backups = Arc::new(Backups::open(store.clone())?);
        let tables = Arc::new(Tables::new(store.clone(), backups.clone()));
        Ok(Engine {
            ttl: Arc::new(Ttl::new(store.clone(), tables.clone())),
            transactions: Arc::new(Transactions::new(store.clone())),
            replication: Arc::new(Replication::new(store.clone())),
            tables,
            backups,
            store,
        })
    }

    /// Trims the history nobody needs any more: the backups let go of theirs first
    /// ([`Backups::release_history`]), then the store trims ([`Store::trim_history`]).
    ///
    /// # Errors
    /// Storage failures.
    pub fn trim_history(&self) -> Result<TrimReport> {
        self.backups.release_history()?;
        self.store.trim_history()
    }
}
