//! Cloud protection (MAPS) reports and the settings/ECS configuration documents.
//!
//! MAPS: the four report flavours Defender speaks (REST JSON, SOAP, Bond, the cross-platform
//! broker) each take a report (at most [`MAX_REPORT_BYTES`]) and answer a fixed verdict:
//! `clean`, or `malware` (`Virus:DOS/EICAR_Test_File`) when the report contains the EICAR
//! marker. The request journal records every report; there are no separate counters.
//!
//! Only `POST` is taken over on the report paths: every other method falls through to the
//! catalog probe (`GET /api/report` → `200 OK`), so connectivity probes answer as before.

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};

use super::probe;
use super::storage::{ReadError, declared_length, read_capped, xml_escape};
use crate::State;

/// Largest report body accepted, in bytes; larger gets 413.
pub const MAX_REPORT_BYTES: u64 = 1024 * 1024;

/// The marker that makes a report a detection (from the EICAR anti-malware test file).
pub const EICAR_MARKER: &[u8] = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE";

/// The threat name given to EICAR, as Defender names it.
pub const EICAR_THREAT: &str = "Virus:DOS/EICAR_Test_File";

/// The content type of Bond compact-binary bodies.
pub const BOND_CONTENT_TYPE: &str = "application/bond-compact-binary";

/// How long clients may cache the ECS and settings documents, in seconds.
const REFRESH_SECONDS: u64 = 3600;

/// Routes of the MAPS hosts (`*.cp.wd…`, `mdav.*`, `x.cp.wd…`).
pub fn routes() -> Router<State> {
    let mut router = Router::new();
    for prefix in ["", "/mdav"] {
        // The reference spells the Bond path both `submitReport` and `submitreport` (S10, S11).
        for name in ["submitReport", "submitreport"] {
            router = router
                .route(&format!("{prefix}/wdcp.svc/{name}"), report(rest))
                .route(&format!("{prefix}/wdcp.svc/bond/{name}"), report(bond));
        }
        router = router.route(&format!("{prefix}/WdCpSrvc.asmx"), report(soap));
    }
    router
        .route("/api/report", report(xplat))
        .route("/xplat/api/report", report(xplat))
}

/// Routes of the settings/ECS hosts: ECS configuration (`ecs.office.com`, `mdav…/ecs`) and
/// `settings-win` documents.
pub fn settings_routes() -> Router<State> {
    Router::new()
        .route(
            "/config/v1/MicrosoftWindowsDefenderClient/{version}",
            get(ecs),
        )
        .route(
            "/ecs/config/v1/MicrosoftWindowsDefenderClient/{version}",
            get(ecs),
        )
        .route("/settings/v2.0/{*path}", get(settings))
}

/// A report route: `POST` to `handler`, any other method to the catalog probe (or 404).
fn report<H, T>(handler: H) -> MethodRouter<State>
where
    H: axum::handler::Handler<T, State>,
    T: 'static,
{
    post(handler).fallback(probe::answer)
}

/// What the lab decided about a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Clean,
    Malware,
}

impl Verdict {
    fn of(report: &[u8]) -> Self {
        if report
            .windows(EICAR_MARKER.len())
            .any(|w| w == EICAR_MARKER)
        {
            Self::Malware
        } else {
            Self::Clean
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Malware => "malware",
        }
    }

    fn threat(self) -> Option<&'static str> {
        match self {
            Self::Clean => None,
            Self::Malware => Some(EICAR_THREAT),
        }
    }
}

/// Reads a report body; `Err` is the answer to give instead.
async fn read_report(req: Request) -> Result<(Verdict, String), Response> {
    let declared = declared_length(req.headers());
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "report_too_large",
            &format!("a report is at most {MAX_REPORT_BYTES} bytes"),
        )
    };
    if declared.is_some_and(|n| n > MAX_REPORT_BYTES) {
        return Err(too_large());
    }
    match read_capped(req.into_body(), MAX_REPORT_BYTES, declared).await {
        Ok(body) => Ok((Verdict::of(&body), report_id())),
        Err(ReadError::TooLarge) => Err(too_large()),
        Err(ReadError::Broken(detail)) => Err(error(
            StatusCode::BAD_REQUEST,
            "body_broken",
            &format!("the report could not be read: {detail}"),
        )),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "message": message})),
    )
        .into_response()
}

/// A random UUID-shaped report id (version 4 layout).
fn report_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn verdict_json(verdict: Verdict, id: &str) -> Value {
    let mut v = json!({"verdict": verdict.name(), "reportId": id, "engine": "mdelab"});
    if let Some(threat) = verdict.threat() {
        v["threatName"] = json!(threat);
    }
    v
}

/// `POST …/wdcp.svc/submitReport`: a JSON report, a JSON verdict.
async fn rest(req: Request) -> Response {
    match read_report(req).await {
        Ok((verdict, id)) => axum::Json(verdict_json(verdict, &id)).into_response(),
        Err(response) => response,
    }
}

/// `POST /api/report`, `/xplat/api/report`: the cross-platform broker, JSON both ways.
async fn xplat(req: Request) -> Response {
    rest(req).await
}

/// `POST …/WdCpSrvc.asmx`: a SOAP report, a SOAP envelope with a `SubmitSpynetReportResult`.
async fn soap(req: Request) -> Response {
    let (verdict, id) = match read_report(req).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let threat = verdict
        .threat()
        .map(|t| format!("<ThreatName>{}</ThreatName>", xml_escape(t)))
        .unwrap_or_default();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\
         <soap:Body><SubmitSpynetReportResponse xmlns=\"http://tempuri.org/\">\
         <SubmitSpynetReportResult><Verdict>{}</Verdict>{threat}<ReportId>{id}</ReportId>\
         <Engine>mdelab</Engine></SubmitSpynetReportResult></SubmitSpynetReportResponse>\
         </soap:Body></soap:Envelope>",
        verdict.name()
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `POST …/wdcp.svc/bond/submitReport`: opaque bytes in, a small Bond compact-binary (v1)
/// struct out: `{1: string verdict, 2: string reportId, 3: string threatName (malware only)}`.
async fn bond(req: Request) -> Response {
    let (verdict, id) = match read_report(req).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let mut out = Vec::new();
    bond_string(&mut out, 1, verdict.name());
    bond_string(&mut out, 2, &id);
    if let Some(threat) = verdict.threat() {
        bond_string(&mut out, 3, threat);
    }
    out.push(BT_STOP);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, BOND_CONTENT_TYPE)],
        out,
    )
        .into_response()
}

/// Bond type ids.
const BT_STOP: u8 = 0;
const BT_STRING: u8 = 9;

/// Appends a compact-binary string field (ids up to 5 fit in the header byte).
fn bond_string(out: &mut Vec<u8>, id: u8, value: &str) {
    out.push((id << 5) | BT_STRING);
    let mut len = value.len();
    // Unsigned LEB128 length.
    loop {
        let byte = u8::try_from(len & 0x7f).unwrap_or(0);
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(value.as_bytes());
}

/// An ECS-like configuration document for the Defender client.
async fn ecs(Path(version): Path<String>, headers: HeaderMap) -> Response {
    let document = json!({
        "ECS": {"CacheExpiryInSeconds": REFRESH_SECONDS},
        "MicrosoftWindowsDefenderClient": {
            "Version": version,
            "CloudProtection": {"Enabled": true, "BlockLevel": "High", "ExtendedTimeoutSeconds": 10},
            "SampleSubmission": "SendSafeSamples",
            "NetworkProtection": {"Reputation": true},
            "EdrInBlockMode": false,
            "TamperProtection": true,
            "Lab": "mdelab",
        },
        "ConfigIDs": {"MicrosoftWindowsDefenderClient": "P-D-mdelab-1"},
        "RefreshInterval": REFRESH_SECONDS,
    });
    cacheable(document, &headers)
}

/// A `settings-win` settings document.
async fn settings(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let document = json!({
        "settings": {
            "UploadEnabled": "true",
            "SampleRate": "100",
            "Lab": "mdelab",
        },
        "path": path,
        "refreshInterval": REFRESH_SECONDS,
    });
    cacheable(document, &headers)
}

/// Adds a content-derived `ETag` (in the document and as a header) and answers 304 to a
/// matching `If-None-Match`, as configuration clients poll.
fn cacheable(mut document: Value, headers: &HeaderMap) -> Response {
    let digest = ring::digest::digest(&ring::digest::SHA256, document.to_string().as_bytes());
    let etag = format!("\"{}\"", hex::encode(&digest.as_ref()[..8]));
    document["ETag"] = json!(etag);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let status = if matches {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = if matches {
        status.into_response()
    } else {
        (status, axum::Json(document)).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("max-age={REFRESH_SECONDS}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};
    use serde_json::json;

    use super::super::testkit::{Answer, app, send};
    use super::*;
    use crate::routes::App;
    use mdelab_catalog::{ProbeMethod, Scheme, Service};

    const CP: &str = "unitedstates.cp.wd.microsoft.com";
    const XCP: &str = "unitedstates.x.cp.wd.microsoft.com";
    const MDAV: &str = "mdav.us.endpoint.security.microsoft.com";
    const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    async fn post(app: &App, host: &str, path: &str, body: &str) -> Answer {
        send(app, Method::POST, host, path, &[], body.to_owned()).await
    }

    #[tokio::test]
    async fn rest_and_xplat_reports_get_a_json_verdict() {
        let app = app();
        for (host, path) in [
            (CP, "/wdcp.svc/submitReport"),
            (MDAV, "/mdav/wdcp.svc/submitReport"),
            (XCP, "/api/report"),
            (MDAV, "/xplat/api/report"),
        ] {
            let clean = post(&app, host, path, r#"{"file":"notepad.exe"}"#).await;
            assert_eq!(clean.status, StatusCode::OK, "{host}{path}");
            let j = clean.json();
            assert_eq!(j["verdict"], "clean", "{host}{path}");
            assert_eq!(j["engine"], "mdelab");
            assert!(j.get("threatName").is_none());
            let id = j["reportId"].as_str().unwrap_or_default();
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(id.matches('-').count(), 4, "{id}");
            let bad = post(&app, host, path, &json!({"content": EICAR}).to_string()).await;
            let j = bad.json();
            assert_eq!(j["verdict"], "malware", "{host}{path}");
            assert_eq!(j["threatName"], EICAR_THREAT);
        }
    }

    #[tokio::test]
    async fn soap_reports_get_a_soap_envelope() {
        let app = app();
        for (host, path) in [(CP, "/WdCpSrvc.asmx"), (MDAV, "/mdav/WdCpSrvc.asmx")] {
            let a = post(&app, host, path, "<soap:Envelope>report</soap:Envelope>").await;
            assert_eq!(a.status, StatusCode::OK, "{host}{path}");
            assert_eq!(a.header("content-type"), Some("text/xml; charset=utf-8"));
            let text = a.text();
            assert!(text.starts_with("<?xml"), "{text}");
            assert!(
                text.contains("<SubmitSpynetReportResult><Verdict>clean</Verdict><ReportId>"),
                "{text}"
            );
            let m = post(&app, host, path, &format!("<Report>{EICAR}</Report>")).await;
            assert!(
                m.text().contains(
                    "<Verdict>malware</Verdict><ThreatName>Virus:DOS/EICAR_Test_File</ThreatName>"
                ),
                "{}",
                m.text()
            );
        }
    }

    #[tokio::test]
    async fn bond_reports_get_compact_binary_bytes() {
        let app = app();
        for (host, path) in [
            (CP, "/wdcp.svc/bond/submitReport"),
            (CP, "/wdcp.svc/bond/submitreport"),
            (MDAV, "/mdav/wdcp.svc/bond/submitReport"),
            (MDAV, "/mdav/wdcp.svc/bond/submitreport"),
        ] {
            let a = send(
                &app,
                Method::POST,
                host,
                path,
                &[("content-type", BOND_CONTENT_TYPE)],
                vec![0x29u8, 0x01, 0x00],
            )
            .await;
            assert_eq!(a.status, StatusCode::OK, "{host}{path}");
            assert_eq!(a.header("content-type"), Some(BOND_CONTENT_TYPE));
            // Field 1 (string) "clean", field 2 (string) a 36-character id, stop.
            assert_eq!(&a.body[..7], b"\x29\x05clean");
            assert_eq!(&a.body[7..9], &[0x49, 36]);
            assert_eq!(a.body.len(), 9 + 36 + 1);
            assert_eq!(a.body.last(), Some(&0));
            let m = send(&app, Method::POST, host, path, &[], EICAR).await;
            assert_eq!(&m.body[..9], b"\x29\x07malware");
            let threat = [&[0x69u8, 25][..], EICAR_THREAT.as_bytes(), &[0]].concat();
            assert!(m.body.ends_with(&threat), "{:?}", m.body);
        }
    }

    #[tokio::test]
    async fn oversize_reports_are_413() {
        let app = app();
        let big = "a".repeat(usize::try_from(MAX_REPORT_BYTES).unwrap() + 1);
        for (host, path) in [
            (CP, "/wdcp.svc/submitReport"),
            (CP, "/WdCpSrvc.asmx"),
            (CP, "/wdcp.svc/bond/submitReport"),
            (XCP, "/api/report"),
        ] {
            let a = post(&app, host, path, &big).await;
            assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{host}{path}");
            assert_eq!(a.json()["error"], "report_too_large");
        }
        let exact = "a".repeat(usize::try_from(MAX_REPORT_BYTES).unwrap());
        assert_eq!(post(&app, XCP, "/api/report", &exact).await.status, 200);
    }

    #[tokio::test]
    async fn other_methods_on_report_paths_fall_through_to_the_probes() {
        let app = app();
        for (method, host, path, status, body) in [
            (Method::GET, XCP, "/api/report", 200, "OK"),
            (Method::HEAD, XCP, "/api/report", 200, ""),
            (Method::GET, MDAV, "/xplat/api/report", 200, "OK"),
            (Method::GET, MDAV, "/mdav/test", 404, ""),
            (Method::GET, CP, "/wdcp.svc/bond/submitReport/test", 404, ""),
            (Method::GET, CP, "/wdcp.svc/bond/submitReport", 404, ""),
            (Method::GET, CP, "/WdCpSrvc.asmx", 404, ""),
            (Method::PUT, XCP, "/api/report", 405, ""),
        ] {
            let a = send(&app, method.clone(), host, path, &[], "").await;
            assert_eq!(a.status, status, "{method} {host}{path}");
            assert_eq!(a.text(), body, "{method} {host}{path}");
        }
    }

    #[tokio::test]
    async fn ecs_and_settings_documents_are_served_with_etags() {
        let app = app();
        for (host, path) in [
            (
                "ecs.office.com",
                "/config/v1/MicrosoftWindowsDefenderClient/1.0.0.0",
            ),
            (
                "ecs.office.com",
                "/config/v1/MicrosoftWindowsDefenderClient/4.18.2111.5?os=10.0",
            ),
            (
                MDAV,
                "/ecs/config/v1/MicrosoftWindowsDefenderClient/1.0.0.0",
            ),
        ] {
            let a = send(&app, Method::GET, host, path, &[], "").await;
            assert_eq!(a.status, StatusCode::OK, "{host}{path}");
            let j = a.json();
            assert_eq!(j["RefreshInterval"], REFRESH_SECONDS);
            assert_eq!(
                j["MicrosoftWindowsDefenderClient"]["CloudProtection"]["Enabled"],
                true
            );
            let etag = a.header("etag").expect("etag").to_owned();
            assert_eq!(j["ETag"], etag.as_str());
            let again = send(
                &app,
                Method::GET,
                host,
                path,
                &[("if-none-match", &etag)],
                "",
            )
            .await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED);
            assert!(again.body.is_empty());
        }
        let v1 = send(
            &app,
            Method::GET,
            "ecs.office.com",
            "/config/v1/MicrosoftWindowsDefenderClient/1",
            &[],
            "",
        )
        .await;
        let v2 = send(
            &app,
            Method::GET,
            "ecs.office.com",
            "/config/v1/MicrosoftWindowsDefenderClient/2",
            &[],
            "",
        )
        .await;
        assert_ne!(v1.header("etag"), v2.header("etag"));
        let s = send(
            &app,
            Method::GET,
            "settings-win.data.microsoft.com",
            "/settings/v2.0/telemetry/UTC?os=Windows",
            &[],
            "",
        )
        .await;
        assert_eq!(s.status, StatusCode::OK);
        let j = s.json();
        assert_eq!(j["settings"]["Lab"], "mdelab");
        assert_eq!(j["path"], "telemetry/UTC");
        // The settings host root keeps its catalog answer.
        let root = send(
            &app,
            Method::GET,
            "settings-win.data.microsoft.com",
            "/",
            &[],
            "",
        )
        .await;
        assert_eq!(root.status, StatusCode::NOT_FOUND);
    }

    /// Every catalog probe of the hosts the data plane serves still answers exactly as the
    /// catalog says, through the real dispatcher (so merged routers that shadowed a probe, or
    /// collided, would show here).
    #[tokio::test]
    async fn every_data_plane_catalog_probe_still_answers_exactly() {
        let app = app();
        let services = [
            Service::CyberData,
            Service::SampleUpload,
            Service::AutoIr,
            Service::CloudProtection,
            Service::Updates,
            Service::CoreService,
            Service::Telemetry,
        ];
        let mut checked = 0;
        for e in app.state().catalog().endpoints() {
            if e.scheme != Scheme::Https || !services.contains(&e.service) {
                continue;
            }
            let method = match e.probe.method {
                ProbeMethod::Get => Method::GET,
                ProbeMethod::Head => Method::HEAD,
                ProbeMethod::Post => Method::POST,
            };
            let a = send(&app, method.clone(), &e.host, &e.probe.path, &[], "").await;
            assert_eq!(a.status.as_u16(), e.probe.status, "{method} {}", e.url());
            if let Some(body) = e.probe.body
                && method != Method::HEAD
            {
                assert_eq!(a.text(), body, "{}", e.url());
            }
            // Whoever answers GET answers HEAD with the same status.
            if method == Method::GET {
                let h = send(&app, Method::HEAD, &e.host, &e.probe.path, &[], "").await;
                assert_eq!(h.status.as_u16(), e.probe.status, "HEAD {}", e.url());
            }
            checked += 1;
        }
        assert!(checked > 100, "only {checked} probes checked");
    }
}
