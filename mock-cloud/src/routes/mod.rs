//! HTTP routing for every lab host.
//!
//! A request is routed by host (the `Host` header or h2 `:authority`, else the TLS SNI) to the
//! router of the host's **service family**, then by path; a path the family does not serve
//! falls back to the host's catalog probe answer, else 404. Around every request the
//! dispatcher applies injected faults and records a journal entry.
//!
//! # Layout
//! - [`probe`]: catalog probe answers (`/test` → 200, blob account root → 400…), 404 else.
//! - [`onecollector`]: cyber data (1DS OneCollector ingestion).
//! - [`storage`]: blob storage (SAS uploads) on blob hosts and gateway `/storage/` paths.
//! - [`maps`]: cloud protection reports and settings/ECS.
//! - [`cnc`]: command-and-control long polls and Live Response actions.
//! - [`body`]: request/response body wrappers (byte counting, truncation).

pub mod body;
pub mod cnc;
pub mod maps;
pub mod onecollector;
pub mod probe;
pub mod storage;
#[cfg(test)]
pub(crate) mod testkit;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use tower::ServiceExt as _;

use crate::State;
use crate::journal::JournalEntry;
use mdelab_catalog::{Scheme, Service};

pub use mdelab_catalog::protocol::DEVICE_HEADER;

/// What the listener knows about the connection a request came on.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Which listener.
    pub scheme: Scheme,
    /// The TLS server name, for HTTPS.
    pub sni: Option<String>,
}

/// A fault decided that the connection closes without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by an injected fault")]
pub struct FaultReset;

/// The per-family routers, built once.
#[derive(Clone, Debug)]
pub struct App {
    state: State,
    families: Arc<Families>,
}

#[derive(Debug)]
struct Families {
    cyber: Router,
    core: Router,
    storage: Router,
    cnc: Router,
    maps: Router,
    settings: Router,
    probe: Router,
}

impl App {
    /// Builds every family's router over `state`.
    pub fn new(state: State) -> Self {
        let finish =
            |routes: Router<State>| routes.fallback(probe::answer).with_state(state.clone());
        let families = Families {
            cyber: finish(onecollector::routes()),
            core: finish(onecollector::routes().merge(maps::settings_routes())),
            storage: finish(storage::blob_routes()),
            cnc: finish(cnc::routes().merge(storage::gateway_routes())),
            maps: finish(
                maps::routes()
                    .merge(storage::gateway_routes())
                    .merge(maps::settings_routes()),
            ),
            settings: finish(maps::settings_routes()),
            probe: finish(Router::new()),
        };
        Self {
            state,
            families: Arc::new(families),
        }
    }

    /// The shared state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Serves one request: faults, family routing, journal.
    pub async fn handle(&self, mut req: Request, conn: ConnInfo) -> Result<Response, FaultReset> {
        let started = Instant::now();
        let host = probe::request_host_with(&req, conn.sni.as_deref()).unwrap_or_default();
        let service = self.service_of(&host, conn.scheme);
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let mut entry = JournalEntry {
            seq: 0,
            time_ms: 0,
            listener: conn.scheme.name().to_owned(),
            host: host.clone(),
            sni: conn.sni.clone(),
            method: req.method().as_str().to_owned(),
            path: path.clone(),
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            peer: conn.peer,
            device_id: req
                .headers()
                .get(DEVICE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            service: service.map(|s| s.name().to_owned()),
            duration_ms: 0,
            faults: Vec::new(),
        };
        let decision = self
            .state
            .faults()
            .decide(&host, service.map(Service::name), &path);
        entry.faults = decision.applied.clone();
        if !decision.delay.is_zero() {
            tokio::time::sleep(decision.delay).await;
        }
        if decision.reset {
            self.finish(entry, started, 0, 0, 0);
            return Err(FaultReset);
        }
        let response = if let Some(status) = decision.status {
            fault_status(status)
        } else {
            let (bytes_in, counted) = body::counting(std::mem::take(req.body_mut()));
            *req.body_mut() = counted;
            req.extensions_mut().insert(conn);
            let response = self.router_for(service, &host).clone().oneshot(req).await;
            let response = match response {
                Ok(response) => response,
                Err(never) => match never {},
            };
            entry.bytes_in = bytes_in.load(Ordering::Relaxed);
            response
        };
        let mut response = match decision.close_after {
            Some(limit) => response.map(|b| Body::new(body::Truncated::new(b, limit))),
            None => response,
        };
        if let Some((tokens, duration, legacy)) = &decision.kill_tokens
            && let (Ok(t), Ok(d)) = (
                HeaderValue::from_str(tokens),
                HeaderValue::from_str(duration),
            )
        {
            let duration_header = if *legacy {
                "kill-duration-seconds"
            } else {
                "kill-duration"
            };
            response.headers_mut().insert("kill-tokens", t);
            response.headers_mut().insert(duration_header, d);
        }
        if let Some(seconds) = decision.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(ms) = decision.time_delta_ms {
            response
                .headers_mut()
                .insert("time-delta-millis", HeaderValue::from(ms));
        }
        let bytes_out = response.body().size_hint().exact().unwrap_or(0);
        let bytes_in = entry.bytes_in;
        self.finish(
            entry,
            started,
            response.status().as_u16(),
            bytes_in,
            bytes_out,
        );
        Ok(response)
    }

    fn finish(
        &self,
        mut entry: JournalEntry,
        started: Instant,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        entry.status = status;
        entry.bytes_in = bytes_in;
        entry.bytes_out = bytes_out;
        entry.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        entry.time_ms = self.state.clock().now_ms();
        self.state.journal().record(entry);
    }

    fn service_of(&self, host: &str, scheme: Scheme) -> Option<Service> {
        let catalog = self.state.catalog();
        match scheme {
            Scheme::Https => catalog.https_host(host).map(|info| info.service),
            Scheme::Http => catalog
                .endpoints()
                .iter()
                .find(|e| e.scheme == Scheme::Http && e.host == host)
                .map(|e| e.service),
        }
    }

    fn router_for(&self, service: Option<Service>, host: &str) -> &Router {
        let f = &self.families;
        let blob_host = self.state.catalog().is_blob_host(host);
        match service {
            Some(Service::CyberData) => &f.cyber,
            Some(Service::CoreService) => &f.core,
            Some(Service::SampleUpload | Service::AutoIr) if blob_host => &f.storage,
            Some(Service::CommandAndControl | Service::AutoIr) => &f.cnc,
            Some(Service::CloudProtection | Service::SampleUpload | Service::Updates) => &f.maps,
            Some(Service::Telemetry) => &f.settings,
            _ => &f.probe,
        }
    }
}

/// The answer of a status fault; 429 and 503 say when to retry, as real front ends do.
fn fault_status(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = (code, "injected fault\n").into_response();
    if matches!(status, 429 | 503) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
