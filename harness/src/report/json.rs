//! JSON rendering: a model as pretty JSON, with pass/fail counts where it has any.

use anyhow::{Context as _, Result};
use serde::Serialize;

/// A report flattened next to its counts: `{…report, "passed", "failed", "all_as_expected"}`.
#[derive(Debug, Serialize)]
pub struct WithCounts<'a, T> {
    /// The report's own fields.
    #[serde(flatten)]
    pub report: &'a T,
    /// Checks that got their expected outcome.
    pub passed: usize,
    /// Checks that did not.
    pub failed: usize,
    /// Whether `failed` is zero.
    pub all_as_expected: bool,
}

impl<'a, T> WithCounts<'a, T> {
    /// Wraps `report` with its `(passed, failed)` counts.
    pub fn new(report: &'a T, (passed, failed): (usize, usize)) -> Self {
        Self {
            report,
            passed,
            failed,
            all_as_expected: failed == 0,
        }
    }
}

/// `report` with its `(passed, failed)` counts, as pretty JSON.
pub fn with_counts<T: Serialize>(report: &T, counts: (usize, usize)) -> Result<String> {
    pretty(&WithCounts::new(report, counts))
}

/// Any model as pretty JSON.
pub fn pretty<T: Serialize + ?Sized>(model: &T) -> Result<String> {
    serde_json::to_string_pretty(model).context("failed to serialise the report")
}
