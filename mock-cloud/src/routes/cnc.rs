//! Command and control (long polls) and Live Response actions on the CnC gateways.
//!
//! Standard gateways (`winatp-gw-<dc>.microsoft.com`) serve the poll at `/commands/cnc`,
//! streamlined ones (`edr-<dc>.<geo>.endpoint.security.microsoft.com`) at `/edr/commands/cnc`;
//! both serve `/senseir/v1/actions/<session>/{connect,results,close}`. The wire protocol is the
//! lab's own JSON (the real one is Bond and undocumented): see PROTOCOL.md, sections "Command
//! and control" and "Live Response". Everything else on these hosts (the `/test` probes,
//! `/storage/…`) belongs to the fallback and the storage routes.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State as AxumState};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ConnInfo, DEVICE_HEADER, probe, storage};
use crate::State;
use crate::store::devices::Sighting;
use crate::store::live_response::{self, ActionError, LrCommand, LrResult, Session, SessionState};
use mdelab_catalog::{GatewayHost, Scheme};

/// Largest poll body (a status some clients post; read and ignored).
pub const MAX_POLL_BODY: usize = 64 * 1024;
/// Largest Live Response action body.
pub const MAX_ACTION_BODY: usize = 1024 * 1024;
pub use mdelab_catalog::protocol::MAX_DEVICE_ID;
/// Longest close reason kept (longer ones are cut), so sessions stay small.
const MAX_REASON: usize = 1024;

/// Routes of the CnC gateways (`/commands/cnc`, `/edr/commands/cnc`, `/senseir/v1/actions/…`).
pub fn routes() -> Router<State> {
    Router::new()
        .route("/commands/cnc", get(poll).post(poll).head(no_head))
        .route("/edr/commands/cnc", get(poll).post(poll).head(no_head))
        .route("/senseir/v1/actions/{session}/connect", post(connect))
        .route("/senseir/v1/actions/{session}/results", post(results))
        .route("/senseir/v1/actions/{session}/close", post(close))
}

/// A CnC gateway, as the catalog recognises it from its host name
/// ([`mdelab_catalog::Catalog::gateway`]).
type Gateway = GatewayHost;

/// A refused request: answered as the protocol's JSON error. Small enough to travel in a
/// `Result` (a whole `Response` is not).
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// For 409: the session's state.
    state: Option<SessionState>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            state: None,
        }
    }
}

impl From<ActionError> for Refusal {
    fn from(e: ActionError) -> Self {
        let (status, code) = match &e {
            ActionError::UnknownSession { .. } => (StatusCode::NOT_FOUND, "unknown_session"),
            ActionError::WrongDevice { .. } => (StatusCode::FORBIDDEN, "wrong_device"),
            ActionError::State { .. } => (StatusCode::CONFLICT, "session_state"),
            ActionError::IndexOutOfRange { .. } => (StatusCode::BAD_REQUEST, "index_out_of_range"),
            ActionError::InvalidResult { .. } => (StatusCode::BAD_REQUEST, "invalid_result"),
            ActionError::BlobMissing { .. } => (StatusCode::CONFLICT, "blob_missing"),
            ActionError::BlobMismatch { .. } => (StatusCode::BAD_REQUEST, "blob_mismatch"),
        };
        let mut refusal = Self::new(status, code, e.to_string());
        if let ActionError::State { state, .. } = e {
            refusal.state = Some(state);
        }
        refusal
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let Some(state) = self.state {
            body["state"] = json!(state);
        }
        (self.status, Json(body)).into_response()
    }
}

/// `GET|POST /commands/cnc` (standard) and `/edr/commands/cnc` (streamlined): the long poll.
async fn poll(AxumState(state): AxumState<State>, req: Request) -> Result<Response, Refusal> {
    let gateway = gateway_for(&state, &req)?;
    if req.uri().path() != gateway.poll_path() {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "wrong_path",
            format!(
                "{} is a {} gateway; it polls at {}",
                gateway.host,
                gateway.model,
                gateway.poll_path()
            ),
        ));
    }
    let device = device_id(req.headers())?;
    let hold = hold_of(req.uri().query(), state.config().cnc_max_hold)?;
    let conn = req.extensions().get::<ConnInfo>().cloned();
    if req.method() == Method::POST {
        read_body(req.into_body(), MAX_POLL_BODY).await?;
    }
    state.devices().record_poll(
        Sighting {
            id: device.clone(),
            region: gateway.region,
            connectivity: Some(gateway.model),
            peer: conn
                .as_ref()
                .map_or_else(|| ([0, 0, 0, 0], 0).into(), |c| c.peer),
            host: gateway.host.clone(),
            listener: conn
                .as_ref()
                .map_or(Scheme::Https, |c| c.scheme)
                .name()
                .to_owned(),
            sni: conn.and_then(|c| c.sni),
        },
        state.clock().now_ms(),
    );
    let lr = state.live_response();
    let commands = if hold.is_zero() {
        lr.take_commands(&device, &gateway.host)
    } else {
        lr.wait_for_commands(&device, &gateway.host, hold).await
    };
    Ok(if commands.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Json(json!({ "commands": commands })).into_response()
    })
}

/// `HEAD` of a poll path: refused, since an answer without a body would swallow the commands
/// it drained (axum would otherwise serve `HEAD` with the `GET` handler).
async fn no_head() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "GET, POST")],
    )
        .into_response()
}

/// One command of a connect answer: the command, its index, and for getfile where to upload.
#[derive(Serialize)]
struct ActionCommand<'a> {
    index: usize,
    #[serde(flatten)]
    command: &'a LrCommand,
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blob: Option<String>,
}

/// `POST /senseir/v1/actions/<session>/connect`.
async fn connect(
    AxumState(state): AxumState<State>,
    Path(session): Path<String>,
    req: Request,
) -> Result<Response, Refusal> {
    let (gateway, device, _body) = action_preamble(&state, req).await?;
    let session = state.live_response().connect(&session, &device)?;
    let commands: Vec<ActionCommand<'_>> = session
        .commands
        .iter()
        .enumerate()
        .map(|(index, command)| {
            let blob = session.upload_blob(index);
            ActionCommand {
                index,
                command,
                upload_url: blob
                    .as_deref()
                    .map(|name| upload_url(&state, &gateway, &session, name)),
                blob: blob.map(|name| format!("{}/{name}", live_response::CONTAINER)),
            }
        })
        .collect();
    Ok(Json(json!({
        "session": session.id,
        "state": session.state,
        "timeout_ms": session.timeout_ms,
        "commands": commands,
    }))
    .into_response())
}

/// `POST /senseir/v1/actions/<session>/results`.
async fn results(
    AxumState(state): AxumState<State>,
    Path(session): Path<String>,
    req: Request,
) -> Result<Response, Refusal> {
    let (gateway, device, body) = action_preamble(&state, req).await?;
    let result: LrResult = serde_json::from_slice(&body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the result is not valid: {e}"),
        )
    })?;
    // A successful getfile must have reached the gateway's storage account, as reported.
    let account = gateway.auto_ir_account();
    let verify = |result: &LrResult| verify_upload(&state, &account, result);
    let s = state
        .live_response()
        .record_result_verified(&session, &device, result, verify)?;
    Ok(Json(json!({
        "session": s.id,
        "state": s.state,
        "results": s.results.len(),
    }))
    .into_response())
}

/// Checks a getfile result against the blob store: uploaded, same size, same SHA-256.
fn verify_upload(state: &State, account: &str, result: &LrResult) -> Result<(), ActionError> {
    let blob = result.blob.clone().unwrap_or_default();
    let Some((container, name)) = blob.split_once('/') else {
        return Err(ActionError::BlobMissing { blob });
    };
    let Some((stored, _content)) = state.blobs().get(account, container, name) else {
        return Err(ActionError::BlobMissing { blob });
    };
    let sha = result.sha256.as_deref().unwrap_or_default();
    if !stored.sha256_hex.eq_ignore_ascii_case(sha) {
        return Err(ActionError::BlobMismatch {
            blob,
            detail: format!("uploaded SHA-256 is {}", stored.sha256_hex),
        });
    }
    if result.size != Some(stored.size) {
        return Err(ActionError::BlobMismatch {
            blob,
            detail: format!("uploaded size is {}", stored.size),
        });
    }
    Ok(())
}

/// The optional body of a close.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    reason: Option<String>,
}

/// `POST /senseir/v1/actions/<session>/close`.
async fn close(
    AxumState(state): AxumState<State>,
    Path(session): Path<String>,
    req: Request,
) -> Result<Response, Refusal> {
    let (_gateway, device, body) = action_preamble(&state, req).await?;
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let body: CloseBody = serde_json::from_slice(&body).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("the close body is not valid: {e}"),
            )
        })?;
        body.reason.map(|r| r.chars().take(MAX_REASON).collect())
    };
    let s = state.live_response().close(&session, &device, reason)?;
    Ok(Json(json!({ "session": s.id, "state": s.state })).into_response())
}

/// What every action checks first: a gateway host, a device, a body within the cap.
async fn action_preamble(state: &State, req: Request) -> Result<(Gateway, String, Bytes), Refusal> {
    let gateway = gateway_for(state, &req)?;
    let device = device_id(req.headers())?;
    let body = read_body(req.into_body(), MAX_ACTION_BODY).await?;
    Ok((gateway, device, body))
}

fn gateway_for(state: &State, req: &Request) -> Result<Gateway, Refusal> {
    let Some(host) = probe::request_host(req) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "missing_host",
            "the request names no host",
        ));
    };
    state.catalog().gateway(&host).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "not_a_gateway",
            format!("{host} is not a CnC gateway"),
        )
    })
}

/// The device id from `Msadeviceticket`.
fn device_id(headers: &HeaderMap) -> Result<String, Refusal> {
    let id = headers
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= MAX_DEVICE_ID);
    id.map(str::to_owned).ok_or_else(|| {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            "missing_device",
            format!(
                "send the device id in the Msadeviceticket header (1 to {MAX_DEVICE_ID} \
                 visible ASCII characters)"
            ),
        )
    })
}

/// The hold asked for with `?hold=<seconds>`, capped at `max`; `max` when absent.
fn hold_of(query: Option<&str>, max: Duration) -> Result<Duration, Refusal> {
    let value = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("hold="));
    let Some(value) = value else {
        return Ok(max);
    };
    let secs = value.parse::<u64>().map_err(|_| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_hold",
            format!("hold must be whole seconds, got {value:?}"),
        )
    })?;
    Ok(Duration::from_secs(secs).min(max))
}

/// Reads a body of at most `cap` bytes; larger gets 413.
async fn read_body(body: Body, cap: usize) -> Result<Bytes, Refusal> {
    match Limited::new(body, cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {cap} bytes"),
        )),
        Err(e) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the body could not be read: {e}"),
        )),
    }
}

/// The SAS URL a getfile uploads to: create and write only, valid as long as the session.
fn upload_url(state: &State, gateway: &Gateway, session: &Session, blob: &str) -> String {
    storage::sas_url(
        state,
        &gateway.storage_base(),
        &gateway.auto_ir_account(),
        live_response::CONTAINER,
        blob,
        Duration::from_millis(session.timeout_ms),
        "cw",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::StatusCode;
    use serde_json::{Value, json};
    use tokio::time::Instant;

    use crate::config::ServiceConfig;
    use crate::routes::{App, DEVICE_HEADER};
    use crate::store::live_response::{LrCommand, ResultStatus, Session, SessionState};
    use mdelab_catalog::{Connectivity, Region};

    /// A standard gateway (US) and a streamlined one in another region (EU), so region and
    /// connectivity must really come from the host.
    const STD: &str = "winatp-gw-cus.microsoft.com";
    const SL: &str = "edr-weu.eu.endpoint.security.microsoft.com";
    const TIMEOUT: Duration = Duration::from_secs(120);
    const HOLD: Duration = Duration::from_secs(30);

    fn app() -> App {
        super::super::testkit::app_with(ServiceConfig {
            cnc_max_hold: HOLD,
            live_response_timeout: TIMEOUT,
            ..ServiceConfig::default()
        })
    }

    struct Reply {
        status: StatusCode,
        json: Value,
    }

    async fn send(
        app: &App,
        method: &str,
        host: &str,
        path: &str,
        device: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let headers: Vec<(&str, &str)> = device.map(|d| (DEVICE_HEADER, d)).into_iter().collect();
        send_with(app, method, host, path, &headers, body).await
    }

    async fn send_with(
        app: &App,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let method = axum::http::Method::from_bytes(method.as_bytes()).expect("method");
        let answer = super::super::testkit::send(app, method, host, path, headers, body).await;
        let json = if answer.body.is_empty() {
            Value::Null
        } else {
            answer.json()
        };
        Reply {
            status: answer.status,
            json,
        }
    }

    /// PUTs `content` to a SAS upload URL through the lab's own storage routes, as a device.
    async fn upload(app: &App, url: &str, content: &'static [u8]) -> StatusCode {
        let rest = url.strip_prefix("https://").expect("an https URL");
        let (host, path) = rest.split_at(rest.find('/').expect("a path"));
        let headers = [(DEVICE_HEADER, "dev"), ("x-ms-blob-type", "BlockBlob")];
        send_with(app, "PUT", host, path, &headers, content)
            .await
            .status
    }

    fn sha256_hex(content: &[u8]) -> String {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, content))
    }

    fn dir(path: &str) -> LrCommand {
        LrCommand::Dir {
            path: path.to_owned(),
        }
    }

    fn getfile(path: &str) -> LrCommand {
        LrCommand::GetFile {
            path: path.to_owned(),
        }
    }

    fn poll_path(host: &str) -> &'static str {
        if host == STD {
            "/commands/cnc"
        } else {
            "/edr/commands/cnc"
        }
    }

    /// Polls once (hold 0) and returns the actions path of the single command delivered.
    async fn deliver(app: &App, host: &str, device: &str, session: &Session) -> String {
        let path = format!("{}?hold=0", poll_path(host));
        let r = send(app, "GET", host, &path, Some(device), Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let url = format!("https://{host}/senseir/v1/actions/{}", session.id);
        assert_eq!(
            r.json,
            json!({"commands": [{"id": session.command_id, "type": "live_response",
                "session": session.id, "actions_url": url}]})
        );
        url.trim_start_matches(&format!("https://{host}"))
            .to_owned()
    }

    #[tokio::test]
    async fn poll_without_device_header_is_401() {
        let app = app();
        for host in [STD, SL] {
            let path = format!("{}?hold=0", poll_path(host));
            let r = send(&app, "GET", host, &path, None, Body::empty()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            assert_eq!(r.json["error"], "missing_device");
        }
        assert!(app.state().devices().list().is_empty());
    }

    #[tokio::test]
    async fn empty_poll_is_204_and_registers_the_device_from_the_gateway() {
        let app = app();
        let r = send(
            &app,
            "GET",
            STD,
            "/commands/cnc?hold=0",
            Some("dev-std"),
            Body::empty(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        // A posted status body is read and ignored.
        let r = send(
            &app,
            "POST",
            SL,
            "/edr/commands/cnc?hold=0",
            Some("dev-sl"),
            r#"{"status":"idle"}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        let std = app.state().devices().get("dev-std").expect("registered");
        assert_eq!(
            (std.region, std.connectivity, std.host.as_str(), std.polls),
            (Some(Region::Us), Some(Connectivity::Standard), STD, 1)
        );
        assert_eq!(
            (std.listener.as_str(), std.sni.as_deref(), std.peer.port()),
            ("https", Some(STD), super::super::testkit::PEER.port())
        );
        let sl = app.state().devices().get("dev-sl").expect("registered");
        assert_eq!(
            (sl.region, sl.connectivity, sl.host.as_str()),
            (Some(Region::Eu), Some(Connectivity::Streamlined), SL)
        );
        send(
            &app,
            "GET",
            SL,
            "/edr/commands/cnc?hold=0",
            Some("dev-sl"),
            Body::empty(),
        )
        .await;
        assert_eq!(
            app.state().devices().get("dev-sl").map(|d| d.polls),
            Some(2)
        );
    }

    #[tokio::test]
    async fn held_poll_wakes_as_soon_as_a_session_starts() {
        let app = app();
        let poller = {
            let app = app.clone();
            tokio::spawn(async move {
                send(
                    &app,
                    "GET",
                    SL,
                    "/edr/commands/cnc",
                    Some("dev"),
                    Body::empty(),
                )
                .await
            })
        };
        let lr = app.state().live_response();
        // Cooperative hand-over on the single-threaded test runtime, not a timed wait: the
        // poll task runs until it parks in its hold.
        while lr.held_polls("dev") == 0 {
            assert!(
                !poller.is_finished(),
                "the poll answered instead of holding"
            );
            tokio::task::yield_now().await;
        }
        // Another device's session must not wake (or feed) this poll.
        lr.start("other", vec![dir("C:\\")], None);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!poller.is_finished(), "woken by another device's command");

        let session = lr.start("dev", vec![dir("C:\\Temp")], None);
        // Far below the 30 s hold: only the wake-up can answer in time.
        let r = tokio::time::timeout(Duration::from_secs(10), poller)
            .await
            .expect("the held poll was not woken")
            .expect("poll task");
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["commands"][0]["session"], session.id.as_str());
        assert_eq!(
            r.json["commands"][0]["actions_url"],
            format!("https://{SL}/senseir/v1/actions/{}", session.id)
        );
        assert_eq!(lr.held_polls("dev"), 0);
        assert_eq!(lr.queued("other"), 1);
    }

    #[tokio::test]
    async fn a_queued_command_is_delivered_on_the_next_poll_once() {
        let app = app();
        let lr = app.state().live_response();
        let session = lr.start("dev", vec![getfile("C:\\a.txt")], Some(SL.to_owned()));
        assert_eq!(session.state, SessionState::Pending);
        assert_eq!(session.gateway_host.as_deref(), Some(SL));
        // Delivered through the gateway the device actually polls, not the hint.
        deliver(&app, STD, "dev", &session).await;
        let r = send(
            &app,
            "GET",
            STD,
            "/commands/cnc?hold=0",
            Some("dev"),
            Body::empty(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "delivered twice");
        let after = lr.get(&session.id).expect("session");
        assert_eq!(after.gateway_host.as_deref(), Some(STD));
        assert!(after.delivered_ms.is_some());
        assert_eq!(after.state, SessionState::Pending);
    }

    #[tokio::test(start_paused = true)]
    async fn hold_expiry_answers_204_after_the_hold() {
        let app = app();
        for (query, secs) in [("", 30), ("?hold=5", 5), ("?hold=999", 30)] {
            let started = Instant::now();
            let path = format!("/commands/cnc{query}");
            let r = send(&app, "GET", STD, &path, Some("dev"), Body::empty()).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{query}");
            let held = started.elapsed();
            let expected = Duration::from_secs(secs);
            assert!(
                held >= expected && held < expected + Duration::from_secs(1),
                "{query}: held {held:?}"
            );
        }
        assert_eq!(app.state().live_response().held_polls("dev"), 0);
        let r = send(
            &app,
            "GET",
            STD,
            "/commands/cnc?hold=soon",
            Some("dev"),
            Body::empty(),
        )
        .await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::BAD_REQUEST, &json!("bad_hold"))
        );
    }

    #[tokio::test]
    async fn connect_hands_out_upload_urls_on_the_gateways_storage() {
        let app = app();
        let cases = [
            (
                STD,
                "https://automatedirstrprdcus.blob.core.windows.net/liveresponse/",
                "automatedirstrprdcus",
            ),
            (
                SL,
                "https://edr-weu.eu.endpoint.security.microsoft.com/storage/automatedirstrprdweu/liveresponse/",
                "automatedirstrprdweu",
            ),
        ];
        for (host, prefix, account) in cases {
            let lr = app.state().live_response();
            let session = lr.start(
                "dev",
                vec![dir("C:\\Temp"), getfile("C:\\Temp\\notes.txt")],
                None,
            );
            let actions = deliver(&app, host, "dev", &session).await;
            let r = send(
                &app,
                "POST",
                host,
                &format!("{actions}/connect"),
                Some("dev"),
                Body::empty(),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
            assert_eq!(r.json["session"], session.id.as_str());
            assert_eq!(r.json["state"], "connected");
            assert_eq!(
                r.json["commands"][0],
                json!({"index": 0, "kind": "dir", "path": "C:\\Temp"})
            );
            let file = &r.json["commands"][1];
            assert_eq!(
                (&file["index"], &file["kind"], &file["path"]),
                (&json!(1), &json!("getfile"), &json!("C:\\Temp\\notes.txt"))
            );
            assert_eq!(
                file["blob"],
                format!("liveresponse/{}/1-notes.txt", session.id)
            );
            let url = file["upload_url"].as_str().expect("upload_url");
            let expected = format!("{prefix}{}/1-notes.txt?", session.id);
            assert!(
                url.starts_with(&expected),
                "{url} does not start with {expected}"
            );
            assert!(url.len() > expected.len(), "no SAS token in {url}");
            // The URL really works against the lab's storage, on the gateway's account.
            assert_eq!(upload(&app, url, b"hello").await, StatusCode::CREATED);
            let name = format!("{}/1-notes.txt", session.id);
            assert!(app.state().blobs().contains(account, "liveresponse", &name));
            let s = lr.get(&session.id).expect("session");
            assert_eq!(s.state, SessionState::Connected);
            assert!(s.connected_ms.is_some());
        }
    }

    #[tokio::test]
    async fn results_are_stored_and_close_closes() {
        let app = app();
        let lr = app.state().live_response();
        let session = lr.start(
            "dev",
            vec![dir("C:\\Temp"), getfile("C:\\Temp\\notes.txt")],
            None,
        );
        let actions = deliver(&app, STD, "dev", &session).await;
        let post = |what: &'static str, body: String| {
            let app = app.clone();
            let path = format!("{actions}/{what}");
            async move { send(&app, "POST", STD, &path, Some("dev"), body).await }
        };
        // Results before connecting are out of order.
        let r = post("results", json!({"index": 0, "status": "ok"}).to_string()).await;
        assert_eq!(
            (r.status, &r.json["state"]),
            (StatusCode::CONFLICT, &json!("pending"))
        );
        let connected = post("connect", String::new()).await;
        assert_eq!(connected.status, StatusCode::OK);
        let url = connected.json["commands"][1]["upload_url"]
            .as_str()
            .expect("upload_url")
            .to_owned();

        let listing = json!({"index": 0, "status": "ok", "output": "notes.txt 5"});
        let r = post("results", listing.to_string()).await;
        assert_eq!((r.status, &r.json["results"]), (StatusCode::OK, &json!(1)));
        let sha = sha256_hex(b"hello");
        let blob = format!("liveresponse/{}/1-notes.txt", session.id);
        let file = json!({"index": 1, "status": "ok", "blob": blob, "sha256": sha, "size": 5});
        // The file must really be in storage before its result is believed…
        let r = post("results", file.to_string()).await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::CONFLICT, &json!("blob_missing"))
        );
        assert_eq!(upload(&app, &url, b"hello").await, StatusCode::CREATED);
        // …and be the file the result describes.
        let forged =
            json!({"index": 1, "status": "ok", "blob": blob, "sha256": "00".repeat(32), "size": 5});
        let r = post("results", forged.to_string()).await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::BAD_REQUEST, &json!("blob_mismatch"))
        );
        let r = post("results", file.to_string()).await;
        assert_eq!((r.status, &r.json["results"]), (StatusCode::OK, &json!(2)));
        // A repeated index replaces.
        let again = json!({"index": 0, "status": "error", "output": "access denied"});
        assert_eq!(
            post("results", again.to_string()).await.status,
            StatusCode::OK
        );

        let r = post("results", json!({"index": 2, "status": "ok"}).to_string()).await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::BAD_REQUEST, &json!("index_out_of_range"))
        );
        let r = post("results", "{\"index\":".to_owned()).await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::BAD_REQUEST, &json!("bad_json"))
        );
        let wrong_blob =
            json!({"index": 1, "status": "ok", "blob": "liveresponse/x", "sha256": sha, "size": 5});
        let r = post("results", wrong_blob.to_string()).await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_result"))
        );

        let s = lr.get(&session.id).expect("session");
        assert_eq!(s.results.len(), 2);
        assert_eq!(
            (s.results[0].status, s.results[0].output.as_deref()),
            (ResultStatus::Error, Some("access denied"))
        );
        assert_eq!(
            (
                s.results[1].blob.as_deref(),
                s.results[1].sha256.as_deref(),
                s.results[1].size
            ),
            (Some(blob.as_str()), Some(sha.as_str()), Some(5))
        );

        let r = post("close", json!({"reason": "done"}).to_string()).await;
        assert_eq!(
            (r.status, &r.json["state"]),
            (StatusCode::OK, &json!("closed"))
        );
        let s = lr.get(&session.id).expect("session");
        assert_eq!(
            (s.state, s.reason.as_deref()),
            (SessionState::Closed, Some("done"))
        );
        assert!(s.closed_ms.is_some());
        let r = post("results", listing.to_string()).await;
        assert_eq!(
            (r.status, &r.json["state"]),
            (StatusCode::CONFLICT, &json!("closed"))
        );
        let r = post("connect", String::new()).await;
        assert_eq!(
            (r.status, &r.json["state"]),
            (StatusCode::CONFLICT, &json!("closed"))
        );
    }

    #[tokio::test]
    async fn actions_check_device_session_and_size() {
        let app = app();
        let lr = app.state().live_response();
        let session = lr.start("dev", vec![dir("C:\\")], None);
        let connect = format!("/senseir/v1/actions/{}/connect", session.id);
        let r = send(&app, "POST", STD, &connect, Some("intruder"), Body::empty()).await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::FORBIDDEN, &json!("wrong_device"))
        );
        let r = send(&app, "POST", STD, &connect, None, Body::empty()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let unknown = "/senseir/v1/actions/00000000000000000000000000000000/connect";
        let r = send(&app, "POST", STD, unknown, Some("dev"), Body::empty()).await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::NOT_FOUND, &json!("unknown_session"))
        );
        assert_eq!(
            lr.get(&session.id).map(|s| s.state),
            Some(SessionState::Pending)
        );

        let big = vec![b' '; super::MAX_ACTION_BODY + 1];
        let results = format!("/senseir/v1/actions/{}/results", session.id);
        let r = send(&app, "POST", STD, &results, Some("dev"), big).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        let big = vec![b' '; super::MAX_POLL_BODY + 1];
        let r = send(&app, "POST", STD, "/commands/cnc?hold=0", Some("dev"), big).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(lr.queued("dev"), 1, "a refused poll takes nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_time_out_without_device_activity() {
        let app = app();
        let lr = app.state().live_response();
        let session = lr.start("dev", vec![dir("C:\\")], None);
        tokio::time::advance(TIMEOUT + Duration::from_millis(1)).await;
        let connect = format!("/senseir/v1/actions/{}/connect", session.id);
        let r = send(&app, "POST", STD, &connect, Some("dev"), Body::empty()).await;
        assert_eq!(
            (r.status, &r.json["state"]),
            (StatusCode::CONFLICT, &json!("timed_out"))
        );
        let s = lr.get(&session.id).expect("session");
        assert_eq!(s.state, SessionState::TimedOut);
        assert!(s.reason.is_some_and(|r| r.contains("timed out")));
        // Its command is no longer delivered.
        let r = send(
            &app,
            "GET",
            STD,
            "/commands/cnc?hold=0",
            Some("dev"),
            Body::empty(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        // Device activity restarts the clock; silence ends a connected session too.
        let session = lr.start("dev", vec![dir("C:\\")], None);
        let actions = deliver(&app, STD, "dev", &session).await;
        let post = |what: &str, body: String| {
            let app = app.clone();
            let path = format!("{actions}/{what}");
            async move { send(&app, "POST", STD, &path, Some("dev"), body).await }
        };
        tokio::time::advance(TIMEOUT / 2).await;
        assert_eq!(post("connect", String::new()).await.status, StatusCode::OK);
        tokio::time::advance(TIMEOUT / 2).await;
        let result = json!({"index": 0, "status": "ok", "output": ""}).to_string();
        assert_eq!(post("results", result).await.status, StatusCode::OK);
        tokio::time::advance(TIMEOUT).await;
        assert_eq!(
            lr.get(&session.id).map(|s| s.state),
            Some(SessionState::Connected)
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let r = post("close", String::new()).await;
        assert_eq!(
            (r.status, &r.json["state"]),
            (StatusCode::CONFLICT, &json!("timed_out"))
        );
    }

    #[tokio::test]
    async fn gateway_probes_and_foreign_paths_still_answer() {
        let app = app();
        for (method, host, path) in [
            ("GET", STD, "/test"),
            ("GET", STD, "/commands/test"),
            ("HEAD", STD, "/commands/test"),
            ("GET", SL, "/edr/commands/test"),
        ] {
            let r = send(&app, method, host, path, None, Body::empty()).await;
            assert_eq!(r.status, StatusCode::OK, "{method} {host}{path}");
        }
        // HEAD cannot carry commands, so it must not take any.
        let lr = app.state().live_response();
        lr.start("d", vec![dir("C:\\")], None);
        let r = send(
            &app,
            "HEAD",
            STD,
            "/commands/cnc?hold=0",
            Some("d"),
            Body::empty(),
        )
        .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(lr.queued("d"), 1);
        // Each model polls at its own path.
        let r = send(
            &app,
            "GET",
            STD,
            "/edr/commands/cnc?hold=0",
            Some("d"),
            Body::empty(),
        )
        .await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::NOT_FOUND, &json!("wrong_path"))
        );
        let r = send(
            &app,
            "GET",
            SL,
            "/commands/cnc?hold=0",
            Some("d"),
            Body::empty(),
        )
        .await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::NOT_FOUND, &json!("wrong_path"))
        );
        // A streamlined family host that is not an EDR gateway.
        let other = "files.us.endpoint.security.microsoft.com";
        let r = send(
            &app,
            "GET",
            other,
            "/edr/commands/cnc?hold=0",
            Some("d"),
            Body::empty(),
        )
        .await;
        assert_eq!(
            (r.status, &r.json["error"]),
            (StatusCode::NOT_FOUND, &json!("not_a_gateway"))
        );
        assert!(app.state().devices().list().is_empty());
    }
}
