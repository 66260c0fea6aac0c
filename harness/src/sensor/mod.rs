//! The emulated sensor: a client that reaches MDE endpoints the way MsSense does for
//! connectivity purposes, and a second, unpinned "browser" client for contrast.
//!
//! A probe resolves the host through the lab DNS (or asks a proxy to), opens TCP, validates the
//! chain against the device trust store, checks the endpoint's pins when the client pins, sends
//! one HTTP request and reports a [`Verdict`] with evidence. Nothing here returns an error for
//! a refused connection: refusals are verdicts.
//!
//! # Layout
//! - [`verdict`]: [`Verdict`], [`Outcome`], [`Layer`].
//! - [`verifier`]: chain-then-pin certificate verification.
//! - [`connect`]: routes (direct or through a proxy) up to an open byte stream.

pub mod connect;
pub mod verdict;
pub mod verifier;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use mdelab_certs::{CertSummary, PinSet};
use mdelab_mock_cloud::catalog::{Endpoint, ProbeMethod, Scheme};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

pub use connect::{ProxyRoute, Route};
pub use verdict::{Layer, Outcome, Verdict};
use verifier::{PinMismatch, PinningVerifier, pin_labels};

/// The largest response body a probe reads; probes answer a few bytes.
const MAX_BODY: usize = 64 * 1024;

/// How the device reaches the lab network.
#[derive(Clone, Debug)]
pub struct Network {
    /// The lab DNS server the device resolves through.
    pub dns: SocketAddr,
    /// Port rewrites applied after resolution (443 → the lab's HTTPS port), as
    /// `curl --connect-to` would; empty in standard-port mode.
    pub port_map: BTreeMap<u16, u16>,
    /// Time allowed for each step (resolve, connect, handshake, response).
    pub step_timeout: Duration,
}

impl Network {
    /// The port to dial for a catalog port.
    pub fn port_for(&self, port: u16) -> u16 {
        self.port_map.get(&port).copied().unwrap_or(port)
    }
}

/// Which client makes the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// The emulated MDE sensor: pins the pinned-profile CAs on pinned endpoints.
    Sensor,
    /// A browser-like client: trusts the same store, pins nothing.
    Browser,
}

impl ClientKind {
    /// "sensor" or "browser".
    pub fn name(self) -> &'static str {
        match self {
            Self::Sensor => "sensor",
            Self::Browser => "browser",
        }
    }
}

/// The device's trust: its root store and the pins the sensor carries.
#[derive(Clone, Debug)]
pub struct DeviceTrust {
    /// Roots the device trusts (the lab roots, plus the inspection CA when pushed by policy).
    pub roots: Vec<CertificateDer<'static>>,
    /// The sensor's pins for pinned endpoints.
    pub sensor_pins: PinSet,
}

/// One request to make: host, port, scheme, method and path.
#[derive(Clone, Debug)]
pub struct Target {
    /// Host name.
    pub host: String,
    /// Catalog port (443/80).
    pub port: u16,
    /// https or http.
    pub scheme: Scheme,
    /// Method.
    pub method: ProbeMethod,
    /// Path and query.
    pub path: String,
    /// Whether the sensor pins this endpoint.
    pub pinned: bool,
}

impl From<&Endpoint> for Target {
    fn from(e: &Endpoint) -> Self {
        Self {
            host: e.host.clone(),
            port: e.port,
            scheme: e.scheme,
            method: e.probe.method,
            path: e.probe.path.clone(),
            pinned: e.pinned,
        }
    }
}

/// Makes one request and reports what happened.
pub async fn probe(
    target: &Target,
    client: ClientKind,
    route: &Route,
    trust: &DeviceTrust,
    network: &Network,
) -> Outcome {
    let stream = match connect::open(target, route, network).await {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    match target.scheme {
        Scheme::Http => exchange(stream, target, route, network, None).await,
        Scheme::Https => {
            let pins =
                (client == ClientKind::Sensor && target.pinned).then(|| trust.sensor_pins.clone());
            tls_exchange(stream, target, route, trust, pins, network).await
        }
    }
}

async fn tls_exchange(
    stream: connect::Stream,
    target: &Target,
    route: &Route,
    trust: &DeviceTrust,
    pins: Option<PinSet>,
    network: &Network,
) -> Outcome {
    let verifier = match PinningVerifier::new(&trust.roots, pins.clone()) {
        Ok(v) => Arc::new(v),
        Err(err) => {
            return Outcome::new(
                Verdict::Other {
                    detail: format!("bad trust store: {err}"),
                },
                "",
                None,
            );
        }
    };
    let presented = verifier.presented();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
        Err(err) => {
            return Outcome::new(
                Verdict::Other {
                    detail: err.to_string(),
                },
                "",
                None,
            );
        }
    };
    let Ok(server_name) = ServerName::try_from(target.host.clone()) else {
        return Outcome::new(
            Verdict::Other {
                detail: format!("{:?} is not a valid server name", target.host),
            },
            "",
            None,
        );
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake =
        tokio::time::timeout(network.step_timeout, connector.connect(server_name, stream)).await;
    let chain = presented.lock().map(|c| c.clone()).unwrap_or_default();
    let served_issuer = chain.first().map(|c| c.issuer_cn.clone());
    match handshake {
        Err(_) => Outcome::new(
            Verdict::Timeout,
            "the TLS handshake did not complete in time",
            served_issuer,
        ),
        Ok(Err(err)) => classify_tls_error(&err, &chain, pins.as_ref()),
        Ok(Ok(tls)) => exchange(tls, target, route, network, served_issuer).await,
    }
}

/// Maps a handshake failure to a verdict with evidence.
fn classify_tls_error(
    err: &std::io::Error,
    chain: &[CertSummary],
    pins: Option<&PinSet>,
) -> Outcome {
    let served_issuer = chain.first().map(|c| c.issuer_cn.clone());
    let issuer = served_issuer
        .clone()
        .unwrap_or_else(|| "an unknown issuer".into());
    let rustls_err = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    let (verdict, evidence) = match rustls_err {
        Some(rustls::Error::InvalidCertificate(cert_err)) => match cert_err {
            rustls::CertificateError::Other(other)
                if other.0.downcast_ref::<PinMismatch>().is_some() =>
            {
                (
                    Verdict::PinMismatch,
                    format!(
                        "pin mismatch: chain issued by '{issuer}'; expected a key of {}",
                        pins.map(pin_labels).unwrap_or_default()
                    ),
                )
            }
            rustls::CertificateError::UnknownIssuer => (
                Verdict::UnknownIssuer,
                format!(
                    "untrusted chain: issued by '{issuer}', which is not in the device trust store"
                ),
            ),
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => (
                Verdict::NameMismatch,
                format!("certificate issued by '{issuer}' does not name the host"),
            ),
            rustls::CertificateError::Expired
            | rustls::CertificateError::ExpiredContext { .. }
            | rustls::CertificateError::NotValidYet
            | rustls::CertificateError::NotValidYetContext { .. } => (
                Verdict::Expired,
                format!("certificate issued by '{issuer}' is outside its validity period"),
            ),
            other => (
                Verdict::Other {
                    detail: format!("{other:?}"),
                },
                format!("certificate rejected: {other:?}"),
            ),
        },
        Some(rustls::Error::AlertReceived(alert)) => (
            Verdict::TlsAlert {
                alert: format!("{alert:?}"),
            },
            format!("the server refused the handshake with a {alert:?} alert"),
        ),
        Some(other) => (
            Verdict::Other {
                detail: other.to_string(),
            },
            format!("TLS failed: {other}"),
        ),
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => (
            Verdict::Other {
                detail: "connection closed during the TLS handshake".into(),
            },
            "the peer closed the connection during the TLS handshake".into(),
        ),
        None => (
            Verdict::Other {
                detail: err.to_string(),
            },
            format!("TLS failed: {err}"),
        ),
    };
    Outcome::new(verdict, evidence, served_issuer)
}

/// Sends the request over an open stream (TLS or plain) and reads the status.
async fn exchange<S>(
    stream: S,
    target: &Target,
    route: &Route,
    network: &Network,
    served_issuer: Option<String>,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io).await {
            Ok(pair) => pair,
            Err(err) => {
                return Outcome::new(
                    Verdict::Other {
                        detail: err.to_string(),
                    },
                    "HTTP set-up failed",
                    served_issuer,
                );
            }
        };
    let driver = tokio::spawn(conn);
    // Plain HTTP through a proxy uses the absolute form; everything else the origin form.
    let uri = match (target.scheme, route) {
        (Scheme::Http, Route::Proxy(_)) => format!("http://{}{}", authority(target), target.path),
        _ => target.path.clone(),
    };
    let request = http::Request::builder()
        .method(target.method.as_str())
        .uri(uri)
        .header(http::header::HOST, authority(target))
        .header(http::header::USER_AGENT, "MSDW");
    // An absolute-form request to a proxy carries the route's credentials, like CONNECT does.
    let request = match (target.scheme, route) {
        (Scheme::Http, Route::Proxy(proxy)) => match proxy.authorization() {
            Some(value) => request.header(http::header::PROXY_AUTHORIZATION, value),
            None => request,
        },
        _ => request,
    }
    .body(Empty::<Bytes>::new());
    let request = match request {
        Ok(r) => r,
        Err(err) => {
            return Outcome::new(
                Verdict::Other {
                    detail: err.to_string(),
                },
                "bad request",
                served_issuer,
            );
        }
    };
    let result = tokio::time::timeout(network.step_timeout, async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        // Read (and bound) the body so the exchange really completes.
        let _ = Limited::new(response.into_body(), MAX_BODY).collect().await;
        Ok::<_, hyper::Error>(status)
    })
    .await;
    driver.abort();
    match result {
        Ok(Ok(407)) => match route {
            Route::Proxy(proxy) if target.scheme == Scheme::Http => {
                connect::proxy_auth_required(proxy, served_issuer)
            }
            _ => Outcome::new(
                Verdict::Connected { status: 407 },
                "HTTP 407",
                served_issuer,
            ),
        },
        Ok(Ok(status)) => {
            let evidence = match &served_issuer {
                Some(issuer) => format!("connected through a chain issued by '{issuer}'"),
                None => "connected over plain HTTP".to_owned(),
            };
            Outcome::new(Verdict::Connected { status }, evidence, served_issuer)
        }
        Ok(Err(err)) => Outcome::new(
            Verdict::Other {
                detail: err.to_string(),
            },
            "the HTTP exchange failed",
            served_issuer,
        ),
        Err(_) => Outcome::new(Verdict::Timeout, "no HTTP response in time", served_issuer),
    }
}

fn authority(target: &Target) -> String {
    if target.port == target.scheme.default_port() {
        target.host.clone()
    } else {
        format!("{}:{}", target.host, target.port)
    }
}
