//! What travels between peers over HTTP: batches of changes (`POST /_tidemark/peer/changes`,
//! in a binary form, [`ChangeBatch::encode`], also the payload of the replication topics),
//! pages of a seeding snapshot in the same form (`POST /_tidemark/peer/seed`) and membership
//! documents as JSON (`POST /_tidemark/peer/membership`, `POST /_tidemark/peer/replica`).
//! Every request carries the sending region and its link's secret in headers
//! ([`crate::peers`]).
//!
//! IMPORTANT: a change batch carries only changes stamped by the region that sends it (the
//! receiver refuses any other whole); a seeding page carries every region's, and is taken
//! only from the region seeding the receiver's new replica.

use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};
use tidemark_core::model::{Item, TableDefinition, item_size};
use tidemark_core::replication::{RemoteChange, decode_item, encode_item};
use tidemark_core::{HlcTimestamp, Stamp};

use crate::membership::GlobalTable;

/// Content type of a binary [`ChangeBatch`].
pub const CHANGES_CONTENT_TYPE: &str = "application/x-tidemark-changes";
/// Path of change batches.
pub const CHANGES_PATH: &str = "/_tidemark/peer/changes";
/// Path of the pages of a seeding snapshot (binary [`ChangeBatch`]es without delivered
/// clocks).
pub const SEED_PATH: &str = "/_tidemark/peer/seed";
/// Path of anti-entropy repairs: cells of any region's, applied by last writer wins.
pub const REPAIR_PATH: &str = "/_tidemark/peer/repair";
/// Path of membership documents.
pub const MEMBERSHIP_PATH: &str = "/_tidemark/peer/membership";
/// Path of replica creation.
pub const CREATE_REPLICA_PATH: &str = "/_tidemark/peer/replica";

/// One change as shipped: the item's key, its new image (none for a delete) and its stamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireChange {
    /// Table name.
    #[serde(rename = "t")]
    pub table: String,
    /// Key attributes.
    #[serde(rename = "k")]
    pub keys: Item,
    /// The item after the change; absent for a delete.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub new_image: Option<Item>,
    /// Stamp clock.
    #[serde(rename = "c")]
    pub clock: u64,
    /// Stamp region: where the change was made.
    #[serde(rename = "r")]
    pub region: String,
}

impl WireChange {
    /// About how many bytes the change takes in a batch: its key and new image, sized as
    /// DynamoDB sizes items, and a few for the rest (an over-estimate is harmless).
    pub(crate) fn size(&self) -> usize {
        16 + item_size(&self.keys) + self.new_image.as_ref().map_or(0, item_size)
    }
}

impl From<RemoteChange> for WireChange {
    fn from(change: RemoteChange) -> WireChange {
        WireChange {
            table: change.table_name,
            keys: change.keys,
            new_image: change.new_image,
            clock: change.stamp.hlc.0,
            region: change.stamp.region,
        }
    }
}

impl From<WireChange> for RemoteChange {
    fn from(change: WireChange) -> RemoteChange {
        RemoteChange {
            table_name: change.table,
            keys: change.keys,
            new_image: change.new_image,
            stamp: Stamp {
                hlc: HlcTimestamp(change.clock),
                region: change.region,
            },
        }
    }
}

/// A batch of changes, in the sender's log order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChangeBatch {
    /// The changes.
    pub changes: Vec<WireChange>,
    /// Per table, a clock such that, once this batch is applied, the receiver has every
    /// change of the table the sender made with a stamp at or before it (so the receiver
    /// knows no older write of the sender's is still on its way).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub delivered: std::collections::BTreeMap<String, u64>,
}

/// The first byte of a binary [`ChangeBatch`]: its layout's version.
const BATCH_FORMAT: u8 = 1;

impl ChangeBatch {
    /// The batch in its binary form. Tables and regions are named once, in a dictionary at the
    /// front; items are in the store's own encoding ([`tidemark_core::replication::encode_item`]):
    ///
    /// ```text
    /// format u8 = 1
    /// names: u32 count, then count × (u16 length, UTF-8 bytes)
    /// changes: u32 count, then count × (u16 table name, u16 region name, u64 clock,
    ///          item keys, u8 1 when an image follows, [item image])
    /// delivered: u32 count, then count × (u16 table name, u64 clock)
    /// ```
    ///
    /// # Panics
    /// With more than 65,535 distinct names in one batch (a batch names a few tables and
    /// regions).
    pub fn encode(&self) -> Vec<u8> {
        // The dictionary goes first, so the names are gathered before anything is written.
        let mut names = Names::default();
        for change in &self.changes {
            names.index(&change.table);
            names.index(&change.region);
        }
        for table in self.delivered.keys() {
            names.index(table);
        }
        let mut out = Vec::with_capacity(64 + self.changes.len() * 128);
        out.put_u8(BATCH_FORMAT);
        out.put_u32(len_u32(names.order.len()));
        for name in &names.order {
            let length = u16::try_from(name.len()).expect("a table or region name is short");
            out.put_u16(length);
            out.put_slice(name.as_bytes());
        }
        out.put_u32(len_u32(self.changes.len()));
        for change in &self.changes {
            out.put_u16(names.index(&change.table));
            out.put_u16(names.index(&change.region));
            out.put_u64(change.clock);
            encode_item(&mut out, &change.keys);
            match &change.new_image {
                Some(image) => {
                    out.put_u8(1);
                    encode_item(&mut out, image);
                }
                None => out.put_u8(0),
            }
        }
        out.put_u32(len_u32(self.delivered.len()));
        for (table, clock) in &self.delivered {
            out.put_u16(names.index(table));
            out.put_u64(*clock);
        }
        out
    }

    /// Reads a batch in the form [`ChangeBatch::encode`] writes.
    ///
    /// # Errors
    /// What is wrong when the bytes are not such a batch.
    pub fn decode(mut input: &[u8]) -> Result<ChangeBatch, DecodeError> {
        let input = &mut input;
        let format = input.try_get_u8().map_err(truncated)?;
        if format != BATCH_FORMAT {
            return Err(DecodeError::UnknownFormat(format));
        }
        let count = input.try_get_u32().map_err(truncated)?;
        let mut names = Vec::new();
        for _ in 0..count {
            let length = usize::from(input.try_get_u16().map_err(truncated)?);
            if input.remaining() < length {
                return Err(truncated(()));
            }
            let (name, rest) = input.split_at(length);
            names.push(
                std::str::from_utf8(name)
                    .map_err(|_| DecodeError::NameNotUtf8)?
                    .to_string(),
            );
            *input = rest;
        }
        let name = |input: &mut &[u8]| -> Result<String, DecodeError> {
            let at = usize::from(input.try_get_u16().map_err(truncated)?);
            names.get(at).cloned().ok_or(DecodeError::UnknownName(at))
        };
        let item = |input: &mut &[u8]| decode_item(input).map_err(|_| DecodeError::Item);
        let count = input.try_get_u32().map_err(truncated)?;
        // Capacity bounded by what the bytes can hold, whatever the count claims.
        let mut changes = Vec::with_capacity((count as usize).min(input.len() / 16));
        for _ in 0..count {
            let table = name(input)?;
            let region = name(input)?;
            let clock = input.try_get_u64().map_err(truncated)?;
            let keys = item(input)?;
            let new_image = match input.try_get_u8().map_err(truncated)? {
                0 => None,
                _ => Some(item(input)?),
            };
            changes.push(WireChange {
                table,
                keys,
                new_image,
                clock,
                region,
            });
        }
        let count = input.try_get_u32().map_err(truncated)?;
        let mut delivered = std::collections::BTreeMap::new();
        for _ in 0..count {
            let table = name(input)?;
            delivered.insert(table, input.try_get_u64().map_err(truncated)?);
        }
        if input.has_remaining() {
            return Err(DecodeError::TrailingBytes(input.remaining()));
        }
        Ok(ChangeBatch { changes, delivered })
    }
}

/// The names a binary batch refers to by position.
#[derive(Default)]
struct Names<'a> {
    order: Vec<&'a str>,
    positions: std::collections::HashMap<&'a str, u16>,
}

impl<'a> Names<'a> {
    fn index(&mut self, name: &'a str) -> u16 {
        if let Some(at) = self.positions.get(name) {
            return *at;
        }
        let at = u16::try_from(self.order.len()).expect("a batch names few tables and regions");
        self.order.push(name);
        self.positions.insert(name, at);
        at
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("a batch holds fewer than 4 billion entries")
}

fn truncated<E>(_: E) -> DecodeError {
    DecodeError::Truncated
}

/// Why bytes are not a [`ChangeBatch`]: the receiver refuses the request (a peer) or stops
/// reading the message's partition at it (a replication topic), and says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the batch does.
    #[error("the change batch is cut short")]
    Truncated,
    /// The first byte names a format this node does not know.
    #[error("unknown change batch format {0}")]
    UnknownFormat(u8),
    /// A table or region name is not UTF-8.
    #[error("a name that is not UTF-8")]
    NameNotUtf8,
    /// A change refers to a name by a position the dictionary does not have.
    #[error("name {0} is not in the batch's dictionary")]
    UnknownName(usize),
    /// An item's bytes do not decode.
    #[error("an item that does not decode")]
    Item,
    /// Bytes follow the batch.
    #[error("{0} bytes after the batch")]
    TrailingBytes(usize),
}

/// What the receiver made of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// Changes applied.
    pub written: u64,
    /// Changes seen before.
    pub duplicates: u64,
    /// Changes discarded because a newer write was already there.
    pub lost: u64,
    /// Tables the receiver does not have (its replica was deleted there).
    #[serde(default)]
    pub missing_tables: Vec<String>,
    /// Changes the receiver cannot apply, put aside there (`tidemark replicas status`).
    #[serde(default)]
    pub parked: u64,
}

/// A membership document for one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipMessage {
    /// The table.
    pub table: String,
    /// The sender's document.
    pub global: GlobalTable,
}

/// The receiver's answer to a membership document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "one answer per exchange, moved once: boxing the document buys nothing"
)]
pub enum MembershipAnswer {
    /// It holds this document now (the sent one, or a newer one of its own).
    Holds(GlobalTable),
    /// It has no such table (its replica was deleted, or it dropped it now).
    NoTable,
}

/// A request to create a replica: the source's table definition and the membership it joins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateReplicaMessage {
    /// The table as the source holds it.
    pub definition: TableDefinition,
    /// The membership with the new replica in it.
    pub global: GlobalTable,
    /// Version 2017.11.29 forms a group of tables that already exist: an empty table of the
    /// same key schema in the new replica's region joins instead of being refused.
    #[serde(default)]
    pub adopt_existing: bool,
}

/// A refusal from a peer, with the DynamoDB error type to pass on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerRefusal {
    /// DynamoDB exception name.
    pub error: String,
    /// Why.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tidemark_core::model::{AttributeValue, Item, Number};

    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn sample() -> ChangeBatch {
        let key = |k: &str| item(&[("p", AttributeValue::S(k.into()))]);
        let number = |n: &str| AttributeValue::N(n.parse::<Number>().expect("a number"));
        let rich = item(&[
            ("p", AttributeValue::S("a".into())),
            ("n", number("-12.5e3")),
            ("b", AttributeValue::B(vec![0, 255, 7])),
            (
                "m",
                AttributeValue::M(item(&[(
                    "l",
                    AttributeValue::L(vec![AttributeValue::Null, AttributeValue::Bool(true)]),
                )])),
            ),
            ("ss", AttributeValue::Ss(["x".into(), "y".into()].into())),
        ]);
        ChangeBatch {
            changes: vec![
                WireChange {
                    table: "orders".into(),
                    keys: key("a"),
                    new_image: Some(rich),
                    clock: 1 << 40,
                    region: "us-east-1".into(),
                },
                WireChange {
                    table: "orders".into(),
                    keys: key("b"),
                    new_image: None,
                    clock: u64::MAX,
                    region: "eu-west-1".into(),
                },
                WireChange {
                    table: "ünïcode".into(),
                    keys: key(""),
                    new_image: Some(key("")),
                    clock: 0,
                    region: "us-east-1".into(),
                },
            ],
            delivered: BTreeMap::from([("orders".into(), 42), ("idle".into(), 7)]),
        }
    }

    #[test]
    fn a_batch_reads_back_as_it_was_written() {
        let batch = sample();
        let decoded = ChangeBatch::decode(&batch.encode()).expect("decodes");
        assert_eq!(decoded.changes, batch.changes);
        assert_eq!(decoded.delivered, batch.delivered);
        let empty = ChangeBatch::default();
        let decoded = ChangeBatch::decode(&empty.encode()).expect("an empty batch decodes");
        assert!(decoded.changes.is_empty() && decoded.delivered.is_empty());
    }

    #[test]
    fn bytes_that_are_not_a_whole_batch_are_refused_without_panicking() {
        let bytes = sample().encode();
        for end in 0..bytes.len() {
            assert!(
                ChangeBatch::decode(&bytes[..end]).is_err(),
                "a batch cut at byte {end} of {} is refused",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ChangeBatch::decode(&longer).is_err(), "trailing bytes");
        let mut other_format = bytes.clone();
        other_format[0] = 9;
        assert!(
            ChangeBatch::decode(&other_format).is_err(),
            "unknown format"
        );
        assert!(ChangeBatch::decode(b"{\"changes\":[]}").is_err(), "JSON");
    }

    #[test]
    fn a_name_outside_the_dictionary_is_refused() {
        let mut bytes = ChangeBatch {
            changes: Vec::new(),
            delivered: BTreeMap::from([("t".into(), 1)]),
        }
        .encode();
        // format, one name "t", no changes, one delivered entry naming position 0.
        let at = bytes.len() - 10;
        bytes[at..at + 2].copy_from_slice(&5u16.to_be_bytes());
        let refused = ChangeBatch::decode(&bytes).expect_err("position 5 names nothing");
        assert_eq!(refused, DecodeError::UnknownName(5));
        assert_eq!(
            refused.to_string(),
            "name 5 is not in the batch's dictionary"
        );
    }
}
