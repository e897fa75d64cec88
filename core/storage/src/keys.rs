//! Order-preserving key encodings.
//!
//! Item keys are `table id (u64 BE) | partition key | sort key`. Every key value is encoded so
//! that comparing encodings bytewise gives DynamoDB's order (numeric for `N`, unsigned bytes
//! for `S` and `B`) and no encoding is a prefix of another, so one partition's items are
//! contiguous and ordered by sort key.

use std::ops::Bound;
#[cfg(test)]
use tidemark_model::model::Number;

use tidemark_model::TableId;
use tidemark_model::changes::ChangeSeq;
use tidemark_model::key_condition::{KeyCondition, SortKeyCondition};
use tidemark_model::model::{AttributeValue, Item, KeyShape, ScalarType};

/// Encodes a key attribute value (S, N or B) order-preservingly and self-delimited.
pub(crate) fn encode_key_value(value: &AttributeValue, out: &mut Vec<u8>) {
    match value {
        AttributeValue::N(n) => n.encode_ordered(out),
        AttributeValue::S(s) => encode_bytes(s.as_bytes(), out),
        AttributeValue::B(b) => encode_bytes(b, out),
        // Keys are checked against the schema before encoding; other types never get here.
        _ => out.push(0xff),
    }
}

/// Escapes 0x00 as 0x00 0xff and terminates with 0x00 0x01: order-preserving and prefix-free.
fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Escapes like [`encode_bytes`] without the terminator: every encoding of a value that
/// starts with `bytes` starts with this (used for `begins_with` on sort keys).
fn encode_bytes_prefix(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
}

/// A range of storage keys.
#[derive(Debug, Clone)]
pub struct KeyRange {
    pub(crate) lower: Bound<Vec<u8>>,
    pub(crate) upper: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        let (lower, upper) = fjall::util::prefix_to_range(prefix);
        KeyRange {
            lower: lower.map(|k| k.to_vec()),
            upper: upper.map(|k| k.to_vec()),
        }
    }

    /// Narrows the range to keys after `key` (forward) or before it (backward): where a page
    /// of a Query or Scan resumes.
    pub fn resume_after(&mut self, key: Vec<u8>, forward: bool) {
        let bound = if forward {
            &mut self.lower
        } else {
            &mut self.upper
        };
        let tighter = match &*bound {
            Bound::Unbounded => true,
            Bound::Included(b) | Bound::Excluded(b) => {
                if forward {
                    key >= *b
                } else {
                    key <= *b
                }
            }
        };
        if tighter {
            *bound = Bound::Excluded(key);
        }
    }
}

/// The keys a Query's key condition selects, in one partition of a table or index (`id`).
///
/// Bounds on the sort key are prefix bounds: index entries carry the table's key after the
/// index's sort key, so "sort key = v" is every key that starts with `id | pk | v`.
pub fn query_range(id: TableId, condition: &KeyCondition) -> KeyRange {
    // Index keys encode every partition attribute, then every sort attribute, each
    // self-delimiting: bound equalities are one contiguous prefix, and the condition on the
    // next sort attribute a range within it.
    let mut partition = id.to_be_bytes().to_vec();
    encode_key_value(&condition.partition_value, &mut partition);
    for value in condition
        .partition_rest
        .iter()
        .chain(&condition.sort_prefix)
    {
        encode_key_value(value, &mut partition);
    }
    let with = |value: &AttributeValue| {
        let mut key = partition.clone();
        encode_key_value(value, &mut key);
        key
    };
    let whole = KeyRange::prefix(&partition);
    match &condition.sort {
        None => whole,
        Some(SortKeyCondition::Eq(v)) => KeyRange::prefix(&with(v)),
        Some(SortKeyCondition::Lt(v)) => KeyRange {
            lower: whole.lower,
            upper: Bound::Excluded(with(v)),
        },
        Some(SortKeyCondition::Le(v)) => KeyRange {
            lower: whole.lower,
            upper: KeyRange::prefix(&with(v)).upper,
        },
        Some(SortKeyCondition::Gt(v)) => KeyRange {
            lower: after_prefix(&with(v)),
            upper: whole.upper,
        },
        Some(SortKeyCondition::Ge(v)) => KeyRange {
            lower: Bound::Included(with(v)),
            upper: whole.upper,
        },
        Some(SortKeyCondition::Between(a, b)) => KeyRange {
            lower: Bound::Included(with(a)),
            upper: KeyRange::prefix(&with(b)).upper,
        },
        Some(SortKeyCondition::BeginsWith(v)) => {
            let mut prefix = partition.clone();
            match v {
                AttributeValue::S(s) => encode_bytes_prefix(s.as_bytes(), &mut prefix),
                AttributeValue::B(b) => encode_bytes_prefix(b, &mut prefix),
                // begins_with is only accepted on S and B sort keys.
                other => encode_key_value(other, &mut prefix),
            }
            KeyRange::prefix(&prefix)
        }
    }
}

/// The lower bound just past every key that starts with `prefix`.
fn after_prefix(prefix: &[u8]) -> Bound<Vec<u8>> {
    match KeyRange::prefix(prefix).upper {
        Bound::Excluded(k) => Bound::Included(k),
        Bound::Included(k) => Bound::Excluded(k),
        // A prefix of all 0xff bytes has nothing after it: an empty range.
        Bound::Unbounded => Bound::Excluded(vec![0xff; prefix.len() + 1]),
    }
}

/// Which of `total` parallel-scan segments an item belongs to: a stable hash of its
/// partition key, so one partition's items always fall in one segment.
pub fn scan_segment(partition_value: &AttributeValue, total: u32) -> u32 {
    let mut encoded = Vec::with_capacity(32);
    encode_key_value(partition_value, &mut encoded);
    (xxhash_rust::xxh3::xxh3_64(&encoded) % u64::from(total.max(1))) as u32
}

/// A byte-wide hash of a partition key value; stream shards split a table's records by it.
pub(crate) fn partition_byte(partition_value: &AttributeValue) -> u8 {
    let mut encoded = Vec::with_capacity(32);
    encode_key_value(partition_value, &mut encoded);
    (xxhash_rust::xxh3::xxh3_64(&encoded) >> 56) as u8
}

/// The partition of a cluster region's table log that holds the items of partition key
/// `partition_value`, among `partitions`: the same on every node and every version.
pub fn log_partition(partition_value: &AttributeValue, partitions: u32) -> u32 {
    let mut encoded = Vec::with_capacity(32);
    encode_key_value(partition_value, &mut encoded);
    (xxhash_rust::xxh3::xxh3_64(&encoded) % u64::from(partitions.max(1))) as u32
}

/// The storage key of an item: table id, then partition key, then sort key.
pub fn item_key(table_id: TableId, shape: &KeyShape, key: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&table_id.to_be_bytes());
    for attribute in shape.attributes() {
        if let Some(value) = key.get(&attribute.name) {
            encode_key_value(value, &mut out);
        }
    }
    out
}

/// The prefix shared by every item key of a table.
pub fn table_prefix(table_id: TableId) -> [u8; 8] {
    table_id.to_be_bytes()
}

/// The key of a per-table change-index entry: table id, then change sequence.
pub(crate) fn table_change_key(table_id: TableId, seq: ChangeSeq) -> [u8; 16] {
    let mut out = [0u8; 16];
    let (a, b) = out.split_at_mut(8);
    a.copy_from_slice(&table_id.to_be_bytes());
    b.copy_from_slice(&seq.to_be_bytes());
    out
}

/// Decodes a number key value (used by tests and tools that read keys back).
#[cfg(test)]
pub(crate) fn decode_number(input: &[u8]) -> Option<(Number, usize)> {
    Number::decode_ordered(input)
}

/// The key attributes an item key encodes: the inverse of [`item_key`]. A tombstone keeps only
/// its storage key, and a replica being seeded needs its key attributes back.
pub fn decode_item_key(shape: &KeyShape, key: &[u8]) -> Option<Item> {
    let mut rest = key.get(8..)?;
    let mut item = Item::new();
    for attribute in shape.attributes() {
        let (value, used) = match attribute.scalar_type {
            ScalarType::N => {
                let (n, used) = tidemark_model::model::Number::decode_ordered(rest)?;
                (AttributeValue::N(n), used)
            }
            ScalarType::S => {
                let (bytes, used) = decode_bytes(rest)?;
                (AttributeValue::S(String::from_utf8(bytes).ok()?), used)
            }
            ScalarType::B => {
                let (bytes, used) = decode_bytes(rest)?;
                (AttributeValue::B(bytes), used)
            }
        };
        item.insert(attribute.name.clone(), value);
        rest = rest.get(used..)?;
    }
    rest.is_empty().then_some(item)
}

/// Undoes [`encode_bytes`]: the bytes and how many encoded bytes they took.
fn decode_bytes(input: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match (*input.get(i)?, input.get(i + 1).copied()) {
            (0, Some(0xff)) => {
                out.push(0);
                i += 2;
            }
            (0, Some(0x01)) => return Some((out, i + 2)),
            (0, _) => return None,
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: &AttributeValue) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key_value(v, &mut out);
        out
    }

    proptest! {
        #[test]
        fn item_keys_decode_back(s in ".{0,12}", b in proptest::collection::vec(any::<u8>(), 0..12), n in any::<i64>()) {
            use tidemark_model::model::KeyAttribute;
            let shape = KeyShape {
                hash: KeyAttribute { name: "p".into(), scalar_type: ScalarType::S },
                range: Some(KeyAttribute { name: "s".into(), scalar_type: ScalarType::B }),
                hash_rest: vec![],
                range_rest: vec![],
            };
            let keys: Item = [
                ("p".to_string(), AttributeValue::S(s)),
                ("s".to_string(), AttributeValue::B(b)),
            ].into();
            prop_assert_eq!(decode_item_key(&shape, &item_key(TableId::new(7), &shape, &keys)), Some(keys));
            let shape = KeyShape {
                hash: KeyAttribute { name: "n".into(), scalar_type: ScalarType::N },
                range: None,
                hash_rest: vec![],
                range_rest: vec![],
            };
            let keys: Item = [("n".to_string(), AttributeValue::N(Number::from(n)))].into();
            prop_assert_eq!(decode_item_key(&shape, &item_key(TableId::new(7), &shape, &keys)), Some(keys));
        }

        #[test]
        fn string_order_is_byte_order(a in ".{0,12}", b in ".{0,12}", sa in ".{0,4}", sb in ".{0,4}") {
            let ka = [enc(&AttributeValue::S(a.clone())), enc(&AttributeValue::S(sa.clone()))].concat();
            let kb = [enc(&AttributeValue::S(b.clone())), enc(&AttributeValue::S(sb.clone()))].concat();
            let expected = a.as_bytes().cmp(b.as_bytes()).then(sa.as_bytes().cmp(sb.as_bytes()));
            prop_assert_eq!(ka.cmp(&kb), expected);
        }

        #[test]
        fn binary_with_zero_bytes_keeps_order(a in proptest::collection::vec(0u8..3, 0..6), b in proptest::collection::vec(0u8..3, 0..6)) {
            prop_assert_eq!(enc(&AttributeValue::B(a.clone())).cmp(&enc(&AttributeValue::B(b.clone()))), a.cmp(&b));
        }

        #[test]
        fn numbers_sort_numerically(a in -1.0e6f64..1.0e6, b in -1.0e6f64..1.0e6) {
            let na = Number::parse(&format!("{a}")).unwrap();
            let nb = Number::parse(&format!("{b}")).unwrap();
            let (ea, eb) = (enc(&AttributeValue::N(na.clone())), enc(&AttributeValue::N(nb.clone())));
            prop_assert_eq!(ea.cmp(&eb), a.partial_cmp(&b).unwrap());
            prop_assert_eq!(decode_number(&ea).map(|(n, _)| n), Some(na));
        }
    }

    #[test]
    fn partition_keys_do_not_prefix_each_other() {
        let a = enc(&AttributeValue::S("a".into()));
        let ab = enc(&AttributeValue::S("ab".into()));
        assert!(!ab.starts_with(&a));
    }
}
