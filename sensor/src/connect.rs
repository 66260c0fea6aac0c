//! Routes: how the device gets a byte stream to a target, directly or through a proxy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use super::{Network, Origin, Outcome, Verdict};
use mdelab_catalog::Scheme;

/// The stream a route yields.
pub type Stream = TcpStream;

/// The largest proxy response head the client reads.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// One TCP connection the device opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dial {
    /// The device's end (source address and port).
    pub local: SocketAddr,
    /// What it connected to (a proxy, or the host itself).
    pub peer: SocketAddr,
}

/// A shared record of the connections a device opened, oldest first (see
/// [`Network::dials`](super::Network::dials)). Cloning shares the record.
#[derive(Clone, Debug, Default)]
pub struct DialTrace {
    dials: Arc<Mutex<Vec<Dial>>>,
}

impl DialTrace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connections recorded so far, oldest first.
    pub fn dials(&self) -> Vec<Dial> {
        self.dials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, dial: Dial) {
        self.dials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dial);
    }
}

/// How a request leaves the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Resolve through the lab DNS and connect straight to the host.
    Direct,
    /// Ask a proxy: CONNECT for TLS, absolute-form requests for plain HTTP.
    Proxy(ProxyRoute),
}

/// A proxy the device is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRoute {
    /// The proxy's address.
    pub addr: SocketAddr,
    /// Basic credentials, when the calling context has any (SYSTEM has none).
    pub credentials: Option<(String, String)>,
}

impl ProxyRoute {
    /// The `Proxy-Authorization` value for the route's credentials, if it has any.
    pub fn authorization(&self) -> Option<String> {
        let (user, password) = self.credentials.as_ref()?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {token}"))
    }
}

/// The outcome of a 407, worded for whether the client offered credentials.
pub fn proxy_auth_required(proxy: &ProxyRoute, served_issuer: Option<String>) -> Outcome {
    let evidence = if proxy.credentials.is_some() {
        "the proxy rejected the credentials offered (407)"
    } else {
        "the proxy demands authentication (407) and the request carried no credentials \
         (the sensor runs as SYSTEM and has none)"
    };
    Outcome::new(Verdict::ProxyAuthRequired, evidence, served_issuer)
}

/// Opens a stream to `target` over `route`, or says why not.
pub async fn open(target: &Origin, route: &Route, network: &Network) -> Result<Stream, Outcome> {
    match route {
        Route::Direct => {
            let addrs = mdelab_dns::resolve(network.dns, &target.host, network.step_timeout)
                .await
                .map_err(|err| {
                    Outcome::new(
                        Verdict::DnsFailure {
                            reason: err.to_string(),
                        },
                        format!("{} did not resolve: {err}", target.host),
                        None,
                    )
                })?;
            let Some(ip) = addrs.first() else {
                return Err(Outcome::new(
                    Verdict::DnsFailure {
                        reason: "no address".into(),
                    },
                    format!("{} has no address", target.host),
                    None,
                ));
            };
            dial(
                SocketAddr::new(*ip, network.port_for(target.port)),
                network,
                "the host",
            )
            .await
        }
        Route::Proxy(proxy) => {
            let mut stream = dial(proxy.addr, network, "the proxy").await?;
            if target.scheme == Scheme::Http {
                // Plain HTTP goes to the proxy as an absolute-form request on this stream.
                return Ok(stream);
            }
            let authority = format!("{}:{}", target.host, target.port);
            let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
            if let Some(value) = proxy.authorization() {
                head.push_str(&format!("Proxy-Authorization: {value}\r\n"));
            }
            head.push_str("\r\n");
            let status = tokio::time::timeout(network.step_timeout, async {
                stream.write_all(head.as_bytes()).await?;
                read_response_status(&mut stream).await
            })
            .await;
            match status {
                Err(_) => Err(Outcome::new(
                    Verdict::Timeout,
                    "the proxy did not answer CONNECT in time",
                    None,
                )),
                Ok(Err(err)) => Err(Outcome::new(
                    Verdict::Other {
                        detail: err.to_string(),
                    },
                    format!("the proxy broke the CONNECT exchange: {err}"),
                    None,
                )),
                Ok(Ok(200)) => Ok(stream),
                Ok(Ok(407)) => Err(proxy_auth_required(proxy, None)),
                Ok(Ok(status)) => Err(Outcome::new(
                    Verdict::ProxyRefused { status },
                    format!("the proxy refused CONNECT {authority} with {status}"),
                    None,
                )),
            }
        }
    }
}

/// Connects to `addr`, from the device's source address when it has one.
async fn connect_from(addr: SocketAddr, network: &Network) -> std::io::Result<TcpStream> {
    let Some(source) = network.source_ip else {
        return TcpStream::connect(addr).await;
    };
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0)).map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("cannot bind the device's source address {source}: {err}"),
        )
    })?;
    socket.connect(addr).await
}

async fn dial(addr: SocketAddr, network: &Network, what: &str) -> Result<Stream, Outcome> {
    match tokio::time::timeout(network.step_timeout, connect_from(addr, network)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            if let (Some(trace), Ok(local)) = (&network.dials, stream.local_addr()) {
                trace.push(Dial { local, peer: addr });
            }
            Ok(stream)
        }
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => Err(Outcome::new(
            Verdict::Refused,
            format!("{what} refused the TCP connection"),
            None,
        )),
        Ok(Err(err)) => Err(Outcome::new(
            Verdict::Other {
                detail: err.to_string(),
            },
            format!("could not connect to {what}: {err}"),
            None,
        )),
        Err(_) => Err(Outcome::new(
            Verdict::Timeout,
            format!("{what} did not accept the TCP connection in time"),
            None,
        )),
    }
}

/// Reads a response head byte by byte (so nothing after it is consumed) and returns the status.
async fn read_response_status(stream: &mut Stream) -> std::io::Result<u16> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_PROXY_HEAD {
            return Err(std::io::Error::other("proxy response head too large"));
        }
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => response
            .code
            .ok_or_else(|| std::io::Error::other("proxy response without status")),
        _ => Err(std::io::Error::other("malformed proxy response")),
    }
}
