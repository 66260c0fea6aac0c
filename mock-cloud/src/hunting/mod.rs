//! Advanced hunting over what the cloud received: the `DeviceNetworkEvents` table, built from
//! the sensor's connection events (1DS events named `DeviceNetworkEvents`), queried with a
//! small, documented subset of KQL ([`kql`]).
//!
//! A query outside the subset is refused with an error that names the unsupported part; it is
//! never answered approximately.

pub mod kql;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::store::events::{EventFilter, EventStore, StoredEvent};
use kql::{Expr, Literal, Op, Stage};
pub use kql::{QueryError, parse};

pub use mdelab_catalog::protocol::NETWORK_EVENT_NAME;

/// The table's columns, in order.
pub const NETWORK_COLUMNS: [&str; 9] = [
    "Timestamp",
    "DeviceId",
    "ActionType",
    "RemoteIP",
    "RemotePort",
    "RemoteUrl",
    "LocalIP",
    "InitiatingProcessFileName",
    "Protocol",
];

/// A query's answer: named columns and rows of JSON values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HuntResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
}

/// One row of `DeviceNetworkEvents` from a stored event.
fn network_row(stored: &StoredEvent) -> Vec<Value> {
    let data = &stored.event["data"];
    let text = |key: &str| Value::String(data[key].as_str().unwrap_or_default().to_owned());
    vec![
        Value::String(stored.event["time"].as_str().unwrap_or_default().to_owned()),
        Value::String(stored.device_id.as_deref().unwrap_or_default().to_owned()),
        text("ActionType"),
        text("RemoteIP"),
        data["RemotePort"].as_u64().map_or(Value::Null, Value::from),
        text("RemoteUrl"),
        text("LocalIP"),
        text("InitiatingProcessFileName"),
        text("Protocol"),
    ]
}

/// The whole `DeviceNetworkEvents` table, in arrival order.
pub fn network_events(events: &EventStore) -> HuntResult {
    let filter = EventFilter {
        name: Some(NETWORK_EVENT_NAME.to_owned()),
        ..EventFilter::default()
    };
    HuntResult {
        columns: NETWORK_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        rows: events.query(&filter).iter().map(network_row).collect(),
    }
}

/// Runs a query against the cloud's events.
pub fn run(query: &str, events: &EventStore) -> Result<HuntResult, QueryError> {
    let parsed = parse(query)?;
    if parsed.table != NETWORK_EVENT_NAME {
        return Err(QueryError {
            message: format!(
                "unknown table {:?} (supported: {NETWORK_EVENT_NAME})",
                parsed.table
            ),
            position: 0,
        });
    }
    evaluate(query, &parsed.stages, network_events(events))
}

/// Applies the stages to a table.
pub fn evaluate(
    query: &str,
    stages: &[Stage],
    mut table: HuntResult,
) -> Result<HuntResult, QueryError> {
    for stage in stages {
        table = match stage {
            Stage::Where(expr) => {
                check_columns(query, &table, &expr_columns(expr))?;
                let rows = table
                    .rows
                    .into_iter()
                    .filter(|row| matches(expr, &table.columns, row))
                    .collect();
                HuntResult {
                    columns: table.columns,
                    rows,
                }
            }
            Stage::Project(cols) => {
                check_columns(query, &table, cols)?;
                let idx: Vec<usize> = cols.iter().map(|c| index(&table.columns, c)).collect();
                HuntResult {
                    columns: cols.clone(),
                    rows: table
                        .rows
                        .iter()
                        .map(|r| idx.iter().map(|i| r[*i].clone()).collect())
                        .collect(),
                }
            }
            Stage::Take(n) => {
                let mut rows = table.rows;
                rows.truncate(*n);
                HuntResult {
                    columns: table.columns,
                    rows,
                }
            }
            Stage::Count => HuntResult {
                columns: vec!["Count".into()],
                rows: vec![vec![Value::from(table.rows.len())]],
            },
            Stage::SummarizeCount(by) => {
                check_columns(query, &table, by)?;
                let idx: Vec<usize> = by.iter().map(|c| index(&table.columns, c)).collect();
                // Groups in order of first appearance, so answers are deterministic.
                let mut order: Vec<Vec<Value>> = Vec::new();
                let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                for row in &table.rows {
                    let key: Vec<Value> = idx.iter().map(|i| row[*i].clone()).collect();
                    let text = Value::Array(key.clone()).to_string();
                    let count = counts.entry(text).or_insert(0);
                    if *count == 0 {
                        order.push(key);
                    }
                    *count += 1;
                }
                let mut columns = by.clone();
                columns.push("count_".into());
                let rows = order
                    .into_iter()
                    .map(|mut key| {
                        let n = counts
                            .get(&Value::Array(key.clone()).to_string())
                            .copied()
                            .unwrap_or(0);
                        key.push(Value::from(n));
                        key
                    })
                    .collect();
                HuntResult { columns, rows }
            }
        };
    }
    Ok(table)
}

fn index(columns: &[String], name: &str) -> usize {
    columns.iter().position(|c| c == name).unwrap_or(0)
}

fn expr_columns(expr: &Expr) -> Vec<String> {
    match expr {
        Expr::Compare { column, .. } => vec![column.clone()],
        Expr::And(a, b) | Expr::Or(a, b) => {
            let mut cols = expr_columns(a);
            cols.extend(expr_columns(b));
            cols
        }
    }
}

/// Refuses a column the table (at this stage) does not have, naming the ones it has.
fn check_columns(query: &str, table: &HuntResult, cols: &[String]) -> Result<(), QueryError> {
    match cols.iter().find(|c| !table.columns.contains(c)) {
        Some(col) => Err(QueryError {
            message: format!(
                "unknown column {col:?} (columns here: {}; names are case-sensitive)",
                table.columns.join(", ")
            ),
            position: query.find(col.as_str()).unwrap_or(0),
        }),
        None => Ok(()),
    }
}

fn matches(expr: &Expr, columns: &[String], row: &[Value]) -> bool {
    match expr {
        Expr::And(a, b) => matches(a, columns, row) && matches(b, columns, row),
        Expr::Or(a, b) => matches(a, columns, row) || matches(b, columns, row),
        Expr::Compare { column, op, value } => compare(&row[index(columns, column)], *op, value),
    }
}

fn compare(cell: &Value, op: Op, literal: &Literal) -> bool {
    let text = match cell {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let lit = match literal {
        Literal::Str(s) => s.clone(),
        Literal::Num(n) if n.fract() == 0.0 => format!("{}", *n as i64),
        Literal::Num(n) => n.to_string(),
    };
    let equal = match (cell, literal) {
        (Value::Number(n), Literal::Num(l)) => n.as_f64() == Some(*l),
        _ => text.as_deref() == Some(lit.as_str()),
    };
    let Some(text) = text else {
        // A missing value equals nothing and contains nothing.
        return matches!(op, Op::Ne | Op::NotHas | Op::NotContains);
    };
    match op {
        Op::Eq => equal,
        Op::Ne => !equal,
        Op::Has => has_term(&text, &lit),
        Op::NotHas => !has_term(&text, &lit),
        Op::Contains => text.to_lowercase().contains(&lit.to_lowercase()),
        Op::NotContains => !text.to_lowercase().contains(&lit.to_lowercase()),
    }
}

/// KQL `has`: the literal occurs as whole terms (bounded by characters that are not letters or
/// digits, or the ends), ignoring case. Works on characters, so any UTF-8 text and literal is
/// safe (a byte-wise step once split `é` and panicked).
fn has_term(text: &str, term: &str) -> bool {
    if term.is_empty() {
        return true;
    }
    let hay = text.to_lowercase();
    let needle = term.to_lowercase();
    let mut from = 0;
    while let Some(found) = hay[from..].find(&needle) {
        let start = from + found;
        let end = start + needle.len();
        let before_ok = hay[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let after_ok = hay[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        if before_ok && after_ok {
            return true;
        }
        // Step past the first character of this match, on a character boundary.
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

#[cfg(test)]
mod tests;
