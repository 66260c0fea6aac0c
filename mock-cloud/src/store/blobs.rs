//! Uploaded blobs (sample upload, Auto-IR, Live Response getfile), bounded by total bytes.
//!
//! Blobs are kept whole in memory, keyed by (account, container, name). When a new blob does
//! not fit, the oldest whole blobs are evicted (and counted) until it does; a blob larger than
//! the whole capacity is refused rather than emptying the store for nothing (the rules of
//! [`Bounded`], weighed in bytes).

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
    /// Content bytes held now.
    pub bytes: u64,
    /// Blobs evicted to make room (replacing a blob by the same name is not an eviction).
    pub evicted: u64,
    /// Uploads refused (authentication, permission, missing header, MD5 mismatch, too large).
    pub rejected: u64,
    /// Most content bytes held at once.
    pub capacity_bytes: u64,
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
    /// Weighed by content length; `refused` counts every refused upload.
    inner: Mutex<Bounded<Key, Entry>>,
}

#[derive(Debug)]
struct Entry {
    blob: StoredBlob,
    content: Bytes,
}

impl BlobStore {
    /// A store keeping at most `capacity_bytes` of blob content.
    pub fn new(capacity_bytes: u64) -> Self {
        Self {
            capacity_bytes,
            inner: Mutex::new(Bounded::with_max_weight(capacity_bytes)),
        }
    }

    /// The capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// Stores `content` under `blob`'s account, container and name, replacing a blob of the
    /// same name and evicting the oldest blobs until it fits. `blob.size` is set from
    /// `content`. Refuses (and counts) a blob larger than the whole capacity.
    pub fn put(&self, mut blob: StoredBlob, content: Bytes) -> Result<StoredBlob, BlobTooLarge> {
        blob.size = content.len() as u64;
        let key = (
            blob.account.clone(),
            blob.container.clone(),
            blob.name.clone(),
        );
        let entry = Entry {
            blob: blob.clone(),
            content,
        };
        self.lock()
            .insert(key, entry, blob.size)
            .map_err(|too| BlobTooLarge {
                size: too.weight,
                capacity: too.capacity,
            })?;
        Ok(blob)
    }

    /// Counts one refused upload.
    pub fn count_rejected(&self) {
        self.lock().count_refused();
    }

    /// Whether a blob exists (for the create-versus-write permission check).
    pub fn contains(&self, account: &str, container: &str, name: &str) -> bool {
        self.lock()
            .contains(&(account.to_owned(), container.to_owned(), name.to_owned()))
    }

    /// A blob and its content.
    pub fn get(&self, account: &str, container: &str, name: &str) -> Option<(StoredBlob, Bytes)> {
        self.lock()
            .get(&(account.to_owned(), container.to_owned(), name.to_owned()))
            .map(|e| (e.blob.clone(), e.content.clone()))
    }

    /// Every blob held, oldest first (without content).
    pub fn list(&self) -> Vec<StoredBlob> {
        self.lock().iter().map(|(_, e)| e.blob.clone()).collect()
    }

    /// The counters.
    pub fn stats(&self) -> BlobStats {
        let inner = self.lock();
        BlobStats {
            stored: inner.len(),
            bytes: inner.weight(),
            evicted: inner.evicted(),
            rejected: inner.refused(),
            capacity_bytes: self.capacity_bytes,
        }
    }

    /// Forgets every blob and resets the counters.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Bounded<Key, Entry>> {
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

    #[test]
    fn oldest_whole_blobs_are_evicted_and_counted() {
        let store = BlobStore::new(10);
        store.put(blob("a"), Bytes::from_static(b"1234")).unwrap();
        store.put(blob("b"), Bytes::from_static(b"1234")).unwrap();
        store.put(blob("c"), Bytes::from_static(b"12345")).unwrap();
        let names: Vec<String> = store.list().into_iter().map(|b| b.name).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(
            store.stats(),
            BlobStats {
                stored: 2,
                bytes: 9,
                evicted: 1,
                rejected: 0,
                capacity_bytes: 10
            }
        );
        assert!(store.get("acct", "c", "a").is_none());
        let (meta, content) = store.get("acct", "c", "c").unwrap();
        assert_eq!((meta.size, &content[..]), (5, &b"12345"[..]));
    }

    #[test]
    fn replacing_a_blob_is_not_an_eviction() {
        let store = BlobStore::new(10);
        store
            .put(blob("a"), Bytes::from_static(b"12345678"))
            .unwrap();
        store
            .put(blob("a"), Bytes::from_static(b"123456789"))
            .unwrap();
        let stats = store.stats();
        assert_eq!((stats.stored, stats.bytes, stats.evicted), (1, 9, 0));
    }

    #[test]
    fn a_blob_larger_than_the_store_is_refused_and_nothing_evicted() {
        let store = BlobStore::new(4);
        store.put(blob("a"), Bytes::from_static(b"12")).unwrap();
        let err = store
            .put(blob("big"), Bytes::from_static(b"12345"))
            .unwrap_err();
        assert_eq!(err.size, 5);
        let stats = store.stats();
        assert_eq!((stats.stored, stats.evicted, stats.rejected), (1, 0, 1));
    }

    #[test]
    fn clear_forgets_everything() {
        let store = BlobStore::new(100);
        store.put(blob("a"), Bytes::from_static(b"x")).unwrap();
        store.count_rejected();
        store.clear();
        assert_eq!(
            store.stats(),
            BlobStats {
                capacity_bytes: 100,
                ..BlobStats::default()
            }
        );
        assert!(store.list().is_empty());
        assert!(!store.contains("acct", "c", "a"));
    }
}
