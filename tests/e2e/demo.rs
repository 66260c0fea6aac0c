//! `mdelab demo`: the report is deterministic and guarded by a snapshot; the binary's exit code
//! says whether every outcome was as expected.

use std::process::Command;

use mdelab::demo::{self, DemoOptions};
use mdelab_mock_cloud::Region;
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
