//! Who is in the cluster region: every node writes a heartbeat (its advertised URL and its
//! clock's time) into `tidemark.<cluster>.members` each second and reads everyone's, so each
//! node knows which nodes are live (heard from within the session timeout). Membership
//! decides what the status shows, and will decide placement; never correctness, which rests
//! on the logs' order alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tidemark_kafka::topics::TopicSpec;
use tokio_util::sync::CancellationToken;

use super::Cluster;

/// How often a node says it is there.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// How long a member stays live without a heartbeat.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// How long the members log keeps a heartbeat.
const MEMBERS_RETENTION: Duration = Duration::from_secs(3600);

/// One heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Heartbeat {
    /// The node, by its advertised URL.
    node: String,
    /// Its clock, in milliseconds since the Unix epoch.
    at: u64,
    /// True in the last heartbeat of a node that stops.
    #[serde(default)]
    leaving: bool,
}

/// The members one node has heard from, and when.
#[derive(Debug)]
pub struct Members {
    me: String,
    heard: Mutex<BTreeMap<String, Heartbeat>>,
}

/// A member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Member {
    /// The node's advertised URL.
    pub node: String,
    /// Milliseconds since its last heartbeat, by this node's clock.
    pub last_heartbeat_ms_ago: u64,
    /// Heard from within the session timeout, and not leaving.
    pub live: bool,
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Members {
    /// The members as `me` sees them (it is always one).
    pub(crate) fn new(me: String) -> Members {
        Members {
            me,
            heard: Mutex::default(),
        }
    }

    /// This node's advertised URL.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Every member heard from, live or not, in URL order, as of `now` (ms).
    pub fn view(&self, now: u64) -> Vec<Member> {
        let timeout = u64::try_from(SESSION_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        let heard = self.heard.lock();
        let mut members: Vec<Member> = heard
            .values()
            .map(|beat| {
                let ago = now.saturating_sub(beat.at);
                Member {
                    node: beat.node.clone(),
                    last_heartbeat_ms_ago: ago,
                    live: beat.node == self.me || (!beat.leaving && ago < timeout),
                }
            })
            .collect();
        if !heard.contains_key(&self.me) {
            members.push(Member {
                node: self.me.clone(),
                last_heartbeat_ms_ago: 0,
                live: true,
            });
            members.sort_by(|a, b| a.node.cmp(&b.node));
        }
        members
    }

    /// The live members now.
    pub fn live(&self) -> Vec<String> {
        (self.view(now_millis()).into_iter())
            .filter(|m| m.live)
            .map(|m| m.node)
            .collect()
    }

    fn heard(&self, beat: Heartbeat) {
        let mut heard = self.heard.lock();
        // Heartbeats of one node come in order; an older one read late changes nothing.
        if heard
            .get(&beat.node)
            .is_none_or(|known| known.at <= beat.at)
        {
            heard.insert(beat.node.clone(), beat);
        }
    }
}

impl Cluster {
    /// The members log.
    fn members_log(&self) -> String {
        format!("tidemark.{}.members", self.config.name)
    }

    /// Sends this node's heartbeat.
    async fn heartbeat(&self, leaving: bool) {
        let beat = Heartbeat {
            node: self.members.me.clone(),
            at: now_millis(),
            leaving,
        };
        let value = serde_json::to_vec(&beat).unwrap_or_default();
        let log = self.members_log();
        let record = FutureRecord::to(&log)
            .partition(0)
            .key(beat.node.as_bytes())
            .payload(&value);
        match self.producer.send_result(record) {
            Ok(delivery) => {
                if let Err(e) = tidemark_kafka::topics::delivered(delivery).await {
                    tracing::warn!("heartbeat not delivered: {e}");
                }
            }
            Err((e, _)) => tracing::warn!("heartbeat not sent: {e}"),
        }
    }
}

/// Runs this node's membership until `shutdown`: its heartbeats, and a reader of everyone's
/// on its own thread; the last heartbeat says the node leaves.
pub(crate) async fn run_membership(
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let spec = TopicSpec {
        name: cluster.members_log(),
        partitions: 1,
        replication_factor: cluster.config.kafka.topics.replication_factor,
        retention: Some(MEMBERS_RETENTION),
        keep_forever: false,
        max_message_bytes: None,
    };
    (cluster.config.kafka.ensure_topics(&[spec]).await)
        .map_err(|e| format!("creating the members log: {e}"))?;
    let reading = cluster.clone();
    let stop_reading = shutdown.clone();
    let reader = tokio::task::spawn_blocking(move || read_members(&reading, &stop_reading));
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => cluster.heartbeat(false).await,
            () = shutdown.cancelled() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), cluster.heartbeat(true)).await;
    reader.await.map_err(|e| e.to_string())?
}

/// Reads every heartbeat since a little before the session timeout into the members.
fn read_members(cluster: &Cluster, shutdown: &CancellationToken) -> Result<(), String> {
    let log = cluster.members_log();
    let consumer: BaseConsumer = (cluster.config.kafka)
        .consumer(
            &format!("tidemark-{}-members", cluster.config.name),
            &[
                ("fetch.wait.max.ms", "100"),
                ("auto.offset.reset", "latest"),
            ],
        )
        .map_err(|e| e.to_string())?;
    let since =
        now_millis().saturating_sub(2 * u64::try_from(SESSION_TIMEOUT.as_millis()).unwrap_or(0));
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset(&log, 0, Offset::Offset(i64::try_from(since).unwrap_or(0)))
        .map_err(|e| e.to_string())?;
    let from = consumer
        .offsets_for_times(wanted, tidemark_kafka::BROKER_TIMEOUT)
        .map_err(|e| format!("the members log: {e}"))?;
    consumer
        .assign(&from)
        .map_err(|e| format!("the members log: {e}"))?;
    while !shutdown.is_cancelled() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                if let Some(beat) = message
                    .payload()
                    .and_then(|bytes| serde_json::from_slice::<Heartbeat>(bytes).ok())
                {
                    cluster.members.heard(beat);
                }
            }
            Some(Err(e)) => {
                tracing::warn!("reading the members log: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(node: &str, at: u64, leaving: bool) -> Heartbeat {
        Heartbeat {
            node: node.into(),
            at,
            leaving,
        }
    }

    #[test]
    fn a_member_is_live_while_heard_from_within_the_timeout_and_not_leaving() {
        let members = Members::new("http://b".into());
        members.heard(beat("http://a", 10_000, false));
        members.heard(beat("http://c", 10_000, false));
        members.heard(beat("http://c", 9_000, true));
        members.heard(beat("http://d", 10_000, true));
        let live_at = |now| -> Vec<String> {
            (members.view(now).into_iter())
                .filter(|m| m.live)
                .map(|m| m.node)
                .collect()
        };
        assert_eq!(
            live_at(12_000),
            ["http://a", "http://b", "http://c"],
            "an older heartbeat read late changes nothing; a leaving one ends the member"
        );
        assert_eq!(
            live_at(10_000 + 6_000),
            ["http://b"],
            "this node is always a member of its own view"
        );
    }
}
