//! The README's "Use it in your CI" examples, run as written.

use std::process::Command;

use mdelab_tests::mdelab_bin;

#[test]
fn the_shell_ci_example_runs_on_standard_ports() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ci-shell.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("MDELAB", mdelab_bin())
        .env("MDELAB_IP", "127.0.0.2")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("mdelab CI example: ok"),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wait_times_out_with_exit_1_when_no_lab_comes() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(mdelab_bin())
        .args(["wait", "--timeout", "1", "--manifest"])
        .arg(dir.path().join("never.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ready within 1 s"));
}

#[test]
fn env_exports_point_at_the_connect_proxy_and_the_trust_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let up = mdelab_tests::UpProcess::start(dir.path(), &[]);
    let out = Command::new(mdelab_bin())
        .arg("env")
        .arg("--manifest")
        .arg(&up.manifest_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let proxy = up.manifest.connect_proxy.unwrap();
    for line in [
        format!("export HTTPS_PROXY='http://{proxy}'"),
        format!("export https_proxy='http://{proxy}'"),
        format!(
            "export CURL_CA_BUNDLE='{}'",
            up.manifest.trust_bundle.display()
        ),
        format!(
            "export SSL_CERT_FILE='{}'",
            up.manifest.trust_bundle.display()
        ),
        format!(
            "export REQUESTS_CA_BUNDLE='{}'",
            up.manifest.trust_bundle.display()
        ),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    assert!(text.contains("export MDELAB_MANIFEST="));
    assert!(up.terminate().success());
}

/// Every command that takes `--manifest` (or `--lab MANIFEST`) finds the lab through
/// `MDELAB_MANIFEST`, as `mdelab env` exports it; without either it names both.
#[test]
fn commands_find_the_lab_through_mdelab_manifest() {
    use std::io::BufRead as _;

    let dir = tempfile::tempdir().unwrap();
    let up = mdelab_tests::UpProcess::start(dir.path(), &[]);
    let exports = Command::new(mdelab_bin())
        .args(["env", "--manifest"])
        .arg(&up.manifest_path)
        .env_remove("MDELAB_MANIFEST")
        .output()
        .unwrap();
    let exports = String::from_utf8_lossy(&exports.stdout).into_owned();
    let exported = exports
        .lines()
        .find_map(|l| l.strip_prefix("export MDELAB_MANIFEST="))
        .expect("mdelab env exports MDELAB_MANIFEST")
        .trim_matches('\'')
        .to_owned();
    assert_eq!(
        std::path::Path::new(&exported),
        std::path::absolute(&up.manifest_path).unwrap()
    );
    let mdelab = |args: &[&str]| {
        Command::new(mdelab_bin())
            .args(args)
            .env("MDELAB_MANIFEST", &exported)
            .output()
            .unwrap()
    };
    let out = mdelab(&["env"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), exports);
    let out = mdelab(&["wait", "--timeout", "5"]);
    assert_eq!(out.status.code(), Some(0));
    let out = mdelab(&["hunt", "DeviceNetworkEvents | count", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["columns"][0], "Count");

    // The proxy command reaches the lab's catalog hosts without --lab.
    let mut proxy = Command::new(mdelab_bin())
        .args(["proxy", "connect"])
        .env("MDELAB_MANIFEST", &exported)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(proxy.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert!(
        line.starts_with("mdelab proxy connect listening on 127.0.0.1:"),
        "{line:?}"
    );

    // Neither: the error names both ways.
    for args in [
        &["env"][..],
        &["wait"],
        &["hunt", "DeviceNetworkEvents | count"],
    ] {
        let out = Command::new(mdelab_bin())
            .args(args)
            .env_remove("MDELAB_MANIFEST")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--manifest FILE") && stderr.contains("MDELAB_MANIFEST"),
            "{args:?}: {stderr}"
        );
    }
    let out = Command::new(mdelab_bin())
        .args(["proxy", "connect"])
        .env_remove("MDELAB_MANIFEST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MDELAB_MANIFEST"));
    assert!(up.terminate().success());
}
