//! The re-seed of a replica this node let go of (`crate::hold_limit`), run by this node once
//! the replica's region answers again: every cell of the table is compared, both ways, and
//! then the record is cleared, so the region's changes are taken again and a hold is set for
//! it.
//!
//! Unlike a comparison, a re-seed has no delivered-through cut-off: the region was away, and
//! its writes of that time are on their way nowhere (this node refused them), so every cell
//! counts. Per key the newer cell wins, with one exception: a live cell of the region's with
//! no cell here, stamped up to what its origin region had delivered here, was here once and
//! is gone, so it was deleted here and its tombstone trimmed while the region was away (this
//! node stopped keeping tombstones for it). IMPORTANT: such a cell is deleted in the region,
//! with a tombstone stamped just past it, never brought here. A live cell stamped after that
//! was never here: a write the region made while away (or a third region's not delivered
//! yet), brought here.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidemark_core::Stamp;
use tidemark_core::replication::CellStamp;
use tidemark_core::retention::HoldName;

use super::{
    CELLS_PER_BUCKET, CELLS_PER_REQUEST, CellsRequest, EntropyTransport, FetchRequest,
    KEYS_PER_REQUEST, buckets_log2_for, by_key, key_text,
};
use crate::hold_limit::{self, reseed_needed};
use crate::protocol::{ChangeBatch, WireChange};
use crate::{Replicator, Result, blocking};

/// What a re-seed does about the cells of some buckets, key by key.
#[derive(Debug, Default, PartialEq)]
struct ReseedPlan {
    /// Keys this side has newer: sent to the region.
    send: Vec<Vec<u8>>,
    /// Keys the region has newer and this side never had: brought here.
    fetch: Vec<Vec<u8>>,
    /// Keys the region holds live that were deleted here, with the stamp of its cell.
    delete: Vec<(Vec<u8>, Stamp)>,
}

impl ReseedPlan {
    /// Compares `mine` and `theirs` (the region's), the cells of the same buckets on each
    /// side; `delivered` gives, per origin region, the clock up to which its cells were all
    /// here once.
    fn of(
        mine: Vec<CellStamp>,
        theirs: Vec<CellStamp>,
        delivered: impl Fn(&str) -> u64,
    ) -> ReseedPlan {
        let mut plan = ReseedPlan::default();
        for (key, (here, there)) in by_key(mine, theirs) {
            match (here, there) {
                (Some(h), Some(t)) if h.stamp == t.stamp => {}
                (Some(h), t) if h.stamp.wins_over(t.as_ref().map(|t| &t.stamp)) => {
                    // A tombstone the region has no cell for changes nothing there.
                    if h.live || t.is_some() {
                        plan.send.push(key);
                    }
                }
                (None, Some(t)) if t.live && t.stamp.hlc.0 <= delivered(&t.stamp.region) => {
                    plan.delete.push((key, t.stamp));
                }
                (None, Some(t)) if !t.live => {}
                (_, Some(_)) => plan.fetch.push(key),
                (_, None) => {}
            }
        }
        plan
    }
}

/// What a re-seed did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reseeded {
    /// Cells written here, from the region.
    pub(crate) here: u64,
    /// Cells written in the region, deletions included.
    pub(crate) there: u64,
    /// Items deleted in the region (deleted here while it was away).
    pub(crate) deleted_there: u64,
}

impl Replicator {
    /// Re-seeds `region`'s replica of `table` when this node let go of it, through
    /// `transport`; `None` when it needs none. On success the record is cleared: the
    /// region's changes are taken again and a hold is kept for it from before the comparison.
    ///
    /// # Errors
    /// The region could not be reached or refused (tried again at the next exchange); a
    /// storage failure.
    pub(crate) async fn reseed(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        table: &str,
        region: &str,
    ) -> Result<Option<Reseeded>> {
        let peer = self.peer_of(region)?;
        let (me, name, from) = (self.clone(), table.to_string(), region.to_string());
        let started = blocking(move || me.start_reseed(&name, &from)).await?;
        let Some((record, items, hold)) = started else {
            return Ok(None);
        };
        let outcome = self
            .compare_all(transport, &peer, table, record.delivered_clock, items)
            .await;
        let (me, name, from) = (self.clone(), table.to_string(), region.to_string());
        match outcome {
            Ok(done) => {
                blocking(move || me.finish_reseed(&name, &from, record)).await?;
                tracing::info!(
                    table,
                    peer = region,
                    written_here = done.here,
                    written_there = done.there,
                    deleted_there = done.deleted_there,
                    "the peer's replica is re-seeded: replication with it resumes"
                );
                Ok(Some(done))
            }
            Err(e) => {
                // Kept while the region is away again, the hold would outlive the limit.
                blocking(move || Ok(me.store.release_hold(&hold)?)).await?;
                Err(e)
            }
        }
    }

    /// Sets the hold for `region` at the next change (what the comparison sees is before
    /// it, what is after is shipped), and returns the record, the table's approximate size
    /// and the hold; `None` when the replica needs no re-seed. Blocking.
    fn start_reseed(
        &self,
        table: &str,
        region: &str,
    ) -> Result<Option<(hold_limit::Reseed, u64, HoldName)>> {
        let _guard = self.membership.lock();
        let definition = self.store.table_definition(table)?;
        let Some(record) = reseed_needed(&definition).get(region).copied() else {
            return Ok(None);
        };
        let hold = HoldName::Peer {
            region: region.to_string(),
            table_id: definition.table_id,
        };
        if self.store.hold(&hold).is_none() {
            self.store
                .set_hold(&hold, Some(definition.table_id), self.store.next_seq())?;
        }
        let items = self
            .replication
            .snapshot_table(table)?
            .approximate_items(&self.replication);
        Ok(Some((record, items, hold)))
    }

    /// Clears the record of `region`'s re-seed, unless it was made again meanwhile. Blocking.
    fn finish_reseed(&self, table: &str, region: &str, record: hold_limit::Reseed) -> Result<()> {
        let _guard = self.membership.lock();
        let definition = self.store.table_definition(table)?;
        let mut regions = reseed_needed(&definition);
        if regions.get(region) == Some(&record) {
            regions.remove(region);
            hold_limit::save(&self.store, table, &regions)?;
        }
        self.membership_changed();
        Ok(())
    }

    /// Compares every cell of `table` with `peer`'s, a few buckets a request, and repairs
    /// both sides; `delivered_clock` is what the peer's region had delivered here.
    async fn compare_all(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        peer: &crate::peers::Peer,
        table: &str,
        delivered_clock: u64,
        items: u64,
    ) -> Result<Reseeded> {
        let buckets_log2 = buckets_log2_for(items);
        let per_request = usize::try_from(CELLS_PER_REQUEST / CELLS_PER_BUCKET)
            .unwrap_or(usize::MAX)
            .max(1);
        let all: Vec<u32> = (0..1u32 << buckets_log2).collect();
        let mut done = Reseeded::default();
        for buckets in all.chunks(per_request) {
            let request = CellsRequest {
                table: table.to_string(),
                buckets_log2,
                buckets: buckets.to_vec(),
            };
            let theirs = transport
                .cells(peer, &request)
                .await?
                .cells
                .into_iter()
                .map(CellStamp::try_from)
                .collect::<Result<Vec<_>>>()?;
            let (me, name) = (self.clone(), table.to_string());
            let wanted: BTreeSet<u32> = buckets.iter().copied().collect();
            let (mine, _) =
                blocking(move || me.cells_in_buckets(&name, buckets_log2, &wanted)).await?;
            let plan = {
                let inbound = self.inbound.lock();
                ReseedPlan::of(mine, theirs, |origin| {
                    if origin == peer.region {
                        delivered_clock
                    } else if origin == self.region() {
                        u64::MAX
                    } else {
                        // A third region not heard from since this node started vouches for
                        // nothing: its cells are brought here rather than deleted there.
                        inbound
                            .get(&(table.to_string(), origin.to_string()))
                            .copied()
                            .unwrap_or(0)
                    }
                })
            };
            self.carry_out(transport, peer, table, plan, &mut done)
                .await?;
        }
        Ok(done)
    }

    /// Brings the region's newer cells here, sends this side's newer cells there and deletes
    /// there what was deleted here.
    async fn carry_out(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        peer: &crate::peers::Peer,
        table: &str,
        plan: ReseedPlan,
        done: &mut Reseeded,
    ) -> Result<()> {
        for keys in plan.fetch.chunks(KEYS_PER_REQUEST) {
            let request = FetchRequest {
                table: table.to_string(),
                keys: keys.iter().map(|k| key_text(k)).collect(),
            };
            let batch = transport.fetch(peer, &request).await?;
            let (me, from) = (self.clone(), peer.region.clone());
            let applied =
                blocking(move || me.apply_changes_from(&from, batch.changes, true)).await?;
            done.here += applied.written;
        }
        for keys in plan.send.chunks(KEYS_PER_REQUEST) {
            let (me, name, keys) = (self.clone(), table.to_string(), keys.to_vec());
            let changes = blocking(move || Ok(me.replication.cells_at(&name, &keys)?)).await?;
            let batch = ChangeBatch {
                changes: changes.into_iter().map(WireChange::from).collect(),
                ..ChangeBatch::default()
            };
            done.there += transport.repair(peer, &batch).await?.written;
        }
        for deleted in plan.delete.chunks(KEYS_PER_REQUEST) {
            let request = FetchRequest {
                table: table.to_string(),
                keys: deleted.iter().map(|(k, _)| key_text(k)).collect(),
            };
            let listed: BTreeSet<(u64, &str)> = deleted
                .iter()
                .map(|(_, s)| (s.hlc.0, s.region.as_str()))
                .collect();
            // Only the cell judged: one written there since is newer and stays.
            let tombstones: Vec<WireChange> = transport
                .fetch(peer, &request)
                .await?
                .changes
                .into_iter()
                .filter(|c| c.new_image.is_some() && listed.contains(&(c.clock, c.region.as_str())))
                .map(|c| WireChange {
                    table: c.table,
                    keys: c.keys,
                    new_image: None,
                    clock: c.clock.saturating_add(1),
                    region: self.region().to_string(),
                })
                .collect();
            let batch = ChangeBatch {
                changes: tombstones,
                ..ChangeBatch::default()
            };
            let written = transport.repair(peer, &batch).await?.written;
            done.there += written;
            done.deleted_there += written;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(key: &str, clock: u64, region: &str, live: bool) -> CellStamp {
        CellStamp {
            key: key.as_bytes().to_vec(),
            stamp: Stamp {
                hlc: tidemark_core::HlcTimestamp(clock),
                region: region.into(),
            },
            live,
        }
    }

    #[test]
    fn a_live_cell_missing_here_is_deleted_there_only_when_it_was_here_once() {
        let mine = vec![
            cell("same", 5, "us", true),
            cell("newer-here", 9, "us", true),
            cell("older-here", 3, "us", true),
            cell("only-here", 4, "us", true),
            cell("gone-here", 6, "us", false),
        ];
        let theirs = vec![
            cell("same", 5, "us", true),
            cell("newer-here", 2, "ap", true),
            cell("older-here", 8, "ap", true),
            cell("deleted-here", 10, "ap", true),
            cell("written-away", 11, "ap", true),
            cell("mine-deleted", 12, "us", true),
            cell("tombstone-there", 1, "ap", false),
        ];
        let plan = ReseedPlan::of(mine, theirs, |origin| match origin {
            "ap" => 10,
            _ => u64::MAX,
        });
        let keys = |keys: &[&str]| -> Vec<Vec<u8>> {
            keys.iter().map(|k| k.as_bytes().to_vec()).collect()
        };
        assert_eq!(plan.send, keys(&["newer-here", "only-here"]));
        assert_eq!(plan.fetch, keys(&["older-here", "written-away"]));
        let deleted: Vec<&[u8]> = plan.delete.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(deleted, [b"deleted-here".as_slice(), b"mine-deleted"]);
    }
}
