//! The listeners: one HTTPS listener for every catalog host (certificate by SNI) and one plain
//! HTTP listener for the port-80 hosts. The caller binds; this module serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use mdelab_certs::Pki;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServiceConfig;
use crate::journal::Journal;
use crate::routes::{App, ConnInfo};
use crate::tls::{CertStore, server_config};
use crate::{Error, State};
use mdelab_catalog::{Catalog, Scheme};

/// How the mock cloud serves.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// The catalog to serve.
    pub catalog: &'static Catalog,
    /// The PKI whose profiles sign the hosts' certificates.
    pub pki: Pki,
    /// How long a client may take to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a client may take to send request headers (HTTP/1).
    pub header_read_timeout: Duration,
    /// Most concurrent connections per listener; further ones wait in the accept queue.
    pub max_connections: usize,
    /// How the services behave (capacities, holds, timeouts, seed).
    pub services: ServiceConfig,
    /// How long a connection from a blocked peer ([`State::block_peer`]) is held, unanswered,
    /// before it is closed.
    pub blocked_hold: Duration,
    /// Where the HTTPS listener writes its TLS session secrets (NSS key-log lines, for
    /// Wireshark); `None`, the default, writes nothing.
    pub key_log: Option<Arc<dyn rustls::KeyLog>>,
}

impl CloudConfig {
    /// The MDE catalog with default timeouts.
    pub fn new(pki: Pki) -> Self {
        Self {
            catalog: Catalog::mde(),
            pki,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            services: ServiceConfig::default(),
            blocked_hold: Duration::from_secs(120),
            key_log: None,
        }
    }
}

/// The listeners the caller bound.
#[derive(Debug)]
pub struct Listeners {
    /// TLS listener for every HTTPS host.
    pub https: TcpListener,
    /// Plain HTTP listener for the port-80 hosts (CRL/CTL).
    pub http: TcpListener,
}

/// The running mock cloud; [`shutdown`](Self::shutdown) stops it and frees its ports.
///
/// Dropping it without `shutdown` also stops it (every task is cancelled), but without waiting
/// for the sockets to close.
#[derive(Debug)]
pub struct Running {
    https_addr: SocketAddr,
    http_addr: SocketAddr,
    state: State,
    token: CancellationToken,
    /// Both accept loops and every connection task they start, so shutdown joins them all.
    tracker: TaskTracker,
}

impl Running {
    /// Where the HTTPS listener is bound.
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// Where the HTTP listener is bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The shared state (certificates, catalog).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Stops accepting, lets open connections finish their current exchange, and waits until
    /// every connection task has ended and both listening sockets are closed.
    ///
    /// A journal file that cannot be flushed within 5 s is logged, not an error; the `Result`
    /// keeps the shape every lab server shares (`dns`, the admin API).
    pub async fn shutdown(self) -> Result<(), Error> {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        // Every request is answered: make sure its journal line is on disk too.
        let journal = self.state.journal().clone();
        let synced = tokio::task::spawn_blocking(move || journal.sync_file(Duration::from_secs(5)))
            .await
            .unwrap_or(false);
        if !synced {
            tracing::warn!("the journal file could not be flushed within 5 s");
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Without this, forgetting `shutdown` would leave the cloud serving until `parent` is
        // cancelled.
        self.token.cancel();
    }
}

/// Starts serving the catalog on the given listeners. Every catalog host's certificate is
/// minted before this returns, so a caller that got `Ok` may declare the cloud ready.
pub fn spawn(
    listeners: Listeners,
    config: CloudConfig,
    parent: &CancellationToken,
) -> Result<Running, Error> {
    let https_addr = listeners
        .https
        .local_addr()
        .map_err(|source| Error::LocalAddr {
            listener: "https",
            source,
        })?;
    let http_addr = listeners
        .http
        .local_addr()
        .map_err(|source| Error::LocalAddr {
            listener: "http",
            source,
        })?;
    let certs = Arc::new(CertStore::new(config.catalog, config.pki.clone())?);
    let tls = server_config(certs.clone(), config.key_log.clone())?;
    let journal = Journal::new(
        config.services.journal_capacity,
        config.services.journal_file.as_deref(),
    )?;
    let state = State::new(config.catalog, certs, config.services.clone(), journal);
    let app = App::new(state.clone());
    let token = parent.child_token();
    let tracker = TaskTracker::new();
    let config = Arc::new(config);
    tracker.spawn(accept_loop(
        listeners.https,
        Scheme::Https,
        Some(tls),
        app.clone(),
        config.clone(),
        Tasks::new(&tracker, &token),
    ));
    tracker.spawn(accept_loop(
        listeners.http,
        Scheme::Http,
        None,
        app.clone(),
        config,
        Tasks::new(&tracker, &token),
    ));
    Ok(Running {
        https_addr,
        http_addr,
        state,
        token,
        tracker,
    })
}

/// Where an accept loop starts its connection tasks, and what stops them.
struct Tasks {
    tracker: TaskTracker,
    token: CancellationToken,
}

impl Tasks {
    fn new(tracker: &TaskTracker, token: &CancellationToken) -> Self {
        Self {
            tracker: tracker.clone(),
            token: token.clone(),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    scheme: Scheme,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: App,
    config: Arc<CloudConfig>,
    tasks: Tasks,
) {
    let Tasks { tracker, token } = tasks;
    let permits = Arc::new(Semaphore::new(config.max_connections));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Accept errors (EMFILE and the like) are per-connection; keep serving.
                tracing::warn!(listener = scheme.name(), error = %err, "accept failed");
                continue;
            }
        };
        if app.state().is_blocked(peer.ip()) {
            // A gateway rule blocks this client: hold the connection without a byte, as a
            // dropped route looks to the client (it times out), and let it go at shutdown.
            drop(permit);
            app.state().count_blocked_connection();
            tracing::debug!(listener = scheme.name(), %peer, "holding a connection from a blocked peer");
            let token = token.clone();
            let hold = config.blocked_hold;
            tracker.spawn(async move {
                tokio::select! {
                    () = token.cancelled() => {}
                    () = tokio::time::sleep(hold) => {}
                }
                drop(stream);
            });
            continue;
        }
        let app = app.clone();
        let tls = tls.clone();
        let config = config.clone();
        let token = token.clone();
        tracker.spawn(async move {
            let _permit = permit;
            serve_connection(stream, peer, scheme, tls, app, &config, token).await;
        });
    }
    // The listening socket closes here; the connection tasks are joined by `Running::shutdown`.
    drop(listener);
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    scheme: Scheme,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: App,
    config: &CloudConfig,
    token: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => {
            let info = ConnInfo {
                peer,
                scheme,
                sni: None,
            };
            serve_http(TokioIo::new(stream), info, app, config, token).await;
        }
        Some(tls) => {
            let handshake = async {
                let start =
                    LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
                let sni = start.client_hello().server_name().map(str::to_owned);
                match &sni {
                    None => {
                        tracing::warn!(%peer, "refusing TLS ClientHello without SNI (access_denied alert)")
                    }
                    Some(name) if app.state().certs().certificate_for(name).is_none() => {
                        tracing::warn!(%peer, sni = %name, "refusing TLS ClientHello for a host the lab does not serve (access_denied alert)");
                    }
                    Some(_) => {}
                }
                let stream = start.into_stream(tls).await?;
                Ok::<_, std::io::Error>((stream, sni))
            };
            let (stream, sni) =
                match tokio::time::timeout(config.handshake_timeout, handshake).await {
                    Ok(Ok(pair)) => pair,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let info = ConnInfo { peer, scheme, sni };
            serve_http(TokioIo::new(stream), info, app, config, token).await;
        }
    }
}

async fn serve_http<I>(
    io: I,
    info: ConnInfo,
    app: App,
    config: &CloudConfig,
    token: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let app = app.clone();
        let info = info.clone();
        async move { app.handle(req.map(axum::body::Body::new), info).await }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(64 * 1024);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        }
        () = token.cancelled() => {
            conn.as_mut().graceful_shutdown();
            // Give in-flight exchanges a bounded time to finish.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use mdelab_certs::{Pki, PkiOptions};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpSocket};
    use tokio_util::sync::CancellationToken;

    use super::{CloudConfig, Listeners, spawn};

    const BLOCKED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));

    /// Sends a CRL request from `source` and returns what came back within 300 ms, if anything.
    async fn crl_from(source: IpAddr, http: SocketAddr) -> Option<String> {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let mut stream = socket.connect(http).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: crl.microsoft.com\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 256];
        match tokio::time::timeout(std::time::Duration::from_millis(300), stream.read(&mut buf))
            .await
        {
            Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ => None,
        }
    }

    /// A cloud with a fresh PKI on two ephemeral loopback listeners.
    async fn cloud_on_loopback(token: &CancellationToken) -> super::Running {
        let pki = Pki::generate(&PkiOptions::default()).unwrap();
        let listeners = Listeners {
            https: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            http: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        spawn(listeners, CloudConfig::new(pki), token).unwrap()
    }

    #[tokio::test]
    async fn a_blocked_peer_is_held_unanswered_while_others_are_served() {
        let token = CancellationToken::new();
        let cloud = cloud_on_loopback(&token).await;
        let http = cloud.http_addr();
        let state = cloud.state().clone();
        state.block_peer(BLOCKED);
        assert_eq!(state.blocked_peers(), vec![BLOCKED]);
        assert_eq!(crl_from(BLOCKED, http).await, None, "blocked: no answer");
        assert_eq!(state.blocked_connections(), 1);
        let other = crl_from(IpAddr::V4(Ipv4Addr::LOCALHOST), http).await;
        assert!(
            other.is_some_and(|r| r.starts_with("HTTP/1.1 400")),
            "others are served"
        );
        assert!(state.unblock_peer(BLOCKED));
        assert!(
            crl_from(BLOCKED, http).await.is_some(),
            "served once unblocked"
        );
        assert_eq!(state.blocked_connections(), 1);
        // Held connections do not delay shutdown.
        state.block_peer(BLOCKED);
        assert_eq!(crl_from(BLOCKED, http).await, None);
        tokio::time::timeout(std::time::Duration::from_secs(5), cloud.shutdown())
            .await
            .expect("shutdown is not held up by a blocked connection")
            .unwrap();
    }

    #[tokio::test]
    async fn shutdown_joins_open_connections_and_frees_every_port() {
        let token = CancellationToken::new();
        let cloud = cloud_on_loopback(&token).await;
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = crate::admin::spawn(
            admin_listener,
            cloud.state().clone(),
            crate::admin::AdminConfig {
                token: "t".into(),
                trust_bundle_pem: String::new(),
                inspection_ca_pem: String::new(),
            },
            &token,
        )
        .unwrap();
        let (https, http, admin_addr) = (cloud.https_addr(), cloud.http_addr(), admin.addr());
        // An idle keep-alive connection must not hold shutdown up.
        let _idle = tokio::net::TcpStream::connect(http).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            admin.shutdown().await.unwrap();
            cloud.shutdown().await.unwrap();
        })
        .await
        .expect("shutdown finishes");
        for addr in [https, http, admin_addr] {
            TcpListener::bind(addr)
                .await
                .unwrap_or_else(|e| panic!("{addr} is still bound after shutdown: {e}"));
        }
    }
}
