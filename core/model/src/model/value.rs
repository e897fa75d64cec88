//! `AttributeValue`, DynamoDB's tagged value, with serde in DynamoDB JSON shape
//! (`{"S": "x"}`, `{"N": "1"}`, `{"SS": [...]}`, ...).
//!
//! Sets are kept as sorted sets, so two items that differ only in set or map order are equal
//! structs: that is what makes "a write that changes nothing writes nothing" a plain `==`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::number::{Number, ValueLayer};
use super::reading::{self, Opening, layer};

/// An item: attribute names to values.
pub type Item = BTreeMap<String, AttributeValue>;

/// Most maps and lists DynamoDB accepts nested in an attribute's value: a document is at most
/// 32 levels deep, the attribute itself the first (AWS's documented limit; the Alternator
/// suite's test_projection_expression.py and nubo-db/dynamodb-conformance's
/// nestingDepth.test.ts, both checked against AWS, refuse a leaf at level 33).
pub const MAX_NESTING: usize = 31;

/// DynamoDB's message for a value nested past [`MAX_NESTING`].
pub const NESTED_TOO_DEEP: &str = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";

/// Prefix that marks a deserialisation error as a ValidationException (a value that is well
/// formed JSON but not an acceptable DynamoDB value) rather than a SerializationException.
pub const VALIDATION_ERROR_MARKER: &str = "\u{1}validation:";

/// One DynamoDB attribute value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeValue {
    /// String.
    S(String),
    /// Number.
    N(Number),
    /// Binary.
    B(Vec<u8>),
    /// Boolean.
    Bool(bool),
    /// Null (always `true` on the wire).
    Null,
    /// Map of names to values.
    M(BTreeMap<String, AttributeValue>),
    /// List.
    L(Vec<AttributeValue>),
    /// String set (non-empty).
    Ss(BTreeSet<String>),
    /// Number set (non-empty).
    Ns(BTreeSet<Number>),
    /// Binary set (non-empty).
    Bs(BTreeSet<Vec<u8>>),
}

/// The type tags of [`AttributeValue`], as DynamoDB spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `S`
    S,
    /// `N`
    N,
    /// `B`
    B,
    /// `BOOL`
    Bool,
    /// `NULL`
    Null,
    /// `M`
    M,
    /// `L`
    L,
    /// `SS`
    Ss,
    /// `NS`
    Ns,
    /// `BS`
    Bs,
}

impl ValueType {
    /// DynamoDB's name for the type (`S`, `BOOL`, `SS`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::S => "S",
            ValueType::N => "N",
            ValueType::B => "B",
            ValueType::Bool => "BOOL",
            ValueType::Null => "NULL",
            ValueType::M => "M",
            ValueType::L => "L",
            ValueType::Ss => "SS",
            ValueType::Ns => "NS",
            ValueType::Bs => "BS",
        }
    }

    /// Parses DynamoDB's name for a type.
    pub fn parse(name: &str) -> Option<ValueType> {
        Some(match name {
            "S" => ValueType::S,
            "N" => ValueType::N,
            "B" => ValueType::B,
            "BOOL" => ValueType::Bool,
            "NULL" => ValueType::Null,
            "M" => ValueType::M,
            "L" => ValueType::L,
            "SS" => ValueType::Ss,
            "NS" => ValueType::Ns,
            "BS" => ValueType::Bs,
            _ => return None,
        })
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AttributeValue {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            AttributeValue::S(_) => ValueType::S,
            AttributeValue::N(_) => ValueType::N,
            AttributeValue::B(_) => ValueType::B,
            AttributeValue::Bool(_) => ValueType::Bool,
            AttributeValue::Null => ValueType::Null,
            AttributeValue::M(_) => ValueType::M,
            AttributeValue::L(_) => ValueType::L,
            AttributeValue::Ss(_) => ValueType::Ss,
            AttributeValue::Ns(_) => ValueType::Ns,
            AttributeValue::Bs(_) => ValueType::Bs,
        }
    }

    /// Bytes DynamoDB counts for this value towards the 400 KB item limit and capacity units.
    pub fn size_bytes(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.size_bytes(),
            AttributeValue::B(b) => b.len(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, v)| k.len() + v.size_bytes() + 1)
                    .sum::<usize>()
            }
            AttributeValue::L(l) => 3 + l.iter().map(|v| v.size_bytes() + 1).sum::<usize>(),
            AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
            AttributeValue::Ns(s) => s.iter().map(Number::size_bytes).sum(),
            AttributeValue::Bs(s) => s.iter().map(Vec::len).sum(),
        }
    }

    /// Nesting depth: 0 for scalars and sets, 1 + deepest child for maps and lists.
    pub fn depth(&self) -> usize {
        match self {
            AttributeValue::M(m) => 1 + m.values().map(AttributeValue::depth).max().unwrap_or(0),
            AttributeValue::L(l) => 1 + l.iter().map(AttributeValue::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Size of a whole item as DynamoDB counts it: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size_bytes()).sum()
}

impl fmt::Debug for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => f.write_str("<unprintable>"),
        }
    }
}

struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(self.0))
    }
}

struct NumberText<'a>(&'a Number);

impl Serialize for NumberText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            AttributeValue::S(v) => map.serialize_entry("S", v)?,
            AttributeValue::N(v) => map.serialize_entry("N", &NumberText(v))?,
            AttributeValue::B(v) => map.serialize_entry("B", &Base64(v))?,
            AttributeValue::Bool(v) => map.serialize_entry("BOOL", v)?,
            AttributeValue::Null => map.serialize_entry("NULL", &true)?,
            AttributeValue::M(v) => map.serialize_entry("M", v)?,
            AttributeValue::L(v) => map.serialize_entry("L", v)?,
            AttributeValue::Ss(v) => map.serialize_entry("SS", v)?,
            AttributeValue::Ns(v) => map.serialize_entry("NS", &SeqOf(v.iter().map(NumberText)))?,
            AttributeValue::Bs(v) => {
                map.serialize_entry("BS", &SeqOf(v.iter().map(|b| Base64(b))))?
            }
        }
        map.end()
    }
}

struct SeqOf<I>(I);

impl<I, T> Serialize for SeqOf<I>
where
    I: Iterator<Item = T> + Clone,
    T: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for v in self.0.clone() {
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

fn invalid<E: de::Error>(msg: impl fmt::Display) -> E {
    E::custom(format_args!("{VALIDATION_ERROR_MARKER}{msg}"))
}

fn parse_number<E: de::Error>(text: &str) -> Result<Number, E> {
    Number::parse_in(text, layer()).map_err(invalid)
}

fn decode_base64<E: de::Error>(text: &str) -> Result<Vec<u8>, E> {
    // Malformed base64 is a SerializationException in DynamoDB, not a validation error.
    BASE64.decode(text).map_err(|_| {
        E::custom(
            "Base64 encoded length is expected a multiple of 4 bytes but found: invalid base64",
        )
    })
}

struct Base64Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode_base64(&text).map(Base64Bytes)
    }
}

/// A set with a repeated member, as each layer words it: the older one lists the members as
/// sent; the current one quotes them, the distinct ones in order and then the repeats
/// (nubo-db/dynamodb-conformance's valueLayers.test.ts, recorded against AWS in 2026).
fn duplicates<E: de::Error>(shown: &[String]) -> E {
    let list = match layer() {
        ValueLayer::Older => shown.join(", "),
        ValueLayer::Current => distinct_then_repeats(shown)
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect::<Vec<_>>()
            .join(", "),
    };
    invalid(format_args!(
        "One or more parameter values were invalid: Input collection [{list}] contains duplicates."
    ))
}

/// The members in the order the current value checks list a set with a repeat: the distinct
/// ones sorted, then each repeat.
fn distinct_then_repeats<T: Ord + Clone>(members: &[T]) -> Vec<T> {
    let mut distinct = BTreeSet::new();
    let mut repeats = Vec::new();
    for member in members {
        if !distinct.insert(member.clone()) {
            repeats.push(member.clone());
        }
    }
    distinct.into_iter().chain(repeats).collect()
}

fn empty_set<E: de::Error>(kind: &str) -> E {
    invalid(format_args!(
        "One or more parameter values were invalid: An {kind} set  may not be empty"
    ))
}

impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match reading::open_value() {
            Opening::Open(_open) => d.deserialize_map(ValueVisitor),
            // Past the limit, its report deferred: what is below, no answer will show.
            Opening::Cut => {
                de::IgnoredAny::deserialize(d)?;
                Ok(AttributeValue::Null)
            }
            Opening::TooDeep => Err(invalid(NESTED_TOO_DEEP)),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = AttributeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AttributeValue object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeValue, A::Error> {
        let mut found: Option<AttributeValue> = None;
        let mut more_than_one = false;
        let mut null_false = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value = match key.as_ref() {
                "S" => AttributeValue::S(map.next_value()?),
                "N" => {
                    let text: std::borrow::Cow<'de, str> = map.next_value()?;
                    AttributeValue::N(parse_number(&text)?)
                }
                "B" => AttributeValue::B(map.next_value::<Base64Bytes>()?.0),
                "BOOL" => AttributeValue::Bool(map.next_value()?),
                "NULL" => {
                    if !map.next_value::<bool>()? {
                        null_false = true;
                    }
                    AttributeValue::Null
                }
                "M" => AttributeValue::M(map.next_value()?),
                "L" => AttributeValue::L(map.next_value()?),
                "SS" => {
                    let list: Vec<String> = map.next_value()?;
                    if list.is_empty() {
                        return Err(empty_set("string"));
                    }
                    let len = list.len();
                    let set: BTreeSet<String> = list.iter().cloned().collect();
                    if set.len() != len {
                        return Err(duplicates(&list));
                    }
                    AttributeValue::Ss(set)
                }
                "NS" => {
                    let list: Vec<std::borrow::Cow<'de, str>> = map.next_value()?;
                    if list.is_empty() {
                        return Err(empty_set("number"));
                    }
                    let mut set = BTreeSet::new();
                    for text in &list {
                        set.insert(parse_number(text)?);
                    }
                    if set.len() != list.len() {
                        // Number sets are not listed (the older checks drop the prefix too).
                        return Err(invalid(match layer() {
                            ValueLayer::Current => {
                                "One or more parameter values were invalid: Input collection contains duplicates."
                            }
                            ValueLayer::Older => "Input collection contains duplicates",
                        }));
                    }
                    AttributeValue::Ns(set)
                }
                "BS" => {
                    let list: Vec<Base64Bytes> = map.next_value()?;
                    // DynamoDB words both of these unlike the other sets' (dynalite's
                    // tests, recorded against it).
                    if list.is_empty() {
                        return Err(invalid(
                            "One or more parameter values were invalid: Binary sets should not \
                             be empty",
                        ));
                    }
                    let distinct: BTreeSet<&[u8]> = list.iter().map(|b| b.0.as_slice()).collect();
                    if distinct.len() != list.len() {
                        let shown = match layer() {
                            ValueLayer::Older => {
                                let all: Vec<String> =
                                    list.iter().map(|b| BASE64.encode(&b.0)).collect();
                                all.join(", ")
                            }
                            ValueLayer::Current => {
                                let bytes: Vec<&[u8]> =
                                    list.iter().map(|b| b.0.as_slice()).collect();
                                distinct_then_repeats(&bytes)
                                    .iter()
                                    .map(|m| format!("\"{}\"", BASE64.encode(m)))
                                    .collect::<Vec<_>>()
                                    .join(",")
                            }
                        };
                        return Err(invalid(format_args!(
                            "One or more parameter values were invalid: Input collection [{shown}]of \
                             type BS contains duplicates."
                        )));
                    }
                    AttributeValue::Bs(list.into_iter().map(|b| b.0).collect())
                }
                // DynamoDB's deserializer skips members it does not know: a value with only
                // unknown members is an empty AttributeValue (ValidationException below).
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                    continue;
                }
            };
            if found.is_some() {
                more_than_one = true;
            }
            found = Some(value);
        }
        if more_than_one {
            return Err(invalid(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            ));
        }
        if null_false {
            return Err(invalid(
                "One or more parameter values were invalid: Null attribute value types must have the value of true",
            ));
        }
        found.ok_or_else(|| {
            invalid("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Nesting, RequestReading};

    /// [`parse`] with the older value checks.
    fn parse_older(json: &str) -> Result<AttributeValue, String> {
        let _reading = RequestReading::begin(ValueLayer::Older, Nesting::Refuse);
        parse(json)
    }

    fn parse(json: &str) -> Result<AttributeValue, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_document_is_at_most_32_levels_deep() {
        let wrapped = |wraps: usize| {
            (0..wraps).fold(r#"{"S":"leaf"}"#.to_string(), |inner, _| {
                format!(r#"{{"M":{{"n":{inner}}}}}"#)
            })
        };
        assert_eq!(parse(&wrapped(31)).unwrap().depth(), 31);
        assert!(
            parse(&wrapped(32))
                .unwrap_err()
                .contains("nested levels beyond supported limit")
        );
    }

    #[test]
    fn each_layer_words_a_repeated_set_member_its_own_way() {
        let current = parse(r#"{"SS":["b","a","b"]}"#).unwrap_err();
        assert!(current.contains(r#"Input collection ["a", "b", "b"] contains duplicates."#));
        let older = parse_older(r#"{"SS":["b","a","b"]}"#);
        assert!(
            older
                .unwrap_err()
                .contains("Input collection [b, a, b] contains duplicates.")
        );
        let binary = parse(r#"{"BS":["/w==","AA==","AA=="]}"#).unwrap_err();
        assert!(
            binary.contains(r#"Input collection ["AA==","/w==","AA=="]of type BS"#),
            "{binary}"
        );
        let numbers = parse_older(r#"{"NS":["2","1","2"]}"#);
        assert!(
            numbers
                .unwrap_err()
                .contains(":Input collection contains duplicates")
        );
    }

    #[test]
    fn round_trips_every_type() {
        let json = r#"{"M":{"b":{"B":"AAE="},"bool":{"BOOL":true},"bs":{"BS":["AA==","AQ=="]},"l":{"L":[{"NULL":true},{"S":""}]},"n":{"N":"1000"},"ns":{"NS":["1","2.5"]},"s":{"S":"x"},"ss":{"SS":["a","b"]}}}"#;
        let v = parse(json).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), json);
    }

    #[test]
    fn numbers_are_canonicalised_and_sets_compare_as_sets() {
        assert_eq!(
            parse(r#"{"N":"1e3"}"#).unwrap(),
            parse(r#"{"N":"1000"}"#).unwrap()
        );
        assert_eq!(
            parse(r#"{"SS":["b","a"]}"#).unwrap(),
            parse(r#"{"SS":["a","b"]}"#).unwrap()
        );
    }

    #[test]
    fn classifies_errors() {
        let validation = |j: &str| parse(j).unwrap_err().contains(VALIDATION_ERROR_MARKER);
        assert!(validation(r#"{"N":"abc"}"#));
        assert!(validation(r#"{"SS":[]}"#));
        assert!(validation(r#"{"SS":["a","a"]}"#));
        assert!(validation(r#"{"NS":["1","1.0"]}"#));
        assert!(validation(r#"{}"#));
        assert!(validation(r#"{"S":"a","N":"1"}"#));
        // Unknown members are skipped, as DynamoDB skips them: alone they leave the value empty.
        assert!(validation(r#"{"dog":"cat"}"#));
        assert_eq!(
            parse(r#"{"S":"a","dog":{"x":[1]}}"#).unwrap(),
            AttributeValue::S("a".into())
        );
        assert!(!validation(r#"{"N":1}"#));
        assert!(!validation(r#"{"B":"not base64!"}"#));
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        let item: Item =
            serde_json::from_str(r#"{"shirt-color":{"S":"R"},"shirt-size":{"S":"M"}}"#).unwrap();
        assert_eq!(item_size(&item), 23);
    }
}
