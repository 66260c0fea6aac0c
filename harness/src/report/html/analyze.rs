//! `analyze` as a page: the Client Analyzer's connectivity view. On top, whether every URL
//! group is reachable; then the group summary with each group's result id (`data-result`),
//! every URL's block as a row of its five method lines coloured by what the device saw, and
//! last the certificate-chain check (a 132027 names the issuer that replaced the chain, also
//! under the verdict).

use std::fmt::Write as _;

use super::{class, escape, page, verdict_banner};
use crate::commands::analyze::{Analysis, MethodResult};

/// The colour class of a result id: 1300xx reachable, anything else not.
fn result_class(result: Option<u32>) -> &'static str {
    match result {
        None => "none",
        Some(id) if id / 1000 == 130 => "pass",
        Some(_) => "pin",
    }
}

/// The analyzer's Windows view as a page.
pub fn analysis(a: &Analysis) -> String {
    let ok = a.all_groups_ok();
    let bad = a
        .groups
        .iter()
        .filter(|g| g.result.is_some_and(|id| id / 1000 != 130))
        .count();
    let good = a.groups.iter().filter(|g| g.result.is_some()).count() - bad;
    let text = if ok {
        "every URL group is reachable".to_owned()
    } else {
        format!(
            "{bad} of {} URL groups are not reachable (see the result ids)",
            good + bad
        )
    };
    let mut body = verdict_banner(good, bad, &text);
    let _ = writeln!(
        body,
        "<p class=\"meta\">Profile <strong>{}</strong> (region {}, {}); run as SYSTEM on {}</p>\n\
         <p class=\"meta\">Proxy config: Method={}, address={}</p>",
        escape(&a.profile),
        escape(&a.region.to_string()),
        escape(&a.connectivity.to_string()),
        escape(&a.device),
        escape(a.proxy_config.method),
        escape(&a.proxy_config.address),
    );
    let flagged: Vec<_> = a
        .chains
        .iter()
        .filter(|c| c.result == Some(132_027))
        .collect();
    if let Some(first) = flagged.first() {
        let issuer = first.issuer.as_deref().unwrap_or_default();
        let _ = writeln!(
            body,
            "<div class=\"issuer\" data-replacing-issuer=\"{name}\">132027: {n} host(s) present a \
             certificate issued by <strong class=\"issuer-name\">{name}</strong>, which no MDE \
             chain has: TLS inspection.</div>",
            name = escape(issuer),
            n = flagged.len(),
        );
    }

    body.push_str(
        "<h2>Connectivity summary</h2>\n<p class=\"meta\">A URL counts as reachable when one \
         of its lines shows (200), (400), (404) or Succeeded (405).</p>\n\
         <table class=\"groups\">\n<tr><th>result</th><th>group</th><th>reachable</th></tr>\n",
    );
    for g in &a.groups {
        let result = g.result.map_or_else(|| "-".to_owned(), |id| id.to_string());
        let _ = writeln!(
            body,
            "<tr data-group=\"{group}\" data-result=\"{result}\"><td class=\"{class}\">{result}\
             </td><td><a href=\"#group-{group}\">{group}</a></td><td>{} of {} URLs</td></tr>",
            g.urls - g.failed,
            g.urls,
            group = escape(g.group),
            class = result_class(g.result),
        );
    }
    body.push_str("</table>\n");

    body.push_str(
        "<h2>Every URL, five methods</h2>\n<p class=\"legend\"><span class=\"pass\">answered</span>\
         <span class=\"pin\">pin mismatch</span><span class=\"untrusted\">untrusted chain</span><span class=\"proxy\">proxy 407</span>\
         <span class=\"timeout\">timeout (12002)</span><span class=\"none\">doesn't exist</span></p>\n",
    );
    let mut group = "";
    for url in &a.urls {
        if url.group != group {
            if !group.is_empty() {
                body.push_str("</table>\n");
            }
            group = url.group;
            let _ = writeln!(
                body,
                "<h3 id=\"group-{g}\">{g}</h3>\n<table class=\"methods\">\n<tr><th>Testing URL</th>\
                 <th>1 - Default proxy</th><th>2 - Proxy auto discovery (WPAD)</th>\
                 <th>3 - Proxy disabled</th><th>4 - Named proxy</th><th>5 - Command line proxy</th>\
                 <th>reachable</th></tr>",
                g = escape(group)
            );
        }
        let _ = write!(
            body,
            "<tr data-url=\"{u}\" data-reachable=\"{r}\"><td>{u}</td>",
            u = escape(&url.url),
            r = url.reachable,
        );
        for m in &url.methods {
            body.push_str(&method_cell(m));
        }
        let _ = writeln!(
            body,
            "<td class=\"mark {}\">{}</td></tr>",
            if url.reachable { "pass" } else { "pin" },
            if url.reachable { "yes" } else { "no" }
        );
    }
    if !group.is_empty() {
        body.push_str("</table>\n");
    }
    let _ = writeln!(
        body,
        "<h2>MDE certificate chain validation</h2>\n<p class=\"meta\">Through {}; any \
         certificate accepted, no revocation check.</p>\n<table class=\"chains\">\n\
         <tr><th>result</th><th>host</th><th>issuer</th><th>detail</th></tr>",
        escape(&a.chain_proxy)
    );
    for c in &a.chains {
        let result = c
            .result
            .map_or_else(|| "OK".to_owned(), |id| id.to_string());
        let _ = writeln!(
            body,
            "<tr data-host=\"{host}\" data-result=\"{result}\"><td class=\"{class}\">{result}</td>\
             <td>{host}</td><td>{issuer}</td><td>{detail}</td></tr>",
            host = escape(&c.host),
            class = if c.result.is_none() { "pass" } else { "pin" },
            issuer = escape(c.issuer.as_deref().unwrap_or("-")),
            detail = escape(&c.detail),
        );
    }
    body.push_str("</table>\n");

    page(
        "MDE Client Analyzer connectivity view (mdelab reproduction)",
        &body,
    )
}

/// One method's line: the analyzer's text (a failure shortened to its WinHTTP error code, the
/// whole line behind a click), coloured by the device's verdict.
fn method_cell(m: &MethodResult) -> String {
    let short = match m.line.split_once(':') {
        Some((head, _)) if m.line.starts_with("Failed (") => format!("{head})"),
        _ => m.line.clone(),
    };
    let (class, verdict, evidence) = match &m.outcome {
        Some(outcome) => (
            class(&outcome.verdict),
            format!(" data-verdict=\"{}\"", escape(&outcome.verdict.label())),
            format!("<br>{}", escape(&outcome.evidence)),
        ),
        None => ("none", String::new(), String::new()),
    };
    if short == m.line && evidence.is_empty() {
        return format!(
            "<td class=\"{class}\" data-method=\"{}\"{verdict}>{}</td>",
            m.number,
            escape(&m.line)
        );
    }
    format!(
        "<td class=\"{class}\" data-method=\"{n}\"{verdict} title=\"{line}\"><details>\
         <summary>{short}</summary><p>{line}{evidence}</p></details></td>",
        n = m.number,
        line = escape(&m.line),
        short = escape(&short),
    )
}

#[cfg(test)]
mod tests {
    use mdelab_sensor::{Outcome, Verdict};

    use super::*;

    fn method(line: &str, outcome: Option<Outcome>) -> MethodResult {
        MethodResult {
            number: 5,
            name: "Command line proxy",
            line: line.into(),
            outcome,
        }
    }

    #[test]
    fn a_failed_line_shows_its_code_and_keeps_the_whole_line_behind_a_click() {
        let refused = method(
            "Failed (12175: WinHttpSendRequest: 12175: A security error occurred)",
            Some(Outcome::new(
                Verdict::UnknownIssuer,
                "issued by 'Squid <CA>'",
                None,
            )),
        );
        let cell = method_cell(&refused);
        assert!(
            cell.starts_with(
                "<td class=\"untrusted\" data-method=\"5\" data-verdict=\"unknown issuer\""
            ),
            "{cell}"
        );
        assert!(cell.contains("<summary>Failed (12175)</summary>"), "{cell}");
        assert!(
            cell.contains("A security error occurred)<br>issued by &#39;Squid &lt;CA&gt;&#39;")
        );
        assert_eq!(
            method_cell(&method("Doesn't exist", None)),
            "<td class=\"none\" data-method=\"5\">Doesn&#39;t exist</td>"
        );
    }
}
