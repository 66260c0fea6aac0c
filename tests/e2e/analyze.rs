//! `mdelab analyze`: the Client Analyzer's view of the write-up's lab, and the CLI exit codes
//! of `mdelab analyze` and `mdelab scenario`.

use std::process::{Command, Output};

use mdelab::analyze::{self, AnalyzeOptions};
use mdelab::scenario::{self, MachineProfile};
use mdelab_tests::{Squid, UpProcess, mdelab_bin};

fn profile_of(name: &str) -> MachineProfile {
    MachineProfile::from_toml(scenario::find(name).unwrap().profile).unwrap()
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `mdelab ARGS…` without `MDELAB_MANIFEST` (each test says which lab it means).
fn mdelab(args: &[&str]) -> Output {
    Command::new(mdelab_bin())
        .args(args)
        .env_remove("MDELAB_MANIFEST")
        .output()
        .unwrap()
}

/// Test 1 of the write-up: the method line and the five lines of every URL.
#[tokio::test(flavor = "multi_thread")]
async fn winhttp_only_reproduces_the_writeups_analyzer_block() {
    let analysis = analyze::analyze(&AnalyzeOptions::new(profile_of("winhttp-only")))
        .await
        .unwrap();
    let text = analysis.text();
    assert!(
        text.contains("Proxy config: Method=NamedWinHttp, address=PROX01:3128\n"),
        "{text}"
    );
    let block = "Testing URL : https://winatp-gw-cus.microsoft.com/test\n\
                 1 - Default proxy: Succeeded (200)\n\
                 2 - Proxy auto discovery (WPAD): Succeeded (200)\n\
                 3 - Proxy disabled: Failed (12002: WinHttpSendRequest: 12002: The operation timed out)\n\
                 4 - Named proxy: Doesn't exist\n\
                 5 - Command line proxy: Doesn't exist\n";
    assert!(text.contains(block), "{text}");
    assert!(analysis.all_groups_ok(), "{text}");
    assert_eq!(analysis.group_result("CnCURLs"), Some(130_017));
    insta::assert_snapshot!("analyze_winhttp_only", text);
}

/// Test 3b: with only the user's WinINet proxy, SampleUpload and MdeConfigMgr alone are
/// reachable.
#[tokio::test(flavor = "multi_thread")]
async fn wininet_only_with_a_user_reaches_only_sample_upload_and_config_manager() {
    let analysis = analyze::analyze(&AnalyzeOptions::new(profile_of("wininet-only-user")))
        .await
        .unwrap();
    let results: Vec<(&str, Option<u32>)> = analysis
        .groups
        .iter()
        .filter(|g| g.result.is_some())
        .map(|g| (g.group, g.result))
        .collect();
    assert_eq!(
        results,
        vec![
            ("CnCURLs", Some(132_021)),
            ("CyberDataURLs", Some(131_014)),
            ("AutoIRBlobs", Some(132_023)),
            ("SampleUploadBlobs", Some(130_020)),
            ("MdeConfigMgr", Some(130_021)),
        ],
        "{}",
        analysis.text()
    );
    assert!(!analysis.all_groups_ok());
}

/// An inspecting static proxy: the chain check names the inspection CA (132027), and the
/// pinned URLs fail through it.
#[tokio::test(flavor = "multi_thread")]
async fn an_inspecting_proxy_is_flagged_132027_naming_the_inspection_ca() {
    let analysis = analyze::analyze(&AnalyzeOptions::new(profile_of("inspecting-proxy")))
        .await
        .unwrap();
    let text = analysis.text();
    assert!(!analysis.chains.is_empty());
    for chain in &analysis.chains {
        assert_eq!(chain.result, Some(132_027), "{text}");
        assert_eq!(chain.issuer.as_deref(), Some("MDE Lab TLS Inspection CA"));
    }
    assert!(
        text.contains("132027  winatp-gw-cus.microsoft.com")
            && text.contains("issuer not expected: 'MDE Lab TLS Inspection CA'"),
        "{text}"
    );
    assert!(
        text.contains(
            "4 - Named proxy: Failed (12175: WinHttpSendRequest: 12175: A security error occurred)"
        ),
        "{text}"
    );
    assert_eq!(analysis.group_result("CnCURLs"), Some(132_021));
    assert_eq!(
        analysis.group_result("AutoIRBlobs"),
        Some(130_019),
        "blobs are not pinned"
    );

    // The same proxy with the MDE hosts on its bypass list: every chain is the real one.
    let bypassed = analyze::analyze(&AnalyzeOptions::new(profile_of("inspecting-proxy-bypass")))
        .await
        .unwrap();
    assert!(
        bypassed.chains.iter().all(|c| c.result.is_none()),
        "{}",
        bypassed.text()
    );
    assert!(bypassed.all_groups_ok(), "{}", bypassed.text());
}

fn assert_mdatp_shape(text: &str) {
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("mdatp connectivity test"));
    for line in lines {
        let ok = (line.starts_with("Testing connection with http")
            && (line.ends_with(" ... [OK]") || line.ends_with(" ... [ERROR]")))
            || (line.starts_with("    ") && !line.trim().is_empty());
        assert!(ok, "unexpected line {line:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mdatp_view_prints_ok_and_error_lines_with_reasons() {
    let report = analyze::analyze_mdatp(&AnalyzeOptions::new(profile_of("static-only")))
        .await
        .unwrap();
    let text = report.text();
    assert_mdatp_shape(&text);
    assert!(report.all_ok(), "{text}");
    assert!(
        text.contains("Testing connection with https://winatp-gw-cus.microsoft.com/test ... [OK]")
    );

    let report = analyze::analyze_mdatp(&AnalyzeOptions::new(profile_of("inspecting-proxy")))
        .await
        .unwrap();
    let text = report.text();
    assert_mdatp_shape(&text);
    assert!(!report.all_ok());
    assert!(
        text.contains(
            "Testing connection with https://winatp-gw-cus.microsoft.com/test ... [ERROR]\n    SSL cert issue: pin mismatch: chain issued by 'MDE Lab TLS Inspection CA'"
        ),
        "{text}"
    );
}

#[test]
fn cli_scenario_list_and_run_exit_codes() {
    let out = mdelab(&["scenario", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for s in scenario::scenarios() {
        assert!(stdout.contains(s.name), "{stdout}");
    }
    let out = mdelab(&["scenario", "run", "winhttp-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("live-response        SYSTEM   winhttp  PROX01")
    );
    let out = mdelab(&["scenario", "run", "static-only", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["all_as_expected"], true);
    // Progress goes to stderr only, one plain line per scenario off a terminal.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scenario: [1/1] static-only: "),
        "{}",
        explain(&out)
    );
    let out = mdelab(&["scenario", "run", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("winhttp-only"));
    let out = mdelab(&["scenario", "profile", "all-three"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("telemetry_proxy_server = \"PROX03:3128\"")
    );
}

#[test]
fn cli_analyze_exit_codes_and_profiles() {
    let out = mdelab(&["analyze", "--scenario", "winhttp-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let out = mdelab(&["analyze", "--scenario", "wininet-only-user"]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let out = mdelab(&[
        "analyze",
        "--scenario",
        "inspecting-proxy",
        "--format",
        "mdatp",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let out = mdelab(&["analyze", "--scenario", "all-three", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["proxy_config"]["method"], "NamedWinHttp");
    assert!(json["proxy_config"]["real_address"].as_str().is_some());

    // A lab proxy given on the command line (method 5) of a device with nothing configured.
    let out = mdelab(&["analyze", "--proxy", "PROX02"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5 - Command line proxy: Succeeded (200)")
    );

    // A profile file; unknown fields are refused.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "name = \"mine\"\n[static_proxy]\ntelemetry_proxy_server = \"PROX03\"\nprefer_static_proxy_for_http_request = true\n").unwrap();
    let out = mdelab(&["analyze", "--profile", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"mine\"\n[static_proxy]\ntelemetry_proxy = \"PROX03\"\n",
    )
    .unwrap();
    let out = mdelab(&["analyze", "--profile", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field"),
        "{}",
        explain(&out)
    );
}

/// With no arguments, as the real Client Analyzer: a directly connected device (no proxy set,
/// nothing blocked) in a lab started for it; every group reachable, so exit 0.
#[test]
fn cli_analyze_without_arguments_analyzes_a_directly_connected_device() {
    let out = mdelab(&["analyze"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Profile: direct (region us, standard)"),
        "{stdout}"
    );
    assert!(stdout.contains("Proxy config: Method=NoProxy"), "{stdout}");
    let block = "Testing URL : https://winatp-gw-cus.microsoft.com/test\n\
                 1 - Default proxy: Succeeded (200)\n";
    assert!(stdout.contains(block), "{stdout}");
    assert!(
        stdout.contains("3 - Proxy disabled: Succeeded (200)"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("Every URL group is reachable."),
        "{stdout}"
    );
    let out = mdelab(&["analyze", "--format", "mdatp"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("[ERROR]"));
}

/// `MDELAB_MANIFEST` stands for `--lab` where a running lab can serve the device (here: no
/// argument, a directly connected device), and is left alone by a scenario, whose lab proxies
/// exist only in a lab of its own.
#[test]
fn cli_analyze_reads_mdelab_manifest_except_for_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let up = UpProcess::start(dir.path(), &[]);
    let with_env = |args: &[&str]| {
        Command::new(mdelab_bin())
            .args(args)
            .env("MDELAB_MANIFEST", &up.manifest_path)
            .output()
            .unwrap()
    };
    let out = with_env(&["analyze"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("against a running lab"), "{stdout}");
    let out = with_env(&["analyze", "--scenario", "winhttp-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Method=NamedWinHttp, address=PROX01:3128"),
        "{}",
        explain(&out)
    );
    assert!(up.terminate().success());
}

/// The analyzer's view of a real proxy: a Squid in front of a running lab, given on the
/// command line.
#[test]
fn analyze_a_real_squid_given_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let up = UpProcess::start(
        dir.path(),
        &[
            "--bind",
            "127.0.0.57",
            "--https-port",
            "443",
            "--http-port",
            "80",
        ],
    );
    let squid = Squid::start(&up.manifest.hosts_file, "");
    let proxy = format!("http://{}", squid.addr);
    let out = mdelab(&[
        "analyze",
        "--lab",
        up.manifest_path.to_str().unwrap(),
        "--proxy",
        &proxy,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        explain(&out),
        squid.log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("5 - Command line proxy: Succeeded (200)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("through {} (command line)", squid.addr)),
        "{stdout}"
    );
    assert!(!stdout.contains("132027"), "{stdout}");
    // A profile naming a lab proxy cannot run against a lab started elsewhere.
    let out = mdelab(&[
        "analyze",
        "--lab",
        up.manifest_path.to_str().unwrap(),
        "--scenario",
        "winhttp-only",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    drop(squid);
    assert!(up.terminate().success());
}
