//! Order-preserving key encodings.
//!
//! Item keys are `table id (u64 BE) | partition key | sort key`. Every key value is encoded so
//! that comparing encodings bytewise gives DynamoDB's order (numeric for `N`, unsigned bytes
//! for `S` and `B`) and no encoding is a prefix of another, so one partition's items are
//! contiguous and ordered by sort key.

#[cfg(test)]
use crate::model::Number;
use crate::model::{AttributeValue, Item, KeyShape};

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

/// The storage key of an item: table id, then partition key, then sort key.
pub(crate) fn item_key(table_id: u64, shape: &KeyShape, key: &Item) -> Vec<u8> {
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
pub(crate) fn table_prefix(table_id: u64) -> [u8; 8] {
    table_id.to_be_bytes()
}

/// The key of a per-table change-index entry: table id, then change sequence.
pub(crate) fn table_change_key(table_id: u64, seq: u64) -> [u8; 16] {
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
