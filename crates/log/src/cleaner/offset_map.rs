//! The cleaner's offset map: for each key of the dirty section, a 128-bit
//! hash of the key and the offset of its latest record, in one table whose
//! size the byte budget (`log.cleaner.dedupe.buffer.size`) fixes up front.
//!
//! In: `(key, offset)` pairs in increasing offset order while the cleaner
//! reads the dirty section. Out: the latest offset of a key, and whether
//! the table is full (then the cleaner stops mapping and cleans up to the
//! last offset it mapped, as Kafka does). Memory: exactly `slots` entries
//! of 24 bytes, allocated once; nothing grows afterwards. Open addressing
//! with linear probing, filled at most to [`MAX_LOAD`].
//!
//! The hash is two independent SipHash runs with fixed keys (std's
//! `DefaultHasher`), so two keys share an entry only with probability
//! about 2^-128 per pair: small enough to treat as never, like Kafka's MD5.

use std::hash::{DefaultHasher, Hasher};

/// The bytes one entry takes: the 16-byte key hash and an 8-byte offset.
pub(crate) const ENTRY_BYTES: u64 = 24;

/// The fill ratio past which the map reports itself full (Kafka's
/// `log.cleaner.io.buffer.load.factor` default).
pub(crate) const MAX_LOAD: f64 = 0.9;

/// A slot: the key's hash (two words) and its offset + 1, all zero when
/// empty, so the table is allocated zeroed (lazily, by the kernel).
type Slot = [u64; 3];

pub(crate) struct OffsetMap {
    slots: Vec<Slot>,
    used: usize,
    limit: usize,
}

impl OffsetMap {
    /// A map within `budget_bytes`, no larger than `want_entries` needs.
    /// `None` if the budget cannot hold a single entry.
    pub fn new(budget_bytes: u64, want_entries: u64) -> Option<OffsetMap> {
        let by_budget = budget_bytes / ENTRY_BYTES;
        let by_need = (want_entries as f64 / MAX_LOAD).ceil() as u64 + 1;
        let slots = usize::try_from(by_budget.min(by_need)).ok()?;
        let limit = (slots as f64 * MAX_LOAD) as usize;
        if limit == 0 {
            return None;
        }
        Some(OffsetMap {
            slots: vec![[0; 3]; slots],
            used: 0,
            limit,
        })
    }

    /// Bytes the table takes.
    pub fn memory_bytes(&self) -> u64 {
        self.slots.len() as u64 * ENTRY_BYTES
    }

    pub fn len(&self) -> usize {
        self.used
    }

    /// How many keys fit.
    pub fn capacity(&self) -> usize {
        self.limit
    }

    /// No new key fits.
    pub fn is_full(&self) -> bool {
        self.used >= self.limit
    }

    /// Records `offset` as the latest of `key`. `false` (nothing changed)
    /// if the key is new and the map is full.
    /// Offsets below 0 are not stored (a log has none).
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let Ok(stored) = u64::try_from(offset).map(|o| o + 1) else {
            return false;
        };
        let hash = hash(key);
        let at = self.probe(hash);
        if self.slots[at][2] == 0 {
            if self.is_full() {
                return false;
            }
            self.used += 1;
        }
        self.slots[at] = [hash[0], hash[1], stored];
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let slot = self.slots[self.probe(hash(key))];
        (slot[2] > 0).then(|| (slot[2] - 1) as i64)
    }

    /// The slot holding `hash`, or the empty one where it would go. The
    /// table is never full (load at most [`MAX_LOAD`]), so this ends.
    fn probe(&self, hash: [u64; 2]) -> usize {
        let n = self.slots.len();
        let mut at = (hash[0] % n as u64) as usize;
        loop {
            let slot = &self.slots[at];
            if slot[2] == 0 || (slot[0], slot[1]) == (hash[0], hash[1]) {
                return at;
            }
            at = (at + 1) % n;
        }
    }
}

fn hash(key: &[u8]) -> [u64; 2] {
    let mut a = DefaultHasher::new();
    a.write(key);
    let mut b = DefaultHasher::new();
    b.write_u8(0x5a);
    b.write(key);
    [a.finish(), b.finish()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_per_key() {
        let mut map = OffsetMap::new(1 << 20, 100).expect("map");
        assert!(map.put(b"a", 1));
        assert!(map.put(b"b", 2));
        assert!(map.put(b"a", 3));
        assert_eq!(map.get(b"a"), Some(3));
        assert_eq!(map.get(b"b"), Some(2));
        assert_eq!(map.get(b"c"), None);
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn the_budget_bounds_the_table() {
        let budget = 24 * 100;
        let mut map = OffsetMap::new(budget, 1_000_000).expect("map");
        assert!(map.memory_bytes() <= budget);
        let mut put = 0;
        while map.put(format!("key-{put}").as_bytes(), put) {
            put += 1;
        }
        assert_eq!(put, 90, "filled to the load factor");
        assert!(map.is_full());
        // A known key still updates when full.
        assert!(map.put(b"key-0", 500));
        assert_eq!(map.get(b"key-0"), Some(500));
        assert!(
            OffsetMap::new(24, 10).is_none(),
            "one slot holds nothing at 0.9"
        );
    }

    #[test]
    fn sized_by_need_below_the_budget() {
        let map = OffsetMap::new(1 << 30, 10).expect("map");
        assert!(map.memory_bytes() <= 24 * 13);
    }
}
