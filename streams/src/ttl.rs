//! The TTL sweeper: a task that expires due items through core, waking at the next known
//! expiry, every `period`, or when asked to sweep now.

use std::sync::Arc;
use std::time::Duration;

use tidemark_core::ops::ExpiryReport;
use tidemark_core::{Store, Ttl};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most index entries one pass looks at per table before yielding.
const PASS_LIMIT: usize = 10_000;

/// A handle to ask the sweeper for a pass now.
#[derive(Debug, Clone, Default)]
pub struct SweepTrigger(Arc<Notify>);

impl SweepTrigger {
    /// Wakes the sweeper for an immediate pass.
    pub fn sweep_now(&self) {
        self.0.notify_one();
    }

    /// What the trigger notifies, for a sweeper of another kind (a cluster region's).
    pub fn notify(&self) -> Arc<Notify> {
        self.0.clone()
    }
}

/// Expires every item due now, pass after pass until none is left; returns how many.
///
/// # Errors
/// Storage failures.
pub fn sweep(ttl: &Ttl) -> tidemark_core::Result<ExpiryReport> {
    let mut total = ExpiryReport::default();
    loop {
        let report = ttl.expire_due_items(PASS_LIMIT)?;
        metrics::counter!("tidemark_ttl_deletions_total").increment(report.expired);
        total.expired += report.expired;
        total.next_due_second = report.next_due_second;
        if !report.more_due {
            return Ok(total);
        }
    }
}

/// Runs the sweeper until `shutdown`: a pass, then a sleep until the next expiry (at most
/// `period`) or a trigger.
///
/// # Errors
/// A fatal store error ([`tidemark_core::Error::is_fatal`]), or a panic of a pass; others are
/// logged and the pass retried.
pub async fn run_sweeper(
    store: Arc<Store>,
    ttl: Arc<Ttl>,
    period: Duration,
    trigger: SweepTrigger,
    shutdown: CancellationToken,
) -> tidemark_core::Result<()> {
    // Said once per pause, not at every pass of it.
    let mut paused = false;
    loop {
        let worker = ttl.clone();
        let next_due = match tokio::task::spawn_blocking(move || sweep(&worker)).await {
            Ok(Ok(report)) => {
                if report.expired > 0 {
                    tracing::debug!(expired = report.expired, "expired items by TTL");
                }
                if std::mem::take(&mut paused) {
                    tracing::info!("TTL expiry resumed: writes are no longer paused");
                }
                report.next_due_second
            }
            Ok(Err(e)) if e.is_fatal() => return Err(e),
            Ok(Err(tidemark_core::Error::WritesPaused(reason))) => {
                if !std::mem::replace(&mut paused, true) {
                    tracing::warn!(reason = %reason,
                        "TTL expiry waits while this node's writes are paused");
                }
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "TTL sweep failed; retrying next period");
                None
            }
            Err(e) => {
                return Err(tidemark_core::Error::Internal(format!(
                    "a TTL sweep pass failed: {e}"
                )));
            }
        };
        let now = store.clock().now_millis();
        let wait = next_due
            .map(|second| {
                Duration::from_millis((second + 1).saturating_mul(1000).saturating_sub(now))
            })
            .map_or(period, |until_due| until_due.min(period));
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
            _ = trigger.0.notified() => {}
        }
    }
}
