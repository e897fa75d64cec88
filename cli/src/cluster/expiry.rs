//! TTL expiry on a cluster region. For each partition of each table with TTL on, one live node
//! decides: the first of the live members by the partition's rendezvous order
//! ([`decider`]). It finds the partition's due items by its own clock and appends their
//! deletion to the partition's log ([`EXPIRE_ITEMS`]); every copy then deletes those of them
//! that have expired by the record's time ([`tidemark_core::Ttl::expire_keys`]), so every copy
//! deletes the same items, each with a REMOVE record flagged as a service delete.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidemark_core::model::Item;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use crate::server::AppState;
use crate::server::error::ApiError;

/// The operation of a log record that expires items (no DynamoDB operation has a colon).
pub(crate) const EXPIRE_ITEMS: &str = "tidemark:ExpireItems";

/// Most keys one expiry record carries.
const KEYS_PER_RECORD: usize = 100;

/// Most due items of one table looked at per pass.
const DUE_PER_PASS: usize = 2_000;

/// The body of an [`EXPIRE_ITEMS`] record.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExpireItems {
    pub(crate) table_name: String,
    pub(crate) keys: Vec<Item>,
}

/// The live member that decides expiry for `partition` of `log`: the first by rendezvous
/// order, so each partition has one decider and they spread over the members.
pub(crate) fn decider<'a>(live: &'a [String], log: &str, partition: u32) -> Option<&'a String> {
    live.iter().max_by_key(|node| {
        xxhash_rust::xxh3::xxh3_64(format!("{node}/{log}/{partition}").as_bytes())
    })
}

/// Runs expiry passes every `period` (and whenever `wake` is notified) until `shutdown`.
pub(crate) async fn run_expiry(
    node: AppState,
    cluster: Arc<Cluster>,
    period: Duration,
    wake: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = wake.notified() => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        if let Err(e) = expire_due(&node, &cluster).await {
            tracing::warn!("TTL expiry: {}", e.message);
        }
    }
}

/// One expiry pass over the partitions this node decides for; returns the items deleted.
///
/// # Errors
/// The logs cannot be reached, or a store failure.
pub(crate) async fn expire_due(node: &AppState, cluster: &Cluster) -> Result<u64, ApiError> {
    let store = &node.engine.store;
    let live = cluster.members().live();
    let me = cluster.members().me().to_string();
    let mut expired = 0;
    for definition in store.table_definitions() {
        let (Some(log), Some(_)) = (&definition.write_log, &definition.time_to_live_attribute)
        else {
            continue;
        };
        let Some(hash) = definition.key_shape().ok().map(|shape| shape.hash.name) else {
            continue;
        };
        let table = definition.table_name.clone();
        let engine = node.engine.clone();
        let due = tokio::task::spawn_blocking(move || engine.ttl.due_keys(&table, DUE_PER_PASS))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
        if due.is_empty() {
            continue;
        }
        let partitions = cluster.partitions_of(log).await?;
        let mut by_partition: BTreeMap<u32, Vec<Item>> = BTreeMap::new();
        for key in due {
            if let Some(value) = key.get(&hash) {
                let partition = tidemark_core::log_partition(value, partitions);
                by_partition.entry(partition).or_default().push(key);
            }
        }
        for (partition, keys) in by_partition {
            if decider(&live, log, partition) != Some(&me) {
                continue;
            }
            for chunk in keys.chunks(KEYS_PER_RECORD) {
                let body = serde_json::to_vec(&ExpireItems {
                    table_name: definition.table_name.clone(),
                    keys: chunk.to_vec(),
                })
                .map_err(|e| ApiError::internal(e.to_string()))?;
                let answer = cluster
                    .append(store, (log, partition), EXPIRE_ITEMS, &body, None)
                    .await?;
                expired += serde_json::from_slice::<serde_json::Value>(&answer)
                    .ok()
                    .and_then(|a| a.get("Expired")?.as_u64())
                    .unwrap_or(0);
            }
        }
    }
    metrics::counter!("tidemark_ttl_deletions_total").increment(expired);
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_has_one_decider_and_they_spread_over_the_members() {
        let live: Vec<String> = ["http://a", "http://b", "http://c"]
            .map(String::from)
            .to_vec();
        let mut counts = BTreeMap::new();
        let shuffled = [live[2].clone(), live[0].clone(), live[1].clone()];
        for partition in 0..48 {
            let chosen = decider(&live, "log", partition).unwrap();
            let again = decider(&shuffled, "log", partition);
            assert_eq!(
                Some(chosen),
                again,
                "the order of the members does not matter"
            );
            *counts.entry(chosen.clone()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert!(counts.values().all(|n| *n >= 6), "{counts:?}");
        assert_eq!(decider(&[], "log", 0), None);
    }
}
