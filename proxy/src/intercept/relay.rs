//! The HTTP relay of an inspected tunnel: the client's requests, decrypted, are sent over the
//! proxy's own TLS connection to the destination, and the responses streamed back.
//!
//! Bodies are streamed both ways, never buffered whole, so multi-megabyte uploads and long
//! polls held open by the server for minutes pass; `Upgrade` requests are passed through and
//! both upgraded streams copied into each other.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client, server};

use super::H2;
use crate::access_log::{Outcome, RelayedExchange};
use crate::front::{ClientIo, Ending, TunnelCtx};
use crate::http::{BoxError, ProxyBody, strip_hop_by_hop, text, version_name, wants_upgrade};
use crate::tasks::{TrackedExecutor, spawn_cancellable};

/// The proxy's side towards the destination, as the inspection set it up.
pub(crate) enum Upstream {
    /// TLS with the destination is up.
    Connected {
        /// The server name verified (SNI), for further connections.
        name: ServerName<'static>,
        /// The configuration for further connections (ALPN fixed to the negotiated protocol).
        tls: Arc<ClientConfig>,
        /// The connection made during the inspection.
        first: Box<client::TlsStream<TcpStream>>,
    },
    /// TLS with the destination failed; every request is answered 502 with this text.
    Failed(String),
}

/// Serves the decrypted client connection until it ends.
pub(crate) async fn serve(
    client: server::TlsStream<ClientIo>,
    upstream: Upstream,
    ctx: Arc<TunnelCtx>,
) -> Ending {
    let exec = TrackedExecutor {
        tracker: ctx.tracker.clone(),
        token: ctx.token.clone(),
    };
    let relay = Arc::new(Relay::new(upstream, ctx.clone(), exec.clone()).await);
    let service = {
        let relay = relay.clone();
        service_fn(move |req| {
            let relay = relay.clone();
            async move { Ok::<_, Infallible>(relay.handle(req).await) }
        })
    };
    let builder = auto::Builder::new(exec);
    let result = builder
        .serve_connection_with_upgrades(TokioIo::new(client), service)
        .await;
    // Dropping the relay drops its idle destination connections.
    drop(relay);
    // Upgraded streams outlive the HTTP connection; the record waits for their bytes.
    ctx.upgrades.close();
    ctx.upgrades.wait().await;
    match result {
        Ok(()) => Ending::completed(),
        Err(e) if ended_by_peer(e.as_ref()) => Ending::completed(),
        Err(e) => Ending::new(Outcome::ConnectionError, e.to_string()),
    }
}

/// Whether an error is just the client going away (EOF, reset, no TLS close_notify).
fn ended_by_peer(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_canceled())
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// How to open further connections to the destination.
struct Redial {
    name: ServerName<'static>,
    tls: Arc<ClientConfig>,
}

/// A hyper client connection to the destination.
enum Sender {
    H1(http1::SendRequest<ProxyBody>),
    H2(http2::SendRequest<ProxyBody>),
}

type ResponseFuture = Pin<Box<dyn Future<Output = hyper::Result<Response<Incoming>>> + Send>>;

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Self::H1(s) => s.is_closed(),
            Self::H2(s) => s.is_closed(),
        }
    }

    async fn ready(&mut self) -> hyper::Result<()> {
        match self {
            Self::H1(s) => s.ready().await,
            Self::H2(s) => s.ready().await,
        }
    }

    fn send(&mut self, req: Request<ProxyBody>) -> ResponseFuture {
        match self {
            Self::H1(s) => Box::pin(s.send_request(req)),
            Self::H2(s) => Box::pin(s.send_request(req)),
        }
    }
}

struct Relay {
    ctx: Arc<TunnelCtx>,
    exec: TrackedExecutor,
    redial: Result<Redial, String>,
    /// An idle HTTP/1.1 connection, or the shared HTTP/2 connection.
    slot: Mutex<Option<Sender>>,
    /// `Host` for requests that carry none (the CONNECT authority).
    authority: String,
}

impl Relay {
    async fn new(upstream: Upstream, ctx: Arc<TunnelCtx>, exec: TrackedExecutor) -> Self {
        let authority = if ctx.port == 443 {
            ctx.host.clone()
        } else {
            format!("{}:{}", ctx.host, ctx.port)
        };
        let mut relay = Self {
            ctx,
            exec,
            redial: Err(String::new()),
            slot: Mutex::new(None),
            authority,
        };
        match upstream {
            Upstream::Connected { name, tls, first } => {
                relay.redial = Ok(Redial { name, tls });
                match relay.handshake(*first).await {
                    Ok(sender) => relay.release(sender),
                    // The next request dials afresh.
                    Err(why) => tracing::debug!(%why, "first destination connection unusable"),
                }
            }
            Upstream::Failed(why) => relay.redial = Err(why),
        }
        relay
    }

    /// Relays one request and notes the exchange for the access record.
    async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let method = req.method().to_string();
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string);
        let version = version_name(req.version());
        let (response, error) = match self.forward(req).await {
            Ok(response) => (response, None),
            Err(why) => (text(StatusCode::BAD_GATEWAY, why.clone()), Some(why)),
        };
        self.ctx.push_relayed(RelayedExchange {
            method,
            path,
            version,
            status: response.status().as_u16(),
            error,
        });
        response
    }

    async fn forward(&self, mut req: Request<Incoming>) -> Result<Response<ProxyBody>, String> {
        let redial = self.redial.as_ref().map_err(Clone::clone)?;
        let client_version = req.version();
        let upgrade = client_version <= Version::HTTP_11 && wants_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let mut sender = self.acquire(redial).await?;
        let req = self.prepare(req, matches!(sender, Sender::H2(_)), upgrade)?;
        let pending = sender.send(req);
        // An HTTP/1.1 connection is free again once this response is done; the next request
        // waits for that in `acquire`.
        self.release(sender);
        let mut response = pending
            .await
            .map_err(|e| format!("the destination failed the request: {e}"))?;
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching && let Some(client_upgrade) = client_upgrade {
            self.pump(client_upgrade, hyper::upgrade::on(&mut response));
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers, switching);
        parts.version = client_version;
        Ok(Response::from_parts(
            parts,
            body.map_err(BoxError::from).boxed_unsync(),
        ))
    }

    /// Rewrites a client request for the destination connection's protocol.
    fn prepare(
        &self,
        req: Request<Incoming>,
        h2: bool,
        upgrade: bool,
    ) -> Result<Request<ProxyBody>, String> {
        let (mut parts, body) = req.into_parts();
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| self.authority.clone());
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        strip_hop_by_hop(&mut parts.headers, upgrade);
        if h2 {
            parts.uri = Uri::builder()
                .scheme("https")
                .authority(authority)
                .path_and_query(path)
                .build()
                .map_err(|e| format!("cannot build the HTTP/2 request URI: {e}"))?;
            parts.version = Version::HTTP_2;
            // HTTP/2 carries the authority in `:authority`.
            parts.headers.remove(header::HOST);
        } else {
            parts.uri = path
                .parse()
                .map_err(|e| format!("bad request path {path:?}: {e}"))?;
            parts.version = Version::HTTP_11;
            if !parts.headers.contains_key(header::HOST) {
                let host = HeaderValue::from_str(&authority)
                    .map_err(|e| format!("bad authority {authority:?}: {e}"))?;
                parts.headers.insert(header::HOST, host);
            }
        }
        Ok(Request::from_parts(
            parts,
            body.map_err(BoxError::from).boxed_unsync(),
        ))
    }

    /// A connection ready for a request: the idle one if it still works, else a new one.
    async fn acquire(&self, redial: &Redial) -> Result<Sender, String> {
        if let Some(mut sender) = self.take_idle()
            && sender.ready().await.is_ok()
        {
            return Ok(sender);
        }
        let sender = self.dial(redial).await?;
        if let Sender::H2(shared) = &sender {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            *slot = Some(Sender::H2(shared.clone()));
        }
        Ok(sender)
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.take() {
            Some(Sender::H2(shared)) if !shared.is_closed() => {
                let mine = shared.clone();
                *slot = Some(Sender::H2(shared));
                Some(Sender::H2(mine))
            }
            Some(Sender::H1(idle)) if !idle.is_closed() => Some(Sender::H1(idle)),
            _ => None,
        }
    }

    fn release(&self, sender: Sender) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() && !sender.is_closed() {
            *slot = Some(sender);
        }
    }

    async fn dial(&self, redial: &Redial) -> Result<Sender, String> {
        let ctx = &self.ctx;
        let target = format!("{}:{}", ctx.host, ctx.port);
        let limit = ctx.timeouts.connect;
        let tcp = crate::io::dial(Some(ctx.addr), &ctx.host, ctx.port, limit)
            .await
            .map_err(|e| e.describe(&target))?;
        let tls = tokio::time::timeout(
            limit,
            TlsConnector::from(redial.tls.clone()).connect(redial.name.clone(), tcp),
        )
        .await
        .map_err(|_| format!("TLS handshake with {target} took longer than {limit:?}"))?
        .map_err(|e| format!("TLS handshake with {target} failed: {e}"))?;
        self.handshake(tls).await
    }

    /// Starts HTTP on a TLS connection to the destination, by its ALPN protocol.
    async fn handshake(&self, stream: client::TlsStream<TcpStream>) -> Result<Sender, String> {
        let h2 = stream.get_ref().1.alpn_protocol() == Some(H2);
        let io = TokioIo::new(stream);
        if h2 {
            let (sender, conn) = http2::handshake(self.exec.clone(), io)
                .await
                .map_err(|e| format!("HTTP/2 handshake with the destination failed: {e}"))?;
            spawn_cancellable(&self.ctx.tracker, &self.ctx.token, conn);
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io)
                .await
                .map_err(|e| format!("HTTP/1.1 handshake with the destination failed: {e}"))?;
            spawn_cancellable(&self.ctx.tracker, &self.ctx.token, conn.with_upgrades());
            Ok(Sender::H1(sender))
        }
    }

    /// Copies the two upgraded streams into each other once both upgrades complete.
    fn pump(&self, client: OnUpgrade, server: OnUpgrade) {
        let counted = self.ctx.upgrades.token();
        spawn_cancellable(&self.ctx.tracker, &self.ctx.token, async move {
            let _counted = counted;
            let (client, server) = tokio::join!(client, server);
            match (client, server) {
                (Ok(client), Ok(server)) => {
                    let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
                    if let Err(error) =
                        tokio::io::copy_bidirectional(&mut client, &mut server).await
                    {
                        tracing::debug!(%error, "upgraded stream ended with an error");
                    }
                }
                (client, server) => {
                    tracing::debug!(
                        client_ok = client.is_ok(),
                        server_ok = server.is_ok(),
                        "upgrade did not complete on both sides"
                    );
                }
            }
        });
    }
}
