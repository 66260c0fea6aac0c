//! State shared by every connection of the mock cloud.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::tls::CertStore;

/// Shared, cheaply cloned state.
#[derive(Clone, Debug)]
pub struct State {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    catalog: &'static Catalog,
    certs: Arc<CertStore>,
}

impl State {
    pub(crate) fn new(catalog: &'static Catalog, certs: Arc<CertStore>) -> Self {
        Self {
            inner: Arc::new(Inner { catalog, certs }),
        }
    }

    /// The catalog being served.
    pub fn catalog(&self) -> &'static Catalog {
        self.inner.catalog
    }

    /// The certificate store.
    pub fn certs(&self) -> &CertStore {
        &self.inner.certs
    }
}
