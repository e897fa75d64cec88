//! Topics: creating the missing ones ([`KafkaSettings::ensure_topics`] with a [`TopicSpec`]
//! each), the lookups every reader needs (partition count, watermarks, each partition's last
//! message) and a produced message's delivery report.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::DeliveryFuture;
use rdkafka::{Offset, TopicPartitionList};

use crate::{BROKER_TIMEOUT, Error, KafkaSettings};

/// A topic the node creates when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Its partitions.
    pub partitions: i32,
    /// How many brokers keep each partition.
    pub replication_factor: i16,
    /// How long the topic keeps a message (`retention.ms`); `None`: the broker's default.
    pub retention: Option<std::time::Duration>,
    /// Keep every message for good (`retention.ms=-1` and `retention.bytes=-1`): a log that new
    /// copies are built from. Overrides `retention`.
    pub keep_forever: bool,
    /// The largest message the topic takes (`max.message.bytes`); `None`: the broker's default.
    pub max_message_bytes: Option<u32>,
}

impl TopicSpec {
    /// The topic-level settings it is created with. With several replicas,
    /// `min.insync.replicas` is one below the replication factor: an `acks=all` write (every
    /// producer of the node's) is refused unless all but one replica have it, so the topic
    /// keeps taking writes with one broker down. An explicit retention is `retention.ms`.
    pub fn config(&self) -> Vec<(&'static str, String)> {
        let mut config = match self.replication_factor {
            factor if factor > 1 => vec![("min.insync.replicas", (factor - 1).to_string())],
            _ => Vec::new(),
        };
        if self.keep_forever {
            config.push(("retention.ms", "-1".to_string()));
            config.push(("retention.bytes", "-1".to_string()));
        } else if let Some(retention) = self.retention {
            config.push(("retention.ms", retention.as_millis().to_string()));
        }
        if let Some(bytes) = self.max_message_bytes {
            config.push(("max.message.bytes", bytes.to_string()));
        }
        config
    }
}

impl KafkaSettings {
    /// Creates every topic of `topics` that does not exist yet; `Ok` once they all exist.
    ///
    /// # Errors
    /// [`Error::CreateTopic`] for a topic the broker did not create, or any other broker
    /// failure.
    pub async fn ensure_topics(&self, topics: &[TopicSpec]) -> Result<(), Error> {
        if topics.is_empty() {
            return Ok(());
        }
        let admin = self.admin()?;
        let configs: Vec<Vec<(&'static str, String)>> =
            topics.iter().map(TopicSpec::config).collect();
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .zip(&configs)
            .map(|(topic, config)| NewTopic {
                name: &topic.name,
                num_partitions: topic.partitions,
                replication: TopicReplication::Fixed(i32::from(topic.replication_factor)),
                config: config.iter().map(|(k, v)| (*k, v.as_str())).collect(),
            })
            .collect();
        let results = admin
            .create_topics(
                new.iter(),
                &AdminOptions::new().operation_timeout(Some(BROKER_TIMEOUT)),
            )
            .await
            .map_err(Error::CreateTopics)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(Error::CreateTopic { topic, code }),
            }
        }
        Ok(())
    }
}

/// How many partitions `topic` has.
///
/// # Errors
/// [`Error::NoPartitions`] when the topic does not exist (or has no partitions yet), or a
/// broker failure.
pub fn partition_count<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<i32, Error> {
    let metadata = client
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .map_err(|source| Error::Metadata {
            topic: topic.to_string(),
            source,
        })?;
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .and_then(|t| i32::try_from(t.partitions().len()).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::NoPartitions {
            topic: topic.to_string(),
        })
}

/// The low and high watermarks of `partition` of `topic`: its first offset and the offset
/// its next message will get.
///
/// # Errors
/// A broker failure.
pub fn watermarks<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), Error> {
    client
        .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
        .map_err(|source| Error::Watermarks {
            topic: topic.to_string(),
            partition,
            source,
        })
}

/// The last message of each partition of `topic` (`None` for an empty one), read with
/// `consumer` (which is left assigned to the last partition read).
///
/// # Errors
/// [`Error::NoPartitions`] when the topic does not exist, [`Error::Timeout`] when a last
/// message does not come within [`BROKER_TIMEOUT`], or a broker failure.
pub fn last_messages(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<Vec<Option<OwnedMessage>>, Error> {
    let partitions = partition_count(consumer.client(), topic)?;
    let mut last = Vec::new();
    for partition in 0..partitions {
        let (low, high) = watermarks(consumer.client(), topic, partition)?;
        if high <= low {
            last.push(None);
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(high - 1))
            .map_err(Error::Assign)?;
        consumer.assign(&assignment).map_err(Error::Assign)?;
        let deadline = Instant::now() + BROKER_TIMEOUT;
        let message = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::Timeout {
                    topic: topic.to_string(),
                    partition,
                });
            }
            match consumer.poll(remaining.min(Duration::from_millis(500))) {
                Some(Ok(message))
                    if message.partition() == partition && message.offset() == high - 1 =>
                {
                    break message.detach();
                }
                Some(Ok(_)) | None => continue,
                Some(Err(source)) => {
                    return Err(Error::Read {
                        topic: topic.to_string(),
                        source,
                    });
                }
            }
        };
        last.push(Some(message));
    }
    Ok(last)
}

/// Waits for a produced message's delivery report: `Ok` once the broker has the message.
///
/// # Errors
/// [`Error::Delivery`] when the broker did not take it, [`Error::DeliveryDropped`] when the
/// producer went away first.
pub async fn delivered(delivery: DeliveryFuture) -> Result<(), Error> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(Error::Delivery(source)),
        Err(_) => Err(Error::DeliveryDropped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(replication_factor: i16) -> TopicSpec {
        TopicSpec {
            name: "t".into(),
            partitions: 3,
            replication_factor,
            retention: None,
            keep_forever: false,
            max_message_bytes: None,
        }
    }

    #[test]
    fn a_topic_on_several_brokers_needs_all_but_one_in_sync() {
        assert!(spec(1).config().is_empty(), "one replica: the broker's own");
        assert_eq!(spec(2).config(), [("min.insync.replicas", "1".to_string())]);
        assert_eq!(spec(3).config(), [("min.insync.replicas", "2".to_string())]);
    }

    #[test]
    fn an_explicit_retention_is_the_topics_retention_ms() {
        let kept = TopicSpec {
            retention: Some(std::time::Duration::from_secs(7 * 24 * 3600)),
            ..spec(1)
        };
        assert_eq!(kept.config(), [("retention.ms", "604800000".to_string())]);
    }
}
