//! Admin routes over the cloud's stores: accepted events, uploaded blobs (and SAS minting),
//! the device registry, and Live Response sessions (started here, as the portal would).

use std::time::Duration;

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::admin::{Admin, error};
use crate::routes::storage::sas_url;
use crate::store::events::EventFilter;
use crate::store::live_response::LrCommand;

/// Most commands one Live Response session may carry.
const MAX_COMMANDS: usize = 64;
use mdelab_catalog::protocol::MAX_DEVICE_ID;

/// The store routes (the caller protects them with the admin token).
pub(crate) fn routes() -> Router<Admin> {
    Router::new()
        .route("/_lab/events", get(events).delete(events_clear))
        .route("/_lab/events/stats", get(events_stats))
        .route("/_lab/blobs", get(blobs).delete(blobs_clear))
        .route(
            "/_lab/blobs/{account}/{container}/{*name}",
            get(blob_content),
        )
        .route("/_lab/storage/sas", post(mint_sas))
        .route("/_lab/devices", get(devices).delete(devices_clear))
        .route("/_lab/devices/{id}", get(device))
        .route(
            "/_lab/liveresponse/sessions",
            get(sessions).post(start_session),
        )
        .route("/_lab/liveresponse/sessions/{id}", get(session))
        .route("/_lab/stats", get(stats))
        .route("/_lab/hunt", post(hunt))
}

async fn events(AxumState(admin): AxumState<Admin>, Query(filter): Query<EventFilter>) -> Response {
    Json(admin.state.events().query(&filter)).into_response()
}

async fn events_stats(AxumState(admin): AxumState<Admin>) -> Response {
    Json(admin.state.events().stats()).into_response()
}

async fn events_clear(AxumState(admin): AxumState<Admin>) -> StatusCode {
    admin.state.events().clear();
    StatusCode::NO_CONTENT
}

async fn blobs(AxumState(admin): AxumState<Admin>) -> Response {
    Json(admin.state.blobs().list()).into_response()
}

async fn blobs_clear(AxumState(admin): AxumState<Admin>) -> StatusCode {
    admin.state.blobs().clear();
    StatusCode::NO_CONTENT
}

async fn blob_content(
    AxumState(admin): AxumState<Admin>,
    Path((account, container, name)): Path<(String, String, String)>,
) -> Response {
    match admin.state.blobs().get(&account, &container, &name) {
        Some((meta, content)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (
                    header::HeaderName::from_static("x-mdelab-sha256"),
                    meta.sha256_hex,
                ),
                (header::HeaderName::from_static("content-md5"), meta.md5_b64),
            ],
            content,
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no blob {account}/{container}/{name}"),
        ),
    }
}

/// Body of `POST /_lab/storage/sas`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SasRequest {
    account: String,
    container: String,
    blob: String,
    #[serde(default = "default_permissions")]
    permissions: String,
    #[serde(default = "default_ttl")]
    ttl_secs: u64,
    /// A streamlined gateway host: the URL goes through its `/storage/<account>/` path.
    #[serde(default)]
    gateway: Option<String>,
}

fn default_permissions() -> String {
    "cw".into()
}

fn default_ttl() -> u64 {
    3600
}

async fn mint_sas(AxumState(admin): AxumState<Admin>, body: axum::body::Bytes) -> Response {
    let request: SasRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    let valid_name =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_name(&request.account) || !valid_name(&request.container) || request.blob.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "account and container are [a-z0-9-]+, blob non-empty",
        );
    }
    if !request.permissions.chars().all(|c| "rcw".contains(c)) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "permissions are letters of r, c, w",
        );
    }
    let base = match &request.gateway {
        Some(gateway) => format!("https://{gateway}/storage/{}", request.account),
        None => format!("https://{}.blob.core.windows.net", request.account),
    };
    let url = sas_url(
        &admin.state,
        &base,
        &request.account,
        &request.container,
        &request.blob,
        Duration::from_secs(request.ttl_secs),
        &request.permissions,
    );
    (StatusCode::CREATED, Json(serde_json::json!({"url": url}))).into_response()
}

async fn devices(AxumState(admin): AxumState<Admin>) -> Response {
    Json(admin.state.devices().list()).into_response()
}

async fn devices_clear(AxumState(admin): AxumState<Admin>) -> StatusCode {
    admin.state.devices().clear();
    StatusCode::NO_CONTENT
}

async fn device(AxumState(admin): AxumState<Admin>, Path(id): Path<String>) -> Response {
    match admin.state.devices().get(&id) {
        Some(device) => Json(device).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no device {id} has polled CnC"),
        ),
    }
}

/// Body of `POST /_lab/liveresponse/sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartSession {
    device_id: String,
    commands: Vec<LrCommand>,
    /// Gateway the command should name until a poll delivers it (optional).
    #[serde(default)]
    gateway: Option<String>,
}

async fn start_session(AxumState(admin): AxumState<Admin>, body: axum::body::Bytes) -> Response {
    let request: StartSession = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    if request.device_id.is_empty() || request.device_id.len() > MAX_DEVICE_ID {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "device_id must be 1 to 256 characters",
        );
    }
    if request.commands.is_empty() || request.commands.len() > MAX_COMMANDS {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("a session takes 1 to {MAX_COMMANDS} commands"),
        );
    }
    let session =
        admin
            .state
            .live_response()
            .start(&request.device_id, request.commands, request.gateway);
    (StatusCode::CREATED, Json(session)).into_response()
}

async fn sessions(AxumState(admin): AxumState<Admin>) -> Response {
    Json(admin.state.live_response().list()).into_response()
}

async fn session(AxumState(admin): AxumState<Admin>, Path(id): Path<String>) -> Response {
    match admin.state.live_response().get(&id) {
        Some(session) => Json(session).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no session {id}"),
        ),
    }
}

async fn stats(AxumState(admin): AxumState<Admin>) -> Response {
    let s = &admin.state;
    Json(serde_json::json!({
        "ready": s.is_ready(),
        "journal": s.journal().stats(),
        "events": s.events().stats(),
        "blobs": s.blobs().stats(),
        "devices": s.devices().stats(),
        "live_response": s.live_response().stats(),
        "limits": limits(s.config()),
        "connections": {
            "shed": s.shed_connections(),
            "blocked": s.blocked_connections(),
        },
    }))
    .into_response()
}

/// The service limits a client may need to plan against (read-only): the CnC hold cap, the
/// largest blob and the blob store's capacity.
fn limits(config: &crate::ServiceConfig) -> serde_json::Value {
    serde_json::json!({
        "cnc_max_hold_secs": config.cnc_max_hold.as_secs(),
        "blob_max_bytes": config.blob_max_bytes,
        "blob_capacity_bytes": config.blob_capacity_bytes,
    })
}

/// Body of `POST /_lab/hunt`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HuntRequest {
    query: String,
}

async fn hunt(AxumState(admin): AxumState<Admin>, body: axum::body::Bytes) -> Response {
    let request: HuntRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("{e} (send {{\"query\": \"…\"}})"),
            );
        }
    };
    match crate::hunting::run(&request.query, admin.state.events()) {
        Ok(result) => Json(result).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "bad_query", "message": e.message, "position": e.position})),
        )
            .into_response(),
    }
}
