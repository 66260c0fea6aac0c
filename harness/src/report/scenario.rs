//! Scenario reports rendered: the table of a scenario run (per phase a row per service, the
//! event cache, the gateway's count, the why lines), the JSON of one or several runs, their
//! JUnit suites, and the listing of `mdelab scenario list`.
//!
//! Tables go through the column aligner ([`align`], [`columns`]); the listing's
//! network-protection lines keep the fixed layout they have always had: their names are wider
//! than the proxy-precedence names' column and overflow it.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};

use super::Format;
use super::junit::{self, Case, Failure, Suite};
use super::table::{align, columns, heading, mark};
use super::{ListFormat, json};
use crate::commands::scenario::model::{ExpectedView, ScenarioList, ScenarioReport};
use crate::commands::scenario::rig::Hop;
use mdelab_sensor::route::RouteChoice;

/// A route: its settings, ` → ` between them.
pub(super) fn route_label(route: &[RouteChoice]) -> String {
    let names: Vec<&str> = route.iter().map(|r| r.name()).collect();
    names.join(" → ")
}

/// The proxies on the way, as their access logs saw it, or `-`.
fn via_label(hops: &[Hop]) -> String {
    if hops.is_empty() {
        return "-".into();
    }
    let labels: Vec<String> = hops.iter().map(Hop::label).collect();
    labels.join(" → ")
}

/// The write-up's expectation: route, proxies, outcome.
pub(super) fn expected_label(e: &ExpectedView) -> String {
    let via = if e.via.is_empty() {
        "-".to_owned()
    } else {
        e.via.join(" → ")
    };
    format!("{}, {via}, {}", route_label(&e.route), e.verdict.label())
}

/// Renders reports (one or several scenarios).
pub fn render(reports: &[ScenarioReport], format: Format) -> Result<String> {
    match format {
        Format::Table => Ok(reports.iter().map(table).collect::<Vec<_>>().join("\n")),
        Format::Json => {
            let wrapped: Vec<_> = reports
                .iter()
                .map(|report| json::WithCounts::new(report, report.counts()))
                .collect();
            let value = if wrapped.len() == 1 {
                serde_json::to_value(&wrapped[0])
            } else {
                serde_json::to_value(&wrapped)
            }
            .context("failed to serialise the scenario report")?;
            serde_json::to_string_pretty(&value).context("failed to serialise the scenario report")
        }
        Format::Junit => junit_report(reports),
        Format::Html => Ok(super::html::scenarios(reports)),
    }
}

/// The table of one scenario.
pub fn table(report: &ScenarioReport) -> String {
    let mut out = heading(&format!("Scenario {}: {}", report.name, report.title));
    let _ = writeln!(out, "Source:   {}", report.source);
    let _ = writeln!(out, "Write-up: {}", report.writeup);
    out.push_str("Profile:\n");
    for line in &report.profile {
        let _ = writeln!(out, "  {line}");
    }
    for (n, phase) in report.phases.iter().enumerate() {
        let heading = if report.phases.len() > 1 {
            format!("Phase {}: {}", n + 1, phase.title)
        } else {
            format!("Phase: {}", phase.title)
        };
        let _ = write!(out, "\n{heading}\n");
        let header = [
            "SERVICE",
            "CONTEXT",
            "ROUTE",
            "CARRIED BY",
            "OUTCOME",
            "EXPECTED (route, proxies, outcome)",
            "",
        ];
        let rows: Vec<Vec<String>> = phase
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.service.name().to_owned(),
                    r.context.name().to_owned(),
                    route_label(&r.route),
                    via_label(&r.hops),
                    r.outcome.verdict.label(),
                    expected_label(&r.expected),
                    mark(r.as_expected).to_owned(),
                ]
            })
            .collect();
        out.push_str(&align("  ", &header, &rows));
        let c = &phase.cache;
        let _ = writeln!(
            out,
            "  event cache: {} generated, {} still cached, {} accepted by the cloud (expected {} cached)  {}",
            c.generated,
            c.cached,
            c.accepted_by_cloud,
            c.expected_cached,
            mark(c.as_expected)
        );
        let _ = writeln!(
            out,
            "  gateway: dropped {} direct connection(s) from the device ({})",
            phase.gateway_dropped, report.device_ip
        );
        out.push_str("  why:\n");
        for r in &phase.rows {
            let mut line = format!("{}: {}", r.service, r.reason);
            for note in &r.notes {
                let _ = write!(line, "; {note}");
            }
            let _ = write!(line, "; {}", r.outcome.evidence);
            for hop in r.hops.iter().filter(|h| h.tls.is_some()) {
                let _ = write!(
                    line,
                    " [{}: {}]",
                    hop.proxy,
                    hop.tls.as_deref().unwrap_or_default()
                );
            }
            let _ = writeln!(out, "  - {line}");
        }
    }
    let (passed, failed) = report.counts();
    let _ = write!(
        out,
        "\n{passed} as expected, {failed} not as expected ({})\n",
        if failed == 0 {
            "the lab reproduces the write-up"
        } else {
            "see the rows marked !!"
        }
    );
    out
}

/// One suite per scenario phase: a case per service, and one for the event cache.
fn junit_report(reports: &[ScenarioReport]) -> Result<String> {
    let mut suites = Vec::new();
    for report in reports {
        for (n, phase) in report.phases.iter().enumerate() {
            let cases = phase
                .rows
                .iter()
                .map(|r| {
                    let observed = format!(
                        "{}, {}, {}",
                        route_label(&r.route),
                        via_label(&r.hops),
                        r.outcome.verdict.label()
                    );
                    (
                        r.service.name().to_owned(),
                        r.as_expected,
                        observed,
                        expected_label(&r.expected),
                        r.outcome.evidence.clone(),
                    )
                })
                .chain([(
                    "event-cache".to_owned(),
                    phase.cache.as_expected,
                    format!(
                        "{} cached, {} accepted by the cloud",
                        phase.cache.cached, phase.cache.accepted_by_cloud
                    ),
                    format!("{} cached", phase.cache.expected_cached),
                    String::new(),
                )])
                .map(|(name, ok, observed, expected, evidence)| Case {
                    name,
                    classname: format!("mdelab.scenario.{}", report.name),
                    failure: (!ok).then(|| Failure {
                        message: format!("expected {expected}, observed {observed}"),
                        description: evidence,
                    }),
                    system_out: observed,
                })
                .collect();
            suites.push(Suite {
                name: format!("{} (phase {}: {})", report.name, n + 1, phase.title),
                cases,
            });
        }
    }
    junit::render("mdelab scenarios", &suites)
}
/// `mdelab scenario list`: aligned text, or the named scenarios as a JSON array.
pub fn list(list: &ScenarioList, format: ListFormat) -> Result<String> {
    match format {
        ListFormat::Json => json::pretty(&list.scenarios),
        ListFormat::Table => {
            let rows: Vec<[String; 2]> = list
                .scenarios
                .iter()
                .flat_map(|s| {
                    [
                        [s.scenario.name.to_owned(), s.scenario.title.to_owned()],
                        [
                            String::new(),
                            format!("({}) {}", s.scenario.source, s.scenario.writeup),
                        ],
                    ]
                })
                .collect();
            let mut out = columns("", &rows);
            let width = list
                .scenarios
                .iter()
                .map(|s| s.scenario.name.len())
                .max()
                .unwrap_or(0);
            for (name, mode) in &list.network_protection {
                out.push_str(&format!(
                    "{name:<width$}  network protection {mode}: the user browses behind a forward proxy\n{:<width$}  (MDE docs: investigate connection events behind forward proxies)\n",
                    ""
                ));
            }
            out.push_str(&format!(
                "{} scenarios; run one with `mdelab scenario run NAME` (`all` runs the {} proxy-precedence ones)\n",
                list.scenarios.len() + list.network_protection.len(),
                list.scenarios.len()
            ));
            Ok(out)
        }
    }
}
