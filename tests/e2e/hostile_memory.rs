//! The memory findings replayed, scaled down: what a hostile client sends costs the lab what
//! the documented bounds say, and what is refused is refused with a clear answer and counted.

use mdelab::lab::{Lab, LabOptions};
use mdelab_catalog::protocol::DEVICE_HEADER;
use mdelab_mock_cloud::ServiceConfig;
use mdelab_mock_cloud::journal::{MAX_DEVICE, MAX_PATH};
use mdelab_mock_cloud::routes::onecollector::COST_MULTIPLE;
use mdelab_sensor::{HttpRequest, Origin};
use mdelab_tests::tool;

const COLLECTOR: &str = "us-v20.events.data.microsoft.com";

/// Sends one request as the sensor would, straight to the lab; (status, body as JSON).
async fn send(
    lab: &Lab,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let origin = Origin::https(COLLECTOR, true);
    let mut request = HttpRequest::new(method, path).body(body);
    for (name, value) in headers {
        request = request.header(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            *value,
        );
    }
    request.max_response = 1024 * 1024;
    let response = mdelab_tests::send_direct(lab, &origin, &request)
        .await
        .expect("the cloud answers");
    mdelab_tests::status_and_json(&response)
}

async fn post_1ds(lab: &Lab, device: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    send(
        lab,
        http::Method::POST,
        "/OneCollector/1.0",
        &[
            ("content-type", "application/x-json-stream"),
            (DEVICE_HEADER, device),
        ],
        body,
    )
    .await
}

/// `/_lab/stats` through the admin API, as a tool reads it.
fn lab_stats(lab: &Lab) -> serde_json::Value {
    let out = tool("curl", "curl")
        .args(["-sS", "--max-time", "10", "-H"])
        .arg(format!("Authorization: Bearer {}", lab.admin_token()))
        .arg(format!("http://{}/_lab/stats", lab.admin_addr()))
        .output()
        .expect("curl runs");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_1ds_flood_costs_at_most_the_documented_multiple() {
    let lab = Lab::start(&LabOptions::default()).await.unwrap();
    let body = "{}\n".repeat(10_000).into_bytes();
    // The finding: a 30 KB ticket cloned into every one of the body's events.
    let ticket = "t".repeat(30 * 1024);
    let (status, answer) = post_1ds(&lab, &ticket, body.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("device_id_too_long"))
    );
    let stats = lab.cloud().events().stats();
    assert_eq!(
        (stats.accepted, stats.held, stats.bodies_rejected),
        (0, 0, 1)
    );

    // The same body from an honest device is stored, charged at what it costs parsed: more
    // than its 3 bytes of text per event, less than the multiple of its size.
    let (status, answer) = post_1ds(&lab, &"d".repeat(200), body.clone()).await;
    assert_eq!(
        (status, answer["acc"].as_u64()),
        (200, Some(10_000)),
        "{answer}"
    );
    let stats = lab.cloud().events().stats();
    assert!(
        stats.bytes > 10_000 * 100,
        "{stats:?}: the budget counts parsed events"
    );
    assert!(stats.bytes <= COST_MULTIPLE * body.len(), "{stats:?}");

    // Objects nested in objects: ~6 bytes of text, a B-tree node (> 600 bytes) parsed.
    let line = format!("{}{{}}{}\n", "{\"a\":".repeat(50), "}".repeat(50));
    let (status, answer) = post_1ds(&lab, "dev", line.repeat(50).into_bytes()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("body_too_costly")),
        "{answer}"
    );
    let held_before = stats.held;

    let stats = lab_stats(&lab);
    let events = &stats["events"];
    assert_eq!(events["bodies_too_costly"], 1, "{stats}");
    assert_eq!(events["bodies_rejected"], 2, "{stats}");
    assert_eq!(events["held"].as_u64(), Some(held_before as u64), "{stats}");
    assert!(events["bytes"].as_u64().unwrap() <= events["byte_budget"].as_u64().unwrap());
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_flood_with_long_fields_stays_under_its_byte_bound() {
    const BUDGET: usize = 256 * 1024;
    let lab = Lab::start(&LabOptions {
        services: ServiceConfig {
            journal_capacity_bytes: BUDGET,
            ..ServiceConfig::default()
        },
        ..LabOptions::default()
    })
    .await
    .unwrap();
    let path = format!("/ping/{}", "p".repeat(25 * 1024));
    let device = "d".repeat(25 * 1024);
    const FLOOD: u64 = 200;
    for _ in 0..FLOOD {
        send(
            &lab,
            http::Method::GET,
            &path,
            &[(DEVICE_HEADER, &device)],
            Vec::new(),
        )
        .await;
    }
    let stats = lab.cloud().journal().stats();
    // Uncut, 200 entries would hold 10 MB.
    assert!(stats.bytes <= BUDGET, "{stats:?}");
    assert_eq!(stats.byte_budget, BUDGET);
    assert!(stats.truncated >= FLOOD, "{stats:?}");
    assert!(
        stats.evicted_bytes > 0 && stats.evicted == stats.evicted_bytes,
        "{stats:?}"
    );
    let newest = lab
        .cloud()
        .journal()
        .entries(&mdelab_mock_cloud::journal::JournalFilter {
            limit: Some(1),
            ..Default::default()
        });
    let newest = &newest[0];
    assert!(
        newest.path.len() < MAX_PATH + 32 && newest.path.contains("…[+"),
        "{}",
        newest.path.len()
    );
    let id = newest.device_id.as_deref().unwrap();
    assert!(id.len() < MAX_DEVICE + 32 && id.contains("…[+"));
    let journal = &lab_stats(&lab)["journal"];
    assert!(
        journal["bytes"].as_u64().unwrap() <= BUDGET as u64,
        "{journal}"
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_uploads_past_the_store_are_refused_while_in_flight() {
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    const CAPACITY: u64 = 1024 * 1024;
    const ACCOUNT: &str = "ussus1eastprod";
    let lab = Lab::start(&LabOptions {
        services: ServiceConfig {
            blob_capacity_bytes: CAPACITY,
            blob_max_bytes: CAPACITY,
            ..ServiceConfig::default()
        },
        ..LabOptions::default()
    })
    .await
    .unwrap();
    let base = format!("https://{ACCOUNT}.blob.core.windows.net");
    let url = |name: &str| {
        mdelab_mock_cloud::routes::storage::sas_url(
            lab.cloud(),
            &base,
            ACCOUNT,
            "c",
            name,
            Duration::from_secs(600),
            "cw",
        )
    };
    // Upload A streams (chunked, no length) from a pipe the test holds open.
    let manifest = lab.manifest();
    let mut a = mdelab_tests::curl_status()
        .args(["--http1.1", "-X", "PUT", "-T", "-"])
        .args(["-H", "x-ms-blob-type: BlockBlob"])
        .arg("--cacert")
        .arg(&manifest.trust_bundle)
        .args(["--connect-to", &format!("::{}", manifest.https)])
        .arg(url("a"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    let mut pipe = a.stdin.take().unwrap();
    pipe.write_all(&vec![b'a'; 900 * 1024]).unwrap();
    pipe.flush().unwrap();
    // Wait for the cloud to hold A's bytes in flight (an observed state, not a guessed delay).
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab.cloud().blobs().stats().in_flight < 900 * 1024 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            lab.cloud().blobs().stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Upload B would pass the store with A in flight: refused while A streams.
    // curl, like A: it reads an early final answer while it is still sending (the store
    // answers before reading a body it refuses).
    let body_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body_file.path(), vec![b'b'; 200 * 1024]).unwrap();
    let b = tool("curl", "curl")
        .args(["-sS", "--http1.1", "--max-time", "20", "-X", "PUT"])
        .args(["-H", "x-ms-blob-type: BlockBlob", "-w", "\n%{http_code}"])
        .arg("--data-binary")
        .arg(format!("@{}", body_file.path().display()))
        .arg("--cacert")
        .arg(&manifest.trust_bundle)
        .args(["--connect-to", &format!("::{}", manifest.https)])
        .arg(url("b"))
        .output()
        .expect("curl runs");
    let out = String::from_utf8_lossy(&b.stdout).into_owned();
    let (text, status) = out.rsplit_once('\n').unwrap_or(("", &out));
    assert_eq!(status, "503", "{out}");
    assert!(text.contains("<Code>ServerBusy</Code>"), "{text}");
    let stats = lab.cloud().blobs().stats();
    assert!(stats.bytes + stats.in_flight <= CAPACITY, "{stats:?}");
    assert_eq!(stats.refused_in_flight, 1, "{stats:?}");
    // A completes once its body ends, and releases its reservation.
    drop(pipe);
    let out = a.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201");
    let blobs = &lab_stats(&lab)["blobs"];
    assert_eq!(blobs["in_flight"], 0, "{blobs}");
    assert_eq!(blobs["stored"], 1, "{blobs}");
    assert_eq!(blobs["refused_in_flight"], 1, "{blobs}");
    assert!(blobs["metadata_bytes"].as_u64().unwrap() > 0, "{blobs}");
    lab.shutdown().await.unwrap();
}
