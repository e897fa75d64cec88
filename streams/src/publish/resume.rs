//! Where a publisher resumes, decided from what the topic already holds.
//!
//! Every message carries its change sequence, and each item always goes to the same partition
//! ([`partition_for`]); the idempotent producer keeps each partition in send order. So a
//! partition whose last message has sequence `t` holds every record for it up to `t` and none
//! after. After a crash, the publisher reads each partition's last sequence, starts from the
//! smallest `t + 1` (or the table's publishing start, for an empty partition), and skips the
//! records whose partition already holds them: nothing is lost and nothing repeated, even when
//! the partitions stopped at different points.

use tidemark_core::ChangeSeq;

/// Kafka's Java-client default partition of a key: murmur2 (seed `0x9747b28c`), made
/// positive, modulo the partition count. Consumers and other producers agree on it.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    let hash = murmur2::murmur2(key, 0x9747_b28c) & 0x7fff_ffff;
    (hash % partitions.max(1).unsigned_abs()) as i32
}

/// The resume state of one topic: each partition's last published sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    tails: Vec<Option<ChangeSeq>>,
    start: ChangeSeq,
}

impl ResumePoint {
    /// From the last sequence of each partition (`None`: empty) and the first sequence the
    /// table publishes (where publishing was turned on).
    pub fn new(tails: Vec<Option<ChangeSeq>>, start: ChangeSeq) -> Self {
        ResumePoint { tails, start }
    }

    /// The first change sequence to read.
    pub fn read_from(&self) -> ChangeSeq {
        self.tails
            .iter()
            .map(|tail| tail.map_or(self.start, |t| t.next().max(self.start)))
            .min()
            .unwrap_or(self.start)
    }

    /// True when the record with `seq`, bound for `partition`, is already in the topic.
    pub fn already_published(&self, partition: i32, seq: ChangeSeq) -> bool {
        if seq < self.start {
            return true;
        }
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.tails.get(p).copied().flatten())
            .is_some_and(|tail| seq <= tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u64) -> ChangeSeq {
        ChangeSeq::new(n)
    }

    #[test]
    fn partitions_match_the_java_client() {
        // Values from Kafka's own tests of Utils.murmur2 / the default partitioner.
        assert_eq!(murmur2::murmur2(b"21", 0x9747_b28c) as i32, -973932308);
        assert_eq!(murmur2::murmur2(b"foobar", 0x9747_b28c) as i32, -790332482);
        assert_eq!(
            murmur2::murmur2(b"a-little-bit-long-string", 0x9747_b28c) as i32,
            -985981536
        );
        for key in [b"a".as_slice(), b"some key", b""] {
            let p = partition_for(key, 3);
            assert!((0..3).contains(&p));
            assert_eq!(p, partition_for(key, 3));
        }
    }

    #[test]
    fn resumes_from_the_least_advanced_partition_and_skips_the_rest() {
        let point = ResumePoint::new(vec![Some(seq(100)), Some(seq(95)), None], seq(50));
        assert_eq!(
            point.read_from(),
            seq(50),
            "the empty partition needs everything"
        );
        let point = ResumePoint::new(vec![Some(seq(100)), Some(seq(95)), Some(seq(97))], seq(50));
        assert_eq!(point.read_from(), seq(96));
        assert!(point.already_published(0, seq(99)));
        assert!(!point.already_published(0, seq(101)));
        assert!(!point.already_published(1, seq(96)));
        assert!(point.already_published(2, seq(97)));
        assert!(!point.already_published(2, seq(98)));
        assert!(
            point.already_published(1, seq(40)),
            "before publishing started"
        );
        assert_eq!(
            ResumePoint::new(vec![None, None], seq(7)).read_from(),
            seq(7)
        );
    }
}
