//! Text rendering for a terminal: the one column aligner ([`align`], [`columns`]) and the
//! tables of every model built on it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use mdelab_catalog::Endpoint;
use mdelab_sensor::Verdict;

use super::{Check, Grid, Report, Section};

/// Left-aligns a header line and rows into columns two spaces apart (see [`columns`]).
pub fn align<R: AsRef<[S]>, S: AsRef<str>>(indent: &str, header: &[&str], rows: &[R]) -> String {
    let lines: Vec<Vec<&str>> = std::iter::once(header.to_vec())
        .chain(
            rows.iter()
                .map(|row| row.as_ref().iter().map(AsRef::as_ref).collect()),
        )
        .collect();
    columns(indent, &lines)
}

/// Left-aligns rows of cells into columns two spaces apart, each line opening with `indent`.
///
/// A column is as wide as its widest cell, counted in characters; a row may be shorter than
/// the others. Trailing whitespace is trimmed from every line, so an empty last column leaves
/// nothing behind.
pub fn columns<R: AsRef<[S]>, S: AsRef<str>>(indent: &str, rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            let width = cell.as_ref().chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        let cells = row.as_ref();
        for (i, cell) in cells.iter().enumerate() {
            let cell = cell.as_ref();
            line.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A title underlined with `=`.
pub fn heading(title: &str) -> String {
    format!("{title}\n{}\n", "=".repeat(title.chars().count()))
}

/// The mark of a row: `ok` when it went as expected, `!!` when not.
pub fn mark(as_expected: bool) -> &'static str {
    if as_expected { "ok" } else { "!!" }
}

/// A [`Report`]: per section a matrix (several paths) or a list (one path), the evidence of
/// refusals and surprises, the counts and the summary.
pub fn report(report: &Report) -> String {
    let mut out = heading(&report.title);
    for section in &report.sections {
        let _ = write!(out, "\n{}\n", section.title);
        let paths: BTreeSet<&str> = section.checks.iter().map(|c| c.path.as_str()).collect();
        if paths.len() > 1 {
            out.push_str(&matrix(section));
        } else {
            out.push_str(&list(section));
        }
    }
    let (passed, failed) = report.counts();
    let _ = write!(out, "\n{passed} as expected, {failed} not as expected\n");
    for line in &report.summary {
        let _ = writeln!(out, "{line}");
    }
    out
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
                mark(c.as_expected()).to_owned(),
            ]
        })
        .collect();
    let mut out = align("  ", &header, &rows);
    out.push_str(&evidence(section, false));
    out
}

/// One row per (client, target), one column per path; each cell `ok observed` or
/// `!! observed (expected X)`.
fn matrix(section: &Section) -> String {
    let (paths, rows) = section.axes();
    let mut header: Vec<String> = vec!["CLIENT".into(), "TARGET".into()];
    header.extend(paths.iter().map(|p| p.to_uppercase()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(client, target)| {
            let mut row = vec![(*client).to_owned(), (*target).to_owned()];
            for path in &paths {
                let cell = section
                    .cell(client, target, path)
                    .map_or_else(String::new, cell);
                row.push(cell);
            }
            row
        })
        .collect();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = align("  ", &header_refs, &body);
    out.push_str(&evidence(section, true));
    out
}

/// A matrix cell: `ok observed [via P]` or `!! observed (expected X)`.
fn cell(c: &Check) -> String {
    let mark = mark(c.as_expected());
    if c.as_expected() {
        let via = c
            .via
            .as_ref()
            .map(|v| format!(" via {v}"))
            .unwrap_or_default();
        format!("{mark} {}{via}", c.observed.verdict.label())
    } else {
        format!(
            "{mark} {} (expected {})",
            c.observed.verdict.label(),
            c.expected.label()
        )
    }
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

/// The endpoint listing: one row per endpoint, then the count.
pub fn endpoints(endpoints: &[&Endpoint]) -> String {
    let header = [
        "SERVICE", "REGION", "MODEL", "PROFILE", "PINNED", "METHOD", "URL", "EXPECT",
    ];
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
    let mut out = align("", &header, &rows);
    let _ = writeln!(out, "{} endpoints", rows.len());
    out
}

/// A [`Grid`]: its columns, its rows, then the row count.
pub fn grid(grid: &Grid) -> String {
    let header: Vec<&str> = grid.columns.iter().map(String::as_str).collect();
    let mut out = align("", &header, &grid.rows);
    let _ = writeln!(out, "({} rows)", grid.rows.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_counted_in_characters() {
        let rows = [
            vec!["é", "bb", "c"],
            vec!["aaaa", "", "cc"],
            vec!["x", "y", ""],
        ];
        let text = align("  ", &["H1", "H2", ""], &rows);
        assert_eq!(
            text,
            "  H1    H2\n  é     bb  c\n  aaaa      cc\n  x     y\n"
        );
    }

    #[test]
    fn rows_without_a_header_and_of_uneven_length_align() {
        let rows = [vec!["dns", "a b"], vec!["connect proxy", "c"], vec!["z"]];
        assert_eq!(
            columns("", &rows),
            "dns            a b\nconnect proxy  c\nz\n"
        );
        assert_eq!(columns::<[&str; 0], &str>("  ", &[]), "");
    }

    #[test]
    fn a_grid_ends_with_its_row_count() {
        let g = Grid {
            columns: vec![
                "Timestamp".into(),
                "DeviceId".into(),
                "RemoteUrl".into(),
                "n".into(),
            ],
            rows: vec![
                vec![
                    "2026-01-01T00:00:00Z".into(),
                    "dévice-1".into(),
                    "https://a.example/x".into(),
                    "3".into(),
                ],
                vec!["t".into(), String::new(), "b".into(), "12345".into()],
                vec![String::new(); 4],
            ],
        };
        assert_eq!(
            grid(&g),
            "Timestamp             DeviceId  RemoteUrl            n\n\
             2026-01-01T00:00:00Z  dévice-1  https://a.example/x  3\n\
             t                               b                    12345\n\
             \n\
             (3 rows)\n"
        );
    }

    #[test]
    fn heading_underlines_by_characters() {
        assert_eq!(heading("Région"), "Région\n======\n");
    }
}
