//! HTML for people who were not at the terminal: one self-contained file (inline CSS, no
//! script, no fetch of anything) that a security team can mail to a network team. The verdict
//! comes first; a section with several paths is a coloured grid (rows: client and target,
//! columns: paths), each cell holding its evidence in a `<details>` that opens on click;
//! a section with one path is a list. Every cell carries `data-verdict` and `data-as-expected`
//! so a browser test (or a person with the inspector) can read the result from the DOM.

use std::fmt::Write as _;

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

/// The page around a body: title, inline style, the legend.
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
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1b1b1b;max-width:80rem}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}\
.verdict{padding:.8rem 1rem;border-radius:.4rem;font-weight:600;font-size:1.1rem}\
.verdict.ok{background:#dff3e4;border:1px solid #2e7d32}\
.verdict.fail{background:#fde2e1;border:1px solid #c62828}\
table{border-collapse:collapse;margin:.5rem 0}\
th,td{border:1px solid #c8c8c8;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}\
th{background:#f1f1f1}\
td.pass{background:#dff3e4}td.pin{background:#fde2e1}td.untrusted{background:#ffe8cc}\
td.proxy{background:#e8e0f7}td.timeout{background:#fff6bf}td.refused{background:#e6e6e6}\
td.unexpected{outline:3px solid #c62828;outline-offset:-3px}\
details summary{cursor:pointer}details p{margin:.3rem 0 0;font-size:.8rem;max-width:36rem}\
.legend span{display:inline-block;padding:.1rem .5rem;margin-right:.4rem;border:1px solid #c8c8c8}\
footer{margin-top:3rem;color:#666;font-size:.8rem}";

/// The legend of the cell colours.
fn legend() -> String {
    "<p class=\"legend\"><span class=\"pass\" style=\"background:#dff3e4\">connected</span>\
     <span style=\"background:#fde2e1\">pin mismatch</span>\
     <span style=\"background:#ffe8cc\">untrusted chain</span>\
     <span style=\"background:#e8e0f7\">proxy refused / 407</span>\
     <span style=\"background:#fff6bf\">timeout</span>\
     <span style=\"background:#e6e6e6\">refused</span>\
     <span style=\"outline:3px solid #c62828\">not as expected</span></p>\n"
        .to_owned()
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
         title=\"{title}\"><details><summary>{mark} {label}</summary><p>{evidence}</p></details></td>",
        class = class(&c.observed.verdict),
        unexpected = if expected { "" } else { " unexpected" },
        verdict = escape(&c.observed.verdict.label()),
        title = escape(&c.observed.evidence),
        mark = if expected { "✓" } else { "✗" },
        label = escape(&label),
    )
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

/// The verdict banner: whether every check went as expected.
pub fn verdict_banner(passed: usize, failed: usize, text: &str) -> String {
    let (class, verdict) = if failed == 0 {
        ("ok", "PASS")
    } else {
        ("fail", "FAIL")
    };
    format!(
        "<p class=\"verdict {class}\" id=\"verdict\" data-verdict=\"{verdict}\" \
         data-passed=\"{passed}\" data-failed=\"{failed}\">{verdict}: {}</p>\n",
        escape(text)
    )
}

/// A [`Report`] as a page.
pub fn report(report: &Report) -> String {
    let (passed, failed) = report.counts();
    let mut body = verdict_banner(
        passed,
        failed,
        &format!("{passed} as expected, {failed} not as expected"),
    );
    for line in &report.summary {
        let _ = writeln!(body, "<p>{}</p>", escape(line));
    }
    body.push_str(&legend());
    for section in &report.sections {
        let _ = writeln!(body, "<section><h2>{}</h2>", escape(&section.title));
        let paths = section
            .checks
            .iter()
            .map(|c| c.path.as_str())
            .collect::<std::collections::BTreeSet<_>>();
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
}
