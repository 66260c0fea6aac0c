//! Uploaded blobs (sample upload, Auto-IR, Live Response getfile), bounded by total bytes.
//!
//! Blobs are kept whole in memory, keyed by (account, container, name). When a new blob does
//! not fit, the oldest whole blobs are evicted (and counted) until it does; a blob larger than
//! the whole capacity is refused rather than emptying the store for nothing (the rules of
//! [`Bounded`], weighed in bytes).
//!
//! A blob weighs its content plus its metadata ([`metadata_cost`]), so even empty blobs are
//! paid for. An upload in progress holds a [`Reservation`] that grows with what it has buffered:
//! blobs held plus bytes in flight never pass the capacity (the oldest blobs are evicted to make
//! room for a reservation, counted), and an upload whose reservation cannot grow because other
//! uploads in flight hold the rest is refused while it streams (counted in `refused_in_flight`).

use std::mem::size_of;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use serde::Serialize;

use super::bounded::Bounded;

/// What the cloud knows of an uploaded blob (its content is fetched with [`BlobStore::get`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredBlob {
    /// Storage account (the first label of `<account>.blob.core.windows.net`).
    pub account: String,
    /// Container.
    pub container: String,
    /// Blob name (may contain `/`), percent-decoded.
    pub name: String,
    /// Content length in bytes.
    pub size: u64,
    /// Base64 of the MD5 of the content, as Azure's `Content-MD5`.
    pub md5_b64: String,
    /// Lowercase hex SHA-256 of the content (how evidence names files).
    pub sha256_hex: String,
    /// When the upload completed, milliseconds since the Unix epoch.
    pub uploaded_ms: u64,
    /// The uploading device, from `Msadeviceticket`, when it said.
    pub device_id: Option<String>,
}

/// Counters of the blob store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlobStats {
    /// Blobs held now.
    pub stored: usize,
    /// Bytes held now: content plus metadata ([`metadata_cost`]).
    pub bytes: u64,
    /// Of `bytes`, those of metadata.
    pub metadata_bytes: u64,
    /// Bytes reserved now by uploads in progress.
    pub in_flight: u64,
    /// Uploads refused while streaming because uploads in flight held the rest of the capacity
    /// (the upload route also counts them in `rejected`).
    pub refused_in_flight: u64,
    /// Blobs evicted to make room (replacing a blob by the same name is not an eviction).
    pub evicted: u64,
    /// Uploads refused (authentication, permission, missing header, MD5 mismatch, too large).
    pub rejected: u64,
    /// Most bytes held at once (blobs held plus uploads in flight).
    pub capacity_bytes: u64,
}

/// What a blob's metadata costs held, in bytes: its entry and key slots, the map's bookkeeping
/// (≈ 64 bytes), the key's three strings (held twice: key and record) and the record's digests
/// and device id.
pub fn metadata_cost(blob: &StoredBlob) -> u64 {
    let names = blob.account.len() + blob.container.len() + blob.name.len();
    let other =
        blob.md5_b64.len() + blob.sha256_hex.len() + blob.device_id.as_ref().map_or(0, String::len);
    (size_of::<Entry>() + size_of::<Key>() + 64 + 2 * names + other) as u64
}

/// Why [`BlobStore::put`] refused a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a blob of {size} bytes exceeds the whole store capacity of {capacity} bytes")]
pub struct BlobTooLarge {
    /// The blob's size.
    pub size: u64,
    /// The store's capacity.
    pub capacity: u64,
}

type Key = (String, String, String);

/// Uploaded blobs, bounded by total content bytes.
#[derive(Debug)]
pub struct BlobStore {
    capacity_bytes: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Weighed by content plus metadata; `refused` counts every refused upload.
    map: Bounded<Key, Entry>,
    metadata_bytes: u64,
    in_flight: u64,
    refused_in_flight: u64,
}

impl Inner {
    /// Evicts the oldest blobs (counted) until blobs held, bytes in flight and `extra` more fit
    /// `capacity` (or nothing is left to evict).
    fn make_room(&mut self, capacity: u64, extra: u64) {
        while self
            .map
            .weight()
            .saturating_add(self.in_flight)
            .saturating_add(extra)
            > capacity
        {
            let Some(oldest) = self.map.oldest().cloned() else {
                break;
            };
            if let Some(e) = self.map.evict(&oldest) {
                self.metadata_bytes -= e.metadata;
            }
        }
    }
}

/// Bytes an upload in progress holds against the store's capacity; released when dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    store: &'a BlobStore,
    bytes: u64,
}

/// Why a [`Reservation`] could not grow: uploads in flight hold the rest of the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{in_flight} bytes of uploads in flight leave no room for {wanted} more")]
pub struct NoRoom {
    /// Bytes the reservation wanted to add.
    pub wanted: u64,
    /// Bytes every upload in flight held then.
    pub in_flight: u64,
}

impl Reservation<'_> {
    /// Grows the reservation to `total` bytes, evicting the oldest blobs if needed. Refuses
    /// (and counts in `refused_in_flight`) when the uploads in flight would pass the capacity.
    pub fn grow_to(&mut self, total: u64) -> Result<(), NoRoom> {
        if total <= self.bytes {
            return Ok(());
        }
        let wanted = total - self.bytes;
        let capacity = self.store.capacity_bytes;
        let mut inner = self.store.lock();
        if inner.in_flight.saturating_add(wanted) > capacity {
            inner.refused_in_flight += 1;
            return Err(NoRoom {
                wanted,
                in_flight: inner.in_flight,
            });
        }
        inner.in_flight += wanted;
        self.bytes = total;
        inner.make_room(capacity, 0);
        Ok(())
    }

    /// Bytes reserved.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.store.lock().in_flight -= self.bytes;
        }
    }
}

#[derive(Debug)]
struct Entry {
    blob: StoredBlob,
    content: Bytes,
    /// [`metadata_cost`] of `blob`.
    metadata: u64,
}

impl BlobStore {
    /// A store keeping at most `capacity_bytes` of blob content.
    pub fn new(capacity_bytes: u64) -> Self {
        Self {
            capacity_bytes,
            inner: Mutex::new(Inner {
                map: Bounded::with_max_weight(capacity_bytes),
                metadata_bytes: 0,
                in_flight: 0,
                refused_in_flight: 0,
            }),
        }
    }

    /// An empty reservation for an upload about to stream; grow it as bytes arrive.
    pub fn reserve(&self) -> Reservation<'_> {
        Reservation {
            store: self,
            bytes: 0,
        }
    }

    /// The capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// Stores `content` under `blob`'s account, container and name, replacing a blob of the
    /// same name and evicting the oldest blobs until it fits. `blob.size` is set from
    /// `content`. Refuses (and counts) a blob larger than the whole capacity.
    pub fn put(&self, blob: StoredBlob, content: Bytes) -> Result<StoredBlob, BlobTooLarge> {
        self.put_reserved(blob, content, self.reserve())
    }

    /// [`put`](Self::put) for an upload that streamed under `reservation`: the reservation is
    /// released in the same critical section as the blob is stored, so held plus in flight
    /// never passes the capacity in between.
    pub fn put_reserved(
        &self,
        mut blob: StoredBlob,
        content: Bytes,
        mut reservation: Reservation<'_>,
    ) -> Result<StoredBlob, BlobTooLarge> {
        blob.size = content.len() as u64;
        let key = (
            blob.account.clone(),
            blob.container.clone(),
            blob.name.clone(),
        );
        let metadata = metadata_cost(&blob);
        let weight = blob.size + metadata;
        let entry = Entry {
            blob: blob.clone(),
            content,
            metadata,
        };
        let mut inner = self.lock();
        inner.in_flight -= std::mem::take(&mut reservation.bytes);
        if weight > self.capacity_bytes {
            inner.map.count_refused();
            return Err(BlobTooLarge {
                size: weight,
                capacity: self.capacity_bytes,
            });
        }
        // Replacing a blob is not an eviction.
        if let Some(old) = inner.map.remove(&key) {
            inner.metadata_bytes -= old.metadata;
        }
        inner.make_room(self.capacity_bytes, weight);
        inner
            .map
            .insert(key, entry, weight)
            .map_err(|too| BlobTooLarge {
                size: too.weight,
                capacity: too.capacity,
            })?;
        inner.metadata_bytes += metadata;
        Ok(blob)
    }

    /// Counts one refused upload.
    pub fn count_rejected(&self) {
        self.lock().map.count_refused();
    }

    /// Whether a blob exists (for the create-versus-write permission check).
    pub fn contains(&self, account: &str, container: &str, name: &str) -> bool {
        self.lock()
            .map
            .contains(&(account.to_owned(), container.to_owned(), name.to_owned()))
    }

    /// A blob and its content.
    pub fn get(&self, account: &str, container: &str, name: &str) -> Option<(StoredBlob, Bytes)> {
        self.lock()
            .map
            .get(&(account.to_owned(), container.to_owned(), name.to_owned()))
            .map(|e| (e.blob.clone(), e.content.clone()))
    }

    /// Every blob held, oldest first (without content).
    pub fn list(&self) -> Vec<StoredBlob> {
        self.lock()
            .map
            .iter()
            .map(|(_, e)| e.blob.clone())
            .collect()
    }

    /// The counters.
    pub fn stats(&self) -> BlobStats {
        let inner = self.lock();
        BlobStats {
            stored: inner.map.len(),
            bytes: inner.map.weight(),
            metadata_bytes: inner.metadata_bytes,
            in_flight: inner.in_flight,
            refused_in_flight: inner.refused_in_flight,
            evicted: inner.map.evicted(),
            rejected: inner.map.refused(),
            capacity_bytes: self.capacity_bytes,
        }
    }

    /// Forgets every blob and resets the counters (uploads in flight keep their reservations).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.metadata_bytes = 0;
        inner.refused_in_flight = 0;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the data plane down with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(name: &str) -> StoredBlob {
        StoredBlob {
            account: "acct".into(),
            container: "c".into(),
            name: name.into(),
            size: 0,
            md5_b64: String::new(),
            sha256_hex: String::new(),
            uploaded_ms: 0,
            device_id: None,
        }
    }

    /// The metadata cost of a one-letter blob of [`blob`].
    fn m() -> u64 {
        metadata_cost(&blob("a"))
    }

    #[test]
    fn oldest_whole_blobs_are_evicted_and_counted() {
        let store = BlobStore::new(10 + 2 * m());
        store.put(blob("a"), Bytes::from_static(b"1234")).unwrap();
        store.put(blob("b"), Bytes::from_static(b"1234")).unwrap();
        store.put(blob("c"), Bytes::from_static(b"12345")).unwrap();
        let names: Vec<String> = store.list().into_iter().map(|b| b.name).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(
            store.stats(),
            BlobStats {
                stored: 2,
                bytes: 9 + 2 * m(),
                metadata_bytes: 2 * m(),
                in_flight: 0,
                refused_in_flight: 0,
                evicted: 1,
                rejected: 0,
                capacity_bytes: 10 + 2 * m()
            }
        );
        assert!(store.get("acct", "c", "a").is_none());
        let (meta, content) = store.get("acct", "c", "c").unwrap();
        assert_eq!((meta.size, &content[..]), (5, &b"12345"[..]));
    }

    #[test]
    fn empty_blobs_cost_their_metadata() {
        let store = BlobStore::new(3 * m());
        for name in ["a", "b", "c", "d", "e"] {
            store.put(blob(name), Bytes::new()).unwrap();
        }
        let stats = store.stats();
        assert!(m() > 100, "{}", m());
        assert_eq!(
            (
                stats.stored,
                stats.bytes,
                stats.metadata_bytes,
                stats.evicted
            ),
            (3, 3 * m(), 3 * m(), 2)
        );
    }

    #[test]
    fn replacing_a_blob_is_not_an_eviction() {
        let store = BlobStore::new(10 + m());
        store
            .put(blob("a"), Bytes::from_static(b"12345678"))
            .unwrap();
        store
            .put(blob("a"), Bytes::from_static(b"123456789"))
            .unwrap();
        let stats = store.stats();
        assert_eq!((stats.stored, stats.bytes, stats.evicted), (1, 9 + m(), 0));
        assert_eq!(stats.metadata_bytes, m());
    }

    #[test]
    fn a_blob_larger_than_the_store_is_refused_and_nothing_evicted() {
        let store = BlobStore::new(4 + m());
        store.put(blob("a"), Bytes::from_static(b"12")).unwrap();
        let err = store
            .put(blob("big"), Bytes::from_static(b"12345"))
            .unwrap_err();
        assert_eq!(err.size, 5 + metadata_cost(&blob("big")));
        let stats = store.stats();
        assert_eq!((stats.stored, stats.evicted, stats.rejected), (1, 0, 1));
    }

    #[test]
    fn reservations_in_flight_cannot_pass_the_capacity() {
        let store = BlobStore::new(1000);
        let mut first = store.reserve();
        first.grow_to(600).unwrap();
        let mut second = store.reserve();
        let err = second.grow_to(500).unwrap_err();
        assert_eq!((err.wanted, err.in_flight), (500, 600));
        second.grow_to(400).unwrap();
        assert_eq!(store.stats().in_flight, 1000);
        drop(second);
        let stats = store.stats();
        assert_eq!((stats.in_flight, stats.refused_in_flight), (600, 1));
        // Storing under a reservation releases it in the same step.
        store
            .put_reserved(blob("a"), Bytes::from(vec![0u8; 500]), first)
            .unwrap();
        let stats = store.stats();
        assert_eq!((stats.in_flight, stats.bytes), (0, 500 + m()));
    }

    #[test]
    fn a_reservation_evicts_old_blobs_to_make_room() {
        let store = BlobStore::new(1000);
        store.put(blob("a"), Bytes::from(vec![0u8; 500])).unwrap();
        let mut upload = store.reserve();
        upload.grow_to(600).unwrap();
        let stats = store.stats();
        assert_eq!((stats.stored, stats.evicted, stats.in_flight), (0, 1, 600));
        assert!(stats.bytes + stats.in_flight <= stats.capacity_bytes);
    }

    #[test]
    fn clear_forgets_everything() {
        let store = BlobStore::new(100 + m());
        store.put(blob("a"), Bytes::from_static(b"x")).unwrap();
        store.count_rejected();
        store.clear();
        assert_eq!(
            store.stats(),
            BlobStats {
                capacity_bytes: 100 + m(),
                ..BlobStats::default()
            }
        );
        assert!(store.list().is_empty());
        assert!(!store.contains("acct", "c", "a"));
    }
}
