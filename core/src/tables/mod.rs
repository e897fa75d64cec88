//! [`Tables`]: table administration. CreateTable, UpdateTable, DeleteTable, the tags of a
//! table, and the background backfills of new global secondary indexes and of the TTL index.
//!
//! The table definitions themselves (lookup, save, streams, extensions) are the store's
//! (`crate::ops::tables`); this service owns the operations that change them as a whole, and
//! the notify that wakes the node's index builder.

mod backfill;
mod create;
mod delete;
mod tags;
mod update;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::Store;
use crate::restore::Backups;

pub use create::CreateTableRequest;
pub(crate) use create::create_table_as;
pub use update::{GsiUpdate, UpdateTableRequest};

/// Table administration: DDL, tags and index backfills, over the store.
#[derive(Debug)]
pub struct Tables {
    store: Arc<Store>,
    /// DeleteTable finishes the table's backups and takes its system backup first.
    backups: Arc<Backups>,
    /// Woken when an index needs a backfill.
    backfill_requested: Notify,
}

impl Tables {
    /// The table service of `store`; `backups` are those DeleteTable takes.
    pub fn new(store: Arc<Store>, backups: Arc<Backups>) -> Tables {
        Tables {
            store,
            backups,
            backfill_requested: Notify::new(),
        }
    }

    /// Wakes the index builder: a table has an index (or its TTL index) to backfill.
    pub(crate) fn request_backfill(&self) {
        self.backfill_requested.notify_one();
    }
}
