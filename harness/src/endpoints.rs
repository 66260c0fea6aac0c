//! `mdelab endpoints`: the catalog, filtered, as a table or JSON.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use mdelab_catalog::{Catalog, Connectivity, Endpoint, Region};

/// Output format of the listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned text.
    #[default]
    Table,
    /// JSON array of endpoints.
    Json,
}

/// The endpoints matching the filters (region `None` = every region; model `None` = both).
pub fn select(region: Option<Region>, model: Option<Connectivity>) -> Vec<&'static Endpoint> {
    Catalog::mde()
        .endpoints()
        .iter()
        .filter(|e| region.is_none_or(|r| e.region.is_none_or(|er| er == r)))
        .filter(|e| model.is_none_or(|m| e.models.includes(m)))
        .collect()
}

/// Renders the listing.
pub fn render(endpoints: &[&Endpoint], format: ListFormat) -> Result<String> {
    match format {
        ListFormat::Json => {
            serde_json::to_string_pretty(endpoints).context("failed to serialise the catalog")
        }
        ListFormat::Table => {
            let rows: Vec<[String; 8]> = endpoints
                .iter()
                .map(|e| {
                    [
                        e.service.name().to_owned(),
                        e.region.map_or("ww".into(), |r| r.name().to_owned()),
                        format!("{:?}", e.models).to_lowercase(),
                        e.profile.map_or("-".into(), |p| p.name().to_owned()),
                        if e.pinned { "yes" } else { "no" }.to_owned(),
                        e.probe.method.as_str().to_owned(),
                        e.url(),
                        match e.probe.body {
                            Some(body) => format!("{} {body:?}", e.probe.status),
                            None => e.probe.status.to_string(),
                        },
                    ]
                })
                .collect();
            let header = [
                "SERVICE", "REGION", "MODEL", "PROFILE", "PINNED", "METHOD", "URL", "EXPECT",
            ];
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            let mut out = String::new();
            let mut line = |cells: &[&str]| {
                let mut s = String::new();
                for (i, cell) in cells.iter().enumerate() {
                    let _ = write!(s, "{cell:<width$}  ", width = widths[i]);
                }
                out.push_str(s.trim_end());
                out.push('\n');
            };
            line(&header);
            for row in &rows {
                line(&row.iter().map(String::as_str).collect::<Vec<_>>());
            }
            let _ = writeln!(out, "{} endpoints", rows.len());
            Ok(out)
        }
    }
}
