//! A publishing session, whatever the sink: resume from what the topic holds, tail the table's
//! slice of the change log (up to the durable watermark) through a [`LogCursor`], hand each
//! change's messages to the [`Sink`] for the partition its key maps to, take delivery reports
//! in order, and move the table's retention hold past what is confirmed.
//!
//! Any failure (the sink unreachable, a delivery error or timeout, a topic that is not
//! Tidemark's) ends the session; [`run`] drops the sink, backs off and starts a new session
//! from the topic's tails. No local state decides what is in the topic, which is what makes
//! outages of any length and `kill -9` come out with every change once, in order per item.
//!
//! The Kafka sink lives in [`super::kafka`]; [`super::memory`] is a sink in memory, so this
//! logic is tested without a broker.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use parking_lot::Mutex;
use tidemark_core::changes::{LogCursor, LogLimits};
use tidemark_core::{ChangeSeq, Store};
use tokio_util::sync::CancellationToken;

use tidemark_kafka::Backoff;

use super::format::{
    HISTORY_HEADER, Message, SEQUENCE_HEADER, SINCE_HEADER, ValueFormat, messages,
};
use super::resume::{ResumePoint, partition_for};
use super::settings::{self, PublishSettings, PublishedTable};

/// Records read from the log per produce round.
const BATCH: usize = 2000;
/// Most messages awaiting delivery reports before the session stops reading the log.
const MAX_IN_FLIGHT: usize = 50_000;
/// Shortest interval between checkpoints while deliveries are still in flight.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The report of one message's delivery: `Ok` once the sink holds it.
pub type Delivery = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// Why a sink did not take a message.
#[derive(Debug)]
pub enum SendError {
    /// Its queue is full: send again once a delivery has settled.
    Full(Message),
    /// It failed; the session ends.
    Failed(SinkError),
}

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The Kafka cluster failed or refused.
    #[error(transparent)]
    Kafka(#[from] tidemark_kafka::Error),
    /// A partition's last message carries no sequence: someone else writes to the topic.
    #[error(
        "the last message of {topic}/{partition} has no {SEQUENCE_HEADER} header: the topic is \
         not Tidemark's"
    )]
    NotTidemarks {
        /// The topic.
        topic: String,
        /// The partition.
        partition: usize,
    },
    /// The topic has no such partition (the sink in memory).
    #[error("no partition {partition} of {topic}")]
    NoPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A failure a test asked for (the sink in memory).
    #[error("injected delivery failure")]
    Injected,
    /// The blocking task reading the topic failed.
    #[error("reading the topic stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a publishing session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The table's settings name a format this node does not know.
    #[error("unknown format {0}")]
    UnknownFormat(String),
    /// The topic could not be opened.
    #[error(transparent)]
    Open(#[from] SinkError),
    /// The topic has more partitions than a partition number counts.
    #[error("the topic has {0} partitions")]
    TooManyPartitions(usize),
    /// The sink did not take a change's message.
    #[error("cannot produce change {seq}: {source}")]
    Produce {
        /// The change.
        seq: ChangeSeq,
        /// Why.
        source: SinkError,
    },
    /// A change's message was not delivered.
    #[error("delivery of change {seq} failed: {source}")]
    Delivery {
        /// The change.
        seq: ChangeSeq,
        /// Why.
        source: SinkError,
    },
    /// Reading the log or moving the checkpoint failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// A blocking task of the session failed.
    #[error("a blocking task of the session failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Where a session's messages go: a Kafka topic, or memory in tests.
pub trait Sink: Send {
    /// Opens the topic (creating it when missing) and reads the last change sequence of each
    /// of its partitions (`None` for an empty one).
    fn open(
        &mut self,
        settings: &PublishSettings,
    ) -> impl Future<Output = Result<Vec<Option<ChangeSeq>>, SinkError>> + Send;

    /// Hands one message for `partition` of `topic` to the sink. Messages of one partition are
    /// stored in the order they are sent.
    ///
    /// # Errors
    /// [`SendError::Full`] gives the message back to send again later.
    fn send(
        &mut self,
        topic: &str,
        partition: i32,
        message: Message,
    ) -> Result<Delivery, SendError>;
}

/// What a table's publisher is doing, for status reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherState {
    /// The last change sequence confirmed in the topic.
    pub published_through: Option<ChangeSeq>,
    /// The last failure, while the publisher is retrying.
    pub last_error: Option<String>,
}

/// Publishes one table until cancelled, with a new sink from `connect` for each session,
/// starting over from the topic after any failure (after a [`Backoff`]).
pub async fn run<S: Sink>(
    store: Arc<Store>,
    connect: impl Fn() -> Result<S, SinkError>,
    table: PublishedTable,
    cancel: CancellationToken,
    state: Arc<Mutex<PublisherState>>,
) {
    let mut backoff = Backoff::new();
    loop {
        let outcome = match connect() {
            Ok(sink) => publish(&store, sink, &table, &cancel, &state).await,
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(()) => return,
            // The store halted (it says why): the node is exiting, there is nothing to retry.
            Err(_) if store.halt().reason().is_some() => return,
            Err(e) => {
                tracing::warn!(table = %table.table_name, topic = %table.settings.topic,
                    error = %e, "publishing failed; resuming from the topic's tail");
                metrics::counter!("tidemark_publish_failures_total", "table" => table.table_name.clone())
                    .increment(1);
                state.lock().last_error = Some(e.to_string());
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_wait()) => {}
        }
    }
}

/// The headers that tell a restore from the topic where the table's publishing started and
/// whether the table was empty then.
fn history_headers(settings: &PublishSettings) -> Vec<(&'static str, String)> {
    let mut headers = vec![(SINCE_HEADER, settings.start_seq.to_string())];
    if let Some(empty) = settings.starts_empty {
        let history = if empty { "full" } else { "partial" };
        headers.push((HISTORY_HEADER, history.to_string()));
    }
    headers
}

/// One session: open the topic, find the resume point, then send until cancelled (`Ok`) or a
/// failure (`Err`).
pub async fn publish<S: Sink>(
    store: &Arc<Store>,
    mut sink: S,
    table: &PublishedTable,
    cancel: &CancellationToken,
    state: &Mutex<PublisherState>,
) -> Result<(), SessionError> {
    let settings = &table.settings;
    let format = ValueFormat::parse(&settings.format)
        .ok_or_else(|| SessionError::UnknownFormat(settings.format.clone()))?;
    let tails = sink.open(settings).await?;
    let partitions =
        i32::try_from(tails.len()).map_err(|_| SessionError::TooManyPartitions(tails.len()))?;
    let resume = ResumePoint::new(tails, settings.start_seq);
    let mut cursor = LogCursor::table(table.table_id, resume.read_from());
    let region = store.config().region.clone();
    let mut deliveries = Deliveries::default();
    let mut checkpointed: Option<ChangeSeq> = None;
    let mut checkpointed_at = Instant::now();
    state.lock().last_error = None;
    loop {
        deliveries.settle_ready()?;
        if let Some(delivered) = deliveries.delivered
            && checkpointed != Some(delivered)
        {
            state.lock().published_through = Some(delivered);
            // The checkpoint only bounds the history hold; the topic decides where to resume,
            // so it is written at most a few times a second.
            if deliveries.in_flight.is_empty() || checkpointed_at.elapsed() >= CHECKPOINT_EVERY {
                let worker = store.clone();
                let table_id = table.table_id;
                tokio::task::spawn_blocking(move || {
                    settings::confirm_published(&worker, table_id, delivered)
                })
                .await??;
                checkpointed = Some(delivered);
                checkpointed_at = Instant::now();
            }
        }
        let worker = store.clone();
        let mut reading = cursor.clone();
        let (batch, read) = tokio::task::spawn_blocking(move || {
            let batch = worker.read_log(&mut reading, LogLimits::records(BATCH));
            batch.map(|batch| (batch, reading))
        })
        .await?
        .map_err(crate::Error::from)?;
        cursor = read;
        // Checked after the read: a change committed after the cancel (say, the first write
        // after its destination's settings changed) is then always left to the successor.
        if cancel.is_cancelled() {
            return deliveries.settle_all().await;
        }
        if batch.is_empty() {
            // Nothing new: wait for a commit, or for a delivery report to move the checkpoint.
            // (The cursor is past the watermark it read up to, so this waits for a new one.)
            tokio::select! {
                // A publisher being replaced must not read past the moment it was told to
                // stop: its successor may publish in other settings.
                biased;
                _ = cancel.cancelled() => return deliveries.settle_all().await,
                _ = store.wait_durable_past(cursor.next.saturating_prev()) => {}
                settled = deliveries.settle_oldest(), if !deliveries.in_flight.is_empty() => {
                    settled?;
                }
            }
            continue;
        }
        let now = store.clock().now_millis();
        for record in batch {
            let seq = record.seq;
            let mut outgoing = messages(record, format, &region, now)
                .into_iter()
                .map(|mut message| {
                    message.headers.extend(history_headers(settings));
                    message
                })
                .filter_map(|message| {
                    let partition = partition_for(&message.key, partitions);
                    (!resume.already_published(partition, seq)).then_some((partition, message))
                })
                .peekable();
            if outgoing.peek().is_none() {
                deliveries.already_in_topic(seq);
                continue;
            }
            while let Some((partition, mut message)) = outgoing.next() {
                let confirms = outgoing.peek().is_none().then_some(seq);
                loop {
                    match sink.send(&settings.topic, partition, message) {
                        Ok(delivery) => {
                            deliveries.sent(seq, confirms, delivery);
                            break;
                        }
                        // The sink's queue is full: wait for the oldest delivery, then retry.
                        Err(SendError::Full(back)) => {
                            message = back;
                            if deliveries.in_flight.is_empty() {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            } else {
                                deliveries.settle_oldest().await?;
                            }
                        }
                        Err(SendError::Failed(source)) => {
                            return Err(SessionError::Produce { seq, source });
                        }
                    }
                }
            }
        }
        while deliveries.in_flight.len() > MAX_IN_FLIGHT {
            deliveries.settle_oldest().await?;
        }
        if cancel.is_cancelled() {
            return deliveries.settle_all().await;
        }
    }
}

/// A sent message awaiting its delivery report.
struct InFlight {
    seq: ChangeSeq,
    /// The change published once this report is in: set on the last message of a change (a
    /// debezium delete is followed by its tombstone), and moved forward over later changes
    /// found already in the topic.
    confirms: Option<ChangeSeq>,
    delivery: Delivery,
}

/// Sent messages awaiting their reports, oldest first, and the last change whose every message
/// is acknowledged. A sink keeps each partition in send order, so reports are taken in send
/// order.
#[derive(Default)]
struct Deliveries {
    in_flight: VecDeque<InFlight>,
    delivered: Option<ChangeSeq>,
}

impl Deliveries {
    /// Tracks a sent message of change `seq`; `confirms` is set on a change's last message.
    fn sent(&mut self, seq: ChangeSeq, confirms: Option<ChangeSeq>, delivery: Delivery) {
        self.in_flight.push_back(InFlight {
            seq,
            confirms,
            delivery,
        });
    }

    /// Counts `seq`, whose messages the topic already holds, as published once every message
    /// sent before it is.
    fn already_in_topic(&mut self, seq: ChangeSeq) {
        match self.in_flight.back_mut() {
            Some(last) => last.confirms = Some(seq),
            None => self.delivered = Some(seq),
        }
    }

    /// Takes every report that has already arrived, without waiting.
    fn settle_ready(&mut self) -> Result<(), SessionError> {
        while let Some(front) = self.in_flight.front_mut() {
            let Some(report) = (&mut front.delivery).now_or_never() else {
                return Ok(());
            };
            self.settled(report)?;
        }
        Ok(())
    }

    /// Waits for the oldest report. Cancel-safe: the message stays queued until its report
    /// is in.
    /// Waits for every report, so nothing this session sent lands in the topic after it
    /// ended (a successor resumes from what the topic holds).
    async fn settle_all(&mut self) -> Result<(), SessionError> {
        while !self.in_flight.is_empty() {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    async fn settle_oldest(&mut self) -> Result<(), SessionError> {
        let Some(front) = self.in_flight.front_mut() else {
            return Ok(());
        };
        let report = (&mut front.delivery).await;
        self.settled(report)
    }

    /// Records the oldest message's report.
    fn settled(&mut self, report: Result<(), SinkError>) -> Result<(), SessionError> {
        let Some(message) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match report {
            Ok(()) => {
                if message.confirms.is_some() {
                    self.delivered = message.confirms;
                }
                Ok(())
            }
            Err(source) => Err(SessionError::Delivery {
                seq: message.seq,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::memory::{MemoryTopics, sequence_of};
    use crate::publish::settings::{PublishFrom, published_tables, set_publishing};
    use tidemark_core::Engine;
    use tidemark_core::StoreConfig;
    use tidemark_core::model::{AttributeValue, Item};
    use tidemark_core::ops::{CreateTableRequest, DeleteItemRequest, PutItemRequest};
    use tidemark_core::retention::HoldName;
    use tokio::sync::oneshot;

    fn seq(n: u64) -> ChangeSeq {
        ChangeSeq::new(n)
    }

    fn key(k: &str) -> Item {
        [("p".to_string(), AttributeValue::S(k.into()))].into()
    }

    /// A store with table `tbl` published to topic `t` (3 partitions) in `format`.
    fn published_store(dir: &std::path::Path, format: &str) -> Arc<Store> {
        let engine = Engine::open(StoreConfig::for_tests(dir)).unwrap();
        engine
            .tables
            .create_table(CreateTableRequest::on_demand("tbl", "p", "S"))
            .unwrap();
        let settings = PublishSettings {
            topic: "t".into(),
            format: format.into(),
            start_seq: ChangeSeq::ZERO,
            partitions: 3,
            replication_factor: 1,
            starts_empty: None,
            stream_arn: None,
        };
        set_publishing(&engine.store, "tbl", Some((settings, PublishFrom::Now))).unwrap();
        engine.store
    }

    /// Puts `count` versions over ten keys and deletes one; returns the sequences written.
    fn write(store: &Store, count: usize) -> Vec<ChangeSeq> {
        let mut seqs = Vec::new();
        for i in 0..count {
            let mut item = key(&format!("k{}", i % 10));
            item.insert("v".into(), AttributeValue::N((i as i64).into()));
            let put = store.put_item(PutItemRequest {
                table_name: "tbl".into(),
                item,
                ..Default::default()
            });
            seqs.extend(put.unwrap().change_seq);
        }
        let delete = store.delete_item(DeleteItemRequest {
            table_name: "tbl".into(),
            key: key("k3"),
            ..Default::default()
        });
        seqs.extend(delete.unwrap().change_seq);
        seqs
    }

    /// Starts a publisher on `topics`; returns its cancel token, state and task.
    fn start(
        store: &Arc<Store>,
        topics: &MemoryTopics,
    ) -> (
        CancellationToken,
        Arc<Mutex<PublisherState>>,
        tokio::task::JoinHandle<()>,
    ) {
        let table = published_tables(store).unwrap().remove(0);
        let (cancel, state) = (CancellationToken::new(), Arc::default());
        let topics = topics.clone();
        let task = tokio::spawn(run(
            store.clone(),
            move || Ok(topics.sink()),
            table,
            cancel.clone(),
            Arc::clone(&state),
        ));
        (cancel, state, task)
    }

    /// Waits until the table's hold is past `last` (everything up to it confirmed).
    async fn wait_confirmed(store: &Store, last: ChangeSeq) {
        let table_id = store.table_id("tbl").unwrap();
        for _ in 0..3000 {
            if store.hold(&HoldName::Publish { table_id }).unwrap().from > last {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("change {last} was never confirmed");
    }

    /// Every partition's sequences, each asserted to be increasing (order per item, no repeat).
    fn published(topics: &MemoryTopics) -> Vec<ChangeSeq> {
        let mut all = Vec::new();
        for partition in topics.partitions("t") {
            let seqs: Vec<ChangeSeq> = partition.iter().filter_map(sequence_of).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
            all.extend(seqs);
        }
        all.sort_unstable();
        all
    }

    #[tokio::test]
    async fn every_change_is_published_once_and_the_hold_follows() {
        let dir = tempfile::tempdir().unwrap();
        let store = published_store(dir.path(), "dynamodb");
        let topics = MemoryTopics::default();
        let mut written = write(&store, 50);
        let (cancel, state, task) = start(&store, &topics);
        written.extend(write(&store, 30));
        let last = *written.last().unwrap();
        wait_confirmed(&store, last).await;
        assert_eq!(published(&topics), written);
        assert_eq!(state.lock().published_through, Some(last));
        let table_id = store.table_id("tbl").unwrap();
        assert_eq!(store.table_lag(table_id, last.next()).unwrap().records, 0);
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_new_session_resumes_from_the_topic_not_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let store = published_store(dir.path(), "debezium-tombstones");
        let topics = MemoryTopics::default();
        let first = write(&store, 40);
        let (cancel, _, task) = start(&store, &topics);
        wait_confirmed(&store, *first.last().unwrap()).await;
        cancel.cancel();
        task.await.unwrap();
        let before = topics.partitions("t").iter().map(Vec::len).sum::<usize>();

        // As after a crash: the checkpoint is behind what the topic holds.
        let table = published_tables(&store).unwrap().remove(0);
        let start_seq = table.settings.start_seq;
        store
            .set_hold(
                &HoldName::Publish {
                    table_id: table.table_id,
                },
                Some(table.table_id),
                start_seq,
            )
            .unwrap();
        let (cancel, _, task) = start(&store, &topics);
        wait_confirmed(&store, *first.last().unwrap()).await;
        assert_eq!(
            topics.partitions("t").iter().map(Vec::len).sum::<usize>(),
            before,
            "nothing already in the topic is sent again"
        );
        let more = write(&store, 20);
        wait_confirmed(&store, *more.last().unwrap()).await;
        let mut expected: Vec<ChangeSeq> = first.into_iter().chain(more).collect();
        // A debezium delete is a record and its tombstone, both with the change's sequence.
        let deletes: Vec<ChangeSeq> = expected
            .iter()
            .copied()
            .filter(|s| {
                store.read_changes(*s, 1).unwrap()[0].kind == tidemark_core::ChangeKind::Remove
            })
            .collect();
        expected.extend(deletes);
        expected.sort_unstable();
        let mut all: Vec<ChangeSeq> = topics
            .partitions("t")
            .iter()
            .flatten()
            .filter_map(sequence_of)
            .collect();
        all.sort_unstable();
        assert_eq!(all, expected);
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_topic_that_is_not_tidemarks_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = published_store(dir.path(), "dynamodb");
        let topics = MemoryTopics::default();
        let settings = published_tables(&store).unwrap().remove(0).settings;
        topics.sink().open(&settings).await.unwrap();
        let foreign = Message {
            key: b"k".to_vec(),
            value: Some(b"someone else's".to_vec()),
            headers: Vec::new(),
        };
        topics.append("t", 1, foreign);
        write(&store, 5);
        let (cancel, state, task) = start(&store, &topics);
        for _ in 0..3000 {
            if state.lock().last_error.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let error = state.lock().last_error.clone().unwrap_or_default();
        assert!(error.contains("not Tidemark's"), "{error}");
        assert_eq!(
            topics.partitions("t").iter().map(Vec::len).sum::<usize>(),
            1,
            "nothing was sent"
        );
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn failed_deliveries_end_the_session_and_the_next_one_fills_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = published_store(dir.path(), "kds");
        let topics = MemoryTopics::default();
        let written = write(&store, 60);
        topics.fail_next(5);
        let (cancel, state, task) = start(&store, &topics);
        wait_confirmed(&store, *written.last().unwrap()).await;
        assert_eq!(topics.failures_left(), 0, "the failures happened");
        assert_eq!(published(&topics), written, "every change once, none lost");
        assert_eq!(state.lock().last_error, None, "the last session is healthy");
        cancel.cancel();
        task.await.unwrap();
    }

    /// A delivery that resolves when its sender says so (dropping the sender fails it).
    fn pending() -> (oneshot::Sender<Result<(), SinkError>>, Delivery) {
        let (tx, rx) = oneshot::channel();
        let delivery = async move {
            rx.await
                .unwrap_or_else(|_| Err(tidemark_kafka::Error::DeliveryDropped.into()))
        };
        (tx, Box::pin(delivery))
    }

    fn ready(report: Result<(), SinkError>) -> Delivery {
        Box::pin(std::future::ready(report))
    }

    #[tokio::test]
    async fn a_change_counts_once_its_last_message_is_delivered() {
        let mut deliveries = Deliveries::default();
        // Change 7 is a debezium delete: its record, then its tombstone.
        let (record, first) = pending();
        let (tombstone, second) = pending();
        deliveries.sent(seq(7), None, first);
        deliveries.sent(seq(7), Some(seq(7)), second);
        deliveries.settle_ready().unwrap();
        assert_eq!(deliveries.delivered, None);
        record.send(Ok(())).unwrap();
        deliveries.settle_ready().unwrap();
        assert_eq!(deliveries.delivered, None, "the tombstone is still out");
        tombstone.send(Ok(())).unwrap();
        deliveries.settle_oldest().await.unwrap();
        assert_eq!(deliveries.delivered, Some(seq(7)));
        assert!(deliveries.in_flight.is_empty());
    }

    #[tokio::test]
    async fn reports_are_taken_in_send_order() {
        let mut deliveries = Deliveries::default();
        let (first_tx, first) = pending();
        deliveries.sent(seq(1), Some(seq(1)), first);
        deliveries.sent(seq(2), Some(seq(2)), ready(Ok(())));
        deliveries.settle_ready().unwrap();
        assert_eq!(
            deliveries.delivered, None,
            "a later report does not count before an earlier one"
        );
        first_tx.send(Ok(())).unwrap();
        deliveries.settle_ready().unwrap();
        assert_eq!(deliveries.delivered, Some(seq(2)));
    }

    #[tokio::test]
    async fn changes_already_in_the_topic_move_with_the_deliveries_around_them() {
        let mut deliveries = Deliveries::default();
        deliveries.already_in_topic(seq(3));
        assert_eq!(
            deliveries.delivered,
            Some(seq(3)),
            "nothing in flight: at once"
        );
        let (tx, delivery) = pending();
        deliveries.sent(seq(4), Some(seq(4)), delivery);
        deliveries.already_in_topic(seq(5));
        deliveries.already_in_topic(seq(6));
        deliveries.settle_ready().unwrap();
        assert_eq!(
            deliveries.delivered,
            Some(seq(3)),
            "not before 4 is delivered"
        );
        tx.send(Ok(())).unwrap();
        deliveries.settle_oldest().await.unwrap();
        assert_eq!(deliveries.delivered, Some(seq(6)));
    }

    #[tokio::test]
    async fn a_failed_delivery_ends_the_session_without_counting() {
        let mut deliveries = Deliveries::default();
        deliveries.sent(seq(1), Some(seq(1)), ready(Ok(())));
        deliveries.sent(seq(2), Some(seq(2)), ready(Err(SinkError::Injected)));
        deliveries.sent(seq(3), Some(seq(3)), ready(Ok(())));
        let error = deliveries.settle_ready().unwrap_err();
        assert!(
            matches!(
                error,
                SessionError::Delivery {
                    seq: failed,
                    source: SinkError::Injected
                } if failed == seq(2)
            ),
            "{error}"
        );
        assert_eq!(deliveries.delivered, Some(seq(1)));

        let mut deliveries = Deliveries::default();
        let (tx, delivery) = pending();
        deliveries.sent(seq(4), Some(seq(4)), delivery);
        drop(tx);
        assert!(
            deliveries.settle_oldest().await.is_err(),
            "a lost report fails"
        );
        assert_eq!(deliveries.delivered, None);
    }
}
