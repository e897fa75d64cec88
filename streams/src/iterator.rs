//! Shard iterators: self-describing, checksummed positions in a shard, so they need no state
//! on the node and stay valid across restarts until they expire (15 minutes after issue).
//!
//! Text form: `<stream ARN>|1|<base64 payload>`, as DynamoDB's own look. The payload holds the
//! shard (generation start and lane), the next change sequence to read, the issue time and
//! whether the iterator asked for the trim horizon; a CRC32 over it rejects garbage.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tidemark_core::ChangeSeq;

use crate::error::{Error, Result};

/// How long an iterator stays usable.
pub const ITERATOR_LIFETIME_MILLIS: u64 = 15 * 60 * 1000;

const VERSION: u8 = 1;
const PAYLOAD_BYTES: usize = 1 + 8 + 1 + 8 + 8 + 1;

/// A decoded shard iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    /// ARN of the stream.
    pub stream_arn: String,
    /// First change sequence of the shard's generation.
    pub generation_start: ChangeSeq,
    /// The shard's lane.
    pub lane: u8,
    /// Next change sequence to read.
    pub position: ChangeSeq,
    /// When the iterator was issued, milliseconds since the Unix epoch.
    pub issued_millis: u64,
    /// Issued for TRIM_HORIZON: reading starts at the oldest record still kept.
    pub from_trim_horizon: bool,
}

impl ShardIterator {
    /// The iterator's text form.
    pub fn encode(&self) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD_BYTES + 4);
        payload.push(VERSION);
        payload.extend_from_slice(&self.generation_start.to_be_bytes());
        payload.push(self.lane);
        payload.extend_from_slice(&self.position.to_be_bytes());
        payload.extend_from_slice(&self.issued_millis.to_be_bytes());
        payload.push(u8::from(self.from_trim_horizon));
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(self.stream_arn.as_bytes());
        hasher.update(&payload);
        payload.extend_from_slice(&hasher.finalize().to_be_bytes());
        format!("{}|1|{}", self.stream_arn, URL_SAFE_NO_PAD.encode(payload))
    }

    /// Parses an iterator's text form.
    ///
    /// # Errors
    /// Validation when the text is not an iterator this node issued.
    pub fn decode(text: &str) -> Result<ShardIterator> {
        let invalid = || Error::Validation(format!("Invalid ShardIterator: {text}"));
        let (rest, blob) = text.rsplit_once('|').ok_or_else(invalid)?;
        let stream_arn = rest.strip_suffix("|1").ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(blob).map_err(|_| invalid())?;
        if payload.len() != PAYLOAD_BYTES + 4 {
            return Err(invalid());
        }
        let (body, crc) = payload.split_at(PAYLOAD_BYTES);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(stream_arn.as_bytes());
        hasher.update(body);
        if crc != hasher.finalize().to_be_bytes() {
            return Err(invalid());
        }
        let u64_at = |at: usize| {
            body.get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(invalid)
        };
        if body.first() != Some(&VERSION) {
            return Err(invalid());
        }
        Ok(ShardIterator {
            stream_arn: stream_arn.to_string(),
            generation_start: ChangeSeq::new(u64_at(1)?),
            lane: body.get(9).copied().ok_or_else(invalid)?,
            position: ChangeSeq::new(u64_at(10)?),
            issued_millis: u64_at(18)?,
            from_trim_horizon: body.get(26) == Some(&1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterators_round_trip_and_reject_garbage() {
        let it = ShardIterator {
            stream_arn:
                "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-01-01T00:00:00.000"
                    .into(),
            generation_start: ChangeSeq::new(7),
            lane: 3,
            position: ChangeSeq::new(1234),
            issued_millis: 99,
            from_trim_horizon: true,
        };
        let text = it.encode();
        assert!(text.len() <= 2048);
        assert_eq!(ShardIterator::decode(&text).unwrap(), it);
        assert!(ShardIterator::decode("garbage").is_err());
        let mut tampered = text.clone();
        tampered.replace_range(10..11, "x");
        assert!(ShardIterator::decode(&tampered).is_err());
        let flipped = text.replace("table/t/", "table/u/");
        assert!(ShardIterator::decode(&flipped).is_err());
    }
}
