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
