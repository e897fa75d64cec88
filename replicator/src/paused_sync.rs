//! Tests' hold on the store's journal sync (the `journal-sync` failpoint), to see what the
//! replicator does while what it committed is not on disk yet.

use parking_lot::{Mutex, MutexGuard};

/// Pauses every journal sync of the test process until dropped (also when an assertion
/// fails, so no other test stays paused). The failpoint is global, so tests that pause it
/// take turns.
pub(crate) struct PausedSync {
    _turn: MutexGuard<'static, ()>,
}

impl PausedSync {
    /// Pauses the journal sync: commits go on, nothing more reaches the disk.
    pub(crate) fn start() -> PausedSync {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock();
        fail::cfg("journal-sync", "pause").expect("a failpoint action");
        PausedSync { _turn: turn }
    }
}

impl Drop for PausedSync {
    fn drop(&mut self) {
        fail::remove("journal-sync");
    }
}
