//! Command-line arguments. Every flag also reads `TIDEMARK_<FLAG>` from the environment.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tidemark_core::{Durability, StoreConfig};

use tidemark_kafka::{KafkaSettings, TopicSettings};
use tidemark_replicator::antientropy::AntiEntropyConfig;
use tidemark_replicator::clocks::MaxClockOffset;
use tidemark_replicator::peers::{
    Peer, PeerCa, PeerHoldLimit, ReplicationConfig, Transport, parse_link_secret,
};

use crate::NodeConfig;

/// Tidemark: a DynamoDB-compatible node whose every write becomes an ordered change stream.
#[derive(Debug, Parser)]
#[command(name = "tidemark", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a node.
    // Boxed: the node's settings outweigh every other command's many times over.
    Serve(Box<ServeArgs>),
    /// Turn a table's publishing to Kafka on or off, or show every table's position and lag
    /// (talks to a running node).
    Publish(PublishArgs),
    /// Expire every item whose TTL has passed, now (talks to a running node).
    TtlSweep(EndpointArgs),
    /// Global tables: each replica link's state and lag, or a table's last conflicts (talks
    /// to a running node).
    Replicas(ReplicasArgs),
    /// The node's tables: a list with items, size, stream and status, or one table described
    /// (talks to a running node).
    Tables(TablesArgs),
    /// A table's DynamoDB stream: follow every shard and its children live (talks to a
    /// running node).
    Stream(StreamArgs),
    /// Export a table as of an instant in the layout of DynamoDB's export to S3, into a
    /// folder under the node's export root (talks to a running node; needs point-in-time
    /// recovery on the table).
    Export(ExportArgs),
    /// Create a table from an export (DynamoDB's or ours) in a folder under the node's
    /// export root (talks to a running node).
    Import(ImportArgs),
    /// Rebuild a table from a Kafka topic Tidemark published (any of its formats), as of an
    /// instant, into a running node (any node: a fresh one after a lost disk).
    Restore(RestoreArgs),
    /// A cluster region: its members, and where the node stands in each log partition
    /// (talks to a running node).
    Cluster(ClusterArgs),
}

/// `tidemark cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ClusterAction,
    /// The node.
    #[command(flatten)]
    pub node: EndpointArgs,
}

/// `tidemark cluster` actions.
#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// The members as the node hears them, and for each log partition it reads: where it
    /// stands, where the log ends, how far behind it is. A table for people; `--json` prints
    /// the node's answer.
    Status {
        /// The node's answer as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// `tidemark restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// Read the changes from a Kafka topic (the one source `restore` reads).
    #[arg(long)]
    pub from_kafka: bool,
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// The table to create.
    #[arg(long)]
    pub table: String,
    /// Whose changes to take from the topic (default: every change in it).
    #[arg(long)]
    pub source_table: Option<String>,
    /// The instant to restore (RFC 3339, or seconds since the epoch); default: the topic's end.
    #[arg(long)]
    pub at: Option<String>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: String,
    /// A librdkafka setting for the client reading the topic, as `key=value` (repeatable),
    /// e.g. `security.protocol=SSL`.
    #[arg(long = "kafka-option", value_parser = parse_option)]
    pub kafka_options: Vec<(String, String)>,
    /// The partition key, as `NAME:TYPE` (default: the messages' key, when it has one
    /// attribute).
    #[arg(long)]
    pub key: Option<String>,
    /// The sort key, as `NAME:TYPE`.
    #[arg(long)]
    pub sort: Option<String>,
    /// Restore what the topic holds even when it lacks the start of the table's history.
    #[arg(long)]
    pub partial: bool,
    /// The node.
    #[command(flatten)]
    pub node: EndpointArgs,
}

/// The format of the data files of `tidemark export` and `tidemark import`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TransferFormat {
    /// DynamoDB JSON, one `{"Item":{...}}` per line.
    DynamodbJson,
    /// Amazon Ion text, one `$ion_1_0 {Item:{...}}` per line.
    Ion,
}

impl TransferFormat {
    /// Its name in the API (`ExportFormat`, `InputFormat`).
    pub fn api_name(self) -> &'static str {
        match self {
            TransferFormat::DynamodbJson => "DYNAMODB_JSON",
            TransferFormat::Ion => "ION",
        }
    }
}

/// `tidemark export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The table.
    #[arg(long)]
    pub table: String,
    /// The instant to export (RFC 3339, or seconds since the epoch); default: now.
    #[arg(long)]
    pub at: Option<String>,
    /// The folder under the node's export root to write into (an export's `S3Bucket`).
    #[arg(long)]
    pub out: String,
    /// A folder inside it (an export's `S3Prefix`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// The data files' format.
    #[arg(long, value_enum, default_value_t = TransferFormat::DynamodbJson)]
    pub format: TransferFormat,
    /// The node.
    #[command(flatten)]
    pub node: EndpointArgs,
}

/// `tidemark import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The folder under the node's export root to read: an export's bucket folder, or any
    /// folder below it holding data files (`.json[.gz]`, or `.ion[.gz]` with `--format ion`).
    #[arg(long)]
    pub from: String,
    /// The data files' format.
    #[arg(long, value_enum, default_value_t = TransferFormat::DynamodbJson)]
    pub format: TransferFormat,
    /// The table to create.
    #[arg(long)]
    pub table: String,
    /// The partition key, as `NAME:TYPE` (`S`, `N` or `B`).
    #[arg(long)]
    pub key: String,
    /// The sort key, as `NAME:TYPE`.
    #[arg(long)]
    pub sort: Option<String>,
    /// The node.
    #[command(flatten)]
    pub node: EndpointArgs,
}

/// `tidemark tables`.
#[derive(Debug, clap::Args)]
pub struct TablesArgs {
    /// What to show (default: the list).
    #[command(subcommand)]
    pub action: Option<TablesAction>,
    /// The node.
    #[command(flatten)]
    pub node: EndpointArgs,
}

/// `tidemark tables` actions.
#[derive(Debug, Subcommand)]
pub enum TablesAction {
    /// Every table, a line each: name, status, items, bytes, stream.
    List,
    /// One table, as DescribeTable answers (JSON).
    Describe {
        /// The table.
        table: String,
    },
}

/// `tidemark stream`.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: StreamAction,
    /// The node.
    #[command(flatten)]
    pub node: EndpointArgs,
}

/// `tidemark stream` actions.
#[derive(Debug, Subcommand)]
pub enum StreamAction {
    /// Print the table's stream records as they come, following every shard and the
    /// children of those that close, until interrupted.
    Tail {
        /// The table.
        table: String,
        /// One JSON record per line (for pipes) instead of a line for people.
        #[arg(long)]
        json: bool,
        /// Start with the oldest record kept instead of the next one.
        #[arg(long)]
        from_start: bool,
    },
}

/// `tidemark replicas`.
#[derive(Debug, clap::Args)]
pub struct ReplicasArgs {
    /// What to show.
    #[command(subcommand)]
    pub action: ReplicasAction,
    /// The node.
    #[command(flatten)]
    pub node: EndpointArgs,
}

/// `tidemark replicas` actions.
#[derive(Debug, Subcommand)]
pub enum ReplicasAction {
    /// Per global table and peer: replica status, lag in records and milliseconds, last
    /// contact; and the replicated changes put aside on the node because they cannot be
    /// applied. A table for people; `--json` prints the node's answer.
    Status {
        /// The node's answer as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The last replicated writes of a table discarded because a newer write had won.
    Conflicts {
        /// The table.
        table: String,
    },
    /// Apply the replicated changes put aside on the node (listed by `status`) again, by last
    /// writer wins: those that apply now, or lost to a newer write, are settled.
    Retry,
    /// Compares a global table with every other region now and repairs what differs; prints,
    /// per region, the cells compared, buckets and cells that differed, cells repaired each
    /// way and items left unresolved.
    Verify {
        /// The table.
        table: String,
    },
}

/// The node an operator command talks to.
#[derive(Debug, clap::Args)]
pub struct EndpointArgs {
    /// The node's address.
    #[arg(
        long,
        env = "TIDEMARK_ENDPOINT",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    pub endpoint: String,
}

/// `tidemark publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: PublishAction,
    /// The node.
    #[command(flatten)]
    pub node: EndpointArgs,
}

/// `tidemark publish` actions.
#[derive(Debug, Subcommand)]
pub enum PublishAction {
    /// Every published table: topic, format, position, lag in records and seconds. A table
    /// for people; `--json` prints the node's answer.
    Status {
        /// The node's answer as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish a table's changes (persists; takes effect at once).
    Enable {
        /// The table.
        #[arg(long)]
        table: String,
        /// `dynamodb`, `kds`, `debezium` or `debezium-tombstones`.
        #[arg(long, default_value = "dynamodb")]
        format: String,
        /// Topic (default: the node's `--topic-template`).
        #[arg(long)]
        topic: Option<String>,
        /// Partitions, if the node creates the topic.
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor, if the node creates the topic.
        #[arg(long)]
        replication_factor: Option<i16>,
        /// `now` (the next change) or `history` (the oldest change still kept).
        #[arg(long, default_value = "now")]
        from: String,
    },
    /// Stop publishing a table.
    Disable {
        /// The table.
        #[arg(long)]
        table: String,
    },
}

/// When writes are acknowledged.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DurabilityArg {
    /// After fsync (group commit): survives power loss.
    Sync,
    /// After the write reaches the OS: survives a process crash.
    Buffer,
}

/// `tidemark serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port to listen on.
    #[arg(long, env = "TIDEMARK_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "TIDEMARK_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// This node's region.
    #[arg(long, env = "TIDEMARK_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Data folder.
    #[arg(long, env = "TIDEMARK_DATA_DIR", default_value = "./tidemark-data")]
    pub data_dir: PathBuf,
    /// When writes are acknowledged.
    #[arg(long, env = "TIDEMARK_DURABILITY", value_enum, default_value_t = DurabilityArg::Sync)]
    pub durability: DurabilityArg,
    /// Account id used in ARNs.
    #[arg(long, env = "TIDEMARK_ACCOUNT_ID", default_value = "000000000000")]
    pub account_id: String,
    /// How long change records are kept, in seconds (fractions allowed).
    #[arg(long, env = "TIDEMARK_HISTORY_WINDOW", default_value = "86400", value_parser = parse_seconds)]
    pub history_window: Duration,
    /// Block cache size in MiB.
    #[arg(long, env = "TIDEMARK_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,
    /// Longest pause between TTL expiry passes, in seconds (the sweeper also wakes at the
    /// next known expiry).
    #[arg(long, env = "TIDEMARK_TTL_PERIOD", default_value = "1", value_parser = parse_seconds)]
    pub ttl_period: Duration,
    /// Shards per generation of a new DynamoDB stream (one, as DynamoDB starts a new table's
    /// stream; more spread a busy table's records over consumers).
    #[arg(long, env = "TIDEMARK_STREAM_SHARDS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=64))]
    pub stream_shards: u8,
    /// How long stream shards stay open before a new generation starts, in seconds.
    #[arg(long, env = "TIDEMARK_SHARD_ROTATION", default_value = "14400", value_parser = parse_seconds)]
    pub shard_rotation: Duration,
    /// Kafka bootstrap servers tables are published to (none: no publishing).
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// A librdkafka setting passed through to every Kafka client, as `key=value` (repeatable),
    /// e.g. `security.protocol=SSL` or `compression.type=zstd`.
    #[arg(long = "kafka-option", value_parser = parse_option)]
    pub kafka_options: Vec<(String, String)>,
    /// Topic name of a published table; `{region}` and `{table}` are replaced.
    #[arg(
        long,
        env = "TIDEMARK_TOPIC_TEMPLATE",
        default_value = "tidemark.{region}.{table}"
    )]
    pub topic_template: String,
    /// Partitions of the topics the node creates.
    #[arg(long, env = "TIDEMARK_TOPIC_PARTITIONS", default_value_t = 3)]
    pub topic_partitions: i32,
    /// Replication factor of the topics the node creates.
    #[arg(long, env = "TIDEMARK_TOPIC_REPLICATION", default_value_t = 1)]
    pub topic_replication_factor: i16,
    /// Unpublished records of a table past which the node logs a loud warning (they are kept
    /// past the history window until published).
    #[arg(long, env = "TIDEMARK_PUBLISH_LAG_WARN", default_value_t = 1_000_000)]
    pub publish_lag_warn: u64,
    /// Another region's node, as `REGION=URL` (repeatable; `TIDEMARK_PEERS` takes a comma
    /// list): global tables replicate to it, and all traffic to that region goes to the URL.
    #[arg(long = "peer", env = "TIDEMARK_PEERS", value_delimiter = ',', value_parser = Peer::parse)]
    pub peers: Vec<Peer>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "TIDEMARK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TIDEMARK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A file of the access keys requests must be signed with (AWS Signature Version 4), a
    /// line `ACCESS_KEY_ID SECRET` each. Without it, the node takes unsigned requests.
    #[arg(long, env = "TIDEMARK_CREDENTIALS")]
    pub credentials: Option<PathBuf>,
    /// The secret every node of the group shares; peer requests without it are refused.
    /// Required when a peer is not on this machine, unless every link has its own secret
    /// (--peer-link-secret). It does not tell regions apart: any node holding it can pass as
    /// any region.
    #[arg(long, env = "TIDEMARK_PEER_SECRET", hide_env_values = true)]
    pub peer_secret: Option<String>,
    /// The secret of the link to a peer, as `REGION=SECRET` (repeatable, one per peer;
    /// `TIDEMARK_PEER_LINK_SECRETS` takes a comma list): the same value on both ends of that
    /// link and nowhere else, so a request carrying it comes from that region. Instead of
    /// --peer-secret.
    #[arg(
        long = "peer-link-secret",
        env = "TIDEMARK_PEER_LINK_SECRETS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = parse_link_secret
    )]
    pub peer_link_secrets: Vec<(String, String)>,
    /// A PEM file of the certificate authorities `https://` peers' certificates are checked
    /// against, besides the system's roots (a private CA).
    #[arg(long, env = "TIDEMARK_PEER_CA", value_parser = parse_peer_ca)]
    pub peer_ca: Option<PeerCa>,
    /// How replicated changes travel: `direct` (to every peer over HTTP) or `kafka` (through
    /// a topic per region and table on `KAFKA_BROKERS`).
    #[arg(long, env = "TIDEMARK_REPLICATION_TRANSPORT", value_enum, default_value_t = TransportArg::Direct)]
    pub replication_transport: TransportArg,
    /// How old, in seconds, the history kept for a peer that does not answer may grow before
    /// it is let go: the peer's replica is then reported as needing a re-seed, and disk use
    /// stops growing for it. Default: a day.
    #[arg(long, env = "TIDEMARK_PEER_HOLD_LIMIT", default_value = "86400", value_parser = parse_seconds)]
    pub peer_hold_limit: Duration,
    /// How far apart two regions' clocks may be, in seconds: changes stamped further ahead of
    /// this node's clock are refused until the clocks agree, and a node this far from most of
    /// its peers refuses client writes until its clock is fixed.
    #[arg(long, env = "TIDEMARK_MAX_CLOCK_OFFSET", default_value = "0.5", value_parser = parse_clock_offset)]
    pub max_clock_offset: Duration,
    /// How long the replication topics the node creates keep a message (`retention.ms`), in
    /// seconds: a region that stays away longer cannot catch up through them and is
    /// reported as needing a re-seed.
    #[arg(long, env = "TIDEMARK_REPLICATION_TOPIC_RETENTION", default_value = "604800", value_parser = parse_seconds)]
    pub replication_topic_retention: Duration,
    /// The folder exports are written to and imports read from: an `S3Bucket` names a folder
    /// in it (default: `exports` in the data folder).
    #[arg(long, env = "TIDEMARK_EXPORT_ROOT")]
    pub export_root: Option<PathBuf>,
    /// How often each global table is compared with its other replicas and repaired
    /// (anti-entropy), in seconds, jittered by ±50 %; 0 turns it off.
    #[arg(long, env = "TIDEMARK_ANTI_ENTROPY_INTERVAL", default_value = "600", value_parser = parse_seconds)]
    pub anti_entropy_interval: Duration,
    /// Most cells a background anti-entropy comparison scans per second on each side
    /// (0: no limit).
    #[arg(long, env = "TIDEMARK_ANTI_ENTROPY_RATE", default_value_t = 200_000)]
    pub anti_entropy_rate: u64,
    /// Make this node part of the cluster region NAME: every write goes through the region's
    /// logs on --kafka-brokers (topics `tidemark.NAME.*`), in order, and every node applies
    /// them. The data folder must be new to the cluster or already one of its nodes'.
    #[arg(long, env = "TIDEMARK_CLUSTER", requires = "kafka_brokers")]
    pub cluster: Option<String>,
    /// Partitions of the log of a table created on a cluster region (fixed for the table's
    /// life).
    #[arg(long, env = "TIDEMARK_CLUSTER_PARTITIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cluster_partitions: u32,
    /// The URL the region's other nodes and its operators reach this node at (default:
    /// `http://` and the address it listens on).
    #[arg(long, env = "TIDEMARK_ADVERTISE", requires = "cluster")]
    pub advertise: Option<String>,
}

/// How replicated changes travel.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TransportArg {
    /// Node to node over HTTP.
    Direct,
    /// Through Kafka.
    Kafka,
}

/// Parses `key=value`.
///
/// # Errors
/// A message when there is no `=`.
pub fn parse_option(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("'{text}' is not key=value"))
}

/// Reads a `--peer-ca` file.
///
/// # Errors
/// A message when the file cannot be read or holds no usable certificate.
pub fn parse_peer_ca(text: &str) -> Result<PeerCa, String> {
    PeerCa::load(std::path::Path::new(text)).map_err(|e| e.to_string())
}

/// Parses a period in seconds, fractions allowed (`0.5`, `86400`).
///
/// # Errors
/// A message when the text is not a non-negative number of seconds.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("'{text}': {e}"))
}

/// Parses `--max-clock-offset`: seconds, at least a millisecond (no two clocks agree closer).
///
/// # Errors
/// Not a number of seconds, or less than a millisecond.
pub fn parse_clock_offset(text: &str) -> Result<Duration, String> {
    let bound = parse_seconds(text)?;
    match bound >= Duration::from_millis(1) {
        true => Ok(bound),
        false => Err(format!("'{text}' is less than a millisecond")),
    }
}

impl RestoreArgs {
    /// The Kafka cluster to read from, with every `--kafka-option` (it creates no topic).
    pub fn kafka_settings(&self) -> KafkaSettings {
        KafkaSettings {
            options: self.kafka_options.clone(),
            ..KafkaSettings::new(self.brokers.clone())
        }
    }
}

impl ServeArgs {
    /// The access keys of `--credentials`, if given.
    ///
    /// # Errors
    /// The file cannot be read, or is not lines of a key and a secret.
    pub fn credentials(
        &self,
    ) -> Result<Option<crate::server::auth::Credentials>, crate::NodeError> {
        self.credentials
            .as_deref()
            .map(crate::server::auth::Credentials::load)
            .transpose()
            .map_err(crate::NodeError::from)
    }

    /// The node configuration these arguments describe.
    pub fn node_config(&self) -> NodeConfig {
        let kafka = self.kafka_settings();
        let mut store = StoreConfig::new(&self.data_dir);
        store.region = self.region.clone();
        store.account_id = self.account_id.clone();
        store.durability = match self.durability {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Buffer => Durability::Buffer,
        };
        store.history_window = self.history_window;
        store.cache_bytes = self.cache_mb * 1024 * 1024;
        store.stream_shards = self.stream_shards;
        let mut config = NodeConfig::new(SocketAddr::new(self.host, self.port), store);
        config.ttl_period = self.ttl_period;
        config.shard_rotation_period = self.shard_rotation.max(Duration::from_millis(10));
        config.kafka = self.kafka_brokers.is_some().then(|| kafka.clone());
        config.publish_lag_warn_records = self.publish_lag_warn;
        config.tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::server::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        config.replication = ReplicationConfig {
            region: self.region.clone(),
            peers: self.peers.clone(),
            secret: self.peer_secret.clone(),
            link_secrets: self.peer_link_secrets.clone(),
            peer_ca: self.peer_ca.clone(),
            transport: match self.replication_transport {
                TransportArg::Direct => Transport::Direct,
                TransportArg::Kafka => Transport::Kafka {
                    cluster: kafka,
                    topic_retention: self.replication_topic_retention,
                },
            },
            peer_hold_limit: PeerHoldLimit(self.peer_hold_limit),
            max_clock_offset: MaxClockOffset(self.max_clock_offset),
        };
        config.anti_entropy = AntiEntropyConfig {
            interval: self.anti_entropy_interval,
            cells_per_second: self.anti_entropy_rate,
        };
        config.export_root = self.export_root.clone();
        config.topic_template = self.topic_template.clone();
        config.cluster = self
            .cluster
            .clone()
            .map(|name| crate::cluster::ClusterConfig {
                name,
                kafka: self.kafka_settings(),
                partitions: self.cluster_partitions,
                advertise: self.advertise.clone(),
            });
        config
    }

    /// The Kafka cluster of `--kafka-brokers`, with every `--kafka-option` and the topic
    /// settings: what every Kafka client of the node (publishers, replication) is made from.
    /// Without `--kafka-brokers` its brokers are empty (replication through Kafka refuses
    /// that).
    pub fn kafka_settings(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.kafka_brokers.clone().unwrap_or_default(),
            options: self.kafka_options.clone(),
            topics: TopicSettings {
                partitions: self.topic_partitions,
                replication_factor: self.topic_replication_factor,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_take_fractions() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn the_clock_offset_bound_defaults_to_half_a_second_and_must_be_a_millisecond_or_more() {
        let bound = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["tidemark", "serve"], args].concat())?;
            let Command::Serve(args) = cli.command else {
                panic!("serve parses as serve");
            };
            Ok::<_, clap::Error>(args.node_config().replication.max_clock_offset)
        };
        assert_eq!(
            bound(&[]).unwrap(),
            MaxClockOffset(Duration::from_millis(500))
        );
        assert_eq!(
            bound(&["--max-clock-offset", "2"]).unwrap(),
            MaxClockOffset(Duration::from_secs(2))
        );
        let refused = bound(&["--max-clock-offset", "0"]).unwrap_err().to_string();
        assert!(refused.contains("less than a millisecond"), "{refused}");
    }

    #[test]
    fn defaults_match_the_readme() {
        let cli = Cli::parse_from(["tidemark", "serve"]);
        let Command::Serve(args) = cli.command else {
            panic!("serve parses as serve");
        };
        let config = args.node_config();
        assert_eq!(config.listen.port(), 8000);
        assert_eq!(config.store.durability, Durability::Sync);
        assert_eq!(config.store.data_dir, PathBuf::from("./tidemark-data"));
    }

    #[test]
    fn the_peer_hold_limit_is_a_day_unless_set() {
        let limit = |extra: &[&str]| {
            let cli = Cli::parse_from([["tidemark", "serve"].as_slice(), extra].concat());
            let Command::Serve(args) = cli.command else {
                panic!("serve parses as serve");
            };
            args.node_config().replication.peer_hold_limit
        };
        assert_eq!(limit(&[]), PeerHoldLimit(Duration::from_secs(86_400)));
        assert_eq!(
            limit(&["--peer-hold-limit", "3600"]),
            PeerHoldLimit(Duration::from_secs(3_600))
        );
    }

    #[test]
    fn link_secrets_and_the_peer_ca_reach_the_replication_settings() {
        let cli = Cli::parse_from([
            "tidemark",
            "serve",
            "--peer-link-secret",
            "us-east-1=c2VjcmV0==",
            "--peer-link-secret",
            "ap-south-1=other",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve parses as serve");
        };
        let replication = args.node_config().replication;
        assert_eq!(
            replication.link_secrets,
            vec![
                ("us-east-1".to_string(), "c2VjcmV0==".to_string()),
                ("ap-south-1".to_string(), "other".to_string())
            ]
        );
        assert_eq!(replication.secret, None);
        assert_eq!(replication.peer_ca, None);
        let refused = Cli::try_parse_from(["tidemark", "serve", "--peer-link-secret", "no-region"])
            .expect_err("a link secret names its region");
        assert!(
            refused.to_string().contains("expected REGION=SECRET"),
            "{refused}"
        );
        let refused = Cli::try_parse_from(["tidemark", "serve", "--peer-ca", "/no/such/ca.pem"])
            .expect_err("a peer CA that cannot be read stops the node");
        assert!(
            refused
                .to_string()
                .contains("cannot read the peer CA /no/such/ca.pem"),
            "{refused}"
        );
    }

    #[test]
    fn kafka_options_and_topic_settings_reach_every_kafka_client_alike() {
        let option = ("security.protocol".to_string(), "SSL".to_string());
        let cli = Cli::parse_from([
            "tidemark",
            "serve",
            "--kafka-brokers",
            "b:9092",
            "--kafka-option",
            "security.protocol=SSL",
            "--topic-partitions",
            "6",
            "--topic-replication-factor",
            "3",
            "--replication-transport",
            "kafka",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve parses as serve");
        };
        let config = args.node_config();
        let kafka = config.kafka.expect("publishing has the cluster");
        assert_eq!(kafka.brokers, "b:9092");
        assert_eq!(kafka.options, std::slice::from_ref(&option));
        assert_eq!(
            kafka.topics,
            TopicSettings {
                partitions: 6,
                replication_factor: 3
            }
        );
        assert_eq!(
            config.replication.transport,
            Transport::Kafka {
                cluster: kafka,
                topic_retention: Duration::from_secs(7 * 24 * 3600),
            },
            "replication uses the same cluster, options and topic settings"
        );

        let cli = Cli::parse_from([
            "tidemark",
            "restore",
            "--from-kafka",
            "--topic",
            "t",
            "--table",
            "restored",
            "--brokers",
            "b:9092",
            "--kafka-option",
            "security.protocol=SSL",
        ]);
        let Command::Restore(args) = cli.command else {
            panic!("restore parses as restore");
        };
        assert_eq!(args.kafka_settings().options, [option]);
    }
}
