//! The certification's verdict in words: `VERDICT: <proxy> is fit for MDE`, or why not, with
//! the failed checks' reasons grouped (TLS inspection per issuer, everything else counted).

use std::collections::{BTreeMap, BTreeSet};

use mdelab_sensor::Verdict;

use super::inspection::inspecting_issuer;
use super::model::Item;

/// `VERDICT: <proxy> is fit for MDE (N checks passed)`, or why not, reasons grouped.
pub(super) fn verdict_line(proxy: &str, items: &[&Item]) -> String {
    let proxy = proxy.trim_end_matches('/');
    let failed: Vec<&&Item> = items.iter().filter(|i| !i.check.as_expected()).collect();
    if failed.is_empty() {
        return format!(
            "VERDICT: {proxy} is fit for MDE ({} passed)",
            plural(items.len(), "check")
        );
    }
    format!(
        "VERDICT: {proxy} is NOT fit for MDE: {} failed ({})",
        plural(failed.len(), "check"),
        reasons(&failed).join("; ")
    )
}

/// The distinct reasons of the failed checks, in order of first appearance: TLS inspection per
/// issuer with the hosts it covered, everything else counted.
fn reasons(failed: &[&&Item]) -> Vec<String> {
    enum Reason {
        Inspection {
            issuer: String,
            pinned: BTreeSet<String>,
            unpinned: BTreeSet<String>,
        },
        Counted {
            text: String,
            count: usize,
        },
    }
    let mut order: Vec<String> = Vec::new();
    let mut reasons: BTreeMap<String, Reason> = BTreeMap::new();
    for item in failed {
        if let Some(issuer) = inspecting_issuer(&item.check.observed) {
            let key = format!("inspection\n{issuer}");
            if !reasons.contains_key(&key) {
                order.push(key.clone());
            }
            let entry = reasons.entry(key).or_insert_with(|| Reason::Inspection {
                issuer: issuer.to_owned(),
                pinned: BTreeSet::new(),
                unpinned: BTreeSet::new(),
            });
            if let Reason::Inspection {
                pinned, unpinned, ..
            } = entry
            {
                if item.pinned {
                    pinned.insert(item.host.clone());
                } else {
                    unpinned.insert(item.host.clone());
                }
            }
            continue;
        }
        let text = item.reason.clone().unwrap_or_else(|| generic_reason(item));
        if !reasons.contains_key(&text) {
            order.push(text.clone());
        }
        if let Reason::Counted { count, .. } = reasons
            .entry(text.clone())
            .or_insert(Reason::Counted { text, count: 0 })
        {
            *count += 1;
        }
    }
    order
        .into_iter()
        .filter_map(|key| reasons.remove(&key))
        .map(|reason| match reason {
            Reason::Inspection {
                issuer,
                pinned,
                unpinned,
            } => {
                let mut text = format!("TLS inspection by '{issuer}' on ");
                if !pinned.is_empty() {
                    text.push_str(&plural(pinned.len(), "pinned host"));
                }
                if !pinned.is_empty() && !unpinned.is_empty() {
                    text.push_str(" and ");
                }
                if !unpinned.is_empty() {
                    text.push_str(&plural(unpinned.len(), "unpinned host"));
                }
                text
            }
            Reason::Counted { text, count: 1 } => text,
            Reason::Counted { text, count } => format!("{text} ({count} checks)"),
        })
        .collect()
}

/// A reason from the verdict alone, for checks that set none.
fn generic_reason(item: &Item) -> String {
    match &item.check.observed.verdict {
        Verdict::ProxyAuthRequired => {
            "the proxy demands authentication (407) and the sensor, running as SYSTEM, has no credentials".into()
        }
        Verdict::ProxyRefused { status } => format!("the proxy refused MDE destinations with {status}"),
        Verdict::Timeout => "requests through the proxy timed out".into(),
        Verdict::Refused => "the proxy refused the TCP connection".into(),
        Verdict::Connected { .. } => format!("{}: unexpected HTTP answers", item.family.name()),
        other => format!("{}: {}", item.family.name(), other.label()),
    }
}

/// `1 noun` or `n nouns`.
pub(super) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::certify::model::{Family, sensor_check};
    use mdelab_sensor::Outcome;

    fn failed_item(family: Family, host: &str, pinned: bool, observed: Outcome) -> Item {
        Item {
            family,
            host: host.into(),
            pinned,
            check: sensor_check(
                host.into(),
                "CONNECT",
                Verdict::Connected { status: 200 },
                observed,
            ),
            reason: None,
        }
    }

    #[test]
    fn the_verdict_groups_inspection_by_issuer_and_counts_the_rest() {
        let inspected = |host: &str, pinned| {
            failed_item(
                Family::Inspection,
                host,
                pinned,
                Outcome::new(
                    Verdict::UnknownIssuer,
                    "x",
                    Some("Squid Lab Inspection CA".into()),
                ),
            )
        };
        let items = [
            inspected("a.example", true),
            inspected("b.example", true),
            inspected("a.example", true),
            inspected("c.example", false),
            failed_item(
                Family::Reach,
                "d.example",
                true,
                Outcome::new(Verdict::ProxyAuthRequired, "407", None),
            ),
            failed_item(
                Family::Reach,
                "e.example",
                true,
                Outcome::new(Verdict::ProxyAuthRequired, "407", None),
            ),
        ];
        let refs: Vec<&Item> = items.iter().collect();
        let line = verdict_line("http://p:1/", &refs);
        assert_eq!(
            line,
            "VERDICT: http://p:1 is NOT fit for MDE: 6 checks failed (TLS inspection by \
             'Squid Lab Inspection CA' on 2 pinned hosts and 1 unpinned host; the proxy demands \
             authentication (407) and the sensor, running as SYSTEM, has no credentials (2 checks))"
        );
        let ok = Item {
            check: sensor_check(
                "x".into(),
                "CONNECT",
                Verdict::Connected { status: 200 },
                Outcome::new(Verdict::Connected { status: 200 }, "ok", None),
            ),
            ..failed_item(
                Family::Reach,
                "x",
                true,
                Outcome::new(Verdict::Timeout, "", None),
            )
        };
        assert_eq!(
            verdict_line("http://p:1", &[&ok]),
            "VERDICT: http://p:1 is fit for MDE (1 check passed)"
        );
    }
}
