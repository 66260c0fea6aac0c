//! The admin API as tools use it: curl with the manifest's token.

use std::time::Duration;

use mdelab::lab::{Lab, LabOptions};
use mdelab_catalog::protocol::DEVICE_HEADER;
use mdelab_catalog::{Connectivity, Region};
use mdelab_catalog::{ProbeMethod, Scheme};
use mdelab_sensor::agent::{Agent, AgentConfig, Onboarding};
use mdelab_sensor::{
    self as sensor, ClientKind, HttpRequest, Origin, ProxyRoute, Route, Target, Verdict,
};
use mdelab_tests::{UpProcess, curl_status, tool};
use tokio_util::sync::CancellationToken;

/// `curl` against the admin API; (status, body).
fn admin(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut cmd = tool("curl", "curl");
    cmd.args([
        "-sS",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        "--max-time",
        "10",
    ]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        cmd.args(["-H", "content-type: application/json", "--data", body]);
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_is_token_protected_and_reports_readiness() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let addr = lab.admin_addr();
    let (status, body) = admin(addr, None, "GET", "/_lab/ready", None);
    assert_eq!((status, json(&body)["ready"].as_bool()), (200, Some(true)));
    assert_eq!(admin(addr, None, "GET", "/_lab/journal", None).0, 401);
    assert_eq!(
        admin(addr, Some("wrong"), "GET", "/_lab/journal", None).0,
        401
    );
    assert_eq!(
        admin(addr, Some(lab.admin_token()), "GET", "/_lab/journal", None).0,
        200
    );
    let (status, pem) = admin(
        addr,
        Some(lab.admin_token()),
        "GET",
        "/_lab/pki/roots",
        None,
    );
    assert_eq!((status, pem.matches("BEGIN CERTIFICATE").count()), (200, 2));
    let (status, spec) = admin(addr, None, "GET", "/_lab/openapi.yaml", None);
    assert!(status == 200 && spec.contains("/_lab/liveresponse/sessions"));
    assert_eq!(
        admin(addr, Some(lab.admin_token()), "GET", "/_lab/nope", None).0,
        404
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn journal_records_each_request_with_its_device_and_filters_and_clears() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let origin = Origin::https("winatp-gw-cus.microsoft.com", true);
    let request = HttpRequest::new(http::Method::GET, "/test")
        .header(http::HeaderName::from_static(DEVICE_HEADER), "dev-journal");
    let response = mdelab_tests::send_direct(&lab, &origin, &request)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let (addr, token) = (lab.admin_addr(), Some(lab.admin_token()));
    let (_, body) = admin(addr, token, "GET", "/_lab/journal?device=dev-journal", None);
    let entries = json(&body);
    let entry = &entries[0];
    assert_eq!(entry["host"], "winatp-gw-cus.microsoft.com");
    assert_eq!(entry["sni"], "winatp-gw-cus.microsoft.com");
    assert_eq!(
        (
            entry["method"].as_str(),
            entry["path"].as_str(),
            entry["status"].as_u64()
        ),
        (Some("GET"), Some("/test"), Some(200))
    );
    assert_eq!(entry["service"], "command-and-control");
    assert!(entry["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let (_, count) = admin(
        addr,
        token,
        "GET",
        "/_lab/journal/count?host=winatp-gw-cus.microsoft.com",
        None,
    );
    assert_eq!(json(&count)["count"], 1);
    assert_eq!(admin(addr, token, "DELETE", "/_lab/journal", None).0, 204);
    let (_, count) = admin(addr, token, "GET", "/_lab/journal/count", None);
    assert_eq!(json(&count)["count"], 0);
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_set_over_the_api_reach_clients_and_bad_rules_are_refused() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let (addr, token) = (lab.admin_addr(), Some(lab.admin_token()));
    let rule = r#"{"host":"winatp-gw-cus.microsoft.com","kind":"status","status":503,"times":1}"#;
    let (status, body) = admin(addr, token, "POST", "/_lab/faults", Some(rule));
    assert_eq!(status, 201, "{body}");
    let target = Target {
        host: "winatp-gw-cus.microsoft.com".into(),
        port: 443,
        scheme: Scheme::Https,
        method: ProbeMethod::Get,
        path: "/test".into(),
        pinned: true,
    };
    let (trust, network) = (lab.device_trust(false), lab.network());
    let probe = || {
        sensor::probe(
            &target,
            ClientKind::Sensor,
            &Route::Direct,
            &trust,
            &network,
        )
    };
    assert_eq!(probe().await.verdict, Verdict::Connected { status: 503 });
    assert_eq!(
        probe().await.verdict,
        Verdict::Connected { status: 200 },
        "times = 1"
    );
    for bad in [
        r#"{"kind":"explode"}"#,
        r#"{"kind":"delay","msec":5}"#,
        r#"{"kind":"status","status":42}"#,
        "not json",
    ] {
        let (status, body) = admin(addr, token, "POST", "/_lab/faults", Some(bad));
        assert_eq!(status, 400, "{bad} -> {body}");
        assert!(
            json(&body)["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (_, journal) = admin(addr, token, "GET", "/_lab/journal?status=503", None);
    assert_eq!(json(&journal)[0]["faults"][0], "status 503");
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn live_response_started_through_the_admin_api_completes_via_the_connect_proxy() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let token = CancellationToken::new();
    let onboarding = Onboarding::parse(&Onboarding::blob(
        "org1",
        Region::Us,
        Connectivity::Standard,
    ))
    .unwrap();
    let route = Route::Proxy(ProxyRoute {
        addr: lab.connect_proxy().addr,
        credentials: None,
    });
    let config = AgentConfig::new(
        "dev-admin-lr",
        onboarding,
        route,
        lab.device_trust(false),
        lab.network(),
    );
    let sensor = Agent::start(config, &token);
    let (addr, admin_token) = (lab.admin_addr(), Some(lab.admin_token()));
    let start = r#"{"device_id":"dev-admin-lr","commands":[{"kind":"dir","path":"C:\\Temp"},{"kind":"getfile","path":"C:\\Temp\\notes.txt"}]}"#;
    let (status, body) = admin(
        addr,
        admin_token,
        "POST",
        "/_lab/liveresponse/sessions",
        Some(start),
    );
    assert_eq!(status, 201, "{body}");
    let session = json(&body);
    assert_eq!(session["state"], "pending");
    let id = session["id"].as_str().unwrap().to_owned();
    assert!(
        sensor
            .wait_until(|s| !s.live_response.is_empty(), Duration::from_secs(30))
            .await
    );
    assert_eq!(sensor.stats().live_response[0].result, "completed");
    let (_, body) = admin(
        addr,
        admin_token,
        "GET",
        &format!("/_lab/liveresponse/sessions/{id}"),
        None,
    );
    let done = json(&body);
    assert_eq!(done["state"], "closed");
    assert!(
        done["results"][0]["output"]
            .as_str()
            .unwrap()
            .contains("notes.txt"),
        "dir output: {done}"
    );
    let blob = done["results"][1]["blob"].as_str().unwrap().to_owned();
    let (account_blobs_status, list) = admin(addr, admin_token, "GET", "/_lab/blobs", None);
    assert_eq!(account_blobs_status, 200);
    let stored = json(&list);
    let account = stored[0]["account"].as_str().unwrap().to_owned();
    let (status, content) = admin(
        addr,
        admin_token,
        "GET",
        &format!("/_lab/blobs/{account}/{blob}"),
        None,
    );
    assert_eq!(
        (status, content.as_str()),
        (200, "mdelab: nothing to see here\r\n")
    );
    let (_, devices) = admin(addr, admin_token, "GET", "/_lab/devices/dev-admin-lr", None);
    let device = json(&devices);
    assert_eq!(
        (device["region"].as_str(), device["connectivity"].as_str()),
        (Some("us"), Some("standard"))
    );
    let bad = r#"{"device_id":"","commands":[]}"#;
    assert_eq!(
        admin(
            addr,
            admin_token,
            "POST",
            "/_lab/liveresponse/sessions",
            Some(bad)
        )
        .0,
        400
    );
    sensor.stop().await;
    lab.shutdown().await.unwrap();
}

#[test]
fn up_loads_a_fault_file_and_streams_the_journal_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.toml");
    std::fs::write(
        &faults,
        "[[fault]]\nhost = \"winatp-gw-eus.microsoft.com\"\nkind = \"status\"\nstatus = 429\n",
    )
    .unwrap();
    let journal = dir.path().join("journal.jsonl");
    let up = UpProcess::start(
        dir.path(),
        &[
            "--faults",
            faults.to_str().unwrap(),
            "--journal-file",
            journal.to_str().unwrap(),
            "--seed",
            "7",
        ],
    );
    let m = up.manifest.clone();
    let admin_addr = m.admin.expect("the manifest names the admin API");
    let (_, rules) = admin(
        admin_addr,
        Some(&m.admin_token),
        "GET",
        "/_lab/faults",
        None,
    );
    assert_eq!(json(&rules)[0]["status"], 429);
    let out = curl_status()
        .arg("--cacert")
        .arg(&m.trust_bundle)
        .args([
            "--connect-to",
            &format!("::{}", m.https),
            "https://winatp-gw-eus.microsoft.com/test",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "429");
    assert!(up.terminate().success());
    // The journal file was flushed by the time the lab stopped.
    let lines = std::fs::read_to_string(&journal).unwrap();
    let entry: serde_json::Value =
        serde_json::from_str(lines.lines().next().expect("one line")).unwrap();
    assert_eq!(
        (entry["host"].as_str(), entry["status"].as_u64()),
        (Some("winatp-gw-eus.microsoft.com"), Some(429))
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[fault]]\nkind = \"explode\"\n").unwrap();
    let out = std::process::Command::new(mdelab_tests::mdelab_bin())
        .args(["up", "--faults", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown fault kind"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
