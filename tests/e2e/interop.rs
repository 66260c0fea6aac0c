//! Interop with real peers: dig against the lab DNS, curl with pins against the mock cloud.

use std::process::Output;

use mdelab_tests::{curl_status, start_lab, tool};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn dig_gets_the_lab_address_for_catalog_names_and_refused_outside() {
    let lab = start_lab().await;
    let dns = lab.dns_addr();
    let dig = |name: &str, extra: &[&str]| {
        tool("dig", "bind9-dnsutils")
            .args([
                format!("@{}", dns.ip()).as_str(),
                "-p",
                &dns.port().to_string(),
                name,
            ])
            .args(["+time=2", "+tries=1"])
            .args(extra)
            .output()
            .expect("dig runs")
    };
    let answer = dig("us-v20.events.data.microsoft.com", &["+short"]);
    assert_eq!(stdout(&answer).trim(), "127.0.0.1");
    let account = dig("anyaccount.blob.core.windows.net", &["+short"]);
    assert_eq!(stdout(&account).trim(), "127.0.0.1", "wildcard family");
    let refused = dig("www.example.org", &[]);
    assert!(
        stdout(&refused).contains("status: REFUSED"),
        "{}",
        stdout(&refused)
    );
    let nx = dig("no-such-host.microsoft.com", &[]);
    assert!(stdout(&nx).contains("status: NXDOMAIN"), "{}", stdout(&nx));
    let tcp = dig("winatp-gw-cus.microsoft.com", &["+tcp", "+short"]);
    assert_eq!(stdout(&tcp).trim(), "127.0.0.1", "TCP answers too");
    assert!(
        !stdout(&answer).contains("ra;"),
        "never recursion-available"
    );
    lab.shutdown().await.unwrap();
}

fn curl_pinned(lab: &mdelab::Lab, pin: &str) -> Output {
    let manifest = lab.manifest();
    curl_status()
        .arg("--cacert")
        .arg(&manifest.trust_bundle)
        .args(["--pinnedpubkey", pin])
        .args([
            "--connect-to",
            &format!("winatp-gw-cus.microsoft.com:443:{}", manifest.https),
        ])
        .arg("https://winatp-gw-cus.microsoft.com/test")
        .output()
        .expect("curl runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_with_the_lab_pin_gets_200_and_with_a_wrong_pin_exits_90() {
    let lab = start_lab().await;
    let manifest = lab.manifest();
    let good = curl_pinned(&lab, &manifest.pins.pinned);
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert_eq!(stdout(&good), "200");
    // The Azure profile's pins are valid pins, just not this host's.
    let wrong = curl_pinned(&lab, &manifest.pins.azure);
    assert_eq!(
        wrong.status.code(),
        Some(90),
        "curl's pinned-key error: {}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_fetches_the_crl_host_over_plain_http() {
    let lab = start_lab().await;
    let out = curl_status()
        .args([
            "--connect-to",
            &format!("ctldl.windowsupdate.com:80:{}", lab.http_addr()),
        ])
        .arg("http://ctldl.windowsupdate.com/")
        .output()
        .expect("curl runs");
    assert_eq!(stdout(&out), "200");
    lab.shutdown().await.unwrap();
}
