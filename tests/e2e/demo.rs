//! `mdelab demo`: the report is deterministic and guarded by a snapshot; the binary's exit code
//! says whether every outcome was as expected.

use std::process::Command;

use mdelab::demo::{self, DemoOptions};
use mdelab_catalog::Region;
use mdelab_tests::mdelab_bin;

#[tokio::test(flavor = "multi_thread")]
async fn demo_report_is_all_as_expected_and_stable() {
    let report = demo::run(&DemoOptions { region: Region::Us })
        .await
        .unwrap();
    assert!(
        report.all_as_expected(),
        "{}",
        report.render(mdelab::Format::Table).unwrap()
    );
    insta::assert_snapshot!(
        "demo_us_table",
        report.render(mdelab::Format::Table).unwrap()
    );
}

#[test]
fn demo_binary_exits_zero_and_prints_json() {
    let out = Command::new(mdelab_bin())
        .args(["demo", "--format", "json", "--region", "uk"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["all_as_expected"], true);
    assert!(json["passed"].as_u64().unwrap() > 20);
}

#[test]
fn demo_junit_is_accepted_by_a_junit_parser() {
    let out = Command::new(mdelab_bin())
        .args(["demo", "--format", "junit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.xml");
    std::fs::write(&file, &out.stdout).unwrap();
    // junitparser (PyPI), installed by .ci/run: a real consumer of JUnit XML.
    let check = r#"
import sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
suites = list(xml)
cases = [case for suite in suites for case in suite]
failed = [case for case in cases if not case.is_passed]
print(len(suites), len(cases), len(failed))
"#;
    let parsed = mdelab_tests::tool("python3", "python3")
        .arg("-c")
        .arg(check)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "junitparser refused it: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let counts: Vec<usize> = String::from_utf8_lossy(&parsed.stdout)
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 3);
    assert_eq!(counts[0], 4, "one suite per section");
    assert!(counts[1] > 150, "one case per check: {counts:?}");
    assert_eq!(counts[2], 0, "all as expected");
}
