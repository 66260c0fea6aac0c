//! Reports: the models every command's output is made of, and their one renderer.
//!
//! A command builds a model ([`Report`] of [`Section`]s of [`Check`]s, an endpoint listing, a
//! [`Grid`] of hunting results) and this module renders it: [`table`] for people (the one
//! column aligner), [`json`] for machines, [`junit`] for CI dashboards (the one JUnit writer),
//! [`csv`] for spreadsheets, [`html`] for a page to hand over. The views of one command's own
//! model live here too: [`analyze`] (the Windows Client Analyzer and mdatp text) and
//! [`scenario`] (the scenario tables, JSON, JUnit and listing).
//!
//! A report holds no ports, times or hashes, so a snapshot of it is stable across runs.

pub mod analyze;
pub mod csv;
pub mod html;
pub mod json;
pub mod junit;
pub mod scenario;
pub mod table;

use anyhow::Result;
use serde::Serialize;

use mdelab_sensor::{Outcome, Verdict};

/// Output format of a report (its command-line spelling is in `commands::args`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for a terminal.
    #[default]
    Table,
    /// JSON.
    Json,
    /// JUnit XML.
    Junit,
    /// One self-contained HTML page (no script, nothing fetched), to hand over.
    Html,
}

/// Output format of a listing (`mdelab endpoints`, `mdelab scenario list`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListFormat {
    /// Aligned text.
    #[default]
    Table,
    /// JSON array of endpoints.
    Json,
}

/// One expected-vs-observed comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The row: what was reached (e.g. "command-and-control" or a URL).
    pub target: String,
    /// The column: the path taken (e.g. "direct", "inspect (CA trusted)").
    pub path: String,
    /// Which client ("sensor", "browser").
    pub client: String,
    /// The verdict the lab expects.
    pub expected: Verdict,
    /// What happened.
    pub observed: Outcome,
    /// What the proxy on the path saw, from its own access log (spliced, inspected and how the
    /// client's handshake ended, refused), when that adds to the client's side of the story.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_view: Option<String>,
    /// The proxies that carried it, when known (shown in matrix cells: `ok 200 via PROX03`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl Check {
    /// Whether the observed verdict is the expected one.
    pub fn as_expected(&self) -> bool {
        self.observed.verdict == self.expected
    }
}

/// A titled group of checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Title.
    pub title: String,
    /// The checks, in run order.
    pub checks: Vec<Check>,
}

impl Section {
    /// The axes of the section as a matrix: its paths (columns) and its (client, target) rows,
    /// each in the order the checks ran.
    pub fn axes(&self) -> (Vec<&str>, Vec<(&str, &str)>) {
        let mut paths: Vec<&str> = Vec::new();
        let mut rows: Vec<(&str, &str)> = Vec::new();
        for c in &self.checks {
            if !paths.contains(&c.path.as_str()) {
                paths.push(&c.path);
            }
            if !rows.contains(&(c.client.as_str(), c.target.as_str())) {
                rows.push((&c.client, &c.target));
            }
        }
        (paths, rows)
    }

    /// The check in one cell of the matrix, if that combination ran.
    pub fn cell(&self, client: &str, target: &str, path: &str) -> Option<&Check> {
        self.checks
            .iter()
            .find(|c| c.client == client && c.target == target && c.path == path)
    }
}

/// A whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Title.
    pub title: String,
    /// Sections.
    pub sections: Vec<Section>,
    /// Closing lines: the lesson.
    pub summary: Vec<String>,
}

impl Report {
    /// How many checks got their expected verdict, and how many did not.
    pub fn counts(&self) -> (usize, usize) {
        let all = self.sections.iter().flat_map(|s| &s.checks);
        let passed = all.clone().filter(|c| c.as_expected()).count();
        (passed, all.count() - passed)
    }

    /// Whether every check got its expected verdict.
    pub fn all_as_expected(&self) -> bool {
        self.counts().1 == 0
    }

    /// Renders the report.
    pub fn render(&self, format: Format) -> Result<String> {
        match format {
            Format::Table => Ok(table::report(self)),
            Format::Json => json::with_counts(self, self.counts()),
            Format::Junit => junit::report(self),
            Format::Html => Ok(html::report(self)),
        }
    }
}

/// Rows of text cells under named columns, e.g. an advanced hunting answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grid {
    /// Column names.
    pub columns: Vec<String>,
    /// The rows, one text cell per column.
    pub rows: Vec<Vec<String>>,
}
