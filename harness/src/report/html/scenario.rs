//! `scenario run` as a page: per scenario and phase, which route each service took and which
//! proxy carried it, drawn as a small flow (device → proxies → cloud) beside the outcome and
//! what the write-up expects. Each row carries `data-service`, `data-carried-by` (the proxies
//! whose access logs have the request, `→` between them; empty for none) and
//! `data-as-expected`.

use std::fmt::Write as _;

use mdelab_sensor::Verdict;

use super::{class, escape, mark, page, verdict_banner};
use crate::commands::scenario::model::{PhaseReport, ScenarioReport, ServiceRow};
use crate::report::scenario::{expected_label, route_label};

/// One or several scenario runs as a page.
pub fn scenarios(reports: &[ScenarioReport]) -> String {
    let (passed, failed) = reports.iter().fold((0, 0), |(p, f), r| {
        let (rp, rf) = r.counts();
        (p + rp, f + rf)
    });
    let text = format!(
        "{passed} as expected, {failed} not as expected ({})",
        if failed == 0 {
            "the lab reproduces the write-up"
        } else {
            "see the rows marked ✗"
        }
    );
    let mut body = verdict_banner(passed, failed, &text);
    body.push_str(
        "<p class=\"meta\">Each row is one service of the emulated sensor: the proxy settings it \
         followed, the proxies that carried it according to their own access logs, and the \
         outcome on the device, against Microsoft's lab write-up.</p>\n",
    );
    if reports.len() > 1 {
        body.push_str(
            "<table class=\"families\">\n<tr><th>scenario</th><th>title</th>\
             <th>as expected</th><th>not as expected</th></tr>\n",
        );
        for r in reports {
            let (p, f) = r.counts();
            let _ = writeln!(
                body,
                "<tr class=\"{class}\"><td><a href=\"#scenario-{name}\">{name}</a></td>\
                 <td>{title}</td><td class=\"count\">{p}</td><td class=\"count\">{f}</td></tr>",
                class = if f == 0 { "ok" } else { "fail" },
                name = escape(&r.name),
                title = escape(&r.title),
            );
        }
        body.push_str("</table>\n");
    }
    body.push_str(
        "<p class=\"legend\"><span class=\"pass\">connected</span>\
         <span class=\"pin\">pin mismatch</span><span class=\"proxy\">proxy 407</span>\
         <span class=\"timeout\">timeout</span><span class=\"refused\">refused / error</span>\
         <span class=\"node proxy-node\">PROXnn</span> a proxy whose access log has the request\
         </p>\n",
    );
    for report in reports {
        body.push_str(&scenario(report));
    }
    let title = match reports {
        [one] => format!("mdelab scenario run: {}", one.name),
        _ => format!("mdelab scenario run: {} scenarios", reports.len()),
    };
    page(&title, &body)
}

/// One scenario: what it reproduces, its profile, its phases.
fn scenario(report: &ScenarioReport) -> String {
    let mut out = format!(
        "<section class=\"scenario\" id=\"scenario-{name}\" data-scenario=\"{name}\" \
         data-as-expected=\"{ok}\">\n<h2>Scenario {name}: {title}</h2>\n\
         <p class=\"meta\">Source: {source}</p>\n<p class=\"meta\">Write-up: {writeup}</p>\n\
         <details><summary>Machine profile</summary><ul>",
        name = escape(&report.name),
        ok = report.all_as_expected(),
        title = escape(&report.title),
        source = escape(&report.source),
        writeup = escape(&report.writeup),
    );
    for line in &report.profile {
        let _ = write!(out, "<li>{}</li>", escape(line));
    }
    out.push_str("</ul></details>\n");
    for (n, phase) in report.phases.iter().enumerate() {
        let heading = if report.phases.len() > 1 {
            format!("Phase {}: {}", n + 1, phase.title)
        } else {
            format!("Phase: {}", phase.title)
        };
        let _ = writeln!(out, "<h3>{}</h3>", escape(&heading));
        out.push_str(&phase_table(phase, &report.device_ip));
    }
    out.push_str("</section>\n");
    out
}

/// One phase: a row per service, then the event cache and the gateway.
fn phase_table(phase: &PhaseReport, device_ip: &str) -> String {
    let mut out = String::from(
        "<table class=\"routes\">\n<tr><th>service</th><th>context</th>\
         <th>settings followed</th><th>carried by (device → proxy → cloud)</th>\
         <th>outcome</th><th>write-up expects (route, proxies, outcome)</th><th></th></tr>\n",
    );
    for row in &phase.rows {
        out.push_str(&service_row(row));
    }
    out.push_str("</table>\n");
    let c = &phase.cache;
    let _ = writeln!(
        out,
        "<p class=\"meta\" data-cache-as-expected=\"{ok}\">{mark} Event cache: {} generated, {} \
         still cached, {} accepted by the cloud (expected {} cached).</p>",
        c.generated,
        c.cached,
        c.accepted_by_cloud,
        c.expected_cached,
        ok = c.as_expected,
        mark = mark(c.as_expected),
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\">Gateway: dropped {} direct connection(s) from the device ({}).</p>",
        phase.gateway_dropped,
        escape(device_ip)
    );
    out
}

/// One service: its route as a flow, its outcome with the why behind a click.
fn service_row(row: &ServiceRow) -> String {
    let via = row.via();
    let mut flow = String::from("<div class=\"flow\"><span class=\"node device\">device</span>");
    if row.hops.is_empty() {
        flow.push_str(
            "<span class=\"arrow\">→</span><span class=\"node direct\">direct (no proxy)</span>",
        );
    }
    for hop in &row.hops {
        let _ = write!(
            flow,
            "<span class=\"arrow\">→</span><span class=\"node {kind}\" data-proxy=\"{proxy}\" \
             title=\"{outcome}\">{label}</span>",
            kind = if hop.logged() { "proxy-node" } else { "direct" },
            proxy = escape(&hop.proxy),
            outcome = escape(&hop.outcome),
            label = escape(&hop.label()),
        );
    }
    // The cloud is reached only when the device got an answer from it.
    flow.push_str(match row.outcome.verdict {
        Verdict::Connected { .. } => {
            "<span class=\"arrow\">→</span><span class=\"node cloud\">cloud</span></div>"
        }
        _ => {
            "<span class=\"arrow\">→</span><span class=\"node stopped\" \
             title=\"the request did not reach the cloud\">✗ cloud</span></div>"
        }
    });
    let mut why = escape(&row.reason);
    for note in &row.notes {
        let _ = write!(why, "<br>{}", escape(note));
    }
    let _ = write!(why, "<br>{}", escape(&row.outcome.evidence));
    for hop in row.hops.iter().filter(|h| h.tls.is_some()) {
        let _ = write!(
            why,
            "<br>{}: {}",
            escape(&hop.proxy),
            escape(hop.tls.as_deref().unwrap_or_default())
        );
    }
    format!(
        "<tr class=\"{row_class}\" data-service=\"{service}\" data-carried-by=\"{via}\" \
         data-as-expected=\"{ok}\"><td>{service}</td><td>{context}</td>\
         <td class=\"route\">{route}</td><td>{flow}</td>\
         <td class=\"{class}\" data-verdict=\"{verdict}\"><details><summary>{verdict}</summary>\
         <p>{why}</p></details></td><td>{expected}</td><td class=\"mark\">{mark}</td></tr>\n",
        row_class = if row.as_expected { "ok" } else { "unexpected" },
        service = escape(row.service.name()),
        via = escape(&via.join(" → ")),
        ok = row.as_expected,
        context = escape(row.context.name()),
        route = escape(&route_label(&row.route)),
        class = class(&row.outcome.verdict),
        verdict = escape(&row.outcome.verdict.label()),
        expected = escape(&expected_label(&row.expected)),
        mark = mark(row.as_expected),
    )
}
