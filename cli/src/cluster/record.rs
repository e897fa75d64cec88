//! A record of a cluster region's log: a line of JSON saying which request it is (its id, its
//! operation, the stamp the node that took it gave it), then the request's body as the client
//! sent it. Every copy that reads the record runs the operation's own handler on that body.

use serde::{Deserialize, Serialize};
use tidemark_core::{HlcTimestamp, Stamp};

/// What a log record says about the request it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordHeader {
    /// The request's id: the node that took it waits for the outcome of this id (a delivery
    /// report's offset cannot be trusted after a broker restart).
    pub(crate) id: String,
    /// The DynamoDB operation, by name.
    pub(crate) op: String,
    /// The stamp's clock reading.
    pub(crate) hlc: u64,
    /// The stamp's region.
    pub(crate) region: String,
    /// For a CreateTable: the partitions of the table's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) partitions: Option<u32>,
}

impl RecordHeader {
    /// The stamp the request was given.
    pub(crate) fn stamp(&self) -> Stamp {
        Stamp {
            hlc: HlcTimestamp(self.hlc),
            region: self.region.clone(),
        }
    }
}

/// The bytes of a record.
pub(crate) fn encode(header: &RecordHeader, body: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// A record's header and body; `None` for bytes that are not a Tidemark record.
pub(crate) fn decode(bytes: &[u8]) -> Option<(RecordHeader, &[u8])> {
    let end = bytes.iter().position(|b| *b == b'\n')?;
    let (header, rest) = bytes.split_at(end);
    let header = serde_json::from_slice(header).ok()?;
    Some((header, rest.get(1..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written_and_foreign_bytes_are_not_one() {
        let header = RecordHeader {
            id: uuid::Uuid::new_v4().simple().to_string(),
            op: "PutItem".into(),
            hlc: 42 << 16,
            region: "r".into(),
            partitions: None,
        };
        let body = br#"{"TableName":"t",
"Item":{}}"#;
        let bytes = encode(&header, body);
        assert_eq!(decode(&bytes), Some((header, &body[..])));
        assert_eq!(decode(b"{\"not\":1}\n{}"), None);
        assert_eq!(decode(b"no newline"), None);
    }
}
