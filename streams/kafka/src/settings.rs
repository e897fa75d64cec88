//! How the node reaches its Kafka cluster ([`KafkaSettings`]), the settings of the topics it
//! creates there ([`TopicSettings`]), and every client built from them: one function
//! ([`KafkaSettings::client_config`]) lays the operator's options over each client's own
//! defaults, so an option such as `security.protocol=SSL` reaches every client alike.

use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::FromClientConfig;

use crate::Error;

/// The node's Kafka cluster: where it is, every `--kafka-option`, and the settings of the
/// topics the node creates there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Further librdkafka settings (security, compression, ...), passed to every client.
    pub options: Vec<(String, String)>,
    /// The topics the node creates.
    pub topics: TopicSettings,
}

/// How the node creates topics (`--topic-partitions`, `--topic-replication-factor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSettings {
    /// Partitions of a created topic, where its user does not choose them.
    pub partitions: i32,
    /// Replication factor of every created topic.
    pub replication_factor: i16,
}

impl Default for TopicSettings {
    fn default() -> Self {
        TopicSettings {
            partitions: 3,
            replication_factor: 1,
        }
    }
}

impl KafkaSettings {
    /// The cluster at `brokers`, with no further options and default topic settings.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            options: Vec::new(),
            topics: TopicSettings::default(),
        }
    }

    /// The configuration of a client: `bootstrap.servers`, then the client's `defaults`, then
    /// the operator's options over them, then what the client `requires` (what its
    /// correctness rests on, so no option changes it).
    pub fn client_config(
        &self,
        defaults: &[(&str, &str)],
        requires: &[(&str, &str)],
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.options {
            config.set(key, value);
        }
        for (key, value) in requires {
            config.set(*key, *value);
        }
        config
    }

    /// An idempotent producer (`acks=all` unless the operator says otherwise) with `tuning`
    /// under the operator's options. Idempotence is what makes the producer's retries safe,
    /// so no option turns it off.
    ///
    /// # Errors
    /// [`Error::Client`] for settings librdkafka refuses.
    pub fn producer<P: FromClientConfig>(&self, tuning: &[(&str, &str)]) -> Result<P, Error> {
        let defaults: Vec<(&str, &str)> = [("acks", "all")]
            .into_iter()
            .chain(tuning.iter().copied())
            .collect();
        self.client_config(&defaults, &[("enable.idempotence", "true")])
            .create()
            .map_err(|source| Error::Client {
                client: "producer",
                source,
            })
    }

    /// A consumer of the partitions its caller assigns, in consumer group `group`, with
    /// `tuning` under the operator's options. It never commits offsets and reports no
    /// partition end: where it stands is its caller's.
    ///
    /// # Errors
    /// [`Error::Client`] for settings librdkafka refuses.
    pub fn consumer<C: FromClientConfig>(
        &self,
        group: &str,
        tuning: &[(&str, &str)],
    ) -> Result<C, Error> {
        self.client_config(
            tuning,
            &[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
            ],
        )
        .create()
        .map_err(|source| Error::Client {
            client: "consumer",
            source,
        })
    }

    /// An admin client.
    ///
    /// # Errors
    /// [`Error::Client`] for settings librdkafka refuses.
    pub fn admin(&self) -> Result<AdminClient<DefaultClientContext>, Error> {
        self.client_config(&[], &[])
            .create()
            .map_err(|source| Error::Client {
                client: "admin client",
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KafkaSettings {
        KafkaSettings {
            brokers: "b1:9092,b2:9092".into(),
            options: vec![
                ("security.protocol".into(), "SSL".into()),
                ("linger.ms".into(), "50".into()),
                ("enable.idempotence".into(), "false".into()),
                ("group.id".into(), "theirs".into()),
            ],
            topics: TopicSettings::default(),
        }
    }

    #[test]
    fn every_client_carries_every_option_over_its_defaults_and_under_what_it_requires() {
        let config = settings().client_config(
            &[("linger.ms", "5"), ("acks", "all")],
            &[("enable.idempotence", "true")],
        );
        assert_eq!(config.get("bootstrap.servers"), Some("b1:9092,b2:9092"));
        assert_eq!(config.get("security.protocol"), Some("SSL"));
        assert_eq!(
            config.get("linger.ms"),
            Some("50"),
            "an option beats a default"
        );
        assert_eq!(
            config.get("acks"),
            Some("all"),
            "a default the options leave stays"
        );
        assert_eq!(
            config.get("enable.idempotence"),
            Some("true"),
            "what a client requires beats the options"
        );
        assert_eq!(config.get("group.id"), Some("theirs"));
        assert_eq!(
            settings()
                .client_config(&[], &[("group.id", "ours")])
                .get("group.id"),
            Some("ours")
        );
    }

    #[test]
    fn producers_consumers_and_admin_clients_are_made_from_the_options() {
        let mut kafka = settings();
        kafka.options.retain(|(key, _)| key != "security.protocol");
        assert!(
            kafka
                .producer::<rdkafka::producer::FutureProducer>(&[])
                .is_ok()
        );
        assert!(
            kafka
                .consumer::<rdkafka::consumer::BaseConsumer>("g", &[])
                .is_ok()
        );
        assert!(kafka.admin().is_ok());
        kafka.options.push(("no.such.setting".into(), "1".into()));
        let refused = kafka.producer::<rdkafka::producer::FutureProducer>(&[]);
        assert!(
            matches!(
                &refused,
                Err(Error::Client {
                    client: "producer",
                    ..
                })
            ),
            "an option librdkafka does not know reaches the client and is refused"
        );
        assert!(kafka.admin().is_err());
    }
}
