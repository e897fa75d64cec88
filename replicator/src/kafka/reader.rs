//! The reading side of the Kafka transport: one task reads the other regions' topics of this
//! node's global tables, applies what it reads by last writer wins, and only then moves its
//! read positions, saved with each table (the `ReplicationOffsets` extension).
//!
//! Each turn of [`Replicator::consume`] is a few steps, each a method of [`TopicReader`]:
//! keeping the assignment to the topics membership asks for, reading and decoding a batch of
//! messages, applying its changes, moving the read positions and the delivered-through
//! clocks past them, and saving the positions beside the reading.
//!
//! IMPORTANT: region R's topic carries only changes stamped by R. A message holding a change
//! stamped by another region stops the reading of that topic there (logged as an error): its
//! changes are not applied, and its position and everything after it are not passed, so the
//! message is met again after a restart rather than skipped.
//!
//! A partition whose next message does not decode, or whose saved position the topic no
//! longer holds, is stopped (`stops`): left out of the assignment with its position kept,
//! reported, and (for a message that does not decode) tried again every
//! [`RETRY_STOPPED_EVERY`]; the other partitions read on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tidemark_kafka::Backoff;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::stops::{Start, StopKind, StoppedPartition, Verdict, judge_message, starting_point};
use super::{KafkaLink, topic};
use crate::membership::GlobalTable;
use crate::protocol::{ChangeBatch, WireChange};
use crate::{Replicator, blocking};

/// The table extension this node keeps its read positions in the other regions' topics of a
/// table under (`{region: [next offset of each partition]}`): it goes with the table, so a
/// replica created again reads those topics from the start.
const OFFSETS_EXTENSION: &str = "ReplicationOffsets";
/// How often read positions are saved (a position lost in a crash only re-reads changes,
/// which are then no-ops).
const SAVE_OFFSETS_EVERY: Duration = Duration::from_millis(200);
/// How often the reader checks which topics its tables need.
const SUBSCRIPTION_CHECK: Duration = Duration::from_millis(500);
/// Most changes applied per consumed batch.
const APPLY_BATCH: usize = 2_000;
/// How often a partition stopped at a message that does not decode is read again (a node
/// upgraded in place then reads on).
const RETRY_STOPPED_EVERY: Duration = Duration::from_secs(30);

/// Read positions: `(table, region) -> next offset of each partition`.
type Positions = BTreeMap<(String, String), Vec<i64>>;

/// Why the reader of the replication topics stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsumeError {
    /// The consumer could not be made.
    #[error(transparent)]
    Kafka(#[from] tidemark_kafka::Error),
    /// The store failed for good (the node must stop).
    #[error(transparent)]
    Store(tidemark_core::Error),
}

impl From<ConsumeError> for crate::RunError {
    fn from(error: ConsumeError) -> crate::RunError {
        match error {
            ConsumeError::Kafka(e) => crate::RunError::Kafka(e),
            ConsumeError::Store(e) => crate::RunError::Store(e),
        }
    }
}

impl ConsumeError {
    /// `Err` for a fatal store error, which stops the reader; any other error is `Ok`, for
    /// the caller to log and try again.
    fn fatal(error: crate::Error) -> Result<crate::Error, ConsumeError> {
        match error {
            crate::Error::Core(e) if e.is_fatal() => Err(ConsumeError::Store(e)),
            other => Ok(other),
        }
    }
}

impl Replicator {
    /// Reads the other regions' replication topics until `shutdown`, applying what it reads.
    ///
    /// Partitions are assigned explicitly and read positions kept with the tables (not in a
    /// consumer group): a node killed and restarted resumes at once, with no group to
    /// rebalance, and positions go with the table when it is deleted.
    ///
    /// # Errors
    /// The consumer cannot be made, or the store failed for good.
    pub(crate) async fn consume(
        self: Arc<Self>,
        link: Arc<KafkaLink>,
        shutdown: CancellationToken,
    ) -> Result<(), ConsumeError> {
        let mut reader = TopicReader::new(self, link)?;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            reader.check_membership();
            reader.retry_stopped();
            if let Err(e) = reader.follow_membership().await {
                tracing::warn!(error = %e, "cannot read the replication topics yet");
                tokio::time::sleep(reader.backoff.next_wait()).await;
                continue;
            }
            if reader.assigned.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = reader.replicator.changed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            match reader.gather(&shutdown).await {
                Gathered::Stopped => return Ok(()),
                Gathered::More => continue,
                Gathered::BrokerError => {
                    tokio::time::sleep(reader.backoff.next_wait()).await;
                    continue;
                }
                Gathered::Batch => {}
            }
            if let Err(e) = reader.apply().await {
                let e = ConsumeError::fatal(e)?;
                // Kept: applied again after a pause.
                tracing::warn!(error = %e, "applying replicated changes from Kafka failed; retrying");
                tokio::time::sleep(reader.backoff.next_wait()).await;
                continue;
            }
            reader.advance_positions();
            reader.advance_clocks().await?;
            reader.save_positions().await?;
        }
    }

    /// The topics this node reads, as `(table, region)`: the other regions' topics of the
    /// global tables it holds, but for replicas needing a re-seed here (whose changes are
    /// refused until the re-seed says where to read on).
    pub(crate) fn consumed_topics(&self) -> Vec<(String, String)> {
        let mut topics = Vec::new();
        for (table, global) in GlobalTable::all(&self.store) {
            if !global.replicas.contains_key(self.region()) {
                continue;
            }
            let reseeding = self
                .store
                .table_definition(&table)
                .map(|definition| crate::hold_limit::reseed_needed(&definition))
                .unwrap_or_default();
            for region in global.replicas.keys() {
                if region != self.region() && !reseeding.contains_key(region) {
                    topics.push((table.clone(), region.clone()));
                }
            }
        }
        topics
    }

    /// The saved read positions of `table` in `region`'s topic, if any.
    fn saved_positions(&self, table: &str, region: &str) -> Option<Vec<i64>> {
        let definition = self.store.table_definition(table).ok()?;
        let saved = definition.extensions.get(OFFSETS_EXTENSION)?;
        serde_json::from_value(saved.get(region)?.clone()).ok()
    }

    /// Saves the read positions in `positions`, keeping the saved positions of the regions
    /// it does not name (a topic not read now, while its replica is re-seeded, keeps its
    /// own).
    pub(crate) fn save_positions(&self, positions: &Positions) -> crate::Result<()> {
        let mut by_table: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> =
            BTreeMap::new();
        for ((table, region), offsets) in positions {
            by_table
                .entry(table)
                .or_insert_with(|| {
                    self.store
                        .table_definition(table)
                        .ok()
                        .and_then(|d| d.extensions.get(OFFSETS_EXTENSION).cloned())
                        .and_then(|saved| match saved {
                            serde_json::Value::Object(saved) => Some(saved),
                            _ => None,
                        })
                        .unwrap_or_default()
                })
                .insert(region.clone(), serde_json::json!(offsets));
        }
        for (table, offsets) in by_table {
            match self.store.set_table_extension(
                table,
                OFFSETS_EXTENSION,
                Some(serde_json::Value::Object(offsets)),
            ) {
                Ok(()) | Err(tidemark_core::Error::ResourceNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// What one wait for a message came to.
enum Gathered {
    /// The node is shutting down.
    Stopped,
    /// A message was read and the batch has room: read on.
    More,
    /// The consumer reported an error and nothing is pending: pause, then read on.
    BrokerError,
    /// The batch is full, or nothing more came: apply it.
    Batch,
}

/// The reader's state between turns.
struct TopicReader {
    replicator: Arc<Replicator>,
    link: Arc<KafkaLink>,
    consumer: StreamConsumer,
    /// The topics membership asks for, and those assigned to the consumer, as
    /// `(table, region)`.
    wanted: Vec<(String, String)>,
    assigned: Vec<(String, String)>,
    /// The membership epoch `wanted` was taken at, and when.
    seen_epoch: u64,
    membership_checked: Instant,
    /// Where each partition read so far stands: the next offset to read.
    positions: Positions,
    /// The `(table, region)` of each assigned topic, by topic name.
    topic_of: BTreeMap<String, (String, String)>,
    /// Changes read and not applied yet, and the next offset of each partition they were
    /// read from.
    pending: Vec<WireChange>,
    read: BTreeMap<(String, i32), i64>,
    /// Delivered-through marks read and not yet effective (the changes before them in their
    /// partitions are still pending), and those in effect, by topic and partition.
    pending_marks: Vec<(String, i32, u64)>,
    marks: BTreeMap<(String, i32), u64>,
    /// Saving the positions: when last started, whether they moved since, and the save
    /// under way.
    saved_at: Instant,
    unsaved: bool,
    saving: Option<JoinHandle<crate::Result<()>>>,
    backoff: Backoff,
    /// The assignment must be made again: a partition stopped, or may have lost its position.
    reassign: bool,
    /// When partitions stopped at a message that does not decode were last read again.
    stopped_retried: Instant,
}

impl TopicReader {
    /// A reader with a new consumer, reading nothing yet.
    fn new(replicator: Arc<Replicator>, link: Arc<KafkaLink>) -> Result<Self, ConsumeError> {
        // A fetch returns as soon as there is data on Kafka, but some brokers (tansu) hold it
        // for the whole wait: a short wait keeps replication lag low on both. A failed fetch
        // (the topic's leader not known yet, right after it was made) is retried in 20 ms,
        // not librdkafka's 500.
        let consumer: StreamConsumer = link.cluster.consumer(
            &format!("tidemark.replication.{}", replicator.region()),
            &[
                ("fetch.wait.max.ms", "5"),
                ("fetch.error.backoff.ms", "20"),
                // A position the topic no longer holds is an error the reader handles
                // (`stops::starting_point`), never a silent jump to another offset.
                ("auto.offset.reset", "error"),
            ],
        )?;
        let now = Instant::now();
        Ok(TopicReader {
            seen_epoch: replicator.membership_epoch(),
            wanted: replicator.consumed_topics(),
            replicator,
            link,
            consumer,
            assigned: Vec::new(),
            membership_checked: now,
            positions: BTreeMap::new(),
            topic_of: BTreeMap::new(),
            pending: Vec::new(),
            read: BTreeMap::new(),
            pending_marks: Vec::new(),
            marks: BTreeMap::new(),
            saved_at: now,
            unsaved: false,
            saving: None,
            backoff: Backoff::new(),
            reassign: false,
            stopped_retried: now,
        })
    }

    /// Looks again at which topics to read. They change only with membership: looked at when
    /// it changed here (every path that changes it says so), and every [`SUBSCRIPTION_CHECK`]
    /// as a safety net, not for every message.
    fn check_membership(&mut self) {
        let epoch = self.replicator.membership_epoch();
        if epoch != self.seen_epoch || self.membership_checked.elapsed() >= SUBSCRIPTION_CHECK {
            self.seen_epoch = epoch;
            self.membership_checked = Instant::now();
            self.wanted = self.replicator.consumed_topics();
        }
    }

    /// Reads the partitions stopped at a message that does not decode again, every
    /// [`RETRY_STOPPED_EVERY`]: the message stops them again unless this node can read it now.
    fn retry_stopped(&mut self) {
        if self.stopped_retried.elapsed() < RETRY_STOPPED_EVERY {
            return;
        }
        self.stopped_retried = Instant::now();
        let retried = [StopKind::Undecodable, StopKind::ForeignChange];
        if retried
            .iter()
            .any(|kind| self.replicator.topic_stops.any(*kind))
        {
            let cleared = retried
                .iter()
                .flat_map(|kind| self.replicator.topic_stops.clear(*kind));
            for stop in cleared.collect::<Vec<_>>() {
                tracing::info!(topic = %stop.topic, partition = stop.partition,
                    offset = stop.offset, "reading a stopped replication partition again");
            }
            self.reassign = true;
        }
    }

    /// Assigns the consumer to the wanted topics when they are not the assigned ones, or
    /// when a partition stopped or may have lost its position.
    async fn follow_membership(&mut self) -> Result<(), tidemark_kafka::Error> {
        if self.wanted == self.assigned && !self.reassign {
            return Ok(());
        }
        self.assign().await?;
        self.reassign = false;
        self.topic_of = self
            .wanted
            .iter()
            .map(|(t, r)| (topic(r, t), (t.clone(), r.clone())))
            .collect();
        self.assigned = self.wanted.clone();
        tracing::info!(topics = ?self.topic_of.keys().collect::<Vec<_>>(),
            "reading the replication topics");
        self.backoff.reset();
        Ok(())
    }

    /// Assigns every partition of the wanted topics to the consumer, each from where this
    /// node stands in it: in memory, saved with the table, or the start of the topic; except
    /// the stopped ones: at a message that does not decode, or at a position the topic no
    /// longer holds (decided again at every assignment, so a re-seed that moves the
    /// position clears it).
    async fn assign(&mut self) -> Result<(), tidemark_kafka::Error> {
        let names: Vec<String> = self.wanted.iter().map(|(t, r)| topic(r, t)).collect();
        self.link.ensure_topics(&names).await?;
        let cleared = self.replicator.topic_stops.clear(StopKind::NeedsReseed);
        let mut list = TopicPartitionList::new();
        let mut lost: Vec<(String, String, String)> = Vec::new();
        for (table, region) in &self.wanted {
            let name = topic(region, table);
            let partitions = usize::try_from(self.link.partitions(&name)?).unwrap_or(0);
            let key = (table.clone(), region.clone());
            if let Some(ends) = self.replicator.topic_resumes.lock().remove(&key) {
                tracing::info!(table, region, positions = ?ends,
                    "the replica is re-seeded: its topic is read on from where it ended when the re-seed began");
                metrics::gauge!("tidemark_replication_needs_reseed",
                    "table" => table.clone(), "region" => region.clone())
                .set(0.0);
                self.positions.insert(key.clone(), ends);
                self.unsaved = true;
            }
            if !self.positions.contains_key(&key) {
                let saved = self
                    .replicator
                    .saved_positions(table, region)
                    .unwrap_or_default();
                self.positions.insert(key.clone(), saved);
            }
            let offsets = self.positions.entry(key).or_default();
            offsets.resize(partitions, 0);
            let mut needs_reseed = false;
            for (partition, offset) in offsets.iter().enumerate() {
                let partition = i32::try_from(partition).unwrap_or(i32::MAX);
                if self.replicator.topic_stops.contains(&name, partition) {
                    continue;
                }
                let (low, high) =
                    tidemark_kafka::topics::watermarks(self.consumer.client(), &name, partition)?;
                let start = match starting_point(*offset, low, high) {
                    Start::Beginning => Offset::Beginning,
                    Start::At(offset) => Offset::Offset(offset),
                    Start::NeedsReseed(reason) => {
                        needs_reseed = true;
                        lost.push((table.clone(), region.clone(), reason.clone()));
                        self.replicator
                            .report_lost_position(table, region, &name, partition, *offset, reason);
                        continue;
                    }
                };
                list.add_partition_offset(&name, partition, start)
                    .map_err(tidemark_kafka::Error::Assign)?;
            }
            if !needs_reseed && cleared.iter().any(|stop| stop.topic == name) {
                tracing::info!(table, region, "replication topic readable again");
                metrics::gauge!("tidemark_replication_needs_reseed",
                    "table" => table.clone(), "region" => region.clone())
                .set(0.0);
            }
        }
        let wanted = &self.wanted;
        self.positions.retain(|key, _| wanted.contains(key));
        self.consumer
            .assign(&list)
            .map_err(tidemark_kafka::Error::Assign)?;
        self.let_go_of_lost(lost).await;
        Ok(())
    }

    /// Records each replica whose topic lost changes of its (one line per partition in
    /// `lost`) as needing a re-seed, which stops the reading of that topic until the re-seed
    /// says where to read on; on failure the partition stays stopped, and is looked at again
    /// at the next assignment.
    async fn let_go_of_lost(&mut self, lost: Vec<(String, String, String)>) {
        let mut recorded: BTreeSet<(String, String)> = BTreeSet::new();
        for (table, region, reason) in lost {
            if !recorded.insert((table.clone(), region.clone())) {
                continue;
            }
            let me = self.replicator.clone();
            let why = format!(
                "region {region}'s replication topic of table {table} lost changes this region \
                 had not read ({reason}): its topic is not read"
            );
            let (t, r) = (table.clone(), region.clone());
            let recorded = blocking(move || {
                me.let_go(
                    &t,
                    &r,
                    crate::hold_limit::ReseedCause::LostTopicPosition,
                    &why,
                )
            })
            .await;
            if let Err(e) = recorded {
                tracing::warn!(table, region, error = %e,
                    "cannot record that the replica needs a re-seed; looked at again shortly");
                self.reassign = true;
            }
        }
    }

    /// Waits for the next message of a batch: what is there now, up to [`APPLY_BATCH`]
    /// changes (a message holds a whole round of the sender's, so nothing is waited for once
    /// one is in).
    async fn gather(&mut self, shutdown: &CancellationToken) -> Gathered {
        let wait = match self.pending.is_empty() {
            true => Duration::from_millis(500),
            false => Duration::ZERO,
        };
        let received = tokio::select! {
            _ = shutdown.cancelled() => return Gathered::Stopped,
            received = tokio::time::timeout(wait, self.consumer.recv()) => received,
        };
        match received {
            Ok(Ok(message)) => {
                let read = Read::of(&message);
                drop(message);
                if let Some(stop) = self.take(read) {
                    self.stop_at(stop);
                }
                if self.pending.len() < APPLY_BATCH {
                    return Gathered::More;
                }
            }
            Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                // A partition's position is no longer in its topic: the next assignment
                // finds which (by its watermarks) and stops it.
                tracing::warn!("a replication read position is out of its topic's range");
                self.reassign = true;
                if self.pending.is_empty() {
                    return Gathered::BrokerError;
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "replication consumer error; it retries");
                if self.pending.is_empty() {
                    return Gathered::BrokerError;
                }
            }
            Err(_) => {}
        }
        Gathered::Batch
    }

    /// Applies the pending changes, if any; on failure they stay pending.
    async fn apply(&mut self) -> crate::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Each region's changes as a batch of that region's: every change of a batch read from
        // region R's topic was checked to be R's when it was taken.
        let mut by_region: BTreeMap<String, ChangeBatch> = BTreeMap::new();
        for change in &self.pending {
            by_region
                .entry(change.region.clone())
                .or_default()
                .changes
                .push(change.clone());
        }
        let me = self.replicator.clone();
        let applying = Instant::now();
        blocking(move || {
            for (region, batch) in by_region {
                me.receive_changes(&region, batch)?;
            }
            Ok(())
        })
        .await?;
        tracing::debug!(
            changes = self.pending.len(),
            took_us = applying.elapsed().as_micros() as u64,
            "applied changes read from Kafka"
        );
        self.pending.clear();
        self.backoff.reset();
        Ok(())
    }

    /// Moves the read positions past what was read (and is applied now).
    fn advance_positions(&mut self) {
        for ((topic, partition), next) in std::mem::take(&mut self.read) {
            if let (Some(key), Ok(partition)) =
                (self.topic_of.get(&topic), usize::try_from(partition))
                && let Some(offset) = self
                    .positions
                    .get_mut(key)
                    .and_then(|p| p.get_mut(partition))
            {
                *offset = next;
                self.unsaved = true;
            }
        }
    }

    /// Puts the delivered-through clocks read behind the applied changes in effect: a table
    /// whose every partition now has one has every change of that region's up to the
    /// lowest, and its inbound hold moves.
    async fn advance_clocks(&mut self) -> Result<(), ConsumeError> {
        let mut marked: BTreeSet<String> = BTreeSet::new();
        for (topic, partition, clock) in self.pending_marks.drain(..) {
            self.marks.insert((topic.clone(), partition), clock);
            marked.insert(topic);
        }
        for topic in marked {
            let Some(key) = self.topic_of.get(&topic) else {
                continue;
            };
            let partitions = self.positions.get(key).map_or(0, Vec::len);
            let clocks: Vec<u64> = (0..partitions)
                .filter_map(|p| {
                    self.marks
                        .get(&(topic.clone(), i32::try_from(p).ok()?))
                        .copied()
                })
                .collect();
            let Some(through) = clocks
                .iter()
                .min()
                .copied()
                .filter(|_| clocks.len() == partitions)
            else {
                continue;
            };
            let (table, region) = key.clone();
            self.replicator
                .inbound
                .lock()
                .insert((table.clone(), region), through);
            let me = self.replicator.clone();
            if let Err(e) = blocking(move || me.move_inbound_hold(&table)).await {
                let e = ConsumeError::fatal(e)?;
                tracing::warn!(error = %e, "cannot move the inbound hold");
            }
        }
        Ok(())
    }

    /// Saves the read positions beside the reading (a save syncs the catalog; waiting for it
    /// here would hold up the next changes), one save at a time, at most every
    /// [`SAVE_OFFSETS_EVERY`].
    async fn save_positions(&mut self) -> Result<(), ConsumeError> {
        if self.saving.as_ref().is_some_and(JoinHandle::is_finished)
            && let Some(save) = self.saving.take()
        {
            match save.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let e = ConsumeError::fatal(e)?;
                    self.unsaved = true;
                    tracing::warn!(error = %e, "cannot save replication read positions");
                }
                Err(e) => {
                    self.unsaved = true;
                    tracing::warn!(error = %e, "saving replication read positions stopped");
                }
            }
        }
        if self.unsaved && self.saving.is_none() && self.saved_at.elapsed() >= SAVE_OFFSETS_EVERY {
            let (me, snapshot) = (self.replicator.clone(), self.positions.clone());
            self.saving = Some(tokio::task::spawn_blocking(move || {
                me.save_positions(&snapshot)
            }));
            self.unsaved = false;
            self.saved_at = Instant::now();
        }
        Ok(())
    }
}

/// A message read, judged and no longer borrowed from the consumer.
struct Read {
    topic: String,
    partition: i32,
    offset: i64,
    /// What to do with it ([`judge_message`]).
    verdict: Verdict,
}

impl Read {
    fn of(message: &BorrowedMessage<'_>) -> Read {
        Read {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            verdict: judge_message(message.payload()),
        }
    }
}

impl TopicReader {
    /// Takes a message read into the batch: its changes and clocks (a clock holds once the
    /// changes before it in its partition are applied: after this batch is), and the next
    /// offset of its partition. A message of a stopped partition (read before it stopped) is
    /// left alone; one that does not decode, or holds a change another region stamped, is not
    /// taken, and comes back as the stop it makes.
    fn take(&mut self, message: Read) -> Option<StoppedPartition> {
        let topic = message.topic.as_str();
        if self
            .replicator
            .topic_stops
            .contains(topic, message.partition)
        {
            return None;
        }
        let stop = |state, error| StoppedPartition {
            topic: message.topic.clone(),
            partition: message.partition,
            offset: message.offset,
            state,
            error,
            since_millis: self.replicator.store.clock().now_millis(),
        };
        match message.verdict {
            Verdict::Apply(changes, clocks) => {
                let region = self.topic_of.get(topic).map(|(_, region)| region.as_str());
                if let Err(why) = topic_carries_own_changes(topic, region, &changes) {
                    return Some(stop(StopKind::ForeignChange, why));
                }
                self.pending.extend(changes);
                for clock in clocks {
                    self.pending_marks
                        .push((message.topic.clone(), message.partition, clock));
                }
                self.read
                    .insert((message.topic, message.partition), message.offset + 1);
                None
            }
            Verdict::Stop(error) => Some(stop(StopKind::Undecodable, error)),
        }
    }

    /// Stops reading a partition at a message that does not decode or holds another region's
    /// change: its position stays at the message (what was read before it is applied as
    /// usual), and it is read again every [`RETRY_STOPPED_EVERY`].
    fn stop_at(&mut self, stop: StoppedPartition) {
        tracing::error!(topic = %stop.topic, partition = stop.partition, offset = stop.offset,
            error = %stop.error,
            "a replication message cannot be taken: reading its partition stops there (retried every 30 s); the other partitions go on");
        if stop.state == StopKind::Undecodable {
            metrics::counter!("tidemark_replication_undecodable_total", "topic" => stop.topic.clone())
                .increment(1);
        }
        self.replicator.topic_stops.record(stop);
        self.reassign = true;
    }
}

impl Replicator {
    /// Reports that `region`'s topic of `table` no longer holds this node's read position in
    /// `partition` (`saved`), so changes of that region's are lost to this one: the region's
    /// replica here needs a re-seed. The partition is not read until its position is moved.
    ///
    /// IMPORTANT: the one place a replication topic's lost changes are reported; a re-seed of
    /// the replica is what answers it.
    fn report_lost_position(
        &self,
        table: &str,
        region: &str,
        topic: &str,
        partition: i32,
        saved: i64,
        reason: String,
    ) {
        tracing::error!(table, region, topic, partition, saved, reason = %reason,
            "changes of this region are lost to this replica: it needs a re-seed; the partition is not read");
        metrics::gauge!("tidemark_replication_needs_reseed",
            "table" => table.to_string(), "region" => region.to_string())
        .set(1.0);
        self.topic_stops.record(StoppedPartition {
            topic: topic.to_string(),
            partition,
            offset: saved,
            state: StopKind::NeedsReseed,
            error: reason,
            since_millis: self.store.clock().now_millis(),
        });
    }
}

/// Checks every change read from `topic`, region `region`'s, is stamped by that region.
///
/// # Errors
/// Why the topic's reading stops: a change stamped by another region, or a topic this reader
/// does not know the region of.
fn topic_carries_own_changes(
    topic: &str,
    region: Option<&str>,
    changes: &[WireChange],
) -> Result<(), String> {
    let Some(region) = region else {
        return Err(format!("{topic} is not a topic this node reads"));
    };
    match changes.iter().find(|c| c.region != region) {
        None => Ok(()),
        Some(foreign) => Err(format!(
            "{topic} is region {region}'s topic, and holds a change of table {} stamped by \
             region {}; a region's topic carries only its own changes",
            foreign.table, foreign.region
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(region: &str) -> WireChange {
        WireChange {
            table: "orders".into(),
            keys: [(
                "p".to_string(),
                tidemark_core::model::AttributeValue::S("k".into()),
            )]
            .into(),
            new_image: None,
            clock: 1,
            region: region.into(),
        }
    }

    #[test]
    fn a_regions_topic_carries_only_changes_stamped_by_that_region() {
        let topic = topic("us", "orders");
        let own = [change("us"), change("us")];
        assert_eq!(topic_carries_own_changes(&topic, Some("us"), &own), Ok(()));
        let mixed = [change("us"), change("eu")];
        assert_eq!(
            topic_carries_own_changes(&topic, Some("us"), &mixed),
            Err(
                "tidemark.replication.us.orders is region us's topic, and holds a change of \
                 table orders stamped by region eu; a region's topic carries only its own \
                 changes"
                    .into()
            )
        );
        assert!(topic_carries_own_changes(&topic, None, &own).is_err());
    }
}
