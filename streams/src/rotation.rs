//! The task that starts new generations of stream shards on a period (DynamoDB rolls shards
//! over about every four hours), so consumers see closed parents and open children.

use std::sync::Arc;
use std::time::Duration;

use tidemark_core::Store;
use tokio_util::sync::CancellationToken;

/// Starts new shard generations on the given period until `shutdown`.
///
/// # Errors
/// A fatal store error, or a panic of a rotation; others are logged and retried.
pub async fn run_shard_rotation(
    store: Arc<Store>,
    period: Duration,
    shutdown: CancellationToken,
) -> tidemark_core::Result<()> {
    let every = (period / 10).clamp(Duration::from_millis(10), Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        let worker = store.clone();
        match tokio::task::spawn_blocking(move || worker.rotate_stream_shards(period)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(rotated)) => tracing::debug!(rotated, "started new stream shard generations"),
            Ok(Err(e)) if e.is_fatal() => return Err(e),
            Ok(Err(e)) => tracing::warn!(error = %e, "stream shard rotation failed"),
            Err(e) => {
                return Err(tidemark_core::Error::Internal(format!(
                    "a shard rotation failed: {e}"
                )));
            }
        }
    }
}
