//! [`Ttl`]: Time to Live. UpdateTimeToLive, DescribeTimeToLive and the expiry of due items.
//!
//! Expiry reads the TTL index (written in each item's commit) for entries due by now, then,
//! under the items' key locks, re-checks each item and deletes the expired ones in one commit
//! whose change records carry the service flag. An update that moved the TTL forward, or
//! removed it, committed before the lock was taken, so it rescues the item.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::changes::Cause;
use crate::model::Item;
use crate::storage::catalog::TableEntry;
use crate::storage::ttl_index::{
    MAX_EXPIRED_AGE_SECS, expiry_second, is_expired, split_ttl_key, ttl_key,
};
use crate::tables::Tables;
use crate::write::{Decision, Target};
use crate::{Error, Result, Store};

/// Most items one expiry commit deletes.
const EXPIRY_BATCH: usize = 512;

/// An UpdateTimeToLive request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateTimeToLiveRequest {
    /// The table.
    pub table_name: String,
    /// Enable (true) or disable (false).
    pub enabled: bool,
    /// The attribute holding expiry times (epoch seconds).
    pub attribute_name: String,
}

/// What one expiry pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Items deleted.
    pub expired: u64,
    /// True when due entries were left for another pass (the pass hit its limit).
    pub more_due: bool,
    /// The earliest expiry second among entries not yet due, over all TTL tables.
    pub next_due_second: Option<u64>,
}

/// Time to Live over the store: its settings and the expiry of due items.
#[derive(Debug)]
pub struct Ttl {
    store: Arc<Store>,
    /// Enabling TTL wakes their index builder.
    tables: Arc<Tables>,
}

impl Ttl {
    /// The TTL service of `store`, whose `tables` backfill the TTL index.
    pub fn new(store: Arc<Store>, tables: Arc<Tables>) -> Ttl {
        Ttl { store, tables }
    }

    /// Enables or disables TTL on a table. Enabling indexes the table's existing items in the
    /// background (see [`Tables::run_pending_backfills`]).
    ///
    /// # Errors
    /// ResourceNotFound; Validation when TTL is already enabled, already disabled, or disabled
    /// under another attribute name.
    pub fn update_time_to_live(&self, request: UpdateTimeToLiveRequest) -> Result<()> {
        let entry = self.store.table(&request.table_name)?;
        if request.attribute_name.is_empty() || request.attribute_name.len() > 255 {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{}' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length {} 1",
                request.attribute_name,
                if request.attribute_name.is_empty() {
                    "greater than or equal to"
                } else {
                    "less than or equal to 255, and greater than or equal to"
                }
            )));
        }
        let _ddl = self.store.storage.ddl.lock();
        let mut definition = entry.definition.read().clone();
        match (&definition.time_to_live_attribute, request.enabled) {
            (Some(_), true) => {
                return Err(Error::validation("TimeToLive is already enabled"));
            }
            (None, false) => {
                return Err(Error::validation("TimeToLive is already disabled"));
            }
            (Some(current), false) if *current != request.attribute_name => {
                return Err(Error::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {current}"
                )));
            }
            (_, true) => {
                definition.time_to_live_attribute = Some(request.attribute_name.clone());
                definition.ttl_backfilling = true;
                // IMPORTANT: set before the backfill reads any item, so a write either sees
                // the attribute (and indexes itself) or commits before the backfill reads it.
                *entry.ttl_attribute.write() = Some(Arc::from(request.attribute_name.as_str()));
                self.store.save_definition(&entry, definition)?;
                self.tables.request_backfill();
            }
            (_, false) => {
                definition.time_to_live_attribute = None;
                definition.ttl_backfilling = false;
                *entry.ttl_attribute.write() = None;
                self.store.save_definition(&entry, definition)?;
                self.store.storage.purge_ttl_entries(entry.id)?;
            }
        }
        Ok(())
    }

    /// The table's TTL attribute, while TTL is enabled.
    ///
    /// # Errors
    /// ResourceNotFound.
    pub fn describe_time_to_live(&self, table_name: &str) -> Result<Option<String>> {
        let entry = self.store.table(table_name)?;
        Ok(entry.definition.read().time_to_live_attribute.clone())
    }

    /// Deletes items whose TTL passed (up to `limit` index entries per table), each with a
    /// REMOVE record flagged as a service delete.
    ///
    /// # Errors
    /// Storage failures.
    pub fn expire_due_items(&self, limit: usize) -> Result<ExpiryReport> {
        let now_millis = self.store.clock.now_millis();
        let now_second = now_millis / 1000;
        let mut report = ExpiryReport::default();
        let tables = self.store.storage.live_tables();
        for table in tables.iter().filter(|t| t.ttl_attribute().is_some()) {
            let mut due: Vec<(u64, Vec<u8>)> = Vec::new();
            for key in self.store.storage.ttl_entries(table.id).take(limit + 1) {
                let key = key?;
                let (second, item_key) = split_ttl_key(&key).ok_or_else(|| {
                    Error::Corrupt(format!("a TTL index key of {} bytes", key.len()))
                })?;
                if second > now_second {
                    report.next_due_second = Some(
                        report
                            .next_due_second
                            .map_or(second, |earliest| earliest.min(second)),
                    );
                    break;
                }
                if due.len() == limit {
                    report.more_due = true;
                    break;
                }
                due.push((second, item_key.to_vec()));
            }
            for chunk in due.chunks(EXPIRY_BATCH) {
                report.expired += self.expire_chunk(table, chunk, now_millis)?;
            }
        }
        Ok(report)
    }

    /// The keys of up to `limit` items of `table_name` whose TTL has passed by this node's
    /// clock, earliest first: what one node of a cluster region logs for every copy to expire
    /// ([`Ttl::expire_keys`]).
    ///
    /// # Errors
    /// ResourceNotFound, storage failures.
    pub fn due_keys(&self, table_name: &str, limit: usize) -> Result<Vec<Item>> {
        let table = self.store.table(table_name)?;
        let Some(attribute) = table.ttl_attribute() else {
            return Ok(Vec::new());
        };
        let now_millis = self.store.clock.now_millis();
        let mut keys = Vec::new();
        // Entries of items that will not expire at their second are passed over (the local
        // sweeper drops them; a cluster region's copies drop them as they expire items).
        for key in self
            .store
            .storage
            .ttl_entries(table.id)
            .take(limit.saturating_mul(4))
        {
            let key = key?;
            let (second, item_key) = split_ttl_key(&key)
                .ok_or_else(|| Error::Corrupt(format!("a TTL index key of {} bytes", key.len())))?;
            if second > now_millis / 1000 || keys.len() >= limit {
                break;
            }
            if let Some(item) = self.store.storage.read_item(item_key)?
                && is_expired(&item, &attribute, now_millis)
            {
                keys.push(table.shape.project_key(&item));
            }
        }
        Ok(keys)
    }

    /// Deletes the items of `keys` that have expired by [`Store::now_millis`] (a log record's
    /// time while one is applied, so every copy decides alike), each with a REMOVE record
    /// flagged as a service delete; returns how many it deleted.
    ///
    /// # Errors
    /// ResourceNotFound, Validation for a key that is not the table's, storage failures.
    pub fn expire_keys(&self, table_name: &str, keys: Vec<Item>) -> Result<u64> {
        let table = self.store.table(table_name)?;
        let now_millis = self.store.now_millis();
        let mut targets = Vec::with_capacity(keys.len());
        for key in keys {
            table.shape.check_key(&key)?;
            targets.push(Target::new(table.clone(), key, Cause::Expiry));
        }
        let written = self.store.write(targets, |_, cells| {
            let Some(attribute) = table.ttl_attribute() else {
                return Ok((vec![Decision::Keep; cells.len()], 0));
            };
            let decisions: Vec<Decision> = cells
                .iter()
                .map(|cell| match &cell.item {
                    Some(item) if is_expired(item, &attribute, now_millis) => Decision::Write(None),
                    _ => Decision::Keep,
                })
                .collect();
            let expired = decisions.iter().filter(|d| **d != Decision::Keep).count();
            Ok((decisions, expired as u64))
        })?;
        Ok(written.value)
    }

    /// Re-checks and deletes one chunk of due items in one commit, dropping the index entries
    /// of items that will never expire at their second.
    fn expire_chunk(
        &self,
        table: &Arc<TableEntry>,
        chunk: &[(u64, Vec<u8>)],
        now_millis: u64,
    ) -> Result<u64> {
        let targets = chunk
            .iter()
            .map(|(_, key)| Target::stored(table.clone(), key.clone(), Cause::Expiry))
            .collect();
        let written = self.store.write(targets, |_, cells| {
            let mut decisions = Vec::with_capacity(cells.len());
            let Some(attribute) = table.ttl_attribute() else {
                return Ok((vec![Decision::Keep; cells.len()], 0));
            };
            if table.dropped.load(Ordering::Acquire) {
                return Ok((vec![Decision::Keep; cells.len()], 0));
            }
            let mut stale = Vec::new();
            for ((second, key), cell) in chunk.iter().zip(cells) {
                decisions.push(match &cell.item {
                    Some(item) if is_expired(item, &attribute, now_millis) => Decision::Write(None),
                    // Too old to ever expire (time only moves on), or left behind by a race
                    // with disabling TTL: the entry is of no further use.
                    Some(item)
                        if expiry_second(item, &attribute) != Some(*second)
                            || second.saturating_add(MAX_EXPIRED_AGE_SECS) < now_millis / 1000 =>
                    {
                        stale.push(ttl_key(table.id, *second, key));
                        Decision::Keep
                    }
                    Some(_) => Decision::Keep,
                    None => {
                        stale.push(ttl_key(table.id, *second, key));
                        Decision::Keep
                    }
                });
            }
            // Under the items' locks, so no write re-adds an entry between this check and
            // its removal.
            self.store.storage.remove_ttl_entries(stale)?;
            let expired = decisions.iter().filter(|d| **d != Decision::Keep).count();
            Ok((decisions, expired as u64))
        })?;
        Ok(written.value)
    }
}
