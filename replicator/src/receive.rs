//! The receiving side of every peer request: change batches applied by last writer wins,
//! membership documents adopted when newer (and the local table brought in line with them),
//! and replica creation.

use std::collections::BTreeSet;

use tidemark_core::TableId;
use tidemark_core::model::TableDefinition;
use tidemark_core::ops::{
    CreateTableRequest, GsiUpdate, UpdateTableRequest, UpdateTimeToLiveRequest,
};
use tidemark_core::replication::{Applied, RemoteChange};

use tidemark_core::HlcTimestamp;
use tidemark_core::retention::HoldName;

use crate::membership::{GlobalTable, ReplicaStatus, SharedSettings};
use crate::peers::Transport;
use crate::protocol::{
    BatchAnswer, ChangeBatch, CreateReplicaMessage, MembershipAnswer, WireChange,
};
use crate::status::Conflict;
use crate::{Error, Replicator, Result};

impl Replicator {
    /// Applies a batch of changes region `from` shipped (its own changes, and up to which
    /// clock it has delivered them), in order, and says what became of them once they are on
    /// disk (in either durability mode). Blocking: call it off the async reactor.
    ///
    /// # Errors
    /// [`Error::NotAllowed`] when a change is stamped by another region than `from` (the batch
    /// is refused whole, changing nothing); a change stamped too far ahead of this node's clock
    /// (nothing is applied, see [`crate::clocks`]); a storage failure, or a change that cannot
    /// be applied nor put aside (then the sender sends the batch again).
    pub fn receive_changes(&self, from: &str, batch: ChangeBatch) -> Result<BatchAnswer> {
        // Fault injection (tests only): the batch is acknowledged and dropped, as a change a
        // bug or a broker lost would be, for anti-entropy to find.
        if !batch.changes.is_empty() {
            fail::fail_point!("replicated-batch-lost", |_| {
                tracing::warn!(
                    from,
                    changes = batch.changes.len(),
                    "failpoint: dropped a batch"
                );
                Ok(BatchAnswer {
                    written: batch.changes.len() as u64,
                    ..BatchAnswer::default()
                })
            });
        }
        if let Err(refused) = check_stamps(from, &batch.changes) {
            tracing::warn!(peer = from, error = %refused, "refused a change batch");
            return Err(refused);
        }
        self.refuse_stamps_ahead(
            from,
            batch.changes.iter().map(|c| (c.clock, c.region.as_str())),
        )?;
        let answer = self.apply_changes(from, batch.changes)?;
        for (table, clock) in batch.delivered {
            // Its changes were refused: they are not here, whatever it says.
            if self.needs_reseed(&table, from) {
                continue;
            }
            self.inbound
                .lock()
                .insert((table.clone(), from.to_string()), clock);
            self.move_inbound_hold(&table)?;
        }
        Ok(answer)
    }

    /// Applies one page of the snapshot region `from` seeds this region's new replica from:
    /// cells stamped by any region, and no delivered-through clocks (a snapshot says nothing
    /// of what its regions have delivered). Blocking.
    ///
    /// # Errors
    /// [`Error::NotAllowed`] when the page carries delivered-through clocks, or a change of a
    /// table whose replica here is not CREATING and seeded by `from` (the page is refused
    /// whole, changing nothing); a bad key, or a storage failure.
    pub fn receive_seed_page(&self, from: &str, page: ChangeBatch) -> Result<BatchAnswer> {
        if !page.delivered.is_empty() {
            return Err(Error::NotAllowed(format!(
                "a seeding page from region {from} carries delivered-through clocks; only a \
                 region's own change batches do"
            )));
        }
        let tables: BTreeSet<&str> = page.changes.iter().map(|c| c.table.as_str()).collect();
        for table in tables {
            let Some(global) = GlobalTable::of(&self.store, table) else {
                // Not global here: its changes are dropped, and the answer says so.
                continue;
            };
            let seeded_by_sender = global.replicas.get(self.region()).is_some_and(|replica| {
                replica.status == ReplicaStatus::Creating
                    && replica.seeded_by.as_deref() == Some(from)
            });
            if !seeded_by_sender {
                tracing::warn!(
                    peer = from,
                    table,
                    "refused a seeding page from a region that is not seeding this replica"
                );
                return Err(Error::NotAllowed(format!(
                    "region {from} sent a seeding page of table {table}, but it is not seeding \
                     this region's replica of it; the page is refused"
                )));
            }
        }
        self.refuse_stamps_ahead(
            from,
            page.changes.iter().map(|c| (c.clock, c.region.as_str())),
        )?;
        self.apply_changes(from, page.changes)
    }

    /// Applies cells anti-entropy repairs with (`crate::antientropy`): cells of any region's
    /// that `from` holds newer than this region, by last writer wins, and no delivered-through
    /// clocks (a repair says nothing of what regions have delivered). Blocking.
    ///
    /// Unlike a change batch, a repair may carry any region's stamps (a third region's write
    /// one side lost), so any authenticated member may send one: the guard is last writer
    /// wins, which never lets an older cell win.
    ///
    /// # Errors
    /// [`Error::NotAllowed`] when it carries delivered-through clocks; a stamp too far ahead
    /// of this node's clock; a storage failure.
    pub fn receive_repair(&self, from: &str, cells: ChangeBatch) -> Result<BatchAnswer> {
        if !cells.delivered.is_empty() {
            return Err(Error::NotAllowed(format!(
                "a repair from region {from} carries delivered-through clocks; only a region's \
                 own change batches do"
            )));
        }
        self.refuse_stamps_ahead(
            from,
            cells.changes.iter().map(|c| (c.clock, c.region.as_str())),
        )?;
        self.apply_changes(from, cells.changes)
    }

    /// Applies replicated changes by last writer wins, counting written ones for `from` and
    /// keeping conflicts.
    fn apply_changes(&self, from: &str, received: Vec<WireChange>) -> Result<BatchAnswer> {
        self.apply_changes_from(from, received, false)
    }

    /// [`Replicator::apply_changes`], taking `from`'s cells even while its replica needs a
    /// re-seed when `reseeding` (the re-seed itself, `antientropy::reseed`, has judged them).
    pub(crate) fn apply_changes_from(
        &self,
        from: &str,
        received: Vec<WireChange>,
        reseeding: bool,
    ) -> Result<BatchAnswer> {
        // Only tables that are global here take replicated writes: a table of the same name
        // outside the group is none of the sender's business. Nor does a region removed from
        // the group ship into it any more (it ships until it hears of its removal): its
        // changes are answered as for a table it has no replica of, and dropped.
        let mut global = std::collections::BTreeMap::new();
        let mut missing = BTreeSet::new();
        let mut changes: Vec<RemoteChange> = Vec::with_capacity(received.len());
        for change in received {
            let member = *global.entry(change.table.clone()).or_insert_with(|| {
                GlobalTable::of(&self.store, &change.table).is_some_and(|held| {
                    let removed = held.has_removed(from);
                    if removed {
                        tracing::warn!(table = %change.table, peer = from,
                            "changes from a region removed from this global table are refused");
                    }
                    // Nor does a replica this node stopped keeping history for (it could bring
                    // back items whose tombstones went meanwhile), until it is re-seeded.
                    let stale = !removed && !reseeding && self.needs_reseed(&change.table, from);
                    if stale {
                        tracing::warn!(table = %change.table, peer = from,
                            "changes from a replica that needs a re-seed are refused");
                    }
                    !removed && !stale
                })
            });
            match member {
                true => changes.push(change.into()),
                false => {
                    missing.insert(change.table);
                }
            }
        }
        let described: Vec<(String, tidemark_core::Stamp)> = changes
            .iter()
            .map(|c| (c.table_name.clone(), c.stamp.clone()))
            .collect();
        let applying = std::time::Instant::now();
        let count = changes.len();
        let outcomes = self.replication.apply_remote_batch(changes)?;
        // IMPORTANT: the answer (or the Kafka read position it lets move) is the sender's
        // licence to forget these changes, so they must survive a power cut first, whatever
        // this node's durability mode. Everything committed so far is waited for, not just
        // this batch's writes: a change found already applied (a batch sent again after its
        // answer was lost) may have been committed by a request whose wait never ended.
        if count > 0 {
            self.store.wait_on_disk(self.store.durable_seq())?;
        }
        tracing::debug!(
            from,
            changes = count,
            took_us = applying.elapsed().as_micros() as u64,
            "applied replicated changes"
        );
        let now = self.store.clock().now_millis();
        let mut answer = BatchAnswer::default();
        let mut refused = Vec::new();
        for ((table, stamp), outcome) in described.into_iter().zip(outcomes) {
            match outcome {
                Applied::Written => answer.written += 1,
                Applied::Duplicate => answer.duplicates += 1,
                Applied::Lost { .. } if self.delivered_before(&table, &stamp) => {
                    answer.duplicates += 1;
                }
                Applied::Lost { winner, keys } => {
                    answer.lost += 1;
                    self.conflicts
                        .record(&table, Conflict::new(now, keys, &stamp, &winner));
                }
                Applied::NoTable => {
                    missing.insert(table);
                }
                Applied::Refused { change, reason } => refused.push((*change, reason)),
            }
        }
        // Before the batch is acknowledged: a batch whose refused changes cannot be kept is
        // refused as a whole (the rest is applied, and a resend only finds duplicates).
        answer.parked = refused.len() as u64;
        self.park(from, refused)?;
        metrics::counter!("tidemark_replication_applied_total", "peer" => from.to_string())
            .increment(answer.written);
        answer.missing_tables = missing.into_iter().collect();
        Ok(answer)
    }

    /// True when the change stamped `stamp` was delivered here before: its region has said
    /// (with an earlier batch, or a mark in its topic) that every change of its own of
    /// `table` up to a later clock is here. It comes again because an answer was lost (or a
    /// read position was not saved), and it was judged when it first came: losing now, to a
    /// write made since, is no conflict. Known since this node started.
    fn delivered_before(&self, table: &str, stamp: &tidemark_core::Stamp) -> bool {
        self.inbound
            .lock()
            .get(&(table.to_string(), stamp.region.clone()))
            .is_some_and(|delivered| stamp.hlc.0 <= *delivered)
    }

    /// Moves `table`'s inbound hold up to what every other region has delivered here.
    ///
    /// IMPORTANT: this is what lets tombstones go. A tombstone may be trimmed once no older
    /// write of its item can still arrive: once every other region has delivered all its
    /// changes stamped before it. So the hold keeps every record (and tombstone) committed
    /// at or after the lowest of the regions' delivered-through clocks, and does not move
    /// while this replica is being seeded (a snapshot page carries old writes) or while a
    /// region has not reported since this node started; nor past a change of the table put
    /// aside (`parked`), which is applied again later.
    pub(crate) fn move_inbound_hold(&self, table: &str) -> Result<()> {
        let Ok(definition) = self.store.table_definition(table) else {
            return Ok(());
        };
        let Some(global) = GlobalTable::in_definition(&definition) else {
            return Ok(());
        };
        let me = self.region();
        if global.replicas.get(me).map(|r| r.status) != Some(ReplicaStatus::Active) {
            return Ok(());
        }
        // A replica this node let go of (`--peer-hold-limit`) pins nothing any more.
        let let_go = crate::hold_limit::reseed_needed(&definition);
        // A parked change is judged, when retried, against the tombstones of its time.
        let parked = self.oldest_parked_clock(table)?;
        let horizon = {
            let inbound = self.inbound.lock();
            let mut horizon = parked.unwrap_or(u64::MAX);
            let others = global.replicas.keys();
            for region in others.filter(|r| *r != me && !let_go.contains_key(*r)) {
                match inbound.get(&(table.to_string(), region.clone())) {
                    Some(clock) => horizon = horizon.min(*clock),
                    None => return Ok(()),
                }
            }
            HlcTimestamp(horizon).physical_millis()
        };
        {
            // A binary search of the log: at most every 100 ms of progress.
            let mut moved = self.inbound_moved.lock();
            let last = moved.entry(table.to_string()).or_default();
            if horizon < last.saturating_add(100) {
                return Ok(());
            }
            *last = horizon;
        }
        let Some(before) = self
            .store
            .last_change_at_or_before(horizon.saturating_sub(1))?
        else {
            return Ok(());
        };
        let table_id = self.store.table_id(table)?;
        self.store
            .advance_hold(&HoldName::Inbound { table_id }, before.next())?;
        Ok(())
    }

    /// Takes a membership document sent by a peer: adopts it when it is newer than this
    /// node's, and answers with the document this node holds afterwards. Blocking.
    ///
    /// # Errors
    /// A document stamped too far ahead of this node's clock (not adopted, see
    /// [`crate::clocks`]); storage failures.
    pub fn receive_membership(&self, table: &str, sent: GlobalTable) -> Result<MembershipAnswer> {
        self.refuse_stamps_ahead(
            &sent.stamp_region,
            [(sent.stamp_clock, sent.stamp_region.as_str())],
        )?;
        let _guard = self.membership.lock();
        let Ok(definition) = self.store.table_definition(table) else {
            return Ok(MembershipAnswer::NoTable);
        };
        let Some(held) = GlobalTable::in_definition(&definition) else {
            // A table of the same name that is not (or no longer) part of the group.
            return Ok(MembershipAnswer::NoTable);
        };
        let Some(next) = self.reconcile(&held, sent) else {
            return Ok(MembershipAnswer::Holds(held));
        };
        match self.adopt(table, &definition, Some(&held), next)? {
            Some(adopted) => Ok(MembershipAnswer::Holds(adopted)),
            None => Ok(MembershipAnswer::NoTable),
        }
    }

    /// Makes `new` this node's membership of `table`: drops the table when this region left
    /// the group, brings the shared settings in line, sets or releases the retention hold of
    /// every peer, and saves it. Returns what is held afterwards (`None`: the table is gone
    /// here). Called under the membership lock.
    pub(crate) fn adopt(
        &self,
        table: &str,
        definition: &TableDefinition,
        held: Option<&GlobalTable>,
        new: GlobalTable,
    ) -> Result<Option<GlobalTable>> {
        let me = self.region();
        let staying = new
            .replicas
            .get(me)
            .is_some_and(|r| r.status.receives_changes());
        if !staying {
            tracing::info!(
                table,
                "this region's replica was removed from the global table; deleting it"
            );
            GlobalTable::clear(&self.store, table)?;
            self.tables.delete_table(table)?;
            self.membership_changed();
            return Ok(None);
        }
        if let Err(e) = self.align_settings(table, definition, &new.settings) {
            // The document is not adopted, so the next exchange tries again.
            tracing::warn!(table, error = %e, "cannot apply a global table's shared settings yet");
            return Ok(held.cloned());
        }
        self.forget_reseeds(table, definition, &new)?;
        self.align_holds(definition.table_id, held, &new)?;
        if new.replicas.len() == 1 {
            // Every other replica is gone: a single-region table again.
            GlobalTable::clear(&self.store, table)?;
        } else {
            new.save(&self.store, table)?;
        }
        self.membership_changed();
        Ok(Some(new))
    }

    /// Sets and releases this node's retention holds of `table_id` as its membership goes from
    /// `held` to `new`: one per receiving region (direct transport), or one for the table's
    /// replication topic (Kafka), kept while any other region takes its changes.
    pub(crate) fn align_holds(
        &self,
        table_id: TableId,
        held: Option<&GlobalTable>,
        new: &GlobalTable,
    ) -> Result<()> {
        let me = self.region();
        let member = new
            .replicas
            .get(me)
            .is_some_and(|r| r.status.receives_changes());
        let receivers: BTreeSet<&str> = match member {
            true => new.receivers_besides(me).collect(),
            false => BTreeSet::new(),
        };
        let inbound = HoldName::Inbound { table_id };
        match (receivers.is_empty(), self.store.hold(&inbound)) {
            (false, None) => {
                let from = self.store.oldest_retained_seq();
                self.store.set_hold(&inbound, Some(table_id), from)?;
            }
            (true, Some(_)) => self.store.release_hold(&inbound)?,
            _ => {}
        }
        match &self.config.transport {
            Transport::Direct => {
                if let Some(held) = held {
                    for gone in held
                        .receivers_besides(me)
                        .filter(|r| !receivers.contains(r))
                    {
                        self.store.release_hold(&HoldName::Peer {
                            region: gone.to_string(),
                            table_id,
                        })?;
                    }
                }
                for region in &receivers {
                    let seeder = new
                        .replicas
                        .get(*region)
                        .and_then(|r| r.seeded_by.as_deref());
                    self.ensure_hold(region, table_id, seeder)?;
                }
            }
            Transport::Kafka { .. } => {
                let name = HoldName::ReplicationTopic { table_id };
                match (receivers.is_empty(), self.store.hold(&name)) {
                    (false, None) => {
                        self.store
                            .set_hold(&name, Some(table_id), self.store.next_seq())?;
                    }
                    (true, Some(_)) => self.store.release_hold(&name)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Makes sure this node keeps `table_id`'s own-origin changes for `region`. A region new
    /// to this node starts from where `seeder` (the region recorded as seeding its replica,
    /// not the region that stamped the document last) had received this node's changes:
    /// everything before that is in the snapshot the seeder sends it, everything after is
    /// shipped from here. A replica with no seeder recorded (ACTIVE already, seeded without
    /// this node's knowledge, or this node being the new one) gets every change still kept.
    pub(crate) fn ensure_hold(
        &self,
        region: &str,
        table_id: TableId,
        seeder: Option<&str>,
    ) -> Result<()> {
        let name = HoldName::Peer {
            region: region.to_string(),
            table_id,
        };
        if self.store.hold(&name).is_some() || self.let_go_of(region, table_id) {
            return Ok(());
        }
        let from = match seeder {
            Some(seeder) if seeder == self.region() => self.store.next_seq(),
            Some(seeder) => match self.store.hold(&HoldName::Peer {
                region: seeder.to_string(),
                table_id,
            }) {
                Some(hold) => hold.from,
                // Nothing known of the seeder: ship every change still kept.
                None => self.store.oldest_retained_seq(),
            },
            None => self.store.oldest_retained_seq(),
        };
        self.store.set_hold(&name, Some(table_id), from)?;
        Ok(())
    }

    /// Brings a table's billing, TTL and global secondary indexes in line with the group's.
    fn align_settings(
        &self,
        table: &str,
        definition: &TableDefinition,
        wanted: &SharedSettings,
    ) -> Result<()> {
        let held = SharedSettings::of(definition);
        if held.billing_mode != wanted.billing_mode
            || (wanted.billing_mode == "PROVISIONED"
                && held.provisioned_throughput != wanted.provisioned_throughput)
        {
            self.tables.update_table(UpdateTableRequest {
                table_name: table.to_string(),
                billing_mode: Some(wanted.billing_mode.clone()),
                provisioned_throughput: (wanted.billing_mode == "PROVISIONED")
                    .then_some(wanted.provisioned_throughput),
                ..Default::default()
            })?;
        }
        if held.time_to_live_attribute != wanted.time_to_live_attribute {
            if let Some(attribute) = &held.time_to_live_attribute {
                self.ttl.update_time_to_live(UpdateTimeToLiveRequest {
                    table_name: table.to_string(),
                    enabled: false,
                    attribute_name: attribute.clone(),
                })?;
            }
            if let Some(attribute) = &wanted.time_to_live_attribute {
                self.ttl.update_time_to_live(UpdateTimeToLiveRequest {
                    table_name: table.to_string(),
                    enabled: true,
                    attribute_name: attribute.clone(),
                })?;
            }
        }
        let named = |list: &[tidemark_core::model::GlobalSecondaryIndex], name: &str| {
            list.iter().any(|i| i.index_name == name)
        };
        for index in &held.global_secondary_indexes {
            if !named(&wanted.global_secondary_indexes, &index.index_name) {
                self.tables.update_table(UpdateTableRequest {
                    table_name: table.to_string(),
                    global_secondary_index_updates: vec![GsiUpdate::Delete(
                        index.index_name.clone(),
                    )],
                    ..Default::default()
                })?;
            }
        }
        for index in &wanted.global_secondary_indexes {
            if !named(&held.global_secondary_indexes, &index.index_name) {
                self.tables.update_table(UpdateTableRequest {
                    table_name: table.to_string(),
                    attribute_definitions: wanted.attribute_definitions.clone(),
                    global_secondary_index_updates: vec![GsiUpdate::Create(index.clone())],
                    ..Default::default()
                })?;
            }
        }
        Ok(())
    }

    /// This region has a table named as the replica it is asked to create, outside the group:
    /// it joins with it when the call allows that (the 2017.11.29 calls) and it is empty with
    /// the same key schema; otherwise the replica cannot be made here.
    fn join_with_existing_table(
        &self,
        table: &str,
        existing: &TableDefinition,
        message: &CreateReplicaMessage,
    ) -> Result<()> {
        let source = &message.definition;
        let empty = self
            .store
            .describe_table(table)?
            .item_count
            .is_none_or(|n| n == 0);
        if let Some(mismatch) = key_type_mismatch(existing, source)
            && message.adopt_existing
        {
            return Err(Error::Validation(format!(
                "One or more parameter values were invalid: table {table} in region {} \
                 cannot join the global table: {mismatch}",
                self.region()
            )));
        }
        if message.adopt_existing && empty && existing.key_schema == source.key_schema {
            self.align_holds(existing.table_id, None, &message.global)?;
            message.global.save(&self.store, table)?;
            self.membership_changed();
            return Ok(());
        }
        Err(Error::Validation(format!(
            "Table {table} already exists in region {}; a new replica's region must not \
             have a table of that name",
            self.region()
        )))
    }

    /// Creates this region's replica of a table another region is making global (or
    /// extending). Idempotent: a retry after a lost answer finds the replica made. Blocking.
    ///
    /// # Errors
    /// Validation when a table of that name exists here outside the group; storage failures.
    pub fn receive_create_replica(&self, message: CreateReplicaMessage) -> Result<()> {
        let _guard = self.membership.lock();
        let source = &message.definition;
        let table = source.table_name.clone();
        if let Ok(existing) = self.store.table_definition(&table) {
            let held = GlobalTable::in_definition(&existing);
            let member = held
                .as_ref()
                .is_some_and(|held| held.replicas.contains_key(self.region()));
            let stale = held.is_some_and(|mut held| held.learn_removals(&message.global));
            match (member, stale) {
                (true, true) => {
                    // The copy of a replica removed while this region was away, not dropped
                    // yet: the new replica starts from the group's snapshot instead.
                    tracing::info!(
                        table,
                        "dropping the copy of a replica removed from the group before joining again"
                    );
                    GlobalTable::clear(&self.store, &table)?;
                    self.tables.delete_table(&table)?;
                    self.membership_changed();
                }
                (true, false) => return Ok(()),
                (false, _) => return self.join_with_existing_table(&table, &existing, &message),
            }
        }
        let settings = &message.global.settings;
        // CreateTable takes only attributes some key uses; a document may define more (those
        // of an index deleted since, which UpdateTable leaves defined).
        let used: BTreeSet<&str> = source
            .key_schema
            .iter()
            .chain(
                source
                    .local_secondary_indexes
                    .iter()
                    .flat_map(|i| &i.key_schema),
            )
            .chain(
                settings
                    .global_secondary_indexes
                    .iter()
                    .flat_map(|i| &i.key_schema),
            )
            .map(|k| k.attribute_name.as_str())
            .collect();
        self.tables.create_table(CreateTableRequest {
            table_name: table.clone(),
            key_schema: source.key_schema.clone(),
            attribute_definitions: settings
                .attribute_definitions
                .iter()
                .filter(|d| used.contains(d.attribute_name.as_str()))
                .cloned()
                .collect(),
            billing_mode: Some(settings.billing_mode.clone()),
            provisioned_throughput: (settings.billing_mode == "PROVISIONED")
                .then_some(settings.provisioned_throughput),
            global_secondary_indexes: settings.global_secondary_indexes.clone(),
            local_secondary_indexes: source.local_secondary_indexes.clone(),
            // A new replica starts with its source's stream, so that it has one from its first
            // item on; afterwards each replica's stream settings are its own.
            stream_specification: source
                .stream_specification
                .clone()
                .filter(|s| s.stream_enabled && source.latest_stream_label.is_some()),
            tags: Vec::new(),
            // Deletion protection and the table class are each replica's own, as in DynamoDB.
            ..Default::default()
        })?;
        if let Some(attribute) = &settings.time_to_live_attribute {
            self.ttl.update_time_to_live(UpdateTimeToLiveRequest {
                table_name: table.clone(),
                enabled: true,
                attribute_name: attribute.clone(),
            })?;
        }
        self.align_holds(self.store.table_id(&table)?, None, &message.global)?;
        message.global.save(&self.store, &table)?;
        self.membership_changed();
        tracing::info!(table, "created this region's replica of a global table");
        Ok(())
    }
}

/// Checks every change of a batch `from` shipped is stamped by `from`: a region ships only
/// the changes made in it (seeding pages, which carry every region's, go their own way).
///
/// # Errors
/// [`Error::NotAllowed`] naming both regions.
pub(crate) fn check_stamps(from: &str, changes: &[WireChange]) -> Result<()> {
    match changes.iter().find(|c| c.region != from) {
        None => Ok(()),
        Some(foreign) => Err(Error::NotAllowed(format!(
            "a change batch from region {from} carries a change of table {} stamped by region \
             {}; a region ships only its own changes, so the batch is refused whole",
            foreign.table, foreign.region
        ))),
    }
}

/// How the key attributes' types of `existing` differ from `source`'s, when they do: two
/// tables keyed by attributes of the same names but other types hold different items, and
/// one cannot take the other's writes.
fn key_type_mismatch(existing: &TableDefinition, source: &TableDefinition) -> Option<String> {
    let type_of = |definition: &TableDefinition, name: &str| {
        definition
            .attribute_definitions
            .iter()
            .find(|d| d.attribute_name == name)
            .map(|d| d.attribute_type.clone())
    };
    source.key_schema.iter().find_map(|element| {
        let name = element.attribute_name.as_str();
        let here = type_of(existing, name);
        let there = type_of(source, name);
        (here != there).then(|| {
            format!(
                "key attribute {name} is of type {} here and {} in the source region",
                here.as_deref().unwrap_or("(none)"),
                there.as_deref().unwrap_or("(none)")
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tidemark_core::StoreConfig;
    use tidemark_core::model::{AttributeValue, Item};
    use tidemark_core::ops::CreateTableRequest;

    use super::*;
    use crate::membership::{Replica, VERSION};
    use crate::test_support;
    use tidemark_core::Engine;

    const TABLE: &str = "received";

    fn keys(k: &str) -> Item {
        [("p".to_string(), AttributeValue::S(k.into()))].into()
    }

    #[test]
    fn tombstones_are_held_until_every_region_has_delivered_past_them() {
        let dir = tempfile::tempdir().expect("a folder");
        let store = Engine::open(StoreConfig::for_tests(dir.path())).expect("open");
        let replicator = test_support::replicator(
            &store,
            "us",
            &["eu=http://127.0.0.1:9", "ap=http://127.0.0.1:10"],
        );
        let replicas = test_support::active(&["us", "eu", "ap"]);
        test_support::make_global(&store, &replicator, TABLE, &replicas, 1);
        let definition = store.store.table_definition(TABLE).expect("a table");
        let hold = HoldName::Inbound {
            table_id: definition.table_id,
        };
        let initial = store.store.hold(&hold).expect("an inbound hold").from;
        let now = store.store.clock().now_millis();
        let delete = WireChange {
            table: TABLE.into(),
            keys: keys("gone"),
            new_image: None,
            clock: now << 16,
            region: "eu".into(),
        };
        let later = (now + 1_000) << 16;
        let answer = replicator
            .receive_changes(
                "eu",
                ChangeBatch {
                    changes: vec![delete],
                    delivered: BTreeMap::from([(TABLE.to_string(), later)]),
                },
            )
            .expect("applied");
        assert_eq!(answer.written, 1);
        assert_eq!(
            store.store.hold(&hold).map(|h| h.from),
            Some(initial),
            "ap has not said what it delivered: an older write of ap's could still come"
        );
        let tombstone_seq = store.store.durable_seq();
        crate::test_support::heartbeat(&replicator, "ap", TABLE, later);
        assert!(
            store.store.hold(&hold).expect("held").from > tombstone_seq,
            "every region has delivered past the delete: its tombstone may go"
        );
    }

    #[test]
    fn an_existing_table_joins_a_global_table_only_with_the_same_key_types() {
        let source_dir = tempfile::tempdir().expect("a folder");
        let source = Engine::open(StoreConfig::for_tests(source_dir.path())).expect("open");
        source
            .tables
            .create_table(CreateTableRequest::on_demand(TABLE, "p", "S"))
            .expect("create");
        let definition = source.store.table_definition(TABLE).expect("a table");
        let message = CreateReplicaMessage {
            definition: definition.clone(),
            global: GlobalTable {
                version: "2017.11.29".into(),
                replicas: ["us", "eu"]
                    .iter()
                    .map(|r| (r.to_string(), Replica::active()))
                    .collect::<BTreeMap<_, _>>(),
                settings: SharedSettings::of(&definition),
                stamp_clock: 1,
                stamp_region: "us".into(),
                removed: Default::default(),
                setting_stamps: Default::default(),
            },
            adopt_existing: true,
        };
        for (key_type, joins) in [("N", false), ("S", true)] {
            let dir = tempfile::tempdir().expect("a folder");
            let store = Engine::open(StoreConfig::for_tests(dir.path())).expect("open");
            store
                .tables
                .create_table(CreateTableRequest::on_demand(TABLE, "p", key_type))
                .expect("the region's own table");
            let replicator =
                crate::test_support::replicator(&store, "eu", &["us=http://127.0.0.1:9"]);
            let outcome = replicator.receive_create_replica(message.clone());
            match joins {
                true => {
                    outcome.expect("the same key: adopted");
                    assert!(GlobalTable::of(&store.store, TABLE).is_some());
                }
                false => {
                    assert!(
                        matches!(&outcome, Err(Error::Validation(m)) if m.contains("key attribute p is of type N here and S")),
                        "{outcome:?}"
                    );
                    assert!(GlobalTable::of(&store.store, TABLE).is_none());
                }
            }
        }
    }

    #[test]
    fn a_new_replica_gets_its_sources_multi_attribute_global_index() {
        use tidemark_core::model::{
            AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, Projection,
        };
        use tidemark_core::ops::{PutItemRequest, ScanRequest};
        let element = |name: &str, key_type: &str| KeySchemaElement {
            attribute_name: name.into(),
            key_type: key_type.into(),
        };
        let defined = |name: &str, attribute_type: &str| AttributeDefinition {
            attribute_name: name.into(),
            attribute_type: attribute_type.into(),
        };
        let source_dir = tempfile::tempdir().expect("a folder");
        let source = Engine::open(StoreConfig::for_tests(source_dir.path())).expect("open");
        source
            .tables
            .create_table(CreateTableRequest {
                key_schema: vec![element("p", "HASH")],
                attribute_definitions: vec![
                    defined("p", "S"),
                    defined("a", "S"),
                    defined("b", "N"),
                    defined("c", "S"),
                ],
                global_secondary_indexes: vec![GlobalSecondaryIndex {
                    index_name: "by_ab".into(),
                    key_schema: vec![
                        element("a", "HASH"),
                        element("b", "HASH"),
                        element("c", "RANGE"),
                    ],
                    projection: Projection {
                        projection_type: Some("ALL".into()),
                        non_key_attributes: None,
                    },
                    provisioned_throughput: None,
                }],
                ..CreateTableRequest::on_demand(TABLE, "p", "S")
            })
            .expect("a table with a multi-attribute index");
        let definition = source.store.table_definition(TABLE).expect("a table");
        let message = CreateReplicaMessage {
            definition: definition.clone(),
            global: GlobalTable {
                version: VERSION.into(),
                replicas: ["us", "eu"]
                    .iter()
                    .map(|r| (r.to_string(), Replica::active()))
                    .collect::<BTreeMap<_, _>>(),
                settings: SharedSettings::of(&definition),
                stamp_clock: 1,
                stamp_region: "us".into(),
                removed: BTreeMap::new(),
                setting_stamps: Default::default(),
            },
            adopt_existing: false,
        };
        // As it travels between regions.
        let message: CreateReplicaMessage =
            serde_json::from_str(&serde_json::to_string(&message).expect("json"))
                .expect("read back");

        let dir = tempfile::tempdir().expect("a folder");
        let store = Engine::open(StoreConfig::for_tests(dir.path())).expect("open");
        let replicator = crate::test_support::replicator(&store, "eu", &["us=http://127.0.0.1:9"]);
        replicator
            .receive_create_replica(message)
            .expect("the replica is created");
        let replica = store.store.table_definition(TABLE).expect("the replica");
        assert_eq!(
            replica.global_secondary_indexes,
            definition.global_secondary_indexes
        );
        for (p, with_c) in [("full", true), ("partial", false)] {
            let mut item: Item = [
                ("p".to_string(), AttributeValue::S(p.into())),
                ("a".to_string(), AttributeValue::S("x".into())),
                ("b".to_string(), AttributeValue::N(7.into())),
            ]
            .into();
            if with_c {
                item.insert("c".into(), AttributeValue::S("y".into()));
            }
            store
                .store
                .put_item(PutItemRequest {
                    table_name: TABLE.into(),
                    item,
                    ..Default::default()
                })
                .expect("a put");
        }
        let scanned = store
            .store
            .scan(ScanRequest {
                table_name: TABLE.into(),
                index_name: Some("by_ab".into()),
                ..Default::default()
            })
            .expect("a scan of the index");
        assert_eq!(
            scanned.count, 1,
            "only the item with every key attribute is indexed"
        );
    }

    /// A replicator of region `us` (peer `eu`) whose store holds `TABLE` as a global table of
    /// both.
    fn global_replica(dir: &std::path::Path) -> (Engine, std::sync::Arc<Replicator>) {
        let store = Engine::open(StoreConfig::for_tests(dir)).expect("open");
        let replicator = test_support::replicator(&store, "us", &["eu=http://127.0.0.1:9"]);
        let replicas = test_support::active(&["us", "eu"]);
        test_support::make_global(&store, &replicator, TABLE, &replicas, 1);
        (store, replicator)
    }

    fn put_from_eu(k: &str, clock: u64) -> WireChange {
        WireChange {
            table: TABLE.into(),
            keys: keys(k),
            new_image: Some(keys(k)),
            clock,
            region: "eu".into(),
        }
    }

    #[test]
    fn a_batch_is_acknowledged_only_once_on_disk_even_under_buffer() {
        let dir = tempfile::tempdir().expect("a folder");
        // The tests' stores acknowledge client writes under `buffer`.
        let (store, replicator) = global_replica(dir.path());
        let clock = store.store.clock().now_millis() << 16;
        let paused = crate::paused_sync::PausedSync::start();
        let (answered, answer) = std::sync::mpsc::channel();
        let receiving = {
            let replicator = replicator.clone();
            std::thread::spawn(move || {
                let batch = ChangeBatch {
                    changes: vec![put_from_eu("pending", clock)],
                    delivered: BTreeMap::new(),
                };
                let outcome = replicator.receive_changes("eu", batch);
                answered.send(()).expect("the test waits");
                outcome
            })
        };
        let applied = || {
            store
                .store
                .get_item(tidemark_core::ops::GetItemRequest {
                    table_name: TABLE.into(),
                    key: keys("pending"),
                    ..Default::default()
                })
                .expect("a read")
                .item
                .is_some()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !applied() {
            assert!(std::time::Instant::now() < deadline, "never applied");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(
            answer
                .recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "applied but not on disk: the sender must not hear it has the batch yet"
        );
        drop(paused);
        let outcome = receiving.join().expect("no panic").expect("applied");
        assert_eq!(outcome.written, 1);
        assert!(store.store.on_disk_seq() >= store.store.durable_seq());
    }

    #[test]
    fn a_batch_sent_again_after_a_lost_answer_is_no_conflict() {
        let dir = tempfile::tempdir().expect("a folder");
        let (store, replicator) = global_replica(dir.path());
        let now = store.store.clock().now_millis();
        let (first, second) = ((now - 2_000) << 16, (now - 1_000) << 16);
        let batch = |change: WireChange| ChangeBatch {
            delivered: BTreeMap::from([(TABLE.to_string(), change.clock)]),
            changes: vec![change],
        };
        let answer = replicator
            .receive_changes("eu", batch(put_from_eu("k", first)))
            .expect("applied");
        assert_eq!(answer.written, 1);
        // Written here since: newer than both of eu's writes.
        store
            .store
            .put_item(tidemark_core::ops::PutItemRequest {
                table_name: TABLE.into(),
                item: [
                    ("p".to_string(), AttributeValue::S("k".into())),
                    ("v".to_string(), AttributeValue::S("local".into())),
                ]
                .into(),
                ..Default::default()
            })
            .expect("a local write");

        let again = replicator
            .receive_changes("eu", batch(put_from_eu("k", first)))
            .expect("applied");
        assert_eq!(
            (again.written, again.duplicates, again.lost),
            (0, 1, 0),
            "eu's answer was lost and it sent the batch again: nothing new, no conflict"
        );
        assert_eq!(replicator.conflicts().of(TABLE).0, 0);

        let concurrent = replicator
            .receive_changes("eu", batch(put_from_eu("k", second)))
            .expect("applied");
        assert_eq!(
            (concurrent.written, concurrent.duplicates, concurrent.lost),
            (0, 0, 1),
            "a write of eu's that reaches here after a newer one of this region's is one"
        );
        let (count, last) = replicator.conflicts().of(TABLE);
        assert_eq!(count, 1);
        assert_eq!(last.len(), 1);
    }

    #[test]
    fn a_new_replica_is_made_with_only_the_attributes_its_keys_use() {
        use tidemark_core::model::AttributeDefinition;
        let source_dir = tempfile::tempdir().expect("a folder");
        let source = Engine::open(StoreConfig::for_tests(source_dir.path())).expect("open");
        source
            .tables
            .create_table(CreateTableRequest::on_demand(TABLE, "p", "S"))
            .expect("a table");
        let definition = source.store.table_definition(TABLE).expect("a table");
        let mut settings = SharedSettings::of(&definition);
        // Left defined by an index deleted since (UpdateTable keeps it), or by a merge.
        settings.attribute_definitions.push(AttributeDefinition {
            attribute_name: "gone".into(),
            attribute_type: "S".into(),
        });
        let message = CreateReplicaMessage {
            definition: definition.clone(),
            global: GlobalTable {
                version: VERSION.into(),
                replicas: ["us", "eu"]
                    .iter()
                    .map(|r| (r.to_string(), Replica::active()))
                    .collect::<BTreeMap<_, _>>(),
                settings,
                stamp_clock: 1,
                stamp_region: "us".into(),
                removed: BTreeMap::new(),
                setting_stamps: Default::default(),
            },
            adopt_existing: false,
        };
        let dir = tempfile::tempdir().expect("a folder");
        let store = Engine::open(StoreConfig::for_tests(dir.path())).expect("open");
        let replicator = crate::test_support::replicator(&store, "eu", &["us=http://127.0.0.1:9"]);
        replicator
            .receive_create_replica(message)
            .expect("the replica is created");
        assert_eq!(
            store
                .store
                .table_definition(TABLE)
                .expect("the replica")
                .attribute_definitions,
            definition.attribute_definitions
        );
    }
}
