//! Minted certificates, cached per name.
//!
//! Minting signs a certificate (the leaf key is the issuer's, shared by every leaf), so it is
//! cheap but not free; a sensor reconnects to the same few hosts all day, so each name is
//! minted once and the resulting signing key object is reused.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mdelab_certs::LeafIssuer;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::error::Error;

/// At most this many names are cached; when full the cache starts over, which bounds memory
/// when unlisted destinations are allowed and clients invent names.
const MAX_CACHED_NAMES: usize = 4096;

/// Leaf certificates minted from the inspection issuer, one per name.
pub(crate) struct CertCache {
    issuer: LeafIssuer,
    provider: Arc<CryptoProvider>,
    entries: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    minted: AtomicU64,
}

impl fmt::Debug for CertCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertCache")
            .field("issuer", &self.issuer.authority().common_name())
            .field("minted", &self.minted())
            .finish_non_exhaustive()
    }
}

impl CertCache {
    pub(crate) fn new(issuer: LeafIssuer, provider: Arc<CryptoProvider>) -> Self {
        Self {
            issuer,
            provider,
            entries: Mutex::new(HashMap::new()),
            minted: AtomicU64::new(0),
        }
    }

    /// The certificate for `name` (already normalised), minting it on first use.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<CertifiedKey>, Error> {
        // The lock is held while minting so that two connections racing for a new name mint it
        // once; minting takes about a millisecond and never awaits.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = entries.get(name) {
            return Ok(found.clone());
        }
        let leaf = self.issuer.issue(&[name]).map_err(|source| Error::Mint {
            name: name.to_owned(),
            source,
        })?;
        let key =
            CertifiedKey::from_der(leaf.chain, leaf.key, &self.provider).map_err(|source| {
                Error::MintKey {
                    name: name.to_owned(),
                    source,
                }
            })?;
        let key = Arc::new(key);
        if entries.len() >= MAX_CACHED_NAMES {
            entries.clear();
        }
        entries.insert(name.to_owned(), key.clone());
        self.minted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%name, "minted an inspection certificate");
        Ok(key)
    }

    /// How many certificates were minted.
    pub(crate) fn minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    /// The cached names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }
}
