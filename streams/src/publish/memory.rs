//! A [`Sink`] in memory: topics as lists of partitions, for tests of the publishing session
//! without a broker. It keeps every partition in send order, reads tails back from the
//! `tidemark.sequence` header as the Kafka sink does, and can be told to fail deliveries.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tidemark_core::ChangeSeq;

use super::format::{Message, SEQUENCE_HEADER};
use super::session::{Delivery, SendError, Sink, SinkError};
use super::settings::PublishSettings;

/// Topics held in memory, shared by every sink made from them.
#[derive(Debug, Clone, Default)]
pub struct MemoryTopics {
    inner: Arc<Mutex<Topics>>,
}

#[derive(Debug, Default)]
struct Topics {
    partitions: HashMap<String, Vec<Vec<Message>>>,
    /// Deliveries to fail from now on (each failed message is not stored).
    failing: usize,
}

impl MemoryTopics {
    /// A sink writing to these topics.
    pub fn sink(&self) -> MemorySink {
        MemorySink {
            topics: self.clone(),
            broken: false,
        }
    }

    /// The messages of each partition of `topic`, in order.
    pub fn partitions(&self, topic: &str) -> Vec<Vec<Message>> {
        self.inner
            .lock()
            .partitions
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    /// Makes the next `count` deliveries fail. Like Kafka's idempotent producer after a
    /// failed delivery, the sink that failed fails everything sent after it too, so a
    /// partition never holds a gap.
    pub fn fail_next(&self, count: usize) {
        self.inner.lock().failing = count;
    }

    /// Injected failures not yet delivered.
    pub fn failures_left(&self) -> usize {
        self.inner.lock().failing
    }

    /// Appends a message as another producer would (tests of what the topic already holds).
    pub fn append(&self, topic: &str, partition: usize, message: Message) {
        if let Some(partition) = self
            .inner
            .lock()
            .partitions
            .get_mut(topic)
            .and_then(|p| p.get_mut(partition))
        {
            partition.push(message);
        }
    }
}

/// A sink writing to [`MemoryTopics`].
#[derive(Debug)]
pub struct MemorySink {
    topics: MemoryTopics,
    /// Set once a delivery failed: every later one fails too.
    broken: bool,
}

/// The sequence a message carries in its header.
pub fn sequence_of(message: &Message) -> Option<ChangeSeq> {
    message
        .headers
        .iter()
        .find(|(key, _)| *key == SEQUENCE_HEADER)
        .and_then(|(_, value)| value.parse().ok())
}

impl Sink for MemorySink {
    async fn open(
        &mut self,
        settings: &PublishSettings,
    ) -> Result<Vec<Option<ChangeSeq>>, SinkError> {
        let mut topics = self.topics.inner.lock();
        let partitions = topics
            .partitions
            .entry(settings.topic.clone())
            .or_insert_with(|| vec![Vec::new(); settings.partitions.max(1) as usize]);
        partitions
            .iter()
            .enumerate()
            .map(|(partition, messages)| match messages.last() {
                None => Ok(None),
                Some(last) => sequence_of(last)
                    .map(Some)
                    .ok_or_else(|| SinkError::NotTidemarks {
                        topic: settings.topic.clone(),
                        partition,
                    }),
            })
            .collect()
    }

    fn send(
        &mut self,
        topic: &str,
        partition: i32,
        message: Message,
    ) -> Result<Delivery, SendError> {
        let mut topics = self.topics.inner.lock();
        if topics.failing > 0 || self.broken {
            topics.failing = topics.failing.saturating_sub(1);
            self.broken = true;
            return Ok(Box::pin(std::future::ready(Err(SinkError::Injected))));
        }
        let slot = topics
            .partitions
            .get_mut(topic)
            .and_then(|p| p.get_mut(usize::try_from(partition).ok()?))
            .ok_or_else(|| {
                SendError::Failed(SinkError::NoPartition {
                    topic: topic.to_string(),
                    partition,
                })
            })?;
        slot.push(message);
        Ok(Box::pin(std::future::ready(Ok(()))))
    }
}
