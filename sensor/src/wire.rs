//! Every request the device sends, built in one place with the header names it speaks.
//!
//! The agent, the harness's certification and scenarios, and the benchmarks all call these
//! functions, so what the lab tests is what the emulated device sends. Names the cloud reads
//! too come from [`mdelab_catalog::protocol`]; the rest (the 1DS SDK version, the kill-token
//! answer headers) are the device's own and live here.
//!
//! - [`onecollector_post`]: a 1DS upload (`POST /OneCollector/1.0`) with `apikey`,
//!   `client-id: NO_AUTH`, `upload-time`, `sdk-version` and the device header; the body as JSON
//!   lines (zlib) or, as the native 1DS C++ SDK sends it, Bond `CsProtocol::Record`s (raw
//!   deflate) — [`UploadEncoding`]; the clock-skew header when the kill switch has one.
//! - [`blob_put`]: a SAS upload of a block blob, with its MD5.
//! - [`cnc_poll`]: the CnC long poll.
//! - [`live_response_action`]: one Live Response call (`connect`, `results`, `close`).
//! - [`probe`]: a catalog probe, optionally naming the device with [`with_device`].
//! - [`browse`]: the user's browser fetching a page (network protection's visits).

use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::HeaderName;
use mdelab_catalog::protocol::{
    APIKEY_HEADER, BLOB_TYPE_HEADER, BLOCK_BLOB, CLIENT_ID_HEADER, CLIENT_ID_NO_AUTH,
    CONTENT_MD5_HEADER, DEVICE_HEADER, SDK_VERSION_HEADER, UPLOAD_TIME_HEADER,
};

use crate::{HttpRequest, Target};

/// The SDK name and version the device reports in `sdk-version` and in each event's
/// `ext.sdk.ver`.
pub const SDK_VERSION: &str = "mdelab-sensor-1";

/// The 1DS collector's upload path (`vortexServerUrl` of an onboarding blob ends with it).
pub const ONECOLLECTOR_PATH: &str = "/OneCollector/1.0";

/// The content type of a 1DS batch: one JSON event per line.
pub const JSON_STREAM: &str = "application/x-json-stream";

/// The content type of a Bond batch (the 1DS C++ SDK's `HttpRequestEncoder.cpp`).
pub const BOND_COMPACT_BINARY: &str = "application/bond-compact-binary";

/// How a device writes its 1DS batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadEncoding {
    /// JSON lines (`application/x-json-stream`), zlib-deflated: what the JS SDK family sends.
    #[default]
    Json,
    /// Bond CompactBinary `CsProtocol::Record`s (`application/bond-compact-binary`), raw
    /// deflate: what the 1DS C++ SDK of a Windows sensor's native stack sends (captured in
    /// `mock-cloud/tests/fixtures/1ds-cpp`).
    Bond,
}

/// Adds the header the device identifies itself with (`msadeviceticket`).
pub fn with_device(request: HttpRequest, device_id: &str) -> HttpRequest {
    request.header(HeaderName::from_static(DEVICE_HEADER), device_id)
}

/// The `apikey` (tenant token) a device of `tenant` uploads with.
pub fn tenant_token(tenant: &str) -> String {
    format!("{tenant}-mdelab")
}

/// A 1DS batch body: the events as JSON lines, deflated (zlib), as the SDKs send it.
pub fn onecollector_body<'a>(events: impl IntoIterator<Item = &'a serde_json::Value>) -> Bytes {
    let mut lines = Vec::new();
    for event in events {
        let _ = serde_json::to_writer(&mut lines, event);
        lines.push(b'\n');
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    match encoder.write_all(&lines).and_then(|()| encoder.finish()) {
        Ok(compressed) => Bytes::from(compressed),
        // Compressing into memory does not fail; should it, the plain body is still valid 1DS.
        Err(_) => Bytes::from(lines),
    }
}

/// A 1DS upload of `events` for `tenant` from `device_id`, JSON lines (see
/// [`onecollector_upload`] for Bond and the clock-skew header).
pub fn onecollector_post<'a>(
    path: &str,
    tenant: &str,
    device_id: &str,
    events: impl IntoIterator<Item = &'a serde_json::Value>,
) -> HttpRequest {
    onecollector_upload(path, tenant, device_id, events, UploadEncoding::Json, None)
}

/// A 1DS upload of `events` for `tenant` from `device_id` in `encoding`, with
/// `time-delta-to-apply-millis` when `delta_to_apply` is given (see [`crate::kill_switch`]).
pub fn onecollector_upload<'a>(
    path: &str,
    tenant: &str,
    device_id: &str,
    events: impl IntoIterator<Item = &'a serde_json::Value>,
    encoding: UploadEncoding,
    delta_to_apply: Option<&str>,
) -> HttpRequest {
    let upload_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let (content_type, body) = match encoding {
        UploadEncoding::Json => (JSON_STREAM, onecollector_body(events)),
        UploadEncoding::Bond => (BOND_COMPACT_BINARY, bond_body(events)),
    };
    let mut request = HttpRequest::new(http::Method::POST, path)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_ENCODING, "deflate")
        .header(HeaderName::from_static(APIKEY_HEADER), tenant_token(tenant))
        .header(HeaderName::from_static(CLIENT_ID_HEADER), CLIENT_ID_NO_AUTH)
        .header(
            HeaderName::from_static(UPLOAD_TIME_HEADER),
            upload_time.to_string(),
        )
        .header(HeaderName::from_static(SDK_VERSION_HEADER), SDK_VERSION)
        .body(body);
    if let Some(delta) = delta_to_apply {
        request = request.header(
            HeaderName::from_static(crate::kill_switch::TIME_DELTA_TO_APPLY_HEADER),
            delta,
        );
    }
    with_device(request, device_id)
}

/// A Bond batch body: the events as `CsProtocol::Record`s, raw deflate (RFC 1951), as the 1DS
/// C++ SDK compresses it (its captures inflate only without a zlib header).
pub fn bond_body<'a>(events: impl IntoIterator<Item = &'a serde_json::Value>) -> Bytes {
    let records = crate::bond::encode_events(events);
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = encoder.write_all(&records);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// A SAS upload (`PUT`) of `content` as a block blob to `path_and_query` (the SAS URL's path
/// and query), with the content's MD5 so the storage checks it arrived whole.
pub fn blob_put(path_and_query: &str, device_id: &str, content: Bytes) -> HttpRequest {
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5_digest(&content));
    let request = HttpRequest::new(http::Method::PUT, path_and_query)
        .header(HeaderName::from_static(BLOB_TYPE_HEADER), BLOCK_BLOB)
        .header(HeaderName::from_static(CONTENT_MD5_HEADER), md5)
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .body(content);
    with_device(request, device_id)
}

/// The CnC long poll of `path` (`…/commands/cnc`) asking the gateway to hold it `hold`; the
/// exchange may take the hold plus 10 s.
pub fn cnc_poll(path: &str, hold: Duration, device_id: &str) -> HttpRequest {
    let request = HttpRequest::new(http::Method::GET, format!("{path}?hold={}", hold.as_secs()))
        .timeout(hold + Duration::from_secs(10));
    with_device(request, device_id)
}

/// One Live Response call: `POST` of `body` (JSON) to `path` (the session's actions URL path
/// plus `/connect`, `/results` or `/close`).
pub fn live_response_action(path: &str, device_id: &str, body: &serde_json::Value) -> HttpRequest {
    let request = HttpRequest::new(http::Method::POST, path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    with_device(request, device_id)
}

/// The catalog probe of `target` (its method and path, no body).
pub fn probe(target: &Target) -> HttpRequest {
    let method =
        http::Method::from_bytes(target.method.as_str().as_bytes()).unwrap_or(http::Method::GET);
    HttpRequest::new(method, target.path.clone())
}

/// The user's browser fetching `path` (a `GET` with no body), as network protection sees it.
pub fn browse(path: &str) -> HttpRequest {
    HttpRequest::new(http::Method::GET, path)
}

fn md5_digest(data: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(data).into()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn onecollector_post_carries_the_sdk_headers_and_a_deflated_batch() {
        let events = [
            serde_json::json!({"name": "A"}),
            serde_json::json!({"name": "B"}),
        ];
        let request = onecollector_post("/OneCollector/1.0", "org1", "dev1", &events);
        assert_eq!(request.method, http::Method::POST);
        assert_eq!(header(&request, APIKEY_HEADER), Some("org1-mdelab"));
        assert_eq!(header(&request, CLIENT_ID_HEADER), Some(CLIENT_ID_NO_AUTH));
        assert_eq!(header(&request, SDK_VERSION_HEADER), Some(SDK_VERSION));
        assert_eq!(header(&request, DEVICE_HEADER), Some("dev1"));
        assert_eq!(header(&request, "content-encoding"), Some("deflate"));
        let millis: u128 = header(&request, UPLOAD_TIME_HEADER)
            .unwrap()
            .parse()
            .unwrap();
        assert!(millis > 1_600_000_000_000, "{millis}");
        let mut text = String::new();
        flate2::read::ZlibDecoder::new(&request.body[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"name\":\"A\"}\n{\"name\":\"B\"}\n");
    }

    #[test]
    fn blob_put_names_a_block_blob_and_its_md5() {
        let request = blob_put("/c/b?sig=x", "dev1", Bytes::from_static(b"hello"));
        assert_eq!(request.method, http::Method::PUT);
        assert_eq!(request.path, "/c/b?sig=x");
        assert_eq!(header(&request, BLOB_TYPE_HEADER), Some(BLOCK_BLOB));
        // MD5("hello"), base64.
        assert_eq!(
            header(&request, CONTENT_MD5_HEADER),
            Some("XUFAKrxLKna5cZ2REBfFkg==")
        );
        assert_eq!(header(&request, DEVICE_HEADER), Some("dev1"));
    }

    #[test]
    fn cnc_poll_asks_for_its_hold_and_waits_beyond_it() {
        let request = cnc_poll("/commands/cnc", Duration::from_secs(30), "dev1");
        assert_eq!(request.path, "/commands/cnc?hold=30");
        assert_eq!(request.timeout, Duration::from_secs(40));
        assert_eq!(header(&request, DEVICE_HEADER), Some("dev1"));
    }

    #[test]
    fn live_response_action_posts_json() {
        let request = live_response_action("/lr/s1/connect", "dev1", &serde_json::json!({}));
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(&request.body[..], b"{}");
        assert_eq!(header(&request, DEVICE_HEADER), Some("dev1"));
    }

    #[test]
    fn a_bond_upload_is_raw_deflated_records_with_the_bond_type() {
        let event = serde_json::json!({"ver": "4.0", "name": "e", "data": {"n": 1}});
        let request = onecollector_upload(
            "/OneCollector/1.0",
            "org1",
            "dev1",
            [&event],
            UploadEncoding::Bond,
            Some("use-collector-delta"),
        );
        assert_eq!(header(&request, "content-type"), Some(BOND_COMPACT_BINARY));
        assert_eq!(
            header(&request, "time-delta-to-apply-millis"),
            Some("use-collector-delta")
        );
        let mut records = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::DeflateDecoder::new(&request.body[..]),
            &mut records,
        )
        .expect("raw deflate");
        assert_eq!(records, crate::bond::encode_events([&event]));
    }
}
