//! TLS inspection through the proxy: which issuer the lab's chain carries for a host, whether
//! a served chain is the lab's, and the inspection check built from the reachability probes.

use mdelab_catalog::Catalog;
use mdelab_certs::Profile;
use mdelab_certs::pki::{AZURE_ISSUING_NAME, PINNED_ISSUING_NAME};
use mdelab_sensor::{Outcome, Verdict};

use super::model::{Family, Item, sensor_check};

/// Whether `issuer` is one of the lab's issuing CAs (what an uninspected MDE host serves).
pub(super) fn is_lab_issuer(issuer: &str) -> bool {
    issuer == PINNED_ISSUING_NAME || issuer == AZURE_ISSUING_NAME
}

/// The issuer the lab's chain for `host` carries.
fn lab_issuer_of(host: &str) -> &'static str {
    match Catalog::mde().https_host(host).map(|h| h.profile) {
        Some(Profile::Pinned) => PINNED_ISSUING_NAME,
        _ => AZURE_ISSUING_NAME,
    }
}

/// The issuer that replaced the lab's chain, when an outcome shows TLS inspection.
pub(super) fn inspecting_issuer(outcome: &Outcome) -> Option<&str> {
    outcome
        .served_issuer
        .as_deref()
        .filter(|issuer| !is_lab_issuer(issuer))
}

/// Whether a failed exchange got past the proxy and the TLS handshake (the lab's chain was
/// served, or it was plain HTTP) and then broke: an HTTP answer, a cut or a timeout.
pub(super) fn exchanged(outcome: &Outcome) -> bool {
    match outcome.verdict {
        Verdict::Connected { .. } => true,
        Verdict::Other { .. } | Verdict::Timeout => {
            outcome.served_issuer.as_deref().is_some_and(is_lab_issuer)
        }
        _ => false,
    }
}

/// One check per MDE host, from the reachability probes: the chain it served through the proxy
/// must be the lab's. When another issuer served it, the proxy inspects TLS and the evidence
/// names that issuer (what Microsoft's own connectivity tests report).
pub(super) fn inspection(reach: &[Item]) -> Vec<Item> {
    let mut hosts: Vec<&str> = Vec::new();
    for item in reach {
        if !hosts.contains(&item.host.as_str()) {
            hosts.push(&item.host);
        }
    }
    hosts
        .into_iter()
        .filter_map(|host| {
            let of_host: Vec<&Item> = reach.iter().filter(|i| i.host == host).collect();
            // Prefer a probe that got as far as seeing a chain.
            let item = of_host
                .iter()
                .find(|i| i.check.observed.served_issuer.is_some())
                .or_else(|| of_host.first())?;
            let observed = &item.check.observed;
            let lab_issuer = lab_issuer_of(host);
            let pin_note = if item.pinned {
                "the sensor's pins hold"
            } else {
                "not pinned by the sensor"
            };
            let outcome = match observed.served_issuer.as_deref() {
                Some(issuer) if is_lab_issuer(issuer) => {
                    let verdict = match &observed.verdict {
                        Verdict::Connected { .. } => item.check.expected.clone(),
                        other => other.clone(),
                    };
                    Outcome::new(
                        verdict,
                        format!("the lab's chain (issued by '{issuer}'): not inspected; {pin_note}"),
                        Some(issuer.to_owned()),
                    )
                }
                Some(issuer) => {
                    let verdict = match &observed.verdict {
                        // A chain the device trusted but not the lab's: still inspection.
                        Verdict::Connected { .. } => Verdict::Other {
                            detail: "TLS inspection".into(),
                        },
                        other => other.clone(),
                    };
                    Outcome::new(
                        verdict,
                        format!(
                            "TLS inspection detected: chain issued by '{issuer}' instead of the lab's '{lab_issuer}' ({})",
                            observed.evidence
                        ),
                        Some(issuer.to_owned()),
                    )
                }
                None => Outcome::new(
                    observed.verdict.clone(),
                    format!("no chain to look at: {}", observed.evidence),
                    None,
                ),
            };
            Some(Item {
                family: Family::Inspection,
                host: host.to_owned(),
                pinned: item.pinned,
                check: sensor_check(
                    host.to_owned(),
                    "CONNECT + TLS",
                    item.check.expected.clone(),
                    outcome,
                ),
                reason: None,
            })
        })
        .collect()
}
