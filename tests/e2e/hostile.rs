//! Hostile clients (silent, slow, half-sent, rebinding) do not stall the lab or its shutdown.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use mdelab::admin_client::AdminClient;
use mdelab::lab::{Lab, LabOptions};
use mdelab_mock_cloud::{ConnectionLimits, ServiceConfig};
use mdelab_sensor::{HttpRequest, Origin};
use mdelab_tests::{UpProcess, tool};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

async fn lab_with(limits: ConnectionLimits) -> Lab {
    Lab::start(&LabOptions {
        services: ServiceConfig {
            connections: limits,
            ..ServiceConfig::default()
        },
        ..LabOptions::default()
    })
    .await
    .expect("the lab starts")
}

/// A sensor `GET /test` to a gateway; its status.
async fn probe(lab: &Lab) -> u16 {
    let origin = Origin::https("winatp-gw-cus.microsoft.com", true);
    let request = HttpRequest::new(http::Method::GET, "/test");
    mdelab_tests::send_direct(lab, &origin, &request)
        .await
        .map_or(0, |r| r.status)
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_beyond_the_cap_do_not_starve_a_real_client() {
    let lab = lab_with(ConnectionLimits {
        max_connections: 8,
        request_head_timeout: Duration::from_secs(60),
        handshake_timeout: Duration::from_secs(60),
        ..ConnectionLimits::default()
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..16 {
        silent.push(TcpStream::connect(lab.https_addr()).await.unwrap());
    }
    let status = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let status = probe(&lab).await;
            if status != 0 {
                return status;
            }
        }
    })
    .await
    .expect("the real client is served within 2 s");
    assert_eq!(status, 200);
    assert!(lab.cloud().shed_connections() >= 8);
    let stats = AdminClient::new(lab.admin_addr(), lab.admin_token().to_owned())
        .get("/_lab/stats")
        .await
        .unwrap();
    assert!(
        stats["connections"]["shed"].as_u64().unwrap() >= 8,
        "{stats}"
    );
    drop(silent);
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_sent_admin_head_does_not_hold_shutdown_past_the_deadline() {
    let deadline = Duration::from_millis(800);
    let lab = lab_with(ConnectionLimits {
        shutdown_deadline: deadline,
        ..ConnectionLimits::default()
    })
    .await;
    let mut half = TcpStream::connect(lab.admin_addr()).await.unwrap();
    half.write_all(b"GET /_lab/stats HTTP/1.1\r\nHost: 127.0")
        .await
        .unwrap();
    let mut half_cloud = TcpStream::connect(lab.http_addr()).await.unwrap();
    half_cloud
        .write_all(b"POST / HTTP/1.1\r\nHost: crl")
        .await
        .unwrap();
    let started = Instant::now();
    tokio::time::timeout(deadline + Duration::from_secs(5), lab.shutdown())
        .await
        .expect("shutdown ends")
        .unwrap();
    assert!(
        started.elapsed() < deadline + Duration::from_secs(1),
        "shutdown took {:?}",
        started.elapsed()
    );
}

fn admin_with_host(addr: SocketAddr, host: &str) -> (String, String) {
    let out = tool("curl", "curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Host: {host}"))
        .arg(format!("http://{addr}/_lab/health"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or_default();
    (status.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_refuses_foreign_host_names() {
    let lab = lab_with(ConnectionLimits::default()).await;
    let addr = lab.admin_addr();
    let (status, body) = admin_with_host(addr, "evil.example");
    assert_eq!(status, "421", "{body}");
    assert!(body.contains("misdirected_host"), "{body}");
    let (status, body) = admin_with_host(addr, &format!("127.0.0.1:{}", addr.port()));
    assert_eq!(status, "200", "{body}");
    let (status, body) = admin_with_host(addr, "localhost");
    assert_eq!(status, "200", "{body}");
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_client_against_a_silent_port_fails_within_its_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = AdminClient::new(addr, "t".into()).with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(5), client.ready())
        .await
        .expect("the call ends by its own deadline");
    assert!(outcome.is_err());
    assert!(started.elapsed() < Duration::from_millis(1500));
    held.abort();
}

#[test]
fn a_second_sigterm_makes_up_exit_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = UpProcess::start_watching_stderr(dir.path(), &[]);
    let admin = up.manifest.admin.expect("an admin address");
    // A half-sent head keeps the first shutdown busy until its 5 s deadline.
    let mut half = std::net::TcpStream::connect(admin).unwrap();
    std::io::Write::write_all(&mut half, b"GET /_lab/health HTTP/1.1\r\nHost: 127").unwrap();
    let pid = up.pid().to_string();
    let term = || {
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
    };
    term();
    // The first signal is taken once `up` says it is stopping; then the second one counts.
    assert!(
        up.stderr_line(Duration::from_secs(3), |l| l.contains("stopping"))
            .is_some(),
        "mdelab up did not start stopping on SIGTERM"
    );
    let started = Instant::now();
    term();
    let status = up
        .wait_exit(Duration::from_secs(3))
        .expect("mdelab up exits at once on a second SIGTERM, not after its 5 s deadline");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        !status.success(),
        "a forced exit is not a clean one: {status}"
    );
    assert!(
        !up.manifest_path.exists(),
        "the manifest is removed on a forced exit too"
    );
}
