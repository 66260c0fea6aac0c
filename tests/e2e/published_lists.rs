//! Microsoft's published connectivity lists, walked through the lab as a device behind a plain
//! CONNECT proxy would: each URL from the data files in `catalog/lists/` (which cite their
//! sources), with curl trusting only the lab bundle, must answer its documented status.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Deserialize)]
struct MdatpList {
    documented: Vec<MdatpUrl>,
}

#[derive(Deserialize)]
struct MdatpUrl {
    order: u32,
    url: String,
    expected: u16,
    #[serde(default)]
    expected_body: Option<String>,
}

fn list(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../catalog/lists")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_mdatp_connectivity_test_url_answers_through_the_connect_proxy() {
    // The 14 URLs `mdatp connectivity test` prints `[OK]` for (linux-support-connectivity.md).
    let urls: MdatpList = toml::from_str(&list("mdatp-connectivity-test.toml")).unwrap();
    assert_eq!(urls.documented.len(), 14);
    let lab = mdelab_tests::start_lab().await;
    let manifest = lab.manifest();
    let proxy = lab.connect_proxy().addr.to_string();
    let results = tokio::task::spawn_blocking(move || {
        urls.documented
            .iter()
            .map(|u| {
                // The body, then the status on a line of its own.
                let out = mdelab_tests::tool("curl", "curl")
                    .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
                    .args(["--proxy", &format!("http://{proxy}")])
                    .arg("--cacert")
                    .arg(&manifest.trust_bundle)
                    .arg(&u.url)
                    .output()
                    .expect("curl runs");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                (
                    u.order,
                    u.url.clone(),
                    u.expected,
                    u.expected_body.clone(),
                    text,
                )
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut wrong = Vec::new();
    for (order, url, expected, body, text) in &results {
        let status = text.lines().last().unwrap_or_default();
        let ok_status = status == expected.to_string();
        let ok_body = body
            .as_deref()
            .is_none_or(|b| text.lines().any(|l| l.trim() == b));
        if !(ok_status && ok_body) {
            wrong.push(format!(
                "#{order} {url}: got {text:?}, expected {expected} {body:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
