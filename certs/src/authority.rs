//! Certificate authorities and leaf minting.
//!
//! An [`Authority`] is a CA certificate plus its signing key. A [`LeafIssuer`] pairs an
//! authority with one leaf key: every leaf it mints for any set of names carries that key, the
//! way a large service puts one key behind many multi-SAN certificates (and the way mitmproxy
//! signs every intercepted host with one key). That keeps minting cheap (no key generation per
//! host) and makes a leaf pin stable per issuer, which is what `curl --pinnedpubkey` needs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::key::{KeyAlgorithm, load_key_pem};
use crate::{Error, Pin};

/// The organisation name on every lab certificate: it says plainly that it is a mock.
pub const LAB_ORGANIZATION: &str = "MDE Lab (mock PKI, not Microsoft)";

/// How long lab CAs are valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long minted leaves are valid (the CA/Browser Forum maximum of 397 days).
const LEAF_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);
/// Back-dating of `notBefore`, so that a peer whose clock lags a little still accepts it.
const BACKDATE: Duration = Duration::from_secs(3600);

/// A certificate authority: its certificate and signing key.
pub struct Authority {
    common_name: String,
    cert: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// What a server sends after its leaf: this CA and the CAs above it, the root excluded.
    chain_above: Vec<CertificateDer<'static>>,
    /// The self-signed root this authority chains to (itself when it is a root).
    root: CertificateDer<'static>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Creates a self-signed root CA with a fresh key.
    pub fn new_root(common_name: &str, algorithm: KeyAlgorithm) -> Result<Self, Error> {
        let key = algorithm.generate()?;
        let params = ca_params(common_name, None);
        let cert = params.self_signed(&key).map_err(|source| Error::Issue {
            subject: common_name.to_owned(),
            source,
        })?;
        let der = cert.der().clone();
        Ok(Self {
            common_name: common_name.to_owned(),
            cert_pem: cert.pem(),
            root: der.clone(),
            cert: der,
            issuer: Issuer::new(params, key),
            chain_above: Vec::new(),
        })
    }

    /// Creates an issuing CA signed by `parent`, with a fresh key.
    pub fn new_intermediate(
        common_name: &str,
        parent: &Self,
        algorithm: KeyAlgorithm,
    ) -> Result<Self, Error> {
        let key = algorithm.generate()?;
        let params = ca_params(common_name, Some(0));
        let cert = params
            .signed_by(&key, &parent.issuer)
            .map_err(|source| Error::Issue {
                subject: common_name.to_owned(),
                source,
            })?;
        let der = cert.der().clone();
        let mut chain_above = vec![der.clone()];
        chain_above.extend(parent.chain_above.iter().cloned());
        Ok(Self {
            common_name: common_name.to_owned(),
            cert_pem: cert.pem(),
            cert: der,
            issuer: Issuer::new(params, key),
            chain_above,
            root: parent.root.clone(),
        })
    }

    /// Loads an authority from PEM text: its certificate and private key, and, when it is not
    /// itself a root, the certificate of the root (or the chain above it) it is signed by.
    ///
    /// This is how an external CA (a vendor's inspection CA, a persisted lab CA) is used.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        parent: Option<&Self>,
        what: &str,
    ) -> Result<Self, Error> {
        let cert =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| Error::Parse {
                what: format!("{what} certificate"),
                detail: e.to_string(),
            })?;
        let key = load_key_pem(key_pem, &format!("{what} key"))?;
        let issuer = Issuer::from_ca_cert_der(&cert, key).map_err(|e| Error::Parse {
            what: format!("{what} certificate"),
            detail: e.to_string(),
        })?;
        let summary = crate::describe(&cert)?;
        let (chain_above, root) = match parent {
            Some(parent) => {
                let mut chain = vec![cert.clone()];
                chain.extend(parent.chain_above.iter().cloned());
                (chain, parent.root.clone())
            }
            None => (Vec::new(), cert.clone()),
        };
        Ok(Self {
            common_name: summary.subject_cn,
            cert_pem: pem_encode("CERTIFICATE", &cert),
            cert,
            issuer,
            chain_above,
            root,
        })
    }

    /// The CA's common name.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The CA certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate (PEM).
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key (PKCS#8 PEM). Handle with care: write it 0600.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The root certificate this CA chains to (itself for a root).
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root
    }

    /// The SPKI pin of this CA's key.
    pub fn pin(&self) -> Pin {
        Pin::of_spki_der(&self.issuer.key().subject_public_key_info())
    }

    /// The key algorithm of this CA's key.
    pub fn algorithm(&self) -> Option<KeyAlgorithm> {
        KeyAlgorithm::of(self.issuer.key())
    }

    fn sign_leaf(
        &self,
        names: &[&str],
        key: &KeyPair,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<IssuedLeaf, Error> {
        let subject = names.first().copied().unwrap_or("unnamed").to_owned();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .map_err(|source| Error::Issue {
                    subject: subject.clone(),
                    source,
                })?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, subject.as_str());
        dn.push(DnType::OrganizationName, LAB_ORGANIZATION);
        params.distinguished_name = dn;
        params.serial_number = Some(random_serial());
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(key, &self.issuer)
            .map_err(|source| Error::Issue { subject, source })?;
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain_above.iter().cloned());
        Ok(IssuedLeaf {
            chain,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }
}

/// A leaf certificate with the chain a server sends (leaf first, root excluded) and its key.
#[derive(Debug)]
pub struct IssuedLeaf {
    /// Leaf first, then the issuing CAs; the root is not sent, as real servers do.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for IssuedLeaf {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Mints leaves from one authority, all with one leaf key (see the module docs for why).
#[derive(Clone, Debug)]
pub struct LeafIssuer {
    authority: Arc<Authority>,
    key: Arc<KeyPair>,
}

impl LeafIssuer {
    /// An issuer with a freshly generated leaf key of the given algorithm.
    pub fn new(authority: Arc<Authority>, algorithm: KeyAlgorithm) -> Result<Self, Error> {
        Ok(Self {
            authority,
            key: Arc::new(algorithm.generate()?),
        })
    }

    /// An issuer with a given leaf key (PEM), e.g. one persisted in a state directory.
    pub fn with_key_pem(
        authority: Arc<Authority>,
        key_pem: &str,
        what: &str,
    ) -> Result<Self, Error> {
        Ok(Self {
            authority,
            key: Arc::new(load_key_pem(key_pem, what)?),
        })
    }

    /// Mints a leaf valid now for the given DNS names (or IP addresses); the first is the CN.
    pub fn issue(&self, names: &[&str]) -> Result<IssuedLeaf, Error> {
        let now = SystemTime::now();
        self.issue_with_validity(names, now - BACKDATE, now + LEAF_VALIDITY)
    }

    /// Mints a leaf with an explicit validity window (e.g. an expired one, for tests).
    pub fn issue_with_validity(
        &self,
        names: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<IssuedLeaf, Error> {
        self.authority
            .sign_leaf(names, &self.key, not_before, not_after)
    }

    /// The authority that signs.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The SPKI pin of the leaf key (what `curl --pinnedpubkey` compares).
    pub fn leaf_pin(&self) -> Pin {
        Pin::of_spki_der(&self.key.subject_public_key_info())
    }

    /// The leaf key (PKCS#8 PEM), for persisting.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

fn ca_params(common_name: &str, path_len: Option<u8>) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, LAB_ORGANIZATION);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(match path_len {
        Some(len) => BasicConstraints::Constrained(len),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    let now = SystemTime::now();
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + CA_VALIDITY).into();
    params.use_authority_key_identifier_extension = path_len.is_some();
    params
}

/// A random positive 127-bit serial, so that two runs never reuse an issuer/serial pair.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// PEM-encodes DER bytes with the given label (64-column base64, as OpenSSL writes it).
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
