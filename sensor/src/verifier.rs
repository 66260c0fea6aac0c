//! Certificate verification as MDE does it: chain first, then the pin.
//!
//! The chain is validated against the device's trust store by webpki; only a trusted chain
//! reaches the pin check, as in OkHttp and Android. So a foreign CA the device does not trust
//! fails as "unknown issuer" (trust layer), while an inspection CA the device *does* trust
//! passes the chain and fails the pin (pin layer). Whatever the result, the presented chain is
//! recorded so the verdict can name the issuer that signed it.

use std::sync::{Arc, Mutex};

use mdelab_certs::{CertSummary, PinSet, describe};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, RootCertStore, SignatureScheme,
};

/// The pin check failed: a typed error carried inside rustls's `CertificateError::Other`.
#[derive(Debug, thiserror::Error)]
#[error("no certificate in the chain issued by {issuer:?} carries a pinned key")]
pub struct PinMismatch {
    /// Issuer of the presented leaf.
    pub issuer: String,
}

/// Chain validation against a trust store, then an optional pin check.
#[derive(Debug)]
pub struct PinningVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pins: Option<PinSet>,
    presented: Arc<Mutex<Vec<CertSummary>>>,
}

impl PinningVerifier {
    /// A verifier trusting `roots`, pinning `pins` when given.
    pub fn new(roots: &[CertificateDer<'static>], pins: Option<PinSet>) -> Result<Self, Error> {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root.clone())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| Error::General(e.to_string()))?;
        Ok(Self {
            webpki,
            pins,
            presented: Arc::default(),
        })
    }

    /// A handle on the chain the server presented (filled during the handshake).
    pub fn presented(&self) -> Arc<Mutex<Vec<CertSummary>>> {
        self.presented.clone()
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let chain: Vec<CertSummary> = std::iter::once(end_entity)
            .chain(intermediates)
            .filter_map(|c| describe(c).ok())
            .collect();
        if let Ok(mut slot) = self.presented.lock() {
            *slot = chain.clone();
        }
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let Some(pins) = &self.pins else {
            return Ok(verified);
        };
        if chain.iter().any(|c| pins.contains(&c.pin)) {
            return Ok(verified);
        }
        let issuer = chain
            .first()
            .map(|c| c.issuer_cn.clone())
            .unwrap_or_default();
        Err(Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(PinMismatch { issuer })),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The pins' labels, for evidence ("MDE Lab Secure Server CA 2011, …").
pub fn pin_labels(pins: &PinSet) -> String {
    pins.iter()
        .map(|(_, label)| label)
        .collect::<Vec<_>>()
        .join(", ")
}
