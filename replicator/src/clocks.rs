//! How far each peer's wall clock is from this node's, and what the group does about a clock
//! that is off.
//!
//! - **Measuring**: every request to a peer ([`crate::client::PeerClient`]) notes this node's
//!   wall clock when it leaves and when its answer is back; the peer answers with its own
//!   wall clock when the request arrived and when it answered ([`RECEIVED_AT_HEADER`],
//!   [`ANSWERED_AT_HEADER`], on every peer endpoint, refusals included). From those four
//!   readings [`ClockOffset::measure`] takes the offset and round trip as NTP does; the
//!   latest per peer is kept ([`ClockOffsets`]), shown in the link state and exported as
//!   `tidemark_replication_clock_offset_millis{peer}`.
//! - **Refusing stamps from the future**: a change or membership document stamped more than
//!   [`MaxClockOffset`] ahead of this node's wall clock is neither applied nor observed by
//!   its clock ([`Replicator::refuse_stamps_ahead`]), so one fast clock cannot drag every
//!   region's clock (and every later write) ahead with it. The sender keeps it and retries,
//!   so the link resumes by itself once the clocks agree.
//! - **Pausing writes**: a node more than the bound away from most of its peers (fresh
//!   measurements only, and surely: by more than the bound plus half the round trip, since
//!   NTP cannot tell how the round trip split) cannot tell its own clock is right, so it raises the store's
//!   [`tidemark_core::WriteFence`]: client writes and TTL expiry are refused, reads and
//!   replicated writes go on, until the measurements agree again
//!   ([`Replicator::check_clock_agreement`]).

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tidemark_core::HlcTimestamp;

use crate::{Error, Replicator, Result};

/// Response header of every peer endpoint: the peer's wall clock when the request arrived,
/// in milliseconds since the epoch. (The request needs no time of its own: the sender keeps
/// when it sent, and HTTP pairs each answer with its request.)
pub const RECEIVED_AT_HEADER: &str = "x-tidemark-received-millis";
/// Response header of every peer endpoint: the peer's wall clock when it answered.
pub const ANSWERED_AT_HEADER: &str = "x-tidemark-answered-millis";

/// How long a measurement counts towards pausing writes: a peer not heard from for this
/// long says nothing about this node's clock any more.
pub const FRESH_FOR: Duration = Duration::from_secs(30);

/// How far apart two regions' wall clocks may be (`--max-clock-offset`); 500 ms unless set,
/// as CockroachDB's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxClockOffset(pub Duration);

impl Default for MaxClockOffset {
    fn default() -> Self {
        MaxClockOffset(Duration::from_millis(500))
    }
}

impl MaxClockOffset {
    /// The bound in milliseconds.
    pub fn millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

/// One measurement of a peer's clock against this node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClockOffset {
    /// How far the peer's clock is ahead of this node's (negative: behind), in milliseconds.
    pub offset_millis: i64,
    /// The request's round trip less the peer's time answering; the offset is right to within
    /// half of it.
    pub round_trip_millis: u64,
    /// When it was measured, by this node's clock.
    pub measured_at_millis: u64,
}

impl ClockOffset {
    /// NTP's estimate from this node's clock when the request left (`sent`) and when the
    /// answer came back (`back`), and the peer's when the request arrived (`received`) and
    /// when it answered (`answered`).
    pub fn measure(sent: u64, received: u64, answered: u64, back: u64) -> ClockOffset {
        let (sent, received, answered, back) = (
            i128::from(sent),
            i128::from(received),
            i128::from(answered),
            i128::from(back),
        );
        let offset = ((received - sent) + (answered - back)) / 2;
        let round_trip = (back - sent) - (answered - received);
        ClockOffset {
            offset_millis: i64::try_from(offset).unwrap_or(if offset < 0 {
                i64::MIN
            } else {
                i64::MAX
            }),
            round_trip_millis: u64::try_from(round_trip.max(0)).unwrap_or(u64::MAX),
            measured_at_millis: u64::try_from(back).unwrap_or(u64::MAX),
        }
    }
}

impl ClockOffset {
    /// True when the clocks are more than `max_millis` apart however the round trip split
    /// between the two ways: a slow or lopsided path alone never pauses a node.
    pub fn surely_beyond(&self, max_millis: u64) -> bool {
        let uncertainty = self.round_trip_millis / 2;
        self.offset_millis
            .unsigned_abs()
            .saturating_sub(uncertainty)
            > max_millis
    }
}

/// The latest clock measurement of every peer.
#[derive(Debug, Default)]
pub struct ClockOffsets {
    peers: Mutex<BTreeMap<String, ClockOffset>>,
}

impl ClockOffsets {
    /// Keeps `offset` as `region`'s latest, and exports it.
    pub fn record(&self, region: &str, offset: ClockOffset) {
        metrics::gauge!("tidemark_replication_clock_offset_millis", "peer" => region.to_string())
            .set(offset.offset_millis as f64);
        self.peers.lock().insert(region.to_string(), offset);
    }

    /// `region`'s latest measurement.
    pub fn of(&self, region: &str) -> Option<ClockOffset> {
        self.peers.lock().get(region).copied()
    }
}

impl Replicator {
    /// Refuses a batch of stamps (`(clock, region)` each) from `from` when one is further
    /// ahead of this node's wall clock than the bound: nothing of it may be applied or
    /// observed.
    ///
    /// # Errors
    /// [`Error::ClockAhead`] for the stamp furthest ahead.
    pub(crate) fn refuse_stamps_ahead<'a>(
        &self,
        from: &str,
        stamps: impl IntoIterator<Item = (u64, &'a str)>,
    ) -> Result<()> {
        let now = self.store.clock().now_millis();
        let max = self.config.max_clock_offset.millis();
        let furthest = stamps
            .into_iter()
            .map(|(clock, region)| {
                let ahead = HlcTimestamp(clock).physical_millis().saturating_sub(now);
                (ahead, region)
            })
            .max_by_key(|(ahead, _)| *ahead);
        match furthest {
            Some((ahead_millis, region)) if ahead_millis > max => {
                let error = Error::ClockAhead {
                    region: region.to_string(),
                    ahead_millis,
                    max_millis: max,
                };
                tracing::warn!(peer = from, %error, "refused stamps from the future");
                Err(error)
            }
            _ => Ok(()),
        }
    }

    /// Raises the write fence while this node's clock is more than the bound away from more
    /// than half of its peers (by fresh measurements), and lowers it otherwise.
    ///
    /// IMPORTANT: more than half of the peers, not of those measured: a node that hears from
    /// few peers cannot outvote the rest. In a group of two regions each node has one peer,
    /// so both pause when their clocks disagree: neither can tell whose clock is wrong.
    pub(crate) fn check_clock_agreement(&self) {
        let now = self.store.clock().now_millis();
        let max = self.config.max_clock_offset.millis();
        let fresh_for = u64::try_from(FRESH_FOR.as_millis()).unwrap_or(u64::MAX);
        let peers = &self.config.peers;
        let away: Vec<(String, i64)> = peers
            .iter()
            .filter_map(|peer| {
                let offset = self.offsets.of(&peer.region)?;
                let fresh = now.saturating_sub(offset.measured_at_millis) <= fresh_for;
                (fresh && offset.surely_beyond(max))
                    .then(|| (peer.region.clone(), offset.offset_millis))
            })
            .collect();
        let fence = self.store.write_fence();
        if !peers.is_empty() && away.len() * 2 > peers.len() {
            let offsets = away
                .iter()
                .map(|(region, offset)| match *offset < 0 {
                    // The peer's clock behind means this node's is ahead.
                    true => format!("{} ms ahead of {region}", offset.unsigned_abs()),
                    false => format!("{offset} ms behind {region}"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            fence.raise(format!(
                "the clock of region {} is more than {max} ms (--max-clock-offset) away from \
                 most of its peers' ({offsets}); writes resume once its clock is fixed",
                self.region()
            ));
            metrics::gauge!("tidemark_replication_writes_paused").set(1.0);
        } else {
            fence.lower();
            metrics::gauge!("tidemark_replication_writes_paused").set(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidemark_core::model::{AttributeValue, Item};
    use tidemark_core::ops::{GetItemRequest, PutItemRequest};
    use tidemark_core::{Engine, ManualClock, StoreConfig};

    use super::*;
    use crate::membership::GlobalTable;
    use crate::protocol::{ChangeBatch, WireChange};
    use crate::test_support;

    const TABLE: &str = "clocked";
    const NOW: u64 = 1_700_000_000_000;

    /// Region `us`, with peers `eu` and `ap`, on a store whose clock reads [`NOW`], holding
    /// [`TABLE`] as a global table of the three.
    fn region_us(dir: &std::path::Path) -> (Engine, Arc<ManualClock>, Arc<Replicator>) {
        let clock = Arc::new(ManualClock::new(NOW));
        let engine =
            Engine::open_with_clock(StoreConfig::for_tests(dir), clock.clone()).expect("open");
        let replicator = test_support::replicator(
            &engine,
            "us",
            &["eu=http://127.0.0.1:9", "ap=http://127.0.0.1:10"],
        );
        let replicas = test_support::active(&["us", "eu", "ap"]);
        test_support::make_global(&engine, &replicator, TABLE, &replicas, NOW << 16);
        (engine, clock, replicator)
    }

    fn item(k: &str) -> Item {
        [("p".to_string(), AttributeValue::S(k.into()))].into()
    }

    fn change(k: &str, physical_millis: u64, region: &str) -> WireChange {
        WireChange {
            table: TABLE.into(),
            keys: item(k),
            new_image: Some(item(k)),
            clock: physical_millis << 16,
            region: region.into(),
        }
    }

    fn get(engine: &Engine, k: &str) -> Option<Item> {
        engine
            .store
            .get_item(GetItemRequest {
                table_name: TABLE.into(),
                key: item(k),
                ..Default::default()
            })
            .expect("a read")
            .item
    }

    fn put(engine: &Engine, k: &str) -> tidemark_core::Result<()> {
        engine
            .store
            .put_item(PutItemRequest {
                table_name: TABLE.into(),
                item: [
                    ("p".to_string(), AttributeValue::S(k.into())),
                    ("v".to_string(), AttributeValue::S("local".into())),
                ]
                .into(),
                ..Default::default()
            })
            .map(|_| ())
    }

    #[test]
    fn a_batch_stamped_too_far_ahead_is_neither_applied_nor_observed_until_the_clocks_agree() {
        let dir = tempfile::tempdir().expect("a folder");
        let (engine, clock, replicator) = region_us(dir.path());
        let batch = || ChangeBatch {
            // An ordinary change first: the whole batch is refused, not just the late part.
            changes: vec![
                change("near", NOW + 400, "eu"),
                change("far", NOW + 5_000, "eu"),
            ],
            ..ChangeBatch::default()
        };
        let refused = replicator.receive_changes("eu", batch());
        match &refused {
            Err(Error::ClockAhead {
                region,
                ahead_millis,
                max_millis,
            }) => assert_eq!(
                (region.as_str(), *ahead_millis, *max_millis),
                ("eu", 5_000, 500)
            ),
            other => panic!("{other:?}"),
        }
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("region eu") && message.contains("5000 ms ahead"),
            "{message}"
        );
        assert_eq!(
            get(&engine, "near"),
            None,
            "nothing of the batch is applied"
        );
        assert_eq!(get(&engine, "far"), None);
        put(&engine, "local").expect("a local write");
        let last = engine.store.durable_seq();
        let record = engine.store.read_changes(last, 1).expect("its record");
        assert_eq!(
            record.first().map(|r| r.stamp.hlc.physical_millis()),
            Some(NOW),
            "the clock did not move to the refused stamp"
        );

        // The receiver's clock catches up (or the sender's is fixed): the same batch goes in.
        clock.advance(4_600);
        let answer = replicator
            .receive_changes("eu", batch())
            .expect("applied now");
        assert_eq!(answer.written, 2);
        assert!(get(&engine, "far").is_some());
    }

    #[test]
    fn a_membership_document_stamped_too_far_ahead_is_not_adopted() {
        let dir = tempfile::tempdir().expect("a folder");
        let (engine, _clock, replicator) = region_us(dir.path());
        let held = GlobalTable::of(&engine.store, TABLE).expect("global");
        let mut future = held.clone();
        future.replicas.remove("ap");
        future.stamp_clock = (NOW + 60_000) << 16;
        future.stamp_region = "eu".into();
        let refused = replicator.receive_membership(TABLE, future.clone());
        assert!(
            matches!(&refused, Err(Error::ClockAhead { region, ahead_millis: 60_000, .. }) if region == "eu"),
            "{refused:?}"
        );
        replicator
            .merge_membership(TABLE, future)
            .expect("an answer ahead is ignored");
        assert_eq!(GlobalTable::of(&engine.store, TABLE), Some(held));
    }

    fn measured(offset_millis: i64, at: u64) -> ClockOffset {
        ClockOffset {
            offset_millis,
            round_trip_millis: 2,
            measured_at_millis: at,
        }
    }

    #[test]
    fn a_node_away_from_most_of_its_peers_pauses_its_writes_until_they_agree() {
        let dir = tempfile::tempdir().expect("a folder");
        let (engine, clock, replicator) = region_us(dir.path());
        let offsets = replicator.clock_offsets();

        // One peer of two disagrees: that is the peer's problem, not this node's.
        offsets.record("eu", measured(-2_000, NOW));
        offsets.record("ap", measured(100, NOW));
        replicator.check_clock_agreement();
        put(&engine, "one").expect("writes go on");

        // Both peers find this node's clock 2 s ahead of theirs.
        offsets.record("ap", measured(-2_100, NOW));
        replicator.check_clock_agreement();
        let refused = put(&engine, "two");
        let message = match &refused {
            Err(tidemark_core::Error::WritesPaused(message)) => message.clone(),
            other => panic!("{other:?}"),
        };
        assert!(
            message.contains("2000 ms ahead of eu") && message.contains("2100 ms ahead of ap"),
            "{message}"
        );
        assert!(message.contains("500 ms"), "{message}");
        assert_eq!(get(&engine, "two"), None);
        assert!(get(&engine, "one").is_some(), "reads go on");
        replicator
            .receive_changes(
                "eu",
                ChangeBatch {
                    changes: vec![change("replicated", NOW - 2_000, "eu")],
                    ..ChangeBatch::default()
                },
            )
            .expect("replicated writes go on");

        // The clock is fixed: the next measurements agree and writes resume.
        offsets.record("eu", measured(3, NOW + 10));
        replicator.check_clock_agreement();
        put(&engine, "three").expect("writes resume");

        // A measurement whose round trip leaves room for agreeing clocks pauses nothing.
        offsets.record(
            "eu",
            ClockOffset {
                offset_millis: -2_000,
                round_trip_millis: 3_200,
                measured_at_millis: NOW + 10,
            },
        );
        offsets.record("ap", measured(-2_100, NOW + 10));
        replicator.check_clock_agreement();
        put(&engine, "uncertain").expect("1600 ms of uncertainty: maybe 400 ms apart");

        // A clock behind the others' is as far off as one ahead.
        offsets.record("eu", measured(3_000, NOW + 10));
        offsets.record("ap", measured(2_900, NOW + 10));
        replicator.check_clock_agreement();
        let refused = put(&engine, "behind");
        assert!(
            matches!(&refused, Err(tidemark_core::Error::WritesPaused(m))
                if m.contains("3000 ms behind eu") && m.contains("2900 ms behind ap")),
            "{refused:?}"
        );
        offsets.record("eu", measured(3, NOW + 10));
        offsets.record("ap", measured(-2_100, NOW + 10));
        replicator.check_clock_agreement();
        put(&engine, "agreed").expect("one peer of two away pauses nothing");

        // Measurements that are no longer fresh say nothing.
        offsets.record("eu", measured(-2_000, NOW + 20));
        replicator.check_clock_agreement();
        assert!(put(&engine, "four").is_err());
        clock.advance(FRESH_FOR.as_millis() as u64 + 1_000);
        replicator.check_clock_agreement();
        put(&engine, "five").expect("stale measurements pause nothing");
    }

    #[test]
    fn the_offset_is_taken_as_ntp_does() {
        // The peer is 1000 ms ahead; 20 ms each way, 5 ms answering.
        let measured = ClockOffset::measure(10_000, 11_020, 11_025, 10_045);
        assert_eq!(measured.offset_millis, 1_000);
        assert_eq!(measured.round_trip_millis, 40);
        assert_eq!(measured.measured_at_millis, 10_045);
        // Behind, and an asymmetric path: off by half the asymmetry at most.
        let behind = ClockOffset::measure(10_000, 9_010, 9_010, 10_030);
        assert_eq!(behind.offset_millis, -1_005);
        assert_eq!(behind.round_trip_millis, 30);
        // Readings at the ends of the range do not overflow.
        let extreme = ClockOffset::measure(0, u64::MAX, u64::MAX, 0);
        assert_eq!(extreme.offset_millis, i64::MAX);
        assert_eq!(extreme.round_trip_millis, 0);
    }
}
