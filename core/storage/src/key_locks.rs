//! Item key locks: a writer holds the keys of every item it touches from reading them to
//! committing.
//!
//! A key is locked by its 64-bit hash, not by a stripe of a fixed array: with stripes, two
//! large writes (seeding pages, batches) share some stripe almost surely and run one after
//! the other, while with hashes they collide only when they share an item (or, rarely, a
//! hash). Writers take their hashes in ascending order, so writers of overlapping sets never
//! deadlock. The hashes are spread over shards by their top bits, so a sorted set visits each
//! shard once, in order.

use std::collections::HashSet;
use std::hash::BuildHasher;

use parking_lot::{Condvar, Mutex};

/// Shards of the held set; a power of two well above the number of concurrent writers.
const SHARD_BITS: u32 = 8;

/// The key hashes held by writers now.
#[derive(Debug)]
pub(crate) struct KeyLocks {
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    held: Mutex<HashSet<u64>>,
    released: Condvar,
}

/// Keys held by one writer, released when dropped.
#[derive(Debug)]
pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    /// Ascending.
    hashes: Vec<u64>,
}

impl KeyLocks {
    pub(crate) fn new() -> KeyLocks {
        KeyLocks {
            shards: (0..1usize << SHARD_BITS)
                .map(|_| Shard::default())
                .collect(),
            hasher: Default::default(),
        }
    }

    fn shard(&self, hash: u64) -> &Shard {
        self.shards
            .get(shard_index(hash))
            .expect("an index of SHARD_BITS bits is within the shards")
    }

    /// Ascending `hashes` in runs of one shard each, with their shard.
    fn by_shard<'h>(&self, hashes: &'h [u64]) -> impl Iterator<Item = (&Shard, &'h [u64])> {
        hashes
            .chunk_by(|a, b| shard_index(*a) == shard_index(*b))
            .filter_map(|run| Some((self.shard(*run.first()?), run)))
    }

    /// Locks `keys`, waiting while another writer holds any of them.
    pub(crate) fn lock(&self, keys: &[&[u8]]) -> KeyGuard<'_> {
        let mut hashes: Vec<u64> = keys.iter().map(|k| self.hasher.hash_one(k)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        for (shard, these) in self.by_shard(&hashes) {
            let mut held = shard.held.lock();
            for hash in these {
                while !held.insert(*hash) {
                    shard.released.wait(&mut held);
                }
            }
        }
        KeyGuard {
            locks: self,
            hashes,
        }
    }
}

/// The shard of a hash: its top bits, so ascending hashes visit the shards in order.
fn shard_index(hash: u64) -> usize {
    (hash >> (u64::BITS - SHARD_BITS)) as usize
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        for (shard, these) in self.locks.by_shard(&self.hashes) {
            {
                let mut held = shard.held.lock();
                for hash in these {
                    held.remove(hash);
                }
            }
            shard.released.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_held_key_waits_and_others_do_not() {
        let locks = Arc::new(KeyLocks::new());
        let guard = locks.lock(&[b"a", b"b"]);
        // Distinct keys are never held up by a large write.
        drop(locks.lock(&[b"c", b"d", b"e"]));
        let acquired = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (locks, acquired) = (locks.clone(), acquired.clone());
            std::thread::spawn(move || {
                let _guard = locks.lock(&[b"z", b"b"]);
                acquired.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!acquired.load(Ordering::SeqCst), "b is held");
        drop(guard);
        waiter.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
    }

    #[test]
    fn overlapping_writers_never_deadlock_and_exclude_each_other() {
        let locks = Arc::new(KeyLocks::new());
        let counters: Arc<Vec<Mutex<u64>>> = Arc::new((0..64).map(|_| Mutex::new(0)).collect());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let (locks, counters) = (locks.clone(), counters.clone());
                std::thread::spawn(move || {
                    for round in 0..500u64 {
                        // Each writer takes a pseudo-random set of 1 to 40 of 64 keys.
                        let mut x = t * 7919 + round * 104_729 + 1;
                        let picked: Vec<usize> = (0..(x % 40 + 1))
                            .map(|_| {
                                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                                (x >> 33) as usize % 64
                            })
                            .collect();
                        let keys: Vec<Vec<u8>> =
                            picked.iter().map(|k| k.to_le_bytes().to_vec()).collect();
                        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                        let _guard = locks.lock(&refs);
                        let mut distinct = picked.clone();
                        distinct.sort_unstable();
                        distinct.dedup();
                        // try_lock: the key locks alone must keep these counters exclusive.
                        let mut held: Vec<_> = distinct
                            .iter()
                            .map(|k| counters[*k].try_lock().expect("exclusive"))
                            .collect();
                        std::thread::yield_now();
                        for counter in held.iter_mut() {
                            **counter += 1;
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
