//! Reports: a deterministic record of expected vs observed verdicts, rendered as a table for
//! people, JSON for machines and JUnit XML for CI dashboards.
//!
//! A report holds no ports, times or hashes, so a snapshot of it is stable across runs.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use mdelab_sensor::{Outcome, Verdict};

/// Output format of a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for a terminal.
    #[default]
    Table,
    /// JSON.
    Json,
    /// JUnit XML.
    Junit,
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
            Format::Table => Ok(self.table()),
            Format::Json => {
                #[derive(Serialize)]
                struct Wrapped<'a> {
                    #[serde(flatten)]
                    report: &'a Report,
                    passed: usize,
                    failed: usize,
                    all_as_expected: bool,
                }
                let (passed, failed) = self.counts();
                let wrapped = Wrapped {
                    report: self,
                    passed,
                    failed,
                    all_as_expected: failed == 0,
                };
                serde_json::to_string_pretty(&wrapped).context("failed to serialise the report")
            }
            Format::Junit => self.junit(),
        }
    }

    fn table(&self) -> String {
        let mut out = format!(
            "{}\n{}\n",
            self.title,
            "=".repeat(self.title.chars().count())
        );
        for section in &self.sections {
            let _ = write!(out, "\n{}\n", section.title);
            let paths: BTreeSet<&str> = section.checks.iter().map(|c| c.path.as_str()).collect();
            if paths.len() > 1 {
                out.push_str(&matrix(section));
            } else {
                out.push_str(&list(section));
            }
        }
        let (passed, failed) = self.counts();
        let _ = write!(out, "\n{passed} as expected, {failed} not as expected\n");
        for line in &self.summary {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    fn junit(&self) -> Result<String> {
        let mut report = quick_junit::Report::new(self.title.as_str());
        for section in &self.sections {
            let mut suite = TestSuite::new(section.title.as_str());
            for check in &section.checks {
                let name = format!("{} | {} | {}", check.client, check.path, check.target);
                let status = if check.as_expected() {
                    TestCaseStatus::success()
                } else {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(format!(
                        "expected {}, observed {}",
                        check.expected.label(),
                        check.observed.verdict.label()
                    ));
                    status.set_description(check.observed.evidence.as_str());
                    status
                };
                let mut case = TestCase::new(name, status);
                case.set_classname(format!("mdelab.{}", check.client));
                case.set_system_out(check.observed.evidence.as_str());
                suite.add_test_case(case);
            }
            report.add_test_suite(suite);
        }
        report.to_string().context("failed to render JUnit XML")
    }
}

/// One row per check: target, client, path, expected, observed.
fn list(section: &Section) -> String {
    let header = ["CLIENT", "PATH", "TARGET", "EXPECTED", "OBSERVED", ""];
    let rows: Vec<[String; 6]> = section
        .checks
        .iter()
        .map(|c| {
            [
                c.client.clone(),
                c.path.clone(),
                c.target.clone(),
                c.expected.label(),
                match &c.via {
                    Some(via) => format!("{} via {via}", c.observed.verdict.label()),
                    None => c.observed.verdict.label(),
                },
                mark(c).to_owned(),
            ]
        })
        .collect();
    let mut out = align(&header, &rows);
    out.push_str(&evidence(section, false));
    out
}

/// One row per (client, target), one column per path; each cell `ok observed` or
/// `!! observed (expected X)`.
fn matrix(section: &Section) -> String {
    let mut paths: Vec<&str> = Vec::new();
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for c in &section.checks {
        if !paths.contains(&c.path.as_str()) {
            paths.push(&c.path);
        }
        if !rows.contains(&(c.client.as_str(), c.target.as_str())) {
            rows.push((&c.client, &c.target));
        }
    }
    let mut header: Vec<String> = vec!["CLIENT".into(), "TARGET".into()];
    header.extend(paths.iter().map(|p| p.to_uppercase()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(client, target)| {
            let mut row = vec![(*client).to_owned(), (*target).to_owned()];
            for path in &paths {
                let cell = section
                    .checks
                    .iter()
                    .find(|c| c.client == *client && c.target == *target && c.path == *path)
                    .map_or_else(String::new, |c| {
                        let via = c
                            .via
                            .as_ref()
                            .map(|v| format!(" via {v}"))
                            .unwrap_or_default();
                        if c.as_expected() {
                            format!("{} {}{via}", mark(c), c.observed.verdict.label())
                        } else {
                            format!(
                                "{} {} (expected {})",
                                mark(c),
                                c.observed.verdict.label(),
                                c.expected.label()
                            )
                        }
                    });
                row.push(cell);
            }
            row
        })
        .collect();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = align(&header_refs, &body);
    out.push_str(&evidence(section, true));
    out
}

/// The evidence of every refusal and every surprise, once per distinct text.
fn evidence(section: &Section, with_path: bool) -> String {
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    for c in &section.checks {
        let refused = !matches!(c.observed.verdict, Verdict::Connected { .. });
        // Nothing to add when it went as expected and the cell already says how (or there is
        // nothing to say).
        if c.as_expected() && (c.via.is_some() || (!refused && c.proxy_view.is_none())) {
            continue;
        }
        let mut line = if with_path {
            format!("{} via {}: {}", c.client, c.path, c.observed.evidence)
        } else {
            format!("{} {}: {}", c.client, c.target, c.observed.evidence)
        };
        if let Some(view) = &c.proxy_view {
            line.push_str(&format!(" [proxy: {view}]"));
        }
        if seen.insert(line.clone()) {
            let _ = writeln!(out, "  - {line}");
        }
    }
    if !out.is_empty() {
        out.insert_str(0, "  why:\n");
    }
    out
}

fn mark(check: &Check) -> &'static str {
    if check.as_expected() { "ok" } else { "!!" }
}

/// Left-aligns columns, two spaces apart.
fn align<R: AsRef<[S]>, S: AsRef<str>>(header: &[&str], rows: &[R]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.as_ref().chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            s.push_str(cell);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.as_ref().iter().map(AsRef::as_ref).collect()));
    }
    out
}
