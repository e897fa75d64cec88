//! Shards: names, sequence numbers and the listing of a stream's shard lineage.
//!
//! A shard is one lane of one generation of a stream ([`tidemark_core::StreamInfo`]). Its id
//! is `shardId-<generation's first change sequence, 20 digits>-<8 hex>`: the hex holds a hash
//! of the stream ARN and the lane, so ids sort lexically in creation order (parents before
//! children) and an id of another stream is recognised as foreign.
//!
//! Sequence numbers are the change-log sequence plus 10^20, written in decimal: always 21
//! digits, so numeric and lexical order agree, and they only grow within a shard.

use tidemark_core::{ChangeSeq, StreamInfo};

use crate::error::{Error, Result};

const SEQUENCE_OFFSET: u128 = 100_000_000_000_000_000_000;

/// The DynamoDB Streams sequence number of a change-log sequence.
pub fn sequence_number(seq: ChangeSeq) -> String {
    (SEQUENCE_OFFSET + u128::from(seq.get())).to_string()
}

/// The change-log sequence a sequence number names.
///
/// # Errors
/// Validation when the text is not one of our sequence numbers.
pub fn parse_sequence_number(text: &str) -> Result<ChangeSeq> {
    let invalid = || {
        Error::Validation(format!(
            "Invalid SequenceNumber: {text} is not a valid sequence number"
        ))
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let value: u128 = text.parse().map_err(|_| invalid())?;
    value
        .checked_sub(SEQUENCE_OFFSET)
        .and_then(|seq| u64::try_from(seq).ok())
        .map(ChangeSeq::new)
        .ok_or_else(invalid)
}

/// One shard of a stream: a lane of a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRef {
    /// Index of the generation in the stream's (current) generation list.
    pub generation: usize,
    /// The lane.
    pub lane: u8,
    /// First change sequence of the shard.
    pub start: ChangeSeq,
    /// First change sequence after the shard (`None` while open).
    pub end: Option<ChangeSeq>,
}

/// A shard as DescribeStream lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardDescription {
    /// Shard id.
    pub shard_id: String,
    /// The same lane one generation earlier, while still listed.
    pub parent_shard_id: Option<String>,
    /// First sequence number of the shard.
    pub starting_sequence_number: String,
    /// Last sequence number of a closed shard.
    pub ending_sequence_number: Option<String>,
}

fn stream_hash(stream: &StreamInfo) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(stream.arn().as_bytes()) >> 40) as u32 & 0x00ff_ff00
}

/// The id of a lane of the generation starting at `start`.
pub fn shard_id(stream: &StreamInfo, start: ChangeSeq, lane: u8) -> String {
    format!(
        "shardId-{start:020}-{:08x}",
        stream_hash(stream) | u32::from(lane)
    )
}

/// Finds the shard a shard id names in `stream`.
///
/// # Errors
/// Validation for an ill-formed id; ResourceNotFound for a shard the stream does not have
/// (any more).
pub fn find_shard(stream: &StreamInfo, id: &str) -> Result<ShardRef> {
    let not_found = || {
        Error::ResourceNotFound(format!(
            "Requested resource not found: Shard {id} not found in stream {}",
            stream.arn()
        ))
    };
    let (start, suffix) = parse_shard_id(id).map_err(|e| match e {
        // Well-sized but not one of ours: DynamoDB answers that the shard does not exist.
        Error::Validation(message) if !message.contains("length") => not_found(),
        other => other,
    })?;
    if suffix & 0x00ff_ff00 != stream_hash(stream) {
        return Err(not_found());
    }
    let lane = (suffix & 0xff) as u8;
    if lane >= stream.shards {
        return Err(not_found());
    }
    shard_at(stream, start, lane).ok_or_else(not_found)
}

/// The lane `lane` of the generation starting at `start`, while the stream still has it.
pub fn shard_at(stream: &StreamInfo, start: ChangeSeq, lane: u8) -> Option<ShardRef> {
    let generation = stream
        .generations
        .iter()
        .position(|g| g.start_seq == start)?;
    Some(ShardRef {
        generation,
        lane,
        start,
        end: stream.generation_end(generation),
    })
}

fn parse_shard_id(id: &str) -> Result<(ChangeSeq, u32)> {
    let invalid = || Error::Validation(format!("Invalid ShardId: {id}"));
    if id.len() < 28 || id.len() > 65 {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{id}' at 'shardId' failed to satisfy constraint: Member must have length between 28 and 65"
        )));
    }
    let rest = id.strip_prefix("shardId-").ok_or_else(invalid)?;
    let (start, suffix) = rest.split_once('-').ok_or_else(invalid)?;
    if start.len() != 20 || suffix.len() != 8 {
        return Err(invalid());
    }
    let start = start.parse().map_err(|_| invalid())?;
    let suffix = u32::from_str_radix(suffix, 16).map_err(|_| invalid())?;
    Ok((start, suffix))
}

/// True when `id` is shaped like a shard id (DescribeStream's filters accept any such id).
pub fn is_shard_id(id: &str) -> bool {
    parse_shard_id(id).is_ok()
}

/// Every shard of the stream, sorted by id (creation order, parents first).
pub fn shards(stream: &StreamInfo) -> Vec<ShardDescription> {
    let mut out = Vec::with_capacity(stream.generations.len() * usize::from(stream.shards));
    for (index, generation) in stream.generations.iter().enumerate() {
        let end = stream.generation_end(index);
        let parent = index
            .checked_sub(1)
            .and_then(|i| stream.generations.get(i))
            .map(|g| g.start_seq);
        for lane in 0..stream.shards {
            out.push(ShardDescription {
                shard_id: shard_id(stream, generation.start_seq, lane),
                parent_shard_id: parent.map(|p| shard_id(stream, p, lane)),
                starting_sequence_number: sequence_number(generation.start_seq),
                // A generation closed before any commit ends where it starts.
                ending_sequence_number: end
                    .map(|e| sequence_number(e.saturating_prev().max(generation.start_seq))),
            });
        }
    }
    out.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_core::{Generation, StreamEnd, TableId};

    fn seq(n: u64) -> ChangeSeq {
        ChangeSeq::new(n)
    }

    fn stream() -> StreamInfo {
        StreamInfo {
            table_id: TableId::new(1),
            table_name: "tbl".into(),
            table_arn: "arn:aws:dynamodb:us-east-1:000000000000:table/tbl".into(),
            label: "2026-01-01T00:00:00.000".into(),
            view_type: "KEYS_ONLY".into(),
            key_schema: Vec::new(),
            shards: 2,
            generations: vec![
                Generation {
                    start_seq: seq(5),
                    start_millis: 0,
                },
                Generation {
                    start_seq: seq(90),
                    start_millis: 1,
                },
            ],
            end: Some(StreamEnd {
                seq: seq(120),
                millis: 2,
            }),
        }
    }

    #[test]
    fn sequence_numbers_round_trip_and_sort_numerically() {
        assert_eq!(sequence_number(seq(0)), "100000000000000000000");
        assert_eq!(sequence_number(seq(0)).len(), 21);
        assert_eq!(sequence_number(ChangeSeq::MAX).len(), 21);
        for n in [0, 1, 99, 1 << 40, u64::MAX] {
            assert_eq!(
                parse_sequence_number(&sequence_number(seq(n))).unwrap(),
                seq(n)
            );
        }
        assert!(sequence_number(seq(9)) < sequence_number(seq(10)));
        for bad in ["", "abc", "12", "-1", "1e5", "99999999999999999999"] {
            assert!(parse_sequence_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_list_lineage_in_id_order() {
        let s = stream();
        let listed = shards(&s);
        assert_eq!(listed.len(), 4);
        assert!(listed.windows(2).all(|w| w[0].shard_id < w[1].shard_id));
        assert_eq!(listed[0].parent_shard_id, None);
        assert_eq!(
            listed[2].parent_shard_id.as_deref(),
            Some(listed[0].shard_id.as_str())
        );
        assert_eq!(
            listed[0].ending_sequence_number,
            Some(sequence_number(seq(89)))
        );
        assert_eq!(
            listed[3].ending_sequence_number,
            Some(sequence_number(seq(119)))
        );
        let found = find_shard(&s, &listed[3].shard_id).unwrap();
        assert_eq!(
            (found.generation, found.lane, found.start, found.end),
            (1, 1, seq(90), Some(seq(120)))
        );
        let mut other = stream();
        other.label = "2026-01-02T00:00:00.000".into();
        assert!(matches!(
            find_shard(&other, &listed[0].shard_id),
            Err(Error::ResourceNotFound(_))
        ));
        assert!(matches!(
            find_shard(&s, "garbage"),
            Err(Error::Validation(_))
        ));
    }
}
