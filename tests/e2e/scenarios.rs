//! Proxy-precedence scenarios: every test of `reference/proxy-precedence.md` replayed in the
//! lab. Each snapshot shows, per service, the route taken, the proxy whose access log shows
//! the traffic, and the outcome, against the write-up; and the gateway rule is shown to be real.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mdelab::scenario::rig::Deployed;
use mdelab::scenario::{
    self, DEVICE_IP, LabProxy, MachineProfile, Rig, RigOptions, ScenarioReport, run,
};
use mdelab_catalog::{Catalog, Connectivity, Region, Service};
use mdelab_sensor::{self as sensor, ClientKind, ProxyRoute, Route, Target, Verdict};
use tokio::io::AsyncReadExt as _;

async fn run_scenario(name: &str) -> ScenarioReport {
    let scenario = scenario::find(name).unwrap_or_else(|| panic!("no scenario {name}"));
    scenario::run_named(&scenario, &RigOptions::default())
        .await
        .unwrap()
}

async fn check(name: &str) {
    let report = run_scenario(name).await;
    let table = run::table(&report);
    assert!(report.all_as_expected(), "{table}");
    insta::assert_snapshot!(format!("scenario_{}", name.replace('-', "_")), table);
}

#[tokio::test(flavor = "multi_thread")]
async fn test1_winhttp_only() {
    check("winhttp-only").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test2_winhttp_and_wininet_with_a_user() {
    check("winhttp-wininet-user").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test3_wininet_only_then_the_user_logs_on_and_the_cache_drains() {
    check("wininet-only-logon").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test3b_wininet_only_with_a_user() {
    check("wininet-only-user").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test4_static_only() {
    check("static-only").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test5_all_three() {
    check("all-three").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_static_proxy_falls_back_to_direct() {
    check("static-unreachable").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn winhttp_through_wpad() {
    check("winhttp-wpad").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticated_proxy_with_a_user() {
    check("auth-proxy-user").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticated_proxy_without_a_user_then_the_user_logs_on() {
    check("auth-proxy-no-user").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inspecting_proxy_without_a_bypass_list() {
    check("inspecting-proxy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inspecting_proxy_with_the_mde_hosts_bypassed() {
    check("inspecting-proxy-bypass").await;
}

#[test]
fn every_named_scenario_has_its_snapshot_test() {
    let tested = [
        "winhttp-only",
        "winhttp-wininet-user",
        "wininet-only-logon",
        "wininet-only-user",
        "static-only",
        "all-three",
        "static-unreachable",
        "winhttp-wpad",
        "auth-proxy-user",
        "auth-proxy-no-user",
        "inspecting-proxy",
        "inspecting-proxy-bypass",
    ];
    let named: Vec<&str> = scenario::scenarios().iter().map(|s| s.name).collect();
    assert_eq!(named, tested);
}

/// The same expectations hold for a streamlined device of another region: the routes do not
/// depend on the URL set.
#[tokio::test(flavor = "multi_thread")]
async fn all_three_holds_for_a_streamlined_eu_device() {
    let scenario = scenario::find("all-three").unwrap();
    let mut profile = MachineProfile::from_toml(scenario.profile).unwrap();
    profile.onboarding.region = Region::Eu;
    profile.onboarding.connectivity = Connectivity::Streamlined;
    let report = scenario::run_with_profile(&scenario, &profile, &RigOptions::default())
        .await
        .unwrap();
    assert!(report.all_as_expected(), "{}", run::table(&report));
    let urls: Vec<&str> = report.phases[0]
        .rows
        .iter()
        .map(|r| r.url.as_str())
        .collect();
    assert!(
        urls.iter()
            .any(|u| u.contains(".eu.endpoint.security.microsoft.com")),
        "{urls:?}"
    );
}

/// A sensor whose profile posts Bond (as a Windows sensor's native stack does) gets the same
/// routes and outcomes, and the collector accepts its batches.
#[tokio::test(flavor = "multi_thread")]
async fn all_three_holds_for_a_sensor_posting_bond() {
    let scenario = scenario::find("all-three").unwrap();
    let mut profile = MachineProfile::from_toml(scenario.profile).unwrap();
    profile.upload_encoding = mdelab_sensor::wire::UploadEncoding::Bond;
    let report = scenario::run_with_profile(&scenario, &profile, &RigOptions::default())
        .await
        .unwrap();
    assert!(report.all_as_expected(), "{}", run::table(&report));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_and_junit_carry_the_carrying_proxy() {
    let report = run_scenario("all-three").await;
    let json: serde_json::Value = serde_json::from_str(
        &run::render(std::slice::from_ref(&report), mdelab::Format::Json).unwrap(),
    )
    .unwrap();
    assert_eq!(json["all_as_expected"], true);
    let rows = json["phases"][0]["rows"].as_array().unwrap();
    let live = rows
        .iter()
        .find(|r| r["service"] == "live-response")
        .unwrap();
    assert_eq!(live["hops"][0]["proxy"], "PROX03");
    assert_eq!(live["route"][0], "static");
    assert!(json["proxy_addrs"]["PROX03"].as_str().is_some());
    let junit = run::render(&[report], mdelab::Format::Junit).unwrap();
    assert!(junit.contains("<testsuite") && junit.contains("live-response"));
    assert!(!junit.contains("<failure"), "{junit}");
}

/// The gateway rule is enforced by the lab, not assumed: the device's direct connection gets
/// no answer, while the same request through an allowed proxy succeeds, and the same direct
/// request from another address of the host is served.
#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_block_is_real_for_the_emulated_device() {
    let profile =
        MachineProfile::from_toml(scenario::find("winhttp-only").unwrap().profile).unwrap();
    let rig = Rig::start(
        &profile,
        RigOptions {
            step_timeout: Duration::from_millis(300),
            ..RigOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoint = Catalog::mde()
        .for_device(Region::Us, Connectivity::Standard)
        .find(|e| e.service == Service::CommandAndControl)
        .unwrap();
    let target = Target::from(endpoint);
    let trust = rig.trust();
    let cloud = rig.lab().cloud();
    assert_eq!(cloud.blocked_peers(), vec![DEVICE_IP]);

    // Direct from the device: the cloud accepts and never answers, as a dropped route looks.
    let started = std::time::Instant::now();
    let direct = sensor::probe(
        &target,
        ClientKind::Sensor,
        &Route::Direct,
        &trust,
        &rig.network(),
    )
    .await;
    assert_eq!(direct.verdict, Verdict::Timeout, "{}", direct.evidence);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(cloud.blocked_connections(), 1);

    // A raw TCP connection from the device's address gets no byte either.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(DEVICE_IP, 0))
        .unwrap();
    let mut raw = socket.connect(rig.lab().https_addr()).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(300), raw.read(&mut byte)).await;
    assert!(
        read.is_err(),
        "the blocked connection must stay silent: {read:?}"
    );
    assert_eq!(cloud.blocked_connections(), 2);

    // The same request from the device through PROX01 (which dials from 127.0.0.1): served.
    let Deployed::Running(prox01) = rig.proxy(LabProxy::Prox01) else {
        panic!("PROX01 runs");
    };
    let via = Route::Proxy(ProxyRoute {
        addr: prox01.addr,
        credentials: None,
    });
    let proxied = sensor::probe(&target, ClientKind::Sensor, &via, &trust, &rig.network()).await;
    assert_eq!(
        proxied.verdict,
        Verdict::Connected {
            status: endpoint.probe.status
        },
        "{}",
        proxied.evidence
    );
    let record = prox01
        .log
        .wait_for(
            |r| r.client.ip() == DEVICE_IP && r.target == format!("{}:443", endpoint.host),
            Duration::from_secs(3),
        )
        .await
        .expect("PROX01's access log shows the device's tunnel");
    assert_eq!((record.proxy.as_str(), record.status), ("PROX01", 200));

    // The rule targets the device's address only: the same direct request from 127.0.0.1 works.
    let mut other = rig.network();
    other.source_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let from_elsewhere =
        sensor::probe(&target, ClientKind::Sensor, &Route::Direct, &trust, &other).await;
    assert_eq!(
        from_elsewhere.verdict,
        Verdict::Connected {
            status: endpoint.probe.status
        }
    );
    assert_eq!(cloud.blocked_connections(), 2);
    drop(raw);
    rig.shutdown().await.unwrap();
}

/// The section `mdelab demo` shows: every cell as the write-up says, routes included.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_section_is_all_as_expected() {
    let section = scenario::demo_section(Region::Us).await.unwrap();
    let report = mdelab::Report {
        title: "demo section".into(),
        sections: vec![section],
        summary: Vec::new(),
    };
    let table = report.render(mdelab::Format::Table).unwrap();
    assert!(report.all_as_expected(), "{table}");
    // Three scenarios, one of them in two phases, nine services each.
    assert_eq!(report.sections[0].checks.len(), 4 * 9, "{table}");
    assert!(
        table.contains("ok 200 via PROX03"),
        "the cell names the proxy that carried it: {table}"
    );
}
