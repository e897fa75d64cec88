//! Anti-entropy: finding and repairing replicas of a global table that differ although
//! replication reported everything delivered (a bug, a restored disk, a change a broker
//! lost), per table, between this region and each other one.
//!
//! One comparison, started by one region (the initiator) against a peer:
//! 1. **Bounds.** Only cells stamped at or before their origin region's cut-off are compared:
//!    for the two sides' own regions, what each said it delivered to the other; for a third
//!    region, the lower of what it delivered to either (the delivered-through clocks in
//!    `Replicator::inbound`), so a change still on its way is never taken for a difference
//!    (and an idle region does not hold back the comparison of another's cells). Tombstones
//!    older than the later of the two sides' trim horizons ([`Replication::trim_horizon`])
//!    are left out, because a side may have trimmed them. The initiator proposes its bounds,
//!    the peer narrows them with its own and answers with the bounds both use.
//! 2. **Digest** (`POST /_tidemark/peer/digest`): each side hashes every cell within the
//!    bounds, (key without the table id, stamp, tombstone flag), into one of 2^k buckets by a
//!    hash of its key, adding the cell hashes per bucket: order does not matter, so one scan
//!    of stamps (items are not decoded) builds every bucket.
//! 3. **Narrowing**: while more than a few buckets differ and each holds more than a few
//!    dozen cells, the initiator asks for a digest of only those buckets, each split into 16
//!    (the same request, naming the coarser buckets it is `within`): a bucket is the top
//!    bits of a key's hash, so its children are the buckets one level down with the same top
//!    bits. This is a hash tree over the key space, walked only where it differs: scattered
//!    differences then cost a scan and a few sums per difference, not a listing of every
//!    cell of every bucket they touched.
//! 4. **Cells** (`POST /_tidemark/peer/cells`): for the buckets whose sums differ, both
//!    sides list every cell in them (key, stamp, live) and the peer its trim horizon, read
//!    after its snapshot.
//! 5. **Repair**: per key, the newer cell wins (last writer wins, [`Stamp::wins_over`]). The
//!    initiator fetches the peer's newer cells (`POST /_tidemark/peer/fetch`) and applies
//!    them here, and sends its own newer cells to the peer as a change batch (`POST
//!    /_tidemark/peer/changes`): both go through the ordinary replicated-change path, so an
//!    older cell never wins and each repair shows in the streams as a replicated change.
//!    A newer cell stamped after the cut-off is in flight, not a difference.
//!
//! IMPORTANT: a live item on one side with no cell at all on the other, stamped before the
//! other side's trim horizon, may be an item deleted there whose tombstone is gone. It is
//! never shipped (that could bring a deleted item back): it is reported as unresolved, for an
//! operator to decide.
//!
//! The node runs a comparison of every global table with every other ACTIVE region every
//! `--anti-entropy-interval` (with jitter; the region whose name sorts first starts each
//! pair's), scanning at most `--anti-entropy-rate` cells a second on each side (or as fast as
//! a scan of the whole table in 20 s needs, for tables too large for the rate);
//! `tidemark replicas verify TABLE` runs one now against every other region.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tidemark_core::Stamp;
use tidemark_core::model::Item;
use tidemark_core::replication::{CellStamp, Replication};
use tokio_util::sync::CancellationToken;

use crate::client::{PeerClient, PeerError};
use crate::membership::{GlobalTable, ReplicaStatus};
use crate::peers::Peer;
use crate::protocol::{BatchAnswer, ChangeBatch, WireChange};
use crate::{Error, Replicator, Result, blocking};

mod reseed;
#[cfg(test)]
mod tests;

/// Path of digest requests.
pub const DIGEST_PATH: &str = "/_tidemark/peer/digest";
/// Path of requests for the cells of some buckets.
pub const CELLS_PATH: &str = "/_tidemark/peer/cells";
/// Path of requests for cells by key, to repair the requester with.
pub const FETCH_PATH: &str = "/_tidemark/peer/fetch";

/// Most buckets a digest of the whole table may have (2^16: 16 bytes each on the wire at
/// most, about 1 MB).
const MAX_BUCKETS_LOG2: u8 = 16;
/// Finest buckets a narrowed digest, or a listing of cells, may name.
const MAX_LEAF_LOG2: u8 = 24;
/// A narrowed digest splits each differing bucket into 2^this.
const NARROWING_BITS: u8 = 4;
/// Most sums a narrowed digest may answer with.
const MAX_NARROWED_SUMS: usize = 1 << 16;
/// Differing buckets are narrowed down while there are more than this many...
const NARROW_ABOVE_BUCKETS: usize = 4;
/// ...and each holds about more than this many cells.
const NARROW_ABOVE_CELLS: u64 = 32;
/// Fewest buckets of a digest.
const MIN_BUCKETS_LOG2: u8 = 4;
/// About how many cells one bucket holds: a differing bucket costs listing this many cells.
const CELLS_PER_BUCKET: u64 = 256;
/// About how many cells one cells request lists (each costs a scan of the table on both
/// sides, so as many buckets as fit go in one; an answer stays a few MB).
const CELLS_PER_REQUEST: u64 = 50_000;
/// Keys per fetch request and cells per repair batch.
const KEYS_PER_REQUEST: usize = 1_000;
/// Cells read per page of a scan (between two looks at the pace).
const SCAN_PAGE: usize = 10_000;
/// Most keys a report lists for each of repaired and unresolved.
const KEYS_REPORTED: usize = 100;
/// A paced scan goes fast enough to end within this many seconds whatever the table's size,
/// since a peer request is given up after 30 s.
const SCAN_SECONDS: u64 = 20;

/// How the node runs anti-entropy in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AntiEntropyConfig {
    /// Time between two comparisons of a table with a peer (jittered by ±50 %); zero turns
    /// the background comparisons off (`tidemark replicas verify` still runs).
    pub interval: Duration,
    /// Most cells a background comparison scans per second on each side (0: no limit).
    pub cells_per_second: u64,
}

impl Default for AntiEntropyConfig {
    fn default() -> AntiEntropyConfig {
        AntiEntropyConfig {
            interval: Duration::from_secs(600),
            cells_per_second: 200_000,
        }
    }
}

/// The clocks a comparison is bounded by (hybrid clock readings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Per origin region, cells stamped after this are left out: they may still be on their
    /// way. A region not named (one that left the group) takes the lowest.
    pub cutoffs: BTreeMap<String, u64>,
    /// Tombstones stamped before this are left out: a side may have trimmed them.
    pub floor: u64,
}

impl Bounds {
    /// The cut-off of cells made in `region`.
    fn cutoff_of(&self, region: &str) -> u64 {
        match self.cutoffs.get(region) {
            Some(cutoff) => *cutoff,
            None => self.lowest_cutoff(),
        }
    }

    /// The lowest cut-off: every cell stamped up to it is compared.
    fn lowest_cutoff(&self) -> u64 {
        self.cutoffs.values().copied().min().unwrap_or(0)
    }

    /// What both `self` and `other` allow: the lower cut-off of each region, the higher
    /// floor.
    fn narrowed(&self, other: &Bounds) -> Bounds {
        let mut cutoffs = self.cutoffs.clone();
        for (region, theirs) in &other.cutoffs {
            let cutoff = cutoffs.entry(region.clone()).or_insert(u64::MAX);
            *cutoff = (*cutoff).min(*theirs);
        }
        Bounds {
            cutoffs,
            floor: self.floor.max(other.floor),
        }
    }
}

/// `POST /_tidemark/peer/digest`: the initiator's proposed bounds and bucket count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DigestRequest {
    /// The table.
    pub table: String,
    /// The initiator's bounds; the peer narrows them with its own.
    pub bounds: Bounds,
    /// The digest has 2^this buckets.
    pub buckets_log2: u8,
    /// Most cells the peer scans per second for it (0: no limit).
    pub cells_per_second: u64,
    /// Only the buckets within these coarser ones (a narrowed digest); every bucket when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
}

/// The coarser buckets a narrowed digest sums the children of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Within {
    /// Their level: 2^this buckets over the key space.
    pub buckets_log2: u8,
    /// The buckets.
    pub buckets: Vec<u32>,
}

impl Within {
    /// Checks a narrowed digest of 2^`buckets_log2` buckets within these can be made.
    fn check(&self, buckets_log2: u8) -> Result<()> {
        let shift = buckets_log2.saturating_sub(self.buckets_log2);
        let sums = self.buckets.len().checked_shl(u32::from(shift));
        if buckets_log2 > MAX_LEAF_LOG2
            || !(1..=NARROWING_BITS).contains(&shift)
            || sums.is_none_or(|n| n > MAX_NARROWED_SUMS)
            || self
                .buckets
                .iter()
                .any(|b| u64::from(*b) >> self.buckets_log2 != 0)
        {
            return Err(Error::Validation(format!(
                "a narrowed digest splits each of at most {MAX_NARROWED_SUMS} buckets into at \
                 most 2^{NARROWING_BITS}, at most 2^{MAX_LEAF_LOG2} over the key space"
            )));
        }
        Ok(())
    }

    /// Where the sum of `bucket` (of 2^`buckets_log2`) goes in a narrowed digest: the
    /// children of each bucket of `self`, in order. `lookup` maps this side's buckets to
    /// their place.
    fn slot(
        &self,
        lookup: &std::collections::HashMap<u32, usize>,
        bucket: u32,
        buckets_log2: u8,
    ) -> Option<usize> {
        let shift = buckets_log2 - self.buckets_log2;
        let place = lookup.get(&(bucket >> shift))?;
        let child = (bucket & ((1u32 << shift) - 1)) as usize;
        Some((place << shift) | child)
    }

    /// The bucket whose sum is at `slot` of a narrowed digest of 2^`buckets_log2` buckets.
    fn bucket_at(&self, slot: usize, buckets_log2: u8) -> Option<u32> {
        let shift = buckets_log2 - self.buckets_log2;
        let parent = self.buckets.get(slot >> shift)?;
        Some((parent << shift) | (slot as u32 & ((1u32 << shift) - 1)))
    }
}

/// The peer's digest and the bounds it was made with (both sides use these).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DigestAnswer {
    /// The bounds both sides compare within.
    pub bounds: Bounds,
    /// How many cells were within them.
    pub cells: u64,
    /// Per bucket, the wrapping sum of its cells' hashes.
    pub buckets: Vec<u64>,
}

/// `POST /_tidemark/peer/cells`: every cell of some buckets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellsRequest {
    /// The table.
    pub table: String,
    /// The digest's bucket count, as 2^this.
    pub buckets_log2: u8,
    /// The buckets.
    pub buckets: Vec<u32>,
}

/// One cell as listed: key (base64 of the key without the table id), stamp, live or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCell {
    /// The key, base64.
    #[serde(rename = "k")]
    pub key: String,
    /// Stamp clock.
    #[serde(rename = "c")]
    pub clock: u64,
    /// Stamp region.
    #[serde(rename = "r")]
    pub region: String,
    /// True for a live item, false for a tombstone.
    #[serde(rename = "l")]
    pub live: bool,
}

/// The cells of the buckets asked for, and the answering side's trim horizon.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellsAnswer {
    /// The cells, live and tombstones, whatever their stamps.
    pub cells: Vec<WireCell>,
    /// See [`Replication::trim_horizon`], read after the cells' snapshot.
    pub trim_horizon: u64,
    /// See [`Replicator::vouched_clocks`], read before the cells' snapshot (a node that
    /// does not send them vouches for nothing).
    #[serde(default)]
    pub vouched: BTreeMap<String, u64>,
}

/// `POST /_tidemark/peer/fetch`: the cells at some keys, as a change batch to apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The table.
    pub table: String,
    /// The keys, base64 of the keys without the table id.
    pub keys: Vec<String>,
}

impl From<&CellStamp> for WireCell {
    fn from(cell: &CellStamp) -> WireCell {
        WireCell {
            key: base64::engine::general_purpose::STANDARD_NO_PAD.encode(&cell.key),
            clock: cell.stamp.hlc.0,
            region: cell.stamp.region.clone(),
            live: cell.live,
        }
    }
}

impl TryFrom<WireCell> for CellStamp {
    type Error = Error;

    fn try_from(cell: WireCell) -> Result<CellStamp> {
        Ok(CellStamp {
            key: key_bytes(&cell.key)?,
            stamp: Stamp {
                hlc: tidemark_core::HlcTimestamp(cell.clock),
                region: cell.region,
            },
            live: cell.live,
        })
    }
}

fn key_text(key: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(key)
}

fn key_bytes(text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .map_err(|e| Error::Validation(format!("a cell key that is not base64: {e}")))
}

/// What one comparison of a table with one peer found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerVerification {
    /// The peer's region.
    pub region: String,
    /// Cells stamped after this (milliseconds since the epoch) were not compared.
    pub compared_up_to_millis: u64,
    /// Cells within the bounds here.
    pub cells_compared: u64,
    /// Cells within the bounds in the peer's region.
    pub peer_cells_compared: u64,
    /// Buckets of the digest.
    pub buckets: u64,
    /// Buckets whose digests differed.
    pub buckets_differing: u64,
    /// Buckets whose cells were listed: the differing ones, narrowed down (see the
    /// module's doc).
    #[serde(default)]
    pub buckets_listed: u64,
    /// Items whose cells differed (each repaired one way, or unresolved).
    pub cells_differing: u64,
    /// Cells the peer had newer, written here.
    pub repaired_here: u64,
    /// Cells this region had newer, written in the peer's region.
    pub repaired_there: u64,
    /// Live items one side has and the other has no cell of, older than that side's trim
    /// horizon: perhaps deleted there, so not shipped.
    pub unresolved: u64,
    /// Bytes of the messages exchanged with the peer (request and answer bodies).
    pub bytes_exchanged: u64,
    /// Items repaired, by key (the first 100).
    pub repaired_keys: Vec<Item>,
    /// Unresolved items, by key (the first 100), with the region holding the live item.
    pub unresolved_keys: Vec<UnresolvedKey>,
    /// Why the comparison failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An item live in one region and absent, perhaps deleted long ago, in the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnresolvedKey {
    /// The item's key.
    pub keys: Item,
    /// The region where it is live.
    pub live_in: String,
}

/// What `tidemark replicas verify TABLE` found, per other region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableVerification {
    /// The table.
    pub table_name: String,
    /// One comparison per other ACTIVE region.
    pub regions: Vec<PeerVerification>,
}

/// What to do about the cells of the differing buckets, key by key.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    /// Keys this side has newer: sent to the peer.
    send: Vec<Vec<u8>>,
    /// Keys the peer has newer: fetched from it.
    fetch: Vec<Vec<u8>>,
    /// Keys live on one side only, older than the other's trim horizon: `true` when the
    /// live cell is this side's.
    unresolved: Vec<(Vec<u8>, bool)>,
}

impl Plan {
    /// Compares `mine` and `theirs`, the cells of the same buckets on each side, per key:
    /// the newer cell goes to the other side, unless it is past its region's cut-off in
    /// `bounds` (in flight) or it is
    /// a live item the other side may have deleted (older than that side's horizon).
    fn of(
        mine: Vec<CellStamp>,
        theirs: Vec<CellStamp>,
        bounds: &Bounds,
        my_horizon: u64,
        their_horizon: u64,
    ) -> Plan {
        let mut plan = Plan::default();
        for (key, (here, there)) in by_key(mine, theirs) {
            let mine_newer = match (&here, &there) {
                (Some(h), Some(t)) if h.stamp == t.stamp => continue,
                (Some(h), t) => h.stamp.wins_over(t.as_ref().map(|t| &t.stamp)),
                (None, _) => false,
            };
            let (newer, older, older_horizon) = match mine_newer {
                true => (here.as_ref(), there.as_ref(), their_horizon),
                false => (there.as_ref(), here.as_ref(), my_horizon),
            };
            let Some(newer) = newer else { continue };
            if newer.stamp.hlc.0 > bounds.cutoff_of(&newer.stamp.region) {
                continue;
            }
            if older.is_none() && newer.stamp.hlc.0 < older_horizon {
                // A tombstone the other side trimmed is no difference; a live item may be
                // one it deleted.
                if newer.live {
                    plan.unresolved.push((key, mine_newer));
                }
                continue;
            }
            match mine_newer {
                true => plan.send.push(key),
                false => plan.fetch.push(key),
            }
        }
        plan
    }
}

/// The cells of both sides side by side, by key: `(this side's, the other side's)`.
fn by_key(
    mine: Vec<CellStamp>,
    theirs: Vec<CellStamp>,
) -> BTreeMap<Vec<u8>, (Option<CellStamp>, Option<CellStamp>)> {
    let mut paired: BTreeMap<Vec<u8>, (Option<CellStamp>, Option<CellStamp>)> = BTreeMap::new();
    for cell in mine {
        let key = cell.key.clone();
        paired.entry(key).or_default().0 = Some(cell);
    }
    for cell in theirs {
        let key = cell.key.clone();
        paired.entry(key).or_default().1 = Some(cell);
    }
    paired
}

/// The bucket of a key: the top bits of its hash.
fn bucket_of(key: &[u8], buckets_log2: u8) -> u32 {
    match buckets_log2 {
        0 => 0,
        bits => (xxhash_rust::xxh3::xxh3_64(key) >> (64 - u32::from(bits))) as u32,
    }
}

/// A cell's contribution to its bucket: a hash of its key, stamp and tombstone flag.
fn cell_hash(cell: &CellStamp) -> u64 {
    let mut bytes = Vec::with_capacity(cell.key.len() + cell.stamp.region.len() + 16);
    bytes.extend_from_slice(&(cell.key.len() as u64).to_be_bytes());
    bytes.extend_from_slice(&cell.key);
    bytes.extend_from_slice(&cell.stamp.hlc.0.to_be_bytes());
    bytes.extend_from_slice(cell.stamp.region.as_bytes());
    bytes.push(u8::from(cell.live));
    xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, 0x7a1d_e3a5)
}

/// Whether a cell is compared within `bounds`.
fn within(cell: &CellStamp, bounds: &Bounds) -> bool {
    cell.stamp.hlc.0 <= bounds.cutoff_of(&cell.stamp.region)
        && (cell.live || cell.stamp.hlc.0 >= bounds.floor)
}

/// How many buckets (as 2^k) suit a table of about `items` items.
fn buckets_log2_for(items: u64) -> u8 {
    let wanted = (items / CELLS_PER_BUCKET).max(1).next_power_of_two();
    (wanted.trailing_zeros() as u8).clamp(MIN_BUCKETS_LOG2, MAX_BUCKETS_LOG2)
}

/// Keeps a scan at or under `cells_per_second` (0: no limit): sleeps once it is ahead.
struct Pace {
    started: Instant,
    cells_per_second: u64,
}

impl Pace {
    fn new(cells_per_second: u64) -> Pace {
        Pace {
            started: Instant::now(),
            cells_per_second,
        }
    }

    fn after(&self, scanned: u64) {
        if self.cells_per_second == 0 {
            return;
        }
        let due = Duration::from_secs_f64(scanned as f64 / self.cells_per_second as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// Every cell of `table` in a snapshot, a page at a time, at `pace`; `visit` sees each.
fn scan_cells(
    replication: &Replication,
    table: &str,
    pace: &Pace,
    mut visit: impl FnMut(CellStamp),
) -> Result<()> {
    let snapshot = replication.snapshot_table(table)?;
    let (mut after, mut scanned) = (None, 0u64);
    loop {
        let page = replication.cell_stamp_page(&snapshot, after, SCAN_PAGE)?;
        scanned += page.cells.len() as u64;
        page.cells.into_iter().for_each(&mut visit);
        pace.after(scanned);
        match page.resume_after {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// A peer request under way.
pub(crate) type EntropyRequest<'a, T> =
    Pin<Box<dyn Future<Output = std::result::Result<T, PeerError>> + Send + 'a>>;

/// What a comparison asks of a peer: HTTP on a node ([`PeerClient`]), an in-memory network
/// in the tests.
pub(crate) trait EntropyTransport: Send + Sync {
    /// The peer's digest of a table (`POST /_tidemark/peer/digest`).
    fn digest<'a>(
        &'a self,
        peer: &'a Peer,
        request: &'a DigestRequest,
    ) -> EntropyRequest<'a, DigestAnswer>;

    /// The peer's cells of some buckets (`POST /_tidemark/peer/cells`).
    fn cells<'a>(
        &'a self,
        peer: &'a Peer,
        request: &'a CellsRequest,
    ) -> EntropyRequest<'a, CellsAnswer>;

    /// The peer's cells at some keys (`POST /_tidemark/peer/fetch`).
    fn fetch<'a>(
        &'a self,
        peer: &'a Peer,
        request: &'a FetchRequest,
    ) -> EntropyRequest<'a, ChangeBatch>;

    /// Sends the peer cells to apply by last writer wins (`POST /_tidemark/peer/repair`).
    fn repair<'a>(
        &'a self,
        peer: &'a Peer,
        batch: &'a ChangeBatch,
    ) -> EntropyRequest<'a, BatchAnswer>;
}

impl EntropyTransport for PeerClient {
    fn digest<'a>(
        &'a self,
        peer: &'a Peer,
        request: &'a DigestRequest,
    ) -> EntropyRequest<'a, DigestAnswer> {
        Box::pin(self.post(peer, DIGEST_PATH, request))
    }

    fn cells<'a>(
        &'a self,
        peer: &'a Peer,
        request: &'a CellsRequest,
    ) -> EntropyRequest<'a, CellsAnswer> {
        Box::pin(self.post(peer, CELLS_PATH, request))
    }

    fn fetch<'a>(
        &'a self,
        peer: &'a Peer,
        request: &'a FetchRequest,
    ) -> EntropyRequest<'a, ChangeBatch> {
        Box::pin(self.post(peer, FETCH_PATH, request))
    }

    fn repair<'a>(
        &'a self,
        peer: &'a Peer,
        batch: &'a ChangeBatch,
    ) -> EntropyRequest<'a, BatchAnswer> {
        Box::pin(self.post_cells(peer, crate::protocol::REPAIR_PATH, batch))
    }
}

impl Replicator {
    /// The membership of `table` when this region's replica is ACTIVE in it.
    ///
    /// # Errors
    /// Validation when the table is not global here, or this replica is not ACTIVE.
    fn active_membership(&self, table: &str) -> Result<GlobalTable> {
        let global = GlobalTable::of(&self.store, table).ok_or_else(|| {
            Error::Validation(format!(
                "table {table} is not a global table in region {}",
                self.region()
            ))
        })?;
        match global.replicas.get(self.region()).map(|r| r.status) {
            Some(ReplicaStatus::Active) => Ok(global),
            _ => Err(Error::Validation(format!(
                "the replica of table {table} in region {} is not ACTIVE",
                self.region()
            ))),
        }
    }

    /// This side's bounds for `table`: for each other region, up to what it has delivered
    /// here (this region's own cells are all here), and this node's trim horizon.
    ///
    /// # Errors
    /// Validation when a region has not said yet (since this node started) what it has
    /// delivered here: nothing can be compared before it does.
    fn own_bounds(&self, table: &str, global: &GlobalTable) -> Result<Bounds> {
        let cutoffs = {
            let inbound = self.inbound.lock();
            let mut cutoffs = BTreeMap::from([(self.region().to_string(), u64::MAX)]);
            for region in global.replicas.keys().filter(|r| *r != self.region()) {
                let delivered = inbound
                    .get(&(table.to_string(), region.clone()))
                    .ok_or_else(|| {
                        Error::Validation(format!(
                            "cannot compare table {table} yet: region {region} has not said \
                             what it delivered to region {} since that node started",
                            self.region()
                        ))
                    })?;
                cutoffs.insert(region.clone(), *delivered);
            }
            cutoffs
        };
        let floor = self.replication.trim_horizon()?.0;
        Ok(Bounds { cutoffs, floor })
    }

    /// This node's digest of `table` within `bounds`: per bucket, the sum of its cells'
    /// hashes; and how many cells were within them. Blocking.
    fn table_digest(
        &self,
        table: &str,
        bounds: &Bounds,
        buckets_log2: u8,
        narrowed: Option<&Within>,
        cells_per_second: u64,
    ) -> Result<(Vec<u64>, u64)> {
        let (sums, lookup) = match narrowed {
            None => (1usize << buckets_log2, Default::default()),
            Some(w) => {
                w.check(buckets_log2)?;
                let lookup: std::collections::HashMap<u32, usize> =
                    w.buckets.iter().enumerate().map(|(i, b)| (*b, i)).collect();
                (w.buckets.len() << (buckets_log2 - w.buckets_log2), lookup)
            }
        };
        let mut buckets = vec![0u64; sums];
        let mut cells = 0u64;
        scan_cells(
            &self.replication,
            table,
            &Pace::new(cells_per_second),
            |cell| {
                if within(&cell, bounds) {
                    let bucket = bucket_of(&cell.key, buckets_log2);
                    let slot = match narrowed {
                        None => Some(bucket as usize),
                        Some(w) => w.slot(&lookup, bucket, buckets_log2),
                    };
                    if let Some(sum) = slot.and_then(|slot| buckets.get_mut(slot)) {
                        *sum = sum.wrapping_add(cell_hash(&cell));
                    }
                    cells += 1;
                }
            },
        )?;
        metrics::counter!("tidemark_antientropy_cells_scanned_total", "table" => table.to_string())
            .increment(cells);
        Ok((buckets, cells))
    }

    /// Every cell of `table` in `buckets`, and this node's trim horizon after reading them.
    /// Blocking.
    fn cells_in_buckets(
        &self,
        table: &str,
        buckets_log2: u8,
        buckets: &BTreeSet<u32>,
    ) -> Result<(Vec<CellStamp>, u64)> {
        let mut cells = Vec::new();
        scan_cells(&self.replication, table, &Pace::new(0), |cell| {
            if buckets.contains(&bucket_of(&cell.key, buckets_log2)) {
                cells.push(cell);
            }
        })?;
        // After the snapshot: every tombstone missing from it is older than this.
        let horizon = self.replication.trim_horizon()?.0;
        Ok((cells, horizon))
    }

    /// Answers a peer's digest request: narrows its bounds with this side's, and digests
    /// the table within them. Blocking.
    ///
    /// # Errors
    /// Validation when the table is not global and ACTIVE here, a region has not reported
    /// what it delivered, or the bucket count is out of range; storage failures.
    pub fn receive_digest(&self, request: DigestRequest) -> Result<DigestAnswer> {
        if request.within.is_none()
            && !(MIN_BUCKETS_LOG2..=MAX_BUCKETS_LOG2).contains(&request.buckets_log2)
        {
            return Err(Error::Validation(format!(
                "a digest has between 2^{MIN_BUCKETS_LOG2} and 2^{MAX_BUCKETS_LOG2} buckets, \
                 not 2^{}",
                request.buckets_log2
            )));
        }
        let global = self.active_membership(&request.table)?;
        let own = self.own_bounds(&request.table, &global)?;
        let bounds = request.bounds.narrowed(&own);
        let (buckets, cells) = self.table_digest(
            &request.table,
            &bounds,
            request.buckets_log2,
            request.within.as_ref(),
            request.cells_per_second,
        )?;
        Ok(DigestAnswer {
            bounds,
            cells,
            buckets,
        })
    }

    /// Answers a peer's request for the cells of some buckets. Blocking.
    ///
    /// # Errors
    /// Validation when the table is not global here or the bucket count is out of range;
    /// storage failures.
    pub fn receive_cells_request(&self, request: CellsRequest) -> Result<CellsAnswer> {
        if request.buckets_log2 > MAX_LEAF_LOG2 {
            return Err(Error::Validation(format!(
                "cells are listed from at most 2^{MAX_LEAF_LOG2} buckets"
            )));
        }
        self.active_membership(&request.table)?;
        let buckets: BTreeSet<u32> = request.buckets.into_iter().collect();
        let vouched = self.vouched_clocks(&request.table)?;
        let (cells, trim_horizon) =
            self.cells_in_buckets(&request.table, request.buckets_log2, &buckets)?;
        Ok(CellsAnswer {
            cells: cells.iter().map(WireCell::from).collect(),
            trim_horizon,
            vouched,
        })
    }

    /// Per origin region, the clock up to which every change of that region's to `table`
    /// was applied here: read before a listing of cells, a live cell of that region's stamped
    /// at or below it and missing from the listing was here once and is deleted (its
    /// tombstone trimmed). This region's own is the last clock reading it issued; another
    /// region's what it has delivered here, unless its replica needs a re-seed here (then
    /// what it had when this node let go of it); a region not heard from since this node
    /// started vouches for nothing. Blocking.
    ///
    /// # Errors
    /// The table is gone.
    pub(crate) fn vouched_clocks(&self, table: &str) -> Result<BTreeMap<String, u64>> {
        let definition = self.store.table_definition(table)?;
        let let_go = crate::hold_limit::reseed_needed(&definition);
        let mut vouched: BTreeMap<String, u64> = self
            .inbound
            .lock()
            .iter()
            .filter(|((t, _), _)| t == table)
            .map(|((_, region), clock)| (region.clone(), *clock))
            .collect();
        for (region, record) in let_go {
            vouched.insert(region, record.delivered_clock);
        }
        vouched.insert(self.region().to_string(), self.store.last_clock().0);
        Ok(vouched)
    }

    /// Answers a peer's request for the cells at some keys, as a change batch it applies by
    /// last writer wins. Blocking.
    ///
    /// # Errors
    /// Validation when the table is not global here or a key is not one of its items;
    /// storage failures.
    pub fn receive_fetch(&self, request: FetchRequest) -> Result<ChangeBatch> {
        self.active_membership(&request.table)?;
        let keys = request
            .keys
            .iter()
            .map(|k| key_bytes(k))
            .collect::<Result<Vec<_>>>()?;
        let changes = self.replication.cells_at(&request.table, &keys)?;
        Ok(ChangeBatch {
            changes: changes.into_iter().map(WireChange::from).collect(),
            ..ChangeBatch::default()
        })
    }

    /// Compares `table` with every other ACTIVE region now, repairing what differs.
    ///
    /// # Errors
    /// Validation when the table is not global and ACTIVE here; a comparison with one region
    /// that fails is reported in its entry.
    pub async fn verify_table(self: &Arc<Self>, table: &str) -> Result<TableVerification> {
        let transport = self.client.clone();
        self.verify_table_with(&transport, table).await
    }

    /// [`Replicator::verify_table`] through `transport`.
    pub(crate) async fn verify_table_with(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        table: &str,
    ) -> Result<TableVerification> {
        let global = self.active_membership(table)?;
        let mut regions = Vec::new();
        for (region, replica) in &global.replicas {
            if region == self.region() || replica.status != ReplicaStatus::Active {
                continue;
            }
            let outcome = self.compare_with(transport, table, region, 0).await;
            regions.push(outcome.unwrap_or_else(|e| PeerVerification {
                region: region.clone(),
                error: Some(e.to_string()),
                ..PeerVerification::default()
            }));
        }
        Ok(TableVerification {
            table_name: table.to_string(),
            regions,
        })
    }

    /// One comparison of `table` with `region`, repairs included, scanning at most
    /// `cells_per_second` (0: no limit) on each side.
    async fn compare_with(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        table: &str,
        region: &str,
        cells_per_second: u64,
    ) -> Result<PeerVerification> {
        let peer = self.peer_of(region)?;
        let (me, name) = (self.clone(), table.to_string());
        let (proposed, items) = blocking(move || {
            let global = me.active_membership(&name)?;
            let bounds = me.own_bounds(&name, &global)?;
            let snapshot = me.replication.snapshot_table(&name)?;
            Ok((bounds, snapshot.approximate_items(&me.replication)))
        })
        .await?;
        let buckets_log2 = buckets_log2_for(items);
        let cells_per_second = match cells_per_second {
            0 => 0,
            rate => rate.max(items / SCAN_SECONDS),
        };
        let request = DigestRequest {
            table: table.to_string(),
            bounds: proposed.clone(),
            buckets_log2,
            cells_per_second,
            within: None,
        };
        let theirs = transport.digest(&peer, &request).await?;
        let exchanged = json_len(&request) + json_len(&theirs);
        let bounds = theirs.bounds.clone();
        if proposed.narrowed(&bounds) != bounds {
            return Err(Error::Validation(format!(
                "region {region} answered with bounds wider than asked for"
            )));
        }
        let (me, name, agreed) = (self.clone(), table.to_string(), bounds.clone());
        let (mine, cells) =
            blocking(move || me.table_digest(&name, &agreed, buckets_log2, None, cells_per_second))
                .await?;
        if theirs.buckets.len() != mine.len() {
            return Err(Error::Validation(format!(
                "region {region} answered with {} buckets, not {}",
                theirs.buckets.len(),
                mine.len()
            )));
        }
        let differing: Vec<u32> = (0u32..)
            .zip(mine.iter().zip(&theirs.buckets))
            .filter(|(_, (a, b))| a != b)
            .map(|(bucket, _)| bucket)
            .collect();
        let mut report = PeerVerification {
            region: region.to_string(),
            compared_up_to_millis: tidemark_core::HlcTimestamp(bounds.lowest_cutoff())
                .physical_millis(),
            cells_compared: cells,
            peer_cells_compared: theirs.cells,
            buckets: mine.len() as u64,
            buckets_differing: differing.len() as u64,
            bytes_exchanged: exchanged,
            ..PeerVerification::default()
        };
        let per_bucket = (cells.max(theirs.cells) / mine.len().max(1) as u64).max(1);
        let (leaves_log2, leaves, bounds, per_leaf) = self
            .narrow(
                transport,
                &peer,
                table,
                (buckets_log2, differing, bounds),
                per_bucket,
                cells_per_second,
                &mut report,
            )
            .await?;
        report.buckets_listed = leaves.len() as u64;
        let buckets_per_request = usize::try_from(CELLS_PER_REQUEST / per_leaf)
            .unwrap_or(usize::MAX)
            .max(1);
        for chunk in leaves.chunks(buckets_per_request) {
            self.repair_buckets(
                transport,
                &peer,
                table,
                leaves_log2,
                chunk,
                &bounds,
                &mut report,
            )
            .await?;
        }
        let labels = [("table", table.to_string()), ("peer", region.to_string())];
        metrics::counter!("tidemark_antientropy_comparisons_total", &labels).increment(1);
        metrics::counter!("tidemark_antientropy_cells_compared_total", &labels).increment(cells);
        metrics::counter!("tidemark_antientropy_differences_total", &labels)
            .increment(report.cells_differing);
        metrics::counter!("tidemark_antientropy_repaired_total", "table" => table.to_string(),
            "peer" => region.to_string(), "to" => "here")
        .increment(report.repaired_here);
        metrics::counter!("tidemark_antientropy_repaired_total", "table" => table.to_string(),
            "peer" => region.to_string(), "to" => "peer")
        .increment(report.repaired_there);
        metrics::counter!("tidemark_antientropy_unresolved_total", &labels)
            .increment(report.unresolved);
        Ok(report)
    }

    /// Narrows `differing`, buckets of 2^k holding about `per_bucket` cells each, down
    /// the hash tree (see the module's doc) while that pays, and returns the level reached,
    /// the buckets that differ there, the bounds the last digests were made within and about
    /// how many cells each of those buckets holds.
    #[allow(clippy::too_many_arguments)]
    async fn narrow(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        peer: &Peer,
        table: &str,
        (mut level, mut differing, mut bounds): (u8, Vec<u32>, Bounds),
        mut per_bucket: u64,
        cells_per_second: u64,
        report: &mut PeerVerification,
    ) -> Result<(u8, Vec<u32>, Bounds, u64)> {
        while differing.len() > NARROW_ABOVE_BUCKETS
            && per_bucket > NARROW_ABOVE_CELLS
            && level < MAX_LEAF_LOG2
        {
            let finer = (level + NARROWING_BITS).min(MAX_LEAF_LOG2);
            let shift = finer - level;
            if differing.len() << shift > MAX_NARROWED_SUMS {
                break;
            }
            let narrowed = Within {
                buckets_log2: level,
                buckets: differing,
            };
            let request = DigestRequest {
                table: table.to_string(),
                bounds: bounds.clone(),
                buckets_log2: finer,
                cells_per_second,
                within: Some(narrowed.clone()),
            };
            let theirs = transport.digest(peer, &request).await?;
            report.bytes_exchanged += json_len(&request) + json_len(&theirs);
            if bounds.narrowed(&theirs.bounds) != theirs.bounds {
                return Err(Error::Validation(format!(
                    "region {} answered with bounds wider than asked for",
                    peer.region
                )));
            }
            bounds = theirs.bounds;
            let (me, name, agreed, asked) = (
                self.clone(),
                table.to_string(),
                bounds.clone(),
                narrowed.clone(),
            );
            let (mine, _) = blocking(move || {
                me.table_digest(&name, &agreed, finer, Some(&asked), cells_per_second)
            })
            .await?;
            if theirs.buckets.len() != mine.len() {
                return Err(Error::Validation(format!(
                    "region {} answered with {} narrowed buckets, not {}",
                    peer.region,
                    theirs.buckets.len(),
                    mine.len()
                )));
            }
            differing = mine
                .iter()
                .zip(&theirs.buckets)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .filter_map(|(slot, _)| narrowed.bucket_at(slot, finer))
                .collect();
            level = finer;
            per_bucket = (per_bucket >> shift).max(1);
        }
        Ok((level, differing, bounds, per_bucket))
    }

    /// This side's cells of `table` at `keys`, as changes to ship (tombstones included).
    async fn cells_here(
        self: &Arc<Self>,
        table: &str,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<WireChange>> {
        let (me, name) = (self.clone(), table.to_string());
        let cells = blocking(move || Ok(me.replication.cells_at(&name, &keys)?)).await?;
        Ok(cells.into_iter().map(WireChange::from).collect())
    }

    /// Lists the cells of `buckets` on both sides and repairs each side with the other's
    /// newer cells, adding to `report`.
    #[allow(clippy::too_many_arguments)]
    async fn repair_buckets(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        peer: &Peer,
        table: &str,
        buckets_log2: u8,
        buckets: &[u32],
        bounds: &Bounds,
        report: &mut PeerVerification,
    ) -> Result<()> {
        let request = CellsRequest {
            table: table.to_string(),
            buckets_log2,
            buckets: buckets.to_vec(),
        };
        let answer = transport.cells(peer, &request).await?;
        report.bytes_exchanged += json_len(&request) + json_len(&answer);
        let theirs = answer
            .cells
            .into_iter()
            .map(CellStamp::try_from)
            .collect::<Result<Vec<_>>>()?;
        let (me, name) = (self.clone(), table.to_string());
        let wanted: BTreeSet<u32> = buckets.iter().copied().collect();
        let (mine, my_horizon) =
            blocking(move || me.cells_in_buckets(&name, buckets_log2, &wanted)).await?;
        let plan = Plan::of(mine, theirs, bounds, my_horizon, answer.trim_horizon);
        report.cells_differing +=
            (plan.send.len() + plan.fetch.len() + plan.unresolved.len()) as u64;
        report.unresolved += plan.unresolved.len() as u64;
        self.report_unresolved(transport, peer, table, &plan.unresolved, report)
            .await?;
        for keys in plan.fetch.chunks(KEYS_PER_REQUEST) {
            let request = FetchRequest {
                table: table.to_string(),
                keys: keys.iter().map(|k| key_text(k)).collect(),
            };
            let batch = transport.fetch(peer, &request).await?;
            report.bytes_exchanged += json_len(&request) + json_len(&batch);
            note_keys(&mut report.repaired_keys, &batch);
            let (me, from) = (self.clone(), peer.region.clone());
            let applied = blocking(move || me.receive_repair(&from, batch)).await?;
            report.repaired_here += applied.written;
        }
        for keys in plan.send.chunks(KEYS_PER_REQUEST) {
            let batch = ChangeBatch {
                changes: self.cells_here(table, keys.to_vec()).await?,
                ..ChangeBatch::default()
            };
            note_keys(&mut report.repaired_keys, &batch);
            let applied = transport.repair(peer, &batch).await?;
            report.bytes_exchanged += batch.encode().len() as u64 + json_len(&applied);
            report.repaired_there += applied.written;
        }
        Ok(())
    }

    /// Adds the first unresolved keys, by their attributes, to `report`, and logs them.
    async fn report_unresolved(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        peer: &Peer,
        table: &str,
        unresolved: &[(Vec<u8>, bool)],
        report: &mut PeerVerification,
    ) -> Result<()> {
        let room = KEYS_REPORTED.saturating_sub(report.unresolved_keys.len());
        let (mine, theirs): (Vec<_>, Vec<_>) =
            unresolved.iter().take(room).partition(|(_, here)| *here);
        let keys: Vec<Vec<u8>> = mine.into_iter().map(|(k, _)| k.clone()).collect();
        let here = self.cells_here(table, keys).await?;
        let there = match theirs.is_empty() {
            true => Vec::new(),
            false => {
                let request = FetchRequest {
                    table: table.to_string(),
                    keys: theirs.into_iter().map(|(k, _)| key_text(k)).collect(),
                };
                transport.fetch(peer, &request).await?.changes
            }
        };
        for (change, live_in) in here
            .into_iter()
            .map(|c| (c.keys, self.region()))
            .chain(there.into_iter().map(|c| (c.keys, peer.region.as_str())))
        {
            tracing::warn!(table, keys = ?change, live_in, peer = %peer.region,
                "an item is live in one region and has no cell in the other, older than its \
                 trim horizon: perhaps deleted there; left as it is");
            report.unresolved_keys.push(UnresolvedKey {
                keys: change,
                live_in: live_in.to_string(),
            });
        }
        Ok(())
    }

    /// Compares every global table with every other ACTIVE region every `config.interval`
    /// (jittered), until `shutdown`. Of each pair of regions, the one whose name sorts first
    /// starts the comparison, so each pair is compared once per interval.
    ///
    /// # Errors
    /// A fatal store error (the node must stop).
    pub async fn run_anti_entropy(
        self: Arc<Self>,
        config: AntiEntropyConfig,
        shutdown: CancellationToken,
    ) -> Result<(), tidemark_core::Error> {
        let transport = self.client.clone();
        self.run_anti_entropy_with(&transport, config, shutdown)
            .await
    }

    /// [`Replicator::run_anti_entropy`] through `transport`.
    pub(crate) async fn run_anti_entropy_with(
        self: Arc<Self>,
        transport: &dyn EntropyTransport,
        config: AntiEntropyConfig,
        shutdown: CancellationToken,
    ) -> Result<(), tidemark_core::Error> {
        if config.interval.is_zero() {
            shutdown.cancelled().await;
            return Ok(());
        }
        loop {
            let wait = config.interval.mul_f64(rand::random_range(0.5..1.5));
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            for (table, global) in GlobalTable::all(&self.store) {
                let active = |r: &str| {
                    global.replicas.get(r).map(|r| r.status) == Some(ReplicaStatus::Active)
                };
                if !active(self.region()) {
                    continue;
                }
                for region in global.replicas.keys() {
                    if region.as_str() <= self.region() || !active(region) {
                        continue;
                    }
                    if shutdown.is_cancelled() {
                        return Ok(());
                    }
                    let outcome = self
                        .compare_with(transport, &table, region, config.cells_per_second)
                        .await;
                    match outcome {
                        Ok(report) if report.cells_differing > 0 => tracing::warn!(
                            table, peer = %region, differing = report.cells_differing,
                            repaired_here = report.repaired_here,
                            repaired_there = report.repaired_there,
                            unresolved = report.unresolved,
                            "anti-entropy found replicas that differ"
                        ),
                        Ok(_) => {}
                        Err(Error::Core(e)) if e.is_fatal() => return Err(e),
                        Err(e) => tracing::debug!(table, peer = %region, error = %e,
                            "anti-entropy comparison not made; tried again next interval"),
                    }
                }
            }
        }
    }
}

/// Adds the keys of `batch`'s changes to `keys`, up to [`KEYS_REPORTED`].
fn note_keys(keys: &mut Vec<Item>, batch: &ChangeBatch) {
    let room = KEYS_REPORTED.saturating_sub(keys.len());
    keys.extend(batch.changes.iter().take(room).map(|c| c.keys.clone()));
}

/// How many bytes `message` takes as JSON: what it takes on the wire.
fn json_len<T: Serialize>(message: &T) -> u64 {
    serde_json::to_vec(message).map_or(0, |bytes| bytes.len() as u64)
}
