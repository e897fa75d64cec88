//! Reading the change log: the node-wide `changes` keyspace and each table's slice of it
//! (`table_changes`), never past the bound the caller passes (the durable watermark at most).
//!
//! A table's index entry holds what readers filter on: the key's partition hash byte (stream
//! lanes), the change's cause (origin filters) and the table's running count of changes (its
//! ordinal), so filters drop entries without fetching their records and a table's lag is the
//! difference of two ordinals, not a walk.

use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Database, Keyspace};

use super::codec::{self, cause_code, cause_of};
use super::keys::table_change_key;
use super::{Keyspaces, Storage, seq_of, table_id_of};
use crate::OrFailure;
use tidemark_model::TableId;
use tidemark_model::changes::{CauseKind, ChangeRecord, ChangeSeq, LogLimits};
use tidemark_model::model::{Item, item_size};
use tidemark_model::{Error, Result};

/// Bytes of a `table_changes` value: partition byte, cause, ordinal.
const ENTRY_LEN: usize = 10;
/// Catalog key holding the version of the `table_changes` values.
const LOG_FORMAT_KEY: &[u8] = b"meta/table_changes_format";
/// Version 2: partition, cause and ordinal (version 1 held the partition byte only).
const LOG_FORMAT: u8 = 2;

/// One table's change-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableChange {
    /// The change's sequence in the node-wide log.
    pub seq: ChangeSeq,
    /// The partition key's hash byte.
    pub partition: u8,
    /// What caused the change.
    pub cause: CauseKind,
    /// The table's count of changes up to and including this one.
    pub ordinal: u64,
}

/// A [`ChangeSeq`] that threads share and that only moves forward (the oldest retained
/// change, which trimming advances and readers check their positions against).
#[derive(Debug, Default)]
pub struct AtomicChangeSeq(AtomicU64);

impl AtomicChangeSeq {
    /// A cell holding `seq`.
    pub fn new(seq: ChangeSeq) -> AtomicChangeSeq {
        AtomicChangeSeq(AtomicU64::new(seq.get()))
    }

    /// The sequence it holds now.
    pub fn load(&self) -> ChangeSeq {
        ChangeSeq::new(self.0.load(Ordering::Acquire))
    }

    /// Moves it to `seq`, unless it already is at or past it.
    pub fn advance_to(&self, seq: ChangeSeq) {
        self.0.fetch_max(seq.get(), Ordering::AcqRel);
    }
}

/// Encodes a `table_changes` value.
pub(crate) fn encode_entry(partition: u8, cause: CauseKind, ordinal: u64) -> [u8; ENTRY_LEN] {
    let mut out = [0u8; ENTRY_LEN];
    let (head, tail) = out.split_at_mut(2);
    head.copy_from_slice(&[partition, cause_code(cause)]);
    tail.copy_from_slice(&ordinal.to_be_bytes());
    out
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<TableChange> {
    let seq = seq_of(key.get(8..).unwrap_or_default())?;
    let [partition, cause, ordinal @ ..] = value else {
        return Err(Error::Corrupt(format!(
            "a change-index entry of {} bytes",
            value.len()
        )));
    };
    let ordinal = <[u8; 8]>::try_from(ordinal)
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Corrupt(format!("a change-index entry of {} bytes", value.len())))?;
    Ok(TableChange {
        seq,
        partition: *partition,
        cause: cause_of(*cause)?,
        ordinal,
    })
}

/// Which records of a table's slice a reader wants.
#[derive(Debug, Clone, Copy)]
pub struct EntryFilter {
    /// Only entries whose partition byte falls in this lane: `(lanes, lane)`.
    pub lane: Option<(u8, u8)>,
    /// Only changes this node originated.
    pub local_only: bool,
}

impl EntryFilter {
    fn keeps(&self, entry: &TableChange) -> bool {
        self.lane
            .is_none_or(|(lanes, lane)| entry.partition % lanes.max(1) == lane)
            && (!self.local_only || entry.cause.is_local_origin())
    }
}

/// Takes the kept records of `entries` (each entry's sequence, and its record when kept) in
/// `from..=through` (never empty: callers answer an empty range themselves) until the
/// limits: the one loop of both log scopes.
fn collect(
    entries: impl Iterator<Item = Result<(ChangeSeq, Option<ChangeRecord>)>>,
    from: ChangeSeq,
    through: ChangeSeq,
    limits: LogLimits,
) -> Result<LogRead> {
    let mut read = LogRead::nothing(from);
    let mut bytes = 0usize;
    for (scanned, entry) in entries.enumerate() {
        let (seq, record) = entry?;
        read.next = seq.next();
        // A replicated delete of an item this region never had keeps its stamp (a tombstone
        // and this record, which keep older writes out and go together) but changed nothing
        // anyone can see: like DynamoDB's delete of a missing item, no reader gets a record.
        if let Some(record) = record.filter(|r| r.old_image.is_some() || r.new_image.is_some()) {
            let size = |item: &Option<Item>| item.as_ref().map_or(0, item_size);
            bytes += item_size(&record.keys) + size(&record.old_image) + size(&record.new_image);
            read.records.push(record);
        }
        if read.records.len() >= limits.records
            || scanned + 1 >= limits.scanned
            || bytes >= limits.bytes
        {
            return Ok(read);
        }
    }
    read.next = through.next();
    Ok(read)
}

/// What one read of the log found, and where the next read starts.
#[derive(Debug)]
pub struct LogRead {
    /// The records read, in sequence order.
    pub records: Vec<ChangeRecord>,
    /// The sequence after the last entry looked at, or after `through` when the read got
    /// there.
    pub next: ChangeSeq,
}

impl LogRead {
    /// A read of an empty range starting at `from`.
    fn nothing(from: ChangeSeq) -> LogRead {
        LogRead {
            records: Vec::new(),
            next: from,
        }
    }
}

impl Storage {
    /// A table's records in `from..=through` that pass `filter`, within `limits`.
    ///
    /// # Errors
    /// Storage failures; Corrupt for an entry without its record (records of a table are
    /// trimmed with their entries, in one batch).
    pub fn read_table_log(
        &self,
        table_id: TableId,
        filter: EntryFilter,
        from: ChangeSeq,
        through: ChangeSeq,
        limits: LogLimits,
    ) -> Result<LogRead> {
        if from > through {
            return Ok(LogRead::nothing(from));
        }
        let range = table_change_key(table_id, from)..=table_change_key(table_id, through);
        let entries = self.ks.table_changes.range(range).map(|guard| {
            let (key, value) = guard.into_inner().or_failure()?;
            let entry = decode_entry(&key, &value)?;
            // A record trimmed between the two reads is behind the log's start, which the
            // caller checks against `oldest_retained`.
            let record = match filter.keeps(&entry) {
                true => self.change(entry.seq)?,
                false => None,
            };
            Ok((entry.seq, record))
        });
        collect(entries, from, through, limits)
    }

    /// Every table's records in `from..=through`, only those this node originated when
    /// `local_only` (decided from the record's flags, before decoding it).
    ///
    /// # Errors
    /// Storage failures or a corrupt record.
    pub fn read_node_log(
        &self,
        local_only: bool,
        from: ChangeSeq,
        through: ChangeSeq,
        limits: LogLimits,
    ) -> Result<LogRead> {
        if from > through {
            return Ok(LogRead::nothing(from));
        }
        let range = from.to_be_bytes()..=through.to_be_bytes();
        let entries = self.ks.changes.range(range).map(|guard| {
            let (key, value) = guard.into_inner().or_failure()?;
            let seq = seq_of(&key)?;
            let record = match !local_only || codec::record_cause(&value)?.is_local_origin() {
                true => Some(codec::decode_record(seq, &value)?),
                false => None,
            };
            Ok((seq, record))
        });
        collect(entries, from, through, limits)
    }

    /// The first entry of a table at or after `from` and at or before `through`.
    pub fn first_table_change(
        &self,
        table_id: TableId,
        from: ChangeSeq,
        through: ChangeSeq,
    ) -> Result<Option<TableChange>> {
        if from > through {
            return Ok(None);
        }
        let range = table_change_key(table_id, from)..=table_change_key(table_id, through);
        match self.ks.table_changes.range(range).next() {
            Some(guard) => {
                let (key, value) = guard.into_inner().or_failure()?;
                Ok(Some(decode_entry(&key, &value)?))
            }
            None => Ok(None),
        }
    }

    /// The last entry of a table at or before `through`.
    pub fn last_table_change(
        &self,
        table_id: TableId,
        through: ChangeSeq,
    ) -> Result<Option<TableChange>> {
        last_table_change(&self.ks.table_changes, table_id, through)
    }

    /// The change record at `seq`, unless trimmed.
    pub(crate) fn change(&self, seq: ChangeSeq) -> Result<Option<ChangeRecord>> {
        match self.ks.changes.get(seq.to_be_bytes()).or_failure()? {
            Some(bytes) => Ok(Some(codec::decode_record(seq, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The commit clock of the record at `seq`, unless trimmed (only the record's header is
    /// decoded).
    pub fn commit_clock(&self, seq: ChangeSeq) -> Result<Option<tidemark_model::HlcTimestamp>> {
        match self.ks.changes.get(seq.to_be_bytes()).or_failure()? {
            Some(bytes) => Ok(Some(codec::decode_record_header(&bytes)?.commit_clock)),
            None => Ok(None),
        }
    }

    /// The first retained record at or after `seq` (the log may have gaps where other
    /// tables' records were trimmed), with its commit clock.
    pub fn commit_clock_from(
        &self,
        seq: ChangeSeq,
    ) -> Result<Option<(ChangeSeq, tidemark_model::HlcTimestamp)>> {
        match self.ks.changes.range(seq.to_be_bytes()..).next() {
            Some(guard) => {
                let (key, value) = guard.into_inner().or_failure()?;
                let clock = codec::decode_record_header(&value)?.commit_clock;
                Ok(Some((seq_of(&key)?, clock)))
            }
            None => Ok(None),
        }
    }

    /// The commit clock of the last retained record at or before `seq`, if any.
    pub fn commit_clock_through(
        &self,
        seq: ChangeSeq,
    ) -> Result<Option<tidemark_model::HlcTimestamp>> {
        match self.ks.changes.range(..=seq.to_be_bytes()).next_back() {
            Some(guard) => {
                let (_, value) = guard.into_inner().or_failure()?;
                Ok(Some(codec::decode_record_header(&value)?.commit_clock))
            }
            None => Ok(None),
        }
    }
}

fn last_table_change(
    table_changes: &Keyspace,
    table_id: TableId,
    through: ChangeSeq,
) -> Result<Option<TableChange>> {
    let range = table_change_key(table_id, ChangeSeq::ZERO)..=table_change_key(table_id, through);
    match table_changes.range(range).next_back() {
        Some(guard) => {
            let (key, value) = guard.into_inner().or_failure()?;
            Ok(Some(decode_entry(&key, &value)?))
        }
        None => Ok(None),
    }
}

/// The last ordinal of each of `table_ids` (0 for a table without retained changes): where
/// each table's count of changes resumes at open.
pub(crate) fn last_ordinals(
    ks: &Keyspaces,
    table_ids: impl Iterator<Item = TableId>,
) -> Result<std::collections::HashMap<TableId, u64>> {
    table_ids
        .map(|id| {
            let last = last_table_change(&ks.table_changes, id, ChangeSeq::MAX)?;
            Ok((id, last.map_or(0, |e| e.ordinal)))
        })
        .collect()
}

/// Brings `table_changes` values written before causes and ordinals were kept (one partition
/// byte each) to the current format, once: each entry gets its record's cause and its table's
/// running count. Idempotent (ordinals are recounted from the first retained entry), so a crash
/// in the middle only means it runs again.
pub(crate) fn migrate_table_changes(db: &Database, ks: &Keyspaces) -> Result<()> {
    if ks.catalog.get(LOG_FORMAT_KEY).or_failure()?.as_deref() == Some(&[LOG_FORMAT]) {
        return Ok(());
    }
    let mut ordinals = std::collections::HashMap::<TableId, u64>::new();
    let mut batch = db.batch();
    let mut pending = 0;
    for guard in ks.table_changes.iter() {
        let (key, value) = guard.into_inner().or_failure()?;
        let table_id = table_id_of(key.get(..8).unwrap_or_default())?;
        let seq = seq_of(key.get(8..).unwrap_or_default())?;
        let partition = *value
            .first()
            .ok_or_else(|| Error::Corrupt("an empty change-index entry".into()))?;
        let cause = match ks.changes.get(seq.to_be_bytes()).or_failure()? {
            Some(record) => codec::record_cause(&record)?,
            None => {
                return Err(Error::Corrupt(format!(
                    "change {seq} is indexed for table {table_id} but missing"
                )));
            }
        };
        let ordinal = ordinals.entry(table_id).or_default();
        *ordinal += 1;
        batch.insert(
            &ks.table_changes,
            key.to_vec(),
            encode_entry(partition, cause, *ordinal),
        );
        pending += 1;
        if pending == 10_000 {
            std::mem::replace(&mut batch, db.batch())
                .commit()
                .or_failure()?;
            pending = 0;
        }
    }
    batch.insert(&ks.catalog, LOG_FORMAT_KEY, [LOG_FORMAT]);
    batch
        .durability(Some(fjall::PersistMode::SyncAll))
        .commit()
        .or_failure()?;
    Ok(())
}

#[cfg(any(test, feature = "test-support"))]
impl Storage {
    /// Turns `table_changes` back into what the previous release wrote (one partition byte
    /// per entry, no format mark), for tests of the migration at open.
    ///
    /// # Errors
    /// Storage failures.
    pub fn write_previous_log_format(&self) -> Result<()> {
        let ks = &self.ks;
        let entries: Vec<(Vec<u8>, u8)> = ks
            .table_changes
            .iter()
            .map(|g| {
                let (key, value) = g.into_inner().or_failure()?;
                Ok((key.to_vec(), value.first().copied().unwrap_or_default()))
            })
            .collect::<Result<_>>()?;
        for (key, partition) in &entries {
            ks.table_changes.insert(key, [*partition]).or_failure()?;
        }
        ks.catalog.remove(LOG_FORMAT_KEY).or_failure()
    }
}
