//! JUnit XML rendering (through quick-junit): the one writer, fed suites of cases by every
//! model that has expected-vs-observed checks.

use anyhow::{Context as _, Result};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::Report;

/// One test suite: a titled group of cases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suite {
    /// The suite's name.
    pub name: String,
    /// Its cases, in run order.
    pub cases: Vec<Case>,
}

/// One test case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Case {
    /// The case's name.
    pub name: String,
    /// Its class name (dotted, e.g. `mdelab.sensor`).
    pub classname: String,
    /// Why it failed; `None` when it passed.
    pub failure: Option<Failure>,
    /// What was observed, shown as the case's standard output.
    pub system_out: String,
}

/// A failed case's message and detail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    /// One line: expected this, observed that.
    pub message: String,
    /// The evidence.
    pub description: String,
}

/// Writes suites as one JUnit XML document named `title`.
pub fn render(title: &str, suites: &[Suite]) -> Result<String> {
    let mut junit = quick_junit::Report::new(title);
    for suite in suites {
        let mut out = TestSuite::new(suite.name.as_str());
        for case in &suite.cases {
            let status = match &case.failure {
                None => TestCaseStatus::success(),
                Some(failure) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(failure.message.as_str());
                    status.set_description(failure.description.as_str());
                    status
                }
            };
            let mut test_case = TestCase::new(case.name.as_str(), status);
            test_case.set_classname(case.classname.as_str());
            test_case.set_system_out(case.system_out.as_str());
            out.add_test_case(test_case);
        }
        junit.add_test_suite(out);
    }
    junit.to_string().context("failed to render JUnit XML")
}

/// A [`Report`]: one suite per section, one case per check.
pub fn report(report: &Report) -> Result<String> {
    let suites: Vec<Suite> = report
        .sections
        .iter()
        .map(|section| Suite {
            name: section.title.clone(),
            cases: section
                .checks
                .iter()
                .map(|check| Case {
                    name: format!("{} | {} | {}", check.client, check.path, check.target),
                    classname: format!("mdelab.{}", check.client),
                    failure: (!check.as_expected()).then(|| Failure {
                        message: format!(
                            "expected {}, observed {}",
                            check.expected.label(),
                            check.observed.verdict.label()
                        ),
                        description: check.observed.evidence.clone(),
                    }),
                    system_out: check.observed.evidence.clone(),
                })
                .collect(),
        })
        .collect();
    render(&report.title, &suites)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_and_escapes_text() {
        let suites = [Suite {
            name: "s <1>".into(),
            cases: vec![
                Case {
                    name: "passes".into(),
                    classname: "mdelab.sensor".into(),
                    failure: None,
                    system_out: "ok & done".into(),
                },
                Case {
                    name: "fails".into(),
                    classname: "mdelab.sensor".into(),
                    failure: Some(Failure {
                        message: "expected 200, observed \"pin\"".into(),
                        description: "evidence".into(),
                    }),
                    system_out: String::new(),
                },
            ],
        }];
        let xml = render("title", &suites).unwrap();
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(
            xml.contains(
                r#"<testsuites name="title" tests="2" skipped="0" failures="1" errors="0">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<testsuite name="s &lt;1&gt;" tests="2" skipped="0" errors="0" failures="1">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<failure message="expected 200, observed &quot;pin&quot;">evidence</failure>"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out>ok &amp; done</system-out>"),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    }
}
