//! The mock cloud's TLS face: SNI-selected chains, refusals for missing or foreign names, ALPN.

use std::sync::Arc;

use mdelab_certs::{describe, pki};
use mdelab_tests::{start_lab, tool};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

/// A TLS client trusting the lab roots, optionally without SNI.
async fn handshake(lab: &mdelab::Lab, name: &str, sni: bool) -> Result<Vec<String>, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for root in lab.pki().trust_anchors() {
        roots.add(root).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.enable_sni = sni;
    let tcp = TcpStream::connect(lab.https_addr()).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    match connector.connect(server_name, tcp).await {
        Ok(tls) => {
            let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
            Ok(chain
                .iter()
                .map(|c| describe(c).unwrap().issuer_cn)
                .collect())
        }
        Err(err) => Err(*err
            .into_inner()
            .unwrap()
            .downcast::<rustls::Error>()
            .unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_host_gets_its_profile_chain_by_sni() {
    let lab = start_lab().await;
    let pinned = handshake(&lab, "winatp-gw-cus.microsoft.com", true)
        .await
        .unwrap();
    assert_eq!(
        pinned,
        vec![pki::PINNED_ISSUING_NAME, pki::PINNED_ROOT_NAME]
    );
    let blob = handshake(&lab, "ussus1eastprod.blob.core.windows.net", true)
        .await
        .unwrap();
    assert_eq!(blob, vec![pki::AZURE_ISSUING_NAME, pki::AZURE_ROOT_NAME]);
    // A storage account no table lists is still served, minted on first use.
    let minted = handshake(&lab, "brandnewaccount.blob.core.windows.net", true)
        .await
        .unwrap();
    assert_eq!(minted[0], pki::AZURE_ISSUING_NAME);
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_without_sni_or_with_a_foreign_name_is_refused_with_an_alert() {
    let lab = start_lab().await;
    let no_sni = handshake(&lab, "winatp-gw-cus.microsoft.com", false)
        .await
        .unwrap_err();
    assert_eq!(
        no_sni,
        rustls::Error::AlertReceived(rustls::AlertDescription::AccessDenied)
    );
    let foreign = handshake(&lab, "www.example.org", true).await.unwrap_err();
    assert_eq!(
        foreign,
        rustls::Error::AlertReceived(rustls::AlertDescription::AccessDenied)
    );
    // The listener keeps serving after refusals.
    assert!(
        handshake(&lab, "winatp-gw-eus.microsoft.com", true)
            .await
            .is_ok()
    );
    lab.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_negotiates_h2_and_unknown_paths_are_404() {
    let lab = start_lab().await;
    let manifest = lab.manifest();
    let get = |url: &str| {
        let out = tool("curl", "curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
                "--http2",
                "--max-time",
                "10",
            ])
            .arg("--cacert")
            .arg(&manifest.trust_bundle)
            .args(["--connect-to", &format!("::{}", manifest.https)])
            .arg(url)
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(get("https://winatp-gw-cus.microsoft.com/test"), "200 2");
    assert_eq!(get("https://winatp-gw-cus.microsoft.com/nope"), "404 2");
    assert_eq!(
        get("https://ussus1eastprod.blob.core.windows.net/"),
        "400 2"
    );
    assert_eq!(
        get("https://mdav.us.endpoint.security.microsoft.com/mdav/test"),
        "404 2"
    );
    lab.shutdown().await.unwrap();
}
