//! `mdelab up` and `mdelab endpoints` as a user runs them: a real process, a real manifest.

use std::process::Command;

use mdelab_tests::{UpProcess, curl_status, mdelab_bin, tool};

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
fn up_writes_no_key_log_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    // `start` passes no SSLKEYLOGFILE on, and there is no --keylog.
    let up = UpProcess::start(dir.path(), &[]);
    assert!(!up.summary.contains("key log"), "{}", up.summary);
    assert!(up.terminate().success());
}

#[test]
fn up_refuses_a_non_loopback_bind_without_allow_remote() {
    let out = Command::new(mdelab_bin())
        .args(["up", "--bind", "0.0.0.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--bind 0.0.0.0 is not a loopback address"),
        "{err}"
    );
    assert!(err.contains("pass --allow-remote"), "{err}");
    assert!(out.stdout.is_empty(), "nothing started, nothing announced");
}

/// `--allow-remote --bind 0.0.0.0`: the summary says what is exposed and how each listener is
/// guarded, and each guard holds. Every request goes to 127.0.0.1 only.
#[test]
fn up_on_every_interface_lists_what_it_exposes_and_keeps_its_guards() {
    let dir = tempfile::tempdir().unwrap();
    let up = UpProcess::start(dir.path(), &["--bind", "0.0.0.0", "--allow-remote"]);
    let m = up.manifest.clone();
    let summary = &up.summary;
    assert!(
        summary.contains("Exposed to the network on 0.0.0.0 (--allow-remote):"),
        "{summary}"
    );
    let admin = m.admin.unwrap();
    let (connect, inspect) = (m.connect_proxy.unwrap(), m.inspect_proxy.unwrap());
    for (name, addr) in [
        ("dns", m.dns),
        ("https", m.https),
        ("http", m.http),
        ("connect proxy", connect),
        ("inspect proxy", inspect),
        ("admin", admin),
    ] {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")) && l.contains("0.0.0.0:"))
            .unwrap_or_else(|| panic!("no exposure line for {name}: {summary}"));
        assert!(line.contains(&format!("0.0.0.0:{}", addr.port())), "{line}");
    }
    for claim in [
        "never recurses",
        "REFUSED",
        "any other destination gets 403",
        "needs the bearer token",
        "only loopback Host names and the bound address",
        "DNS answers, the hosts file and the manifest name 127.0.0.1",
    ] {
        assert!(summary.contains(claim), "{claim}: {summary}");
    }
    // What the lab names and dials is loopback, never the unspecified address.
    for addr in [m.dns, m.https, m.http, connect, inspect, admin] {
        assert!(addr.ip().is_loopback(), "{addr}");
    }
    let hosts = std::fs::read_to_string(&m.hosts_file).unwrap();
    assert!(hosts.contains("127.0.0.1 winatp-gw-cus.microsoft.com\n"));

    // The mock cloud answers over 127.0.0.1.
    let port = m.https.port();
    let direct = curl_status()
        .arg("--cacert")
        .arg(&m.trust_bundle)
        .args(["--pinnedpubkey", &m.pins.pinned])
        .args([
            "--resolve",
            &format!("winatp-gw-cus.microsoft.com:{port}:127.0.0.1"),
        ])
        .arg(format!("https://winatp-gw-cus.microsoft.com:{port}/test"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&direct.stdout), "200", "{direct:?}");
    // DNS: the catalog answered with loopback, anything else refused, no recursion offered.
    let dig = |name: &str| {
        let out = tool("dig", "bind9-dnsutils")
            .args(["@127.0.0.1", "-p", &m.dns.port().to_string(), name])
            .args(["+time=2", "+tries=1"])
            .output()
            .expect("dig runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let answer = dig("winatp-gw-cus.microsoft.com");
    assert!(answer.contains("status: NOERROR"), "{answer}");
    assert!(answer.contains("\t127.0.0.1"), "{answer}");
    assert!(
        !answer.contains(" ra;") && !answer.contains(" ra "),
        "{answer}"
    );
    assert!(dig("www.example.org").contains("status: REFUSED"));
    // The proxies: a destination outside the catalog is refused, and nothing is dialled.
    for proxy in [connect, inspect] {
        let out = curl_status()
            .args(["-w", "%{http_connect}", "-x", &format!("http://{proxy}")])
            .arg("https://www.example.org/")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "403", "{out:?}");
    }
    // The admin API: no token, no journal.
    let journal = curl_status()
        .arg(format!("http://{admin}/_lab/journal"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&journal.stdout),
        "401",
        "{journal:?}"
    );
    assert!(up.terminate().success());
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
