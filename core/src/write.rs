//! The one write protocol. Every writer (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
//! TransactWriteItems, TTL expiry, replicated writes, restore) goes through [`Store::write`]:
//!
//! 1. lock the key of every item it touches (by the key's 64-bit hash, taken in ascending
//!    order, so writers of overlapping sets never deadlock);
//! 2. read each item's [`Cell`]: the live item or its tombstone, with the stamp of the write
//!    that left it;
//! 3. let the writer decide from those cells (conditions, update expressions, expiry checks)
//!    what each item becomes, or fail as a whole;
//! 4. settle each decision with its [`Cause`] ([`settle`]): a local write that changes nothing
//!    writes nothing and emits nothing; a replicated write is applied only when its stamp is
//!    newer than the cell's (last writer wins), even when it carries the same item;
//! 5. commit what is left in ONE atomic batch (items, change records, indexes, TTL entries,
//!    statistics) under the locks, release them, and wait for the batch to be durable in the
//!    node's mode.
//!
//! So a write and its change record are either both applied or neither, and what a write
//! decided from is exactly what it replaced.
//!
//! The wait of step 5 can be taken out of the operation: inside [`Store::deferring_durability`]
//! writes return once committed and leave their sequence in a [`PendingDurability`], which the
//! caller awaits ([`Store::wait_durable`]) before it answers. The HTTP server runs `sync` writes
//! that way on its async workers, so a write waiting for the group commit holds no thread.

use std::cell::Cell as ThreadCell;
use std::sync::Arc;

use crate::changes::{Cause, CauseKind, ChangeSeq, LogPosition, LoggedWrite};
use crate::model::Item;
use crate::stamp::{HlcTimestamp, Stamp};
use crate::storage::catalog::TableEntry;
use crate::storage::commit::Mutation;
use crate::storage::index::check_index_keys;
use crate::storage::keys::item_key;
use crate::{Error, Result, Store};

pub use crate::storage::Cell;

/// One item a write touches: its table and key (already checked against the schema), and who
/// is writing it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) table: Arc<TableEntry>,
    /// The key attributes; `None` when the writer knows only the storage key (the TTL index
    /// holds storage keys), so they are taken from the stored item.
    pub(crate) keys: Option<Item>,
    pub(crate) key_bytes: Vec<u8>,
    pub(crate) cause: Cause,
}

impl Target {
    pub(crate) fn new(table: Arc<TableEntry>, keys: Item, cause: Cause) -> Target {
        let key_bytes = item_key(table.id, &table.shape, &keys);
        Target {
            table,
            keys: Some(keys),
            key_bytes,
            cause,
        }
    }

    /// The item stored under `key_bytes`, whose key attributes come from the item itself.
    pub(crate) fn stored(table: Arc<TableEntry>, key_bytes: Vec<u8>, cause: Cause) -> Target {
        Target {
            table,
            keys: None,
            key_bytes,
            cause,
        }
    }
}

/// What a writer decided for one item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Leave it as it is (a condition check, or nothing to do).
    Keep,
    /// Make it this item (`Some`) or delete it (`None`).
    Write(Option<Item>),
}

/// What settling a decision leaves to commit: the new item, or nothing.
///
/// IMPORTANT: this is the only place that decides whether a write is a no-op. A local write
/// (request, expiry, restore) that leaves the item as it is writes nothing and emits no change
/// record, as DynamoDB's streams do. A replicated write is compared by stamp alone: it wins
/// over an older cell even when it carries the same item (so the cell takes its stamp and
/// every region ends with the same one), and loses to an equal or newer cell.
pub(crate) fn settle(cell: &Cell, decision: Decision, cause: &Cause) -> Option<Option<Item>> {
    let Decision::Write(new) = decision else {
        return None;
    };
    match cause {
        Cause::Replica(incoming) => incoming.wins_over(cell.stamp.as_ref()).then_some(new),
        Cause::Request | Cause::Expiry | Cause::Restore | Cause::Logged(_) => {
            (cell.item != new).then_some(new)
        }
    }
}

/// Moves a logged write's stamp past the stamp of the cell it replaces, so stamps grow with
/// the log's order on every copy alike (the node that took a later request may have a clock
/// behind the one that took the earlier).
fn move_past(stamp: &mut Stamp, cell: Option<&Stamp>) {
    if let Some(cell) = cell
        && !stamp.wins_over(Some(cell))
    {
        stamp.hlc = HlcTimestamp(cell.hlc.0 + 1);
    }
}

/// The outcome of a write: what the writer's decision returned, and the sequence of the last
/// change record committed (`None` when nothing changed).
#[derive(Debug)]
pub(crate) struct Written<T> {
    pub(crate) value: T,
    pub(crate) last_seq: Option<ChangeSeq>,
}

impl Store {
    /// Runs one write: locks `targets`, reads their cells, asks `decide` what each becomes
    /// (one decision per target, in order, or an error that cancels the whole write), and
    /// commits every decision that settles to a change in one atomic, durable batch.
    ///
    /// `decide` runs under the key locks and may do bookkeeping of its own there (the TTL
    /// sweep drops stale index entries).
    ///
    /// # Errors
    /// Whatever `decide` returns; Validation for an index key of the wrong type (local writes
    /// only); WritesPaused for a client write or expiry while the write fence is raised;
    /// storage failures (then nothing was written).
    pub(crate) fn write<T>(
        &self,
        targets: Vec<Target>,
        decide: impl FnOnce(&[Target], &[Cell]) -> Result<(Vec<Decision>, T)>,
    ) -> Result<Written<T>> {
        if checking() {
            let answer = self.checked(&targets, decide);
            if matches!(answer, Error::WriteChecked) {
                record_checked(&targets);
            }
            return Err(answer);
        }
        let targets = self.logged_causes(targets)?;
        // Writes stamped with this node's clock wait while the clock is not trusted; a
        // replicated or logged write brings its stamp, and a restore's table is its own.
        if targets
            .iter()
            .any(|t| matches!(t.cause, Cause::Request | Cause::Expiry))
            && let Some(reason) = self.fence.reason()
        {
            return Err(Error::WritesPaused(reason.to_string()));
        }
        let keys: Vec<&[u8]> = targets.iter().map(|t| t.key_bytes.as_slice()).collect();
        let locks = self.storage.lock_keys(&keys);
        let cells = targets
            .iter()
            .map(|t| self.storage.read_cell(&t.key_bytes))
            .collect::<Result<Vec<Cell>>>()?;
        let (decisions, value) = decide(&targets, &cells)?;
        if decisions.len() != targets.len() {
            return Err(Error::Internal(format!(
                "a write decided {} of its {} items",
                decisions.len(),
                targets.len()
            )));
        }
        let mut mutations = Vec::new();
        for ((mut target, cell), decision) in targets.into_iter().zip(cells).zip(decisions) {
            let Some(new) = settle(&cell, decision, &target.cause) else {
                continue;
            };
            if let Cause::Logged(logged) = &mut target.cause {
                move_past(&mut logged.stamp, cell.stamp.as_ref());
            }
            // A replicated write is applied whatever its index keys hold: its region accepted
            // it (an index may exist here before it exists there), and an item whose index key
            // has another type is simply not in that index, as a backfill leaves it. So is a
            // logged write: the node that took it checked its index keys, and a copy may apply
            // it before or after a record of the tables log that adds an index, so whether
            // it is written cannot depend on the indexes.
            if let Some(new) = &new
                && !matches!(target.cause, Cause::Replica(_) | Cause::Logged(_))
            {
                check_index_keys(&target.table.indexes(), new)?;
            }
            let keys = match (target.keys, cell.item.as_ref().or(new.as_ref())) {
                (Some(keys), _) => keys,
                (None, Some(item)) => target.table.shape.project_key(item),
                (None, None) => {
                    return Err(Error::Internal(
                        "a write by storage key found no item to take its key from".into(),
                    ));
                }
            };
            mutations.push(Mutation {
                table: target.table,
                key_bytes: target.key_bytes,
                keys,
                old: cell.item,
                new,
                cause: target.cause,
            });
        }
        if mutations.is_empty() {
            return Ok(Written {
                value,
                last_seq: None,
            });
        }
        let last_seq = self.storage.commit(&mutations)?;
        // IMPORTANT for throughput: the key locks go before the wait for durability, so the
        // writers of these items (a large write, a seeding page, has many) do not wait through
        // an fsync. That is safe: a later write of these keys commits after
        // this one in the journal, so it is durable only once this one is, and a write that
        // is lost with this one in a crash was never acknowledged.
        drop(locks);
        if !defer_durable_wait(last_seq) {
            self.storage.wait_durable(last_seq)?;
        }
        Ok(Written {
            value,
            last_seq: Some(last_seq),
        })
    }

    /// What a write reached inside [`Store::checking_writes`] answers: the refusal of an item
    /// whose index key has the wrong type, decided from the items as they stand here without
    /// locks (the log's order decides everything else, conditions included, when the
    /// request is applied), else [`Error::WriteChecked`].
    fn checked<T>(
        &self,
        targets: &[Target],
        decide: impl FnOnce(&[Target], &[Cell]) -> Result<(Vec<Decision>, T)>,
    ) -> Error {
        let Ok(cells) = (targets.iter())
            .map(|t| self.storage.read_cell(&t.key_bytes))
            .collect::<Result<Vec<Cell>>>()
        else {
            return Error::WriteChecked;
        };
        let Ok((decisions, _)) = decide(targets, &cells) else {
            return Error::WriteChecked;
        };
        for (target, decision) in targets.iter().zip(decisions) {
            if let Decision::Write(Some(new)) = decision
                && let Err(refused) = check_index_keys(&target.table.indexes(), &new)
            {
                return refused;
            }
        }
        Error::WriteChecked
    }

    /// Writes one item: [`Store::write`] for a single target.
    ///
    /// # Errors
    /// As [`Store::write`].
    pub(crate) fn write_one<T>(
        &self,
        target: Target,
        decide: impl FnOnce(&Cell) -> Result<(Decision, T)>,
    ) -> Result<Written<T>> {
        self.write(vec![target], |_, cells| {
            let empty = Cell::default();
            let (decision, value) = decide(cells.first().unwrap_or(&empty))?;
            Ok((vec![decision], value))
        })
    }
}

/// A write an operation reached inside [`Store::checking_writes`]: which item of which table.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedWrite {
    /// The table's name.
    pub table: String,
    /// The log its writes go through on a cluster region.
    pub write_log: Option<String>,
    /// The item's partition key value (`None` for a write by storage key).
    pub partition_key: Option<crate::model::AttributeValue>,
}

thread_local! {
    /// On this thread inside [`Store::checking_writes`]: the writes reached so far.
    static CHECKING: std::cell::RefCell<Option<Vec<CheckedWrite>>> = const { std::cell::RefCell::new(None) };
}

/// True on this thread inside [`Store::checking_writes`].
fn checking() -> bool {
    CHECKING.with(|checking| checking.borrow().is_some())
}

/// Inside [`Store::checking_writes`], records what `targets` would write.
fn record_checked(targets: &[Target]) {
    CHECKING.with(|checking| {
        let mut checking = checking.borrow_mut();
        let Some(reached) = checking.as_mut() else {
            return;
        };
        reached.extend(targets.iter().map(|target| {
            CheckedWrite {
                table: target.table.name.clone(),
                write_log: target.table.definition.read().write_log.clone(),
                partition_key: (target.keys.as_ref())
                    .and_then(|keys| keys.get(&target.table.shape.hash.name).cloned()),
            }
        }));
    })
}

impl Store {
    /// Runs `operation` on this thread up to its writes: every check it makes before writing
    /// runs, and each write it reaches fails with [`Error::WriteChecked`] before it locks or
    /// writes anything, recorded unless it is refused there (an index key of the wrong type).
    /// Returns what the operation answered and the writes it reached (none: its answer
    /// stands, a refusal or a request that writes nothing).
    pub fn checking_writes<T>(&self, operation: impl FnOnce() -> T) -> (T, Vec<CheckedWrite>) {
        struct Restore(Option<Vec<CheckedWrite>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let outer = self.0.take();
                CHECKING.with(|checking| *checking.borrow_mut() = outer);
            }
        }
        let restore = Restore(CHECKING.with(|checking| checking.borrow_mut().replace(Vec::new())));
        let value = operation();
        let reached = CHECKING.with(|checking| checking.borrow_mut().take().unwrap_or_default());
        drop(restore);
        (value, reached)
    }
}

thread_local! {
    /// On this thread inside [`Store::applying_logged`]: the stamp and position of the log
    /// record being applied.
    static APPLYING: std::cell::RefCell<Option<(Stamp, LogPosition)>> = const { std::cell::RefCell::new(None) };
}

impl Store {
    /// Runs `operation` on this thread as the application of the log record stamped `stamp`
    /// at `position`: its client writes and expiries become logged writes with that stamp and
    /// position (their kind kept), and table definitions it makes take their time from the
    /// stamp and their log from the position, so every copy that applies the record makes the
    /// same change.
    pub fn applying_logged<T>(
        &self,
        stamp: Stamp,
        position: LogPosition,
        operation: impl FnOnce() -> T,
    ) -> T {
        struct Restore(Option<(Stamp, LogPosition)>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let outer = self.0.take();
                APPLYING.with(|applying| *applying.borrow_mut() = outer);
            }
        }
        let _restore =
            Restore(APPLYING.with(|applying| applying.borrow_mut().replace((stamp, position))));
        operation()
    }

    /// The time of a change this node makes now: the log record's stamp while one is being
    /// applied (so every copy records the same), else the clock's reading.
    pub fn now_millis(&self) -> u64 {
        APPLYING
            .with(|applying| {
                (applying.borrow().as_ref()).map(|(stamp, _)| stamp.hlc.physical_millis())
            })
            .unwrap_or_else(|| self.clock.now_millis())
    }

    /// The position of the record being applied on this thread ([`Store::applying_logged`]).
    pub(crate) fn applying_position(&self) -> Option<LogPosition> {
        APPLYING.with(|applying| applying.borrow().as_ref().map(|(_, at)| at.clone()))
    }

    /// Makes every client write and expiry go through a region's log from now on: outside
    /// [`Store::applying_logged`] they are refused, so nothing writes around the log.
    pub fn require_logged_writes(&self) {
        self.logged_only
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// True once [`Store::require_logged_writes`] was called.
    pub fn writes_through_log(&self) -> bool {
        self.logged_only.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The targets with the causes this thread writes them with: inside
    /// [`Store::applying_logged`], client writes and expiries become logged writes.
    fn logged_causes(&self, mut targets: Vec<Target>) -> Result<Vec<Target>> {
        let local = |cause: &Cause| matches!(cause, Cause::Request | Cause::Expiry);
        if !targets.iter().any(|t| local(&t.cause)) {
            return Ok(targets);
        }
        let applying = APPLYING.with(|applying| applying.borrow().clone());
        let Some((stamp, position)) = applying else {
            if self.writes_through_log() {
                return Err(Error::Validation(
                    "This operation's writes are not supported on a cluster region yet: a \
                     cluster region writes only through its log"
                        .into(),
                ));
            }
            return Ok(targets);
        };
        for target in &mut targets {
            let kind = match target.cause {
                Cause::Request => CauseKind::Request,
                Cause::Expiry => CauseKind::Expiry,
                _ => continue,
            };
            target.cause = Cause::Logged(Box::new(LoggedWrite {
                stamp: stamp.clone(),
                kind,
                position: position.clone(),
            }));
        }
        Ok(targets)
    }
}

thread_local! {
    /// On this thread inside [`Store::deferring_durability`]: `Some` with the last sequence
    /// committed so far (`Some(None)` before the first).
    static DEFERRED: ThreadCell<Option<Option<ChangeSeq>>> = const { ThreadCell::new(None) };
}

/// Records `seq` for the caller to wait on, when this thread is deferring durability waits.
fn defer_durable_wait(seq: ChangeSeq) -> bool {
    DEFERRED.with(|deferred| match deferred.get() {
        Some(last) => {
            // `None` orders before any sequence, so the max is the latest write.
            deferred.set(Some(last.max(Some(seq))));
            true
        }
        None => false,
    })
}

/// Writes an operation committed without waiting for them to be durable; answering the
/// operation's caller before [`Store::wait_durable`] resolves would acknowledge writes a crash
/// can lose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "the writes are not durable until Store::wait_durable resolves"]
pub struct PendingDurability {
    last_seq: Option<ChangeSeq>,
}

impl PendingDurability {
    /// The last change to wait for (`None`: the operation committed nothing).
    pub fn last_seq(&self) -> Option<ChangeSeq> {
        self.last_seq
    }
}

/// Restores the thread's deferral state when the deferring scope ends, even by a panic (a
/// thread left deferring would acknowledge later writes without waiting).
struct DeferralScope {
    outer: Option<Option<ChangeSeq>>,
}

impl DeferralScope {
    fn enter() -> DeferralScope {
        DeferralScope {
            outer: DEFERRED.with(|deferred| deferred.replace(Some(None))),
        }
    }

    fn collect(&self) -> Option<ChangeSeq> {
        DEFERRED.with(|deferred| deferred.get().flatten())
    }
}

impl Drop for DeferralScope {
    fn drop(&mut self) {
        let inner = self.collect();
        DEFERRED.with(|deferred| {
            // A nested scope's writes stay pending in the enclosing one.
            deferred.set(self.outer.map(|last| last.max(inner)));
        });
    }
}

impl Store {
    /// Runs `operation` on this thread with its writes' durability waits taken out: each write
    /// returns once committed, and the result comes with what to wait for before answering.
    pub fn deferring_durability<T>(&self, operation: impl FnOnce() -> T) -> (T, PendingDurability) {
        let scope = DeferralScope::enter();
        let value = operation();
        let pending = PendingDurability {
            last_seq: scope.collect(),
        };
        (value, pending)
    }

    /// Resolves once the writes of `pending` are durable in the node's mode.
    ///
    /// # Errors
    /// Halted when the journal could not be made durable (the node stops).
    pub async fn wait_durable(&self, pending: PendingDurability) -> Result<()> {
        match pending.last_seq {
            Some(seq) => {
                self.storage
                    .pipeline
                    .durable()
                    .wait_durable_async(seq)
                    .await
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttributeValue;
    use crate::stamp::{HlcTimestamp, Stamp};

    fn item(v: &str) -> Item {
        [("p".to_string(), AttributeValue::S(v.into()))].into()
    }

    fn stamp(hlc: u64, region: &str) -> Stamp {
        Stamp {
            hlc: HlcTimestamp(hlc),
            region: region.into(),
        }
    }

    fn cell(item: Option<Item>, stamp: Option<Stamp>) -> Cell {
        Cell { item, stamp }
    }

    #[test]
    fn local_writes_that_change_nothing_write_nothing() {
        let live = cell(Some(item("a")), Some(stamp(5, "us")));
        for cause in [Cause::Request, Cause::Expiry, Cause::Restore] {
            assert_eq!(
                settle(&live, Decision::Write(Some(item("a"))), &cause),
                None
            );
            assert_eq!(
                settle(&live, Decision::Write(Some(item("b"))), &cause),
                Some(Some(item("b")))
            );
            assert_eq!(settle(&live, Decision::Write(None), &cause), Some(None));
            assert_eq!(settle(&live, Decision::Keep, &cause), None);
        }
        let tombstone = cell(None, Some(stamp(5, "us")));
        assert_eq!(
            settle(&tombstone, Decision::Write(None), &Cause::Request),
            None,
            "deleting a deleted item"
        );
        assert_eq!(
            settle(&Cell::default(), Decision::Write(None), &Cause::Request),
            None,
            "deleting a missing item"
        );
    }

    #[test]
    fn replicated_writes_go_by_stamp_not_by_content() {
        let live = cell(Some(item("a")), Some(stamp(5, "us")));
        let newer = Cause::Replica(stamp(6, "eu"));
        assert_eq!(
            settle(&live, Decision::Write(Some(item("a"))), &newer),
            Some(Some(item("a"))),
            "the same item with a newer stamp is written, so the stamps converge"
        );
        let older = Cause::Replica(stamp(4, "zz"));
        assert_eq!(
            settle(&live, Decision::Write(Some(item("b"))), &older),
            None
        );
        let same = Cause::Replica(stamp(5, "us"));
        assert_eq!(
            settle(&live, Decision::Write(Some(item("b"))), &same),
            None,
            "a write seen twice applies once"
        );
        let tie_break = Cause::Replica(stamp(5, "za"));
        assert_eq!(
            settle(&live, Decision::Write(None), &tie_break),
            Some(None),
            "equal clocks resolve by region, the same way everywhere"
        );
    }

    #[test]
    fn tombstones_keep_older_writes_out() {
        let tombstone = cell(None, Some(stamp(9, "us")));
        let older_put = Cause::Replica(stamp(8, "eu"));
        assert_eq!(
            settle(&tombstone, Decision::Write(Some(item("a"))), &older_put),
            None,
            "a deleted item never comes back through an older write"
        );
        let newer_delete = Cause::Replica(stamp(10, "eu"));
        assert_eq!(
            settle(&tombstone, Decision::Write(None), &newer_delete),
            Some(None),
            "a newer delete moves the tombstone's stamp forward"
        );
        assert_eq!(
            settle(&Cell::default(), Decision::Write(None), &newer_delete),
            Some(None),
            "a replicated delete of an item never seen here leaves a tombstone"
        );
    }
}
