//! The TLS-intercepting proxy.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::access_log::ClientHandshake;
use crate::intercept::{self, InterceptConfig};
use crate::{Outcome, TlsHandling, UpstreamResult};

fn config(lab: &Lab) -> InterceptConfig {
    InterceptConfig::new(
        "intercept",
        lab.destinations(),
        lab.pki.inspection().clone(),
        lab.lab_roots(),
    )
}

async fn start(lab: &Lab, config: InterceptConfig) -> crate::Running {
    intercept::spawn(bind().await, config, &lab.token).expect("spawn the intercepting proxy")
}

async fn tunnel(proxy: &crate::Running, host: &str) -> TcpStream {
    let (status, head, tcp) = open_tunnel(proxy.addr(), &format!("{host}:443"), None).await;
    assert_eq!(status, 200, "{head}");
    tcp
}

#[tokio::test]
async fn a_client_trusting_the_inspection_ca_is_inspected() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;

    let tcp = tunnel(&proxy, GW).await;
    let tls = tls_connect(tcp, &lab.inspection_root(), &[b"http/1.1"], GW)
        .await
        .expect("a client trusting the inspection CA accepts the minted leaf");
    assert_eq!(served_issuer(&tls), lab.inspection_cn());
    let response = h1_send(tls, get("/test", GW)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().as_ref(), b"ok");
    assert_eq!(header(&response, "x-seen-host"), GW);

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    assert_eq!((record.status, record.outcome), (200, Outcome::Completed));
    assert_eq!(
        record.tls,
        Some(TlsHandling::Inspected {
            sni: GW.into(),
            client: ClientHandshake::Completed,
            upstream: UpstreamResult::Connected {
                alpn: Some("http/1.1".into())
            },
        })
    );
    assert_eq!(record.relayed.len(), 1);
    let exchange = &record.relayed[0];
    assert_eq!(
        (exchange.method.as_str(), exchange.path.as_str()),
        ("GET", "/test")
    );
    assert_eq!(
        (exchange.status, exchange.version.as_str()),
        (200, "HTTP/1.1")
    );
}

#[tokio::test]
async fn a_pinning_client_rejects_the_minted_leaf_with_an_alert() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;

    let tcp = tunnel(&proxy, GW).await;
    let err = tls_connect(tcp, &lab.lab_roots(), &[b"http/1.1"], GW)
        .await
        .expect_err("a client trusting only the lab roots refuses the minted leaf");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    assert_eq!(record.outcome, Outcome::ClientTlsFailed);
    let Some(TlsHandling::Inspected {
        sni,
        client,
        upstream,
    }) = record.tls
    else {
        panic!("not inspected: {record:?}");
    };
    assert_eq!(sni, GW);
    assert_eq!(
        client,
        ClientHandshake::RejectedWithAlert {
            alert: "UnknownCA".into()
        }
    );
    assert!(
        matches!(upstream, UpstreamResult::Connected { .. }),
        "{upstream:?}"
    );

    // The listener keeps serving.
    let tcp = tunnel(&proxy, GW).await;
    tls_connect(tcp, &lab.inspection_root(), &[], GW)
        .await
        .expect("next client is served");
}

#[tokio::test]
async fn a_client_closing_mid_handshake_is_classified() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;

    let mut tcp = tunnel(&proxy, GW).await;
    // Send a real ClientHello, then hang up without an alert.
    let client_config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    let name = ServerName::try_from(GW).expect("name").to_owned();
    let mut conn = rustls::ClientConnection::new(Arc::new(client_config), name).expect("client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("ClientHello bytes");
    tcp.write_all(&hello).await.expect("send ClientHello");
    // Wait for the proxy's first flight, so the hang-up lands mid-handshake.
    let mut first = [0u8; 1];
    tcp.read_exact(&mut first)
        .await
        .expect("ServerHello arrives");
    drop(tcp);

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    let Some(TlsHandling::Inspected { client, .. }) = record.tls else {
        panic!("not inspected: {record:?}");
    };
    assert_eq!(client, ClientHandshake::ClosedDuringHandshake);
}

#[tokio::test]
async fn the_bypass_list_splices_exactly_the_listed_hosts() {
    let lab = Lab::start().await;
    let config = InterceptConfig {
        bypass: vec![
            "WINATP-GW-CUS.Microsoft.com".into(),
            "*.unused.example".into(),
        ],
        ..config(&lab)
    };
    let proxy = start(&lab, config).await;
    let mut trusted = lab.lab_roots();
    trusted.extend(lab.inspection_root());

    let tcp = tunnel(&proxy, GW).await;
    let tls = tls_connect(tcp, &trusted, &[b"http/1.1"], GW)
        .await
        .expect("TLS");
    assert_eq!(
        served_issuer(&tls),
        lab.pinned_issuing_cn(),
        "bypassed: the origin's own chain"
    );
    assert_eq!(h1_send(tls, get("/test", GW)).await.status(), 200);

    let tcp = tunnel(&proxy, OTHER).await;
    let tls = tls_connect(tcp, &trusted, &[b"http/1.1"], OTHER)
        .await
        .expect("TLS");
    assert_eq!(
        served_issuer(&tls),
        lab.inspection_cn(),
        "not bypassed: a minted leaf"
    );
    assert_eq!(h1_send(tls, get("/test", OTHER)).await.status(), 200);

    let log = proxy.log();
    let spliced = log
        .wait_for(|r| r.target == format!("{GW}:443"), WAIT)
        .await
        .expect("logged");
    assert_eq!(spliced.tls, Some(TlsHandling::Spliced { sni: GW.into() }));
    assert!(spliced.relayed.is_empty());
    let inspected = log
        .wait_for(|r| r.target == format!("{OTHER}:443"), WAIT)
        .await
        .expect("logged");
    assert!(
        matches!(&inspected.tls, Some(TlsHandling::Inspected { sni, client: ClientHandshake::Completed, .. }) if sni == OTHER),
        "{inspected:?}"
    );
    assert_eq!(
        proxy.cached_names(),
        vec![OTHER.to_owned()],
        "nothing minted for bypassed hosts"
    );
}

#[tokio::test]
async fn minted_leaves_are_cached_per_name() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;

    for _ in 0..2 {
        let tcp = tunnel(&proxy, GW).await;
        tls_connect(tcp, &lab.inspection_root(), &[], GW)
            .await
            .expect("TLS");
    }
    assert_eq!(proxy.minted(), 1);
    assert_eq!(proxy.cached_names(), vec![GW.to_owned()]);

    let tcp = tunnel(&proxy, OTHER).await;
    tls_connect(tcp, &lab.inspection_root(), &[], OTHER)
        .await
        .expect("TLS");
    assert_eq!(proxy.minted(), 2);
}

#[tokio::test]
async fn h2_clients_are_relayed_over_h2_with_long_polls() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;

    let tcp = tunnel(&proxy, GW).await;
    let tls = tls_connect(tcp, &lab.inspection_root(), &[b"h2", b"http/1.1"], GW)
        .await
        .expect("TLS");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (body, expected) = large_body(3 * 1024 * 1024 + 5);
    let uri = |path: &str| format!("https://{GW}{path}");
    let responses = h2_send(
        tls,
        vec![
            Request::get(uri("/hold?ms=300"))
                .body(Full::new(Bytes::new()))
                .expect("request"),
            Request::get(uri("/test"))
                .body(Full::new(Bytes::new()))
                .expect("request"),
            Request::post(uri("/echo"))
                .body(Full::new(body))
                .expect("request"),
        ],
    )
    .await;
    assert_eq!(responses[0].body().as_ref(), b"held 300");
    assert_eq!(responses[1].body().as_ref(), b"ok");
    assert_eq!(String::from_utf8_lossy(responses[2].body()), expected);
    for response in &responses {
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(header(response, "x-seen-version"), "HTTP/2.0");
        assert_eq!(header(response, "x-seen-host"), GW);
    }

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    let Some(TlsHandling::Inspected { upstream, .. }) = &record.tls else {
        panic!("not inspected: {record:?}");
    };
    assert_eq!(
        upstream,
        &UpstreamResult::Connected {
            alpn: Some("h2".into())
        }
    );
    assert_eq!(record.relayed.len(), 3);
    assert!(
        record
            .relayed
            .iter()
            .all(|e| e.version == "HTTP/2.0" && e.status == 200)
    );
}

#[tokio::test]
async fn large_uploads_pass_through_inspection_intact() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;
    let (body, expected) = large_body(4 * 1024 * 1024 + 3);

    let tcp = tunnel(&proxy, GW).await;
    let tls = tls_connect(tcp, &lab.inspection_root(), &[b"http/1.1"], GW)
        .await
        .expect("TLS");
    let response = h1_send(tls, post("/echo", GW, body)).await;
    assert_eq!(String::from_utf8_lossy(response.body()), expected);
}

#[tokio::test]
async fn an_untrusted_destination_gets_502() {
    let lab = Lab::start().await;
    let azure_only = vec![lab.pki.root(Profile::Azure).certificate().clone()];
    let config = InterceptConfig {
        upstream_roots: azure_only,
        ..config(&lab)
    };
    let proxy = start(&lab, config).await;

    let tcp = tunnel(&proxy, GW).await;
    let tls = tls_connect(tcp, &lab.inspection_root(), &[b"http/1.1"], GW)
        .await
        .expect("TLS");
    let response = h1_send(tls, get("/test", GW)).await;
    assert_eq!(response.status(), 502);

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    let Some(TlsHandling::Inspected {
        client, upstream, ..
    }) = &record.tls
    else {
        panic!("not inspected: {record:?}");
    };
    assert_eq!(client, &ClientHandshake::Completed);
    assert!(
        matches!(upstream, UpstreamResult::CertificateRejected { detail } if detail.contains("UnknownIssuer")),
        "{upstream:?}"
    );
    assert_eq!(record.relayed[0].status, 502);
    assert!(record.relayed[0].error.is_some());
}

#[tokio::test]
async fn tunnels_without_tls_are_spliced() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;

    let (status, _, tcp) = open_tunnel(proxy.addr(), &format!("{PLAIN}:8080"), None).await;
    assert_eq!(status, 200);
    let response = h1_send(tcp, get("/raw", PLAIN)).await;
    assert_eq!(
        response.body().as_ref(),
        format!("path=/raw host={PLAIN}").as_bytes()
    );

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    assert_eq!(record.outcome, Outcome::Completed);
    assert!(record.tls.is_none());
    assert!(record.bytes_up > 0 && record.bytes_down > 0);
}

#[tokio::test]
async fn upgrades_pass_through_inspection() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;

    let tcp = tunnel(&proxy, GW).await;
    let tls = tls_connect(tcp, &lab.inspection_root(), &[b"http/1.1"], GW)
        .await
        .expect("TLS");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn.with_upgrades());
    let request = Request::get("/upgrade")
        .header(http::header::HOST, GW)
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "echo")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let mut response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let upgraded = hyper::upgrade::on(&mut response).await.expect("upgraded");
    let mut io = TokioIo::new(upgraded);
    io.write_all(b"ping through the proxy")
        .await
        .expect("write");
    let mut echoed = [0u8; 22];
    io.read_exact(&mut echoed).await.expect("read the echo");
    assert_eq!(&echoed, b"ping through the proxy");
    drop(io);

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    assert_eq!(record.relayed[0].status, 101);
    assert!(record.bytes_up > 22 && record.bytes_down > 22);
}

#[tokio::test]
async fn shutdown_frees_the_intercepting_proxys_port() {
    let lab = Lab::start().await;
    let proxy = start(&lab, config(&lab)).await;
    let addr = proxy.addr();
    let tcp = tunnel(&proxy, GW).await;
    let tls = tls_connect(tcp, &lab.inspection_root(), &[b"http/1.1"], GW)
        .await
        .expect("TLS");
    proxy.shutdown().await;
    drop(tls);
    tokio::net::TcpListener::bind(addr)
        .await
        .expect("the port can be bound again");
}
