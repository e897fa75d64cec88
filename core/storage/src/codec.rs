//! Binary encodings of what is stored: items (tagged, length-prefixed values), item cells
//! (item + LWW stamp, or a tombstone) and change records.
//!
//! IMPORTANT: item cells and change records keep their HLC reading at a fixed offset
//! ([`STAMP_OFFSET`]), and records their commit clock too ([`COMMIT_CLOCK_OFFSET`]), so the
//! commit path can encode them outside its critical section and patch in what it allocates
//! inside. Changing a layout means bumping its version byte and still decoding the old one.
//!
//! Record versions: 1 kept `kind | 0x80 when by the TTL sweeper` and a wall-clock commit time
//! (every record was local, so its stamp was its commit clock); 2 keeps `kind | cause << 4` and
//! the node's commit clock in the same place; 3 stores the images compactly: without the key
//! attributes (the record's keys hold them), and a MODIFY's old image as what differs from its
//! new one, so an update that changes one attribute of a large item costs one image, not two.

use std::collections::{BTreeMap, BTreeSet};

use tidemark_model::TableId;
use tidemark_model::changes::{CauseKind, ChangeKind, ChangeRecord, ChangeSeq};
use tidemark_model::model::{AttributeValue, Item, Number};
use tidemark_model::stamp::{HlcTimestamp, Stamp};
use tidemark_model::{Error, Result};

/// Version byte at the front of every cell.
const FORMAT_VERSION: u8 = 1;
/// Version byte at the front of records written now.
const RECORD_VERSION: u8 = 3;
/// Records whose images are stored whole, key attributes included.
const RECORD_VERSION_2: u8 = 2;
/// Records written before causes and commit clocks were kept.
const RECORD_VERSION_1: u8 = 1;
/// Where the 8-byte HLC reading sits in item cells and change records.
pub(crate) const STAMP_OFFSET: usize = 2;
/// Where the 8-byte commit clock sits in change records.
pub(crate) const COMMIT_CLOCK_OFFSET: usize = 10;
/// Bytes of a record's fixed-size front: version, flags, stamp, commit clock, table id.
const RECORD_HEADER_LEN: usize = 26;
/// Where a record's flags (kind and cause) sit.
const RECORD_FLAGS_OFFSET: usize = 1;

const CELL_TOMBSTONE: u8 = 1;
/// Version 1's flag of a TTL delete.
const V1_BY_SERVICE: u8 = 0x80;
const KIND_MASK: u8 = 0x0f;
const CAUSE_SHIFT: u8 = 4;

/// What the images part of a version-3 record holds.
mod images {
    pub(super) const OLD: u8 = 1;
    pub(super) const NEW: u8 = 2;
    /// Both images are stored without the key attributes, which the record's keys hold.
    pub(super) const WITHOUT_KEYS: u8 = 4;
    /// The old image is stored as the names of the new image's attributes it lacks, then its
    /// attributes that the new image lacks or holds with another value.
    pub(super) const OLD_AS_DIFFERENCE: u8 = 8;
    pub(super) const KNOWN: u8 = OLD | NEW | WITHOUT_KEYS | OLD_AS_DIFFERENCE;
}

mod tag {
    pub(super) const S: u8 = 1;
    pub(super) const N: u8 = 2;
    pub(super) const B: u8 = 3;
    pub(super) const FALSE: u8 = 4;
    pub(super) const TRUE: u8 = 5;
    pub(super) const NULL: u8 = 6;
    pub(super) const M: u8 = 7;
    pub(super) const L: u8 = 8;
    pub(super) const SS: u8 = 9;
    pub(super) const NS: u8 = 10;
    pub(super) const BS: u8 = 11;
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_number(out: &mut Vec<u8>, n: &Number) {
    n.encode_ordered(out);
}

/// Appends the encoding of one value.
pub(crate) fn put_value(out: &mut Vec<u8>, value: &AttributeValue) {
    match value {
        AttributeValue::S(s) => {
            out.push(tag::S);
            put_bytes(out, s.as_bytes());
        }
        AttributeValue::N(n) => {
            out.push(tag::N);
            put_number(out, n);
        }
        AttributeValue::B(b) => {
            out.push(tag::B);
            put_bytes(out, b);
        }
        AttributeValue::Bool(b) => out.push(if *b { tag::TRUE } else { tag::FALSE }),
        AttributeValue::Null => out.push(tag::NULL),
        AttributeValue::M(m) => {
            out.push(tag::M);
            put_item(out, m);
        }
        AttributeValue::L(l) => {
            out.push(tag::L);
            put_varint(out, l.len() as u64);
            for v in l {
                put_value(out, v);
            }
        }
        AttributeValue::Ss(s) => {
            out.push(tag::SS);
            put_varint(out, s.len() as u64);
            for v in s {
                put_bytes(out, v.as_bytes());
            }
        }
        AttributeValue::Ns(s) => {
            out.push(tag::NS);
            put_varint(out, s.len() as u64);
            for v in s {
                put_number(out, v);
            }
        }
        AttributeValue::Bs(s) => {
            out.push(tag::BS);
            put_varint(out, s.len() as u64);
            for v in s {
                put_bytes(out, v);
            }
        }
    }
}

/// Appends the encoding of a map of attributes.
pub fn put_item(out: &mut Vec<u8>, item: &BTreeMap<String, AttributeValue>) {
    put_varint(out, item.len() as u64);
    for (name, value) in item {
        put_bytes(out, name.as_bytes());
        put_value(out, value);
    }
}

/// Appends the attributes of `item` that `keep` accepts, as [`put_item`] would a map of them.
fn put_attributes_where(
    out: &mut Vec<u8>,
    item: &Item,
    keep: impl Fn(&str, &AttributeValue) -> bool,
) {
    put_varint(
        out,
        item.iter()
            .filter(|(name, value)| keep(name, value))
            .count() as u64,
    );
    for (name, value) in item.iter().filter(|(name, value)| keep(name, value)) {
        put_bytes(out, name.as_bytes());
        put_value(out, value);
    }
}

/// A cursor over encoded bytes; every read fails cleanly on truncated or corrupt input.
#[derive(Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
}

fn corrupt() -> Error {
    Error::Corrupt("a stored value does not decode".into())
}

impl<'a> Reader<'a> {
    /// A reader at the start of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Reader { input }
    }

    /// What is left to read.
    pub fn rest(&self) -> &'a [u8] {
        self.input
    }

    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.input.split_first().ok_or_else(corrupt)?;
        self.input = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.input.len() < n {
            return Err(corrupt());
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| corrupt())?;
        Ok(u64::from_be_bytes(bytes))
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt())
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = usize::try_from(self.varint()?).map_err(|_| corrupt())?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt())
    }

    fn number(&mut self) -> Result<Number> {
        let (n, used) = Number::decode_ordered(self.input).ok_or_else(corrupt)?;
        self.take(used)?;
        Ok(n)
    }

    pub(crate) fn value(&mut self) -> Result<AttributeValue> {
        Ok(match self.byte()? {
            tag::S => AttributeValue::S(self.string()?),
            tag::N => AttributeValue::N(self.number()?),
            tag::B => AttributeValue::B(self.bytes()?.to_vec()),
            tag::FALSE => AttributeValue::Bool(false),
            tag::TRUE => AttributeValue::Bool(true),
            tag::NULL => AttributeValue::Null,
            tag::M => AttributeValue::M(self.item()?),
            tag::L => {
                let n = self.varint()?;
                let mut list = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    list.push(self.value()?);
                }
                AttributeValue::L(list)
            }
            tag::SS => {
                let n = self.varint()?;
                let mut set = BTreeSet::new();
                for _ in 0..n {
                    set.insert(self.string()?);
                }
                AttributeValue::Ss(set)
            }
            tag::NS => {
                let n = self.varint()?;
                let mut set = BTreeSet::new();
                for _ in 0..n {
                    set.insert(self.number()?);
                }
                AttributeValue::Ns(set)
            }
            tag::BS => {
                let n = self.varint()?;
                let mut set = BTreeSet::new();
                for _ in 0..n {
                    set.insert(self.bytes()?.to_vec());
                }
                AttributeValue::Bs(set)
            }
            _ => return Err(corrupt()),
        })
    }

    /// Reads an item as [`put_item`] wrote it.
    pub fn item(&mut self) -> Result<Item> {
        let n = self.varint()?;
        let mut item = Item::new();
        for _ in 0..n {
            let name = self.string()?;
            let value = self.value()?;
            item.insert(name, value);
        }
        Ok(item)
    }

    fn optional_item(&mut self) -> Result<Option<Item>> {
        match self.byte()? {
            0 => Ok(None),
            _ => Ok(Some(self.item()?)),
        }
    }
}

/// A stored item version: the item (or a tombstone) with the stamp of the write that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemCell {
    /// The item, or `None` for a tombstone.
    pub item: Option<Item>,
    /// Stamp of the write that produced this version.
    pub stamp: Stamp,
}

/// Encodes an item cell; the stamp's HLC may be patched later at [`STAMP_OFFSET`].
pub(crate) fn encode_cell(item: Option<&Item>, stamp: &Stamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    out.push(if item.is_some() { 0 } else { CELL_TOMBSTONE });
    out.extend_from_slice(&stamp.hlc.0.to_be_bytes());
    put_bytes(&mut out, stamp.region.as_bytes());
    if let Some(item) = item {
        put_item(&mut out, item);
    }
    out
}

/// Decodes an item cell.
pub(crate) fn decode_cell(bytes: &[u8]) -> Result<ItemCell> {
    let mut r = Reader::new(bytes);
    if r.byte()? != FORMAT_VERSION {
        return Err(corrupt());
    }
    let flags = r.byte()?;
    let hlc = HlcTimestamp(r.u64()?);
    let region = r.string()?;
    let item = if flags & CELL_TOMBSTONE != 0 {
        None
    } else {
        Some(r.item()?)
    };
    Ok(ItemCell {
        item,
        stamp: Stamp { hlc, region },
    })
}

/// Decodes only a cell's stamp and whether it holds a live item (`false`: a tombstone),
/// leaving the item's bytes unread: what comparing replicas needs.
pub(crate) fn decode_cell_stamp(bytes: &[u8]) -> Result<(Stamp, bool)> {
    let mut r = Reader::new(bytes);
    if r.byte()? != FORMAT_VERSION {
        return Err(corrupt());
    }
    let flags = r.byte()?;
    let hlc = HlcTimestamp(r.u64()?);
    let region = r.string()?;
    Ok((Stamp { hlc, region }, flags & CELL_TOMBSTONE == 0))
}

/// Decodes only the live item of a cell (`None` for tombstones), skipping the stamp.
pub(crate) fn decode_cell_item(bytes: &[u8]) -> Result<Option<Item>> {
    decode_cell(bytes).map(|cell| cell.item)
}

/// Patches a fixed-offset u64 field of an encoded cell or record.
pub(crate) fn patch_u64(bytes: &mut [u8], offset: usize, value: u64) {
    if let Some(slot) = bytes.get_mut(offset..offset + 8) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
}

/// The parts of a change record, borrowed, for encoding without copying images.
pub(crate) struct RecordParts<'a> {
    pub(crate) kind: ChangeKind,
    pub(crate) cause: CauseKind,
    pub(crate) table_id: TableId,
    pub(crate) table_name: &'a str,
    pub(crate) stamp: &'a Stamp,
    pub(crate) commit_clock: HlcTimestamp,
    pub(crate) keys: &'a Item,
    pub(crate) old_image: Option<&'a Item>,
    pub(crate) new_image: Option<&'a Item>,
}

fn kind_code(kind: ChangeKind) -> u8 {
    match kind {
        ChangeKind::Insert => 1,
        ChangeKind::Modify => 2,
        ChangeKind::Remove => 3,
    }
}

fn kind_of(code: u8) -> Result<ChangeKind> {
    match code {
        1 => Ok(ChangeKind::Insert),
        2 => Ok(ChangeKind::Modify),
        3 => Ok(ChangeKind::Remove),
        _ => Err(corrupt()),
    }
}

/// The byte a cause is kept as, in records and in the per-table change index.
pub(crate) fn cause_code(cause: CauseKind) -> u8 {
    match cause {
        CauseKind::Request => 0,
        CauseKind::Expiry => 1,
        CauseKind::Replica => 2,
        CauseKind::Restore => 3,
    }
}

/// The cause a byte names.
pub(crate) fn cause_of(code: u8) -> Result<CauseKind> {
    match code {
        0 => Ok(CauseKind::Request),
        1 => Ok(CauseKind::Expiry),
        2 => Ok(CauseKind::Replica),
        3 => Ok(CauseKind::Restore),
        _ => Err(corrupt()),
    }
}

/// Encodes a change record (its sequence is the storage key, not part of the value); the HLC
/// and commit clock may be patched later at [`STAMP_OFFSET`] and [`COMMIT_CLOCK_OFFSET`].
pub(crate) fn encode_record(parts: &RecordParts<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(RECORD_VERSION);
    out.push(kind_code(parts.kind) | cause_code(parts.cause) << CAUSE_SHIFT);
    out.extend_from_slice(&parts.stamp.hlc.0.to_be_bytes());
    out.extend_from_slice(&parts.commit_clock.0.to_be_bytes());
    out.extend_from_slice(&parts.table_id.to_be_bytes());
    put_bytes(&mut out, parts.stamp.region.as_bytes());
    put_bytes(&mut out, parts.table_name.as_bytes());
    put_item(&mut out, parts.keys);
    put_images(&mut out, parts.keys, parts.old_image, parts.new_image);
    out
}

/// Appends the images of a version-3 record: its flags, the new image, then the old one (as
/// its difference from the new one when there is a new one).
fn put_images(out: &mut Vec<u8>, keys: &Item, old: Option<&Item>, new: Option<&Item>) {
    let holds_keys =
        |image: Option<&Item>| image.is_none_or(|i| keys.iter().all(|(k, v)| i.get(k) == Some(v)));
    let without_keys = holds_keys(old) && holds_keys(new);
    let mut flags = 0;
    for (present, flag) in [
        (old.is_some(), images::OLD),
        (new.is_some(), images::NEW),
        (without_keys, images::WITHOUT_KEYS),
        (old.is_some() && new.is_some(), images::OLD_AS_DIFFERENCE),
    ] {
        if present {
            flags |= flag;
        }
    }
    out.push(flags);
    let stored = |name: &str| !(without_keys && keys.contains_key(name));
    if let Some(new) = new {
        put_attributes_where(out, new, |name, _| stored(name));
    }
    match (old, new) {
        (Some(old), Some(new)) => {
            let dropped = || {
                new.keys()
                    .filter(|name| stored(name) && !old.contains_key(*name))
            };
            put_varint(out, dropped().count() as u64);
            for name in dropped() {
                put_bytes(out, name.as_bytes());
            }
            put_attributes_where(out, old, |name, value| {
                stored(name) && new.get(name) != Some(value)
            });
        }
        (Some(old), None) => put_attributes_where(out, old, |name, _| stored(name)),
        _ => {}
    }
}

/// Reads the images [`put_images`] wrote; `keys` are the record's.
fn read_images(r: &mut Reader<'_>, keys: &Item) -> Result<(Option<Item>, Option<Item>)> {
    let flags = r.byte()?;
    if flags & !images::KNOWN != 0 {
        return Err(corrupt());
    }
    let new = match flags & images::NEW {
        0 => None,
        _ => Some(r.item()?),
    };
    let old = match (flags & images::OLD, flags & images::OLD_AS_DIFFERENCE, &new) {
        (0, _, _) => None,
        (_, 0, _) => Some(r.item()?),
        (_, _, Some(new)) => {
            let mut old = new.clone();
            for _ in 0..r.varint()? {
                old.remove(std::str::from_utf8(r.bytes()?).map_err(|_| corrupt())?);
            }
            old.extend(r.item()?);
            Some(old)
        }
        (_, _, None) => return Err(corrupt()),
    };
    let whole = |image: Option<Item>| {
        image.map(|mut image| {
            if flags & images::WITHOUT_KEYS != 0 {
                image.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            image
        })
    };
    Ok((whole(old), whole(new)))
}

/// Reads the images of a record of `version`, after its keys.
fn read_record_images(
    r: &mut Reader<'_>,
    version: u8,
    keys: &Item,
) -> Result<(Option<Item>, Option<Item>)> {
    match version {
        RECORD_VERSION => read_images(r, keys),
        _ => Ok((r.optional_item()?, r.optional_item()?)),
    }
}

/// The fixed-size front of a record: what filters and searches need without decoding images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) version: u8,
    pub(crate) kind: ChangeKind,
    pub(crate) cause: CauseKind,
    pub(crate) stamp_hlc: HlcTimestamp,
    pub(crate) commit_clock: HlcTimestamp,
    pub(crate) table_id: TableId,
}

/// Decodes the front of a record of either version.
pub(crate) fn decode_record_header(bytes: &[u8]) -> Result<RecordHeader> {
    let mut r = Reader::new(bytes);
    let version = r.byte()?;
    let flags = r.byte()?;
    let stamp_hlc = HlcTimestamp(r.u64()?);
    let clock_field = r.u64()?;
    let table_id = TableId::new(r.u64()?);
    let (kind, cause, commit_clock) = match version {
        RECORD_VERSION | RECORD_VERSION_2 => (
            kind_of(flags & KIND_MASK)?,
            cause_of(flags >> CAUSE_SHIFT)?,
            HlcTimestamp(clock_field),
        ),
        // Every version-1 record was local: its stamp was minted by its own commit, and
        // the clock field held wall-clock milliseconds.
        RECORD_VERSION_1 => (
            kind_of(flags & !V1_BY_SERVICE)?,
            if flags & V1_BY_SERVICE != 0 {
                CauseKind::Expiry
            } else {
                CauseKind::Request
            },
            stamp_hlc,
        ),
        _ => return Err(corrupt()),
    };
    Ok(RecordHeader {
        version,
        kind,
        cause,
        stamp_hlc,
        commit_clock,
        table_id,
    })
}

/// The cause of a record, read from its flags without decoding the rest.
pub(crate) fn record_cause(bytes: &[u8]) -> Result<CauseKind> {
    let version = *bytes.first().ok_or_else(corrupt)?;
    let flags = *bytes.get(RECORD_FLAGS_OFFSET).ok_or_else(corrupt)?;
    match version {
        RECORD_VERSION | RECORD_VERSION_2 => cause_of(flags >> CAUSE_SHIFT),
        RECORD_VERSION_1 if flags & V1_BY_SERVICE != 0 => Ok(CauseKind::Expiry),
        RECORD_VERSION_1 => Ok(CauseKind::Request),
        _ => Err(corrupt()),
    }
}

/// The key attributes and the old image of a change record, without decoding the rest
/// (what undoing the change needs), except a MODIFY's new image, which its old image is kept
/// as a difference from.
pub(crate) fn decode_record_undo(bytes: &[u8]) -> Result<(Item, Option<Item>)> {
    let version = *bytes.first().ok_or_else(corrupt)?;
    let mut r = Reader::new(bytes.get(RECORD_HEADER_LEN..).ok_or_else(corrupt)?);
    r.string()?;
    r.string()?;
    let keys = r.item()?;
    let (old_image, _) = read_record_images(&mut r, version, &keys)?;
    Ok((keys, old_image))
}

/// Decodes a change record stored under sequence `seq`.
pub(crate) fn decode_record(seq: ChangeSeq, bytes: &[u8]) -> Result<ChangeRecord> {
    let header = decode_record_header(bytes)?;
    let mut r = Reader::new(bytes.get(RECORD_HEADER_LEN..).ok_or_else(corrupt)?);
    let region = r.string()?;
    let table_name = r.string()?;
    let keys = r.item()?;
    let (old_image, new_image) = read_record_images(&mut r, header.version, &keys)?;
    Ok(ChangeRecord {
        seq,
        table_id: header.table_id,
        table_name,
        kind: header.kind,
        keys,
        old_image,
        new_image,
        stamp: Stamp {
            hlc: header.stamp_hlc,
            region,
        },
        cause: header.cause,
        commit_clock: header.commit_clock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_item() -> Item {
        serde_json::from_str(
            r#"{"pk":{"S":"k"},"n":{"N":"-12.5"},"m":{"M":{"l":{"L":[{"NULL":true},{"BOOL":false},{"B":"AQI="}]}}},"ss":{"SS":["a","b"]},"ns":{"NS":["1","2"]},"bs":{"BS":["AA=="]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn cells_round_trip_and_patch() {
        let stamp = Stamp {
            hlc: HlcTimestamp(1),
            region: "us-east-1".into(),
        };
        let mut bytes = encode_cell(Some(&sample_item()), &stamp);
        patch_u64(&mut bytes, STAMP_OFFSET, 99);
        let cell = decode_cell(&bytes).unwrap();
        assert_eq!(cell.item, Some(sample_item()));
        assert_eq!(cell.stamp.hlc, HlcTimestamp(99));
        let tomb = decode_cell(&encode_cell(None, &stamp)).unwrap();
        assert_eq!(tomb.item, None);
    }

    #[test]
    fn records_round_trip() {
        let record = ChangeRecord {
            seq: ChangeSeq::new(7),
            table_id: TableId::new(3),
            table_name: "t".into(),
            kind: ChangeKind::Modify,
            keys: sample_item(),
            old_image: None,
            new_image: Some(sample_item()),
            stamp: Stamp {
                hlc: HlcTimestamp(5),
                region: "eu".into(),
            },
            cause: CauseKind::Replica,
            commit_clock: HlcTimestamp(1234),
        };
        let bytes = encode_record(&RecordParts {
            kind: record.kind,
            cause: record.cause,
            table_id: record.table_id,
            table_name: &record.table_name,
            stamp: &record.stamp,
            commit_clock: record.commit_clock,
            keys: &record.keys,
            old_image: record.old_image.as_ref(),
            new_image: record.new_image.as_ref(),
        });
        assert_eq!(decode_record(ChangeSeq::new(7), &bytes).unwrap(), record);
    }

    /// A version-1 record as the previous release wrote it: a TTL delete (flags `3 | 0x80`),
    /// stamp 0x10000 from us-east-1, wall-clock time 1, table 9 `t`, key `p = "a"`, an old
    /// image and no new one.
    const V1_TTL_REMOVE: &[u8] = &[
        1, 0x83, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 9, b'u',
        b's', b'-', b'e', b'a', b's', b't', b'-', b'1', 1, b't', 1, 1, b'p', 1, 1, b'a', 1, 1, 1,
        b'p', 1, 1, b'a', 0,
    ];

    /// A version-2 record: a replicated insert (flags `1 | 2 << 4`), stamp 0x10001 from `eu`,
    /// commit clock 0x20000, table 9 `t`, key `p = "a"`, no old image, the key as new image.
    const V2_REPLICA_INSERT: &[u8] = &[
        2, 0x21, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 2, b'e',
        b'u', 1, b't', 1, 1, b'p', 1, 1, b'a', 0, 1, 1, 1, b'p', 1, 1, b'a',
    ];

    #[test]
    fn version_2_records_still_decode() {
        let keys: Item = [("p".to_string(), AttributeValue::S("a".into()))].into();
        let record = decode_record(ChangeSeq::new(3), V2_REPLICA_INSERT).unwrap();
        assert_eq!(record.kind, ChangeKind::Insert);
        assert_eq!(record.keys, keys);
        assert_eq!(record.old_image, None);
        assert_eq!(record.new_image, Some(keys));
        assert_eq!(record.cause, CauseKind::Replica);
        assert_eq!(record.commit_clock, HlcTimestamp(0x20000));
        assert_eq!(record.stamp.hlc, HlcTimestamp(0x10001));
    }

    fn encode(kind: ChangeKind, keys: &Item, old: Option<&Item>, new: Option<&Item>) -> Vec<u8> {
        encode_record(&RecordParts {
            kind,
            cause: CauseKind::Request,
            table_id: TableId::new(1),
            table_name: "t",
            stamp: &Stamp {
                hlc: HlcTimestamp(1),
                region: "eu".into(),
            },
            commit_clock: HlcTimestamp(2),
            keys,
            old_image: old,
            new_image: new,
        })
    }

    fn item(json: &str) -> Item {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_pair_of_images_round_trips() {
        let keys = item(r#"{"pk":{"S":"k"},"sk":{"N":"1"}}"#);
        let big = sample_item()
            .into_iter()
            .chain(keys.clone())
            .collect::<Item>();
        let changed = item(
            r#"{"pk":{"S":"k"},"sk":{"N":"1"},"n":{"N":"7"},"new":{"SS":["x"]},"ns":{"NS":["1","2"]}}"#,
        );
        // An image that does not hold the record's keys (never written today) is kept whole.
        let keyless = item(r#"{"other":{"S":"v"}}"#);
        let cases: [(ChangeKind, Option<&Item>, Option<&Item>); 7] = [
            (ChangeKind::Insert, None, Some(&big)),
            (ChangeKind::Remove, Some(&big), None),
            (ChangeKind::Modify, Some(&big), Some(&changed)),
            (ChangeKind::Modify, Some(&changed), Some(&big)),
            (ChangeKind::Modify, Some(&big), Some(&big)),
            (ChangeKind::Modify, Some(&keys), Some(&keys)),
            (ChangeKind::Modify, Some(&keyless), Some(&big)),
        ];
        for (kind, old, new) in cases {
            let bytes = encode(kind, &keys, old, new);
            let record = decode_record(ChangeSeq::new(1), &bytes).unwrap();
            assert_eq!(
                record.old_image.as_ref(),
                old,
                "{kind:?} {old:?} -> {new:?}"
            );
            assert_eq!(
                record.new_image.as_ref(),
                new,
                "{kind:?} {old:?} -> {new:?}"
            );
            assert_eq!(record.keys, keys);
            let (undo_keys, undo_old) = decode_record_undo(&bytes).unwrap();
            assert_eq!((undo_keys, undo_old.as_ref()), (keys.clone(), old));
            for cut in 0..bytes.len() {
                assert!(decode_record(ChangeSeq::new(1), bytes.get(..cut).unwrap()).is_err());
            }
            // The image flags follow the region, the table name and the keys.
            let mut front = Vec::new();
            put_bytes(&mut front, b"eu");
            put_bytes(&mut front, b"t");
            put_item(&mut front, &keys);
            let mut unknown_flag = bytes.clone();
            *unknown_flag
                .get_mut(RECORD_HEADER_LEN + front.len())
                .unwrap() |= 0x80;
            assert!(decode_record(ChangeSeq::new(1), &unknown_flag).is_err());
        }
    }

    #[test]
    fn an_update_of_one_attribute_stores_one_image() {
        let keys = item(r#"{"pk":{"S":"k"}}"#);
        let mut old = keys.clone();
        old.insert("payload".into(), AttributeValue::S("x".repeat(1000)));
        old.insert(
            "count".into(),
            AttributeValue::N(Number::parse("1").unwrap()),
        );
        let mut new = old.clone();
        new.insert(
            "count".into(),
            AttributeValue::N(Number::parse("2").unwrap()),
        );
        let modify = encode(ChangeKind::Modify, &keys, Some(&old), Some(&new));
        let insert = encode(ChangeKind::Insert, &keys, None, Some(&new));
        assert!(
            modify.len() < insert.len() + 16,
            "{} bytes for the update, {} for the insert",
            modify.len(),
            insert.len()
        );
    }

    #[test]
    fn version_1_records_still_decode() {
        let record = decode_record(ChangeSeq::new(4), V1_TTL_REMOVE).unwrap();
        assert_eq!(record.kind, ChangeKind::Remove);
        assert_eq!(record.cause, CauseKind::Expiry);
        assert!(record.by_service());
        assert_eq!(record.stamp.hlc, HlcTimestamp(0x10000));
        assert_eq!(
            record.commit_clock, record.stamp.hlc,
            "a version-1 record's stamp was its commit clock"
        );
        assert_eq!(record.table_id, TableId::new(9));
        assert_eq!(record.origin_region(), "us-east-1");
        assert!(record.old_image.is_some() && record.new_image.is_none());
        assert_eq!(record_cause(V1_TTL_REMOVE).unwrap(), CauseKind::Expiry);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = encode_cell(
            Some(&sample_item()),
            &Stamp {
                hlc: HlcTimestamp(1),
                region: "r".into(),
            },
        );
        for cut in 0..bytes.len() {
            assert!(decode_cell(bytes.get(..cut).unwrap()).is_err());
        }
    }
}
