//! Certificate verification as MDE does it: chain first, then the pin, on the validated path.
//!
//! The chain is validated against the device's trust store by webpki, which builds a path from
//! the leaf through the presented intermediates to a trusted root; only then are the pins
//! checked, as in OkHttp and Android. So a foreign CA the device does not trust fails as
//! "unknown issuer" (trust layer), while an inspection CA the device *does* trust passes the
//! chain and fails the pin (pin layer).
//!
//! The pin must be on the **validated path** (leaf, the path's intermediates or its anchor),
//! never merely somewhere in what the server presented: an interceptor whose CA the device
//! trusts could otherwise append the genuine pinned intermediate to its chain and pass (the
//! OkHttp CVE-2016-2402 class of bug).
//!
//! Whatever the result, the presented chain is recorded so the verdict can name the issuer
//! that signed it. [`PinningVerifier::recording`] only records (the Client Analyzer's chain
//! check, which trusts anything).

use std::sync::{Arc, Mutex};

use mdelab_certs::{CertSummary, Pin, PinSet, describe};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};

/// The pin check failed: a typed error carried inside rustls's `CertificateError::Other`.
#[derive(Debug, thiserror::Error)]
#[error("no certificate on the validated path issued by {issuer:?} carries a pinned key")]
pub struct PinMismatch {
    /// Issuer of the presented leaf.
    pub issuer: String,
}

/// What the verifier decides.
#[derive(Debug)]
enum Mode {
    /// Validate the path against the trust store, then check the pins when given.
    Verify(Trust),
    /// Accept any chain; only record it.
    Record,
}

/// The trust store and pins of a verifying client.
#[derive(Debug)]
struct Trust {
    /// The trusted roots as webpki anchors.
    anchors: Vec<TrustAnchor<'static>>,
    /// The pin of each anchor's certificate (same order), hashed from the root's DER
    /// SubjectPublicKeyInfo exactly as [`Pin::of_certificate`] hashes any certificate.
    anchor_pins: Vec<Option<Pin>>,
    /// The pins, when the client pins this origin.
    pins: Option<PinSet>,
}

/// Chain validation against a trust store, then an optional pin check on the validated path.
#[derive(Debug)]
pub struct PinningVerifier {
    mode: Mode,
    provider: Arc<CryptoProvider>,
    presented: Arc<Mutex<Vec<CertSummary>>>,
}

impl PinningVerifier {
    /// A verifier trusting `roots`, pinning `pins` when given. Fails when a root is not a
    /// certificate webpki can use as a trust anchor.
    pub fn new(roots: &[CertificateDer<'static>], pins: Option<PinSet>) -> Result<Self, Error> {
        let mut anchors = Vec::with_capacity(roots.len());
        let mut anchor_pins = Vec::with_capacity(roots.len());
        for root in roots {
            let anchor = webpki::anchor_from_trusted_cert(root)
                .map_err(|err| Error::General(format!("unusable trust anchor: {err}")))?
                .to_owned();
            anchors.push(anchor);
            anchor_pins.push(Pin::of_certificate(root).ok());
        }
        Ok(Self {
            mode: Mode::Verify(Trust {
                anchors,
                anchor_pins,
                pins,
            }),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            presented: Arc::default(),
        })
    }

    /// A verifier that accepts any chain and records it (handshake signatures are still
    /// checked, so the peer holds the leaf's key).
    pub fn recording() -> Self {
        Self {
            mode: Mode::Record,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            presented: Arc::default(),
        }
    }

    /// A handle on the chain the server presented (filled during the handshake).
    pub fn presented(&self) -> Arc<Mutex<Vec<CertSummary>>> {
        self.presented.clone()
    }

    /// The crypto provider the verifier checks signatures with (for the client config).
    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }
}

impl Trust {
    /// Validates `end_entity` for `server_name` against the anchors, then requires a pin on the
    /// validated path.
    fn verify(
        &self,
        provider: &CryptoProvider,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let Self {
            anchors,
            anchor_pins,
            pins,
        } = self;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        let path = cert
            .verify_for_usage(
                provider.signature_verification_algorithms.all,
                anchors,
                intermediates,
                now,
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .map_err(pki_error)?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(pki_error)?;
        let Some(pins) = pins else {
            return Ok(());
        };
        let anchor = path.anchor();
        let anchor_pin = anchors
            .iter()
            .zip(anchor_pins)
            .find(|(a, _)| {
                a.subject == anchor.subject
                    && a.subject_public_key_info == anchor.subject_public_key_info
            })
            .and_then(|(_, pin)| *pin);
        let on_path = std::iter::once(Pin::of_certificate(end_entity).ok())
            .chain(
                path.intermediate_certificates()
                    .map(|c| Pin::of_certificate(&c.der()).ok()),
            )
            .chain(std::iter::once(anchor_pin))
            .flatten();
        for pin in on_path {
            if pins.contains(&pin) {
                return Ok(());
            }
        }
        Err(Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(PinMismatch {
                issuer: describe(end_entity)
                    .map(|c| c.issuer_cn)
                    .unwrap_or_default(),
            })),
        )))
    }
}

/// A webpki failure as the rustls certificate error the verdicts are classified from.
fn pki_error(error: webpki::Error) -> Error {
    use webpki::Error as E;
    let cert_error = match error {
        E::BadDer | E::BadDerTime | E::TrailingData(_) => CertificateError::BadEncoding,
        E::CertNotValidYet { time, not_before } => {
            CertificateError::NotValidYetContext { time, not_before }
        }
        E::CertExpired { time, not_after } => CertificateError::ExpiredContext { time, not_after },
        E::InvalidCertValidity => CertificateError::Expired,
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::CertNotValidForName(_) => CertificateError::NotValidForName,
        E::CertRevoked => CertificateError::Revoked,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    Error::InvalidCertificate(cert_error)
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let chain: Vec<CertSummary> = std::iter::once(end_entity)
            .chain(intermediates)
            .filter_map(|c| describe(c).ok())
            .collect();
        if let Ok(mut slot) = self.presented.lock() {
            *slot = chain;
        }
        match &self.mode {
            Mode::Record => {}
            Mode::Verify(trust) => {
                trust.verify(&self.provider, end_entity, intermediates, server_name, now)?
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The pins' labels, for evidence ("MDE Lab Secure Server CA 2011, …").
pub fn pin_labels(pins: &PinSet) -> String {
    pins.iter()
        .map(|(_, label)| label)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use mdelab_certs::{Authority, KeyAlgorithm, LeafIssuer, Pki, PkiOptions, Profile};

    use super::*;

    const HOST: &str = "winatp-gw-cus.microsoft.com";

    fn pki() -> Pki {
        Pki::generate(&PkiOptions::default()).unwrap()
    }

    /// The device trusts the lab roots, plus the inspection CA when `trusts_inspection`.
    fn verifier(pki: &Pki, trusts_inspection: bool, pinned: bool) -> PinningVerifier {
        let mut roots = pki.trust_anchors();
        if trusts_inspection {
            roots.push(pki.inspection().authority().certificate().clone());
        }
        PinningVerifier::new(&roots, pinned.then(|| pki.pins(Profile::Pinned))).unwrap()
    }

    fn verify(
        verifier: &PinningVerifier,
        chain: &[CertificateDer<'static>],
        host: &str,
    ) -> Result<ServerCertVerified, Error> {
        verifier.verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(host.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
    }

    fn is_pin_mismatch(err: &Error) -> bool {
        matches!(
            err,
            Error::InvalidCertificate(CertificateError::Other(other))
                if other.0.downcast_ref::<PinMismatch>().is_some()
        )
    }

    #[test]
    fn a_pinned_chain_passes_both_layers() {
        let pki = pki();
        let chain = pki.issuer(Profile::Pinned).issue(&[HOST]).unwrap().chain;
        let verifier = verifier(&pki, false, true);
        assert!(verify(&verifier, &chain, HOST).is_ok());
        let presented = verifier.presented();
        let presented = presented.lock().unwrap();
        assert_eq!(presented.len(), chain.len());
        assert_eq!(
            presented[0].issuer_cn,
            pki.issuer(Profile::Pinned).authority().common_name()
        );
    }

    #[test]
    fn a_pin_on_the_anchor_alone_is_found() {
        // Only the root's key pinned: the anchor's key is compared in the same encoding
        // (the DER SubjectPublicKeyInfo) as the pins.
        let pki = pki();
        let root = pki.root(Profile::Pinned);
        let pins = PinSet::new().with(root.pin(), root.common_name());
        let verifier = PinningVerifier::new(&pki.trust_anchors(), Some(pins)).unwrap();
        let chain = pki.issuer(Profile::Pinned).issue(&[HOST]).unwrap().chain;
        assert!(verify(&verifier, &chain, HOST).is_ok());
        // …and a chain of the other (trusted) profile does not carry it.
        let azure = pki.issuer(Profile::Azure).issue(&[HOST]).unwrap().chain;
        assert!(is_pin_mismatch(
            &verify(&verifier, &azure, HOST).unwrap_err()
        ));
    }

    #[test]
    fn a_foreign_ca_fails_the_trust_layer() {
        let pki = pki();
        let chain = pki.inspection().issue(&[HOST]).unwrap().chain;
        let err = verify(&verifier(&pki, false, true), &chain, HOST).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
    }

    #[test]
    fn a_trusted_inspection_ca_fails_the_pin_layer() {
        let pki = pki();
        let chain = pki.inspection().issue(&[HOST]).unwrap().chain;
        let err = verify(&verifier(&pki, true, true), &chain, HOST).unwrap_err();
        assert!(is_pin_mismatch(&err), "{err:?}");
        // The unpinned client (the browser) accepts it.
        assert!(verify(&verifier(&pki, true, false), &chain, HOST).is_ok());
    }

    #[test]
    fn an_appended_genuine_pinned_intermediate_does_not_rescue_an_inspected_chain() {
        let pki = pki();
        let mut chain = pki.inspection().issue(&[HOST]).unwrap().chain;
        // The interceptor appends the genuine pinned issuing CA (and root) it saw upstream.
        chain.push(
            pki.issuer(Profile::Pinned)
                .authority()
                .certificate()
                .clone(),
        );
        chain.push(pki.root(Profile::Pinned).certificate().clone());
        let verifier = verifier(&pki, true, true);
        let err = verify(&verifier, &chain, HOST).unwrap_err();
        assert!(is_pin_mismatch(&err), "{err:?}");
        // The presented chain is still recorded, pinned intermediate included.
        let pinned_ca = pki.issuer(Profile::Pinned).authority().pin();
        let presented = verifier.presented();
        assert!(presented.lock().unwrap().iter().any(|c| c.pin == pinned_ca));
    }

    #[test]
    fn a_pinned_root_above_an_unpinned_sub_ca_is_on_the_path() {
        // The rule's other side: when the pinned CA really is on the path
        // (an issuing CA under the pinned root), the pin is found even though the leaf is not.
        let pki = pki();
        let root = pki.root(Profile::Pinned);
        let sub = Authority::new_intermediate("Lab Sub CA", root, KeyAlgorithm::default()).unwrap();
        let issuer = LeafIssuer::new(Arc::new(sub), KeyAlgorithm::default()).unwrap();
        let chain = issuer.issue(&[HOST]).unwrap().chain;
        let pins = PinSet::new().with(root.pin(), root.common_name());
        let verifier = PinningVerifier::new(&pki.trust_anchors(), Some(pins)).unwrap();
        assert!(verify(&verifier, &chain, HOST).is_ok());
    }

    #[test]
    fn expired_and_misnamed_leaves_fail_the_trust_layer() {
        let pki = pki();
        let verifier = verifier(&pki, false, true);
        let chain = pki.issuer(Profile::Pinned).issue(&[HOST]).unwrap().chain;
        let err = verify(&verifier, &chain, "other.example").unwrap_err();
        assert_eq!(
            err,
            Error::InvalidCertificate(CertificateError::NotValidForName)
        );
        let past = SystemTime::now() - Duration::from_secs(30 * 86_400);
        let expired = pki
            .issuer(Profile::Pinned)
            .issue_with_validity(&[HOST], past, past + Duration::from_secs(86_400))
            .unwrap()
            .chain;
        let err = verify(&verifier, &expired, HOST).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn the_recording_verifier_accepts_anything_and_records_it() {
        let pki = pki();
        let chain = pki.inspection().issue(&[HOST]).unwrap().chain;
        let verifier = PinningVerifier::recording();
        assert!(verify(&verifier, &chain, "any.name").is_ok());
        assert_eq!(verifier.presented().lock().unwrap().len(), chain.len());
    }
}
