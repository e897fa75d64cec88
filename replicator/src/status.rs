//! What an operator sees of replication: each peer link's state and lag, and the last
//! conflicts of each table (writes discarded because a newer one of the same item had won).

use std::collections::{BTreeMap, VecDeque};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tidemark_core::Stamp;
use tidemark_core::model::Item;

/// How many conflicts are kept per table.
pub const CONFLICTS_KEPT: usize = 100;

/// The state of the link to one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LinkState {
    /// The peer answered the last request.
    pub reachable: bool,
    /// When it last answered, in milliseconds since the epoch.
    pub last_contact_millis: Option<u64>,
    /// The last failure, while it is failing.
    pub last_error: Option<String>,
    /// Changes shipped to it since this node started.
    pub shipped: u64,
    /// How far the peer's wall clock is ahead of this node's (negative: behind), in
    /// milliseconds, as last measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_millis: Option<i64>,
    /// The round trip of that measurement, in milliseconds (the offset is right to within
    /// half of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip_millis: Option<u64>,
}

/// One table's replication towards one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableLink {
    /// The table.
    pub table: String,
    /// The peer region.
    pub region: String,
    /// The replica's status there.
    pub replica_status: String,
    /// Changes of the table not yet acknowledged by the peer (an upper bound: replicated
    /// changes, which are not shipped, count too).
    pub lag_records: u64,
    /// Age of the oldest of those, in milliseconds.
    pub lag_millis: u64,
    /// Whether the peer answers, and when it last did.
    pub link: LinkState,
    /// This node let go of what it kept for the replica (`--peer-hold-limit`), or lost the
    /// replica's changes (Kafka): replication of the table with it stopped until it is
    /// re-seeded.
    #[serde(default)]
    pub needs_reseed: bool,
    /// Partitions of the region's replication topic this node does not read (Kafka
    /// transport): a message that does not decode, or lost changes (`NeedsReseed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<crate::kafka::StoppedPartition>,
}

/// A replicated write discarded because the item already held a newer one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Conflict {
    /// When it was discarded, in milliseconds since the epoch.
    pub at_millis: u64,
    /// The item's key.
    pub keys: Item,
    /// The discarded write's region.
    pub losing_region: String,
    /// The discarded write's clock.
    pub losing_clock: u64,
    /// The winner's region.
    pub winning_region: String,
    /// The winner's clock.
    pub winning_clock: u64,
}

impl Conflict {
    /// A conflict between `losing` and `winning` over `keys`.
    pub fn new(at_millis: u64, keys: Item, losing: &Stamp, winning: &Stamp) -> Conflict {
        Conflict {
            at_millis,
            keys,
            losing_region: losing.region.clone(),
            losing_clock: losing.hlc.0,
            winning_region: winning.region.clone(),
            winning_clock: winning.hlc.0,
        }
    }
}

/// The last conflicts of every table, and how many there were.
#[derive(Debug, Default)]
pub struct Conflicts {
    tables: Mutex<BTreeMap<String, (u64, VecDeque<Conflict>)>>,
}

impl Conflicts {
    /// Records a conflict on `table`.
    pub fn record(&self, table: &str, conflict: Conflict) {
        metrics::counter!("tidemark_replication_conflicts_total", "table" => table.to_string())
            .increment(1);
        let mut tables = self.tables.lock();
        let (count, last) = tables.entry(table.to_string()).or_default();
        *count += 1;
        if last.len() == CONFLICTS_KEPT {
            last.pop_front();
        }
        last.push_back(conflict);
    }

    /// How many conflicts `table` had since the node started, and the last ones, newest last.
    pub fn of(&self, table: &str) -> (u64, Vec<Conflict>) {
        self.tables
            .lock()
            .get(table)
            .map(|(count, last)| (*count, last.iter().cloned().collect()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_core::HlcTimestamp;

    fn stamp(clock: u64, region: &str) -> Stamp {
        Stamp {
            hlc: HlcTimestamp(clock),
            region: region.into(),
        }
    }

    #[test]
    fn only_the_last_conflicts_are_kept_but_all_are_counted() {
        let conflicts = Conflicts::default();
        for i in 0..(CONFLICTS_KEPT as u64 + 5) {
            conflicts.record(
                "t",
                Conflict::new(i, Item::new(), &stamp(i, "a"), &stamp(i + 1, "b")),
            );
        }
        let (count, last) = conflicts.of("t");
        assert_eq!(count, CONFLICTS_KEPT as u64 + 5);
        assert_eq!(last.len(), CONFLICTS_KEPT);
        assert_eq!(last.first().map(|c| c.at_millis), Some(5));
        assert_eq!(conflicts.of("other"), (0, Vec::new()));
    }
}
