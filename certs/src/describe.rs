//! A readable summary of a DER certificate, for evidence in verdicts and reports.

use rustls_pki_types::CertificateDer;
use x509_parser::prelude::*;

use crate::{Error, Pin};

/// What a report needs to say about one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject common name (or the whole subject when it has no CN).
    pub subject_cn: String,
    /// Issuer common name (or the whole issuer when it has no CN).
    pub issuer_cn: String,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// The SPKI pin of the certificate's key.
    pub pin: Pin,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// Whether subject equals issuer.
    pub self_issued: bool,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Summarises a DER certificate.
pub fn describe(cert: &CertificateDer<'_>) -> Result<CertSummary, Error> {
    let (_, x509) = parse_x509_certificate(cert.as_ref()).map_err(|e| Error::Parse {
        what: "certificate".into(),
        detail: e.to_string(),
    })?;
    let dns_names = x509
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CertSummary {
        subject_cn: common_name(x509.subject()),
        issuer_cn: common_name(x509.issuer()),
        dns_names,
        pin: Pin::of_spki_der(x509.tbs_certificate.subject_pki.raw),
        is_ca: x509.is_ca(),
        self_issued: x509.subject() == x509.issuer(),
        not_before: x509.validity().not_before.timestamp(),
        not_after: x509.validity().not_after.timestamp(),
    })
}

fn common_name(name: &X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| name.to_string())
}
