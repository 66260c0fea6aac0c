//! The TLS-intercepting proxy, as Squid `ssl_bump` or mitmproxy do it.
//!
//! It accepts CONNECT like the plain proxy, then reads the client's first bytes:
//! - not TLS: the tunnel is spliced untouched;
//! - a ClientHello whose SNI is on the bypass list: the ClientHello is replayed to the
//!   destination and the tunnel spliced, so the client sees the destination's own chain;
//! - any other ClientHello: the proxy opens its own TLS connection to the destination (verified
//!   against its upstream roots, offering the client's ALPN protocols), answers the client with
//!   a certificate minted for the SNI by the inspection CA (offering the protocol the
//!   destination chose), and relays HTTP between the two.
//!
//! A client that pins its server's keys refuses the minted certificate, and the access log says
//! how ([`ClientHandshake`]); that refusal is what the lab demonstrates.

pub(crate) mod client_hello;
pub(crate) mod mint;
mod relay;

use std::io;
use std::sync::Arc;

use mdelab_certs::LeafIssuer;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{Accepted, StoresServerSessions};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{StartHandshake, TlsConnector};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access_log::{
    AccessLog, ClientHandshake, DEFAULT_LOG_CAPACITY, Outcome, TlsHandling, UpstreamResult,
};
use crate::auth::Credentials;
use crate::destinations::{Destinations, HostSet, normalize_host};
use crate::error::Error;
use crate::front::{ClientIo, Ending, Front, Mode, TunnelCtx};
use crate::io::splice;
use crate::limits::{DEFAULT_MAX_HEADER_BYTES, Timeouts};
use client_hello::{Peeked, read_client_hello};
use mint::CertCache;

pub use crate::server::Running;

/// ALPN protocol ids the relay speaks.
const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";

/// How many TLS sessions the client-facing side remembers for resumption.
const SESSION_CACHE_SIZE: usize = 1024;

/// Configuration of a TLS-intercepting proxy.
#[derive(Clone, Debug)]
pub struct InterceptConfig {
    /// The instance name, written into every access record.
    pub name: String,
    /// Where clients may go and where those names really are.
    pub destinations: Destinations,
    /// When set, requests without these Basic credentials get 407.
    pub credentials: Option<Credentials>,
    /// Mints the certificates shown to clients (the inspection CA's issuer).
    pub issuer: LeafIssuer,
    /// The roots the proxy trusts for its own connections to destinations.
    pub upstream_roots: Vec<CertificateDer<'static>>,
    /// Hosts whose TLS is spliced, not inspected: exact names or `*.suffix`, matched
    /// case-insensitively against the SNI (or the CONNECT host when there is no SNI).
    pub bypass: Vec<String>,
    /// Header read, tunnel idle and connect timeouts.
    pub timeouts: Timeouts,
    /// The cap on a request head in bytes; larger heads get 431.
    pub max_header_bytes: usize,
    /// How many access records are kept.
    pub log_capacity: usize,
    /// Most concurrent client connections; at the cap the oldest that has not sent a request
    /// yet is closed for the newcomer, else the newcomer is closed.
    pub max_connections: usize,
    /// Where the TLS session secrets of both sides (the client-facing handshakes with minted
    /// certificates and the proxy's own connections to destinations) go, as NSS key-log lines
    /// for Wireshark; `None`, the default, writes nothing.
    pub key_log: Option<Arc<dyn rustls::KeyLog>>,
    /// Certificates sent after each minted chain; empty by default. A test device uses it to
    /// play an interceptor that appends a genuine pinned intermediate (public, no key needed):
    /// a client that accepts a pin found on *any presented* certificate is fooled by it (the
    /// OkHttp CVE-2016-2402 class); one that pins the validated path is not.
    pub append_to_chain: Vec<CertificateDer<'static>>,
}

impl InterceptConfig {
    /// A configuration with no authentication, no bypass list and default limits.
    pub fn new(
        name: impl Into<String>,
        destinations: Destinations,
        issuer: LeafIssuer,
        upstream_roots: Vec<CertificateDer<'static>>,
    ) -> Self {
        Self {
            name: name.into(),
            destinations,
            credentials: None,
            issuer,
            upstream_roots,
            bypass: Vec::new(),
            timeouts: Timeouts::default(),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            log_capacity: DEFAULT_LOG_CAPACITY,
            max_connections: crate::limits::DEFAULT_MAX_CONNECTIONS,
            key_log: None,
            append_to_chain: Vec::new(),
        }
    }
}

/// Starts an intercepting proxy on a listener the caller bound; it stops when `parent` is
/// cancelled or [`Running::shutdown`] is called.
pub fn spawn(
    listener: TcpListener,
    config: InterceptConfig,
    parent: &CancellationToken,
) -> Result<Running, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for (index, root) in config.upstream_roots.into_iter().enumerate() {
        roots.add(root).map_err(|source| Error::UpstreamRoot {
            proxy: config.name.clone(),
            index,
            source,
        })?;
    }
    let tls_error = |side, source| Error::TlsConfig {
        proxy: config.name.clone(),
        side,
        source,
    };
    let mut upstream_tls = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("upstream", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if let Some(key_log) = &config.key_log {
        upstream_tls.key_log = key_log.clone();
    }
    // Fail now, not on the first client, if the client-facing side cannot be configured.
    ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("client-facing", e))?;

    let certs = Arc::new(CertCache::new(
        config.issuer,
        config.append_to_chain,
        provider.clone(),
    ));
    let inspector = Inspector {
        name: config.name.clone(),
        certs: certs.clone(),
        bypass: HostSet::new(&config.bypass),
        provider,
        upstream_tls: Arc::new(upstream_tls),
        sessions: rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
        key_log: config.key_log,
    };
    let front = Front {
        log: AccessLog::new(config.log_capacity),
        name: config.name,
        destinations: config.destinations,
        credentials: config.credentials,
        timeouts: config.timeouts,
        max_header_bytes: config.max_header_bytes,
        max_connections: config.max_connections,
        mode: Mode::Intercept(Arc::new(inspector)),
        tracker: TaskTracker::new(),
        token: parent.child_token(),
    };
    crate::server::start(listener, front, Some(certs))
}

/// The intercepting proxy's tunnel handler.
pub(crate) struct Inspector {
    /// The proxy's instance name, for errors.
    name: String,
    certs: Arc<CertCache>,
    bypass: HostSet,
    provider: Arc<CryptoProvider>,
    /// Verifies destinations; cloned per tunnel to set the ALPN offer.
    upstream_tls: Arc<ClientConfig>,
    /// Shared by the per-tunnel server configurations, so that resumption works across them.
    sessions: Arc<dyn StoresServerSessions>,
    /// Where the client-facing handshakes' secrets go, if anywhere.
    key_log: Option<Arc<dyn rustls::KeyLog>>,
}

impl Inspector {
    /// Handles one established tunnel.
    pub(crate) async fn handle(
        &self,
        mut client: ClientIo,
        mut upstream: TcpStream,
        ctx: &Arc<TunnelCtx>,
    ) -> Ending {
        let peeked = match read_client_hello(&mut client, &upstream).await {
            Ok(peeked) => peeked,
            Err(e) => {
                return Ending::new(
                    Outcome::ConnectionError,
                    format!("reading the client's first bytes: {e}"),
                );
            }
        };
        match peeked {
            Peeked::Closed => Ending::completed(),
            Peeked::Raw(bytes) => Ending::from_io(splice(&mut client, &mut upstream, &bytes).await),
            Peeked::Malformed(detail) => Ending::new(Outcome::ClientTlsFailed, detail),
            Peeked::Hello { accepted, bytes } => {
                let hello = accepted.client_hello();
                let sni = normalize_host(hello.server_name().unwrap_or(&ctx.host));
                let offered: Vec<Vec<u8>> = hello
                    .alpn()
                    .into_iter()
                    .flatten()
                    .filter(|p| *p == H2 || *p == HTTP11)
                    .map(<[u8]>::to_vec)
                    .collect();
                if self.bypass.matches(&sni) {
                    ctx.set_tls(TlsHandling::Spliced { sni });
                    Ending::from_io(splice(&mut client, &mut upstream, &bytes).await)
                } else {
                    self.inspect(*accepted, client, upstream, sni, offered, ctx)
                        .await
                }
            }
        }
    }

    /// Terminates the client's TLS with a minted certificate and relays HTTP to the destination
    /// over the proxy's own TLS connection.
    async fn inspect(
        &self,
        accepted: Accepted,
        client: ClientIo,
        upstream: TcpStream,
        sni: String,
        offered: Vec<Vec<u8>>,
        ctx: &Arc<TunnelCtx>,
    ) -> Ending {
        // The destination is contacted first, so the client can be offered the protocol the
        // destination chose (as mitmproxy does) and the two sides never disagree on h2.
        let mut upstream_tls = (*self.upstream_tls).clone();
        upstream_tls.alpn_protocols = offered.clone();
        let attempt = connect_upstream(Arc::new(upstream_tls.clone()), upstream, &sni, ctx).await;
        let (upstream_result, client_alpn) = match &attempt {
            Ok((_, stream)) => {
                let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                let client_alpn = match &alpn {
                    Some(chosen) => vec![chosen.clone()],
                    None if offered.iter().any(|p| p == HTTP11) => vec![HTTP11.to_vec()],
                    None => Vec::new(),
                };
                let alpn = alpn.map(|p| String::from_utf8_lossy(&p).into_owned());
                (UpstreamResult::Connected { alpn }, client_alpn)
            }
            // Whatever the client speaks, it will be answered 502.
            Err(result) => (result.clone(), vec![H2.to_vec(), HTTP11.to_vec()]),
        };

        let config = match self
            .certs
            .get(&sni)
            .and_then(|key| self.server_config(key, client_alpn))
        {
            Ok(config) => config,
            Err(e) => {
                let detail = error_chain(&e);
                ctx.set_tls(TlsHandling::Inspected {
                    sni,
                    client: ClientHandshake::Failed {
                        detail: detail.clone(),
                    },
                    upstream: upstream_result,
                });
                return Ending::new(Outcome::ClientTlsFailed, detail);
            }
        };
        let handshake = StartHandshake::from_parts(accepted, client)
            .into_stream(config)
            .await;
        let stream = match handshake {
            Ok(stream) => stream,
            Err(e) => {
                ctx.set_tls(TlsHandling::Inspected {
                    sni,
                    client: classify_client(&e),
                    upstream: upstream_result,
                });
                return Ending::new(
                    Outcome::ClientTlsFailed,
                    format!("client TLS handshake: {e}"),
                );
            }
        };
        ctx.set_tls(TlsHandling::Inspected {
            sni: sni.clone(),
            client: ClientHandshake::Completed,
            upstream: upstream_result,
        });

        let upstream = match attempt {
            Ok((name, stream)) => {
                // Later connections ask for exactly the protocol the client was given.
                upstream_tls.alpn_protocols = stream
                    .get_ref()
                    .1
                    .alpn_protocol()
                    .map(|p| vec![p.to_vec()])
                    .unwrap_or_default();
                relay::Upstream::Connected {
                    name,
                    tls: Arc::new(upstream_tls),
                    first: Box::new(stream),
                }
            }
            Err(result) => relay::Upstream::Failed(describe_upstream_failure(&result)),
        };
        relay::serve(stream, upstream, ctx.clone()).await
    }

    fn server_config(
        &self,
        key: Arc<CertifiedKey>,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Arc<ServerConfig>, Error> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|source| Error::TlsConfig {
                proxy: self.name.clone(),
                side: "client-facing",
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
        config.alpn_protocols = alpn;
        config.session_storage = self.sessions.clone();
        if let Some(key_log) = &self.key_log {
            config.key_log = key_log.clone();
        }
        Ok(Arc::new(config))
    }
}

/// The proxy's own TLS connection to the destination, named by the SNI (or the CONNECT host).
async fn connect_upstream(
    tls: Arc<ClientConfig>,
    upstream: TcpStream,
    sni: &str,
    ctx: &TunnelCtx,
) -> Result<
    (
        ServerName<'static>,
        tokio_rustls::client::TlsStream<TcpStream>,
    ),
    UpstreamResult,
> {
    let name = ServerName::try_from(sni.to_owned())
        .or_else(|_| ServerName::try_from(normalize_host(&ctx.host)))
        .map_err(|e| UpstreamResult::Failed {
            detail: format!("{sni:?} is not a valid TLS server name: {e}"),
        })?;
    let limit = ctx.timeouts.connect;
    match tokio::time::timeout(
        limit,
        TlsConnector::from(tls).connect(name.clone(), upstream),
    )
    .await
    {
        Ok(Ok(stream)) => Ok((name, stream)),
        Ok(Err(e)) => Err(classify_upstream(&e)),
        Err(_) => Err(UpstreamResult::Failed {
            detail: format!("TLS handshake with the destination took longer than {limit:?}"),
        }),
    }
}

/// Why every request in a tunnel is answered 502, in words for the 502 body.
fn describe_upstream_failure(result: &UpstreamResult) -> String {
    match result {
        UpstreamResult::CertificateRejected { detail } => {
            format!("the proxy rejected the destination's certificate: {detail}")
        }
        UpstreamResult::Failed { detail } => {
            format!("the proxy's TLS connection to the destination failed: {detail}")
        }
        UpstreamResult::Connected { .. } => "the destination is connected".to_owned(),
    }
}

/// The rustls error inside an I/O error from tokio-rustls, if any.
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// Classifies a failed client handshake the way mitmproxy reports it.
fn classify_client(e: &io::Error) -> ClientHandshake {
    match rustls_error(e) {
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::CloseNotify)) => {
            ClientHandshake::ClosedDuringHandshake
        }
        Some(rustls::Error::AlertReceived(alert)) => ClientHandshake::RejectedWithAlert {
            alert: format!("{alert:?}"),
        },
        Some(other) => ClientHandshake::Failed {
            detail: other.to_string(),
        },
        None if matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ) =>
        {
            ClientHandshake::ClosedDuringHandshake
        }
        None => ClientHandshake::Failed {
            detail: e.to_string(),
        },
    }
}

/// Classifies a failed handshake with the destination.
fn classify_upstream(e: &io::Error) -> UpstreamResult {
    match rustls_error(e) {
        Some(cert @ rustls::Error::InvalidCertificate(_)) => UpstreamResult::CertificateRejected {
            detail: cert.to_string(),
        },
        Some(other) => UpstreamResult::Failed {
            detail: other.to_string(),
        },
        None => UpstreamResult::Failed {
            detail: e.to_string(),
        },
    }
}

/// An error and its sources, joined, for a log line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
