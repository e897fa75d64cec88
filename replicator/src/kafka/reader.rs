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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tidemark_kafka::Backoff;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{KafkaLink, read_message, topic};
use crate::membership::GlobalTable;
use crate::protocol::DecodeError;
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
    /// global tables it holds.
    fn consumed_topics(&self) -> Vec<(String, String)> {
        let mut topics = Vec::new();
        for (table, global) in GlobalTable::all(&self.store) {
            if !global.replicas.contains_key(self.region()) {
                continue;
            }
            for region in global.replicas.keys().filter(|r| *r != self.region()) {
                topics.push((table.clone(), region.clone()));
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

    /// Saves the read positions of every table in `positions`.
    fn save_positions(&self, positions: &Positions) -> crate::Result<()> {
        let mut by_table: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> =
            BTreeMap::new();
        for ((table, region), offsets) in positions {
            by_table
                .entry(table)
                .or_default()
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
    /// Topics whose reading stopped at a message with another region's change, and why.
    stopped: BTreeMap<String, String>,
    marks: BTreeMap<(String, i32), u64>,
    /// Saving the positions: when last started, whether they moved since, and the save
    /// under way.
    saved_at: Instant,
    unsaved: bool,
    saving: Option<JoinHandle<crate::Result<()>>>,
    backoff: Backoff,
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
                ("auto.offset.reset", "earliest"),
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
            stopped: BTreeMap::new(),
            marks: BTreeMap::new(),
            saved_at: now,
            unsaved: false,
            saving: None,
            backoff: Backoff::new(),
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

    /// Assigns the consumer to the wanted topics when they are not the assigned ones.
    async fn follow_membership(&mut self) -> Result<(), tidemark_kafka::Error> {
        if self.wanted == self.assigned {
            return Ok(());
        }
        self.assign().await?;
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
    /// node stands in it: in memory, saved with the table, or the start of the topic.
    async fn assign(&mut self) -> Result<(), tidemark_kafka::Error> {
        let names: Vec<String> = self.wanted.iter().map(|(t, r)| topic(r, t)).collect();
        self.link.ensure_topics(&names).await?;
        let mut list = TopicPartitionList::new();
        for (table, region) in &self.wanted {
            let name = topic(region, table);
            let partitions = usize::try_from(self.link.partitions(&name)?).unwrap_or(0);
            let key = (table.clone(), region.clone());
            if !self.positions.contains_key(&key) {
                let saved = self
                    .replicator
                    .saved_positions(table, region)
                    .unwrap_or_default();
                self.positions.insert(key.clone(), saved);
            }
            let offsets = self.positions.entry(key).or_default();
            offsets.resize(partitions, 0);
            for (partition, offset) in offsets.iter().enumerate() {
                // Offset 0 rather than "the beginning": no offset lookup before the first
                // fetch; a topic trimmed past it resets to its earliest offset.
                list.add_partition_offset(&name, partition as i32, Offset::Offset(*offset))
                    .map_err(tidemark_kafka::Error::Assign)?;
            }
        }
        let wanted = &self.wanted;
        self.positions.retain(|key, _| wanted.contains(key));
        self.consumer
            .assign(&list)
            .map_err(tidemark_kafka::Error::Assign)
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
                self.take(read);
                if self.pending.len() < APPLY_BATCH {
                    return Gathered::More;
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

/// A message's changes and delivered-through clocks.
type MessageContent = (Vec<WireChange>, Vec<u64>);

/// A message read, decoded and no longer borrowed from the consumer.
struct Read {
    topic: String,
    partition: i32,
    offset: i64,
    /// Its changes and delivered-through clocks; `None` for a message without payload.
    content: Option<Result<MessageContent, DecodeError>>,
}

impl Read {
    fn of(message: &BorrowedMessage<'_>) -> Read {
        Read {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            content: message.payload().map(read_message),
        }
    }
}

impl TopicReader {
    /// Takes a message read into the batch: its changes and clocks (a clock holds once the
    /// changes before it in its partition are applied: after this batch is), and the next
    /// offset of its partition. A message of a stopped topic is left unread, and one holding
    /// a change another region stamped stops its topic.
    fn take(&mut self, message: Read) {
        let topic = message.topic.as_str();
        if self.stopped.contains_key(topic) {
            self.pause(topic, message.partition);
            return;
        }
        match message.content {
            Some(Ok((changes, clocks))) => {
                let region = self.topic_of.get(topic).map(|(_, region)| region.as_str());
                if let Err(why) = topic_carries_own_changes(topic, region, &changes) {
                    tracing::error!(topic, partition = message.partition,
                        offset = message.offset, error = %why,
                        "stopped reading a replication topic: it carries another region's change");
                    self.pause(topic, message.partition);
                    self.stopped.insert(message.topic, why);
                    return;
                }
                self.pending.extend(changes);
                for clock in clocks {
                    self.pending_marks
                        .push((message.topic.clone(), message.partition, clock));
                }
            }
            Some(Err(e)) => tracing::error!(topic,
                offset = message.offset, error = %e,
                "a replication message that does not decode is skipped"),
            None => {}
        }
        self.read
            .insert((message.topic, message.partition), message.offset + 1);
    }

    /// Stops fetching a partition of a stopped topic: what is fetched of it would only be
    /// dropped. Assigning the topics again resumes it, and the next message read of it
    /// pauses it again.
    fn pause(&self, topic: &str, partition: i32) {
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        if let Err(e) = self.consumer.pause(&list) {
            tracing::debug!(topic, error = %e,
                "cannot pause a stopped replication topic; its messages are dropped");
        }
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
