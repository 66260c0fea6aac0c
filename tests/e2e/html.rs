//! `--format html` in a real browser: each report is written to a file, opened by headless
//! Chromium (`--dump-dom`), and the rendered DOM is asserted on: the verdict banner, a matrix
//! cell of `demo`, the carrying proxy of a scenario, certify's verdict and the issuer a bumping
//! Squid put in place of the lab's chain, the analyzer's result ids through that Squid.
//!
//! With `MDELAB_SCREENSHOTS=<dir>` set, each test also saves a PNG of its page there (how the
//! screenshots in `docs/` are made).

use std::path::Path;
use std::process::{Command, Output};

use mdelab_tests::{Squid, SquidCa, SquidOptions, SquidTls, mdelab_bin, tool};

/// The issuer a bumping Squid puts on every intercepted host.
const SQUID_CA: &str = "Squid Lab Inspection CA";

fn mdelab(args: &[&str]) -> Output {
    Command::new(mdelab_bin())
        .args(args)
        .output()
        .expect("mdelab runs")
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Headless Chromium, offline and with a fresh profile in `profile`.
fn chromium(profile: &Path) -> Command {
    let mut chromium = tool("chromium", "chromium");
    chromium
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    chromium
}

/// A page as the browser rendered it: `html` written to a file, loaded by Chromium, its DOM
/// dumped. With `MDELAB_SCREENSHOTS` set, also saves `<dir>/<name>.png`, `height` pixels tall.
fn render(name: &str, html: &[u8], height: u32) -> String {
    assert_self_contained(&String::from_utf8_lossy(html));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.html"));
    std::fs::write(&file, html).unwrap();
    let url = format!("file://{}", file.display());
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).expect("the DOM is UTF-8");
    assert!(dom.contains("</html>"), "no DOM dumped for {name}: {dom}");
    if let Some(shots) = std::env::var_os("MDELAB_SCREENSHOTS") {
        let png = Path::new(&shots).join(format!("{name}.png"));
        let profile = tempfile::tempdir().unwrap();
        let out = chromium(profile.path())
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("--window-size=1280,{height}"))
            .arg(&url)
            .output()
            .expect("chromium runs");
        assert!(out.status.success() && png.exists(), "no screenshot {name}");
    }
    dom
}

/// Nothing in the page makes the browser fetch anything: no script, stylesheet link, image,
/// frame, font or CSS `url()`, and every link stays in the page.
fn assert_self_contained(html: &str) {
    for needle in [
        "<script", "<link", "<img", "<iframe", "src=", "url(", "@import",
    ] {
        assert!(!html.contains(needle), "{needle} in a self-contained page");
    }
    for (n, _) in html.match_indices("href=\"") {
        assert!(
            html[n + 6..].starts_with('#'),
            "a link out of the page: {}",
            &html[n..(n + 80).min(html.len())]
        );
    }
}

/// The opening tag `<tag …>` whose attributes include every `(name, value)` of `with` (values
/// as the browser serialises them), or a failure naming what was looked for.
fn element<'a>(dom: &'a str, tag: &str, with: &[(&str, &str)]) -> &'a str {
    let open = format!("<{tag} ");
    dom.match_indices(&open)
        .map(|(start, _)| {
            let end = dom[start..].find('>').map_or(dom.len(), |e| start + e + 1);
            &dom[start..end]
        })
        .find(|el| {
            with.iter()
                .all(|(name, value)| el.contains(&format!(" {name}=\"{value}\"")))
        })
        .unwrap_or_else(|| panic!("no <{tag}> with {with:?} in the rendered page"))
}

/// The value of attribute `name` of an opening tag.
fn attr<'a>(el: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}=\"");
    let start = el
        .find(&key)
        .unwrap_or_else(|| panic!("{el} has no {name}"))
        + key.len();
    let len = el[start..].find('"').expect("a closing quote");
    &el[start..start + len]
}

/// The text of the element opening with `el` in `dom`, tags stripped, up to its first closing
/// tag of `tag`.
fn text_of(dom: &str, el: &str, tag: &str) -> String {
    let start = dom.find(el).expect("the element is in the DOM") + el.len();
    let end = dom[start..].find(&format!("</{tag}>")).expect("closed") + start;
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&amp;", "&").replace("&#39;", "'")
}

#[test]
fn demo_html_shows_the_pinning_matrix_with_its_evidence() {
    let out = mdelab(&["demo", "--format", "html"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let dom = render("report-demo", &out.stdout, 1180);
    let verdict = element(&dom, "p", &[("id", "verdict")]);
    assert_eq!(attr(verdict, "data-verdict"), "PASS", "{verdict}");
    assert_eq!(attr(verdict, "data-failed"), "0");
    // The sensor through an inspecting proxy whose CA the device trusts: a pin mismatch, as
    // MDE's documentation predicts; the browser beside it connects.
    let target = "command-and-control: winatp-gw-cus.microsoft.com";
    let sensor = element(
        &dom,
        "td",
        &[
            ("data-client", "sensor"),
            ("data-target", target),
            ("data-path", "inspect (CA trusted)"),
        ],
    );
    assert_eq!(attr(sensor, "data-verdict"), "pin mismatch", "{sensor}");
    assert_eq!(attr(sensor, "data-as-expected"), "true", "{sensor}");
    assert!(attr(sensor, "class").starts_with("pin"), "{sensor}");
    let evidence = text_of(&dom, sensor, "td");
    assert!(
        evidence.contains("chain issued by 'MDE Lab TLS Inspection CA'"),
        "{evidence}"
    );
    let browser = element(
        &dom,
        "td",
        &[
            ("data-client", "browser"),
            ("data-target", target),
            ("data-path", "inspect (CA trusted)"),
        ],
    );
    assert_eq!(attr(browser, "data-verdict"), "200", "{browser}");
    let auth = element(
        &dom,
        "td",
        &[
            ("data-client", "sensor"),
            ("data-target", target),
            ("data-path", "connect+auth"),
        ],
    );
    assert_eq!(attr(auth, "data-verdict"), "proxy 407", "{auth}");
    assert!(!dom.contains("data-as-expected=\"false\""));
}

#[test]
fn scenario_html_draws_which_proxy_carried_each_service() {
    let out = mdelab(&["scenario", "run", "auth-proxy-no-user", "--format", "html"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let dom = render("report-scenario", &out.stdout, 1150);
    let verdict = element(&dom, "p", &[("id", "verdict")]);
    assert_eq!(attr(verdict, "data-verdict"), "PASS", "{verdict}");
    element(
        &dom,
        "section",
        &[
            ("data-scenario", "auth-proxy-no-user"),
            ("data-as-expected", "true"),
        ],
    );
    // Before log-on, SYSTEM meets the authenticating PROX01: a 407 the sensor cannot answer.
    let before = element(&dom, "tr", &[("data-service", "command-and-control")]);
    assert_eq!(attr(before, "data-carried-by"), "PROX01", "{before}");
    assert!(text_of(&dom, before, "tr").contains("proxy 407"));
    let row = &dom[dom.find(before).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("class=\"node stopped\"") && !row.contains("class=\"node cloud\""),
        "the 407 stops the request before the cloud: {row}"
    );
    // After log-on, the user's cyber data goes through PROX01, then PROX02.
    let rows: Vec<&str> = dom
        .match_indices("<tr ")
        .map(|(i, _)| &dom[i..i + dom[i..].find('>').unwrap()])
        .filter(|tr| tr.contains("data-service=\"cyber-data\""))
        .collect();
    assert_eq!(rows.len(), 2, "one cyber-data row per phase");
    assert_eq!(attr(rows[1], "data-carried-by"), "PROX01 → PROX02");
    assert_eq!(attr(rows[1], "data-as-expected"), "true");
    let row = &dom[dom.find(rows[1]).unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains("class=\"node cloud\""));
}

/// One lab on the standard ports of 127.0.0.44 behind a Squid bumping every tunnel: certify
/// fails it naming the Squid CA; the analyzer given that Squid flags 132027.
#[test]
fn certify_and_analyze_html_through_a_bumping_squid_name_the_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let up = mdelab_tests::standard_port_lab(dir.path(), "127.0.0.44");
    let ca = SquidCa::new(SQUID_CA);
    let squid = Squid::start_with(&SquidOptions {
        hosts_file: &up.manifest.hosts_file,
        tls: SquidTls::Bump {
            ca: &ca,
            upstream_ca: &up.manifest.trust_bundle,
            splice: Vec::new(),
        },
        allow_domains: None,
        extra_config: "",
    });
    let proxy = format!("http://{}", squid.addr);
    let lab = up.manifest_path.to_str().unwrap();

    let out = mdelab(&[
        "certify",
        "--proxy",
        &proxy,
        "--lab",
        lab,
        "--hold",
        "2",
        "--upload-mib",
        "1",
        "--posts",
        "2",
        "--format",
        "html",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        explain(&out),
        squid.log()
    );
    let dom = render("report-certify", &out.stdout, 1000);
    // The verdict comes first, and it is certify's own line.
    let verdict = element(&dom, "p", &[("id", "verdict")]);
    assert_eq!(attr(verdict, "data-verdict"), "FAIL", "{verdict}");
    assert!(
        dom.find("id=\"verdict\"") < dom.find("<section"),
        "the verdict is on top"
    );
    let line = text_of(&dom, verdict, "p");
    assert!(
        line.starts_with("FAIL") && line.contains(&format!("{proxy} is NOT fit for MDE: ")),
        "{line}"
    );
    assert!(
        line.contains(&format!("TLS inspection by '{SQUID_CA}' on ")),
        "{line}"
    );
    // The replacing issuer, named on its own.
    let issuer = element(&dom, "div", &[("data-replacing-issuer", SQUID_CA)]);
    assert_eq!(
        text_of(&dom, "<strong class=\"issuer-name\">", "strong"),
        SQUID_CA
    );
    assert!(text_of(&dom, issuer, "div").contains("winatp-gw-cus.microsoft.com"));
    let inspection = dom
        .match_indices("<tr ")
        .map(|(i, _)| &dom[i..i + dom[i..].find('>').unwrap()])
        .find(|tr| tr.contains("data-family=\"TLS inspection"))
        .expect("a TLS inspection family row");
    assert_ne!(attr(inspection, "data-failed"), "0", "{inspection}");
    // Plain HTTP is not inspected: the CRL family passes.
    let crl = dom
        .match_indices("<tr ")
        .map(|(i, _)| &dom[i..i + dom[i..].find('>').unwrap()])
        .find(|tr| tr.contains("data-family=\"CRL/CTL"))
        .expect("a CRL/CTL family row");
    assert_eq!(attr(crl, "data-failed"), "0", "{crl}");

    // The analyzer with the same Squid on its command line: the groups are reachable directly
    // (no gateway rule in a lab started elsewhere); the chain check through Squid flags it.
    let out = mdelab(&[
        "analyze", "--lab", lab, "--proxy", &proxy, "--format", "html",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let dom = render("report-analyze", &out.stdout, 1250);
    let verdict = element(&dom, "p", &[("id", "verdict")]);
    assert_eq!(attr(verdict, "data-verdict"), "PASS", "{verdict}");
    element(
        &dom,
        "tr",
        &[("data-group", "CnCURLs"), ("data-result", "130017")],
    );
    element(
        &dom,
        "tr",
        &[
            ("data-host", "winatp-gw-cus.microsoft.com"),
            ("data-result", "132027"),
        ],
    );
    element(&dom, "div", &[("data-replacing-issuer", SQUID_CA)]);
    // Method 5 (the command-line proxy) is refused by the pinned sensor's TLS stack: 12175.
    let url = element(
        &dom,
        "tr",
        &[("data-url", "https://winatp-gw-cus.microsoft.com/test")],
    );
    assert_eq!(attr(url, "data-reachable"), "true");
    let block = text_of(&dom, url, "tr");
    assert!(block.contains("Succeeded (200)"), "{block}");
    assert!(block.contains("Failed (12175)"), "{block}");
    drop(squid);
    assert!(up.terminate().success());
}
