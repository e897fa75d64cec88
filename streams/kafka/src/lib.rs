//! tidemark-kafka: the one place the node's Kafka clients are configured and its topics made.
//!
//! Three parts of Tidemark talk to Kafka: the publishers (`tidemark-streams`, a topic per
//! published table), the Kafka restore (`tidemark restore --from-kafka`, which reads such a
//! topic back) and the replication transport (`tidemark-replicator`, a topic per region and
//! table). They all start from one [`KafkaSettings`], built once from the command line, and
//! this crate owns what they share:
//!
//! - [`settings`]: the cluster, every `--kafka-option` and the settings of the topics the node
//!   creates, and the clients built from them (a producer, a consumer or an admin client: the
//!   operator's options reach every one);
//! - [`topics`]: creating missing topics ([`TopicSpec`]: partitions, replication factor and
//!   `min.insync.replicas`), and reading a topic's partition count, watermarks and last
//!   messages;
//! - [`BROKER_TIMEOUT`]: how long a call to a broker may wait for its answer;
//! - [`Backoff`]: how long a client waits before trying again;
//! - [`Error`]: why any of it failed.
//!
//! What goes into the messages (formats, headers, partitioning) stays with each caller.
#![deny(missing_docs)]

mod error;
pub mod settings;
pub mod topics;

use std::time::Duration;

pub use error::Error;
pub use settings::{KafkaSettings, TopicSettings};
pub use topics::TopicSpec;

/// Longest wait for a broker's answer: metadata, watermarks, topic creation, a partition's
/// last message.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The retry backoff of the node's Kafka work: 100 ms, doubling up to 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// The first wait.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// The longest wait.
    pub const MAX: Duration = Duration::from_secs(5);

    /// A backoff at its first wait.
    pub fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The wait before the next attempt; the one after it is twice as long (up to
    /// [`Backoff::MAX`]).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }

    /// Starts over at the first wait (after a success).
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100_ms_to_5_s_and_starts_over_after_a_success() {
        let mut backoff = Backoff::new();
        let waits: Vec<u128> = (0..8).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_millis(100));
    }
}
