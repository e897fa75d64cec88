//! The re-seed of a replica this node let go of (`crate::hold_limit`, or a Kafka read
//! position lost), run by this node once the replica's region answers again: every cell of
//! the table is compared, both ways, and then the record is cleared, so the region's changes
//! are taken again (and, through Kafka, read on from where its topic ended when the
//! comparison began) and a hold is set for it.
//!
//! Unlike a comparison, a re-seed has no delivered-through cut-off: the region was away, and
//! its writes of that time are on their way nowhere (this node refused them), so every cell
//! counts. Per key the newer cell wins, with one exception, the same on both sides: a live
//! cell with no cell at all on the other side, stamped up to what that side vouches for its
//! origin region (`Replicator::vouched_clocks`, read before that side listed its cells), was
//! there once and is gone, so it was deleted there and its tombstone trimmed while the two
//! were apart. IMPORTANT: such a cell is deleted, with a tombstone stamped just past it,
//! never copied over. A live cell stamped after what the other side vouches for was never
//! there: a write made while apart (or a third region's not delivered yet), copied over.
//!
//! Both sides trim while apart: this node stopped keeping tombstones for the region it let
//! go of, and the region (which may have let go of this node too, or, through Kafka, went on
//! reading this node's changes while this node lost its place in the region's topic) trims
//! what this node no longer pins.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidemark_core::Stamp;
use tidemark_core::replication::CellStamp;
use tidemark_core::retention::HoldName;

use super::{
    CELLS_PER_BUCKET, CELLS_PER_REQUEST, CellsRequest, EntropyTransport, FetchRequest,
    KEYS_PER_REQUEST, buckets_log2_for, by_key, key_text,
};
use crate::client::PeerError;
use crate::hold_limit::{self, reseed_needed};
use crate::peers::Transport;
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
    delete_there: Vec<(Vec<u8>, Stamp)>,
    /// Keys this side holds live that were deleted in the region, with the stamp of the
    /// cell here.
    delete_here: Vec<(Vec<u8>, Stamp)>,
}

impl ReseedPlan {
    /// Compares `mine` and `theirs` (the region's), the cells of the same buckets on each
    /// side; `vouched_here` and `vouched_there` give, per origin region, the clock up to
    /// which its cells were all on that side once (`Replicator::vouched_clocks`).
    fn of(
        mine: Vec<CellStamp>,
        theirs: Vec<CellStamp>,
        vouched_here: impl Fn(&str) -> u64,
        vouched_there: impl Fn(&str) -> u64,
    ) -> ReseedPlan {
        let was_on = |cell: &CellStamp, vouched: &dyn Fn(&str) -> u64| {
            cell.stamp.hlc.0 <= vouched(&cell.stamp.region)
        };
        let mut plan = ReseedPlan::default();
        for (key, (here, there)) in by_key(mine, theirs) {
            match (here, there) {
                (Some(h), Some(t)) if h.stamp == t.stamp => {}
                // A tombstone with no cell on the other side changes nothing there.
                (Some(h), None) if !h.live => {}
                (None, Some(t)) if !t.live => {}
                (Some(h), None) if was_on(&h, &vouched_there) => {
                    plan.delete_here.push((key, h.stamp));
                }
                (None, Some(t)) if was_on(&t, &vouched_here) => {
                    plan.delete_there.push((key, t.stamp));
                }
                (Some(_), None) => plan.send.push(key),
                (Some(h), Some(t)) if h.stamp.wins_over(Some(&t.stamp)) => plan.send.push(key),
                (_, Some(_)) => plan.fetch.push(key),
                (None, None) => {}
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
    /// Items deleted here (deleted in the region while it was away).
    pub(crate) deleted_here: u64,
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
        let outcome = async {
            // Through Kafka the region's topic is read on from where it ends now: what is
            // before is in the comparison, what is after is read again.
            let resume = match &self.config.transport {
                Transport::Direct => None,
                Transport::Kafka { .. } => {
                    let link = self.kafka.get().ok_or_else(|| PeerError::Unreachable {
                        region: "kafka".into(),
                        message: "the Kafka transport is not running yet".into(),
                    })?;
                    Some(link.ends(region, table).await?)
                }
            };
            let done = self.compare_all(transport, &peer, table, items).await?;
            Ok::<_, crate::Error>((done, resume))
        }
        .await;
        let (me, name, from) = (self.clone(), table.to_string(), region.to_string());
        match outcome {
            Ok((done, resume)) => {
                blocking(move || me.finish_reseed(&name, &from, record, resume)).await?;
                tracing::info!(
                    table,
                    peer = region,
                    written_here = done.here,
                    written_there = done.there,
                    deleted_there = done.deleted_there,
                    deleted_here = done.deleted_here,
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

    /// Clears the record of `region`'s re-seed, unless it was made again meanwhile; through
    /// Kafka, the region's topic is read on at `resume` (saved first: a node stopped before
    /// its reader saves its own positions re-seeds again rather than reading on from the lost
    /// position). Blocking.
    fn finish_reseed(
        &self,
        table: &str,
        region: &str,
        record: hold_limit::Reseed,
        resume: Option<Vec<i64>>,
    ) -> Result<()> {
        let _guard = self.membership.lock();
        let definition = self.store.table_definition(table)?;
        let mut regions = reseed_needed(&definition);
        if regions.get(region) == Some(&record) {
            if let Some(ends) = resume {
                let key = (table.to_string(), region.to_string());
                self.save_positions(&std::collections::BTreeMap::from([(
                    key.clone(),
                    ends.clone(),
                )]))?;
                self.topic_resumes.lock().insert(key, ends);
            }
            regions.remove(region);
            hold_limit::save(&self.store, table, &regions)?;
        }
        self.membership_changed();
        Ok(())
    }

    /// Compares every cell of `table` with `peer`'s, a few buckets a request, and repairs
    /// both sides.
    async fn compare_all(
        self: &Arc<Self>,
        transport: &dyn EntropyTransport,
        peer: &crate::peers::Peer,
        table: &str,
        items: u64,
    ) -> Result<Reseeded> {
        let buckets_log2 = buckets_log2_for(items);
        let per_request = usize::try_from(CELLS_PER_REQUEST / CELLS_PER_BUCKET)
            .unwrap_or(usize::MAX)
            .max(1);
        let all: Vec<u32> = (0..1u32 << buckets_log2).collect();
        let mut done = Reseeded::default();
        for buckets in all.chunks(per_request) {
            let (me, name) = (self.clone(), table.to_string());
            let wanted: BTreeSet<u32> = buckets.iter().copied().collect();
            let (vouched_here, (mine, _)) = blocking(move || {
                let vouched = me.vouched_clocks(&name)?;
                Ok((vouched, me.cells_in_buckets(&name, buckets_log2, &wanted)?))
            })
            .await?;
            let request = CellsRequest {
                table: table.to_string(),
                buckets_log2,
                buckets: buckets.to_vec(),
            };
            let answer = transport.cells(peer, &request).await?;
            let theirs = answer
                .cells
                .into_iter()
                .map(CellStamp::try_from)
                .collect::<Result<Vec<_>>>()?;
            // A region not heard from (since the side started) vouches for nothing: its
            // cells are copied over rather than deleted.
            let plan = ReseedPlan::of(
                mine,
                theirs,
                |origin| vouched_here.get(origin).copied().unwrap_or(0),
                |origin| answer.vouched.get(origin).copied().unwrap_or(0),
            );
            self.carry_out(transport, peer, table, plan, &mut done)
                .await?;
        }
        Ok(done)
    }

    /// Brings the region's newer cells here, sends this side's newer cells there, deletes
    /// there what was deleted here and here what was deleted there.
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
            let batch = ChangeBatch {
                changes: self.cells_here(table, keys.to_vec()).await?,
                ..ChangeBatch::default()
            };
            done.there += transport.repair(peer, &batch).await?.written;
        }
        for deleted in plan.delete_here.chunks(KEYS_PER_REQUEST) {
            let keys: Vec<Vec<u8>> = deleted.iter().map(|(k, _)| k.clone()).collect();
            let cells = self.cells_here(table, keys).await?;
            let tombstones = tombstones_past(cells, deleted, &peer.region);
            let (me, from) = (self.clone(), peer.region.clone());
            let applied = blocking(move || me.apply_changes_from(&from, tombstones, true)).await?;
            done.here += applied.written;
            done.deleted_here += applied.written;
        }
        for deleted in plan.delete_there.chunks(KEYS_PER_REQUEST) {
            let request = FetchRequest {
                table: table.to_string(),
                keys: deleted.iter().map(|(k, _)| key_text(k)).collect(),
            };
            let cells = transport.fetch(peer, &request).await?.changes;
            let tombstones = tombstones_past(cells, deleted, self.region());
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

/// Tombstones, stamped by `region` just past them, of the live cells among `cells` whose
/// stamps are the ones listed in `judged`: a cell written since is newer and stays.
fn tombstones_past(
    cells: Vec<WireChange>,
    judged: &[(Vec<u8>, Stamp)],
    region: &str,
) -> Vec<WireChange> {
    let listed: BTreeSet<(u64, &str)> = judged
        .iter()
        .map(|(_, s)| (s.hlc.0, s.region.as_str()))
        .collect();
    cells
        .into_iter()
        .filter(|c| c.new_image.is_some() && listed.contains(&(c.clock, c.region.as_str())))
        .map(|c| WireChange {
            table: c.table,
            keys: c.keys,
            new_image: None,
            clock: c.clock.saturating_add(1),
            region: region.to_string(),
        })
        .collect()
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
    fn a_live_cell_missing_on_one_side_is_deleted_only_when_it_was_there_once() {
        let mine = vec![
            cell("same", 5, "us", true),
            cell("newer-here", 9, "us", true),
            cell("older-here", 3, "us", true),
            cell("written-here-apart", 8, "us", true),
            cell("deleted-there", 6, "us", true),
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
        // Here: every cell of ap's up to 10 and all of its own. There: us's up to 7.
        let plan = ReseedPlan::of(
            mine,
            theirs,
            |origin| match origin {
                "ap" => 10,
                _ => u64::MAX,
            },
            |origin| match origin {
                "us" => 7,
                _ => 0,
            },
        );
        let keys = |keys: &[&str]| -> Vec<Vec<u8>> {
            keys.iter().map(|k| k.as_bytes().to_vec()).collect()
        };
        assert_eq!(plan.send, keys(&["newer-here", "written-here-apart"]));
        assert_eq!(plan.fetch, keys(&["older-here", "written-away"]));
        let deleted = |cells: &[(Vec<u8>, Stamp)]| -> Vec<Vec<u8>> {
            cells.iter().map(|(k, _)| k.clone()).collect()
        };
        assert_eq!(
            deleted(&plan.delete_there),
            keys(&["deleted-here", "mine-deleted"])
        );
        assert_eq!(deleted(&plan.delete_here), keys(&["deleted-there"]));
    }

    #[test]
    fn a_side_that_vouches_for_nothing_gets_every_live_cell_copied_over() {
        let plan = ReseedPlan::of(
            vec![cell("a", 3, "us", true)],
            vec![cell("b", 4, "ap", true)],
            |_| 0,
            |_| 0,
        );
        assert_eq!(plan.send, [b"a".to_vec()]);
        assert_eq!(plan.fetch, [b"b".to_vec()]);
        assert!(plan.delete_here.is_empty() && plan.delete_there.is_empty());
    }
}
