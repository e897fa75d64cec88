//! How a request's body is read into values: which of DynamoDB's value checks run, and what
//! becomes of a value nested past the document limit. serde gives a value no context, so the
//! request being read on this thread says it here.
//!
//! DynamoDB reads a request nested past its JSON reader's limit (about 128 levels, the same
//! as serde_json's) a second way, in an older form: such a request gets older messages for
//! some members, and its too-deep values are reported after every other check of the request
//! and before its table is looked up (nubo-db/dynamodb-conformance's deepRequests.test.ts,
//! recorded against AWS in ten regions, 2026-10).

use std::cell::Cell;

use serde::de::DeserializeOwned;

use super::number::ValueLayer;
use super::value::{MAX_NESTING, NESTED_TOO_DEEP};

/// Deepest JSON nesting DynamoDB's newer request reader takes, as serde_json's: single-item
/// calls answer in the older form from about 62 levels of maps in an item on
/// (deepRequests.test.ts), 127 levels of JSON.
const JSON_READER_DEPTH: usize = 128;

/// Deepest JSON nesting read at all. Past serde_json's own 128 levels a body is read on a
/// growing stack; this bounds the memory that takes.
const MAX_JSON_DEPTH: usize = 1_000;

/// What reading a value nested past [`MAX_NESTING`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nesting {
    /// Refuses the request where the reader meets the value, unless the body is nested past
    /// the JSON reader's limit: then it is read again the older way (deep, deferring).
    #[default]
    Refuse,
    /// Refuses the request where the reader meets the value, however deep the body (PartiQL's
    /// parameters: the first fault in document order, nubo-db/dynamodb-conformance's
    /// partiqlParameterNumbers.test.ts).
    RefuseInOrder,
    /// Cuts the value short and reads on: the operation reports it where DynamoDB checks
    /// depth ([`MAX_NESTING`] levels of a cut value are kept, so its depth still shows).
    Defer,
}

#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    layer: ValueLayer,
    nesting: Nesting,
    /// The body is nested past the JSON reader's limit.
    deep: bool,
    /// AttributeValues open while reading: the level of the next one.
    open_values: usize,
    /// A value nested past the limit was cut short.
    cut: bool,
}

thread_local! {
    static READING: Cell<Reading> = Cell::new(Reading::default());
}

fn reading() -> Reading {
    READING.with(Cell::get)
}

fn update(change: impl FnOnce(&mut Reading)) {
    READING.with(|r| {
        let mut reading = r.get();
        change(&mut reading);
        r.set(reading);
    });
}

/// The request read and answered on this thread, from its body to its answer; dropping it
/// ends it.
#[must_use = "the request's reading ends when this is dropped"]
#[derive(Debug)]
pub struct RequestReading {
    before: Reading,
}

impl RequestReading {
    /// Starts a request whose values are read with `layer`'s checks and `nesting`.
    pub fn begin(layer: ValueLayer, nesting: Nesting) -> Self {
        let before = READING.with(|r| {
            r.replace(Reading {
                layer,
                nesting,
                ..Reading::default()
            })
        });
        RequestReading { before }
    }

    /// Reads the body as `T`. A body nested past [`JSON_READER_DEPTH`] that carries a value
    /// nested too deep is read as DynamoDB reads one nested past its reader's limit: marked
    /// deep ([`reading_deep`]), with every too-deep value deferred ([`Nesting::Defer`]).
    ///
    /// # Errors
    /// The body is not a `T`, or is nested past [`MAX_JSON_DEPTH`].
    pub fn read<T: DeserializeOwned>(&self, body: &[u8]) -> serde_json::Result<T> {
        let read = serde_json::from_slice(body);
        let nested_too_deep = match &read {
            Ok(_) => reading().cut,
            Err(e) => {
                let text = e.to_string();
                text.starts_with("recursion limit exceeded") || text.contains(NESTED_TOO_DEEP)
            }
        };
        if !nested_too_deep || reading().nesting == Nesting::RefuseInOrder {
            return read;
        }
        let depth = json_depth(body);
        if depth <= JSON_READER_DEPTH {
            return read;
        }
        update(|r| r.deep = true);
        if read.is_ok() || depth > MAX_JSON_DEPTH {
            return read;
        }
        // Read again, deferring: serde_json's own limit is past, so on a growing stack.
        update(|r| {
            r.nesting = Nesting::Defer;
            r.open_values = 0;
        });
        let mut json = serde_json::Deserializer::from_slice(body);
        json.disable_recursion_limit();
        let value = T::deserialize(serde_stacker::Deserializer::new(&mut json))?;
        json.end()?;
        Ok(value)
    }
}

impl Drop for RequestReading {
    fn drop(&mut self) {
        READING.with(|r| r.set(self.before));
    }
}

/// Whether the request being answered on this thread is nested past the JSON reader's
/// limit, so that DynamoDB answers some of its faults in an older form.
pub fn reading_deep() -> bool {
    reading().deep
}

/// DynamoDB's message for the request being answered on this thread if it carries a value
/// nested too deep whose report was deferred ([`Nesting::Defer`]).
pub fn deferred_nesting_fault() -> Option<&'static str> {
    reading().cut.then_some(NESTED_TOO_DEEP)
}

pub(super) fn layer() -> ValueLayer {
    reading().layer
}

/// An AttributeValue being read; dropping it closes it.
pub(super) struct OpenValue(());

/// What reading the next AttributeValue starts with.
pub(super) enum Opening {
    /// Within the limit: read it.
    Open(OpenValue),
    /// Past the limit, its report deferred: skip it. The request is marked as carrying a
    /// value nested too deep.
    Cut,
    /// Past the limit: refuse the request.
    TooDeep,
}

/// Opens the next AttributeValue.
pub(super) fn open_value() -> Opening {
    let now = reading();
    if now.open_values > MAX_NESTING {
        if now.nesting != Nesting::Defer {
            return Opening::TooDeep;
        }
        update(|r| r.cut = true);
        return Opening::Cut;
    }
    update(|r| r.open_values += 1);
    Opening::Open(OpenValue(()))
}

impl Drop for OpenValue {
    fn drop(&mut self) {
        update(|r| r.open_values = r.open_values.saturating_sub(1));
    }
}

/// The deepest nesting of objects and arrays in `body`.
fn json_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttributeValue, Item};

    /// `{"d": …}` with `levels` single-key maps around a string.
    fn nested_item(levels: usize) -> String {
        let value = (0..levels).fold(r#"{"S":"leaf"}"#.to_string(), |inner, _| {
            format!(r#"{{"M":{{"n":{inner}}}}}"#)
        });
        format!(r#"{{"d":{value}}}"#)
    }

    #[test]
    fn a_shallow_body_refuses_a_too_deep_value_as_it_reads_it() {
        let reading = RequestReading::begin(ValueLayer::Current, Nesting::Refuse);
        let error = reading
            .read::<Item>(nested_item(40).as_bytes())
            .unwrap_err();
        assert!(error.to_string().contains(NESTED_TOO_DEEP), "{error}");
        assert!(!reading_deep());
        assert_eq!(deferred_nesting_fault(), None);
    }

    #[test]
    fn a_deferred_value_is_cut_to_one_level_past_the_limit() {
        let reading = RequestReading::begin(ValueLayer::Current, Nesting::Defer);
        let item: Item = reading.read(nested_item(40).as_bytes()).unwrap();
        assert_eq!(item["d"].depth(), MAX_NESTING + 1);
        assert_eq!(deferred_nesting_fault(), Some(NESTED_TOO_DEEP));
        let shallow: Item = reading.read(nested_item(MAX_NESTING).as_bytes()).unwrap();
        assert_eq!(shallow["d"].depth(), MAX_NESTING);
    }

    #[test]
    fn a_deferring_body_past_the_json_limit_is_read_deep() {
        let reading = RequestReading::begin(ValueLayer::Current, Nesting::Defer);
        let item: Item = reading.read(nested_item(100).as_bytes()).unwrap();
        assert!(reading_deep());
        assert_eq!(item["d"].depth(), MAX_NESTING + 1);
        let reading = RequestReading::begin(ValueLayer::Current, Nesting::Defer);
        let _: Item = reading.read(nested_item(62).as_bytes()).unwrap();
        assert!(!reading_deep());
        assert_eq!(deferred_nesting_fault(), Some(NESTED_TOO_DEEP));
    }

    #[test]
    fn a_body_past_the_json_limit_is_read_deep_and_defers() {
        let reading = RequestReading::begin(ValueLayer::Current, Nesting::Refuse);
        let item: Item = reading.read(nested_item(100).as_bytes()).unwrap();
        assert!(reading_deep());
        assert_eq!(item["d"].depth(), MAX_NESTING + 1);
        assert_eq!(deferred_nesting_fault(), Some(NESTED_TOO_DEEP));
        drop(reading);
        assert!(!reading_deep());
        assert_eq!(deferred_nesting_fault(), None);
    }

    #[test]
    fn a_body_past_the_reader_bound_is_refused() {
        let reading = RequestReading::begin(ValueLayer::Current, Nesting::Refuse);
        let body = nested_item(MAX_JSON_DEPTH);
        let error = reading.read::<Item>(body.as_bytes()).unwrap_err();
        assert!(error.to_string().contains(NESTED_TOO_DEEP), "{error}");
        let unknown = format!(r#"{{"x":{}1{}}}"#, "[".repeat(2000), "]".repeat(2000));
        let error = reading
            .read::<serde_json::Value>(unknown.as_bytes())
            .unwrap_err();
        assert!(error.to_string().starts_with("recursion limit exceeded"));
        let _: AttributeValue = reading.read(br#"{"S":"[{\"}"}"#).unwrap();
    }

    #[test]
    fn refusing_in_order_stops_at_the_first_fault_however_deep_the_body() {
        let reading = RequestReading::begin(ValueLayer::Older, Nesting::RefuseInOrder);
        let deep_first = format!(r#"[{},{{"N":"abc"}}]"#, nested_item(100));
        let error = reading
            .read::<Vec<Item>>(deep_first.as_bytes())
            .unwrap_err();
        assert!(error.to_string().contains(NESTED_TOO_DEEP), "{error}");
        let number_first = format!(r#"[{{"a":{{"N":"abc"}}}},{}]"#, nested_item(100));
        let error = reading
            .read::<Vec<Item>>(number_first.as_bytes())
            .unwrap_err();
        assert!(error.to_string().contains("abc"), "{error}");
        assert!(!reading_deep());
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a":"[[[{{\"[","b":[[1]]}"#), 3);
    }
}
