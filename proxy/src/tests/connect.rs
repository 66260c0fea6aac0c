//! The plain CONNECT proxy.

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;
use crate::connect::{self, ConnectConfig};
use crate::{Credentials, Outcome, Timeouts};

async fn start(lab: &Lab, config: ConnectConfig) -> crate::Running {
    connect::spawn(bind().await, config, &lab.token).expect("spawn the CONNECT proxy")
}

#[tokio::test]
async fn tunnel_reaches_the_tls_origin_with_the_lab_chain() {
    let lab = Lab::start().await;
    let proxy = start(&lab, ConnectConfig::new("connect", lab.destinations())).await;

    let (status, head, tcp) = open_tunnel(proxy.addr(), &format!("{GW}:443"), None).await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.starts_with("HTTP/1.1 200 Connection Established\r\n"),
        "{head}"
    );
    let tls = tls_connect(tcp, &lab.lab_roots(), &[b"http/1.1"], GW)
        .await
        .expect("a client trusting the lab roots completes TLS through the tunnel");
    assert_eq!(served_issuer(&tls), lab.pinned_issuing_cn());
    let response = h1_send(tls, get("/test", GW)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().as_ref(), b"ok");

    let record = proxy
        .log()
        .wait_for(|r| r.target == format!("{GW}:443"), WAIT)
        .await
        .expect("the tunnel is logged when it closes");
    assert_eq!(record.method, "CONNECT");
    assert_eq!(record.proxy, "connect");
    assert_eq!((record.status, record.outcome), (200, Outcome::Completed));
    assert!(record.bytes_up > 0 && record.bytes_down > 0, "{record:?}");
    assert!(record.tls.is_none());
}

#[tokio::test]
async fn credentials_are_demanded_when_configured() {
    let lab = Lab::start().await;
    let credentials = Credentials::new("svc-proxy", "p@ss");
    let config = ConnectConfig {
        credentials: Some(credentials.clone()),
        ..ConnectConfig::new("PROX01", lab.destinations())
    };
    let proxy = start(&lab, config).await;
    let target = format!("{GW}:443");

    let (status, head, _) = open_tunnel(proxy.addr(), &target, None).await;
    assert_eq!(status, 407, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authenticate: basic realm=\"mdelab\"\r\n"),
        "{head}"
    );
    let wrong = Credentials::new("svc-proxy", "wrong").header_value();
    let (status, _, _) = open_tunnel(proxy.addr(), &target, Some(&wrong)).await;
    assert_eq!(status, 407);
    let (status, _, _) =
        open_tunnel(proxy.addr(), &target, Some(&credentials.header_value())).await;
    assert_eq!(status, 200);

    // As curl does: answer the 407 on the same connection, with credentials.
    let mut tcp = TcpStream::connect(proxy.addr()).await.expect("connect");
    let connect = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    tcp.write_all(connect.as_bytes()).await.expect("send");
    let head = read_head(&mut tcp).await;
    assert_eq!(status_of(&head), 407);
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .and_then(|n| n.trim().parse().ok())
        .expect("407 has a content-length");
    let mut body = vec![0u8; length];
    tcp.read_exact(&mut body).await.expect("407 body");
    let retry = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
        credentials.header_value()
    );
    tcp.write_all(retry.as_bytes()).await.expect("send");
    assert_eq!(status_of(&read_head(&mut tcp).await), 200);

    let log = proxy.log();
    let refused = log.filter(|r| r.outcome == Outcome::AuthRequired);
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|r| r.status == 407 && r.target == target)
    );
    assert_eq!(refused[0].detail.as_deref(), Some("no proxy credentials"));
    assert_eq!(
        refused[1].detail.as_deref(),
        Some("wrong proxy credentials")
    );
}

#[tokio::test]
async fn unlisted_destinations_are_refused_without_dialling() {
    let lab = Lab::start().await;
    let proxy = start(&lab, ConnectConfig::new("connect", lab.destinations())).await;
    // A listener the proxy would reach if it dialled the unlisted address.
    let bait = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the bait");
    bait.set_nonblocking(true).expect("non-blocking bait");
    let bait_addr = bait.local_addr().expect("bait address");

    let (status, _, _) = open_tunnel(proxy.addr(), &bait_addr.to_string(), None).await;
    assert_eq!(status, 403);
    let (status, _, _) = open_tunnel(proxy.addr(), &format!("{GW}:8443"), None).await;
    assert_eq!(
        status, 403,
        "a listed host on an unlisted port is refused too"
    );
    // The proxy answers only after dialling, so a dial would already be queued here.
    let err = bait.accept().expect_err("nothing connected to the bait");
    assert_eq!(err.kind(), ErrorKind::WouldBlock);

    let denied = proxy.log().filter(|r| r.outcome == Outcome::Denied);
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[0].target, bait_addr.to_string());
    assert_eq!(denied[0].status, 403);
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_and_serving_goes_on() {
    let lab = Lab::start().await;
    let proxy = start(&lab, ConnectConfig::new("connect", lab.destinations())).await;
    let addr = proxy.addr();

    assert_eq!(
        raw_status(addr, b"CONNECT nonsense HTTP/1.1\r\nHost: x\r\n\r\n").await,
        400
    );
    assert_eq!(raw_status(addr, b"\x00\x01\x02 garbage\r\n\r\n").await, 400);
    assert_eq!(
        raw_status(addr, b"GET /x HTTP/1.1\r\nHost: proxy\r\n\r\n").await,
        400
    );
    let big = format!(
        "CONNECT {GW}:443 HTTP/1.1\r\nHost: {GW}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    assert_eq!(raw_status(addr, big.as_bytes()).await, 431);

    let (status, _, _) = open_tunnel(addr, &format!("{GW}:443"), None).await;
    assert_eq!(status, 200, "the proxy still serves after bad requests");

    let log = proxy.log();
    let bad = log
        .wait_for(
            |r| r.outcome == Outcome::BadRequest && r.method.is_empty(),
            WAIT,
        )
        .await
        .expect("the unparsable request is logged");
    assert_eq!(bad.status, 400);
    let nonsense = log.filter(|r| r.outcome == Outcome::BadRequest && r.method == "CONNECT");
    assert_eq!(nonsense.len(), 1);
    assert!(
        nonsense[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("no port")
    );
    assert_eq!(
        log.filter(|r| r.outcome == Outcome::BadRequest && r.method == "GET")
            .len(),
        1
    );
    let large = log
        .wait_for(|r| r.outcome == Outcome::HeaderTooLarge, WAIT)
        .await
        .expect("the oversized request is logged");
    assert_eq!(large.status, 431);
}

#[tokio::test]
async fn absolute_form_requests_are_forwarded_to_the_http_origin() {
    let lab = Lab::start().await;
    let proxy = start(&lab, ConnectConfig::new("connect", lab.destinations())).await;

    let tcp = TcpStream::connect(proxy.addr())
        .await
        .expect("connect to the proxy");
    let uri = format!("http://{CRL}/pki/crl/products/lab.crl?x=1");
    let response = h1_send(tcp, get(&uri, "ignored.example")).await;
    assert_eq!(response.status(), 200);
    let body = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(
        body,
        format!("path=/pki/crl/products/lab.crl?x=1 host={CRL}")
    );

    let record = proxy
        .log()
        .wait_for(|r| r.method == "GET", WAIT)
        .await
        .expect("the forwarded request is logged");
    assert_eq!(record.target, format!("{CRL}:80"));
    assert_eq!((record.status, record.outcome), (200, Outcome::Completed));
    assert_eq!(record.bytes_down, body.len() as u64);
}

#[tokio::test]
async fn large_uploads_pass_through_a_tunnel_intact() {
    let lab = Lab::start().await;
    let proxy = start(&lab, ConnectConfig::new("connect", lab.destinations())).await;
    let (body, expected) = large_body(4 * 1024 * 1024 + 17);

    let (status, _, tcp) = open_tunnel(proxy.addr(), &format!("{GW}:443"), None).await;
    assert_eq!(status, 200);
    let tls = tls_connect(tcp, &lab.lab_roots(), &[b"http/1.1"], GW)
        .await
        .expect("TLS");
    let response = h1_send(tls, post("/echo", GW, body)).await;
    assert_eq!(String::from_utf8_lossy(response.body()), expected);

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    assert!(record.bytes_up > 4 * 1024 * 1024, "{record:?}");
}

#[tokio::test]
async fn idle_tunnels_are_closed() {
    let lab = Lab::start().await;
    let config = ConnectConfig {
        timeouts: Timeouts {
            idle: Duration::from_millis(200),
            ..Timeouts::default()
        },
        ..ConnectConfig::new("connect", lab.destinations())
    };
    let proxy = start(&lab, config).await;

    let (status, _, mut tcp) = open_tunnel(proxy.addr(), &format!("{GW}:443"), None).await;
    assert_eq!(status, 200);
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the proxy closed the silent tunnel"
    );

    let record = proxy
        .log()
        .wait_for(|r| r.method == "CONNECT", WAIT)
        .await
        .expect("logged");
    assert_eq!(record.outcome, Outcome::IdleTimeout);
    assert_eq!((record.bytes_up, record.bytes_down), (0, 0));
}

#[tokio::test]
async fn unreachable_destinations_get_502() {
    let lab = Lab::start().await;
    let closed = bind().await.local_addr().expect("address");
    let destinations = Destinations::new().map(GW, 443, closed);
    let proxy = start(&lab, ConnectConfig::new("connect", destinations)).await;

    let (status, _, _) = open_tunnel(proxy.addr(), &format!("{GW}:443"), None).await;
    assert_eq!(status, 502);
    let record = proxy
        .log()
        .wait_for(|r| r.status == 502, WAIT)
        .await
        .expect("logged");
    assert_eq!(record.outcome, Outcome::UpstreamConnectFailed);
    assert!(
        record
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("failed to connect"),
        "{record:?}"
    );
}

#[tokio::test]
async fn shutdown_ends_open_tunnels_and_frees_the_port() {
    let lab = Lab::start().await;
    let proxy = start(&lab, ConnectConfig::new("connect", lab.destinations())).await;
    let addr = proxy.addr();
    let log = proxy.log();

    let (status, _, mut tcp) = open_tunnel(addr, &format!("{GW}:443"), None).await;
    assert_eq!(status, 200);
    proxy.shutdown().await;

    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "the tunnel was closed");
    let record = log
        .find(|r| r.method == "CONNECT")
        .expect("the tunnel was logged at shutdown");
    assert_eq!(record.outcome, Outcome::Shutdown);
    TcpListener::bind(addr)
        .await
        .expect("the port can be bound again");
}

#[tokio::test]
async fn at_the_cap_silent_connections_are_shed_for_a_real_client() {
    let lab = Lab::start().await;
    let config = ConnectConfig {
        max_connections: 3,
        ..ConnectConfig::new("connect", lab.destinations())
    };
    let proxy = start(&lab, config).await;
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(tokio::net::TcpStream::connect(proxy.addr()).await.unwrap());
    }
    let (status, head, _tunnel) = tokio::time::timeout(
        Duration::from_secs(2),
        open_tunnel(proxy.addr(), &format!("{GW}:443"), None),
    )
    .await
    .expect("a real client gets its tunnel while silent connections fill the cap");
    assert_eq!(status, 200, "{head}");
    // The oldest silent connections were closed for the newcomers.
    let mut buf = [0u8; 1];
    let first = tokio::time::timeout(WAIT, silent[0].read(&mut buf))
        .await
        .expect("the oldest silent connection is closed");
    assert!(matches!(first, Ok(0) | Err(_)));
}
