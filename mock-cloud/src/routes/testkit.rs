//! Test kit for the routers: an [`App`] over fresh state sharing one certificate store, and
//! a way to send one request through the real dispatcher (no sockets).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use mdelab_certs::{Pki, PkiOptions};

use crate::config::ServiceConfig;
use crate::journal::Journal;
use crate::routes::{App, ConnInfo};
use crate::tls::CertStore;
use mdelab_catalog::{Catalog, Scheme};

/// The client address every test request comes from.
pub(crate) const PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 50000);

/// Minting a leaf per catalog host takes a moment: share one certificate store.
fn certs() -> Arc<CertStore> {
    static CERTS: OnceLock<Arc<CertStore>> = OnceLock::new();
    CERTS
        .get_or_init(|| {
            let pki = Pki::generate(&PkiOptions::default()).expect("lab PKI");
            Arc::new(CertStore::new(Catalog::mde(), pki).expect("certificate store"))
        })
        .clone()
}

/// An app over fresh state with `config`.
pub(crate) fn app_with(config: ServiceConfig) -> App {
    let journal = Journal::new(1000, None).expect("journal");
    App::new(crate::State::new(Catalog::mde(), certs(), config, journal))
}

/// An app over fresh state with the default configuration.
pub(crate) fn app() -> App {
    app_with(ServiceConfig::default())
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one HTTPS request for `host` (Host header and SNI) through the real dispatcher.
pub(crate) async fn send(
    app: &App,
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder.body(body.into()).expect("request");
    let conn = ConnInfo {
        peer: PEER,
        scheme: Scheme::Https,
        sni: Some(host.to_owned()),
    };
    let response = app.handle(req, conn).await.expect("no fault injected");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}
