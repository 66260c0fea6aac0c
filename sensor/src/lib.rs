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
//! - [`verifier`]: chain-then-pin certificate verification, with the pin required on the
//!   validated path; a recording-only mode for the Client Analyzer's chain check.
//! - [`connect`]: routes (direct or through a proxy) up to an open byte stream.
//! - [`wire`]: every request the device sends (1DS uploads, blob PUTs, the CnC poll, Live
//!   Response actions, probes) with the header names it speaks.
//! - [`profile`]: the machine profile (proxy settings, user session, trust, onboarding, the
//!   lab proxies around the device), as TOML.
//! - [`route`]: route selection, which proxy setting each service uses ([`route::select_route`]).
//! - [`pac`]: the device's side of WPAD (fetching and evaluating the PAC file).
//! - [`netprot`]: network protection and the user's browsing, reported as `DeviceNetworkEvents`.
//! - [`kill_switch`]: the 1DS kill switch and retry headers, rule by rule as the SDKs obey them.
//! - [`bond`]: events as Bond CompactBinary `CsProtocol::Record`s, as the 1DS C++ SDK sends them.
//! - [`agent`]: the sensor as a running client of the cloud (onboarding, 1DS uploads with
//!   cache and back-off, the CnC poll loop, Live Response).
//! - [`error`]: the crate's one [`Error`] type (profiles, onboarding blobs, PAC files).

pub mod agent;
pub mod bond;
pub mod connect;
pub mod error;
pub mod kill_switch;
pub mod netprot;
pub mod pac;
pub mod profile;
pub mod route;
pub mod verdict;
pub mod verifier;
pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use mdelab_catalog::{Endpoint, ProbeMethod, Scheme};
use mdelab_certs::{CertSummary, PinSet};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

pub use connect::{Dial, DialTrace, ProxyRoute, Route};
pub use error::Error;
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
    /// The address the device's sockets bind before connecting (e.g. `127.0.0.77`, so the
    /// lab's gateway rule can tell the device's own connections apart); `None` lets the OS
    /// choose.
    pub source_ip: Option<std::net::IpAddr>,
    /// Where to record every TCP connection the device opens (local and peer address), so a
    /// caller can find each connection in the access log of the proxy it reached; `None`
    /// records nothing.
    pub dials: Option<connect::DialTrace>,
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

/// Where a request goes: host, port, scheme, and whether the sensor pins it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Host name.
    pub host: String,
    /// Catalog port (443/80).
    pub port: u16,
    /// https or http.
    pub scheme: Scheme,
    /// Whether the sensor pins this host.
    pub pinned: bool,
}

impl Origin {
    /// The origin of a catalog host (pinned as the catalog says).
    pub fn https(host: &str, pinned: bool) -> Self {
        Self {
            host: host.to_owned(),
            port: 443,
            scheme: Scheme::Https,
            pinned,
        }
    }
}

impl Target {
    /// Where the probe goes.
    pub fn origin(&self) -> Origin {
        Origin {
            host: self.host.clone(),
            port: self.port,
            scheme: self.scheme,
            pinned: self.pinned,
        }
    }
}

/// One HTTP request of the sensor.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// Method.
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(http::HeaderName, String)>,
    /// Body (empty for none).
    pub body: Bytes,
    /// Longest the whole exchange may take after connecting (long polls need more).
    pub timeout: Duration,
    /// Largest response body read; a longer one fails the exchange.
    pub max_response: usize,
}

impl HttpRequest {
    /// A request with no body, the default 10 s timeout and a 64 KiB response cap.
    pub fn new(method: http::Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Bytes::new(),
            timeout: Duration::from_secs(10),
            max_response: MAX_BODY,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: http::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What came back.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body (capped).
    pub body: Bytes,
    /// Issuer of the leaf the server presented (HTTPS).
    pub served_issuer: Option<String>,
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

/// Makes one probe request and reports what happened.
pub async fn probe(
    target: &Target,
    client: ClientKind,
    route: &Route,
    trust: &DeviceTrust,
    network: &Network,
) -> Outcome {
    let request = wire::probe(target).timeout(network.step_timeout);
    match send(&target.origin(), client, route, trust, network, &request).await {
        Ok(response) => connected(response.status, response.served_issuer),
        Err(outcome) => outcome,
    }
}

/// The outcome of a completed exchange.
pub(crate) fn connected(status: u16, served_issuer: Option<String>) -> Outcome {
    let evidence = match &served_issuer {
        Some(issuer) => format!("connected through a chain issued by '{issuer}'"),
        None => "connected over plain HTTP".to_owned(),
    };
    Outcome::new(Verdict::Connected { status }, evidence, served_issuer)
}

/// Sends one request to `origin` over `route`, verifying the chain (and the pins, when the
/// client pins this origin). A refusal at any layer comes back as an [`Outcome`]; a 407 from
/// the proxy is a refusal too.
pub async fn send(
    origin: &Origin,
    client: ClientKind,
    route: &Route,
    trust: &DeviceTrust,
    network: &Network,
    request: &HttpRequest,
) -> Result<HttpResponse, Outcome> {
    let stream = connect::open(origin, route, network).await?;
    match origin.scheme {
        Scheme::Http => exchange(stream, origin, route, request, None).await,
        Scheme::Https => {
            let pins =
                (client == ClientKind::Sensor && origin.pinned).then(|| trust.sensor_pins.clone());
            let (tls, served_issuer) = tls_handshake(stream, origin, trust, pins, network).await?;
            exchange(tls, origin, route, request, served_issuer).await
        }
    }
}

fn other(detail: impl Into<String>) -> Outcome {
    let detail = detail.into();
    Outcome::new(
        Verdict::Other {
            detail: detail.clone(),
        },
        detail,
        None,
    )
}

async fn tls_handshake(
    stream: connect::Stream,
    origin: &Origin,
    trust: &DeviceTrust,
    pins: Option<PinSet>,
    network: &Network,
) -> Result<
    (
        tokio_rustls::client::TlsStream<connect::Stream>,
        Option<String>,
    ),
    Outcome,
> {
    let verifier = PinningVerifier::new(&trust.roots, pins.clone())
        .map_err(|err| other(format!("bad trust store: {err}")))?;
    let presented = verifier.presented();
    let config = client_config(verifier).map_err(|err| other(err.to_string()))?;
    let server_name = ServerName::try_from(origin.host.clone())
        .map_err(|_| other(format!("{:?} is not a valid server name", origin.host)))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let handshake =
        tokio::time::timeout(network.step_timeout, connector.connect(server_name, stream)).await;
    let chain = presented.lock().map(|c| c.clone()).unwrap_or_default();
    let served_issuer = chain.first().map(|c| c.issuer_cn.clone());
    match handshake {
        Err(_) => Err(Outcome::new(
            Verdict::Timeout,
            "the TLS handshake did not complete in time",
            served_issuer,
        )),
        Ok(Err(err)) => Err(classify_tls_error(&err, &chain, pins.as_ref())),
        Ok(Ok(tls)) => Ok((tls, served_issuer)),
    }
}

/// A TLS client configuration that verifies with `verifier` and its crypto provider. Its key
/// log is rustls's no-op default on purpose: the emulated device never writes its secrets,
/// whatever `SSLKEYLOGFILE` says (the lab's key log is the servers' and proxies' business).
fn client_config(verifier: PinningVerifier) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let config = rustls::ClientConfig::builder_with_provider(verifier.provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The chain `origin` presents over `route`, whoever issued it (the Client Analyzer's check,
/// which trusts anything); empty when no handshake got that far.
pub async fn presented_chain(
    origin: &Origin,
    route: &Route,
    network: &Network,
) -> Vec<CertSummary> {
    let Ok(stream) = connect::open(origin, route, network).await else {
        return Vec::new();
    };
    let verifier = PinningVerifier::recording();
    let presented = verifier.presented();
    let Ok(config) = client_config(verifier) else {
        return Vec::new();
    };
    let Ok(name) = ServerName::try_from(origin.host.clone()) else {
        return Vec::new();
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    let _ = tokio::time::timeout(network.step_timeout, connector.connect(name, stream)).await;
    presented.lock().map(|c| c.clone()).unwrap_or_default()
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

/// Sends the request over an open stream (TLS or plain) and reads the response (capped).
async fn exchange<S>(
    stream: S,
    origin: &Origin,
    route: &Route,
    request: &HttpRequest,
    served_issuer: Option<String>,
) -> Result<HttpResponse, Outcome>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let fail = |detail: String, evidence: &str| {
        Outcome::new(Verdict::Other { detail }, evidence, served_issuer.clone())
    };
    let io = TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|err| fail(err.to_string(), "HTTP set-up failed"))?;
    let driver = tokio::spawn(conn);
    // Plain HTTP through a proxy uses the absolute form; everything else the origin form.
    let proxy = match route {
        Route::Proxy(proxy) if origin.scheme == Scheme::Http => Some(proxy),
        _ => None,
    };
    let uri = match proxy {
        Some(_) => format!("http://{}{}", authority(origin), request.path),
        None => request.path.clone(),
    };
    let mut builder = http::Request::builder()
        .method(request.method.clone())
        .uri(uri)
        .header(http::header::HOST, authority(origin))
        .header(http::header::USER_AGENT, "MSDW");
    // An absolute-form request to a proxy carries the route's credentials, like CONNECT does.
    if let Some(value) = proxy.and_then(ProxyRoute::authorization) {
        builder = builder.header(http::header::PROXY_AUTHORIZATION, value);
    }
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let http_request = builder
        .body(Full::new(request.body.clone()))
        .map_err(|err| fail(err.to_string(), "bad request"))?;
    let result = tokio::time::timeout(request.timeout, async {
        let response = sender.send_request(http_request).await?;
        let (parts, body) = response.into_parts();
        // Read (and bound) the body so the exchange really completes; a body cut short is a
        // failed exchange (the sender cannot know what the server did with its request).
        let body = Limited::new(body, request.max_response)
            .collect()
            .await?
            .to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((parts, body))
    })
    .await;
    driver.abort();
    match result {
        Ok(Ok((parts, _)))
            if parts.status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED
                && proxy.is_some() =>
        {
            Err(proxy.map_or_else(
                || other("407"),
                |p| connect::proxy_auth_required(p, served_issuer.clone()),
            ))
        }
        Ok(Ok((parts, body))) => Ok(HttpResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            served_issuer,
        }),
        Ok(Err(err)) => Err(fail(
            err.to_string(),
            "the HTTP exchange failed (connection closed or response cut)",
        )),
        Err(_) => Err(Outcome::new(
            Verdict::Timeout,
            "no HTTP response in time",
            served_issuer,
        )),
    }
}

fn authority(origin: &Origin) -> String {
    if origin.port == origin.scheme.default_port() {
        origin.host.clone()
    } else {
        format!("{}:{}", origin.host, origin.port)
    }
}

#[cfg(test)]
mod key_log_tests {
    use super::{PinningVerifier, client_config};

    #[test]
    fn the_sensor_never_logs_its_tls_secrets() {
        let config = client_config(PinningVerifier::recording()).unwrap();
        for label in [
            "CLIENT_RANDOM",
            "CLIENT_TRAFFIC_SECRET_0",
            "EXPORTER_SECRET",
        ] {
            assert!(!config.key_log.will_log(label), "{label}");
        }
    }
}
