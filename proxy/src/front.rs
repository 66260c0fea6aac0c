//! The front door both proxies share: an HTTP/1 server that reads proxy requests, enforces the
//! destination policy and authentication, dials the destination, and then either opens a
//! tunnel (`CONNECT`) or forwards an absolute-form request (`GET http://…`).
//!
//! What happens inside an open tunnel is the only difference between the two proxies; it is
//! selected by [`Mode`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt as _;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access_log::{
    AccessLog, MAX_RELAYED_PER_RECORD, Outcome, PendingRecord, RelayedExchange, TlsHandling,
};
use crate::auth::{self, Credentials};
use crate::destinations::{Destinations, Route, normalize_host};
use crate::http::{BoxError, ProxyBody, strip_hop_by_hop, text};
use crate::io::{DialError, Meter, Metered, dial, splice};
use crate::limits::Timeouts;
use crate::tasks::spawn_cancellable;

/// The smallest read buffer hyper accepts.
const MIN_HYPER_BUF: usize = 8192;

/// What a proxy does inside an established tunnel.
pub(crate) enum Mode {
    /// Copy bytes both ways (the plain CONNECT proxy).
    Splice,
    /// Look at the ClientHello and splice or inspect TLS (the intercepting proxy).
    Intercept(Arc<crate::intercept::Inspector>),
}

/// One proxy instance's shared state.
pub(crate) struct Front {
    pub(crate) name: String,
    pub(crate) destinations: Destinations,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) timeouts: Timeouts,
    pub(crate) max_header_bytes: usize,
    /// Most concurrent client connections.
    pub(crate) max_connections: usize,
    pub(crate) log: AccessLog,
    pub(crate) mode: Mode,
    /// Every task of this proxy, so that shutdown can wait for them.
    pub(crate) tracker: TaskTracker,
    /// Cancelled on shutdown.
    pub(crate) token: CancellationToken,
}

/// The client side of a tunnel: the upgraded connection, metered.
pub(crate) type ClientIo = Metered<TokioIo<Upgraded>>;

/// How a tunnel ended, for its access record.
#[derive(Debug)]
pub(crate) struct Ending {
    pub(crate) outcome: Outcome,
    pub(crate) detail: Option<String>,
}

impl Ending {
    pub(crate) fn completed() -> Self {
        Self {
            outcome: Outcome::Completed,
            detail: None,
        }
    }

    pub(crate) fn new(outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            detail: Some(detail.into()),
        }
    }

    /// A splice or relay that ended with an I/O error.
    pub(crate) fn from_io(result: std::io::Result<()>) -> Self {
        match result {
            Ok(()) => Self::completed(),
            Err(e) => Self::new(Outcome::ConnectionError, e.to_string()),
        }
    }
}

/// What a tunnel handler learns along the way, kept outside its future so that the record is
/// complete even when an idle timeout or shutdown drops that future.
pub(crate) struct TunnelCtx {
    /// The CONNECT host, as requested.
    pub(crate) host: String,
    /// The CONNECT port.
    pub(crate) port: u16,
    /// The address actually dialled, for further connections to the same destination.
    pub(crate) addr: SocketAddr,
    /// The dial timeout.
    pub(crate) timeouts: Timeouts,
    /// Cancelled when the tunnel ends or the proxy shuts down.
    pub(crate) token: CancellationToken,
    /// The proxy's task tracker.
    pub(crate) tracker: TaskTracker,
    /// Upgraded streams relayed inside the tunnel, which the record waits for.
    pub(crate) upgrades: TaskTracker,
    tls: Mutex<Option<TlsHandling>>,
    relayed: Mutex<Vec<RelayedExchange>>,
}

impl TunnelCtx {
    pub(crate) fn set_tls(&self, tls: TlsHandling) {
        *self.tls.lock().unwrap_or_else(PoisonError::into_inner) = Some(tls);
    }

    pub(crate) fn push_relayed(&self, exchange: RelayedExchange) {
        let mut relayed = self.relayed.lock().unwrap_or_else(PoisonError::into_inner);
        if relayed.len() < MAX_RELAYED_PER_RECORD {
            relayed.push(exchange);
        }
    }

    fn take(&self) -> (Option<TlsHandling>, Vec<RelayedExchange>) {
        let tls = self
            .tls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let relayed =
            std::mem::take(&mut *self.relayed.lock().unwrap_or_else(PoisonError::into_inner));
        (tls, relayed)
    }
}

/// A parsed proxy request target.
#[derive(Debug)]
struct Target {
    connect: bool,
    /// As requested (brackets kept for IPv6), for `Host`.
    authority: String,
    host: String,
    port: u16,
}

impl Target {
    fn log_name(&self) -> String {
        format!("{}:{}", self.host.to_ascii_lowercase(), self.port)
    }
}

/// Reads the request target; `Err` carries why it is not a proxy request.
fn parse_target(method: &Method, uri: &Uri) -> Result<Target, String> {
    if method == Method::CONNECT {
        let authority = match uri.authority() {
            Some(a) if uri.scheme().is_none() && uri.path_and_query().is_none() => a,
            _ => return Err("CONNECT needs an authority-form target (host:port)".into()),
        };
        let port = authority
            .port_u16()
            .ok_or_else(|| "CONNECT target has no port (expected host:port)".to_owned())?;
        if authority.host().is_empty() {
            return Err("CONNECT target has no host".into());
        }
        return Ok(Target {
            connect: true,
            authority: authority.as_str().to_owned(),
            host: authority.host().to_owned(),
            port,
        });
    }
    match uri.scheme_str() {
        None => Err(
            "origin-form request sent to a proxy: use CONNECT host:port or an absolute http:// URI"
                .into(),
        ),
        Some(scheme) if !scheme.eq_ignore_ascii_case("http") => Err(format!(
            "only http:// absolute URIs are forwarded, not {scheme}://; use CONNECT for TLS"
        )),
        Some(_) => {
            let authority = uri
                .authority()
                .filter(|a| !a.host().is_empty())
                .ok_or_else(|| "absolute URI has no host".to_owned())?;
            Ok(Target {
                connect: false,
                authority: authority.as_str().to_owned(),
                host: authority.host().to_owned(),
                port: authority.port_u16().unwrap_or(80),
            })
        }
    }
}

/// A raw request target for the log, bounded so that a hostile client cannot bloat it.
fn raw_target(uri: &Uri) -> String {
    let mut raw = uri.to_string();
    if raw.len() > 256 {
        let mut cut = 256;
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        raw.truncate(cut);
        raw.push('…');
    }
    raw
}

impl Front {
    /// Serves one client connection until it closes, fails, or the proxy shuts down.
    pub(crate) async fn serve_connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        requests: Arc<AtomicU64>,
    ) {
        let _ = stream.set_nodelay(true);
        let front = self.clone();
        let counted = requests.clone();
        let service = service_fn(move |req| {
            counted.fetch_add(1, Ordering::Relaxed);
            let front = front.clone();
            async move { Ok::<_, Infallible>(front.handle(peer, req).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.timeouts.header_read)
            .max_header_size(self.max_header_bytes)
            // Room for a head somewhat over the cap, so that it is read whole and answered 431
            // on a cleanly closed connection instead of one reset over unread bytes.
            .max_buf_size(self.max_header_bytes.saturating_mul(2).max(MIN_HYPER_BUF));
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let result = tokio::select! {
            result = conn => result,
            () = self.token.cancelled() => return,
        };
        let Err(error) = result else { return };
        let (status, outcome) = if error.is_parse_too_large() {
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.as_u16(),
                Outcome::HeaderTooLarge,
            )
        } else if error.is_parse() {
            (StatusCode::BAD_REQUEST.as_u16(), Outcome::BadRequest)
        } else if error.is_timeout() && requests.load(Ordering::Relaxed) == 0 {
            // After a served request this is just an idle keep-alive connection being closed.
            (0, Outcome::HeaderTimeout)
        } else {
            tracing::debug!(proxy = %self.name, %peer, %error, "client connection ended");
            return;
        };
        let pending = PendingRecord {
            proxy: self.name.clone(),
            client: peer,
            method: String::new(),
            target: String::new(),
            started: Instant::now(),
        };
        self.log
            .record(pending.finish(status, outcome, Some(error.to_string())));
    }

    /// Answers one proxy request.
    async fn handle(
        self: Arc<Self>,
        peer: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let mut pending = PendingRecord {
            proxy: self.name.clone(),
            client: peer,
            method: req.method().to_string(),
            target: raw_target(req.uri()),
            started: Instant::now(),
        };
        let target = match parse_target(req.method(), req.uri()) {
            Ok(target) => target,
            Err(why) => {
                return self.refuse(pending, StatusCode::BAD_REQUEST, Outcome::BadRequest, why);
            }
        };
        pending.target = target.log_name();

        if let Some(credentials) = &self.credentials
            && !credentials.accepts(req.headers())
        {
            let why = if req.headers().contains_key(header::PROXY_AUTHORIZATION) {
                "wrong proxy credentials"
            } else {
                "no proxy credentials"
            };
            let mut response = self.refuse(
                pending,
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                Outcome::AuthRequired,
                why,
            );
            response
                .headers_mut()
                .insert(header::PROXY_AUTHENTICATE, auth::challenge());
            return response;
        }

        let mapped = match self.destinations.route(&target.host, target.port) {
            Route::Mapped(addr) => Some(addr),
            Route::Resolve => None,
            Route::Denied => {
                let why = format!("{} is not an allowed destination", target.log_name());
                return self.refuse(pending, StatusCode::FORBIDDEN, Outcome::Denied, why);
            }
        };

        let host = normalize_host(&target.host);
        let upstream = match dial(mapped, &host, target.port, self.timeouts.connect).await {
            Ok(stream) => stream,
            Err(error) => return self.refuse_dial(pending, &target, &error),
        };

        if target.connect {
            let on_upgrade = hyper::upgrade::on(&mut req);
            let front = self.clone();
            self.tracker
                .spawn(front.run_tunnel(on_upgrade, upstream, host, target.port, pending));
            let mut response = Response::new(crate::http::empty());
            response
                .extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(
                    b"Connection Established",
                ));
            response
        } else {
            self.forward(req, &target, upstream, pending).await
        }
    }

    /// Logs a refusal and builds its answer.
    fn refuse(
        &self,
        pending: PendingRecord,
        status: StatusCode,
        outcome: Outcome,
        why: impl Into<String>,
    ) -> Response<ProxyBody> {
        let why = why.into();
        tracing::debug!(proxy = %self.name, target = %pending.target, %status, %why, "refused");
        self.log
            .record(pending.finish(status.as_u16(), outcome, Some(why.clone())));
        text(status, why)
    }

    fn refuse_dial(
        &self,
        pending: PendingRecord,
        target: &Target,
        error: &DialError,
    ) -> Response<ProxyBody> {
        self.refuse(
            pending,
            error.status(),
            error.outcome(),
            error.describe(&target.log_name()),
        )
    }

    /// Runs an established tunnel and writes its record when it ends.
    async fn run_tunnel(
        self: Arc<Self>,
        on_upgrade: OnUpgrade,
        upstream: TcpStream,
        host: String,
        port: u16,
        pending: PendingRecord,
    ) {
        let status = StatusCode::OK.as_u16();
        let addr = match upstream.peer_addr() {
            Ok(addr) => addr,
            Err(e) => {
                let why = format!("destination connection lost before the tunnel opened: {e}");
                self.log
                    .record(pending.finish(status, Outcome::ConnectionError, Some(why)));
                return;
            }
        };
        let token = self.token.child_token();
        // Whatever ends this task (completion, idle timeout, shutdown) also ends the tasks the
        // tunnel started.
        let _cancel_children = token.clone().drop_guard();
        let ctx = Arc::new(TunnelCtx {
            host,
            port,
            addr,
            timeouts: self.timeouts,
            token: token.clone(),
            tracker: self.tracker.clone(),
            upgrades: TaskTracker::new(),
            tls: Mutex::new(None),
            relayed: Mutex::new(Vec::new()),
        });
        let upgraded = tokio::select! {
            upgraded = on_upgrade => upgraded,
            () = self.token.cancelled() => {
                self.log.record(pending.finish(status, Outcome::Shutdown, None));
                return;
            }
        };
        let upgraded = match upgraded {
            Ok(upgraded) => upgraded,
            Err(e) => {
                let why = format!("client left before the tunnel opened: {e}");
                self.log
                    .record(pending.finish(status, Outcome::ConnectionError, Some(why)));
                return;
            }
        };
        let meter = Meter::new();
        let client = Metered::new(TokioIo::new(upgraded), meter.clone());
        let work = {
            let ctx = ctx.clone();
            let front = self.clone();
            async move {
                match &front.mode {
                    Mode::Splice => {
                        let (mut client, mut upstream) = (client, upstream);
                        Ending::from_io(splice(&mut client, &mut upstream, &[]).await)
                    }
                    Mode::Intercept(inspector) => inspector.handle(client, upstream, &ctx).await,
                }
            }
        };
        let idle = self.timeouts.idle;
        let ending = tokio::select! {
            ending = work => ending,
            () = meter.idle(idle) => Ending::new(
                Outcome::IdleTimeout,
                format!("no bytes either way for {idle:?}"),
            ),
            () = self.token.cancelled() => Ending::new(Outcome::Shutdown, "the proxy shut down"),
        };
        let (tls, relayed) = ctx.take();
        let mut record = pending.finish(status, ending.outcome, ending.detail);
        record.bytes_up = meter.up();
        record.bytes_down = meter.down();
        record.tls = tls;
        record.relayed = relayed;
        self.log.record(record);
    }

    /// Forwards an absolute-form request over a fresh HTTP/1.1 connection, streaming both
    /// bodies; the record is written when the response body is done.
    async fn forward(
        &self,
        req: Request<Incoming>,
        target: &Target,
        upstream: TcpStream,
        pending: PendingRecord,
    ) -> Response<ProxyBody> {
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await {
                Ok(pair) => pair,
                Err(e) => {
                    let why = format!("failed to start HTTP/1.1 with {}: {e}", target.log_name());
                    return self.refuse(
                        pending,
                        StatusCode::BAD_GATEWAY,
                        Outcome::UpstreamFailed,
                        why,
                    );
                }
            };
        spawn_cancellable(&self.tracker, &self.token, conn);

        let exchange = Arc::new(Exchange::default());
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers, false);
        // RFC 9112 §3.2.2: a proxy replaces Host with the absolute-form target's authority.
        match HeaderValue::from_str(&target.authority) {
            Ok(host) => {
                parts.headers.insert(header::HOST, host);
            }
            Err(_) => {
                let why = "absolute URI authority is not a valid Host value";
                return self.refuse(pending, StatusCode::BAD_REQUEST, Outcome::BadRequest, why);
            }
        }
        let origin_form = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .parse::<Uri>();
        parts.uri = match origin_form {
            Ok(uri) => uri,
            Err(e) => {
                let why = format!("bad request path: {e}");
                return self.refuse(pending, StatusCode::BAD_REQUEST, Outcome::BadRequest, why);
            }
        };
        let client_version = parts.version;
        parts.version = Version::HTTP_11;
        let up = exchange.clone();
        let body = body
            .map_frame(move |frame| {
                if let Some(data) = frame.data_ref() {
                    up.up.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                frame
            })
            .map_err(BoxError::from)
            .boxed_unsync();

        let response = match sender.send_request(Request::from_parts(parts, body)).await {
            Ok(response) => response,
            Err(e) => {
                let why = format!("{} failed the forwarded request: {e}", target.log_name());
                let mut record = pending.finish(
                    StatusCode::BAD_GATEWAY.as_u16(),
                    Outcome::UpstreamFailed,
                    Some(why.clone()),
                );
                record.bytes_up = exchange.up.load(Ordering::Relaxed);
                self.log.record(record);
                return text(StatusCode::BAD_GATEWAY, why);
            }
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers, false);
        parts.version = client_version;
        let guard = RecordOnDrop {
            log: self.log.clone(),
            pending: Some(pending),
            status: parts.status.as_u16(),
            exchange: exchange.clone(),
        };
        let failed = exchange;
        let body = body
            .map_frame(move |frame: Frame<Bytes>| {
                guard.count_down(&frame);
                frame
            })
            .map_err(move |e| {
                failed.fail(format!("response body from the destination broke: {e}"));
                BoxError::from(e)
            })
            .boxed_unsync();
        Response::from_parts(parts, body)
    }
}

/// Byte counts and failure of one forwarded exchange.
#[derive(Default)]
struct Exchange {
    up: AtomicU64,
    down: AtomicU64,
    failed: AtomicBool,
    detail: Mutex<Option<String>>,
}

impl Exchange {
    fn fail(&self, detail: String) {
        self.failed.store(true, Ordering::Relaxed);
        *self.detail.lock().unwrap_or_else(PoisonError::into_inner) = Some(detail);
    }
}

/// Writes a forwarded exchange's record when hyper drops the response body, which is when the
/// body was fully sent or the client went away.
struct RecordOnDrop {
    log: AccessLog,
    pending: Option<PendingRecord>,
    status: u16,
    exchange: Arc<Exchange>,
}

impl RecordOnDrop {
    fn count_down(&self, frame: &Frame<Bytes>) {
        if let Some(data) = frame.data_ref() {
            self.exchange
                .down
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
}

impl Drop for RecordOnDrop {
    fn drop(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let (outcome, detail) = if self.exchange.failed.load(Ordering::Relaxed) {
            let detail = self
                .exchange
                .detail
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            (Outcome::UpstreamFailed, detail)
        } else {
            (Outcome::Completed, None)
        };
        let mut record = pending.finish(self.status, outcome, detail);
        record.bytes_up = self.exchange.up.load(Ordering::Relaxed);
        record.bytes_down = self.exchange.down.load(Ordering::Relaxed);
        self.log.record(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, uri: &str) -> Result<Target, String> {
        parse_target(&method, &uri.parse::<Uri>().unwrap())
    }

    #[test]
    fn request_targets_are_classified() {
        let t = parse(Method::CONNECT, "Example.com:443").unwrap();
        assert!(t.connect);
        assert_eq!(
            (t.host.as_str(), t.port, t.log_name()),
            ("Example.com", 443, "example.com:443".into())
        );
        let t = parse(Method::CONNECT, "[::1]:8443").unwrap();
        assert_eq!(t.log_name(), "[::1]:8443");
        assert!(
            parse(Method::CONNECT, "nonsense")
                .unwrap_err()
                .contains("no port")
        );
        assert!(parse(Method::CONNECT, "http://a/b").is_err());

        let t = parse(Method::GET, "http://crl.microsoft.com/pki/x.crl").unwrap();
        assert!(!t.connect);
        assert_eq!((t.authority.as_str(), t.port), ("crl.microsoft.com", 80));
        let t = parse(Method::GET, "http://a.example:8080/").unwrap();
        assert_eq!((t.authority.as_str(), t.port), ("a.example:8080", 8080));
        assert!(
            parse(Method::GET, "/x")
                .unwrap_err()
                .contains("origin-form")
        );
        assert!(
            parse(Method::GET, "https://a.example/")
                .unwrap_err()
                .contains("https")
        );
    }

    #[test]
    fn raw_targets_are_bounded() {
        let long: Uri = format!("http://a.example/{}", "é".repeat(300))
            .parse()
            .unwrap_or_else(|_| {
                format!("http://a.example/{}", "x".repeat(600))
                    .parse()
                    .unwrap()
            });
        assert!(raw_target(&long).len() <= 260);
    }
}
