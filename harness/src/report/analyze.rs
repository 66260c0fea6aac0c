//! The analyzer's views, rendered from its model: the Windows Client Analyzer's text
//! ([`Analysis::text`]: `Testing URL : …`, five methods per URL, the group summary, the
//! certificate-chain check), its JSON ([`Analysis::json`]), and the macOS/Linux
//! `mdatp connectivity test` text ([`MdatpReport::text`]).
//!
//! The summary and chain lines keep the analyzer's fixed layout: the result id in a 7-character
//! first column (and the group name in an 18-character one), which the column aligner, sizing
//! columns to their content, would not reproduce; the chain check's host column is aligned by
//! [`columns`].

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use super::json;
use super::table::columns;
use crate::commands::analyze::{Analysis, ChainResult, MdatpReport};

impl Analysis {
    /// The analyzer's text.
    pub fn text(&self) -> String {
        let mut out = String::from("MDE Client Analyzer connectivity view (mdelab reproduction)\n");
        let _ = writeln!(
            out,
            "Profile: {} (region {}, {}); run as SYSTEM on {}",
            self.profile, self.region, self.connectivity, self.device
        );
        let _ = writeln!(
            out,
            "Proxy config: Method={}, address={}",
            self.proxy_config.method, self.proxy_config.address
        );
        for url in &self.urls {
            let _ = write!(out, "\nTesting URL : {}\n", url.url);
            for m in &url.methods {
                let _ = writeln!(out, "{} - {}: {}", m.number, m.name, m.line);
            }
        }
        out.push_str(
            "\nConnectivity summary (a URL counts as reachable when one of its lines shows (200), \
             (400), (404) or Succeeded (405))\n",
        );
        for g in &self.groups {
            let result = g.result.map_or_else(|| "-".to_owned(), |id| id.to_string());
            let verdict = format!("{} of {} URLs reachable", g.urls - g.failed, g.urls);
            let _ = writeln!(out, "  {result:<7} {:<18} {verdict}", g.group);
        }
        let _ = write!(
            out,
            "\nMDE certificate chain validation (through {}; any certificate accepted, no \
             revocation check)\n",
            self.chain_proxy
        );
        let hosts: Vec<[&str; 2]> = self
            .chains
            .iter()
            .map(|c| [c.host.as_str(), c.detail.as_str()])
            .collect();
        for (c, line) in self.chains.iter().zip(columns("", &hosts).lines()) {
            let result = c
                .result
                .map_or_else(|| "OK".to_owned(), |id| id.to_string());
            let _ = writeln!(out, "  {result:<7} {line}");
        }
        let flagged: Vec<&ChainResult> = self
            .chains
            .iter()
            .filter(|c| c.result == Some(132_027))
            .collect();
        if let Some(first) = flagged.first() {
            let _ = writeln!(
                out,
                "  132027: {} host(s) present a certificate issued by '{}', which no MDE chain has: TLS inspection",
                flagged.len(),
                first.issuer.as_deref().unwrap_or_default()
            );
        }
        let ok = self.all_groups_ok();
        let _ = write!(
            out,
            "\n{}\n",
            if ok {
                "Every URL group is reachable."
            } else {
                "Some URL groups are not reachable (see the result ids above)."
            }
        );
        out
    }

    /// The view as JSON, with `all_groups_ok`.
    pub fn json(&self) -> Result<String> {
        #[derive(Serialize)]
        struct Wrapped<'a> {
            #[serde(flatten)]
            analysis: &'a Analysis,
            all_groups_ok: bool,
        }
        json::pretty(&Wrapped {
            analysis: self,
            all_groups_ok: self.all_groups_ok(),
        })
    }
}

impl MdatpReport {
    /// The text `mdatp connectivity test` prints.
    pub fn text(&self) -> String {
        let mut out = format!(
            "mdatp connectivity test (mdelab reproduction), proxy: {}\n",
            self.proxy
        );
        for u in &self.urls {
            let _ = writeln!(
                out,
                "Testing connection with {} ... [{}]",
                u.url,
                if u.ok { "OK" } else { "ERROR" }
            );
            if let Some(reason) = &u.reason {
                let _ = writeln!(out, "    {reason}");
            }
        }
        out
    }
}
