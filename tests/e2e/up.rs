//! `mdelab up` and `mdelab endpoints` as a user runs them: a real process, a real manifest.

use std::process::Command;

use mdelab_tests::{UpProcess, mdelab_bin};

#[test]
fn up_writes_a_complete_manifest_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let up = UpProcess::start(dir.path(), &[]);
    let m = up.manifest.clone();
    assert!(up.summary.contains("mdelab is up"), "{}", up.summary);
    for addr in [m.dns, m.https, m.http] {
        assert!(
            addr.ip().is_loopback(),
            "{addr} must be loopback by default"
        );
        assert_ne!(addr.port(), 0, "the manifest names the bound port");
    }
    for path in [&m.trust_bundle, &m.inspection_ca, &m.hosts_file] {
        assert!(path.is_absolute() && path.exists(), "{}", path.display());
    }
    let bundle = std::fs::read_to_string(&m.trust_bundle).unwrap();
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "both lab roots, not the inspection CA"
    );
    let hosts = std::fs::read_to_string(&m.hosts_file).unwrap();
    assert!(hosts.contains("127.0.0.1 winatp-gw-cus.microsoft.com\n"));
    assert_eq!(m.pins.pinned.matches("sha256//").count(), 3);

    let manifest_path = up.manifest_path.clone();
    let status = up.terminate();
    assert!(status.success(), "{status:?}");
    // Ports are free again and the manifest no longer points at them.
    std::net::TcpListener::bind(m.https).expect("HTTPS port released");
    std::net::TcpListener::bind(m.http).expect("HTTP port released");
    std::net::UdpSocket::bind(m.dns).expect("DNS port released");
    assert!(!manifest_path.exists());
    assert!(!m.state_dir.exists(), "the temporary lab folder is removed");
}

#[test]
fn state_dir_keeps_the_pki_across_runs_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let args = ["--state-dir", state.to_str().unwrap()];
    let first = UpProcess::start(dir.path(), &args);
    let pins = first.manifest.pins.clone();
    assert!(first.terminate().success());
    let second = UpProcess::start(dir.path(), &args);
    assert_eq!(second.manifest.pins, pins, "same keys, same pins");
    assert!(second.terminate().success());
    use std::os::unix::fs::PermissionsExt as _;
    let key = state.join("pki").join("pinned-root.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn endpoints_lists_the_catalog_filtered_by_region_and_model() {
    let out = Command::new(mdelab_bin())
        .args([
            "endpoints",
            "--region",
            "eu",
            "--connectivity",
            "streamlined",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let hosts: Vec<&str> = list.iter().map(|e| e["host"].as_str().unwrap()).collect();
    assert!(hosts.contains(&"edr-weu.eu.endpoint.security.microsoft.com"));
    assert!(
        hosts.contains(&"crl.microsoft.com"),
        "worldwide hosts are included"
    );
    assert!(
        !hosts.iter().any(|h| h.starts_with("winatp-gw-")),
        "no standard hosts"
    );
    assert!(!hosts.iter().any(|h| h.contains(".us.")), "no other region");

    let bad = Command::new(mdelab_bin())
        .args(["endpoints", "--region", "mars"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown region"));
}

#[test]
fn up_names_the_remedy_when_a_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(mdelab_bin())
        .args(["up", "--https-port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed to bind the mock cloud HTTPS listener"),
        "{err}"
    );
    assert!(err.contains("already in use"), "{err}");
}
