//! The admin API: the lab's control plane for tools and tests, on its own loopback listener
//! (never on the mock MDE hosts).
//!
//! `GET /_lab/ready`, `GET /_lab/health` and `GET /_lab/openapi.yaml` are open (they reveal
//! nothing); everything else needs `Authorization: Bearer <token>` with the random token the
//! lab writes into its manifest. The routes are listed in `admin-openapi.yaml` and PROTOCOL.md.

use std::net::SocketAddr;

use axum::extract::{Path, Query, Request, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::faults::FaultRule;
use crate::journal::JournalFilter;
use crate::{Error, State};

/// The OpenAPI description of this API.
pub const OPENAPI: &str = include_str!("../admin-openapi.yaml");

/// What the admin API needs besides the cloud's state.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// Bearer token every protected route demands.
    pub token: String,
    /// PEM of the roots a lab device trusts.
    pub trust_bundle_pem: String,
    /// PEM of the inspection CA.
    pub inspection_ca_pem: String,
}

/// The admin router's state.
#[derive(Clone)]
pub(crate) struct Admin {
    pub(crate) state: State,
    config: AdminConfig,
}

/// A JSON error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

/// The admin router.
pub fn router(state: State, config: AdminConfig) -> Router {
    let admin = Admin { state, config };
    let protected = Router::new()
        .route("/_lab/journal", get(journal_list).delete(journal_clear))
        .route("/_lab/journal/count", get(journal_count))
        .route("/_lab/journal/stats", get(journal_stats))
        .route(
            "/_lab/faults",
            get(faults_list).post(faults_add).delete(faults_clear),
        )
        .route("/_lab/faults/{id}", delete(faults_remove))
        .route("/_lab/pki/roots", get(pki_roots))
        .route("/_lab/pki/inspection-ca", get(pki_inspection_ca))
        .merge(crate::admin_stores::routes())
        .route_layer(middleware::from_fn_with_state(admin.clone(), require_token));
    Router::new()
        .route("/_lab/ready", get(ready))
        .route(
            "/_lab/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/_lab/openapi.yaml",
            get(|| async { ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI) }),
        )
        .merge(protected)
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such admin route; see /_lab/openapi.yaml",
            )
        })
        .with_state(admin)
}

async fn require_token(
    AxumState(admin): AxumState<Admin>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented.is_some_and(|t| constant_time_eq(t.as_bytes(), admin.config.token.as_bytes())) {
        next.run(req).await
    } else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <admin_token from the manifest>",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    }
}

/// Refuses requests whose `Host` is not a loopback name (`localhost`, `127.0.0.1`, `[::1]`)
/// or the bound address (any address literal when bound to every address), with or without
/// port: a browser page on another name that rebinds
/// its DNS to loopback must not reach the admin API.
async fn check_host(bound: SocketAddr, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if host_allowed(&host, bound) => next.run(req).await,
        other => error(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_host",
            format!(
                "the admin API answers only Host: localhost, 127.0.0.1, [::1] or {bound} (with or without port); got {}",
                other.as_deref().unwrap_or("no Host")
            ),
        ),
    }
}

fn host_allowed(host: &str, bound: SocketAddr) -> bool {
    let host = host.to_ascii_lowercase();
    let bound_ip = match bound.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let name = match host.rsplit_once(':') {
        // `[::1]` alone has colons inside the brackets: only split off a port after `]`.
        Some((name, port))
            if port.bytes().all(|b| b.is_ascii_digit())
                && !port.is_empty()
                && (!name.contains(':') || name.ends_with(']')) =>
        {
            name
        }
        _ => host.as_str(),
    };
    let ip_literal = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok();
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
        || name == bound_ip
        // Bound to every address (`--allow-remote` on 0.0.0.0): any address literal names this
        // listener; a rebinding page always sends a name, never a literal.
        || (bound.ip().is_unspecified() && ip_literal)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn ready(AxumState(admin): AxumState<Admin>) -> Response {
    let ready = admin.state.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(serde_json::json!({"ready": ready}))).into_response()
}

async fn journal_list(
    AxumState(admin): AxumState<Admin>,
    Query(filter): Query<JournalFilter>,
) -> Response {
    Json(admin.state.journal().entries(&filter)).into_response()
}

async fn journal_count(
    AxumState(admin): AxumState<Admin>,
    Query(filter): Query<JournalFilter>,
) -> Response {
    Json(serde_json::json!({"count": admin.state.journal().count(&filter)})).into_response()
}

async fn journal_stats(AxumState(admin): AxumState<Admin>) -> Response {
    Json(admin.state.journal().stats()).into_response()
}

async fn journal_clear(AxumState(admin): AxumState<Admin>) -> StatusCode {
    admin.state.journal().clear();
    StatusCode::NO_CONTENT
}

async fn faults_list(AxumState(admin): AxumState<Admin>) -> Response {
    Json(admin.state.faults().list()).into_response()
}

/// Body of `POST /_lab/faults`: one rule, or a list of rules.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<serde_json::Value>),
    One(serde_json::Value),
}

async fn faults_add(AxumState(admin): AxumState<Admin>, body: axum::body::Bytes) -> Response {
    let parsed: OneOrMany = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_json", e.to_string()),
    };
    let values = match parsed {
        OneOrMany::Many(values) => values,
        OneOrMany::One(value) => vec![value],
    };
    let mut rules = Vec::new();
    for value in values {
        match FaultRule::parse_json(value) {
            Ok(rule) => rules.push(rule),
            Err(e) => return error(StatusCode::BAD_REQUEST, "bad_fault", e.to_string()),
        }
    }
    let mut ids = Vec::new();
    for rule in rules {
        match admin.state.faults().add(rule) {
            Ok(id) => ids.push(id),
            Err(e) => return error(StatusCode::BAD_REQUEST, "bad_fault", e.to_string()),
        }
    }
    (StatusCode::CREATED, Json(serde_json::json!({"ids": ids}))).into_response()
}

async fn faults_remove(AxumState(admin): AxumState<Admin>, Path(id): Path<u64>) -> Response {
    if admin.state.faults().remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no fault rule {id}"),
        )
    }
}

async fn faults_clear(AxumState(admin): AxumState<Admin>) -> StatusCode {
    admin.state.faults().clear();
    StatusCode::NO_CONTENT
}

async fn pki_roots(AxumState(admin): AxumState<Admin>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        admin.config.trust_bundle_pem.clone(),
    )
        .into_response()
}

async fn pki_inspection_ca(AxumState(admin): AxumState<Admin>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        admin.config.inspection_ca_pem.clone(),
    )
        .into_response()
}

/// The running admin API; [`shutdown`](Self::shutdown) stops it and frees its port.
///
/// Dropping it without `shutdown` also stops it, but without waiting for the socket to close.
#[derive(Debug)]
pub struct AdminRunning {
    addr: SocketAddr,
    token: CancellationToken,
    /// The accept loop and every connection task.
    tracker: TaskTracker,
    /// The open connections, cut at the shutdown deadline.
    registry: std::sync::Arc<crate::conn::Registry>,
    /// How long shutdown waits for open exchanges.
    shutdown_deadline: std::time::Duration,
}

impl AdminRunning {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open requests finish for up to the shutdown deadline, then cuts
    /// every connection left, and waits until the listening socket is closed; the port is
    /// free afterwards. A serving error was logged when it happened; the
    /// `Result` keeps the shape every lab server shares.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.shutdown_deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("admin connections still open at the shutdown deadline; cutting them");
            self.registry.cut_all();
            self.tracker.wait().await;
        }
        Ok(())
    }
}

impl Drop for AdminRunning {
    fn drop(&mut self) {
        // Without this, forgetting `shutdown` would leave the admin API serving until
        // `parent` is cancelled.
        self.token.cancel();
    }
}

/// Serves the admin API on a listener the caller bound, until [`AdminRunning::shutdown`], its
/// drop, or the cancellation of `parent`. Connections obey the cloud's
/// [`ConnectionLimits`](crate::ConnectionLimits) (`state.config().connections`); requests whose
/// `Host` is not a loopback name or the bound address are refused (DNS rebinding).
pub fn spawn(
    listener: TcpListener,
    state: State,
    config: AdminConfig,
    parent: &CancellationToken,
) -> Result<AdminRunning, Error> {
    let addr = listener.local_addr().map_err(|source| Error::LocalAddr {
        listener: "admin",
        source,
    })?;
    let token = parent.child_token();
    let limits = state.config().connections.clone();
    let shutdown_deadline = limits.shutdown_deadline;
    let app = router(state, config).layer(middleware::from_fn(move |req: Request, next: Next| {
        check_host(addr, req, next)
    }));
    let stop = token.clone();
    let tracker = TaskTracker::new();
    let registry = std::sync::Arc::new(crate::conn::Registry::default());
    let tasks = tracker.clone();
    let accept_registry = registry.clone();
    tracker.spawn(async move {
        let mut backoff = crate::server::Backoff::new();
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    backoff.reset();
                    stream
                }
                Err(err) => {
                    tracing::warn!(listener = "admin", error = %err, "accept failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = backoff.wait() => {}
                    }
                    continue;
                }
            };
            let guard = match accept_registry.admit(limits.max_connections) {
                crate::conn::Admission::Admitted(guard)
                | crate::conn::Admission::AdmittedShedding(guard) => guard,
                crate::conn::Admission::Full => continue,
            };
            let app = app.clone();
            let limits = limits.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                let conn = guard.conn.clone();
                let handler = move |req: Request| {
                    let app = app.clone();
                    async move {
                        use tower::ServiceExt as _;
                        app.oneshot(req).await
                    }
                };
                crate::conn::serve(
                    hyper_util::rt::TokioIo::new(stream),
                    conn,
                    &limits,
                    stop,
                    handler,
                )
                .await;
                drop(guard);
            });
        }
    });
    Ok(AdminRunning {
        addr,
        token,
        tracker,
        registry,
        shutdown_deadline,
    })
}
