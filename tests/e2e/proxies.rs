//! The lab proxies from the outside: curl with pins through them, `mdelab proxy` alone, and a
//! real Squid carrying the emulated sensor's pinned connections.

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Output, Stdio};

use mdelab::lab::{Lab, LabOptions};
use mdelab_catalog::{Catalog, Region};
use mdelab_sensor::{self as sensor, ClientKind, ProxyRoute, Route, Target, Verdict};
use mdelab_tests::{Squid, UpProcess, curl_status, mdelab_bin};

fn curl(
    proxy: std::net::SocketAddr,
    bundle: &std::path::Path,
    pin: Option<&str>,
    url: &str,
) -> Output {
    let mut cmd = curl_status();
    cmd.args(["--proxy", &format!("http://{proxy}")])
        .arg("--cacert")
        .arg(bundle);
    if let Some(pin) = pin {
        cmd.args(["--pinnedpubkey", pin]);
    }
    cmd.arg(url).output().expect("curl runs")
}

#[test]
fn curl_pins_hold_through_the_connect_proxy_and_break_through_the_inspecting_one() {
    let dir = tempfile::tempdir().unwrap();
    let up = UpProcess::start(dir.path(), &[]);
    let m = &up.manifest;
    // A device whose store also holds the inspection CA (an enterprise push).
    let bundle = dir.path().join("bundle-with-inspection.pem");
    let pem = std::fs::read_to_string(&m.trust_bundle).unwrap()
        + &std::fs::read_to_string(&m.inspection_ca).unwrap();
    std::fs::write(&bundle, pem).unwrap();
    let url = "https://winatp-gw-cus.microsoft.com/test";

    let via_connect = curl(m.connect_proxy.unwrap(), &bundle, Some(&m.pins.pinned), url);
    assert_eq!(
        (
            via_connect.status.code(),
            String::from_utf8_lossy(&via_connect.stdout).as_ref()
        ),
        (Some(0), "200")
    );

    let pinned_via_inspect = curl(m.inspect_proxy.unwrap(), &bundle, Some(&m.pins.pinned), url);
    assert_eq!(
        pinned_via_inspect.status.code(),
        Some(90),
        "{}",
        String::from_utf8_lossy(&pinned_via_inspect.stderr)
    );

    let unpinned_via_inspect = curl(m.inspect_proxy.unwrap(), &bundle, None, url);
    assert_eq!(
        String::from_utf8_lossy(&unpinned_via_inspect.stdout),
        "200",
        "inspection is invisible without a pin"
    );

    // The lab proxy is not an open relay.
    let outside = curl(
        m.connect_proxy.unwrap(),
        &bundle,
        None,
        "https://www.example.org/",
    );
    assert_ne!(outside.status.code(), Some(0));
    assert!(up.terminate().success());
}

#[test]
fn standalone_inspect_proxy_with_the_mde_bypass_splices_and_logs_json() {
    let dir = tempfile::tempdir().unwrap();
    let up = UpProcess::start(dir.path(), &[]);
    let manifest = up.manifest_path.to_str().unwrap().to_owned();
    let mut child = Command::new(mdelab_bin())
        .args(["proxy", "inspect", "--lab", &manifest, "--bypass-mde"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect("listening address");
    let m = &up.manifest;
    let out = curl(
        addr,
        &m.trust_bundle,
        Some(&m.pins.pinned),
        "https://winatp-gw-cus.microsoft.com/test",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(record["target"], "winatp-gw-cus.microsoft.com:443");
    assert_eq!(record["tls"]["kind"], "spliced");
    let _ = child.kill();
    let _ = child.wait();
    assert!(up.terminate().success());
}

#[test]
fn standalone_proxy_refuses_to_be_an_open_relay_by_default() {
    let out = Command::new(mdelab_bin())
        .args(["proxy", "connect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never relays by default"));
}

/// The lab on standard ports of a loopback address of its own, as a hosts file names it.
async fn standard_port_lab(last_octet: u8) -> Lab {
    let options = LabOptions {
        bind: IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)),
        https_port: 443,
        http_port: 80,
        ..LabOptions::default()
    };
    Lab::start(&options)
        .await
        .expect("the lab binds 443 and 80 (the tests run as root in CI)")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_squid_carries_the_sensors_pinned_connections() {
    let lab = standard_port_lab(33).await;
    let squid = Squid::start(&lab.manifest().hosts_file, "");
    let route = Route::Proxy(ProxyRoute {
        addr: squid.addr,
        credentials: None,
    });
    let trust = lab.device_trust(false);
    let network = lab.network();
    let catalog = Catalog::mde();
    let mut pinned_seen = 0;
    for model in mdelab_catalog::Connectivity::ALL {
        for endpoint in catalog.for_device(Region::Us, model).filter(|e| e.pinned) {
            let out = sensor::probe(
                &Target::from(endpoint),
                ClientKind::Sensor,
                &route,
                &trust,
                &network,
            )
            .await;
            assert_eq!(
                out.verdict,
                Verdict::Connected {
                    status: endpoint.probe.status
                },
                "{}: {}\n{}",
                endpoint.url(),
                out.evidence,
                squid.log()
            );
            pinned_seen += 1;
        }
    }
    assert!(pinned_seen > 10);
    let crl = catalog
        .endpoints()
        .iter()
        .find(|e| e.host == "crl.microsoft.com")
        .unwrap();
    let out = sensor::probe(
        &Target::from(crl),
        ClientKind::Sensor,
        &route,
        &trust,
        &network,
    )
    .await;
    assert_eq!(
        out.verdict,
        Verdict::Connected {
            status: crl.probe.status
        }
    );
    assert!(
        squid
            .access_log()
            .contains("CONNECT winatp-gw-cus.microsoft.com:443"),
        "{}",
        squid.access_log()
    );
    drop(squid);
    lab.shutdown().await.unwrap();
}
