//! `mdelab certify` against a real Squid: plain CONNECT (fit), `ssl_bump bump` on the MDE hosts
//! (not fit, the Squid CA named as the issuer on every pinned host), and the same Squid splicing
//! the MDE hosts (fit). Each test runs the lab on the standard ports of its own loopback address,
//! because Squid resolves the catalog names with the lab's hosts file and dials 443 and 80.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Output};
use std::time::Duration;

use mdelab::certify::{self, CertifyArgs};
use mdelab::report::{Format, Report};
use mdelab_catalog::Catalog;
use mdelab_certs::{Pki, PkiOptions};
use mdelab_sensor::Verdict;
use mdelab_tests::{
    Squid, SquidCa, SquidOptions, SquidTls, UpProcess, junit_counts, mdelab_bin, squid_domains,
};

/// Short enough for CI, long enough to exercise each check: a 2 s hold, a 4 MiB upload.
const QUICK: [&str; 6] = ["--hold", "2", "--upload-mib", "4", "--posts", "20"];
/// The issuer a bumping Squid puts on every intercepted host.
const SQUID_CA: &str = "Squid Lab Inspection CA";

/// Runs `mdelab certify --proxy <squid> --lab <manifest> QUICK… extra…`.
fn certify_bin(squid: &Squid, up: &UpProcess, extra: &[&str]) -> Output {
    Command::new(mdelab_bin())
        .arg("certify")
        .args(["--proxy", &format!("http://{}", squid.addr)])
        .arg("--lab")
        .arg(&up.manifest_path)
        .args(QUICK)
        .args(extra)
        .output()
        .expect("mdelab certify runs")
}

fn explain(out: &Output, squid: &Squid) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}\nsquid cache.log:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        squid.log()
    )
}

/// Every MDE name as Squid `dstdomain` entries: what a proxy reserved for MDE allows.
fn mde_destinations() -> Vec<String> {
    squid_domains(&Catalog::mde().dns_names())
}

#[test]
fn a_plain_connect_squid_is_fit_for_mde_and_refuses_other_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let up = mdelab_tests::standard_port_lab(dir.path(), "127.0.0.41");
    let squid = Squid::start_with(&SquidOptions {
        hosts_file: &up.manifest.hosts_file,
        tls: SquidTls::Plain,
        allow_domains: Some(mde_destinations()),
        extra_config: "",
    });
    let out = certify_bin(&squid, &up, &["--check-deny"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out, &squid));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = stdout.lines().last().unwrap_or_default();
    assert!(
        verdict.starts_with(&format!("VERDICT: http://{} is fit for MDE (", squid.addr)),
        "{verdict}"
    );
    assert!(
        stdout.contains("not an open relay"),
        "the denial check ran: {stdout}"
    );
    // Squid saw every family of traffic: tunnels, absolute-form CRL fetches, the refusal.
    let log = squid.access_log();
    for needle in [
        "CONNECT winatp-gw-cus.microsoft.com:443",
        "CONNECT ussus1eastprod.blob.core.windows.net:443",
        "GET http://crl.microsoft.com/",
        "TCP_DENIED/403",
    ] {
        assert!(log.contains(needle), "{needle} missing from\n{log}");
    }

    // The same proxy cutting idle connections after 2 s cannot carry a 5 s CnC hold. (Squid
    // checks timeouts once a second, so its "2 s" fires 1 to 2 s after the last byte; other
    // exchanges of a busy machine may be cut too, which is why only the poll is asserted.)
    let impatient = Squid::start_with(&SquidOptions {
        hosts_file: &up.manifest.hosts_file,
        tls: SquidTls::Plain,
        allow_domains: Some(mde_destinations()),
        extra_config: "read_timeout 2 seconds",
    });
    let out = Command::new(mdelab_bin())
        .arg("certify")
        .args(["--proxy", &format!("http://{}", impatient.addr)])
        .arg("--lab")
        .arg(&up.manifest_path)
        .args(["--connectivity", "standard", "--hold", "5"])
        .args(["--upload-mib", "1", "--posts", "1"])
        .output()
        .expect("mdelab certify runs");
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out, &impatient));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = stdout.lines().last().unwrap_or_default();
    assert!(
        verdict.contains("the proxy cut the CnC long poll to winatp-gw-cus.microsoft.com after"),
        "{}",
        explain(&out, &impatient)
    );
    assert!(up.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bumping_squid_is_not_fit_and_named_as_the_issuer_on_the_pinned_hosts() {
    let ip = Ipv4Addr::new(127, 0, 0, 42);
    // certify starts the lab itself here; the PKI is made first (the state dir keeps it) so
    // Squid can be given the lab roots and the hosts file before the lab exists.
    let state = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_generate(&state.path().join("pki"), &PkiOptions::default())
        .unwrap()
        .0;
    let files = tempfile::tempdir().unwrap();
    let hosts = files.path().join("hosts");
    std::fs::write(
        &hosts,
        mdelab::lab::hosts_file(Catalog::mde(), IpAddr::V4(ip)),
    )
    .unwrap();
    let roots = files.path().join("lab-roots.pem");
    std::fs::write(&roots, pki.trust_bundle_pem()).unwrap();
    let ca = SquidCa::new(SQUID_CA);
    let squid = Squid::start_with(&SquidOptions {
        hosts_file: &hosts,
        tls: SquidTls::Bump {
            ca: &ca,
            upstream_ca: &roots,
            splice: Vec::new(),
        },
        allow_domains: None,
        extra_config: "",
    });
    let proxy = format!("http://{}", squid.addr);
    let mut argv = vec![
        "--proxy",
        &proxy,
        "--bind",
        "127.0.0.42",
        "--dns-port",
        "0",
        "--state-dir",
        state.path().to_str().unwrap(),
    ];
    argv.extend(QUICK);
    let args = CertifyArgs::parse_from(argv).unwrap();
    let report = certify::certify(&args).await.unwrap();
    let table = report.render(Format::Table).unwrap();
    let context = format!("{table}\nsquid cache.log:\n{}", squid.log());
    assert!(!report.all_as_expected(), "{context}");

    // Every pinned host: inspection detected, the Squid CA named as the issuer.
    let inspection = section(&report, "TLS inspection");
    let pinned: Vec<_> = inspection
        .checks
        .iter()
        .filter(|c| {
            Catalog::mde()
                .https_host(&c.target)
                .is_some_and(|h| h.pinned)
        })
        .collect();
    assert!(pinned.len() > 10, "{context}");
    for check in &pinned {
        assert!(!check.as_expected(), "{}: {context}", check.target);
        assert_eq!(check.observed.verdict, Verdict::UnknownIssuer, "{context}");
        assert_eq!(check.observed.served_issuer.as_deref(), Some(SQUID_CA));
        assert!(
            check.observed.evidence.starts_with(&format!(
                "TLS inspection detected: chain issued by '{SQUID_CA}'"
            )),
            "{}",
            check.observed.evidence
        );
    }
    // Plain HTTP is not inspected: the CRL fetches still pass.
    assert!(
        section(&report, "CRL/CTL")
            .checks
            .iter()
            .all(|c| c.as_expected()),
        "{context}"
    );
    let verdict = report.summary.last().unwrap();
    assert!(
        verdict.starts_with(&format!("VERDICT: {proxy} is NOT fit for MDE: ")),
        "{verdict}"
    );
    assert!(
        verdict.contains(&format!(
            "TLS inspection by '{SQUID_CA}' on {} pinned hosts",
            pinned.len()
        )),
        "{verdict}"
    );

    // The JUnit rendering (the binary's --format junit) is accepted by a JUnit parser and
    // carries the failures.
    let (suites, cases, failed) = junit_counts(report.render(Format::Junit).unwrap().as_bytes());
    let (passed, not_passed) = report.counts();
    assert_eq!(
        (suites, cases, failed),
        (report.sections.len(), passed + not_passed, not_passed)
    );
}

#[test]
fn a_squid_splicing_the_mde_hosts_is_fit_for_mde() {
    let dir = tempfile::tempdir().unwrap();
    let up = mdelab_tests::standard_port_lab(dir.path(), "127.0.0.43");
    let ca = SquidCa::new(SQUID_CA);
    let squid = Squid::start_with(&SquidOptions {
        hosts_file: &up.manifest.hosts_file,
        tls: SquidTls::Bump {
            ca: &ca,
            upstream_ca: &up.manifest.trust_bundle,
            splice: squid_domains(&Catalog::mde().inspection_bypass()),
        },
        allow_domains: None,
        extra_config: "",
    });
    let out = certify_bin(&squid, &up, &["--format", "junit"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out, &squid));
    let (suites, cases, failed) = junit_counts(&out.stdout);
    assert_eq!(suites, 6, "one suite per family of checks");
    assert!(cases > 60, "{cases}");
    assert_eq!(failed, 0, "{}", explain(&out, &squid));

    // The same Squid lets anything else through (nothing but the splice list is configured):
    // the denial check catches the open relay. A bumping port answers 200 before it looks the
    // name up, so a never-resolving name shows it without any traffic leaving the machine.
    let relay = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(certify::deny_check(
            squid.addr,
            "open-relay-check.invalid:443",
            Duration::from_secs(10),
        ));
    assert!(!relay.as_expected(), "{relay:?}");
    assert_eq!(relay.observed.verdict, Verdict::Connected { status: 200 });
    assert!(relay.observed.evidence.contains("open relay"), "{relay:?}");
    assert!(up.terminate().success());
}

/// `mdelab certify --lab` with every default against `mdelab up` with every default passes
/// for a plain CONNECT proxy (the lab's own, which resolves the catalog names to the lab's
/// ephemeral ports itself): the lab caps CnC holds at 30 s, so the suite holds the poll 30 s
/// instead of its 120 s and says so in a note, rather than failing two checks on a lab setting.
#[test]
fn certify_with_defaults_passes_against_up_with_defaults_holding_what_the_lab_allows() {
    let dir = tempfile::tempdir().unwrap();
    let up = UpProcess::start(dir.path(), &[]);
    let proxy = format!("http://{}", up.manifest.connect_proxy.unwrap());
    let out = Command::new(mdelab_bin())
        .args(["certify", "--proxy", &proxy, "--lab"])
        .arg(&up.manifest_path)
        .env_remove("MDELAB_MANIFEST")
        .output()
        .expect("mdelab certify runs");
    let context = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{context}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut tail = stdout.lines().rev();
    let verdict = tail.next().unwrap_or_default();
    assert!(
        verdict.starts_with(&format!("VERDICT: {proxy} is fit for MDE (")),
        "{context}"
    );
    assert_eq!(
        tail.next(),
        Some(
            "note: the CnC long poll was held 30 s, the lab's cap, not the suite's default 120 s \
             (start the lab with `mdelab up --cnc-max-hold 120` to certify the full hold)"
        ),
        "{context}"
    );
    assert!(
        stdout.contains("CnC long poll: held 30 s through the proxy"),
        "{context}"
    );
    // Progress, one plain line per step on a non-terminal stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("certify: [7/7] CnC long poll: waiting for the end of its 30 s hold"),
        "{context}"
    );

    // An explicit --hold beyond the lab's cap is refused before anything runs.
    let out = Command::new(mdelab_bin())
        .args(["certify", "--proxy", &proxy, "--hold", "31"])
        .env("MDELAB_MANIFEST", &up.manifest_path)
        .output()
        .expect("mdelab certify runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mdelab up --cnc-max-hold 31"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(up.terminate().success());
}

/// Machine formats keep stdout to themselves: `--format json` parses whole while the progress
/// lines go to stderr, and `--quiet` silences those. The lab comes from `MDELAB_MANIFEST`.
#[test]
fn certify_json_is_alone_on_stdout_with_progress_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let up = UpProcess::start(dir.path(), &[]);
    let proxy = format!("http://{}", up.manifest.connect_proxy.unwrap());
    let run = |quiet: bool| {
        let mut command = Command::new(mdelab_bin());
        if quiet {
            command.arg("--quiet");
        }
        command
            .args(["certify", "--proxy", &proxy, "--format", "json"])
            .args(["--connectivity", "standard", "--hold", "1"])
            .args(["--upload-mib", "1", "--posts", "2"])
            .env("MDELAB_MANIFEST", &up.manifest_path)
            .output()
            .expect("mdelab certify runs")
    };
    let out = run(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert!(json.is_object(), "{json}");
    for line in [
        "certify: [1/5] reachability and TLS chains",
        "certify: [3/5] sample upload: 1 MiB (standard)",
        "certify: [5/5] CnC long poll: waiting for the end of its 1 s hold",
    ] {
        assert!(stderr.contains(line), "{line} missing from\n{stderr}");
    }
    let quiet = run(true);
    assert_eq!(quiet.status.code(), Some(0));
    serde_json::from_slice::<serde_json::Value>(&quiet.stdout).expect("stdout is JSON");
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert!(up.terminate().success());
}

fn section<'a>(report: &'a Report, prefix: &str) -> &'a mdelab::report::Section {
    report
        .sections
        .iter()
        .find(|s| s.title.starts_with(prefix))
        .unwrap_or_else(|| panic!("no section {prefix}"))
}
