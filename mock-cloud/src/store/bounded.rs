//! The one bounded map under the cloud's keyed stores (blobs, devices, Live Response
//! sessions): entries in a recency order, capped by count and by total weight (bytes where it
//! applies), evicting the oldest to make room and refusing what could never fit, with both
//! counted.
//!
//! It is plain data with no lock of its own: each store keeps it inside its own `Mutex`
//! together with whatever else that store tracks, so one store operation stays one lock.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Why [`Bounded::insert`] refused an entry: its weight alone exceeds the whole capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooHeavy {
    /// The entry's weight.
    pub(crate) weight: u64,
    /// The map's weight capacity.
    pub(crate) capacity: u64,
}

/// A map bounded by entry count and total weight, ordered oldest (least recently inserted)
/// first.
///
/// - **Insert** stamps the entry newest. Replacing a key drops the old value first, which is
///   not an eviction.
/// - **Full:** before a new entry goes in, the oldest entries are evicted (and counted in
///   [`evicted`](Self::evicted)) until it fits both caps.
/// - **Refused:** an entry heavier than the whole weight capacity is refused (and counted in
///   [`refused`](Self::refused)) without evicting anything.
#[derive(Debug)]
pub(crate) struct Bounded<K, V> {
    max_entries: usize,
    max_weight: u64,
    entries: HashMap<K, Slot<V>>,
    /// Stamp → key: the first entry is the oldest. A counter rather than a clock, so two
    /// inserts in one millisecond still order.
    order: BTreeMap<u64, K>,
    next_stamp: u64,
    weight: u64,
    evicted: u64,
    refused: u64,
}

#[derive(Debug)]
struct Slot<V> {
    stamp: u64,
    weight: u64,
    value: V,
}

impl<K: Eq + Hash + Clone, V> Bounded<K, V> {
    /// At most `max_entries` entries (at least one) weighing at most `max_weight` together.
    pub(crate) fn new(max_entries: usize, max_weight: u64) -> Self {
        Self {
            max_entries: max_entries.max(1),
            max_weight,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
            weight: 0,
            evicted: 0,
            refused: 0,
        }
    }

    /// Bounded by count only.
    pub(crate) fn with_max_entries(max_entries: usize) -> Self {
        Self::new(max_entries, u64::MAX)
    }

    /// Bounded by weight only.
    pub(crate) fn with_max_weight(max_weight: u64) -> Self {
        Self::new(usize::MAX, max_weight)
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Total weight held.
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    /// Entries evicted to make room since creation (or the last [`clear`](Self::clear)).
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Entries refused since creation (or the last [`clear`](Self::clear)).
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }

    /// Counts a refusal decided by the store itself (a check before [`insert`](Self::insert)).
    pub(crate) fn count_refused(&mut self) {
        self.refused += 1;
    }

    /// Whether `key` is held.
    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.contains_key(key)
    }

    /// The value under `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|slot| &slot.value)
    }

    /// The value under `key`, to change in place (its place in the order is kept).
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get_mut(key).map(|slot| &mut slot.value)
    }

    /// Inserts `value` under `key` as the newest entry, under the rules in the type's docs.
    pub(crate) fn insert(&mut self, key: K, value: V, weight: u64) -> Result<(), TooHeavy> {
        if weight > self.max_weight {
            self.refused += 1;
            return Err(TooHeavy {
                weight,
                capacity: self.max_weight,
            });
        }
        self.remove(&key);
        while self.entries.len() >= self.max_entries
            || self.weight.saturating_add(weight) > self.max_weight
        {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.entries.remove(&oldest) {
                self.weight -= slot.weight;
                self.evicted += 1;
            }
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.weight += weight;
        self.order.insert(stamp, key.clone());
        self.entries.insert(
            key,
            Slot {
                stamp,
                weight,
                value,
            },
        );
        Ok(())
    }

    /// Removes `key` (not an eviction).
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.entries.remove(key)?;
        self.order.remove(&slot.stamp);
        self.weight -= slot.weight;
        Some(slot.value)
    }

    /// Changes the weight of the entry under `key` (its value grew or shrank in place); the
    /// store decides what to evict if the total now passes its budget. Whether `key` is held.
    pub(crate) fn reweigh<Q>(&mut self, key: &Q, weight: u64) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(slot) = self.entries.get_mut(key) else {
            return false;
        };
        self.weight = self.weight - slot.weight + weight;
        slot.weight = weight;
        true
    }

    /// Evicts `key`, chosen by the store's own rule, and counts it.
    pub(crate) fn evict<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let value = self.remove(key)?;
        self.evicted += 1;
        Some(value)
    }

    /// The key of the oldest entry.
    pub(crate) fn oldest(&self) -> Option<&K> {
        self.order.values().next()
    }

    /// Every entry, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.order
            .values()
            .filter_map(|key| self.entries.get_key_value(key))
            .map(|(key, slot)| (key, &slot.value))
    }

    /// Every value, in no particular order, to change in place.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.values_mut().map(|slot| &mut slot.value)
    }

    /// Calls `f` on every entry, oldest first, until it returns `Some`, and returns that.
    pub(crate) fn find_map_mut<T>(
        &mut self,
        mut f: impl FnMut(&K, &mut V) -> Option<T>,
    ) -> Option<T> {
        let Self { entries, order, .. } = self;
        order.values().find_map(|key| {
            let slot = entries.get_mut(key)?;
            f(key, &mut slot.value)
        })
    }

    /// Calls `f` on every entry, oldest first, to change it in place.
    pub(crate) fn for_each_mut(&mut self, mut f: impl FnMut(&K, &mut V)) {
        let Self { entries, order, .. } = self;
        for key in order.values() {
            if let Some(slot) = entries.get_mut(key) {
                f(key, &mut slot.value);
            }
        }
    }

    /// Forgets every entry and resets the counters.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.weight = 0;
        self.evicted = 0;
        self.refused = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(map: &Bounded<&'static str, u32>) -> Vec<&'static str> {
        map.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn a_full_map_evicts_the_oldest_by_count_and_counts_it() {
        let mut map = Bounded::with_max_entries(2);
        map.insert("a", 1, 0).unwrap();
        map.insert("b", 2, 0).unwrap();
        map.insert("a", 3, 0).unwrap();
        assert_eq!(keys(&map), ["b", "a"], "a replacement becomes the newest");
        assert_eq!(map.evicted(), 0, "a replacement is not an eviction");
        map.insert("c", 4, 0).unwrap();
        assert_eq!(keys(&map), ["a", "c"]);
        assert_eq!((map.len(), map.evicted()), (2, 1));
    }

    #[test]
    fn weight_evicts_until_it_fits_and_refuses_the_impossible() {
        let mut map = Bounded::with_max_weight(10);
        map.insert("a", 1, 4).unwrap();
        map.insert("b", 2, 4).unwrap();
        map.insert("c", 3, 5).unwrap();
        assert_eq!(
            (keys(&map), map.weight(), map.evicted()),
            (vec!["b", "c"], 9, 1)
        );
        assert_eq!(
            map.insert("big", 4, 11),
            Err(TooHeavy {
                weight: 11,
                capacity: 10
            })
        );
        assert_eq!((map.len(), map.evicted(), map.refused()), (2, 1, 1));
    }

    #[test]
    fn a_store_chosen_victim_counts_as_evicted_and_clear_resets() {
        let mut map = Bounded::with_max_entries(3);
        for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
            map.insert(k, v, 0).unwrap();
        }
        let even = map
            .find_map_mut(|k, v| (*v % 2 == 0).then_some(*k))
            .unwrap();
        assert_eq!(map.evict(even), Some(2));
        assert_eq!(map.remove("a"), Some(1));
        assert_eq!((keys(&map), map.evicted()), (vec!["c"], 1));
        assert_eq!(map.oldest(), Some(&"c"));
        map.count_refused();
        map.clear();
        assert_eq!(
            (map.len(), map.weight(), map.evicted(), map.refused()),
            (0, 0, 0, 0)
        );
    }
}
