//! The emulated sensor's verdicts, each reached for real: trust, pin, name, expiry, DNS, TCP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mdelab_catalog::{ProbeMethod, Scheme};
use mdelab_certs::{IssuedLeaf, Profile};
use mdelab_sensor::{self as sensor, ClientKind, DeviceTrust, Layer, Route, Target, Verdict};
use mdelab_tests::start_lab;
use tokio::net::TcpListener;

fn target(host: &str, path: &str, pinned: bool) -> Target {
    Target {
        host: host.into(),
        port: 443,
        scheme: Scheme::Https,
        method: ProbeMethod::Get,
        path: path.into(),
        pinned,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sensor_connects_to_a_pinned_endpoint_through_the_pinned_chain() {
    let lab = start_lab().await;
    let t = target("winatp-gw-cus.microsoft.com", "/test", true);
    let out = sensor::probe(
        &t,
        ClientKind::Sensor,
        &Route::Direct,
        &lab.device_trust(false),
        &lab.network(),
    )
    .await;
    assert_eq!(out.verdict, Verdict::Connected { status: 200 });
    assert_eq!(
        out.served_issuer.as_deref(),
        Some("MDE Lab Secure Server CA 2011")
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_pins_fail_the_sensor_at_the_pin_layer_but_not_the_browser() {
    let lab = start_lab().await;
    let trust = DeviceTrust {
        sensor_pins: lab.pki().pins(Profile::Azure),
        ..lab.device_trust(false)
    };
    let t = target("winatp-gw-cus.microsoft.com", "/test", true);
    let sensor_out = sensor::probe(
        &t,
        ClientKind::Sensor,
        &Route::Direct,
        &trust,
        &lab.network(),
    )
    .await;
    assert_eq!(sensor_out.verdict, Verdict::PinMismatch);
    assert_eq!(sensor_out.layer, Layer::TlsPin);
    assert!(
        sensor_out
            .evidence
            .contains("chain issued by 'MDE Lab Secure Server CA 2011'"),
        "{}",
        sensor_out.evidence
    );
    let browser_out = sensor::probe(
        &t,
        ClientKind::Browser,
        &Route::Direct,
        &trust,
        &lab.network(),
    )
    .await;
    assert_eq!(browser_out.verdict, Verdict::Connected { status: 200 });
    // Unpinned endpoints are not pin-checked even by the sensor.
    let blob = target("ussus1eastprod.blob.core.windows.net", "/", false);
    let blob_out = sensor::probe(
        &blob,
        ClientKind::Sensor,
        &Route::Direct,
        &trust,
        &lab.network(),
    )
    .await;
    assert_eq!(blob_out.verdict, Verdict::Connected { status: 400 });
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_without_the_lab_roots_sees_an_unknown_issuer() {
    let lab = start_lab().await;
    let trust = DeviceTrust {
        roots: vec![lab.pki().inspection().authority().certificate().clone()],
        sensor_pins: lab.pki().pins(Profile::Pinned),
    };
    let t = target("winatp-gw-cus.microsoft.com", "/test", true);
    let out = sensor::probe(
        &t,
        ClientKind::Browser,
        &Route::Direct,
        &trust,
        &lab.network(),
    )
    .await;
    assert_eq!(out.verdict, Verdict::UnknownIssuer);
    assert_eq!(out.layer, Layer::TlsTrust);
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_refusal_nxdomain_and_silence_are_dns_verdicts() {
    let lab = start_lab().await;
    let trust = lab.device_trust(false);
    let mut network = lab.network();
    let outside = sensor::probe(
        &target("www.example.org", "/", false),
        ClientKind::Browser,
        &Route::Direct,
        &trust,
        &network,
    )
    .await;
    assert!(
        matches!(&outside.verdict, Verdict::DnsFailure { reason } if reason.contains("REFUSED")),
        "{:?}",
        outside.verdict
    );
    let missing = sensor::probe(
        &target("nope.microsoft.com", "/", false),
        ClientKind::Browser,
        &Route::Direct,
        &trust,
        &network,
    )
    .await;
    assert!(
        matches!(&missing.verdict, Verdict::DnsFailure { reason } if reason.contains("NXDOMAIN")),
        "{:?}",
        missing.verdict
    );
    lab.dns()
        .faults()
        .set("winatp-gw-cus.microsoft.com", mdelab_dns::Fault::Drop);
    network.step_timeout = Duration::from_millis(300);
    let dropped = sensor::probe(
        &target("winatp-gw-cus.microsoft.com", "/test", true),
        ClientKind::Sensor,
        &Route::Direct,
        &trust,
        &network,
    )
    .await;
    assert_eq!(dropped.layer, Layer::Dns, "{dropped:?}");
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_port_is_refused() {
    let lab = start_lab().await;
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut network = lab.network();
    network.port_map.insert(443, port);
    let out = sensor::probe(
        &target("winatp-gw-cus.microsoft.com", "/test", true),
        ClientKind::Sensor,
        &Route::Direct,
        &lab.device_trust(false),
        &network,
    )
    .await;
    assert_eq!(out.verdict, Verdict::Refused);
    lab.shutdown().await.unwrap();
}

/// Serves one fixed chain on a fresh port; returns the port.
async fn rogue_server(leaf: IssuedLeaf) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_for_another_name_or_out_of_date_is_named_as_such() {
    let lab = start_lab().await;
    let issuer = lab.pki().issuer(Profile::Pinned);
    let t = target("winatp-gw-cus.microsoft.com", "/test", true);
    let trust = lab.device_trust(false);

    let wrong_name = rogue_server(issuer.issue(&["other.example"]).unwrap()).await;
    let mut network = lab.network();
    network.port_map.insert(443, wrong_name);
    let out = sensor::probe(&t, ClientKind::Sensor, &Route::Direct, &trust, &network).await;
    assert_eq!(out.verdict, Verdict::NameMismatch);

    let past = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    let expired_leaf = issuer
        .issue_with_validity(
            &["winatp-gw-cus.microsoft.com"],
            past,
            past + Duration::from_secs(3600),
        )
        .unwrap();
    network
        .port_map
        .insert(443, rogue_server(expired_leaf).await);
    let out = sensor::probe(&t, ClientKind::Sensor, &Route::Direct, &trust, &network).await;
    assert_eq!(out.verdict, Verdict::Expired);
    lab.shutdown().await.unwrap();
}

/// An interceptor the device trusts that appends the genuine pinned intermediate (public, no
/// key needed) to its minted chain: a client that accepts a pin found on any presented
/// certificate is fooled (the OkHttp CVE-2016-2402 class); the sensor pins the path that
/// validation built, which runs through the inspection CA, and refuses. A browser, which does
/// not pin, goes through.
#[tokio::test(flavor = "multi_thread")]
async fn an_interceptor_appending_the_genuine_pinned_intermediate_is_a_pin_mismatch() {
    let lab = start_lab().await;
    let pki = lab.pki();
    let mut config = mdelab_proxy::intercept::InterceptConfig::new(
        "appender",
        lab.destinations(),
        pki.inspection().clone(),
        pki.trust_anchors(),
    );
    let genuine = pki.issuer(Profile::Pinned).authority();
    config.append_to_chain = vec![genuine.certificate().clone(), genuine.root().clone()];
    let token = tokio_util::sync::CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = mdelab_proxy::intercept::spawn(listener, config, &token).unwrap();
    let route = Route::Proxy(sensor::ProxyRoute {
        addr: proxy.addr(),
        credentials: None,
    });
    let trusts_inspection = lab.device_trust(true);
    for host in [
        "winatp-gw-cus.microsoft.com",
        "edr-cus.us.endpoint.security.microsoft.com",
    ] {
        let t = target(host, "/test", true);
        let out = sensor::probe(
            &t,
            ClientKind::Sensor,
            &route,
            &trusts_inspection,
            &lab.network(),
        )
        .await;
        assert_eq!(
            out.verdict,
            Verdict::PinMismatch,
            "{host}: {}",
            out.evidence
        );
        assert_eq!(out.layer, Layer::TlsPin);
        assert!(
            out.evidence.contains("MDE Lab TLS Inspection CA"),
            "{}",
            out.evidence
        );
        let browser = sensor::probe(
            &t,
            ClientKind::Browser,
            &route,
            &trusts_inspection,
            &lab.network(),
        )
        .await;
        assert!(
            matches!(browser.verdict, Verdict::Connected { .. }),
            "{host}: the unpinned browser reaches the server: {:?}",
            browser.verdict
        );
    }
    proxy.shutdown().await;
    lab.shutdown().await.unwrap();
}
