//! TLS for the mock cloud: a certificate per SNI name, chosen from the catalog.
//!
//! Exact catalog hosts get their leaf minted up front (so readiness implies the PKI is done);
//! names in a wildcard family (storage accounts…) are minted on first use and cached in the
//! shared [`CertCache`] (bounded; the oldest-cached name is evicted when it is full). A
//! ClientHello without SNI, or naming a host the lab does not serve, is refused: the
//! resolver returns nothing and rustls answers with a fatal `access_denied` alert, after the
//! accept loop has logged the peer and the name.

use std::sync::Arc;

use mdelab_certs::{CertCache, Pki, Profile};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::Error;
use mdelab_catalog::{Catalog, normalise};

/// The most names whose leaves are kept; past it the oldest-cached name is evicted (the
/// [`CertCache`] rule) and minted again on its next use.
const MAX_CACHED_NAMES: usize = 10_000;

/// Picks (and caches) the certificate for each SNI name the catalog serves.
#[derive(Debug)]
pub struct CertStore {
    catalog: &'static Catalog,
    pki: Pki,
    provider: Arc<rustls::crypto::CryptoProvider>,
    cache: CertCache<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Builds the store and mints a leaf for every exact HTTPS host of the catalog.
    pub fn new(catalog: &'static Catalog, pki: Pki) -> Result<Self, Error> {
        let store = Self {
            catalog,
            pki,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            cache: CertCache::new(MAX_CACHED_NAMES),
        };
        for host in catalog.https_hosts() {
            if let Some(info) = catalog.https_host(host) {
                store.cache.insert(host, store.mint(host, info.profile)?);
            }
        }
        Ok(store)
    }

    /// The certificate for `sni`, or `None` when the lab does not serve that name.
    pub fn certificate_for(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        let name = normalise(sni);
        if let Some(key) = self.cache.get(&name) {
            return Some(key);
        }
        let info = self.catalog.https_host(&name)?;
        match self
            .cache
            .get_or_mint(&name, |name| self.mint(name, info.profile))
        {
            Ok(key) => Some(key),
            Err(err) => {
                tracing::error!(sni = %name, error = %err, "failed to mint a certificate");
                None
            }
        }
    }

    /// How many names have a cached leaf.
    pub fn cached_names(&self) -> usize {
        self.cache.len()
    }

    fn mint(&self, host: &str, profile: Profile) -> Result<Arc<CertifiedKey>, Error> {
        let leaf =
            self.pki
                .issuer(profile)
                .issue(&[host])
                .map_err(|source| Error::Certificate {
                    host: host.to_owned(),
                    source,
                })?;
        let key =
            CertifiedKey::from_der(leaf.chain, leaf.key, &self.provider).map_err(|source| {
                Error::Rustls {
                    host: host.to_owned(),
                    source,
                }
            })?;
        Ok(Arc::new(key))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certificate_for(hello.server_name()?)
    }
}

/// The server configuration: SNI-selected certificates, ALPN h2 and http/1.1, ring provider;
/// session secrets go to `key_log` when one is given (rustls's no-op key log otherwise).
pub fn server_config(
    store: Arc<CertStore>,
    key_log: Option<Arc<dyn rustls::KeyLog>>,
) -> Result<Arc<ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::TlsConfig { source })?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if let Some(key_log) = key_log {
        config.key_log = key_log;
    }
    Ok(Arc::new(config))
}
