//! Partitions of replication topics the reader has stopped reading, and the two decisions
//! that stop one, each a pure function: what to do with a message read
//! ([`judge_message`]: apply it, or stop at it when it does not decode, never skip it) and
//! where to start reading a partition ([`starting_point`]: at the saved position, or nowhere
//! when the topic no longer holds it, the region then needing a re-seed).
//!
//! A stopped partition keeps its read position (the offset of the message it stopped at, or
//! the saved one), is left out of the consumer's assignment, and is listed with its topic,
//! offset and error in `GET /admin/replicas`; the other partitions and topics go on.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::read_message;
use crate::protocol::WireChange;

/// Why a partition is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopKind {
    /// A message does not decode (damaged, or a batch format this node does not know yet:
    /// a rolling upgrade): reading stops at it, and is retried every little while, so a node
    /// upgraded in place reads on.
    Undecodable,
    /// The saved read position is no longer in the topic (its retention removed messages this
    /// region had not read, or the broker lost messages it had): the changes in between are
    /// gone, so the region's replica must be seeded again.
    NeedsReseed,
    /// A message of region R's topic holds a change stamped by another region (R's topic
    /// carries only R's own changes): reading stops at it, never applying or skipping it, and
    /// is retried like an undecodable one.
    ForeignChange,
}

/// A partition of a replication topic that is not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoppedPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Where reading stands: the offset of the message that does not decode, or the saved
    /// position the topic no longer holds.
    pub offset: i64,
    /// Why it stopped.
    pub state: StopKind,
    /// What is wrong, in words.
    pub error: String,
    /// When it stopped, in milliseconds since the epoch.
    pub since_millis: u64,
}

/// Every stopped partition of this node's reader, by topic and partition: shared with the
/// operators' view.
#[derive(Debug, Default)]
pub(crate) struct TopicStops {
    stopped: Mutex<BTreeMap<(String, i32), StoppedPartition>>,
}

impl TopicStops {
    /// Records `stop`.
    pub(crate) fn record(&self, stop: StoppedPartition) {
        self.stopped
            .lock()
            .insert((stop.topic.clone(), stop.partition), stop);
    }

    /// Whether `partition` of `topic` is stopped.
    pub(crate) fn contains(&self, topic: &str, partition: i32) -> bool {
        self.stopped
            .lock()
            .contains_key(&(topic.to_string(), partition))
    }

    /// Takes every stop of `kind` away (to be decided again), and returns them.
    pub(crate) fn clear(&self, kind: StopKind) -> Vec<StoppedPartition> {
        let mut stopped = self.stopped.lock();
        let (cleared, kept) = std::mem::take(&mut *stopped)
            .into_iter()
            .partition(|(_, stop)| stop.state == kind);
        *stopped = kept;
        cleared.into_values().collect()
    }

    /// Whether any partition is stopped for `kind`.
    pub(crate) fn any(&self, kind: StopKind) -> bool {
        self.stopped.lock().values().any(|stop| stop.state == kind)
    }

    /// The stopped partitions of `topic`.
    pub(crate) fn of_topic(&self, topic: &str) -> Vec<StoppedPartition> {
        self.stopped
            .lock()
            .values()
            .filter(|stop| stop.topic == topic)
            .cloned()
            .collect()
    }
}

/// What to do with a message read from a replication topic.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Apply its changes; its delivered-through clocks hold once they are applied.
    Apply(Vec<WireChange>, Vec<u64>),
    /// Stop reading its partition at it, for this reason: a message is never skipped, since
    /// the changes it holds would be lost for good.
    Stop(String),
}

/// What to do with a message whose payload is `payload`.
pub(crate) fn judge_message(payload: Option<&[u8]>) -> Verdict {
    match payload.map(read_message) {
        Some(Ok((changes, clocks))) => Verdict::Apply(changes, clocks),
        Some(Err(e)) => Verdict::Stop(format!("a replication message does not decode: {e}")),
        None => Verdict::Stop("a replication message without a payload".into()),
    }
}

/// Where reading a partition starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// From the topic's first message: this node never read the partition.
    Beginning,
    /// From this offset.
    At(i64),
    /// Nowhere: the topic no longer holds the saved position (see [`StopKind::NeedsReseed`]).
    NeedsReseed(String),
}

/// Where to start reading a partition whose saved position (the next offset to read) is
/// `saved` (0: this node never read a message of it), given its low and high watermarks.
///
/// IMPORTANT: this is the one place that notices changes lost between regions through Kafka.
/// A saved position below the low watermark means messages this region had not read were
/// removed (retention, or a broker that lost its log); above the high watermark, that the
/// broker lost messages this region had read (or the topic was made again): reading on from
/// the nearest offset would silently drop what is in between, so the region needs a re-seed.
pub(crate) fn starting_point(saved: i64, low: i64, high: i64) -> Start {
    if saved == 0 {
        return Start::Beginning;
    }
    if saved < low {
        return Start::NeedsReseed(format!(
            "the saved read position {saved} is below the topic's first offset {low}: \
             messages {saved}..{low} were removed (retention) before this region read them"
        ));
    }
    if saved > high {
        return Start::NeedsReseed(format!(
            "the saved read position {saved} is past the topic's end {high}: the broker lost \
             messages this region had read, or the topic was made again"
        ));
    }
    Start::At(saved)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tidemark_core::model::{AttributeValue, Item};

    use super::*;
    use crate::protocol::ChangeBatch;

    fn change() -> WireChange {
        let keys: Item = [("p".to_string(), AttributeValue::S("k".into()))].into();
        WireChange {
            table: "t".into(),
            keys: keys.clone(),
            new_image: Some(keys),
            clock: 7,
            region: "us".into(),
        }
    }

    #[test]
    fn a_message_that_does_not_decode_stops_its_partition_and_is_never_skipped() {
        let batch = ChangeBatch {
            changes: vec![change()],
            delivered: BTreeMap::from([("t".into(), 9)]),
        };
        let encoded = batch.encode();
        assert_eq!(
            judge_message(Some(&encoded)),
            Verdict::Apply(vec![change()], vec![9])
        );
        let mut newer_format = encoded.clone();
        if let Some(format) = newer_format.first_mut() {
            *format = format.wrapping_add(1);
        }
        let Verdict::Stop(why) = judge_message(Some(&newer_format)) else {
            panic!("a batch format this node does not know is applied");
        };
        assert!(why.contains("unknown change batch format"), "{why}");
        assert!(matches!(
            judge_message(Some(b"\x01garbage")),
            Verdict::Stop(_)
        ));
        assert!(matches!(
            judge_message(Some(&encoded[..encoded.len() - 1])),
            Verdict::Stop(_)
        ));
        assert!(matches!(judge_message(None), Verdict::Stop(_)));
    }

    #[test]
    fn a_saved_position_the_topic_no_longer_holds_needs_a_reseed() {
        assert_eq!(starting_point(0, 0, 0), Start::Beginning);
        assert_eq!(
            starting_point(0, 40, 90),
            Start::Beginning,
            "a partition never read starts at its first message, wherever that is"
        );
        assert_eq!(starting_point(40, 40, 90), Start::At(40));
        assert_eq!(starting_point(90, 40, 90), Start::At(90), "caught up");
        assert!(matches!(
            starting_point(39, 40, 90),
            Start::NeedsReseed(why) if why.contains("removed")
        ));
        assert!(matches!(
            starting_point(91, 40, 90),
            Start::NeedsReseed(why) if why.contains("lost")
        ));
    }

    #[test]
    fn stops_are_kept_per_partition_and_cleared_by_kind() {
        let stops = TopicStops::default();
        let stop = |partition: i32, state: StopKind| StoppedPartition {
            topic: "a".into(),
            partition,
            offset: 3,
            state,
            error: "why".into(),
            since_millis: 1,
        };
        stops.record(stop(0, StopKind::Undecodable));
        stops.record(stop(1, StopKind::NeedsReseed));
        assert!(stops.contains("a", 0) && stops.contains("a", 1) && !stops.contains("b", 0));
        assert_eq!(stops.of_topic("a").len(), 2);
        assert_eq!(
            stops.clear(StopKind::Undecodable),
            [stop(0, StopKind::Undecodable)]
        );
        assert!(!stops.contains("a", 0) && stops.any(StopKind::NeedsReseed));
    }
}
