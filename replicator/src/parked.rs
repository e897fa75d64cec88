//! Replicated changes put aside: a change this node's store cannot hold (core's
//! `Replication::refusal`: a key that does not fit the table's key schema, a stamp the clock
//! cannot pass) is kept here, durably, instead of failing its whole batch, so the link it came
//! on moves on. Each is a catalog document (`doc/replication-parked/<id>`, through core's
//! documents), counted (`tidemark_replication_parked_total`, gauge
//! `tidemark_replication_parked`), listed for operators (`GET /admin/replicas`) and applied
//! again, by last writer wins, when the node starts and when an operator asks
//! (`POST /admin/replicas/retry`): a parked change older than what is stored by then is
//! discarded as lost, as any late write is.
//!
//! At most [`PARKED_LIMIT`] are kept: past it a batch with another refused change is refused
//! as a whole (its sender retries it), so nothing is ever dropped. While a table has parked
//! changes, its inbound hold stays before the oldest of them, so the tombstones they must be
//! judged against are still there when they are retried.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};
use tidemark_core::model::Item;
use tidemark_core::replication::{Applied, RemoteChange, encode_item};
use tidemark_core::{HlcTimestamp, Stamp};

use crate::membership::GlobalTable;
use crate::status::Conflict;
use crate::{Replicator, Result};

/// The most changes a node keeps aside; past it, links carrying more refused changes stop.
pub const PARKED_LIMIT: usize = 1_000;
/// The kind of the catalog documents parked changes are kept as.
const DOCUMENT_KIND: &str = "replication-parked";

/// One replicated change put aside, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParkedChange {
    /// Its document id: the same change parked twice is kept once.
    pub id: String,
    /// The table.
    pub table: String,
    /// The item's key attributes.
    pub keys: Item,
    /// The item after the change; `None` for a delete.
    pub new_image: Option<Item>,
    /// The clock of the change's stamp.
    pub clock: u64,
    /// Where the change was made (its stamp's region).
    pub origin_region: String,
    /// Who delivered it: the peer region, or `kafka`.
    pub received_from: String,
    /// Why it could not be applied (the last attempt's reason).
    pub reason: String,
    /// When it was put aside, in milliseconds since the epoch.
    pub parked_at_millis: u64,
}

impl ParkedChange {
    /// `change`, refused for `reason`, delivered by `from` at `now`.
    fn new(change: RemoteChange, from: &str, reason: String, now: u64) -> ParkedChange {
        let mut identity = change.table_name.as_bytes().to_vec();
        identity.push(0);
        encode_item(&mut identity, &change.keys);
        identity.extend_from_slice(change.stamp.region.as_bytes());
        let hash = xxhash_rust::xxh3::xxh3_64(&identity);
        ParkedChange {
            id: format!("{:016x}-{hash:016x}", change.stamp.hlc.0),
            table: change.table_name,
            keys: change.keys,
            new_image: change.new_image,
            clock: change.stamp.hlc.0,
            origin_region: change.stamp.region,
            received_from: from.to_string(),
            reason,
            parked_at_millis: now,
        }
    }

    /// The change, to apply again.
    fn to_remote(&self) -> RemoteChange {
        RemoteChange {
            table_name: self.table.clone(),
            keys: self.keys.clone(),
            new_image: self.new_image.clone(),
            stamp: self.stamp(),
        }
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            hlc: HlcTimestamp(self.clock),
            region: self.origin_region.clone(),
        }
    }
}

/// What operators see of a parked change (its image left out: it can be large).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParkedView {
    /// The table.
    pub table: String,
    /// The item's key attributes.
    pub keys: Item,
    /// True for a delete.
    pub delete: bool,
    /// The change's stamp: its clock's milliseconds, logical count and region.
    pub stamp: String,
    /// Who delivered it.
    pub received_from: String,
    /// Why it could not be applied.
    pub reason: String,
    /// When it was put aside, in milliseconds since the epoch.
    pub parked_at_millis: u64,
}

/// What one retry of the parked changes came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryReport {
    /// Changes tried.
    pub retried: u64,
    /// Applied now (or found applied already).
    pub applied: u64,
    /// Discarded: a newer write of their item is stored by now.
    pub lost: u64,
    /// Discarded: their table is no longer a global table here.
    pub dropped: u64,
    /// Still refused, and still parked.
    pub still_parked: u64,
}

/// The parked changes' ids, with their table and clock, loaded from the store on first use.
#[derive(Debug, Default)]
pub(crate) struct Parked {
    loaded: Mutex<Option<BTreeMap<String, (String, u64)>>>,
}

impl Replicator {
    /// The parked changes' index, loaded at first use; held, it serialises every change to
    /// the parked set.
    fn parked_index(
        &self,
    ) -> Result<parking_lot::MappedMutexGuard<'_, BTreeMap<String, (String, u64)>>> {
        let mut guard = self.parked.loaded.lock();
        if guard.is_none() {
            let kept: Vec<ParkedChange> = self.store.documents(DOCUMENT_KIND)?;
            let index = kept
                .into_iter()
                .map(|p| (p.id, (p.table, p.clock)))
                .collect::<BTreeMap<_, _>>();
            metrics::gauge!("tidemark_replication_parked").set(index.len() as f64);
            *guard = Some(index);
        }
        Ok(MutexGuard::map(guard, |loaded| {
            loaded.get_or_insert_default()
        }))
    }

    /// Puts `refused` changes (each with why) delivered by `from` aside, durably.
    ///
    /// # Errors
    /// LimitExceeded when keeping them would pass [`PARKED_LIMIT`] (nothing is kept: the
    /// batch is refused, for its sender to send again); storage failures.
    pub(crate) fn park(&self, from: &str, refused: Vec<(RemoteChange, String)>) -> Result<()> {
        if refused.is_empty() {
            return Ok(());
        }
        let now = self.store.clock().now_millis();
        let mut index = self.parked_index()?;
        let parked: Vec<ParkedChange> = refused
            .into_iter()
            .map(|(change, reason)| ParkedChange::new(change, from, reason, now))
            .collect();
        let new = parked.iter().filter(|p| !index.contains_key(&p.id)).count();
        if index.len() + new > PARKED_LIMIT {
            let first = parked.first().map(|p| p.reason.as_str()).unwrap_or("");
            tracing::error!(
                from,
                parked = index.len(),
                refused = parked.len(),
                reason = first,
                "replicated changes cannot be applied and no more can be put aside: the link stops until parked changes are resolved (tidemark replicas status, tidemark replicas retry)"
            );
            return Err(tidemark_core::Error::LimitExceeded(format!(
                "{} replicated changes are put aside on region {}, the most it keeps; {} more \
                 cannot be applied ({first}); resolve the parked changes \
                 (`tidemark replicas status`, then `tidemark replicas retry`)",
                index.len(),
                self.region(),
                parked.len()
            ))
            .into());
        }
        for change in &parked {
            self.store
                .save_document(DOCUMENT_KIND, &change.id, change)?;
            if index
                .insert(change.id.clone(), (change.table.clone(), change.clock))
                .is_none()
            {
                metrics::counter!("tidemark_replication_parked_total", "table" => change.table.clone())
                    .increment(1);
            }
            tracing::error!(
                table = %change.table,
                keys = ?change.keys,
                stamp = %change.stamp(),
                from,
                reason = %change.reason,
                "a replicated change cannot be applied: put aside, the link goes on"
            );
        }
        metrics::gauge!("tidemark_replication_parked").set(index.len() as f64);
        Ok(())
    }

    /// The clock of `table`'s oldest parked change, if it has one: its inbound hold must
    /// not pass it.
    pub(crate) fn oldest_parked_clock(&self, table: &str) -> Result<Option<u64>> {
        Ok(self
            .parked_index()?
            .values()
            .filter(|(t, _)| t == table)
            .map(|(_, clock)| *clock)
            .min())
    }

    /// Every parked change, oldest parked first, as operators see them.
    ///
    /// # Errors
    /// Storage failures; Corrupt for a record that does not decode.
    pub fn parked(&self) -> Result<Vec<ParkedView>> {
        let _index = self.parked_index()?;
        let mut kept: Vec<ParkedChange> = self.store.documents(DOCUMENT_KIND)?;
        kept.sort_by_key(|p| p.parked_at_millis);
        Ok(kept
            .into_iter()
            .map(|p| ParkedView {
                stamp: p.stamp().to_string(),
                table: p.table,
                keys: p.keys,
                delete: p.new_image.is_none(),
                received_from: p.received_from,
                reason: p.reason,
                parked_at_millis: p.parked_at_millis,
            })
            .collect())
    }

    /// Applies every parked change again, by last writer wins, and forgets those that are
    /// settled: applied, lost to a newer write, or for a table no longer global here. Those
    /// still refused stay parked, with the latest reason. Blocking.
    ///
    /// # Errors
    /// Storage failures (then everything stays parked).
    pub fn retry_parked(&self) -> Result<RetryReport> {
        let mut index = self.parked_index()?;
        let mut kept: Vec<ParkedChange> = self.store.documents(DOCUMENT_KIND)?;
        // In the order they were made: two changes of one item settle as they would have.
        kept.sort_by_key(|p| p.clock);
        let mut report = RetryReport {
            retried: kept.len() as u64,
            ..RetryReport::default()
        };
        let mut settled = Vec::new();
        let mut changes = Vec::new();
        let mut applying = Vec::new();
        for parked in kept {
            match GlobalTable::of(&self.store, &parked.table) {
                Some(_) => {
                    changes.push(parked.to_remote());
                    applying.push(parked);
                }
                None => {
                    report.dropped += 1;
                    settled.push(parked.id);
                }
            }
        }
        let outcomes = self.replication.apply_remote_batch(changes)?;
        let now = self.store.clock().now_millis();
        for (mut parked, outcome) in applying.into_iter().zip(outcomes) {
            match outcome {
                Applied::Written | Applied::Duplicate => report.applied += 1,
                Applied::Lost { winner, keys } => {
                    report.lost += 1;
                    self.conflicts.record(
                        &parked.table,
                        Conflict::new(now, keys, &parked.stamp(), &winner),
                    );
                }
                Applied::NoTable => report.dropped += 1,
                Applied::Refused { reason, .. } => {
                    report.still_parked += 1;
                    if reason != parked.reason {
                        parked.reason = reason;
                        self.store
                            .save_document(DOCUMENT_KIND, &parked.id, &parked)?;
                    }
                    continue;
                }
            }
            settled.push(parked.id);
        }
        self.store.delete_documents(DOCUMENT_KIND, &settled)?;
        for id in &settled {
            index.remove(id);
        }
        metrics::gauge!("tidemark_replication_parked").set(index.len() as f64);
        if report.retried > 0 {
            tracing::info!(
                retried = report.retried,
                applied = report.applied,
                lost = report.lost,
                dropped = report.dropped,
                still_parked = report.still_parked,
                "retried the parked replicated changes"
            );
        }
        Ok(report)
    }

    /// Applies the changes parked before this node started again, once, as it starts.
    ///
    /// # Errors
    /// A fatal store error (the node must stop); any other failure is logged, and the changes
    /// stay parked for an operator's retry.
    pub(crate) async fn retry_parked_at_start(self: Arc<Self>) -> Result<(), crate::RunError> {
        match crate::blocking(move || self.retry_parked()).await {
            Ok(_) => Ok(()),
            Err(crate::Error::Core(e)) if e.is_fatal() => Err(crate::RunError::Store(e)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot retry the parked replicated changes at start");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use tidemark_core::model::AttributeValue;
    use tidemark_core::ops::{GetItemRequest, PutItemRequest};
    use tidemark_core::{Engine, StoreConfig};

    use super::*;
    use crate::protocol::{ChangeBatch, WireChange};
    use crate::test_support;

    const TABLE: &str = "parking";

    /// A node of region `eu` holding `TABLE` as a global table shared with `us`.
    fn node(dir: &Path) -> (Engine, Arc<Replicator>) {
        let engine = Engine::open(StoreConfig::for_tests(dir)).expect("open");
        let replicator = test_support::replicator(&engine, "eu", &["us=http://127.0.0.1:9"]);
        let replicas = test_support::active(&["us", "eu"]);
        test_support::make_global(&engine, &replicator, TABLE, &replicas, 1);
        (engine, replicator)
    }

    fn keys(k: &str) -> Item {
        [("p".to_string(), AttributeValue::S(k.into()))].into()
    }

    fn image(k: &str, v: &str) -> Item {
        let mut item = keys(k);
        item.insert("v".into(), AttributeValue::S(v.into()));
        item
    }

    fn wire(keys: Item, value: &str, clock: u64) -> WireChange {
        let mut new_image = keys.clone();
        new_image.insert("v".into(), AttributeValue::S(value.into()));
        WireChange {
            table: TABLE.into(),
            keys,
            new_image: Some(new_image),
            clock,
            region: "us".into(),
        }
    }

    /// A key that does not fit the table's schema (a number where it has a string).
    fn misfit(n: u32) -> Item {
        [("p".to_string(), AttributeValue::N(i64::from(n).into()))].into()
    }

    fn get(engine: &Engine, k: &str) -> Option<Item> {
        engine
            .store
            .get_item(GetItemRequest {
                table_name: TABLE.into(),
                key: keys(k),
                ..Default::default()
            })
            .expect("a read")
            .item
    }

    #[test]
    fn a_change_that_cannot_be_applied_is_put_aside_and_the_rest_of_its_batch_applied() {
        let dir = tempfile::tempdir().expect("a folder");
        let (engine, replicator) = node(dir.path());
        let now = engine.store.clock().now_millis() << 16;
        let batch = ChangeBatch {
            changes: vec![
                wire(keys("a"), "1", now),
                wire(misfit(1), "bad", now + 1),
                wire(keys("b"), "1", now + 2),
            ],
            delivered: BTreeMap::new(),
        };
        let answer = replicator
            .receive_changes("us", batch.clone())
            .expect("the batch is taken");
        assert_eq!((answer.written, answer.parked), (2, 1));
        assert_eq!(get(&engine, "a"), Some(image("a", "1")));
        assert_eq!(get(&engine, "b"), Some(image("b", "1")));
        let parked = replicator.parked().expect("listed");
        assert_eq!(parked.len(), 1);
        let listed = parked.first().expect("one");
        assert_eq!(listed.keys, misfit(1));
        assert_eq!(listed.received_from, "us");
        assert!(listed.reason.contains("key schema"), "{}", listed.reason);

        // The same batch again (its answer was lost): the change is kept once.
        let again = replicator
            .receive_changes("us", batch)
            .expect("the batch is taken");
        assert_eq!((again.written, again.duplicates, again.parked), (0, 2, 1));
        assert_eq!(replicator.parked().expect("listed").len(), 1);

        // Still refused when retried: it stays.
        let report = replicator.retry_parked().expect("retried");
        assert_eq!(
            report,
            RetryReport {
                retried: 1,
                still_parked: 1,
                ..RetryReport::default()
            }
        );
        assert_eq!(replicator.parked().expect("listed").len(), 1);
    }

    #[test]
    fn parked_changes_survive_a_restart_and_are_retried_by_last_writer_wins() {
        let dir = tempfile::tempdir().expect("a folder");
        let now;
        {
            let (engine, replicator) = node(dir.path());
            engine
                .store
                .put_item(PutItemRequest {
                    table_name: TABLE.into(),
                    item: image("stored", "newer"),
                    ..Default::default()
                })
                .expect("a put");
            now = engine.store.clock().now_millis() << 16;
            // Changes a node could not apply when they came (parked by what it ran then).
            replicator
                .park(
                    "us",
                    vec![
                        (wire(keys("stored"), "older", 1).into(), "then".into()),
                        (wire(keys("fresh"), "new", now).into(), "then".into()),
                    ],
                )
                .expect("parked");
            assert_eq!(
                replicator.oldest_parked_clock(TABLE).expect("read"),
                Some(1),
                "the inbound hold stays before it"
            );
            engine.store.persist().expect("persist");
        }
        let (engine, replicator) = node(dir.path());
        assert_eq!(replicator.parked().expect("listed").len(), 2);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime
            .block_on(replicator.clone().retry_parked_at_start())
            .expect("retried");
        assert_eq!(get(&engine, "fresh"), Some(image("fresh", "new")));
        assert_eq!(
            get(&engine, "stored"),
            Some(image("stored", "newer")),
            "the older parked write lost to what is stored by now"
        );
        assert_eq!(replicator.conflicts().of(TABLE).0, 1);
        assert!(replicator.parked().expect("listed").is_empty());
        assert_eq!(replicator.oldest_parked_clock(TABLE).expect("read"), None);
    }

    #[test]
    fn past_the_limit_a_batch_is_refused_rather_than_anything_dropped() {
        let dir = tempfile::tempdir().expect("a folder");
        let (engine, replicator) = node(dir.path());
        let now = engine.store.clock().now_millis() << 16;
        let misfits = |from: u32, to: u32| ChangeBatch {
            changes: (from..to)
                .map(|n| wire(misfit(n), "bad", now + u64::from(n)))
                .collect(),
            delivered: BTreeMap::new(),
        };
        let limit = u32::try_from(PARKED_LIMIT).expect("small");
        replicator
            .receive_changes("us", misfits(0, limit))
            .expect("parked up to the limit");
        let mut over = misfits(limit, limit + 1);
        over.changes.insert(0, wire(keys("good"), "1", now));
        let refused = replicator.receive_changes("us", over.clone());
        assert!(
            matches!(&refused, Err(crate::Error::Core(tidemark_core::Error::LimitExceeded(m))) if m.contains("replicas retry")),
            "{refused:?}"
        );
        assert_eq!(replicator.parked().expect("listed").len(), PARKED_LIMIT);
        assert_eq!(
            get(&engine, "good"),
            Some(image("good", "1")),
            "the rest of the batch is applied; its resend finds a duplicate"
        );
    }
}
