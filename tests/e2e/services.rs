//! The cloud's services with the sensor as a real client: cyber data under faults and an outage,
//! Live Response through a CONNECT proxy and (failing) through an inspecting one, bad 1DS bodies.

use std::collections::BTreeMap;
use std::time::Duration;

use mdelab::lab::{Lab, LabOptions};
use mdelab_catalog::{Connectivity, Region};
use mdelab_mock_cloud::ServiceConfig;
use mdelab_mock_cloud::faults::{FaultAction, FaultRule};
use mdelab_mock_cloud::store::events::EventFilter;
use mdelab_mock_cloud::store::live_response::LrCommand;
use mdelab_sensor::agent::{Agent, AgentConfig, Onboarding};
use mdelab_sensor::{HttpRequest, Origin, ProxyRoute, Route, Verdict};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn rule(service: &str, action: FaultAction, times: u32) -> FaultRule {
    mdelab_tests::fault_rule(service, "/OneCollector", action, times)
}

fn agent(
    lab: &Lab,
    device: &str,
    model: Connectivity,
    route: Route,
    trusts_inspection: bool,
    token: &CancellationToken,
) -> Agent {
    let onboarding = Onboarding::parse(&Onboarding::blob("org1", Region::Us, model)).unwrap();
    let config = AgentConfig::new(
        device,
        onboarding,
        route,
        lab.device_trust(trusts_inspection),
        lab.network(),
    );
    Agent::start(config, token)
}

/// `ext.sdk.seq` of every event the cloud holds for `device`, with how often each arrived.
fn arrived(lab: &Lab, device: &str) -> BTreeMap<u64, usize> {
    let filter = EventFilter {
        device: Some(device.into()),
        ..EventFilter::default()
    };
    let mut seen = BTreeMap::new();
    for stored in lab.cloud().events().query(&filter) {
        let seq = stored.event["ext"]["sdk"]["seq"]
            .as_u64()
            .expect("every event carries its seq");
        *seen.entry(seq).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn every_generated_event_arrives_despite_faults_and_an_outage() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let token = CancellationToken::new();
    let sensor = agent(
        &lab,
        "dev-faults",
        Connectivity::Standard,
        Route::Direct,
        false,
        &token,
    );
    // Each fault in turn, each waited out before the next (matching rules compose on one
    // request, so installing them together would test less).
    let steps = [
        (FaultAction::Status { status: 429 }, 2),
        (FaultAction::Status { status: 503 }, 2),
        (FaultAction::Reset, 2),
        // Served, then cut: the cloud has the batch but the sensor cannot know, so it re-sends.
        (FaultAction::CloseAfter { bytes: 0 }, 1),
    ];
    let mut emitted = 0;
    let mut expected_retries = 0;
    for (action, times) in steps {
        lab.cloud()
            .faults()
            .add(rule("cyber-data", action.clone(), times))
            .unwrap();
        for _ in 0..40 {
            sensor.emit("Mdelab.Test.Process", serde_json::json!({"i": emitted}));
            emitted += 1;
        }
        expected_retries += u64::from(times);
        let done = sensor
            .wait_until(
                |s| s.retries >= expected_retries && s.cached == 0 && s.generated == emitted,
                WAIT,
            )
            .await;
        assert!(done, "{action:?}: {:?}", sensor.stats());
    }
    assert!(
        lab.cloud().faults().list().is_empty(),
        "every fault fired and expired"
    );

    // The cloud becomes unreachable: its collector name stops resolving.
    let collector = "us-v20.events.data.microsoft.com";
    lab.dns()
        .faults()
        .set(collector, mdelab_dns::Fault::ServFail);
    let retries_before = sensor.stats().retries;
    for i in emitted..300 {
        sensor.emit("Mdelab.Test.Process", serde_json::json!({"i": i}));
    }
    assert!(
        sensor
            .wait_until(|s| s.retries > retries_before + 1, WAIT)
            .await
    );
    let stats = sensor.stats();
    assert!(
        stats.cached > 0,
        "events wait in the cache while the cloud is unreachable: {stats:?}"
    );
    let reason = stats.last_upload_failure.expect("the failure is recorded");
    assert!(
        matches!(reason.verdict, Verdict::DnsFailure { .. }),
        "{reason:?}"
    );

    lab.dns().faults().clear(collector);
    assert!(
        sensor
            .wait_until(|s| s.cached == 0 && s.generated == 300, WAIT)
            .await,
        "{:?}",
        sensor.stats()
    );
    let seen = arrived(&lab, "dev-faults");
    let missing: Vec<u64> = (1..=300).filter(|seq| !seen.contains_key(seq)).collect();
    assert!(missing.is_empty(), "lost events: {missing:?}");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    assert!(
        duplicates >= 1,
        "the cut response made the sensor re-send a batch the cloud had kept"
    );
    assert_eq!(seen.len(), 300);
    sensor.stop().await;
    lab.shutdown().await.unwrap();
}

fn services_with_short_live_response() -> LabOptions {
    LabOptions {
        services: ServiceConfig {
            live_response_timeout: Duration::from_secs(2),
            ..ServiceConfig::default()
        },
        ..LabOptions::default()
    }
}

fn commands() -> Vec<LrCommand> {
    vec![
        LrCommand::Dir {
            path: r"C:\Temp".into(),
        },
        LrCommand::GetFile {
            path: r"C:\Temp\report.bin".into(),
        },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn live_response_runs_through_the_connect_proxy() {
    let lab = Lab::start(&services_with_short_live_response())
        .await
        .unwrap();
    let token = CancellationToken::new();
    for (device, model) in [
        ("dev-lr-std", Connectivity::Standard),
        ("dev-lr-sl", Connectivity::Streamlined),
    ] {
        let route = Route::Proxy(ProxyRoute {
            addr: lab.connect_proxy().addr,
            credentials: None,
        });
        let sensor = agent(&lab, device, model, route, false, &token);
        let session = lab.cloud().live_response().start(device, commands(), None);
        assert!(
            sensor
                .wait_until(|s| !s.live_response.is_empty(), WAIT)
                .await,
            "{device}: no session handled: {:?}",
            sensor.stats()
        );
        let record = sensor.stats().live_response[0].clone();
        assert_eq!(record.result, "completed", "{device}: {record:?}");
        let done = lab.cloud().live_response().get(&session.id).unwrap();
        assert_eq!(
            serde_json::to_value(done.state).unwrap(),
            "closed",
            "{device}: {done:?}"
        );
        assert_eq!(done.results.len(), 2);
        let uploaded = lab.cloud().blobs().list();
        let blob = uploaded
            .iter()
            .find(|b| b.name.contains(&session.id))
            .expect("the getfile upload is stored");
        assert_eq!(blob.size, 64 * 1024);
        // The proxy carried it: its access log names the gateway.
        let log = lab.connect_proxy().log.entries();
        assert!(
            log.iter()
                .any(|r| r.target.starts_with("winatp-gw-cus") || r.target.starts_with("edr-cus"))
        );
        sensor.stop().await;
    }
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn live_response_through_an_inspecting_proxy_stays_pending_and_times_out() {
    let lab = Lab::start(&services_with_short_live_response())
        .await
        .unwrap();
    let token = CancellationToken::new();
    let route = Route::Proxy(ProxyRoute {
        addr: lab.inspect_proxy().addr,
        credentials: None,
    });
    let sensor = agent(
        &lab,
        "dev-inspected",
        Connectivity::Standard,
        route,
        true,
        &token,
    );
    let session = lab
        .cloud()
        .live_response()
        .start("dev-inspected", commands(), None);
    assert!(
        sensor
            .wait_until(|s| s.last_cnc_failure.is_some(), WAIT)
            .await
    );
    let reason = sensor.stats().last_cnc_failure.unwrap();
    assert_eq!(reason.verdict, Verdict::PinMismatch, "{reason:?}");
    assert!(
        reason.evidence.contains("MDE Lab TLS Inspection CA"),
        "{}",
        reason.evidence
    );
    // The session can only time out: the device never hears of it.
    let deadline = tokio::time::Instant::now() + WAIT;
    let state = loop {
        let state =
            serde_json::to_value(lab.cloud().live_response().get(&session.id).unwrap().state)
                .unwrap();
        if state != "pending" || tokio::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state, "timed_out");
    assert_eq!(
        sensor.stats().cnc_polls,
        0,
        "no poll ever reached the cloud"
    );
    sensor.stop().await;
    lab.shutdown().await.unwrap();
}

async fn post_1ds(lab: &Lab, encoding: Option<&str>, body: Vec<u8>) -> (u16, serde_json::Value) {
    let origin = Origin::https("us-v20.events.data.microsoft.com", true);
    let mut request = HttpRequest::new(http::Method::POST, "/OneCollector/1.0")
        .header(http::header::CONTENT_TYPE, "application/x-json-stream")
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header(http::header::CONTENT_ENCODING, encoding);
    }
    request.max_response = 1024 * 1024;
    let response = mdelab_tests::send_direct(lab, &origin, &request)
        .await
        .expect("the collector answers");
    mdelab_tests::status_and_json(&response)
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_1ds_bodies_get_documented_answers_and_are_counted() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let (status, counts) = post_1ds(
        &lab,
        None,
        b"{\"name\":\"a\"}\nnot json\n[1,2]\n{\"name\":\"b\"}\n".to_vec(),
    )
    .await;
    assert_eq!(
        (status, counts["acc"].as_u64(), counts["rej"].as_u64()),
        (200, Some(2), Some(2))
    );
    let (status, _) = post_1ds(&lab, Some("deflate"), b"this is not deflate".to_vec()).await;
    assert_eq!(status, 400);
    // An oversize body is refused before it is read; curl over HTTP/1.1 (what WinHTTP uploads
    // use) reads that early answer, which hyper's client cannot while it is still sending.
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), vec![b'x'; 4 * 1024 * 1024]).unwrap();
    let manifest = lab.manifest();
    let out = mdelab_tests::curl_status()
        .arg("--http1.1")
        .arg("--cacert")
        .arg(&manifest.trust_bundle)
        .args(["--connect-to", &format!("::{}", manifest.https)])
        .args([
            "-H",
            "content-type: application/x-json-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", big.path().display()))
        .arg("https://us-v20.events.data.microsoft.com/OneCollector/1.0")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "413");
    let stats = lab.cloud().events().stats();
    assert_eq!((stats.accepted, stats.rejected), (2, 2));
    assert!(stats.bodies_rejected >= 1);
    // The service keeps serving.
    let (status, counts) = post_1ds(&lab, None, b"{\"name\":\"c\"}\n".to_vec()).await;
    assert_eq!((status, counts["acc"].as_u64()), (200, Some(1)));
    lab.shutdown().await.unwrap();
}
