//! SPKI SHA-256 pins in the four common syntaxes.
//!
//! curl (`sha256//B64`), OkHttp (`sha256/B64`), HPKP (`pin-sha256="B64"`) and raw base64 all
//! hash the same thing: the DER SubjectPublicKeyInfo. Only the wrapper differs.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::CertificateDer;

use crate::Error;

/// The SHA-256 hash of a DER SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The pin of a DER SubjectPublicKeyInfo.
    pub fn of_spki_der(spki: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, spki);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// The pin of the key in a DER certificate.
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<Self, Error> {
        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| Error::Parse {
                what: "certificate".into(),
                detail: e.to_string(),
            })?;
        Ok(Self::of_spki_der(parsed.tbs_certificate.subject_pki.raw))
    }

    /// Raw base64 of the hash.
    pub fn base64(&self) -> String {
        B64.encode(self.0)
    }

    /// curl's `--pinnedpubkey` syntax: `sha256//B64`.
    pub fn curl(&self) -> String {
        format!("sha256//{}", self.base64())
    }

    /// OkHttp's `CertificatePinner` syntax: `sha256/B64`.
    pub fn okhttp(&self) -> String {
        format!("sha256/{}", self.base64())
    }

    /// HPKP's header syntax: `pin-sha256="B64"`.
    pub fn hpkp(&self) -> String {
        format!("pin-sha256=\"{}\"", self.base64())
    }

    /// Parses a pin in any of the four syntaxes.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        let b64 = s
            .strip_prefix("sha256//")
            .or_else(|| s.strip_prefix("sha256/"))
            .or_else(|| s.strip_prefix("pin-sha256=").map(|v| v.trim_matches('"')))
            .unwrap_or(s);
        let bytes = B64.decode(b64).map_err(|_| Error::BadPin {
            input: input.to_owned(),
        })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::BadPin {
            input: input.to_owned(),
        })?;
        Ok(Self(arr))
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.curl())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin({})", self.curl())
    }
}

/// A set of acceptable pins, each with a label naming the key it stands for.
///
/// A chain satisfies the set when any certificate in it has a pinned key (OkHttp and Android
/// semantics). curl checks only the leaf, so the leaf key belongs in the set too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinSet {
    pins: Vec<(Pin, String)>,
}

impl PinSet {
    /// An empty set (nothing pinned).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pin with a label (e.g. the CA's common name).
    pub fn with(mut self, pin: Pin, label: impl Into<String>) -> Self {
        self.pins.push((pin, label.into()));
        self
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }

    /// Whether `pin` is in the set.
    pub fn contains(&self, pin: &Pin) -> bool {
        self.pins.iter().any(|(p, _)| p == pin)
    }

    /// The label of `pin`, if it is in the set.
    pub fn label_of(&self, pin: &Pin) -> Option<&str> {
        self.pins
            .iter()
            .find(|(p, _)| p == pin)
            .map(|(_, l)| l.as_str())
    }

    /// The pins with their labels.
    pub fn iter(&self) -> impl Iterator<Item = (&Pin, &str)> {
        self.pins.iter().map(|(p, l)| (p, l.as_str()))
    }

    /// The whole set in curl syntax: `sha256//A;sha256//B`.
    pub fn curl(&self) -> String {
        self.pins
            .iter()
            .map(|(p, _)| p.curl())
            .collect::<Vec<_>>()
            .join(";")
    }
}
