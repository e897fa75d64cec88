//! Items in Amazon Ion text, as DynamoDB's exports write them and its imports read them: one
//! `$ion_1_0 {Item:{...}}` per line, with S as string, N as decimal, B as blob, BOOL as bool,
//! NULL as null, L as list, M as struct, and the sets as lists annotated `$dynamodb_SS`,
//! `$dynamodb_NS` and `$dynamodb_BS`. Reading takes any Ion stream (text or binary) whose
//! top-level values are such structs, or lists of them (AWS's import guide shows both).
//! Encoding and parsing are the `ion-rs` crate's.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use ion_rs::{Decimal, Element, IonType, Sequence, TextFormat, Value, WriteConfig};
use tidemark_core::model::{AttributeValue, Item, MAX_NESTING, Number};

use super::{Error, Result};

const STRING_SET: &str = "$dynamodb_SS";
const NUMBER_SET: &str = "$dynamodb_NS";
const BINARY_SET: &str = "$dynamodb_BS";

/// Writes `item` as one line of an Ion export.
///
/// # Errors
/// Io.
pub fn write_line(out: &mut impl Write, item: &Item) -> Result<()> {
    let line = Element::struct_builder()
        .with_field("Item", map(item))
        .build();
    let text = Element::from(line)
        .encode_as(WriteConfig::<ion_rs::v1_0::Text>::new(TextFormat::Compact))
        .map_err(|e| Error::Io(format!("encoding an item as Ion: {e}")))?;
    // Each line starts with a version marker, as AWS writes them, so any line reads alone.
    let io = |e: std::io::Error| Error::Io(e.to_string());
    out.write_all(b"$ion_1_0 ").map_err(io)?;
    out.write_all(text.trim().as_bytes()).map_err(io)?;
    out.write_all(b"\n").map_err(io)
}

fn map(values: &BTreeMap<String, AttributeValue>) -> Element {
    values
        .iter()
        .fold(Element::struct_builder(), |builder, (name, value)| {
            builder.with_field(name.as_str(), element(value))
        })
        .build()
        .into()
}

fn decimal(number: &Number) -> Decimal {
    // The number is 0.d₁…dₙ × 10^e, so its coefficient is d₁…dₙ and its exponent e − n; 38
    // digits fit an i128.
    let digits = number.significant_digits();
    let magnitude: i128 = digits.parse().unwrap_or(0);
    let coefficient = if number.is_negative() {
        -magnitude
    } else {
        magnitude
    };
    Decimal::new(
        coefficient,
        i64::from(number.exponent()) - digits.len() as i64,
    )
}

fn element(value: &AttributeValue) -> Element {
    let list = |items: Vec<Element>| Element::from(Value::List(Sequence::new(items)));
    match value {
        AttributeValue::S(s) => Element::string(s.as_str()),
        AttributeValue::N(n) => Element::decimal(decimal(n)),
        AttributeValue::B(b) => Element::blob(b),
        AttributeValue::Bool(b) => Element::boolean(*b),
        AttributeValue::Null => Element::null(IonType::Null),
        AttributeValue::M(m) => map(m),
        AttributeValue::L(l) => list(l.iter().map(element).collect()),
        AttributeValue::Ss(set) => list(set.iter().map(|s| Element::string(s.as_str())).collect())
            .with_annotations([STRING_SET]),
        AttributeValue::Ns(set) => list(set.iter().map(|n| Element::decimal(decimal(n))).collect())
            .with_annotations([NUMBER_SET]),
        AttributeValue::Bs(set) => {
            list(set.iter().map(Element::blob).collect()).with_annotations([BINARY_SET])
        }
    }
}

/// The items of an Ion stream, in order; `name` names the source in errors.
///
/// # Errors
/// Invalid for input that is not Ion or not items (the first such value ends the stream).
pub fn read_items(
    input: impl Read + 'static,
    name: String,
) -> Result<impl Iterator<Item = Result<Item>>> {
    let elements = Element::iter(std::io::BufReader::new(input))
        .map_err(|e| Error::Invalid(format!("{name}: not Amazon Ion: {e}")))?;
    let mut number = 0usize;
    Ok(elements.flat_map(move |element| {
        number += 1;
        let at = format!("{name}, value {number}");
        let lines: Vec<Result<Item>> = match element {
            Err(e) => vec![Err(Error::Invalid(format!("{at}: not Amazon Ion: {e}")))],
            Ok(element) => match element.value() {
                Value::List(lines) => lines.iter().map(|line| line_item(line, &at)).collect(),
                _ => vec![line_item(&element, &at)],
            },
        };
        lines
    }))
}

/// The item of one `{Item:{...}}` value.
fn line_item(line: &Element, at: &str) -> Result<Item> {
    let invalid = |why: String| Error::Invalid(format!("{at}: {why}"));
    let item = line
        .as_struct()
        .and_then(|s| s.get("Item"))
        .ok_or_else(|| invalid("expected a struct {Item:{...}}".into()))?;
    match attribute(item, 1).map_err(invalid)? {
        AttributeValue::M(item) => Ok(item),
        _ => Err(invalid("the Item is not a struct".into())),
    }
}

fn number(text: &str) -> std::result::Result<Number, String> {
    Number::parse(text).map_err(|e| e.to_string())
}

fn ion_number(element: &Element) -> std::result::Result<Number, String> {
    match element.value() {
        Value::Int(i) => number(&i.to_string()),
        Value::Decimal(d) => {
            let sign = if d.coefficient().is_negative() {
                "-"
            } else {
                ""
            };
            number(&format!(
                "{sign}{}E{}",
                d.coefficient().magnitude(),
                d.exponent()
            ))
        }
        Value::Float(f) if f.is_finite() => number(&f.to_string()),
        _ => Err(format!("expected a number, found {}", element.ion_type())),
    }
}

fn set_of<T: Ord>(
    values: &Sequence,
    kind: &str,
    each: impl Fn(&Element) -> std::result::Result<T, String>,
) -> std::result::Result<BTreeSet<T>, String> {
    if values.is_empty() {
        return Err(format!("An {kind} set may not be empty"));
    }
    let set = values
        .iter()
        .map(each)
        .collect::<std::result::Result<BTreeSet<T>, _>>()?;
    if set.len() != values.len() {
        return Err(format!("The {kind} set contains duplicates"));
    }
    Ok(set)
}

fn attribute(element: &Element, depth: usize) -> std::result::Result<AttributeValue, String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "an attribute value is nested deeper than {MAX_NESTING} levels"
        ));
    }
    if element.is_null() {
        return Ok(AttributeValue::Null);
    }
    let annotation = element.annotations().first().map(str::to_string);
    let value = match (element.value(), annotation.as_deref()) {
        (Value::List(values), Some(STRING_SET)) => {
            AttributeValue::Ss(set_of(values, "string", |e| {
                e.as_text()
                    .map(str::to_string)
                    .ok_or_else(|| format!("a string set holds a {}", e.ion_type()))
            })?)
        }
        (Value::List(values), Some(NUMBER_SET)) => {
            AttributeValue::Ns(set_of(values, "number", ion_number)?)
        }
        (Value::List(values), Some(BINARY_SET)) => {
            AttributeValue::Bs(set_of(values, "binary", |e| {
                e.as_lob()
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| format!("a binary set holds a {}", e.ion_type()))
            })?)
        }
        (_, Some(other)) => return Err(format!("unknown annotation {other}")),
        (Value::String(s), None) => AttributeValue::S(s.text().to_string()),
        (Value::Symbol(s), None) => AttributeValue::S(s.text().unwrap_or_default().to_string()),
        (Value::Int(_) | Value::Decimal(_) | Value::Float(_), None) => {
            AttributeValue::N(ion_number(element)?)
        }
        (Value::Blob(b) | Value::Clob(b), None) => AttributeValue::B(b.as_ref().to_vec()),
        (Value::Bool(b), None) => AttributeValue::Bool(*b),
        (Value::List(values), None) => AttributeValue::L(
            values
                .iter()
                .map(|e| attribute(e, depth + 1))
                .collect::<std::result::Result<_, _>>()?,
        ),
        (Value::Struct(fields), None) => {
            let mut map = BTreeMap::new();
            for (name, value) in fields {
                let name = name.text().unwrap_or_default().to_string();
                if map
                    .insert(name.clone(), attribute(value, depth + 1)?)
                    .is_some()
                {
                    return Err(format!("the struct names {name} twice"));
                }
            }
            AttributeValue::M(map)
        }
        (_, None) => {
            return Err(format!(
                "an Ion {} has no DynamoDB type",
                element.ion_type()
            ));
        }
    };
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Result<Vec<Item>> {
        read_items(std::io::Cursor::new(text.as_bytes().to_vec()), "t".into())?.collect()
    }

    #[test]
    fn reads_the_example_of_aws_export_guide() {
        let text = r#"$ion_1_0 {Item:{Authors:$dynamodb_SS::["Author1","Author2"],Dimensions:"8.5 x 11.0 x 1.5",ISBN:"333-3333333333",Id:103.,InPublication:false,PageCount:6d2,Price:2d3,ProductCategory:"Book",Title:"Book 103 Title"}}"#;
        let read = items(text).unwrap();
        let expected: Item = serde_json::from_str(
            r#"{"Authors":{"SS":["Author1","Author2"]},"Dimensions":{"S":"8.5 x 11.0 x 1.5"},"ISBN":{"S":"333-3333333333"},"Id":{"N":"103"},"InPublication":{"BOOL":false},"PageCount":{"N":"600"},"Price":{"N":"2000"},"ProductCategory":{"S":"Book"},"Title":{"S":"Book 103 Title"}}"#,
        )
        .unwrap();
        assert_eq!(read, vec![expected]);
    }

    #[test]
    fn reads_items_in_a_top_level_list_as_the_import_guide_shows() {
        let text = "$ion_1_0\n[\n {Item:{Id:103.}},\n {Item:{Id:104.}}\n]\n";
        let read = items(text).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            read[1]["Id"],
            AttributeValue::N(Number::parse("104").unwrap())
        );
    }

    #[test]
    fn every_type_round_trips_through_a_line() {
        let item: Item = serde_json::from_str(
            r#"{"s":{"S":"x \"quoted\" \n é"},"n":{"N":"-12.5e-3"},"big":{"N":"99999999999999999999999999999999999999"},"tiny":{"N":"1e-130"},"z":{"N":"0"},"b":{"B":"AAE="},"t":{"BOOL":true},"nul":{"NULL":true},"m":{"M":{"a b":{"L":[{"S":""},{"N":"1"}]}}},"ss":{"SS":["a","b"]},"ns":{"NS":["1","2.5"]},"bs":{"BS":["AA==","AQ=="]}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_line(&mut out, &item).unwrap();
        write_line(&mut out, &item).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("$ion_1_0 {Item: {"), "{text}");
        assert!(text.contains("ss: $dynamodb_SS::[\"a\", \"b\""), "{text}");
        assert!(text.contains("n: -0.0125"), "{text}");
        assert_eq!(items(&text).unwrap(), vec![item.clone(), item]);
    }

    #[test]
    fn ints_and_floats_are_numbers() {
        let read = items("{Item:{i:-7, f:2.5e0, h:0x10}}").unwrap();
        let n = |t: &str| AttributeValue::N(Number::parse(t).unwrap());
        assert_eq!(read[0]["i"], n("-7"));
        assert_eq!(read[0]["f"], n("2.5"));
        assert_eq!(read[0]["h"], n("16"));
    }

    #[test]
    fn what_is_not_an_item_is_refused_saying_where() {
        for (text, why) in [
            (
                "{Item:{a:1}} {Other:{}}",
                "value 2: expected a struct {Item:{...}}",
            ),
            ("{Item:{a:2025-01-01T}}", "timestamp has no DynamoDB type"),
            ("{Item:{a:$dynamodb_SS::[]}}", "may not be empty"),
            ("{Item:{a:$dynamodb_SS::[\"x\",\"x\"]}}", "duplicates"),
            ("{Item:{a:$dynamodb_NS::[\"x\"]}}", "expected a number"),
            ("{Item:{a:nan}}", "expected a number"),
            ("{Item:{a:1d200}}", "overflow"),
            ("{Item:{a:odd::1}}", "unknown annotation odd"),
            ("{Item:{a:(1 2)}}", "sexp has no DynamoDB type"),
            ("{Item:{a:1, a:2}}", "names a twice"),
            ("{Item:{a:\"unterminated}}", "not Amazon Ion"),
        ] {
            let e = items(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
