//! One bounded cache of minted leaf certificates, keyed by normalised host name, shared by
//! every server that mints per name (the mock cloud's SNI resolver, the intercepting proxy).
//!
//! **The full-cache rule:** the cache holds at most `capacity` names; inserting a new name
//! into a full cache first evicts the name inserted longest ago (first in, first out), and
//! counts the eviction. A name is therefore always cached after it is minted, memory stays
//! bounded when clients invent names, and an evicted name is simply minted again on its next
//! use.
//!
//! The value type is the caller's (a rustls `CertifiedKey`, typically), so this crate needs
//! neither rustls nor a runtime; the lock is a `std::sync::Mutex`, never held across an await.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use mdelab_catalog::normalise;

/// A bounded map from normalised host name to a minted certificate (see the module docs for
/// the full-cache rule).
pub struct CertCache<V> {
    capacity: usize,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    entries: HashMap<String, V>,
    /// Names in insertion order; the front is evicted first.
    order: VecDeque<String>,
    minted: u64,
    evicted: u64,
}

/// Counters of a [`CertCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Names cached now.
    pub cached: usize,
    /// Most names cached at once.
    pub capacity: usize,
    /// Certificates minted through [`CertCache::get_or_mint`] (each miss mints once).
    pub minted: u64,
    /// Names evicted because the cache was full.
    pub evicted: u64,
}

impl<V> fmt::Debug for CertCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<V> CertCache<V> {
    /// An empty cache holding at most `capacity` names (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                minted: 0,
                evicted: 0,
            }),
        }
    }

    /// The certificate cached for `name` (normalised first), if any.
    pub fn get(&self, name: &str) -> Option<V>
    where
        V: Clone,
    {
        self.lock().entries.get(&normalise(name)).cloned()
    }

    /// Caches `value` for `name` (normalised first), replacing what was there, under the
    /// full-cache rule. For certificates minted ahead of use; not counted as minted here.
    pub fn insert(&self, name: &str, value: V) {
        self.lock().insert(normalise(name), value, self.capacity);
    }

    /// The certificate for `name` (normalised first), calling `mint` with the normalised name
    /// on a miss and caching its result under the full-cache rule. A failed mint caches
    /// nothing.
    ///
    /// The lock is held while minting, so that connections racing for a new name mint it once;
    /// minting takes about a millisecond and never awaits.
    pub fn get_or_mint<E>(
        &self,
        name: &str,
        mint: impl FnOnce(&str) -> Result<V, E>,
    ) -> Result<V, E>
    where
        V: Clone,
    {
        let name = normalise(name);
        let mut inner = self.lock();
        if let Some(found) = inner.entries.get(&name) {
            return Ok(found.clone());
        }
        let value = mint(&name)?;
        inner.minted += 1;
        inner.insert(name, value.clone(), self.capacity);
        Ok(value)
    }

    /// How many names are cached.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().entries.keys().cloned().collect();
        names.sort();
        names
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            cached: inner.entries.len(),
            capacity: self.capacity,
            minted: inner.minted,
            evicted: inner.evicted,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // A poisoned lock only means another handshake panicked; the map is still valid.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<V> Inner<V> {
    fn insert(&mut self, name: String, value: V, capacity: usize) {
        if self.entries.insert(name.clone(), value).is_some() {
            // A replacement keeps its place in the eviction order.
            return;
        }
        self.order.push_back(name);
        while self.entries.len() > capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.entries.remove(&oldest).is_some() {
                self.evicted += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_minted_once() {
        let cache = CertCache::new(4);
        let mut calls = 0;
        for name in ["Host.Example.", "host.example", "HOST.example:443"] {
            let got = cache.get_or_mint(name, |n| {
                calls += 1;
                Ok::<_, ()>(format!("leaf for {n}"))
            });
            assert_eq!(got, Ok("leaf for host.example".to_owned()));
        }
        assert_eq!(calls, 1);
        assert_eq!(cache.names(), ["host.example"]);
        assert_eq!(cache.stats().minted, 1);
    }

    #[test]
    fn a_full_cache_evicts_the_oldest_name_and_counts_it() {
        let cache = CertCache::new(2);
        cache.insert("a", 1);
        cache.get_or_mint("b", |_| Ok::<_, ()>(2)).unwrap();
        cache.insert("a", 10);
        cache.get_or_mint("c", |_| Ok::<_, ()>(3)).unwrap();
        assert_eq!(
            cache.names(),
            ["b", "c"],
            "a was inserted first, so it goes first"
        );
        assert_eq!(
            cache.stats(),
            CacheStats {
                cached: 2,
                capacity: 2,
                minted: 2,
                evicted: 1
            }
        );
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get_or_mint("a", |_| Ok::<_, ()>(11)), Ok(11));
    }

    #[test]
    fn a_failed_mint_caches_nothing() {
        let cache: CertCache<u8> = CertCache::new(2);
        assert_eq!(cache.get_or_mint("x", |_| Err("no")), Err("no"));
        assert!(cache.is_empty());
        assert_eq!(cache.stats().minted, 0);
    }
}
