//! 1DS OneCollector ingestion (cyber data): `POST /OneCollector/1.0[/]` with Common Schema
//! events as a JSON stream (`application/x-json-stream`, what the JS SDK sends) or as Bond
//! CompactBinary records (`application/bond-compact-binary`, what the C++ SDK sends; see
//! [`crate::bond`]), plain, deflate (zlib or raw) or gzip.
//!
//! Every event of a body is either accepted (stored) or counted rejected, and the answer says
//! how many of each (`{"acc":N,"rej":M}`); a body refused as a whole (unsupported type or
//! encoding, too large, broken compression, malformed Bond) is counted too. Decompression stops at the
//! configured cap, so a small zip bomb costs at most that much memory.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use serde_json::{Value, json};

use super::cnc::MAX_DEVICE_ID;
use super::storage::{ReadError, declared_length, read_capped};
use super::{DEVICE_HEADER, probe};
use crate::State;
use crate::bond::{self, BondError};
use crate::store::events::{NewEvent, event_cost};

/// The most a body's parsed events may cost in memory ([`event_cost`]), as a multiple of the
/// body's size once decoded (its size as sent when it is not compressed): no single request
/// costs more than this many times its decoded size (or [`COST_FLOOR`], whichever is larger),
/// nor more than the event store's whole byte budget. Since a decoded body is capped at
/// `onecollector_max_decompressed`, one request costs at most
/// `min(byte budget, 64 × max_decompressed)` whatever its compression. Larger is refused whole
/// with 413 `body_too_costly`, counted in `bodies_too_costly` (and `bodies_rejected`).
///
/// Why 64: a line of `{}` (3 bytes with its newline) costs ≈ 130 bytes stored (≈ 45×), a
/// JSON array of zeros 16× (32× with its vector's spare capacity), the 1DS C++ SDK's Bond
/// batches ≈ 20–25× their decoded size (many small objects, each a whole B-tree node). Compressed
/// bodies cannot be held to a multiple of their compressed size: the SDK's own deflated batch of
/// 50 events costs 500× its 1 KB on the wire.
pub const COST_MULTIPLE: usize = 64;

/// The cost every body may reach whatever its size (so a tiny body is never refused for it).
pub const COST_FLOOR: usize = 64 * 1024;

/// The response header carrying error detail (1DS clients log it).
pub const COLLECTOR_ERROR_HEADER: &str = "collector-error";

/// Routes of the cyber-data hosts (`POST /OneCollector/1.0[/]`). `GET /ping` is left to the
/// catalog probe.
pub fn routes() -> Router<State> {
    Router::new()
        .route("/OneCollector/1.0", post(ingest))
        .route("/OneCollector/1.0/", post(ingest))
}

/// How a body is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Identity,
    /// `deflate`: zlib-wrapped per RFC 9110, but some clients send raw RFC 1951.
    Deflate,
    Gzip,
}

/// How the events of a body are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyFormat {
    /// One JSON object per line.
    JsonStream,
    /// Bond CompactBinary v1 `CsProtocol::Record`s back to back.
    Bond,
}

/// Why decoding a body failed.
#[derive(Debug)]
enum DecodeError {
    /// Inflated past the cap.
    TooLarge,
    /// Not valid data for the declared encoding.
    Bad(String),
    /// Not well-formed Bond.
    Bond(BondError),
    /// The parsed events would cost more than this many bytes of memory.
    TooCostly(usize),
}

/// A refusal of the whole body.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

async fn ingest(AxumState(state): AxumState<State>, req: Request) -> Response {
    let host = probe::request_host(&req).unwrap_or_default();
    let (parts, body) = req.into_parts();
    // Browsers put header values in the query (`?content-type=…&apikey=…`), keys any case.
    let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q): Query<HashMap<String, String>>| {
            q.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect()
        })
        .unwrap_or_default();
    let headers = &parts.headers;
    let config = state.config();
    let refuse_uncounted = |r: Refusal| {
        let body = json!({"acc": 0, "rej": 0, "error": r.code, "message": r.message});
        let mut response = (r.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(COLLECTOR_ERROR_HEADER, HeaderValue::from_static(r.code));
        response
    };
    let refuse = |r: Refusal| {
        state.events().count_body_rejected();
        let body = json!({"acc": 0, "rej": 0, "error": r.code, "message": r.message});
        let mut response = (r.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(COLLECTOR_ERROR_HEADER, HeaderValue::from_static(r.code));
        response
    };

    let format = match body_format(headers, &query) {
        Ok(f) => f,
        Err(r) => return refuse(r),
    };
    let encoding = match content_encoding(headers) {
        Ok(e) => e,
        Err(r) => return refuse(r),
    };
    let max_body = config.onecollector_max_body as u64;
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds {max_body} bytes as sent"),
        )
    };
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > max_body) {
        return refuse(too_large());
    }
    let raw = match read_capped(body, max_body, declared).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => return refuse(too_large()),
        Err(ReadError::Broken(detail)) => {
            return refuse(Refusal::new(
                StatusCode::BAD_REQUEST,
                "body_broken",
                format!("the request body could not be read: {detail}"),
            ));
        }
    };

    let device = headers
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(d) = device
        && d.len() > MAX_DEVICE_ID
    {
        return refuse(Refusal::new(
            StatusCode::BAD_REQUEST,
            "device_id_too_long",
            format!(
                "the {DEVICE_HEADER} header is {} bytes; at most {MAX_DEVICE_ID} are accepted",
                d.len()
            ),
        ));
    }
    // Shared by every event of the body: one allocation, not one per event.
    let device: Option<Arc<str>> = device.map(Arc::from);
    let host: Arc<str> = Arc::from(host);
    let key_tenant: Option<Arc<str>> = api_key_tenant(headers, &query).map(Arc::from);
    let shared_cost = host.len()
        + device.as_deref().map_or(0, str::len)
        + key_tenant.as_deref().map_or(0, str::len);
    let max_decompressed = config.onecollector_max_decompressed;
    let max_event = config.onecollector_max_event;
    let byte_budget = state.events().byte_budget();
    let received_ms = state.clock().now_ms();
    // Inflating and parsing megabytes is CPU work: keep it off the async workers.
    let parsed = tokio::task::spawn_blocking(move || {
        let text = decode(encoding, raw, max_decompressed)?;
        let max_cost = text
            .len()
            .saturating_mul(COST_MULTIPLE)
            .max(COST_FLOOR)
            .min(byte_budget);
        let mut total = shared_cost;
        let mut events = Vec::new();
        // Each event is costed as soon as it is parsed, so a costly body stops at the line
        // that passes the limit instead of being parsed whole first.
        let mut admit = |event: Value| -> Result<(), DecodeError> {
            let device_id = device
                .clone()
                .or_else(|| event_device(&event).map(Arc::from));
            let tenant = event_tenant(&event)
                .map(Arc::from)
                .or_else(|| key_tenant.clone());
            let name = event
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let own_device = if device.is_none() {
                device_id.as_deref().map_or(0, str::len)
            } else {
                0
            };
            let mut cost = event_cost(&name, tenant.as_deref(), &event) + own_device;
            if events.is_empty() {
                cost += shared_cost;
            }
            total = total.saturating_add(cost);
            if total > max_cost {
                return Err(DecodeError::TooCostly(max_cost));
            }
            events.push(NewEvent {
                cost,
                received_ms,
                device_id,
                tenant,
                name,
                host: host.clone(),
                event,
            });
            Ok(())
        };
        let rejected = match format {
            BodyFormat::JsonStream => parse_lines(&text, max_event, &mut admit)?,
            BodyFormat::Bond => {
                let body = bond::decode_records(&text, max_event).map_err(DecodeError::Bond)?;
                for record in body.records {
                    admit(record.event)?;
                }
                body.rejected
            }
        };
        Ok::<_, DecodeError>((events, rejected))
    })
    .await;
    let (events, rejected) = match parsed {
        Ok(Ok(p)) => p,
        Ok(Err(DecodeError::TooLarge)) => {
            return refuse(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "decompressed_too_large",
                format!("the body inflates beyond {max_decompressed} bytes"),
            ));
        }
        Ok(Err(DecodeError::Bond(e))) => {
            return refuse(Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad_bond",
                format!(
                    "the body is not well-formed Bond CompactBinary: at byte {} (after \
                     decompression), in {}: {}",
                    e.offset, e.field, e.reason
                ),
            ));
        }
        Ok(Err(DecodeError::TooCostly(limit))) => {
            state.events().count_body_too_costly();
            return refuse_uncounted(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_costly",
                format!(
                    "the body's events would take more than {limit} bytes of memory once \
                     parsed (at most {COST_MULTIPLE} times the body's decoded size, at least \
                     {COST_FLOOR}, never more than the event store's budget)"
                ),
            ));
        }
        Ok(Err(DecodeError::Bad(detail))) => {
            return refuse(Refusal::new(
                StatusCode::BAD_REQUEST,
                "bad_encoding",
                format!("the body is not valid {encoding:?} data: {detail}"),
            ));
        }
        Err(join) => {
            tracing::error!(error = %join, "OneCollector body decoding task failed");
            return refuse(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the body could not be decoded",
            ));
        }
    };
    let accepted = events.len();
    state.events().push_batch(events, rejected);
    let no_body = header_or_query(headers, &query, "noresponsebody")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if no_body {
        return StatusCode::OK.into_response();
    }
    (
        StatusCode::OK,
        axum::Json(json!({"acc": accepted, "rej": rejected})),
    )
        .into_response()
}

/// A header, else the query parameter of the same (lowercase) name.
fn header_or_query(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    name: &str,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.get(name).cloned())
}

/// Accepts the JSON stream types, Bond compact binary and no type at all; a browser's
/// `text/plain` (a CORS simple request) defers to the `content-type` query parameter.
fn body_format(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<BodyFormat, Refusal> {
    let essence = |v: &str| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    let from_header = headers
        .get(header::CONTENT_TYPE)
        // An unreadable header is not one of ours: refuse it rather than guess.
        .map(|v| v.to_str().map_or_else(|_| "?".to_owned(), essence));
    let effective = match from_header.as_deref() {
        None | Some("text/plain") => query
            .get("content-type")
            .map(|v| essence(v))
            .or(from_header),
        Some(_) => from_header,
    };
    match effective.as_deref() {
        None | Some("" | "application/x-json-stream" | "application/json") => {
            Ok(BodyFormat::JsonStream)
        }
        Some("application/bond-compact-binary") => Ok(BodyFormat::Bond),
        Some(other) => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!(
                "content type {other:?} is not served: the lab takes application/x-json-stream \
                 or application/bond-compact-binary"
            ),
        )),
    }
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, Refusal> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let value = value.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    match value.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "deflate" => Ok(Encoding::Deflate),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        other => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("content encoding {other:?} is not served (deflate, gzip or none)"),
        )),
    }
}

/// Decodes a body, producing at most `cap` bytes.
fn decode(encoding: Encoding, raw: Bytes, cap: usize) -> Result<Bytes, DecodeError> {
    // An empty body is no events whatever its declared encoding.
    if raw.is_empty() {
        return Ok(raw);
    }
    match encoding {
        Encoding::Identity if raw.len() > cap => Err(DecodeError::TooLarge),
        Encoding::Identity => Ok(raw),
        // The 1DS C++ SDK set to `http.contentEncoding = gzip` labels its gzip body `deflate`
        // (`HttpRequestEncoder.cpp` hard-codes the header; captured in
        // tests/fixtures/1ds-cpp/gzipcfg-kinds): the gzip magic says which it is.
        Encoding::Deflate if raw.starts_with(&[0x1f, 0x8b]) => gunzip(&raw, cap).map(Bytes::from),
        // RFC 9110 says zlib; some clients send raw deflate (the 1DS C++ SDK does). A valid
        // zlib stream is never valid raw deflate by accident and the zlib checksum catches the
        // converse.
        Encoding::Deflate => match inflate(&raw, true, cap) {
            Err(DecodeError::Bad(zlib)) => inflate(&raw, false, cap).map_err(|e| match e {
                DecodeError::Bad(deflate) => {
                    DecodeError::Bad(format!("not zlib ({zlib}) nor raw deflate ({deflate})"))
                }
                other => other,
            }),
            other => other,
        }
        .map(Bytes::from),
        Encoding::Gzip => gunzip(&raw, cap).map(Bytes::from),
    }
}

/// Inflates zlib (`zlib`) or raw deflate, stopping as soon as the output passes `cap`.
fn inflate(input: &[u8], zlib: bool, cap: usize) -> Result<Vec<u8>, DecodeError> {
    const STEP: usize = 64 * 1024;
    let mut d = Decompress::new(zlib);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() > cap {
            return Err(DecodeError::TooLarge);
        }
        if out.len() == out.capacity() {
            // Room for at most one byte past the cap: enough to know the cap was passed.
            out.reserve_exact(STEP.min(cap.saturating_add(1) - out.len()).max(1));
        }
        let consumed = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(rest, &mut out, FlushDecompress::None)
            .map_err(|e| DecodeError::Bad(e.to_string()))?;
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                let stuck = d.total_in() == in_before && d.total_out() == out_before;
                if stuck && out.len() < out.capacity() {
                    // Output room but no progress: the input ended before the stream did.
                    return Err(DecodeError::Bad("truncated stream".to_owned()));
                }
            }
        }
    }
    if out.len() > cap {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

/// Gunzips (every member), stopping as soon as the output passes `cap`.
fn gunzip(input: &[u8], cap: usize) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(input)
        .take((cap as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Bad(e.to_string()))?;
    if out.len() > cap {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

/// Splits a JSON stream into event objects, handing each to `admit` as soon as it is parsed
/// (which may stop the parse), and returns the count of rejected lines.
fn parse_lines(
    text: &[u8],
    max_event: usize,
    admit: &mut impl FnMut(Value) -> Result<(), DecodeError>,
) -> Result<u64, DecodeError> {
    // A UTF-8 byte order mark is not JSON; tolerate one at the start.
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut rejected = 0u64;
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.len() > max_event {
            rejected += 1;
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v @ Value::Object(_)) => admit(v)?,
            _ => rejected += 1,
        }
    }
    Ok(rejected)
}

/// The tenant of an event: its `iKey` (`o:<tenant>`, or an instrumentation key whose tenant is
/// the part before the first `-`).
fn event_tenant(event: &Value) -> Option<String> {
    let ikey = event.get("iKey")?.as_str()?.trim();
    let tenant = match ikey.strip_prefix("o:") {
        Some(t) => t,
        None => ikey.split('-').next().unwrap_or_default(),
    };
    (!tenant.is_empty()).then(|| tenant.to_owned())
}

/// The tenant from the API key header (or query): the first of comma-joined keys, up to `-`.
fn api_key_tenant(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    let key = header_or_query(headers, query, "apikey")
        .or_else(|| header_or_query(headers, query, "x-apikey"))?;
    let first = key.split(',').next().unwrap_or_default().trim();
    let tenant = first.split('-').next().unwrap_or_default();
    (!tenant.is_empty()).then(|| tenant.to_owned())
}

/// The device of an event: `ext.device.localId`, without its `s:`/`t:`/`a:`/`c:` kind prefix
/// (the 1DS C++ SDK on Linux sends `c:` and the machine id, newline included).
fn event_device(event: &Value) -> Option<String> {
    let id = event
        .get("ext")?
        .get("device")?
        .get("localId")?
        .as_str()?
        .trim();
    let id = ["s:", "t:", "a:", "c:"]
        .iter()
        .find_map(|p| id.strip_prefix(p))
        .unwrap_or(id);
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod cpp_sdk;

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use axum::http::Method;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use serde_json::json;

    use super::super::testkit::{Answer, app, app_with, send};
    use crate::config::ServiceConfig;
    use crate::routes::App;
    use crate::store::events::{EventFilter, EventStats};

    const HOST: &str = "us-v20.events.data.microsoft.com";
    const SL_HOST: &str = "eu-v20.events.endpoint.security.microsoft.com";
    const CT: (&str, &str) = ("content-type", "application/x-json-stream");

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn stream(n: usize) -> String {
        (0..n)
            .map(|i| {
                json!({"name": format!("Sense.E{i}"), "ver": "4.0", "iKey": "o:tenant1", "data": {"i": i}})
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn post(app: &App, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        send(app, Method::POST, HOST, path, headers, body).await
    }

    fn stats(app: &App) -> EventStats {
        app.state().events().stats()
    }

    #[tokio::test]
    async fn plain_stream_is_accepted_on_both_paths_and_hosts() {
        let app = app();
        let a = post(&app, "/OneCollector/1.0", &[CT], stream(3).into_bytes()).await;
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json(), json!({"acc": 3, "rej": 0}));
        let b = post(&app, "/OneCollector/1.0/", &[], stream(2).into_bytes()).await;
        assert_eq!(b.json(), json!({"acc": 2, "rej": 0}));
        let c = send(
            &app,
            Method::POST,
            SL_HOST,
            "/OneCollector/1.0/",
            &[("content-type", "application/json; charset=utf-8")],
            stream(1),
        )
        .await;
        assert_eq!(c.json(), json!({"acc": 1, "rej": 0}));
        let events = app.state().events().query(&EventFilter::default());
        assert_eq!(events.len(), 6);
        assert_eq!(events[0].seq, 1);
        assert_eq!(events[0].name, "Sense.E0");
        assert_eq!(&*events[0].host, HOST);
        assert_eq!(&*events[5].host, SL_HOST);
        assert_eq!(events[0].event["data"]["i"], 0);
        assert_eq!(stats(&app).accepted, 6);
    }

    #[tokio::test]
    async fn core_service_hosts_ingest_too() {
        let app = app();
        for host in [
            "mobile.events.data.microsoft.com",
            "self.events.data.microsoft.com",
        ] {
            let a = send(
                &app,
                Method::POST,
                host,
                "/OneCollector/1.0/",
                &[CT],
                stream(1),
            )
            .await;
            assert_eq!(a.json(), json!({"acc": 1, "rej": 0}), "{host}");
        }
    }

    #[tokio::test]
    async fn deflate_zlib_raw_and_gzip_are_accepted() {
        let app = app();
        let body = format!("{}\r\n\r\n", stream(4));
        for (encoding, data) in [
            ("deflate", zlib(body.as_bytes())),
            ("deflate", raw_deflate(body.as_bytes())),
            ("gzip", gzip(body.as_bytes())),
            ("identity", body.clone().into_bytes()),
        ] {
            let a = post(
                &app,
                "/OneCollector/1.0/",
                &[CT, ("content-encoding", encoding)],
                data,
            )
            .await;
            assert_eq!(a.status, 200, "{encoding}: {}", a.text());
            assert_eq!(a.json(), json!({"acc": 4, "rej": 0}), "{encoding}");
        }
        assert_eq!(stats(&app).accepted, 16);
    }

    #[tokio::test]
    async fn bad_lines_are_counted_rejected_never_dropped() {
        let app = app_with(ServiceConfig {
            onecollector_max_event: 100,
            ..ServiceConfig::default()
        });
        let long = json!({"name": "x".repeat(200)}).to_string();
        let body = format!(
            "{{\"name\":\"ok\"}}\nnot json\n[1,2]\n\"str\"\n{long}\n   \n{{\"name\":\"ok2\"}}\n{{\"truncated\":"
        );
        let a = post(&app, "/OneCollector/1.0", &[CT], body.into_bytes()).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json(), json!({"acc": 2, "rej": 5}));
        let s = stats(&app);
        assert_eq!((s.accepted, s.rejected, s.bodies_rejected), (2, 5, 0));
    }

    #[tokio::test]
    async fn broken_compression_is_a_counted_400() {
        let app = app();
        let good = zlib(stream(3).as_bytes());
        let truncated = good[..good.len() / 2].to_vec();
        let gz = gzip(stream(3).as_bytes());
        let gz_truncated = gz[..gz.len() - 6].to_vec();
        for (encoding, data) in [
            ("deflate", b"this is not deflate at all".to_vec()),
            ("deflate", truncated),
            ("gzip", b"not gzip".to_vec()),
            ("gzip", gz_truncated),
        ] {
            let a = post(
                &app,
                "/OneCollector/1.0/",
                &[CT, ("content-encoding", encoding)],
                data,
            )
            .await;
            assert_eq!(a.status, 400, "{encoding}: {}", a.text());
            assert_eq!(a.header("collector-error"), Some("bad_encoding"));
            let j = a.json();
            assert_eq!((j["acc"].clone(), j["rej"].clone()), (json!(0), json!(0)));
            assert_eq!(j["error"], "bad_encoding");
        }
        let s = stats(&app);
        assert_eq!((s.accepted, s.bodies_rejected), (0, 4));
    }

    #[tokio::test]
    async fn unsupported_encoding_and_type_are_415() {
        let app = app();
        let a = post(
            &app,
            "/OneCollector/1.0/",
            &[CT, ("content-encoding", "br")],
            stream(1).into_bytes(),
        )
        .await;
        assert_eq!(a.status, 415);
        assert_eq!(a.json()["error"], "unsupported_encoding");
        let b = post(
            &app,
            "/OneCollector/1.0/",
            &[("content-type", "application/x-protobuf")],
            vec![1, 2, 3],
        )
        .await;
        assert_eq!(b.status, 415);
        assert_eq!(b.json()["error"], "unsupported_content_type");
        assert_eq!(stats(&app).bodies_rejected, 2);
    }

    #[tokio::test]
    async fn browser_query_form_is_understood() {
        let app = app();
        let a = post(
            &app,
            "/OneCollector/1.0/?cors=true&content-type=application/x-json-stream&apikey=qtenant-abc-def",
            &[("content-type", "text/plain;charset=UTF-8")],
            br#"{"name":"web"}"#.to_vec(),
        )
        .await;
        assert_eq!(a.json(), json!({"acc": 1, "rej": 0}));
        let e = app.state().events().query(&EventFilter::default());
        assert_eq!(e[0].tenant.as_deref(), Some("qtenant"));
    }

    #[tokio::test]
    async fn no_response_body_is_honoured() {
        let app = app();
        let a = post(
            &app,
            "/OneCollector/1.0/",
            &[CT, ("NoResponseBody", "true")],
            stream(2).into_bytes(),
        )
        .await;
        assert_eq!(a.status, 200);
        assert!(a.body.is_empty());
        assert_eq!(stats(&app).accepted, 2);
    }

    #[tokio::test]
    async fn oversize_bodies_are_413_as_sent_and_decompressed() {
        let app = app_with(ServiceConfig {
            onecollector_max_body: 1000,
            onecollector_max_decompressed: 5000,
            ..ServiceConfig::default()
        });
        // Too large as sent (plain).
        let big = format!("{{\"name\":\"{}\"}}", "a".repeat(1200));
        let a = post(&app, "/OneCollector/1.0/", &[CT], big.into_bytes()).await;
        assert_eq!(a.status, 413);
        assert_eq!(a.header("collector-error"), Some("body_too_large"));
        // Small as sent, too large inflated: a zip bomb in miniature, every encoding.
        let bomb = format!("{{\"name\":\"{}\"}}", "a".repeat(100_000));
        for (encoding, data) in [
            ("deflate", zlib(bomb.as_bytes())),
            ("deflate", raw_deflate(bomb.as_bytes())),
            ("gzip", gzip(bomb.as_bytes())),
        ] {
            assert!(data.len() < 1000, "{encoding} bomb is {} bytes", data.len());
            let b = post(
                &app,
                "/OneCollector/1.0/",
                &[CT, ("content-encoding", encoding)],
                data,
            )
            .await;
            assert_eq!(b.status, 413, "{encoding}: {}", b.text());
            assert_eq!(b.json()["error"], "decompressed_too_large");
        }
        // Exactly at the decompressed cap is fine.
        let line = format!("{{\"name\":\"{}\"}}", "a".repeat(5000 - 11));
        assert_eq!(line.len(), 5000);
        let c = post(
            &app,
            "/OneCollector/1.0/",
            &[CT, ("content-encoding", "deflate")],
            zlib(line.as_bytes()),
        )
        .await;
        assert_eq!(c.json(), json!({"acc": 1, "rej": 0}));
        let s = stats(&app);
        assert_eq!((s.accepted, s.bodies_rejected), (1, 4));
    }

    #[tokio::test]
    async fn tenant_and_device_are_attributed() {
        let app = app();
        let body = [
            json!({"name": "a", "iKey": "o:ikeytenant", "ext": {"device": {"localId": "s:dev-ext"}}}),
            json!({"name": "b", "ext": {"device": {"localId": "t:dev-t"}}}),
            json!({"name": "c", "iKey": "instr-1234-5678"}),
            json!({"name": "d"}),
        ]
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
        // Without a device header and API key: from the events only.
        post(&app, "/OneCollector/1.0/", &[CT], body.clone().into_bytes()).await;
        // With both: the header device wins, the iKey wins over the API key.
        post(
            &app,
            "/OneCollector/1.0/",
            &[
                CT,
                ("msadeviceticket", "dev-header"),
                ("APIKey", "keytenant-aaaa-bbbb,other-cccc"),
            ],
            body.into_bytes(),
        )
        .await;
        let got: Vec<(String, Option<String>, Option<String>)> = app
            .state()
            .events()
            .query(&EventFilter::default())
            .into_iter()
            .map(|e| {
                let own = |v: Option<std::sync::Arc<str>>| v.as_deref().map(str::to_owned);
                (e.name, own(e.device_id), own(e.tenant))
            })
            .collect();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            got,
            [
                ("a".into(), s("dev-ext"), s("ikeytenant")),
                ("b".into(), s("dev-t"), None),
                ("c".into(), None, s("instr")),
                ("d".into(), None, None),
                ("a".into(), s("dev-header"), s("ikeytenant")),
                ("b".into(), s("dev-header"), s("keytenant")),
                ("c".into(), s("dev-header"), s("instr")),
                ("d".into(), s("dev-header"), s("keytenant")),
            ]
        );
        let by_device = app.state().events().query(&EventFilter {
            device: Some("dev-header".into()),
            tenant: Some("keytenant".into()),
            ..EventFilter::default()
        });
        assert_eq!(by_device.len(), 2);
        // The x-apikey spelling works too.
        let app = super::super::testkit::app();
        post(
            &app,
            "/OneCollector/1.0/",
            &[CT, ("x-apikey", "xk-1")],
            br#"{"name":"z"}"#.to_vec(),
        )
        .await;
        let e = app.state().events().query(&EventFilter::default());
        assert_eq!(e[0].tenant.as_deref(), Some("xk"));
    }

    #[tokio::test]
    async fn store_eviction_is_counted_through_the_route() {
        let app = app_with(ServiceConfig {
            event_capacity: 5,
            ..ServiceConfig::default()
        });
        let a = post(&app, "/OneCollector/1.0/", &[CT], stream(8).into_bytes()).await;
        assert_eq!(a.json(), json!({"acc": 8, "rej": 0}));
        let s = stats(&app);
        assert_eq!((s.accepted, s.evicted, s.held), (8, 3, 5));
        let newest = app.state().events().query(&EventFilter {
            limit: Some(2),
            ..EventFilter::default()
        });
        let names: Vec<&str> = newest.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Sense.E6", "Sense.E7"]);
    }

    #[tokio::test]
    async fn ping_stays_the_probe_and_get_is_not_ingestion() {
        let app = app();
        let ping = send(&app, Method::GET, HOST, "/ping", &[], "").await;
        assert_eq!(ping.status, 200);
        let get = send(&app, Method::GET, HOST, "/OneCollector/1.0/", &[], "").await;
        assert_eq!(get.status, 405);
        let root = send(&app, Method::GET, HOST, "/", &[], "").await;
        assert_eq!(root.status, 404);
        assert_eq!(
            stats(&app),
            EventStats {
                capacity: stats(&app).capacity,
                byte_budget: stats(&app).byte_budget,
                ..EventStats::default()
            }
        );
    }

    #[test]
    fn inflate_stops_at_the_cap() {
        let data = vec![0u8; 1_000_000];
        let z = zlib(&data);
        let r = super::inflate(&z, true, 999_999);
        assert!(matches!(r, Err(super::DecodeError::TooLarge)), "{r:?}");
        assert_eq!(
            super::inflate(&z, true, 1_000_000).unwrap().len(),
            1_000_000
        );
        assert!(matches!(
            super::inflate(&z, false, 1_000_000),
            Err(super::DecodeError::Bad(_))
        ));
    }

    /// A line of objects nested `depth` deep: ~6 bytes of text per level, each a whole B-tree
    /// node (> 600 bytes) once parsed.
    fn nested(depth: usize) -> String {
        format!("{}{{}}{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    }

    #[tokio::test]
    async fn a_long_device_header_is_a_counted_400() {
        let app = app();
        let long = "d".repeat(super::MAX_DEVICE_ID + 1);
        let a = post(
            &app,
            "/OneCollector/1.0",
            &[CT, (super::DEVICE_HEADER, &long)],
            b"{}\n".to_vec(),
        )
        .await;
        assert_eq!(a.status, 400, "{}", a.text());
        assert_eq!(a.json()["error"], "device_id_too_long");
        let s = stats(&app);
        assert_eq!((s.accepted, s.bodies_rejected, s.held), (0, 1, 0));
        let ok = "d".repeat(super::MAX_DEVICE_ID);
        let a = post(
            &app,
            "/OneCollector/1.0",
            &[CT, (super::DEVICE_HEADER, &ok)],
            b"{}\n".to_vec(),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text());
    }

    #[tokio::test]
    async fn events_share_the_device_and_host_of_their_body() {
        let app = app();
        let body = "{}\n".repeat(1_000);
        let a = post(
            &app,
            "/OneCollector/1.0",
            &[CT, (super::DEVICE_HEADER, "dev-shared")],
            body.clone().into_bytes(),
        )
        .await;
        assert_eq!(a.json(), json!({"acc": 1000, "rej": 0}));
        let held = app.state().events().query(&EventFilter::default());
        let (first, last) = (&held[0], &held[999]);
        assert!(std::sync::Arc::ptr_eq(&first.host, &last.host));
        assert!(std::sync::Arc::ptr_eq(
            first.device_id.as_ref().unwrap(),
            last.device_id.as_ref().unwrap()
        ));
        // The budget counts what the events cost parsed, not their 3 bytes of text each.
        let s = stats(&app);
        assert!(
            s.bytes >= 1_000 * std::mem::size_of::<crate::store::events::StoredEvent>(),
            "{s:?}"
        );
        assert!(s.bytes <= super::COST_MULTIPLE * body.len(), "{s:?}");
    }

    #[tokio::test]
    async fn a_body_costing_more_than_the_multiple_is_a_counted_413() {
        let app = app();
        let body = format!("{}\n", nested(50)).repeat(20);
        let a = post(&app, "/OneCollector/1.0", &[CT], body.clone().into_bytes()).await;
        assert_eq!(a.status, 413, "{}", a.text());
        assert_eq!(a.json()["error"], "body_too_costly");
        let s = stats(&app);
        assert_eq!(
            (s.accepted, s.held, s.bodies_rejected, s.bodies_too_costly),
            (0, 0, 1, 1)
        );
        // The same events one per body (each under the floor) are accepted and counted.
        let one = format!("{}\n", nested(50));
        let a = post(&app, "/OneCollector/1.0", &[CT], one.into_bytes()).await;
        assert_eq!(a.status, 200, "{}", a.text());
        // Compressed, the multiple applies to the inflated size: still refused.
        let a = post(
            &app,
            "/OneCollector/1.0",
            &[CT, ("content-encoding", "deflate")],
            zlib(body.as_bytes()),
        )
        .await;
        assert_eq!(a.json()["error"], "body_too_costly");
        assert_eq!(stats(&app).bodies_too_costly, 2);
    }

    #[tokio::test]
    async fn a_body_costing_more_than_the_whole_budget_is_refused() {
        let app = app_with(ServiceConfig {
            event_capacity_bytes: 20_000,
            ..ServiceConfig::default()
        });
        let a = post(&app, "/OneCollector/1.0", &[CT], stream(200).into_bytes()).await;
        assert_eq!(a.status, 413, "{}", a.text());
        assert_eq!(a.json()["error"], "body_too_costly");
        let a = post(&app, "/OneCollector/1.0", &[CT], stream(5).into_bytes()).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let s = stats(&app);
        assert!(s.bytes <= 20_000 && s.held == 5, "{s:?}");
    }
}
