//! Why a Kafka client, a topic lookup or a delivery failed.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why talking to Kafka failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// librdkafka refused the client's settings.
    #[error("cannot create the Kafka {client}: {source}")]
    Client {
        /// Which client (`producer`, `consumer`, `admin client`).
        client: &'static str,
        /// librdkafka's reason.
        source: KafkaError,
    },
    /// The request to create topics failed.
    #[error("cannot create topics: {0}")]
    CreateTopics(#[source] KafkaError),
    /// The broker did not create a topic.
    #[error("cannot create topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// The broker did not say what a topic is.
    #[error("no metadata for {topic}: {source}")]
    Metadata {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        source: KafkaError,
    },
    /// The topic does not exist, or has no partitions yet.
    #[error("topic {topic} has no partitions")]
    NoPartitions {
        /// The topic.
        topic: String,
    },
    /// The broker did not give a partition's offsets.
    #[error("no offsets for {topic}/{partition}: {source}")]
    Watermarks {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// librdkafka's reason.
        source: KafkaError,
    },
    /// Partitions could not be assigned to a consumer.
    #[error("cannot assign the partitions to read: {0}")]
    Assign(#[source] KafkaError),
    /// Reading a topic failed.
    #[error("reading {topic}: {source}")]
    Read {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        source: KafkaError,
    },
    /// A partition's last message did not come in time.
    #[error("cannot read the last message of {topic}/{partition}")]
    Timeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The producer did not take a message (beyond a full queue, which callers handle).
    #[error("cannot queue a message: {0}")]
    Produce(#[source] KafkaError),
    /// The broker did not take a produced message.
    #[error("the broker did not take a message: {0}")]
    Delivery(#[source] KafkaError),
    /// The producer went away before a message's delivery report.
    #[error("the producer dropped a message")]
    DeliveryDropped,
}
