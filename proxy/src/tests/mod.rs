//! End-to-end tests on real loopback sockets: a test HTTPS origin (lab chain), a plain HTTP
//! origin, and real clients through both proxies. Tests synchronise on access records and on
//! socket events, never on sleeps.

mod connect;
mod intercept;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mdelab_certs::{CertificateDer, Pki, PkiOptions, Profile};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, client};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::Destinations;

/// The pinned CnC gateway name the TLS origin serves.
const GW: &str = "winatp-gw-cus.microsoft.com";
/// A second name on the same origin, for bypass and cache tests.
const OTHER: &str = "x.cp.wd.microsoft.com";
/// The CRL host served by the plain HTTP origin.
const CRL: &str = "crl.microsoft.com";
/// A plain-TCP destination (the HTTP origin) reached through CONNECT.
const PLAIN: &str = "plain.lab";
/// How long any wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// The PKI and both origins; dropping it stops the origins.
struct Lab {
    pki: Pki,
    tls_origin: SocketAddr,
    http_origin: SocketAddr,
    token: CancellationToken,
    _stop: DropGuard,
}

impl Lab {
    async fn start() -> Self {
        let pki = Pki::generate(&PkiOptions::default()).expect("generate the lab PKI");
        let token = CancellationToken::new();
        let tls_origin = spawn_tls_origin(&pki, &token).await;
        let http_origin = spawn_http_origin(&token).await;
        Self {
            pki,
            tls_origin,
            http_origin,
            _stop: token.clone().drop_guard(),
            token,
        }
    }

    fn destinations(&self) -> Destinations {
        Destinations::new()
            .map(GW, 443, self.tls_origin)
            .map(OTHER, 443, self.tls_origin)
            .map(CRL, 80, self.http_origin)
            .map(PLAIN, 8080, self.http_origin)
    }

    /// The roots a lab device trusts (never the inspection CA).
    fn lab_roots(&self) -> Vec<CertificateDer<'static>> {
        self.pki.trust_anchors()
    }

    /// Only the inspection CA, as on a device that an enterprise pushed it to.
    fn inspection_root(&self) -> Vec<CertificateDer<'static>> {
        vec![self.pki.inspection().authority().certificate().clone()]
    }

    fn pinned_issuing_cn(&self) -> String {
        self.pki
            .issuer(Profile::Pinned)
            .authority()
            .common_name()
            .to_owned()
    }

    fn inspection_cn(&self) -> String {
        self.pki.inspection().authority().common_name().to_owned()
    }
}

/// The HTTPS origin: a lab-chain leaf for [`GW`] and [`OTHER`], h2 and HTTP/1.1.
async fn spawn_tls_origin(pki: &Pki, token: &CancellationToken) -> SocketAddr {
    let leaf = pki
        .issuer(Profile::Pinned)
        .issue(&[GW, OTHER])
        .expect("mint the origin leaf");
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)
        .expect("origin certificate");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = bind().await;
    let addr = listener.local_addr().expect("origin address");
    let token = token.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = token.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service_fn(origin))
                    .await;
            });
        }
    });
    addr
}

/// The HTTPS origin's routes: `/test`, `/hold?ms=N`, `/echo` (POST), `/upgrade`.
async fn origin(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let version = format!("{:?}", req.version());
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let reply = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("x-seen-version", version.as_str())
            .header("x-seen-host", host.as_str())
            .body(Full::new(Bytes::from(body)))
            .expect("valid response")
    };
    let response = match req.uri().path() {
        "/test" => reply(StatusCode::OK, "ok".into()),
        "/hold" => {
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(StatusCode::OK, format!("held {ms}"))
        }
        "/echo" => {
            let mut body = req.into_body();
            let (mut len, mut hash) = (0u64, FNV_OFFSET);
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Ok(data) = frame.into_data() {
                    len += data.len() as u64;
                    hash = fnv1a(hash, &data);
                }
            }
            reply(StatusCode::OK, format!("len={len} fnv={hash:016x}"))
        }
        "/upgrade" => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(http::header::CONNECTION, "upgrade")
                .header(http::header::UPGRADE, "echo")
                .body(Full::new(Bytes::new()))
                .expect("valid response")
        }
        _ => reply(StatusCode::NOT_FOUND, "not found".into()),
    };
    Ok(response)
}

/// The plain HTTP origin: answers every request with its path and `Host`.
async fn spawn_http_origin(token: &CancellationToken) -> SocketAddr {
    let listener = bind().await;
    let addr = listener.local_addr().expect("origin address");
    let token = token.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = token.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((tcp, _)) = accepted else { continue };
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let path = req.uri().path_and_query().map(ToString::to_string);
                    let host = req
                        .headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let body = format!("path={} host={host}", path.unwrap_or_default());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut hash: u64, data: &[u8]) -> u64 {
    for byte in data {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A deterministic body of `len` bytes and the origin's expected answer for it.
fn large_body(len: usize) -> (Bytes, String) {
    let data: Vec<u8> = (0..len).map(|i| (i * 31 + i / 7) as u8).collect();
    let expected = format!("len={len} fnv={:016x}", fnv1a(FNV_OFFSET, &data));
    (Bytes::from(data), expected)
}

/// Reads a response head byte by byte, so that nothing after it is consumed.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Sends raw bytes to the proxy and returns the status of its answer.
async fn raw_status(proxy: SocketAddr, request: &[u8]) -> u16 {
    let mut tcp = TcpStream::connect(proxy)
        .await
        .expect("connect to the proxy");
    // The proxy may answer and close before reading everything; the answer is what counts.
    let _ = tcp.write_all(request).await;
    status_of(&read_head(&mut tcp).await)
}

/// Sends `CONNECT target` and returns the status, the response head and the stream.
async fn open_tunnel(
    proxy: SocketAddr,
    target: &str,
    auth: Option<&str>,
) -> (u16, String, TcpStream) {
    let mut tcp = TcpStream::connect(proxy)
        .await
        .expect("connect to the proxy");
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = auth {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .expect("send CONNECT");
    let head = read_head(&mut tcp).await;
    (status_of(&head), head, tcp)
}

/// A rustls client handshake over `tcp`, trusting only `roots`.
async fn tls_connect(
    tcp: TcpStream,
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
    name: &str,
) -> io::Result<client::TlsStream<TcpStream>> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("add a root");
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The issuer CN of the leaf a TLS client was served.
fn served_issuer(tls: &client::TlsStream<TcpStream>) -> String {
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("peer certificates");
    mdelab_certs::describe(&chain[0])
        .expect("describe leaf")
        .issuer_cn
}

/// One HTTP/1.1 exchange on `io`; the connection is closed before returning.
async fn h1_send<IO>(io: IO, req: Request<Full<Bytes>>) -> Response<Bytes>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .expect("HTTP/1.1 handshake");
    let driver = tokio::spawn(conn);
    let response = sender.send_request(req).await.expect("HTTP/1.1 response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    drop(sender);
    let _ = driver.await;
    Response::from_parts(parts, body)
}

/// HTTP/2 exchanges on `io`, sent concurrently; the connection is closed before returning.
async fn h2_send<IO>(io: IO, requests: Vec<Request<Full<Bytes>>>) -> Vec<Response<Bytes>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("HTTP/2 handshake");
    let driver = tokio::spawn(conn);
    let mut tasks = Vec::new();
    for req in requests {
        let mut sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let response = sender.send_request(req).await.expect("HTTP/2 response");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("response body").to_bytes();
            Response::from_parts(parts, body)
        }));
    }
    let mut responses = Vec::new();
    for task in tasks {
        responses.push(task.await.expect("request task"));
    }
    drop(sender);
    let _ = driver.await;
    responses
}

fn get(uri: &str, host: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header(http::header::HOST, host)
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

fn post(uri: &str, host: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header(http::header::HOST, host)
        .body(Full::new(body))
        .expect("valid request")
}

fn header<'a>(response: &'a Response<Bytes>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
