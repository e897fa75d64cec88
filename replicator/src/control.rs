//! The control plane of global tables: ReplicaUpdates (create, update, delete a replica),
//! seeding a new replica from a consistent snapshot while writes go on, shared-settings
//! changes, a replica's table deleted in its own region, and the periodic exchange of
//! membership documents with every peer that makes all of it converge after partitions and
//! restarts.
//!
//! Creating replica R of table T, coordinated by this region:
//! 1. R creates its table from T's definition (synchronously: an error is the caller's);
//! 2. this node sets R's hold at its next sequence, and saves the membership with R CREATING;
//! 3. every other replica learns the membership and starts shipping T to R from where it had
//!    shipped T to this node: what this node had from it is in the snapshot of step 4, what it
//!    had not is shipped to R directly (IMPORTANT: the seeding waits for every replica's
//!    acknowledgement, so that holds are placed before the snapshot);
//! 4. this node sends R every cell of a snapshot of T, tombstones included (a tombstone keeps
//!    an older write still on its way from elsewhere from bringing an item back);
//! 5. R becomes ACTIVE everywhere.
//!
//! Any order of arrival is fine, because every change is applied by last writer wins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tidemark_core::model::TableDefinition;
use tidemark_core::retention::HoldName;
use tokio_util::sync::CancellationToken;

use crate::client::PeerError;
use crate::membership::{GlobalTable, LEGACY_VERSION, Replica, ReplicaStatus, SharedSettings};
use crate::peers::Peer;
use crate::peers::Transport;
use crate::protocol::{
    ChangeBatch, CreateReplicaMessage, MembershipAnswer, MembershipMessage, WireChange,
};
use crate::ship::MAX_BACKOFF;
use crate::status::TableLink;
use crate::{Error, Replicator, Result, blocking};

#[cfg(test)]
mod tests;
pub(crate) mod transport;

/// Most cells per seeding batch.
const SEED_PAGE: usize = 5_000;
/// Most bytes of items per seeding batch (one cell may pass it): a peer takes requests of up
/// to 16 MB, and an item may hold 400 KB.
const SEED_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Seeding batches in flight at once, so the receiver's commits (which are serial) follow
/// each other while the next pages are read, sent and decoded.
const SEED_PARALLEL: usize = 4;

/// One element of UpdateTable's `ReplicaUpdates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaUpdate {
    /// Add a replica in a region.
    Create(String),
    /// Change a replica's overrides (capacity overrides are accepted and not enforced).
    Update(String),
    /// Remove a replica.
    Delete(String),
}

impl ReplicaUpdate {
    fn region(&self) -> &str {
        match self {
            ReplicaUpdate::Create(r) | ReplicaUpdate::Update(r) | ReplicaUpdate::Delete(r) => r,
        }
    }

    /// The region of a new replica.
    fn created(&self) -> Option<&str> {
        match self {
            ReplicaUpdate::Create(region) => Some(region),
            ReplicaUpdate::Update(_) | ReplicaUpdate::Delete(_) => None,
        }
    }
}

/// Applies one checked update to `global`, stamped already: a new replica is CREATING and
/// seeded by `coordinator` (this region), its entry stamped with the document, a removed one
/// leaves the document at once (recorded as removed: the group goes on without waiting for
/// the region, which may never answer again), an update changes nothing shared.
fn apply_replica_update(global: &mut GlobalTable, update: &ReplicaUpdate, coordinator: &str) {
    match update {
        ReplicaUpdate::Create(region) => {
            let replica = Replica {
                stamp: Some(global.part_stamp()),
                ..Replica::creating(coordinator)
            };
            global.replicas.insert(region.clone(), replica);
        }
        ReplicaUpdate::Update(_) => {}
        ReplicaUpdate::Delete(region) => global.remove_region(region),
    }
}

impl Replicator {
    /// Applies UpdateTable's `ReplicaUpdates` to `table` and returns the membership after it
    /// (new replicas CREATING; their seeding goes on in the background).
    ///
    /// # Errors
    /// As DynamoDB: Validation for the local region, a region that is not a peer, a replica
    /// that exists (create) or does not (update, delete); ResourceInUse while a replica is
    /// being created or deleted; ResourceNotFound; a peer that cannot create its replica.
    pub async fn update_replicas(
        self: &Arc<Self>,
        table: &str,
        updates: Vec<ReplicaUpdate>,
        version: &str,
    ) -> Result<Option<GlobalTable>> {
        let (store, name) = (self.store.clone(), table.to_string());
        let definition = blocking(move || Ok(store.table_definition(&name)?)).await?;
        let held = GlobalTable::in_definition(&definition);
        self.check_replica_updates(table, held.as_ref(), &updates, version)?;
        let global = self.updated_membership(held, &definition, &updates, version);
        let created: Vec<&str> = updates.iter().filter_map(ReplicaUpdate::created).collect();
        // The new replicas' tables exist before anything names them in a membership.
        self.create_replicas(&created, &definition, &global, version)
            .await?;
        let adopted = self.adopt_own(table, global.clone()).await?;
        for region in created {
            self.start_seeding(table, region);
        }
        self.spread(table, global);
        Ok(adopted)
    }

    /// The membership `updates` make of `held` (of this region alone when the table is not
    /// global yet), with the table's shared settings, stamped as made here now.
    fn updated_membership(
        &self,
        held: Option<GlobalTable>,
        definition: &TableDefinition,
        updates: &[ReplicaUpdate],
        version: &str,
    ) -> GlobalTable {
        let me = self.region();
        let mut global = held.unwrap_or_else(|| GlobalTable {
            version: version.into(),
            replicas: BTreeMap::from([(me.to_string(), Replica::active())]),
            settings: SharedSettings::of(definition),
            stamp_clock: 0,
            stamp_region: me.to_string(),
            removed: BTreeMap::new(),
            setting_stamps: Default::default(),
        });
        // Stamped first: a removal, a new replica and a setting this region's table has
        // differently are recorded at the stamp of the document that makes them.
        global.restamp(&self.store, me);
        global.record_settings(&SharedSettings::of(definition));
        for update in updates {
            apply_replica_update(&mut global, update, me);
        }
        global
    }

    /// Asks each of `regions` to create its replica of the table `definition` describes,
    /// joining `global`, one after the other.
    ///
    /// # Errors
    /// The first peer that refuses or cannot be reached.
    async fn create_replicas(
        &self,
        regions: &[&str],
        definition: &TableDefinition,
        global: &GlobalTable,
        version: &str,
    ) -> Result<()> {
        let message = CreateReplicaMessage {
            definition: definition.clone(),
            global: global.clone(),
            adopt_existing: version == LEGACY_VERSION,
        };
        for region in regions {
            let peer = self.peer_of(region)?;
            self.control.create_replica(&peer, &message).await?;
        }
        Ok(())
    }

    /// Checks `updates` against `table`'s membership `held`, before anything changes.
    fn check_replica_updates(
        &self,
        table: &str,
        held: Option<&GlobalTable>,
        updates: &[ReplicaUpdate],
        version: &str,
    ) -> Result<()> {
        if updates.is_empty() {
            return Err(Error::Validation(
                "1 validation error detected: Value '[]' at 'replicaUpdates' failed to satisfy \
                 constraint: Member must have length greater than or equal to 1"
                    .into(),
            ));
        }
        if let Some(held) = held.filter(|g| g.version != version) {
            return Err(Error::Validation(format!(
                "Table {table} is a global table of version {}; change its replicas with the \
                 calls of that version",
                held.version
            )));
        }
        if held.is_some_and(GlobalTable::is_updating) {
            return Err(Error::InUse(format!(
                "Attempt to change a resource which is still in use: Table is being updated: {table}"
            )));
        }
        updates
            .iter()
            .try_for_each(|update| self.check_replica_update(table, held, update))
    }

    /// Checks one of UpdateTable's `ReplicaUpdates`.
    fn check_replica_update(
        &self,
        table: &str,
        held: Option<&GlobalTable>,
        update: &ReplicaUpdate,
    ) -> Result<()> {
        let region = update.region();
        if region == self.region() {
            return Err(Error::Validation(
                "Cannot add, delete, or update the local region through ReplicaUpdates. \
                 Use CreateTable, DeleteTable, or UpdateTable as required."
                    .into(),
            ));
        }
        if self.config.peer(region).is_none() {
            return Err(Error::Validation(format!(
                "Region {region} is not available to this table: it is not a configured \
                 peer of this node (--peer {region}=URL)"
            )));
        }
        let exists = held.is_some_and(|g| g.replicas.contains_key(region));
        match update {
            ReplicaUpdate::Create(_) if exists => Err(Error::Validation(format!(
                "Failed to create a the new replica of table with name: '{table}' \
                 because one or more replicas already existed as tables: region {region}"
            ))),
            ReplicaUpdate::Update(_) | ReplicaUpdate::Delete(_) if !exists => {
                Err(Error::Validation(format!(
                    "Update global table operation failed because the replica in region \
                     {region} does not exist for table {table}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Makes `global`, a membership this node made, its membership of `table`. Returns what
    /// is held afterwards (`None`: the table is gone here).
    async fn adopt_own(
        self: &Arc<Self>,
        table: &str,
        global: GlobalTable,
    ) -> Result<Option<GlobalTable>> {
        let (me, table) = (self.clone(), table.to_string());
        blocking(move || {
            let _guard = me.membership.lock();
            let definition = me.store.table_definition(&table)?;
            let held = GlobalTable::in_definition(&definition);
            me.adopt(&table, &definition, held.as_ref(), global)
        })
        .await
    }

    /// The configured peer serving `region`.
    ///
    /// # Errors
    /// Validation when no peer serves it.
    pub(crate) fn peer_of(&self, region: &str) -> Result<Peer> {
        self.config.peer(region).cloned().ok_or_else(|| {
            Error::Validation(format!(
                "Region {region} is not a configured peer of this node"
            ))
        })
    }

    /// Sends `global` to every region it names, and to a region it removes, in the
    /// background (the periodic exchange catches any member that misses it; a removed region
    /// that misses it hears of its removal when it next sends its own document).
    fn spread(self: &Arc<Self>, table: &str, global: GlobalTable) {
        let me = self.clone();
        let table = table.to_string();
        tokio::spawn(async move {
            let removed_now = global
                .removed
                .iter()
                .filter(|(region, clock)| {
                    **clock == global.stamp_clock && !global.replicas.contains_key(*region)
                })
                .map(|(region, _)| region);
            let told = global.replicas.keys().chain(removed_now);
            for region in told.filter(|r| *r != me.region()) {
                if let Err(e) = me.send_membership(&table, region, &global).await {
                    tracing::debug!(table, peer = %region, error = %e, "membership not sent; the exchange retries");
                }
            }
        });
    }

    /// Sends `global` to `region` and takes in its answer: a newer document of its own, or
    /// that it has no replica (then it leaves the group). Returns whether the peer now holds
    /// `global` or newer.
    async fn send_membership(
        self: &Arc<Self>,
        table: &str,
        region: &str,
        global: &GlobalTable,
    ) -> Result<bool> {
        let peer = self.peer_of(region)?;
        let message = MembershipMessage {
            table: table.to_string(),
            global: global.clone(),
        };
        let answer = self.control.send_membership(&peer, &message).await;
        self.note_contact(region, answer.as_ref().map(|_| 0));
        let (me, table, region) = (self.clone(), table.to_string(), region.to_string());
        match answer? {
            MembershipAnswer::Holds(theirs) => {
                let current = theirs.includes(global);
                blocking(move || me.merge_membership(&table, theirs)).await?;
                Ok(current)
            }
            MembershipAnswer::NoTable => {
                blocking(move || me.forget_replica(&table, &region)).await?;
                Ok(true)
            }
        }
    }

    /// Merges `theirs`, a peer's membership of `table`, into this node's, when it says
    /// anything this node's does not (and the table is still global here).
    pub(crate) fn merge_membership(&self, table: &str, theirs: GlobalTable) -> Result<()> {
        // A document from a clock too far ahead is not taken in (it would carry every later
        // one ahead with it); refusing logs why.
        if self
            .refuse_stamps_ahead(
                &theirs.stamp_region,
                [(theirs.stamp_clock, theirs.stamp_region.as_str())],
            )
            .is_err()
        {
            return Ok(());
        }
        let _guard = self.membership.lock();
        let Ok(definition) = self.store.table_definition(table) else {
            return Ok(());
        };
        let Some(held) = GlobalTable::in_definition(&definition) else {
            return Ok(());
        };
        if let Some(next) = self.reconcile(&held, theirs) {
            self.adopt(table, &definition, Some(&held), next)?;
        }
        Ok(())
    }

    /// What this node's membership `held` becomes on meeting `sent`, a peer's: their merge
    /// (every setting and replica entry the newer of the two, every removal either records).
    /// `None` when `held` says it all already and is not older than `sent`; `sent` itself
    /// when it says it all and is newer (so a document travels unchanged while it is the
    /// newest); otherwise the merge, restamped here so that it wins over both wherever it
    /// goes, on older nodes too, which replace documents whole.
    pub(crate) fn reconcile(&self, held: &GlobalTable, sent: GlobalTable) -> Option<GlobalTable> {
        let mut merged = held.merge(&sent);
        let sent_newer = sent.supersedes(Some(held));
        if !sent_newer && merged.same_content(held) {
            return None;
        }
        if sent_newer && merged.same_content(&sent) {
            return Some(sent);
        }
        merged.restamp(&self.store, self.region());
        Some(merged)
    }

    /// `region` has no replica of `table` (deleted there): it leaves the group.
    fn forget_replica(&self, table: &str, region: &str) -> Result<()> {
        let _guard = self.membership.lock();
        let Ok(definition) = self.store.table_definition(table) else {
            return Ok(());
        };
        let Some(held) = GlobalTable::in_definition(&definition) else {
            return Ok(());
        };
        // A CREATING replica counts too: its table is made before anything names it, so one
        // that is missing was deleted again before seeding ended.
        if !held.replicas.contains_key(region) {
            return Ok(());
        }
        let mut global = held.clone();
        // Recorded as a removal, so that a document still naming it does not bring it back.
        global.restamp(&self.store, self.region());
        global.remove_region(region);
        tracing::info!(
            table,
            peer = region,
            "the replica in this region is gone; it left the global table"
        );
        self.adopt(table, &definition, Some(&held), global)?;
        Ok(())
    }

    /// After UpdateTable or UpdateTimeToLive changed a global table here: the other replicas
    /// take the same shared settings.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn settings_changed(self: &Arc<Self>, table: &str) -> Result<()> {
        let (me, name) = (self.clone(), table.to_string());
        let changed = blocking(move || {
            let _guard = me.membership.lock();
            let definition = me.store.table_definition(&name)?;
            let Some(mut global) = GlobalTable::in_definition(&definition) else {
                return Ok(None);
            };
            // Only the settings that changed here get the new stamp: another region's change
            // to another setting, made meanwhile, is merged, not undone.
            global.restamp(&me.store, me.region());
            if !global.record_settings(&SharedSettings::of(&definition)) {
                return Ok(None);
            }
            global.save(&me.store, &name)?;
            me.membership_changed();
            Ok(Some(global))
        })
        .await?;
        if let Some(global) = changed {
            self.spread(table, global);
        }
        Ok(())
    }

    /// After DeleteTable removed this region's replica of a global table whose membership was
    /// `global`: the others drop this region (and the exchange makes sure of it).
    pub fn table_deleted(self: &Arc<Self>, table: &str, mut global: GlobalTable) {
        self.membership_changed();
        global.restamp(&self.store, self.region());
        global.remove_region(self.region());
        self.spread(table, global);
    }

    /// Starts seeding `region`'s new replica of `table` unless it is under way.
    fn start_seeding(self: &Arc<Self>, table: &str, region: &str) {
        let job = format!("{table}/{region}");
        if !self.seeding.lock().insert(job.clone()) {
            return;
        }
        let (me, table, region) = (self.clone(), table.to_string(), region.to_string());
        tokio::spawn(async move {
            let outcome = me.seed(&table, &region).await;
            me.seeding.lock().remove(&job);
            match outcome {
                Ok(true) => tracing::info!(table, peer = %region, "replica seeded; it is ACTIVE"),
                Ok(false) => {}
                Err(e) => tracing::warn!(table, peer = %region, error = %e,
                    "seeding a replica failed; it is retried"),
            }
        });
    }

    /// Seeds `region`'s replica of `table` from a snapshot, then makes it ACTIVE. Returns
    /// false when the replica stopped being this node's to seed.
    async fn seed(self: &Arc<Self>, table: &str, region: &str) -> Result<bool> {
        let peer = self.peer_of(region)?;
        // Step 3.
        if !self.await_holds_for(table, region).await {
            return Ok(false);
        }
        // Step 4.
        if !self.send_snapshot(table, region, &peer).await? {
            return Ok(false);
        }
        // Step 5.
        let global = self
            .set_replica(table, region, |r| *r = Replica::active())
            .await?;
        match global {
            Some(global) => {
                self.spread(table, global);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Waits until every other replica holds the membership naming `region`'s new replica
    /// (so each holds its changes for it before the snapshot is taken). Returns false when
    /// the replica stopped being this node's to seed.
    async fn await_holds_for(self: &Arc<Self>, table: &str, region: &str) -> bool {
        loop {
            let Some(global) = self.seeding_membership(table, region) else {
                return false;
            };
            let mut everyone = true;
            for other in global.replicas.keys() {
                if other == self.region() || other == region {
                    continue;
                }
                if !matches!(self.send_membership(table, other, &global).await, Ok(true)) {
                    everyone = false;
                }
            }
            if everyone {
                return true;
            }
            tokio::time::sleep(MAX_BACKOFF).await;
        }
    }

    /// Sends `peer` every cell of a snapshot of `table`, reporting progress. Returns false
    /// when the replica stopped being this node's to seed.
    async fn send_snapshot(
        self: &Arc<Self>,
        table: &str,
        region: &str,
        peer: &Peer,
    ) -> Result<bool> {
        let (replication, name) = (self.replication.clone(), table.to_string());
        let snapshot = Arc::new(blocking(move || Ok(replication.snapshot_table(&name)?)).await?);
        let total = snapshot.approximate_items(&self.replication).max(1);
        let (mut after, mut sent, mut reported) = (None, 0u64, 0u8);
        // Pages go out SEED_PARALLEL at a time (they hold distinct items, so their order does
        // not matter), while the next one is read.
        let mut in_flight: tokio::task::JoinSet<Result<Option<u64>>> = tokio::task::JoinSet::new();
        let mut read_all = false;
        loop {
            if !read_all && in_flight.len() < SEED_PARALLEL {
                let (replication, snap, from) =
                    (self.replication.clone(), snapshot.clone(), after.take());
                let page = blocking(move || {
                    Ok(replication.snapshot_page(&snap, from, SEED_PAGE, SEED_PAGE_BYTES)?)
                })
                .await?;
                let batch = ChangeBatch {
                    changes: page.changes.into_iter().map(WireChange::from).collect(),
                    ..ChangeBatch::default()
                };
                let (me, peer, table_name, region_name) = (
                    self.clone(),
                    peer.clone(),
                    table.to_string(),
                    region.to_string(),
                );
                in_flight.spawn(async move {
                    me.send_seed_page(&peer, &table_name, &region_name, batch)
                        .await
                });
                after = page.resume_after;
                read_all = after.is_none();
                continue;
            }
            if in_flight.is_empty() {
                return Ok(true);
            }
            let Some(count) = self.seeded_page(&mut in_flight).await? else {
                return Ok(false);
            };
            sent += count;
            reported = self
                .report_progress(table, region, sent, total, reported)
                .await?;
        }
    }

    /// Sends one page of a seeding snapshot, retrying while the peer is away. Returns how
    /// many changes it held, or `None` when the replica stopped being this node's to seed.
    async fn send_seed_page(
        self: Arc<Self>,
        peer: &Peer,
        table: &str,
        region: &str,
        batch: ChangeBatch,
    ) -> Result<Option<u64>> {
        let count = batch.changes.len() as u64;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.control.send_seed_page(peer, &batch).await {
                Ok(_) => break,
                Err(e @ PeerError::Refused { .. }) => return Err(e.into()),
                Err(e) => {
                    self.note_contact(region, Err(&e));
                    if self.seeding_membership(table, region).is_none() {
                        return Ok(None);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        metrics::counter!("tidemark_replication_seeded_total", "peer" => region.to_string())
            .increment(count);
        Ok(Some(count))
    }

    /// Waits for the next page in flight to be sent.
    async fn seeded_page(
        &self,
        in_flight: &mut tokio::task::JoinSet<Result<Option<u64>>>,
    ) -> Result<Option<u64>> {
        match in_flight.join_next().await {
            Some(Ok(outcome)) => outcome,
            Some(Err(e)) => Err(Error::Core(tidemark_core::Error::Internal(e.to_string()))),
            None => Ok(Some(0)),
        }
    }

    /// Records seeding progress every 5 %.
    async fn report_progress(
        self: &Arc<Self>,
        table: &str,
        region: &str,
        sent: u64,
        total: u64,
        reported: u8,
    ) -> Result<u8> {
        let percent = (sent * 100 / total).min(99) as u8;
        if percent < reported.saturating_add(5) {
            return Ok(reported);
        }
        self.set_replica(table, region, move |r| r.progress = Some(percent))
            .await?;
        Ok(percent)
    }

    /// The membership of `table` while `region`'s replica is CREATING and seeded from here.
    fn seeding_membership(&self, table: &str, region: &str) -> Option<GlobalTable> {
        let global = GlobalTable::of(&self.store, table)?;
        let replica = global.replicas.get(region)?;
        (replica.status == ReplicaStatus::Creating
            && replica.seeded_by.as_deref() == Some(self.region()))
        .then_some(global)
    }

    /// Changes `region`'s replica of `table` while it is seeded from here, restamped and
    /// saved; `None` when it no longer is.
    async fn set_replica(
        self: &Arc<Self>,
        table: &str,
        region: &str,
        change: impl FnOnce(&mut Replica) + Send + 'static,
    ) -> Result<Option<GlobalTable>> {
        let (me, table, region) = (self.clone(), table.to_string(), region.to_string());
        blocking(move || {
            let _guard = me.membership.lock();
            let Some(mut global) = me.seeding_membership(&table, &region) else {
                return Ok(None);
            };
            global.restamp(&me.store, me.region());
            let stamp = global.part_stamp();
            if let Some(replica) = global.replicas.get_mut(&region) {
                change(replica);
                replica.stamp = Some(stamp);
            }
            global.save(&me.store, &table)?;
            me.membership_changed();
            Ok(Some(global))
        })
        .await
    }

    /// Exchanges every global table's membership with every region it names, every few
    /// seconds, and resumes seeding a restart interrupted, until `shutdown`.
    pub(crate) async fn exchange_membership(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> Result<(), tidemark_core::Error> {
        // Re-seeds under way, each `(table, region)` once.
        let mut reseeds = tokio::task::JoinSet::new();
        let mut reseeding: BTreeSet<(String, String)> = BTreeSet::new();
        loop {
            for (table, global) in GlobalTable::all(&self.store) {
                let deleting = global
                    .replicas
                    .values()
                    .any(|r| r.status == ReplicaStatus::Deleting);
                if deleting {
                    match self.finish_deleting(&table) {
                        Err(Error::Core(e)) if e.is_fatal() => return Err(e),
                        Err(e) => tracing::warn!(table, error = %e, "cannot finish a removal"),
                        Ok(()) => {}
                    }
                    continue;
                }
                for (region, replica) in &global.replicas {
                    if replica.status == ReplicaStatus::Creating
                        && replica.seeded_by.as_deref() == Some(self.region())
                    {
                        self.start_seeding(&table, region);
                    }
                }
                for region in global.replicas.keys().filter(|r| *r != self.region()) {
                    if shutdown.is_cancelled() {
                        return Ok(());
                    }
                    match self.send_membership(&table, region, &global).await {
                        Err(Error::Core(e)) if e.is_fatal() => return Err(e),
                        Err(e) => {
                            tracing::debug!(table, peer = %region, error = %e, "membership exchange failed")
                        }
                        Ok(_) => {}
                    }
                    // A region this node let go of is re-seeded once it answers again, beside
                    // the exchange (a large table takes a while).
                    let pair = (table.clone(), region.clone());
                    if self.link(region).reachable
                        && self.needs_reseed(&table, region)
                        && !reseeding.contains(&pair)
                    {
                        reseeding.insert(pair.clone());
                        let me = self.clone();
                        reseeds.spawn(async move {
                            let transport = me.control.clone();
                            let outcome = me.reseed(transport.entropy(), &pair.0, &pair.1).await;
                            (pair, outcome.map(|_| ()))
                        });
                    }
                }
            }
            while let Some(finished) = reseeds.try_join_next() {
                match finished {
                    Ok((pair, outcome)) => {
                        reseeding.remove(&pair);
                        match outcome {
                            Err(Error::Core(e)) if e.is_fatal() => return Err(e),
                            Err(e) => tracing::warn!(table = pair.0, peer = pair.1, error = %e,
                                "cannot re-seed the peer's replica yet; tried again next round"),
                            Ok(()) => {}
                        }
                    }
                    Err(e) => {
                        return Err(tidemark_core::Error::Internal(format!(
                            "a re-seed stopped: {e}"
                        )));
                    }
                }
            }
            self.report_lag();
            match self.enforce_hold_limit() {
                Err(Error::Core(e)) if e.is_fatal() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "cannot apply --peer-hold-limit this round"),
                Ok(()) => {}
            }
            // Measurements grow stale without contact; a pause they caused ends with them.
            self.check_clock_agreement();
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.exchange_period) => {}
            }
        }
    }

    /// Finishes the removals of other regions' replicas that a document made by an older node
    /// left DELETING (it waited for the region to answer, for as long as it was away): they
    /// leave the document, recorded as removed, as a removal does now.
    fn finish_deleting(self: &Arc<Self>, table: &str) -> Result<()> {
        let finished = {
            let _guard = self.membership.lock();
            let definition = self.store.table_definition(table)?;
            let Some(held) = GlobalTable::in_definition(&definition) else {
                return Ok(());
            };
            let deleting: Vec<String> = held
                .replicas
                .iter()
                .filter(|(region, r)| {
                    *region != self.region() && r.status == ReplicaStatus::Deleting
                })
                .map(|(region, _)| region.clone())
                .collect();
            if deleting.is_empty() {
                return Ok(());
            }
            let mut global = held.clone();
            global.restamp(&self.store, self.region());
            for region in &deleting {
                global.remove_region(region);
            }
            tracing::info!(table, regions = ?deleting, "replicas left DELETING are removed");
            self.adopt(table, &definition, Some(&held), global)?
        };
        if let Some(global) = finished {
            self.spread(table, global);
        }
        Ok(())
    }

    /// Every global table's link to every peer: replica status, lag and link state.
    pub fn status(&self) -> Vec<TableLink> {
        let mut out = Vec::new();
        let now = self.store.clock().now_millis();
        for (table, global) in GlobalTable::all(&self.store) {
            let Ok(definition) = self.store.table_definition(&table) else {
                continue;
            };
            let table_id = definition.table_id;
            let let_go = crate::hold_limit::reseed_needed(&definition);
            for (region, replica) in &global.replicas {
                if region == self.region() {
                    continue;
                }
                let (hold, link) = match &self.config.transport {
                    Transport::Direct => (
                        HoldName::Peer {
                            region: region.clone(),
                            table_id,
                        },
                        self.link(region),
                    ),
                    Transport::Kafka { .. } => {
                        // The topics' link, with the peer's clock (measured by the
                        // membership exchange, over HTTP).
                        let mut link = self.link("kafka");
                        let peer = self.link(region);
                        link.clock_offset_millis = peer.clock_offset_millis;
                        link.round_trip_millis = peer.round_trip_millis;
                        (HoldName::ReplicationTopic { table_id }, link)
                    }
                };
                let lag = self
                    .store
                    .hold(&hold)
                    .and_then(|hold| self.store.table_lag(table_id, hold.from).ok())
                    .unwrap_or_default();
                out.push(TableLink {
                    table: table.clone(),
                    region: region.clone(),
                    replica_status: replica.status.as_str().to_string(),
                    lag_records: lag.records,
                    lag_millis: lag.oldest_millis.map_or(0, |t| now.saturating_sub(t)),
                    link,
                    needs_reseed: let_go.contains_key(region),
                    stopped: self
                        .topic_stops
                        .of_topic(&crate::kafka::topic(region, &table)),
                });
            }
        }
        out
    }

    /// Sets the lag gauges of every peer and warns about peers far behind.
    fn report_lag(&self) {
        let mut by_peer: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for link in self.status() {
            let entry = by_peer.entry(link.region).or_default();
            entry.0 += link.lag_records;
            entry.1 = entry.1.max(link.lag_millis);
        }
        for (region, (records, millis)) in by_peer {
            metrics::gauge!("tidemark_replication_lag_records", "peer" => region.clone())
                .set(records as f64);
            metrics::gauge!("tidemark_replication_lag_millis", "peer" => region.clone())
                .set(millis as f64);
            if millis > 60_000 {
                tracing::warn!(peer = %region, records, millis, "replication to this peer is far behind");
            }
        }
    }
}
