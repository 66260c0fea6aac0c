//! Network events behind forward proxies: the three network-protection modes, and the
//! analyst's two documented queries through `mdelab hunt` on a lab that ran them.

use std::process::Command;

use mdelab::scenario::RigOptions;
use mdelab::scenario::netprot::{self, SCENARIOS};
use mdelab_sensor::netprot::NetworkProtection;
use mdelab_tests::mdelab_bin;

async fn snapshot(mode: NetworkProtection) {
    let run = netprot::run(mode, &RigOptions::default()).await.unwrap();
    let table = run.report.render(mdelab::Format::Table).unwrap();
    assert!(run.report.all_as_expected(), "{table}");
    run.rig.shutdown().await.unwrap();
    insta::assert_snapshot!(format!("network_protection_{mode}"), table);
}

#[tokio::test(flavor = "multi_thread")]
async fn protection_off_shows_only_connections_to_the_proxy() {
    snapshot(NetworkProtection::Off).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn protection_audit_adds_the_real_domains() {
    snapshot(NetworkProtection::Audit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn protection_block_blocks_the_dangerous_domain_on_the_device() {
    snapshot(NetworkProtection::Block).await;
}

/// `mdelab hunt QUERY --manifest F --format json` → the answer.
fn hunt(manifest: &std::path::Path, query: &str) -> serde_json::Value {
    let out = Command::new(mdelab_bin())
        .args(["hunt", query, "--format", "json", "--manifest"])
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn both_documented_queries_run_through_mdelab_hunt() {
    let options = RigOptions::default();
    let run = netprot::run(NetworkProtection::Audit, &options)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("lab.json");
    run.rig.lab().manifest().write(&manifest).unwrap();

    // The documentation's queries, as written (with the proxy's address for "ProxyIP").
    let all = hunt(
        &manifest,
        r#"DeviceNetworkEvents | where ActionType == "ConnectionSuccess" | take 10"#,
    );
    let proxy_ip = options.proxy_ip.to_string();
    let real = hunt(
        &manifest,
        &format!(
            r#"DeviceNetworkEvents | where ActionType == "ConnectionSuccess" and RemoteIP != "{proxy_ip}" | take 10"#
        ),
    );
    let col = |answer: &serde_json::Value, name: &str| {
        answer["columns"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c == name)
            .unwrap()
    };
    let (ip, url) = (col(&all, "RemoteIP"), col(&all, "RemoteUrl"));
    let rows = |answer: &serde_json::Value| answer["rows"].as_array().unwrap().clone();
    // Exactly the events that name real targets: the rows of the first query with a URL.
    let mut expected: Vec<serde_json::Value> = rows(&all)
        .into_iter()
        .filter(|r| r[ip] != proxy_ip.as_str() && r[url] != "")
        .collect();
    let mut got = rows(&real);
    let key = |r: &serde_json::Value| r.to_string();
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, expected);
    assert_eq!(got.len(), 4, "one per site the user opened");
    let urls: Vec<&str> = got.iter().map(|r| r[url].as_str().unwrap()).collect();
    assert!(
        urls.contains(&"smartscreentestratings2.net") && urls.contains(&"www.msftconnecttest.com"),
        "{urls:?}"
    );
    assert!(
        rows(&all).iter().any(|r| r[ip] == proxy_ip.as_str()),
        "the plain events name the proxy"
    );

    // Outside the subset: a precise refusal, never a wrong answer.
    let out = Command::new(mdelab_bin())
        .args(["hunt", "DeviceNetworkEvents | extend x = 1", "--manifest"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported operator \"extend\"") && err.contains('^'),
        "{err}"
    );
    run.rig.shutdown().await.unwrap();
}

#[test]
fn the_scenarios_are_listed_and_run_from_the_cli() {
    let out = Command::new(mdelab_bin())
        .args(["scenario", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    for (name, _) in SCENARIOS {
        assert!(list.contains(name), "{name} missing from:\n{list}");
    }
    let out = Command::new(mdelab_bin())
        .args([
            "scenario",
            "run",
            "network-protection-block",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["all_as_expected"], true);
}
