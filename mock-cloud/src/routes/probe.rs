//! Catalog probe answers: each URL answers exactly as the catalog says; unknown paths get 404.

use axum::extract::{Request, State as AxumState};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ConnInfo;
use crate::State;
use mdelab_catalog::{ProbeMethod, Scheme, normalise};

/// The host a request is for: `Host` / `:authority`, falling back to the SNI.
pub fn request_host(req: &Request) -> Option<String> {
    let sni = req
        .extensions()
        .get::<ConnInfo>()
        .and_then(|c| c.sni.as_deref());
    request_host_with(req, sni)
}

/// [`request_host`] with the SNI given explicitly (before the connection info is attached).
pub fn request_host_with(req: &Request, sni: Option<&str>) -> Option<String> {
    let header_host = || {
        req.headers()
            .get(header::HOST)?
            .to_str()
            .ok()
            .map(str::to_owned)
    };
    req.uri()
        .host()
        .map(str::to_owned)
        .or_else(header_host)
        .or_else(|| sni.map(str::to_owned))
        .map(|h| normalise(&h))
}

/// Answers a catalog probe, the root of a host family, or 404.
pub async fn answer(AxumState(state): AxumState<State>, req: Request) -> Response {
    let scheme = req
        .extensions()
        .get::<ConnInfo>()
        .map_or(Scheme::Https, |c| c.scheme);
    let Some(host) = request_host(&req) else {
        return (StatusCode::BAD_REQUEST, "missing Host header\n").into_response();
    };
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let catalog = state.catalog();
    if let Some(endpoint) = catalog.probe_for(&host, scheme, path) {
        if !method_matches(endpoint.probe.method, req.method()) {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let status = StatusCode::from_u16(endpoint.probe.status).unwrap_or(StatusCode::OK);
        let body = endpoint.probe.body.unwrap_or_default();
        return (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response();
    }
    if req.uri().path() == "/"
        && let Some(family) = catalog.family_of(&host)
    {
        let status = StatusCode::from_u16(family.root_status).unwrap_or(StatusCode::NOT_FOUND);
        return status.into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

fn method_matches(expected: ProbeMethod, got: &Method) -> bool {
    match expected {
        // Whoever answers GET answers HEAD with the same status.
        ProbeMethod::Get => got == Method::GET || got == Method::HEAD,
        ProbeMethod::Head => got == Method::HEAD || got == Method::GET,
        ProbeMethod::Post => got == Method::POST,
    }
}
