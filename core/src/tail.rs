//! The one log reader: [`Store::read_log`] reads a [`LogCursor`]'s part of the change log, never
//! past the durable watermark (see `crate::changes::cursor` for what cursors follow and
//! filter); [`Store::wait_durable_past`] wakes a tailing task when there is more;
//! [`Store::table_lag`] counts a table's unread changes in O(1); and
//! [`Store::last_change_at_or_before`] finds the log's position at a point in time.

use crate::changes::{ChangeRecord, ChangeSeq, LogCursor, LogLimits, LogScope, Origin, TableLag};
use crate::storage::log::EntryFilter;
use crate::{Result, Store, TableId};

impl Store {
    /// Reads the next records of `cursor`, never past the durable watermark (the on-disk one
    /// for an [`LogCursor::on_disk`] cursor) nor its end, and moves it past every entry looked
    /// at (past the readable end when the read got there).
    ///
    /// # Errors
    /// Storage failures or corrupt records.
    pub fn read_log(&self, cursor: &mut LogCursor, limits: LogLimits) -> Result<Vec<ChangeRecord>> {
        let readable = match cursor.on_disk_only {
            true => self.on_disk_seq(),
            false => self.durable_seq(),
        };
        let through = match cursor.end {
            Some(end) => readable.min(end.saturating_prev()),
            None => readable,
        };
        let local_only = cursor.origin == Origin::Local;
        let read = match cursor.scope {
            LogScope::Node => self
                .storage
                .read_node_log(local_only, cursor.next, through, limits),
            LogScope::Table { table_id, lane } => self.storage.read_table_log(
                table_id,
                EntryFilter {
                    lane: lane.map(|l| (l.lanes, l.lane)),
                    local_only,
                },
                cursor.next,
                through,
                limits,
            ),
        };
        let read = self.halt_if_fatal(read)?;
        cursor.next = cursor.next.max(read.next);
        Ok(read.records)
    }

    /// The commit clock of the change at `seq`, or of the last one kept before it when that
    /// one was trimmed (`None` when none is kept). Commit clocks grow with sequences, and a
    /// local write's stamp is its commit clock: every local change after `seq` has a stamp
    /// past this one.
    ///
    /// # Errors
    /// Storage failures or a corrupt record.
    pub fn commit_clock_at(&self, seq: ChangeSeq) -> Result<Option<crate::HlcTimestamp>> {
        let clock = self.storage.commit_clock_through(seq);
        self.halt_if_fatal(clock)
    }

    /// The sequence the next commit will take, read while no commit can take it: a change
    /// is in a reader's range from here exactly when it commits after this call.
    pub fn next_seq(&self) -> ChangeSeq {
        self.storage.next_seq()
    }

    /// The last clock reading this node issued: every write of its own stamped at or before
    /// it is committed, so a snapshot taken after this call holds it (or what replaced it).
    pub fn last_clock(&self) -> crate::HlcTimestamp {
        self.storage.last_clock()
    }

    /// Change records of every table from `from` (inclusive) up to the durable watermark, at
    /// most `limit`.
    ///
    /// # Errors
    /// Storage failures or a corrupt record.
    pub fn read_changes(&self, from: ChangeSeq, limit: usize) -> Result<Vec<ChangeRecord>> {
        self.read_log(&mut LogCursor::node(from), LogLimits::records(limit))
    }

    /// Resolves once the durable watermark is past `seq` (at once if it already is), with the
    /// watermark.
    pub async fn wait_durable_past(&self, seq: ChangeSeq) -> ChangeSeq {
        let mut watermark = self.subscribe_durable();
        match watermark.wait_for(|durable| *durable > seq).await {
            Ok(durable) => *durable,
            // The sender lives as long as the store, which `self` keeps alive.
            Err(_) => self.durable_seq(),
        }
    }

    /// How many durable changes of a table are at or after `from`, and the commit time of the
    /// oldest: three index lookups, whatever the lag (each entry holds its table's running
    /// count of changes).
    ///
    /// # Errors
    /// Storage failures or corrupt entries.
    pub fn table_lag(&self, table_id: TableId, from: ChangeSeq) -> Result<TableLag> {
        let durable = self.durable_seq();
        let lag = (|| {
            let Some(first) = self.storage.first_table_change(table_id, from, durable)? else {
                return Ok(TableLag::default());
            };
            let Some(last) = self.storage.last_table_change(table_id, durable)? else {
                return Ok(TableLag::default());
            };
            let oldest = self.storage.commit_clock(first.seq)?;
            Ok(TableLag {
                records: last.ordinal.saturating_sub(first.ordinal) + 1,
                oldest_millis: oldest.map(|c| c.physical_millis()),
            })
        })();
        self.halt_if_fatal(lag)
    }

    /// The last durable change committed at or before `millis` on this node's commit clock
    /// (monotone in sequence order, so this is a binary search over the retained log), or
    /// `None` when every retained change is later (or the log is empty). Restore to a point
    /// in time replays the log up to here.
    ///
    /// # Errors
    /// Storage failures or corrupt records.
    pub fn last_change_at_or_before(&self, millis: u64) -> Result<Option<ChangeSeq>> {
        let search = (|| {
            let (mut low, mut high) = (self.oldest_retained_seq(), self.durable_seq());
            let mut found = None;
            while low <= high && high > ChangeSeq::ZERO {
                let middle = low.midpoint(high);
                // The log has gaps where a table's records were trimmed while another's are
                // held: the first record kept from `middle` on stands for it.
                match self.storage.commit_clock_from(middle)? {
                    Some((seq, clock)) if seq <= high && clock.physical_millis() <= millis => {
                        found = Some(seq);
                        low = seq.next();
                    }
                    // Later than `millis`, past `high`, or nothing kept from here on.
                    _ => high = middle.saturating_prev(),
                }
            }
            Ok(found)
        })();
        self.halt_if_fatal(search)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::Engine;
    use crate::changes::CauseKind;
    use crate::model::{AttributeValue, Item};
    use crate::ops::{CreateTableRequest, GetItemRequest, PutItemRequest};
    use crate::replication::RemoteChange;
    use crate::stamp::{HlcTimestamp, Stamp};
    use crate::{Durability, ManualClock, StoreConfig};

    fn open(dir: &std::path::Path, durability: Durability) -> Engine {
        let mut config = StoreConfig::new(dir);
        config.durability = durability;
        Engine::open_with_clock(config, Arc::new(ManualClock::new(1_700_000_000_000))).unwrap()
    }

    fn create(store: &Engine, name: &str) -> TableId {
        store
            .tables
            .create_table(CreateTableRequest::on_demand(name, "p", "S"))
            .unwrap();
        store.store.table_id(name).unwrap()
    }

    fn item(k: &str) -> Item {
        [("p".to_string(), AttributeValue::S(k.into()))].into()
    }

    fn put(store: &Engine, table: &str, k: &str) -> ChangeSeq {
        store
            .store
            .put_item(PutItemRequest {
                table_name: table.into(),
                item: item(k),
                ..Default::default()
            })
            .unwrap()
            .change_seq
            .unwrap()
    }

    fn seqs(records: &[ChangeRecord]) -> Vec<ChangeSeq> {
        records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn reads_are_bounded_and_resume_where_they_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), Durability::Buffer);
        let a = create(&store, "aaa");
        create(&store, "bbb");
        let mut mine = Vec::new();
        for i in 0..10 {
            mine.push(put(&store, "aaa", &format!("k{i}")));
            put(&store, "bbb", &format!("k{i}"));
        }
        let mut cursor = LogCursor::table(a, ChangeSeq::FIRST);
        let first = store
            .store
            .read_log(&mut cursor, LogLimits::records(3))
            .unwrap();
        assert_eq!(seqs(&first), mine[..3]);
        assert_eq!(cursor.next, mine[2].next());
        let rest = store
            .store
            .read_log(&mut cursor, LogLimits::records(100))
            .unwrap();
        assert_eq!(seqs(&rest), mine[3..]);
        assert_eq!(
            cursor.next,
            store.store.durable_seq().next(),
            "past what it read up to"
        );
        assert!(
            store
                .store
                .read_log(&mut cursor, LogLimits::records(100))
                .unwrap()
                .is_empty()
        );

        let mut bounded = LogCursor::table(a, ChangeSeq::FIRST).until(mine[4]);
        let page = store
            .store
            .read_log(&mut bounded, LogLimits::records(100))
            .unwrap();
        assert_eq!(seqs(&page), mine[..4]);
        assert!(bounded.is_finished());

        let mut scanning = LogCursor::node(ChangeSeq::FIRST);
        let limits = LogLimits {
            scanned: 5,
            ..LogLimits::records(100)
        };
        let page = store.store.read_log(&mut scanning, limits).unwrap();
        assert_eq!(page.len(), 5);
        assert_eq!(scanning.next, page[4].seq.next());
    }

    #[test]
    fn lanes_and_origins_are_filtered_before_records_are_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), Durability::Buffer);
        let table = create(&store, "tbl");
        let mut local = Vec::new();
        for i in 0..20 {
            local.push(put(&store, "tbl", &format!("k{i}")));
        }
        let replicated = store
            .replication
            .apply_remote(RemoteChange {
                table_name: "tbl".into(),
                keys: item("remote"),
                new_image: Some(item("remote")),
                stamp: Stamp {
                    hlc: HlcTimestamp(u64::MAX >> 1),
                    region: "eu-west-1".into(),
                },
            })
            .unwrap()
            .unwrap();

        let everything = store
            .store
            .read_log(
                &mut LogCursor::table(table, ChangeSeq::FIRST),
                LogLimits::records(100),
            )
            .unwrap();
        assert_eq!(everything.len(), 21);
        let only_local = store
            .store
            .read_log(
                &mut LogCursor::node(ChangeSeq::FIRST).local_only(),
                LogLimits::records(100),
            )
            .unwrap();
        assert!(only_local.iter().all(|r| r.cause == CauseKind::Request));
        assert!(!seqs(&only_local).contains(&replicated));
        let table_local = store
            .store
            .read_log(
                &mut LogCursor::table(table, ChangeSeq::FIRST).local_only(),
                LogLimits::records(100),
            )
            .unwrap();
        assert_eq!(seqs(&table_local), local);

        let mut per_lane = Vec::new();
        for lane in 0..4 {
            let records = store
                .store
                .read_log(
                    &mut LogCursor::table(table, ChangeSeq::FIRST).lane(4, lane),
                    LogLimits::records(100),
                )
                .unwrap();
            per_lane.extend(seqs(&records));
        }
        per_lane.sort_unstable();
        assert_eq!(
            per_lane,
            seqs(&everything),
            "the lanes split the table exactly"
        );

        // A scan limit bounds a read of a sparse lane, and the cursor still moves on.
        let mut sparse = LogCursor::table(table, ChangeSeq::FIRST).lane(64, 0);
        let limits = LogLimits {
            scanned: 3,
            ..LogLimits::records(100)
        };
        store.store.read_log(&mut sparse, limits).unwrap();
        assert_eq!(sparse.next, local[2].next());
    }

    /// Pauses every journal sync of the process until dropped (also when an assertion fails,
    /// so no other test stays paused). The failpoint is global: tests that pause it take
    /// turns.
    struct PausedSync {
        _turn: parking_lot::MutexGuard<'static, ()>,
    }

    impl PausedSync {
        fn start() -> PausedSync {
            static TURN: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
            let turn = TURN.lock();
            fail::cfg("journal-sync", "pause").unwrap();
            PausedSync { _turn: turn }
        }
    }

    impl Drop for PausedSync {
        fn drop(&mut self) {
            fail::remove("journal-sync");
        }
    }

    #[test]
    fn nothing_past_the_durable_watermark_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), Durability::Sync));
        let table = create(&store, "tbl");
        let durable = put(&store, "tbl", "before");
        // Hold the group commit's fsync: the next write commits but is not durable.
        let release = PausedSync::start();
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || put(&store, "tbl", "pending"))
        };
        let visible = || {
            store
                .store
                .get_item(GetItemRequest {
                    table_name: "tbl".into(),
                    key: item("pending"),
                    ..Default::default()
                })
                .unwrap()
                .item
                .is_some()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !visible() {
            assert!(
                std::time::Instant::now() < deadline,
                "the pending write never became visible"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(store.store.durable_seq(), durable);
        let mut cursor = LogCursor::table(table, ChangeSeq::FIRST);
        let read = store
            .store
            .read_log(&mut cursor, LogLimits::records(100))
            .unwrap();
        assert_eq!(
            seqs(&read),
            [durable],
            "the committed write is not durable yet"
        );
        let lag_from = |from| store.store.table_lag(table, from).unwrap().records;
        assert_eq!(lag_from(ChangeSeq::FIRST), 1);
        drop(release);
        let pending = writer.join().unwrap();
        let read = store
            .store
            .read_log(&mut cursor, LogLimits::records(100))
            .unwrap();
        assert_eq!(seqs(&read), [pending]);
        assert_eq!(lag_from(ChangeSeq::FIRST), 2);
        assert_eq!(lag_from(pending), 1);
        assert_eq!(lag_from(pending.next()), 0);
    }

    #[test]
    fn an_on_disk_cursor_reads_only_what_a_journal_sync_covered_under_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path(), Durability::Buffer));
        let table = create(&store, "tbl");
        let synced = put(&store, "tbl", "before");
        store.store.wait_on_disk(synced).unwrap();
        assert!(store.store.on_disk_seq() >= synced);

        let paused = PausedSync::start();
        // Acknowledged at once under buffer, but not on disk while the sync is held.
        let pending = put(&store, "tbl", "pending");
        assert_eq!(store.store.durable_seq(), pending);
        let mut everything = LogCursor::table(table, synced);
        let read = store
            .store
            .read_log(&mut everything, LogLimits::records(100))
            .unwrap();
        assert_eq!(seqs(&read), [synced, pending], "durable in buffer mode");
        let mut on_disk = LogCursor::table(table, synced).on_disk();
        let read = store
            .store
            .read_log(&mut on_disk, LogLimits::records(100))
            .unwrap();
        assert_eq!(
            seqs(&read),
            [synced],
            "the pending write is not on disk yet"
        );
        assert!(store.store.on_disk_seq() < pending);

        let (done, waited) = std::sync::mpsc::channel();
        let waiter = {
            let store = store.clone();
            std::thread::spawn(move || {
                let outcome = store.store.wait_on_disk(pending);
                done.send(()).unwrap();
                outcome
            })
        };
        assert!(
            waited.recv_timeout(Duration::from_millis(300)).is_err(),
            "waiting for the disk does not end while the journal sync is held"
        );
        drop(paused);
        waiter.join().unwrap().unwrap();
        assert!(store.store.on_disk_seq() >= pending);
        let read = store
            .store
            .read_log(&mut on_disk, LogLimits::records(100))
            .unwrap();
        assert_eq!(seqs(&read), [pending]);
    }

    #[test]
    fn waiting_for_the_disk_forces_a_sync_under_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.durability = Durability::Buffer;
        // No background sync would come in the test's lifetime: only the waiter's own can
        // put the change on disk.
        config.background_sync_interval = Duration::from_secs(3600);
        let store =
            Engine::open_with_clock(config, Arc::new(ManualClock::new(1_700_000_000_000))).unwrap();
        create(&store, "tbl");
        let seq = put(&store, "tbl", "k");
        assert!(store.store.on_disk_seq() < seq, "not on disk yet");
        let (done, waited) = std::sync::mpsc::channel();
        let waiter = store.store.clone();
        std::thread::spawn(move || done.send(waiter.wait_on_disk(seq)));
        // A bound on liveness only: a waiter that depended on the background sync would
        // wait an hour.
        let outcome = waited
            .recv_timeout(Duration::from_secs(60))
            .expect("the wait ends without the background sync");
        outcome.unwrap();
        assert!(store.store.on_disk_seq() >= seq);
    }
}
