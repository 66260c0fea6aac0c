//! The listeners: one HTTPS listener for every catalog host (certificate by SNI) and one plain
//! HTTP listener for the port-80 hosts. The caller binds; this module serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use mdelab_certs::Pki;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ConnectionLimits, ServiceConfig};
use crate::conn::{Admission, Conn, Registry};
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
    /// How the services behave (capacities, holds, timeouts, seed; connection limits in
    /// `services.connections`).
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
    /// The open connections of both listeners, cut at the shutdown deadline.
    registries: [Arc<Registry>; 2],
    /// How long shutdown waits for open exchanges.
    shutdown_deadline: Duration,
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

    /// Stops accepting, lets open connections finish their current exchange for up to the
    /// shutdown deadline (`ConnectionLimits::shutdown_deadline`, 5 s by default), then cuts
    /// every connection left, and waits until every connection task has ended and both
    /// listening sockets are closed.
    ///
    /// A journal file that cannot be flushed within 5 s is logged, not an error; the `Result`
    /// keeps the shape every lab server shares (`dns`, the admin API).
    pub async fn shutdown(self) -> Result<(), Error> {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.shutdown_deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                deadline_ms = self.shutdown_deadline.as_millis(),
                "connections still open at the shutdown deadline; cutting them"
            );
            for registry in &self.registries {
                registry.cut_all();
            }
            self.tracker.wait().await;
        }
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
    let shutdown_deadline = config.services.connections.shutdown_deadline;
    let config = Arc::new(config);
    let registries = [Arc::new(Registry::default()), Arc::new(Registry::default())];
    tracker.spawn(accept_loop(
        listeners.https,
        Scheme::Https,
        Some(tls),
        app.clone(),
        config.clone(),
        Tasks::new(&tracker, &token, &registries[0]),
    ));
    tracker.spawn(accept_loop(
        listeners.http,
        Scheme::Http,
        None,
        app.clone(),
        config,
        Tasks::new(&tracker, &token, &registries[1]),
    ));
    Ok(Running {
        https_addr,
        http_addr,
        state,
        token,
        tracker,
        registries,
        shutdown_deadline,
    })
}

/// Where an accept loop starts its connection tasks, and what stops them.
struct Tasks {
    tracker: TaskTracker,
    token: CancellationToken,
    registry: Arc<Registry>,
}

impl Tasks {
    fn new(tracker: &TaskTracker, token: &CancellationToken, registry: &Arc<Registry>) -> Self {
        Self {
            tracker: tracker.clone(),
            token: token.clone(),
            registry: registry.clone(),
        }
    }
}

/// Exponential back-off after accept errors (EMFILE and the like): 1 ms doubling to 1 s.
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Self(Duration::from_millis(1))
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(1));
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Duration::from_millis(1);
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
    let Tasks {
        tracker,
        token,
        registry,
    } = tasks;
    let limits = &config.services.connections;
    let mut backoff = Backoff::new();
    let held = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff.reset();
                pair
            }
            Err(err) => {
                // Accept errors (EMFILE and the like) are per-connection; keep serving, after
                // a growing pause so a persistent error does not spin.
                tracing::warn!(listener = scheme.name(), error = %err, "accept failed");
                tokio::select! {
                    () = token.cancelled() => break,
                    () = backoff.wait() => {}
                }
                continue;
            }
        };
        if app.state().is_blocked(peer.ip()) {
            // A gateway rule blocks this client: hold the connection without a byte, as a
            // dropped route looks to the client (it times out), and let it go at shutdown.
            // Held connections are capped like served ones (a blocked flood must not exhaust
            // file descriptors): beyond the cap they are closed at once.
            app.state().count_blocked_connection();
            if held.load(Ordering::Relaxed) >= limits.max_connections {
                drop(stream);
                continue;
            }
            tracing::debug!(listener = scheme.name(), %peer, "holding a connection from a blocked peer");
            let token = token.clone();
            let hold = config.blocked_hold;
            let held = held.clone();
            held.fetch_add(1, Ordering::Relaxed);
            tracker.spawn(async move {
                tokio::select! {
                    () = token.cancelled() => {}
                    () = tokio::time::sleep(hold) => {}
                }
                drop(stream);
                held.fetch_sub(1, Ordering::Relaxed);
            });
            continue;
        }
        let guard = match registry.admit(limits.max_connections) {
            Admission::Admitted(guard) => guard,
            Admission::AdmittedShedding(guard) => {
                app.state().count_shed_connection();
                tracing::debug!(listener = scheme.name(), %peer, "at the connection cap: shed the oldest idle connection");
                guard
            }
            Admission::Full => {
                app.state().count_shed_connection();
                tracing::warn!(listener = scheme.name(), %peer, "at the connection cap with every connection busy: closing the newcomer");
                drop(stream);
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        let config = config.clone();
        let token = token.clone();
        tracker.spawn(async move {
            let conn = guard.conn.clone();
            let cut = conn.cut().clone();
            tokio::select! {
                () = serve_connection(stream, peer, scheme, tls, app, conn, &config, token) => {}
                () = cut.cancelled() => {}
            }
            drop(guard);
        });
    }
    // The listening socket closes here; the connection tasks are joined by `Running::shutdown`.
    drop(listener);
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    scheme: Scheme,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: App,
    conn: Arc<Conn>,
    config: &CloudConfig,
    token: CancellationToken,
) {
    let limits = &config.services.connections;
    let _ = stream.set_nodelay(true);
    match tls {
        None => {
            let info = ConnInfo {
                peer,
                scheme,
                sni: None,
            };
            serve_http(TokioIo::new(stream), info, app, conn, limits, token).await;
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
                match tokio::time::timeout(limits.handshake_timeout, handshake).await {
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
            serve_http(TokioIo::new(stream), info, app, conn, limits, token).await;
        }
    }
}

async fn serve_http<I>(
    io: I,
    info: ConnInfo,
    app: App,
    conn: Arc<Conn>,
    limits: &ConnectionLimits,
    token: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let handler = move |req: axum::extract::Request| {
        let app = app.clone();
        let info = info.clone();
        async move { app.handle(req, info).await }
    };
    crate::conn::serve(io, conn, limits, token, handler).await;
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::Duration;

    use crate::ConnectionLimits;

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
        cloud_with(token, ConnectionLimits::default()).await
    }

    /// A cloud with these connection limits.
    async fn cloud_with(token: &CancellationToken, limits: ConnectionLimits) -> super::Running {
        let pki = Pki::generate(&PkiOptions::default()).unwrap();
        let listeners = Listeners {
            https: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            http: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let mut config = CloudConfig::new(pki);
        config.services.connections = limits;
        spawn(listeners, config, token).unwrap()
    }

    /// The admin API (token `t`) over `state`, on an ephemeral loopback port.
    async fn admin_for(
        state: &crate::State,
        token: &CancellationToken,
    ) -> crate::admin::AdminRunning {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        crate::admin::spawn(
            listener,
            state.clone(),
            crate::admin::AdminConfig {
                token: "t".into(),
                trust_bundle_pem: String::new(),
                inspection_ca_pem: String::new(),
            },
            token,
        )
        .unwrap()
    }

    /// Reads until the peer closes (`true`) or `limit` passes (`false`).
    async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn at_the_cap_silent_connections_are_shed_for_a_real_client() {
        let token = CancellationToken::new();
        let limits = ConnectionLimits {
            max_connections: 4,
            request_head_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        };
        let cloud = cloud_with(&token, limits).await;
        let http = cloud.http_addr();
        let mut silent = Vec::new();
        for _ in 0..10 {
            silent.push(tokio::net::TcpStream::connect(http).await.unwrap());
        }
        let answer = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if let Some(answer) = crl_from(IpAddr::V4(Ipv4Addr::LOCALHOST), http).await {
                    return answer;
                }
            }
        })
        .await
        .expect("a real client is served while silent connections fill the cap");
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
        assert!(
            cloud.state().shed_connections() >= 6,
            "{}",
            cloud.state().shed_connections()
        );
        tokio::time::timeout(Duration::from_secs(3), cloud.shutdown())
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn connections_held_for_a_blocked_peer_are_capped_too() {
        let token = CancellationToken::new();
        let limits = ConnectionLimits {
            max_connections: 2,
            ..ConnectionLimits::default()
        };
        let cloud = cloud_with(&token, limits).await;
        cloud.state().block_peer(BLOCKED);
        let mut held = Vec::new();
        for _ in 0..3 {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(BLOCKED, 0)).unwrap();
            held.push(socket.connect(cloud.http_addr()).await.unwrap());
        }
        // Accepted in order: the third is beyond the cap and closed at once.
        assert!(closed_within(&mut held[2], Duration::from_secs(2)).await);
        assert!(!closed_within(&mut held[0], Duration::from_millis(200)).await);
        assert_eq!(cloud.state().blocked_connections(), 3);
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_request_head_timeout() {
        let token = CancellationToken::new();
        let limits = ConnectionLimits {
            request_head_timeout: Duration::from_millis(300),
            handshake_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        };
        let cloud = cloud_with(&token, limits).await;
        let mut silent = tokio::net::TcpStream::connect(cloud.http_addr())
            .await
            .unwrap();
        assert!(closed_within(&mut silent, Duration::from_secs(2)).await);
        let mut tls = tokio::net::TcpStream::connect(cloud.https_addr())
            .await
            .unwrap();
        assert!(closed_within(&mut tls, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn a_slow_body_is_cut_after_the_body_idle_timeout() {
        let token = CancellationToken::new();
        let limits = ConnectionLimits {
            body_idle_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        };
        let cloud = cloud_with(&token, limits).await;
        // The admin API reads a fault rule's body in full (the probe answers never read one).
        let admin = admin_for(cloud.state(), &token).await;
        let mut slow = tokio::net::TcpStream::connect(admin.addr()).await.unwrap();
        slow.write_all(
            b"POST /_lab/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        assert!(
            closed_within(&mut slow, Duration::from_secs(2)).await,
            "the slow body is cut"
        );
    }

    #[tokio::test]
    async fn shutdown_is_not_held_by_a_half_sent_admin_head() {
        let token = CancellationToken::new();
        let limits = ConnectionLimits {
            shutdown_deadline: Duration::from_millis(500),
            ..ConnectionLimits::default()
        };
        let cloud = cloud_with(&token, limits).await;
        let admin = admin_for(cloud.state(), &token).await;
        let mut half = tokio::net::TcpStream::connect(admin.addr()).await.unwrap();
        half.write_all(b"GET /_lab/health HTTP/1.1\r\nHost: 127")
            .await
            .unwrap();
        let mut half_cloud = tokio::net::TcpStream::connect(cloud.http_addr())
            .await
            .unwrap();
        half_cloud
            .write_all(b"GET / HTTP/1.1\r\nHost: crl")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(3), async {
            admin.shutdown().await.unwrap();
            cloud.shutdown().await.unwrap();
        })
        .await
        .expect("shutdown finishes despite half-sent heads");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
    }

    /// Sends one admin request with this `Host` and returns the status line.
    async fn admin_status(addr: SocketAddr, host: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!("GET /_lab/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn the_admin_api_answers_only_loopback_hosts() {
        let token = CancellationToken::new();
        let cloud = cloud_on_loopback(&token).await;
        let admin = admin_for(cloud.state(), &token).await;
        let addr = admin.addr();
        for good in [
            format!("127.0.0.1:{}", addr.port()),
            "localhost".into(),
            "[::1]:1".into(),
            "127.0.0.1".into(),
        ] {
            assert!(admin_status(addr, &good).await.contains(" 200 "), "{good}");
        }
        for bad in ["evil.example", "evil.example:80", "127.0.0.1.evil.example"] {
            assert!(admin_status(addr, bad).await.contains(" 421 "), "{bad}");
        }
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
