//! [`Halt`]: the store's stop condition. Raised once, by whoever finds that the node can no
//! longer keep its promises (a failed journal sync, corrupt stored bytes, a dead background
//! task); from then on the store refuses writes, and the node that watches it exits non-zero so
//! that a supervisor restarts it and journal recovery runs. A node never limps on serving 500s.

use std::sync::Arc;

use tokio::sync::watch;

/// The store's stop condition, shared by everything that can raise or watch it.
#[derive(Debug, Clone)]
pub struct Halt {
    reason: Arc<watch::Sender<Option<Arc<str>>>>,
}

impl Default for Halt {
    fn default() -> Self {
        Halt {
            reason: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl Halt {
    /// Raises the halt with `reason` (the first reason wins) and logs it.
    pub fn raise(&self, reason: impl Into<String>) {
        let reason: String = reason.into();
        self.reason.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            tracing::error!(%reason, "HALTING: the node can no longer keep its promises");
            *current = Some(Arc::from(reason.as_str()));
            true
        });
    }

    /// Why the store halted, once it has.
    pub fn reason(&self) -> Option<Arc<str>> {
        self.reason.borrow().clone()
    }

    /// Resolves with the reason once the store halts.
    pub async fn halted(&self) -> Arc<str> {
        let mut watch = self.reason.subscribe();
        match watch.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_else(|| Arc::from("")),
            // The sender lives in `self`, so the channel cannot close while we wait.
            Err(_) => Arc::from("the store closed"),
        }
    }
}
