//! [`WriteFence`]: a pause of this node's own writes while it cannot stamp them truthfully.
//! Unlike the halt, it is lifted again: the replicator raises it while this node's clock is
//! further from most of its peers' than the group allows, and lowers it once the clocks agree.
//! Only writes that take this node's clock as their stamp are paused (client requests and TTL
//! expiry); replicated writes keep their origin's stamp and go on, and so do reads.

use std::sync::Arc;

use parking_lot::RwLock;

/// Whether this node's own writes are paused, and why; shared by the store and whoever
/// raises it.
#[derive(Debug, Clone, Default)]
pub struct WriteFence {
    reason: Arc<RwLock<Option<Arc<str>>>>,
}

impl WriteFence {
    /// Pauses this node's own writes because of `reason` (a newer reason replaces the
    /// older: it carries the latest measurement).
    pub fn raise(&self, reason: impl Into<String>) {
        let reason: String = reason.into();
        let mut current = self.reason.write();
        if current.is_none() {
            tracing::warn!(%reason, "refusing client writes");
        }
        *current = Some(Arc::from(reason.as_str()));
    }

    /// Lets this node's own writes through again.
    pub fn lower(&self) {
        // Called on every contact with a peer: no write lock while there is nothing to lower.
        if self.reason.read().is_none() {
            return;
        }
        if self.reason.write().take().is_some() {
            tracing::info!("accepting client writes again");
        }
    }

    /// Why writes are paused, while they are.
    pub fn reason(&self) -> Option<Arc<str>> {
        self.reason.read().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_fence_keeps_its_latest_reason_until_lowered() {
        let fence = WriteFence::default();
        assert_eq!(fence.reason(), None);
        fence.raise("first");
        fence.clone().raise("second");
        assert_eq!(fence.reason().as_deref(), Some("second"));
        fence.lower();
        assert_eq!(fence.reason(), None);
    }
}
