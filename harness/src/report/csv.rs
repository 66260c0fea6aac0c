//! CSV rendering (RFC 4180, header row first) of a [`Grid`].

use super::Grid;

/// The grid as CSV: a header row, then one line per row.
pub fn grid(grid: &Grid) -> String {
    let line =
        |cells: &[String]| cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",") + "\n";
    let mut out = line(&grid.columns);
    for row in &grid.rows {
        out.push_str(&line(row));
    }
    out
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_or_quotes_are_quoted() {
        let g = Grid {
            columns: vec!["a".into(), "b".into()],
            rows: vec![vec!["x, \"y\"".into(), "z".into()], vec![String::new(); 2]],
        };
        assert_eq!(grid(&g), "a,b\n\"x, \"\"y\"\"\",z\n,\n");
    }
}
