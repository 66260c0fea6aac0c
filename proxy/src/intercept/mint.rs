//! Minted certificates, cached per name.
//!
//! Minting signs a certificate (the leaf key is the issuer's, shared by every leaf), so it is
//! cheap but not free; a sensor reconnects to the same few hosts all day, so each name is
//! minted once and the resulting signing key object is reused, in the certs crate's one
//! bounded [`mdelab_certs::CertCache`].

use std::fmt;
use std::sync::Arc;

use mdelab_certs::LeafIssuer;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::error::Error;

/// At most this many names are cached; when full the oldest-cached name is evicted (the
/// [`mdelab_certs::CertCache`] rule), which bounds memory when unlisted destinations are
/// allowed and clients invent names.
const MAX_CACHED_NAMES: usize = 4096;

/// Leaf certificates minted from the inspection issuer, one per name.
pub(crate) struct CertCache {
    issuer: LeafIssuer,
    /// Sent after every minted chain (see `InterceptConfig::append_to_chain`).
    appended: Vec<rustls::pki_types::CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    entries: mdelab_certs::CertCache<Arc<CertifiedKey>>,
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
    pub(crate) fn new(
        issuer: LeafIssuer,
        appended: Vec<rustls::pki_types::CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            issuer,
            appended,
            provider,
            entries: mdelab_certs::CertCache::new(MAX_CACHED_NAMES),
        }
    }

    /// The certificate for `name` (already normalised), minting it on first use.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<CertifiedKey>, Error> {
        self.entries.get_or_mint(name, |name| {
            let leaf = self.issuer.issue(&[name]).map_err(|source| Error::Mint {
                name: name.to_owned(),
                source,
            })?;
            let mut chain = leaf.chain;
            chain.extend(self.appended.iter().cloned());
            let key =
                CertifiedKey::from_der(chain, leaf.key, &self.provider).map_err(|source| {
                    Error::MintKey {
                        name: name.to_owned(),
                        source,
                    }
                })?;
            tracing::debug!(%name, "minted an inspection certificate");
            Ok(Arc::new(key))
        })
    }

    /// How many certificates were minted.
    pub(crate) fn minted(&self) -> u64 {
        self.entries.stats().minted
    }

    /// The cached names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        self.entries.names()
    }
}
