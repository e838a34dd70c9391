//! The cleaner's map from a record key to the latest offset holding it (Kafka's
//! `SkimpyOffsetMap`): open addressing over 24-byte slots (a 128-bit key hash and an offset),
//! bounded by `log.cleaner.dedupe.buffer.size` shared out over the cleaner threads.
//!
//! Owns: the slots. The table starts small and doubles (rehashing) up to its bound, so an
//! idle broker does not hold the whole buffer the way Kafka does; once at its bound it is
//! "full" at `log.cleaner.io.buffer.load.factor` of its slots, and the cleaner stops mapping
//! there. Keys are hashed with two independently keyed SipHash functions (std's `RandomState`),
//! 128 bits as Kafka's MD5: a collision makes the cleaner drop a record whose key has no
//! later value, so the hash must be wide. May call: std. Must never: grow past its bound.

use std::hash::{BuildHasher, RandomState};

/// Bytes of one slot: two 64-bit hash halves and an offset.
pub(crate) const SLOT_BYTES: usize = 24;
/// Where a table starts (it doubles from here).
const INITIAL_SLOTS: usize = 1 << 12;

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: [u64; 2],
    /// -1: empty.
    offset: i64,
}

const EMPTY: Slot = Slot {
    hash: [0, 0],
    offset: -1,
};

#[derive(Debug)]
pub(crate) struct OffsetMap {
    slots: Vec<Slot>,
    entries: usize,
    /// The table's size at its bound: the largest power of two the buffer holds (at least 2).
    max_slots: usize,
    load_factor: f64,
    hashers: [RandomState; 2],
    latest_offset: i64,
}

impl OffsetMap {
    /// A map using at most `buffer_bytes` (at least one slot), full at `load_factor`.
    pub(crate) fn new(buffer_bytes: u64, load_factor: f64) -> OffsetMap {
        let fit = usize::try_from(buffer_bytes / SLOT_BYTES as u64)
            .unwrap_or(usize::MAX)
            .max(2);
        let max_slots = 1usize << (usize::BITS - 1 - fit.leading_zeros());
        OffsetMap {
            slots: Vec::new(),
            entries: 0,
            max_slots,
            load_factor: load_factor.clamp(0.01, 1.0),
            hashers: [RandomState::new(), RandomState::new()],
            latest_offset: -1,
        }
    }

    /// Empties the map and lets go of its memory (new hash keys too).
    pub(crate) fn clear(&mut self) {
        self.slots = Vec::new();
        self.entries = 0;
        self.latest_offset = -1;
        self.hashers = [RandomState::new(), RandomState::new()];
    }

    /// Keys it may hold before it is full: Kafka's `slots * load factor`, leaving one slot
    /// free so a probe always ends.
    pub(crate) fn capacity(&self) -> usize {
        ((self.max_slots as f64 * self.load_factor) as usize).clamp(1, self.max_slots - 1)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// The share of its bound in use, for Kafka's buffer utilization.
    pub(crate) fn utilization(&self) -> f64 {
        self.entries as f64 / self.max_slots as f64
    }

    /// Records `offset` as the latest for `key`. False (nothing recorded) once full, unless
    /// the key is already there.
    pub(crate) fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = self.hash(key);
        if let Some(i) = self.find(hash) {
            self.slots[i].offset = offset;
            return true;
        }
        if self.is_full() {
            return false;
        }
        self.grow_if_needed();
        let i = self.probe(hash);
        self.slots[i] = Slot { hash, offset };
        self.entries += 1;
        true
    }

    /// The latest offset recorded for `key`, -1 if none.
    pub(crate) fn get(&self, key: &[u8]) -> i64 {
        if self.slots.is_empty() {
            return -1;
        }
        self.find(self.hash(key)).map_or(-1, |i| self.slots[i].offset)
    }

    /// The last offset the map covers (every record up to it was considered).
    pub(crate) fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    pub(crate) fn update_latest_offset(&mut self, offset: i64) {
        self.latest_offset = self.latest_offset.max(offset);
    }

    fn hash(&self, key: &[u8]) -> [u64; 2] {
        [self.hashers[0].hash_one(key), self.hashers[1].hash_one(key)]
    }

    fn find(&self, hash: [u64; 2]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash[0] as usize & mask;
        loop {
            let slot = &self.slots[i];
            if slot.offset < 0 {
                return None;
            }
            if slot.hash == hash {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The first empty slot of `hash`'s probe sequence (there always is one: the table is
    /// never more than `load_factor` full, and a full bound table stops taking keys first).
    fn probe(&self, hash: [u64; 2]) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = hash[0] as usize & mask;
        while self.slots[i].offset >= 0 {
            i = (i + 1) & mask;
        }
        i
    }

    /// Doubles the table (within the bound) before it passes three quarters full, or once at
    /// its bound keeps one slot free for the probe.
    fn grow_if_needed(&mut self) {
        let len = self.slots.len();
        let bound = self.max_slots;
        if len == 0 {
            self.slots = vec![EMPTY; INITIAL_SLOTS.min(bound)];
            return;
        }
        if (self.entries + 1) * 4 <= len * 3 || len >= bound {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; (len * 2).min(bound)]);
        for slot in old.into_iter().filter(|s| s.offset >= 0) {
            let i = self.probe(slot.hash);
            self.slots[i] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_per_key_across_growth() {
        let mut map = OffsetMap::new(24 * 100_000, 0.9);
        for round in 0..3 {
            for k in 0..20_000u32 {
                assert!(map.put(&k.to_be_bytes(), i64::from(round * 20_000 + k)));
            }
        }
        assert_eq!(map.len(), 20_000);
        for k in [0u32, 7, 19_999] {
            assert_eq!(map.get(&k.to_be_bytes()), i64::from(40_000 + k));
        }
        assert_eq!(map.get(b"absent"), -1);
    }

    #[test]
    fn stops_taking_new_keys_at_its_load_factor_but_updates_known_ones() {
        let mut map = OffsetMap::new(24 * 130, 0.5);
        assert_eq!(map.capacity(), 64, "128 slots fit the buffer");
        for k in 0..64u32 {
            assert!(map.put(&k.to_be_bytes(), 1));
        }
        assert!(map.is_full());
        assert!(!map.put(b"one more", 2));
        assert!(map.put(&3u32.to_be_bytes(), 9));
        assert_eq!(map.get(&3u32.to_be_bytes()), 9);
        map.clear();
        assert_eq!((map.len(), map.get(&3u32.to_be_bytes())), (0, -1));
    }

    #[test]
    fn a_tiny_bound_still_holds_a_key() {
        let mut map = OffsetMap::new(1, 0.9);
        assert!(map.put(b"k", 5));
        assert_eq!(map.get(b"k"), 5);
        assert!(!map.put(b"other", 6));
    }
}
