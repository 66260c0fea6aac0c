//! HTML for people who were not at the terminal: one self-contained file (inline CSS, no
//! script, no fetch of anything) that a security team can mail to a network team. The verdict
//! comes first (`id="verdict"`, `data-verdict="PASS|FAIL"`).
//!
//! - [`report`]: a [`Report`] (`demo`, `certify`, the network-protection scenarios). Under the
//!   verdict, a table of the sections (the families of checks) with their counts; then each
//!   section: with several paths a coloured grid (rows: client and target, columns: paths),
//!   with one path a list. Each cell holds its evidence in a `<details>` that opens on click
//!   and carries `data-verdict`, `data-as-expected`, `data-client`, `data-target` and
//!   `data-path`, so a browser test (or a person with the inspector) can read it from the DOM.
//!   A summary line starting `VERDICT:` (certify's) becomes the banner, and an issuer that
//!   replaced the lab's chain on a failed check is named under it (`data-replacing-issuer`).
//! - [`scenarios`]: `scenario run`, per scenario and phase the route-per-service diagram
//!   (service → route → carrying proxy → outcome).
//! - [`analysis`]: `analyze`, the Client Analyzer's blocks (group result ids, the chain check,
//!   the five methods of every URL).

mod analyze;
mod scenario;

pub use analyze::analysis;
pub use scenario::scenarios;

use std::fmt::Write as _;

use mdelab_certs::pki::{AZURE_ISSUING_NAME, PINNED_ISSUING_NAME};
use mdelab_sensor::Verdict;

use super::{Check, Report, Section};

/// The colour class of a verdict: what kind of result it is, not whether it was expected.
fn class(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Connected { .. } => "pass",
        Verdict::PinMismatch => "pin",
        Verdict::UnknownIssuer | Verdict::NameMismatch | Verdict::Expired => "untrusted",
        Verdict::ProxyAuthRequired | Verdict::ProxyRefused { .. } => "proxy",
        Verdict::Timeout => "timeout",
        Verdict::Rows { .. } => "rows",
        _ => "refused",
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page around a body: title, inline style, the footer.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         {body}\n<footer>Made by mdelab, an offline imitation of the Microsoft Defender for \
         Endpoint cloud. Nothing in this page was fetched from a network.</footer>\n\
         </body>\n</html>\n",
        title = escape(title),
    )
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem 2rem;color:#1b1b1b;max-width:90rem}\
h1{font-size:1.45rem;margin:0 0 .8rem}h2{font-size:1.15rem;margin-top:1.8rem}h3{font-size:1rem;margin:1.2rem 0 .3rem}\
.verdict{padding:.8rem 1rem;border-radius:.4rem;font-weight:600;font-size:1.15rem;margin:.5rem 0}\
.verdict.ok{background:#dff3e4;border:2px solid #2e7d32}\
.verdict.fail{background:#fde2e1;border:2px solid #c62828}\
.verdict .tag{display:inline-block;padding:.05rem .5rem;margin-right:.6rem;border-radius:.25rem;color:#fff}\
.verdict.ok .tag{background:#2e7d32}.verdict.fail .tag{background:#c62828}\
.issuer{padding:.6rem 1rem;border-left:6px solid #c62828;background:#fff4f4;margin:.5rem 0}\
.issuer strong{font-size:1.1rem}\
table{border-collapse:collapse;margin:.5rem 0}\
th,td{border:1px solid #c8c8c8;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.85rem}\
th{background:#f1f1f1}\
.pass{background:#dff3e4}.pin{background:#fde2e1}.untrusted{background:#ffe8cc}\
.proxy{background:#e8e0f7}.timeout{background:#fff6bf}.refused{background:#e6e6e6}.rows{background:#dcecfb}\
.none{background:#fafafa;color:#777}\
td.unexpected,tr.unexpected td.mark{outline:3px solid #c62828;outline-offset:-3px}\
tr.ok td.count{background:#dff3e4}tr.fail td.count{background:#fde2e1}\
details summary{cursor:pointer;white-space:nowrap}details p{margin:.3rem 0 0;font-size:.8rem;max-width:36rem}\
.legend span{display:inline-block;padding:.1rem .5rem;margin-right:.4rem;border:1px solid #c8c8c8;font-size:.85rem}\
.meta{color:#444;font-size:.9rem;margin:.2rem 0}.summary{margin:.2rem 0}\
.flow{display:flex;align-items:center;gap:.3rem;flex-wrap:nowrap}\
.node{display:inline-block;padding:.1rem .45rem;border:1px solid #888;border-radius:.3rem;background:#fff;white-space:nowrap}\
.node.proxy-node{border-color:#5e35b1;background:#ede7f6;font-weight:600}\
.node.direct{border-style:dashed}.node.stopped{border-style:dashed;color:#999;text-decoration:line-through}.node.device,.node.cloud{background:#f1f1f1}\
.arrow{color:#666}.route{font-family:ui-monospace,monospace;font-size:.8rem}\
.mark{text-align:center;font-weight:700}\
code{font-size:.85rem}\
footer{margin-top:3rem;color:#666;font-size:.8rem}";

/// The legend of the cell colours.
fn legend() -> &'static str {
    "<p class=\"legend\"><span class=\"pass\">connected</span>\
     <span class=\"pin\">pin mismatch</span>\
     <span class=\"untrusted\">untrusted chain</span>\
     <span class=\"proxy\">proxy refused / 407</span>\
     <span class=\"timeout\">timeout</span>\
     <span class=\"refused\">refused / error</span>\
     <span style=\"outline:3px solid #c62828;outline-offset:-3px\">not as expected</span></p>\n"
}

/// One cell: the observed verdict, and the evidence behind a click.
fn cell(c: &Check) -> String {
    let expected = c.as_expected();
    let mut label = c.observed.verdict.label();
    if let Some(via) = &c.via {
        let _ = write!(label, " via {via}");
    }
    if !expected {
        let _ = write!(label, " (expected {})", c.expected.label());
    }
    let mut evidence = escape(&c.observed.evidence);
    if let Some(view) = &c.proxy_view {
        let _ = write!(evidence, "<br>proxy: {}", escape(view));
    }
    format!(
        "<td class=\"{class}{unexpected}\" data-verdict=\"{verdict}\" data-as-expected=\"{expected}\" \
         data-client=\"{client}\" data-target=\"{target}\" data-path=\"{path}\" title=\"{title}\">\
         <details><summary>{mark} {label}</summary><p>{evidence}</p></details></td>",
        class = class(&c.observed.verdict),
        unexpected = if expected { "" } else { " unexpected" },
        verdict = escape(&c.observed.verdict.label()),
        client = escape(&c.client),
        target = escape(&c.target),
        path = escape(&c.path),
        title = escape(&c.observed.evidence),
        mark = mark(expected),
        label = escape(&label),
    )
}

/// `✓` or `✗`.
fn mark(as_expected: bool) -> &'static str {
    if as_expected { "✓" } else { "✗" }
}

/// A section with several paths: rows of (client, target), a column per path.
fn grid(section: &Section) -> String {
    let (paths, rows) = section.axes();
    let mut out = String::from("<table class=\"matrix\">\n<tr><th>client</th><th>target</th>");
    for p in &paths {
        let _ = write!(out, "<th>{}</th>", escape(p));
    }
    out.push_str("</tr>\n");
    for (client, target) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td>",
            escape(client),
            escape(target)
        );
        for p in &paths {
            match section.cell(client, target, p) {
                Some(c) => out.push_str(&cell(c)),
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// A section with one path: one row per check.
fn list(section: &Section) -> String {
    let mut out = String::from(
        "<table class=\"list\">\n<tr><th>client</th><th>path</th><th>target</th>\
         <th>expected</th><th>observed</th></tr>\n",
    );
    for c in &section.checks {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            escape(&c.client),
            escape(&c.path),
            escape(&c.target),
            escape(&c.expected.label()),
            cell(c)
        );
    }
    out.push_str("</table>\n");
    out
}

/// The verdict banner: `PASS` when nothing failed, else `FAIL`, then `text`.
pub fn verdict_banner(passed: usize, failed: usize, text: &str) -> String {
    let (class, verdict) = if failed == 0 {
        ("ok", "PASS")
    } else {
        ("fail", "FAIL")
    };
    format!(
        "<p class=\"verdict {class}\" id=\"verdict\" data-verdict=\"{verdict}\" \
         data-passed=\"{passed}\" data-failed=\"{failed}\"><span class=\"tag\">{verdict}</span>{}</p>\n",
        escape(text)
    )
}

/// Whether an issuer is one of the lab's own issuing CAs (what an uninspected host serves).
fn is_lab_issuer(issuer: &str) -> bool {
    issuer == PINNED_ISSUING_NAME || issuer == AZURE_ISSUING_NAME
}

/// The issuers that replaced the lab's chain on checks that did not go as expected, each with
/// how many such checks it spoiled and their distinct targets, in order of first appearance.
fn replacing_issuers(report: &Report) -> Vec<(&str, usize, Vec<&str>)> {
    let mut found: Vec<(&str, usize, Vec<&str>)> = Vec::new();
    for c in report.sections.iter().flat_map(|s| &s.checks) {
        let Some(issuer) = c.observed.served_issuer.as_deref() else {
            continue;
        };
        if c.as_expected() || is_lab_issuer(issuer) {
            continue;
        }
        let at = match found.iter().position(|(i, _, _)| *i == issuer) {
            Some(at) => at,
            None => {
                found.push((issuer, 0, Vec::new()));
                found.len() - 1
            }
        };
        let (_, checks, targets) = &mut found[at];
        *checks += 1;
        if !targets.contains(&c.target.as_str()) {
            targets.push(&c.target);
        }
    }
    found
}

/// The table of sections (families of checks) with their counts, linking to each.
fn families(report: &Report) -> String {
    let mut out = String::from(
        "<table class=\"families\">\n<tr><th>family of checks</th><th>as expected</th>\
         <th>not as expected</th></tr>\n",
    );
    for (n, section) in report.sections.iter().enumerate() {
        let passed = section.checks.iter().filter(|c| c.as_expected()).count();
        let failed = section.checks.len() - passed;
        let _ = writeln!(
            out,
            "<tr class=\"{class}\" data-family=\"{title}\" data-failed=\"{failed}\">\
             <td><a href=\"#section-{n}\">{title}</a></td><td class=\"count\">{passed}</td>\
             <td class=\"count\">{failed}</td></tr>",
            class = if failed == 0 { "ok" } else { "fail" },
            title = escape(&section.title),
        );
    }
    out.push_str("</table>\n");
    out
}

/// A [`Report`] as a page: the verdict, the issuer that replaced the chain (if one did), the
/// other summary lines, the families, then every section.
pub fn report(report: &Report) -> String {
    let (passed, failed) = report.counts();
    let headline = report
        .summary
        .iter()
        .find_map(|line| line.strip_prefix("VERDICT: "));
    let counted = format!("{passed} as expected, {failed} not as expected");
    let mut body = verdict_banner(passed, failed, headline.unwrap_or(&counted));
    if headline.is_some() {
        let _ = writeln!(body, "<p class=\"meta\">{counted}</p>");
    }
    for (issuer, checks, targets) in replacing_issuers(report) {
        let _ = writeln!(
            body,
            "<div class=\"issuer\" data-replacing-issuer=\"{name}\">Certificate chain replaced by \
             <strong class=\"issuer-name\">{name}</strong> on {checks}: something on the path \
             inspects TLS. The sensor pins its keys, so it refuses that chain; exempt the MDE \
             hosts from inspection (splice or bypass them).\
             <details><summary>where</summary><p>{list}</p></details></div>",
            name = escape(issuer),
            checks = if checks == 1 {
                "1 failed check".to_owned()
            } else {
                format!("{checks} failed checks")
            },
            list = targets
                .iter()
                .map(|t| escape(t))
                .collect::<Vec<_>>()
                .join("<br>"),
        );
    }
    for line in report
        .summary
        .iter()
        .filter(|l| !l.starts_with("VERDICT: "))
    {
        let _ = writeln!(body, "<p class=\"summary\">{}</p>", escape(line));
    }
    if report.sections.len() > 1 {
        body.push_str(&families(report));
    }
    body.push_str(legend());
    for (n, section) in report.sections.iter().enumerate() {
        let _ = writeln!(
            body,
            "<section id=\"section-{n}\"><h2>{}</h2>",
            escape(&section.title)
        );
        let (paths, _) = section.axes();
        body.push_str(&if paths.len() > 1 {
            grid(section)
        } else {
            list(section)
        });
        body.push_str("</section>\n");
    }
    page(&report.title, &body)
}

#[cfg(test)]
mod tests {
    use mdelab_sensor::{Layer, Outcome};

    use super::*;

    fn check(path: &str, observed: Verdict, expected: Verdict) -> Check {
        Check {
            target: "command-and-control <b>".into(),
            path: path.into(),
            client: "sensor".into(),
            expected,
            observed: Outcome {
                verdict: observed,
                layer: Layer::TlsPin,
                evidence: "chain issued by 'Lab CA' & \"friends\"".into(),
                served_issuer: None,
            },
            proxy_view: None,
            via: None,
        }
    }

    #[test]
    fn a_report_is_one_escaped_page_with_its_verdict_and_cells() {
        let r = Report {
            title: "Pinning <demo>".into(),
            sections: vec![Section {
                title: "matrix".into(),
                checks: vec![
                    check(
                        "direct",
                        Verdict::Connected { status: 200 },
                        Verdict::Connected { status: 200 },
                    ),
                    check(
                        "inspect",
                        Verdict::PinMismatch,
                        Verdict::Connected { status: 200 },
                    ),
                ],
            }],
            summary: vec!["lesson".into()],
        };
        let html = report(&r);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<title>Pinning &lt;demo&gt;</title>"));
        assert!(html.contains("data-verdict=\"FAIL\" data-passed=\"1\" data-failed=\"1\""));
        assert!(html.contains("class=\"pin unexpected\""));
        assert!(html.contains("command-and-control &lt;b&gt;"));
        assert!(html.contains("&amp; &quot;friends&quot;"));
        assert!(!html.contains("<b>"), "unescaped text leaked");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing to fetch"
        );
    }

    #[test]
    fn a_verdict_line_is_the_banner_and_the_replacing_issuer_is_named() {
        let mut inspected = check(
            "CONNECT + TLS",
            Verdict::UnknownIssuer,
            Verdict::Connected { status: 200 },
        );
        inspected.observed.served_issuer = Some("Squid <CA>".into());
        let mut lab_chain = check(
            "CONNECT + TLS",
            Verdict::Timeout,
            Verdict::Connected { status: 200 },
        );
        lab_chain.target = "other".into();
        lab_chain.observed.served_issuer = Some(PINNED_ISSUING_NAME.into());
        let r = Report {
            title: "certify".into(),
            sections: vec![Section {
                title: "TLS inspection".into(),
                checks: vec![inspected, lab_chain],
            }],
            summary: vec![
                "a note".into(),
                "VERDICT: http://p:1 is NOT fit for MDE: 2 checks failed".into(),
            ],
        };
        let html = report(&r);
        let banner = html.find("id=\"verdict\"").unwrap();
        assert!(html[banner..].contains(
            "data-verdict=\"FAIL\" data-passed=\"0\" data-failed=\"2\"><span class=\"tag\">FAIL</span>\
             http://p:1 is NOT fit for MDE: 2 checks failed</p>"
        ));
        assert!(banner < html.find("a note").unwrap(), "the verdict first");
        assert!(!html.contains("VERDICT:"));
        assert_eq!(html.matches("data-replacing-issuer=").count(), 1, "{html}");
        assert!(html.contains(
            "data-replacing-issuer=\"Squid &lt;CA&gt;\">Certificate chain replaced by \
             <strong class=\"issuer-name\">Squid &lt;CA&gt;</strong> on 1 failed check:"
        ));
    }
}
