//! The emulated sensor obeys the collector's kill switch and retry headers as Microsoft's 1DS
//! SDKs do (`sensor/src/kill_switch.rs` names each rule's SDK source), against the lab's real
//! collector and its fault rules; and it can post Bond, as a Windows sensor's native stack does.

use std::time::Duration;

use mdelab::lab::{Lab, LabOptions};
use mdelab_catalog::{Connectivity, Region};
use mdelab_mock_cloud::faults::FaultAction;
use mdelab_mock_cloud::journal::JournalFilter;
use mdelab_mock_cloud::store::events::EventFilter;
use mdelab_sensor::Route;
use mdelab_sensor::agent::{Agent, AgentConfig, Onboarding};
use mdelab_sensor::wire::{UploadEncoding, tenant_token};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn collector_rule(action: FaultAction) -> mdelab_mock_cloud::faults::FaultRule {
    mdelab_tests::fault_rule("cyber-data", "/OneCollector", action, 1)
}

fn agent(lab: &Lab, device: &str, encoding: UploadEncoding, token: &CancellationToken) -> Agent {
    let onboarding = Onboarding::parse(&Onboarding::blob(
        "org1",
        Region::Us,
        Connectivity::Standard,
    ))
    .unwrap();
    let mut config = AgentConfig::new(
        device,
        onboarding,
        Route::Direct,
        lab.device_trust(false),
        lab.network(),
    );
    config.encoding = encoding;
    Agent::start(config, token)
}

fn stored(lab: &Lab, device: &str) -> usize {
    lab.cloud()
        .events()
        .query(&EventFilter {
            device: Some(device.into()),
            ..EventFilter::default()
        })
        .len()
}

fn collector_posts(lab: &Lab) -> Vec<u64> {
    let filter = JournalFilter {
        path: Some("/OneCollector".into()),
        ..JournalFilter::default()
    };
    let mut times: Vec<u64> = lab
        .cloud()
        .journal()
        .entries(&filter)
        .into_iter()
        .map(|e| e.time_ms)
        .collect();
    times.sort_unstable();
    times
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_on_a_503_drops_the_tenants_events_and_sends_nothing_more() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let token = CancellationToken::new();
    // The answer is a 503 (normally retried) that also kills the tenant, with the C++ SDK's
    // `:all` suffix: every answer's kill counts, and the batch is not retried but dropped.
    for action in [
        FaultAction::Status { status: 503 },
        FaultAction::KillTokens {
            tokens: format!("{}:all", tenant_token("org1")),
            duration: "60".into(),
            legacy: false,
        },
    ] {
        lab.cloud().faults().add(collector_rule(action)).unwrap();
    }
    let sensor = agent(&lab, "dev-kill", UploadEncoding::Json, &token);
    for i in 0..20 {
        sensor.emit("Mdelab.Test.Kill", serde_json::json!({"i": i}));
    }
    assert!(
        sensor
            .wait_until(|s| s.killed == 1 && s.cached == 0, WAIT)
            .await,
        "{:?}",
        sensor.stats()
    );
    // Events generated while the kill lasts are dropped on the device, never sent.
    for i in 20..30 {
        sensor.emit("Mdelab.Test.Kill", serde_json::json!({"i": i}));
    }
    let stats = sensor.stats();
    assert_eq!(
        (stats.generated, stats.killed_dropped),
        (30, 30),
        "{stats:?}"
    );
    assert_eq!(stats.retries, 0, "a killed batch is not retried");
    assert_eq!(collector_posts(&lab).len(), 1);
    assert_eq!(stored(&lab, "dev-kill"), 0);
    sensor.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_duration_header_kills_and_another_tenant_token_does_not() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let token = CancellationToken::new();
    // A token of another tenant, then ours with the legacy header (JS `HttpManager.js` reads
    // `kill-duration-seconds`).
    lab.cloud()
        .faults()
        .add(collector_rule(FaultAction::KillTokens {
            tokens: "org1".into(),
            duration: "60".into(),
            legacy: false,
        }))
        .unwrap();
    let sensor = agent(&lab, "dev-legacy", UploadEncoding::Json, &token);
    sensor.emit("Mdelab.Test.Kill", serde_json::json!({"i": 0}));
    assert!(sensor.wait_until(|s| s.accepted == 1, WAIT).await);
    assert_eq!(
        sensor.stats().killed,
        0,
        "a tenant id alone is not our token"
    );

    lab.cloud()
        .faults()
        .add(collector_rule(FaultAction::KillTokens {
            tokens: tenant_token("org1"),
            duration: "60".into(),
            legacy: true,
        }))
        .unwrap();
    sensor.emit("Mdelab.Test.Kill", serde_json::json!({"i": 1}));
    assert!(sensor.wait_until(|s| s.killed == 1, WAIT).await);
    sensor.emit("Mdelab.Test.Kill", serde_json::json!({"i": 2}));
    // The third event is dropped when emitted, or, if it raced the kill being recorded, from
    // the cache before its upload: either way it is counted, never sent.
    assert!(
        sensor.wait_until(|s| s.killed_dropped == 2, WAIT).await,
        "{:?}",
        sensor.stats()
    );
    let stats = sensor.stats();
    assert_eq!(stats.killed_dropped, 2, "{stats:?}");
    sensor.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn this_request_only_drops_one_batch_and_later_events_arrive() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let token = CancellationToken::new();
    lab.cloud()
        .faults()
        .add(collector_rule(FaultAction::KillTokens {
            tokens: tenant_token("org1"),
            duration: "this-request-only".into(),
            legacy: false,
        }))
        .unwrap();
    let sensor = agent(&lab, "dev-once", UploadEncoding::Json, &token);
    for i in 0..5 {
        sensor.emit("Mdelab.Test.Once", serde_json::json!({"i": i}));
    }
    assert!(sensor.wait_until(|s| s.killed_dropped == 5, WAIT).await);
    for i in 5..8 {
        sensor.emit("Mdelab.Test.Once", serde_json::json!({"i": i}));
    }
    assert!(
        sensor.wait_until(|s| s.accepted == 3, WAIT).await,
        "{:?}",
        sensor.stats()
    );
    sensor.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_holds_every_upload_until_it_passes() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let token = CancellationToken::new();
    lab.cloud()
        .faults()
        .add(collector_rule(FaultAction::RetryAfter { seconds: 2 }))
        .unwrap();
    let sensor = agent(&lab, "dev-retry-after", UploadEncoding::Json, &token);
    sensor.emit("Mdelab.Test.Hold", serde_json::json!({"i": 0}));
    assert!(sensor.wait_until(|s| s.retry_after_holds == 1, WAIT).await);
    sensor.emit("Mdelab.Test.Hold", serde_json::json!({"i": 1}));
    assert!(sensor.wait_until(|s| s.accepted == 2, WAIT).await);
    let posts = collector_posts(&lab);
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(
        posts[1] - posts[0] >= 1_900,
        "the second upload came {} ms after a Retry-After of 2 s",
        posts[1] - posts[0]
    );
    sensor.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sensor_posting_bond_is_stored_like_one_posting_json() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let token = CancellationToken::new();
    let json = agent(&lab, "dev-json", UploadEncoding::Json, &token);
    let bond = agent(&lab, "dev-bond", UploadEncoding::Bond, &token);
    for i in 0..50 {
        let data = serde_json::json!({"i": i, "path": format!("C:\\\\tmp\\\\{i}"), "ok": i % 2 == 0, "r": 0.5});
        json.emit("Mdelab.Test.Encoding", data.clone());
        bond.emit("Mdelab.Test.Encoding", data);
    }
    assert!(json.wait_until(|s| s.accepted == 50, WAIT).await);
    assert!(
        bond.wait_until(|s| s.accepted == 50, WAIT).await,
        "{:?}",
        bond.stats()
    );
    let data = |device: &str| -> Vec<serde_json::Value> {
        let mut d: Vec<_> = lab
            .cloud()
            .events()
            .query(&EventFilter {
                device: Some(device.into()),
                ..EventFilter::default()
            })
            .into_iter()
            .map(|e| {
                assert_eq!(e.tenant.as_deref(), Some("org1"));
                e.event["data"].clone()
            })
            .collect();
        d.sort_by_key(|v| v["i"].as_u64());
        d
    };
    assert_eq!(data("dev-bond"), data("dev-json"));
    json.stop().await;
    bond.stop().await;
}
