//! Throughput of the lab, measured (not asserted): `cargo bench -p mdelab`.
//!
//! - TLS exchanges per second, each on a fresh connection and handshake: direct, through the
//!   CONNECT proxy (a splice) and through the inspecting proxy (a minted leaf, cached).
//! - 1DS ingestion: events per second in deflated batches of 100, JSON lines and Bond.
//! - A large upload through the CONNECT proxy's tunnel (`copy_bidirectional`), MiB/s.
//!
//! Run on an otherwise idle machine; the figures vary with it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mdelab::Lab;
use mdelab_catalog::Catalog;
use mdelab_sensor::{self as sensor, ClientKind, Origin, ProxyRoute, Route, Target, wire};

const EXCHANGES: usize = 400;
const CONCURRENCY: usize = 8;

async fn rate(label: &str, lab: &Lab, route: Route, client: ClientKind, trusts_inspection: bool) {
    let endpoint = Catalog::mde()
        .endpoints()
        .iter()
        .find(|e| e.host == "winatp-gw-cus.microsoft.com")
        .unwrap();
    let target = Arc::new(Target::from(endpoint));
    let trust = Arc::new(lab.device_trust(trusts_inspection));
    let network = Arc::new(lab.network());
    let route = Arc::new(route);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (target, trust, network, route) = (
            target.clone(),
            trust.clone(),
            network.clone(),
            route.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..EXCHANGES / CONCURRENCY {
                let out = sensor::probe(&target, client, &route, &trust, &network).await;
                ok += usize::from(matches!(
                    out.verdict,
                    sensor::Verdict::Connected { status: 200 }
                ));
            }
            ok
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += task.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label:<52} {:>8.0} exchanges/s  ({ok}/{EXCHANGES} ok, {secs:.2} s)",
        EXCHANGES as f64 / secs
    );
}

async fn ingestion(lab: &Lab, encoding: wire::UploadEncoding) {
    let origin = Origin::https("us-v20.events.data.microsoft.com", true);
    let events: Vec<serde_json::Value> = (0..100)
        .map(|i| serde_json::json!({"ver": "4.0", "name": "Bench", "iKey": "o:bench", "data": {"i": i, "pad": "x".repeat(200)}}))
        .collect();
    let request = wire::onecollector_upload(
        "/OneCollector/1.0",
        "bench",
        "bench-device",
        &events,
        encoding,
        None,
    );
    let posts = 200;
    let before = lab.cloud().events().stats().accepted;
    let started = Instant::now();
    let (trust, network) = (lab.device_trust(false), lab.network());
    for _ in 0..posts {
        let response = sensor::send(
            &origin,
            ClientKind::Sensor,
            &Route::Direct,
            &trust,
            &network,
            &request,
        )
        .await
        .unwrap();
        assert_eq!(response.status, 200);
    }
    let secs = started.elapsed().as_secs_f64();
    let events = lab.cloud().events().stats().accepted - before;
    let label = match encoding {
        wire::UploadEncoding::Json => "1DS ingestion, JSON lines (zlib, 100 per post)",
        wire::UploadEncoding::Bond => "1DS ingestion, Bond records (deflate, 100 per post)",
    };
    println!(
        "{label:<52} {:>8.0} events/s     ({events} accepted in {posts} posts, {secs:.2} s)",
        events as f64 / secs
    );
}

async fn upload(lab: &Lab) {
    let mib = 64u64;
    let admin = lab.admin();
    let minted = admin
        .post("/_lab/storage/sas", &serde_json::json!({"account": "ussus1eastprod", "container": "bench", "blob": "big.bin", "permissions": "cw"}))
        .await
        .unwrap();
    let url: http::Uri = minted["url"].as_str().unwrap().parse().unwrap();
    let origin = Origin::https(url.host().unwrap(), false);
    let data: Vec<u8> = (0..mib * 1024 * 1024)
        .map(|i| ((i * 2_654_435_761) >> 24) as u8)
        .collect();
    let mut request = wire::blob_put(
        url.path_and_query().unwrap().as_str(),
        "bench-device",
        data.into(),
    )
    .timeout(Duration::from_secs(120));
    request.max_response = 1024 * 1024;
    let route = Route::Proxy(ProxyRoute {
        addr: lab.connect_proxy().addr,
        credentials: None,
    });
    let started = Instant::now();
    let response = sensor::send(
        &origin,
        ClientKind::Sensor,
        &route,
        &lab.device_trust(false),
        &lab.network(),
        &request,
    )
    .await
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(response.status, 201);
    println!(
        "{:<52} {:>8.0} MiB/s        ({mib} MiB in {secs:.2} s, TLS through the tunnel)",
        "SAS upload through the CONNECT proxy",
        mib as f64 / secs
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let lab = Lab::builder()
            .services(mdelab_mock_cloud::ServiceConfig { journal_capacity: 1000, ..Default::default() })
            .start()
            .await
            .unwrap();
        println!("mdelab lab throughput ({CONCURRENCY} concurrent clients; fresh TLS connection per exchange)");
        rate("sensor, direct (pinned)", &lab, Route::Direct, ClientKind::Sensor, false).await;
        let via = |addr| Route::Proxy(ProxyRoute { addr, credentials: None });
        rate("sensor, through the CONNECT proxy (splice)", &lab, via(lab.connect_proxy().addr), ClientKind::Sensor, false).await;
        rate("browser, through the inspecting proxy", &lab, via(lab.inspect_proxy().addr), ClientKind::Browser, true).await;
        ingestion(&lab, wire::UploadEncoding::Json).await;
        ingestion(&lab, wire::UploadEncoding::Bond).await;
        upload(&lab).await;
        lab.shutdown().await.unwrap();
    });
}
