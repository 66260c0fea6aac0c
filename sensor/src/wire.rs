//! Every request the device sends, built in one place with the header names it speaks.
//!
//! The agent, the harness's certification and scenarios, and the benchmarks all call these
//! functions, so what the lab tests is what the emulated device sends. Names the cloud reads
//! too come from [`mdelab_catalog::protocol`]; the rest (the 1DS SDK version, the kill-token
//! answer headers) are the device's own and live here.
//!
//! - [`onecollector_post`]: a 1DS upload (`POST /OneCollector/1.0`): JSON lines, deflated, with
//!   `apikey`, `client-id: NO_AUTH`, `upload-time`, `sdk-version` and the device header.
//! - [`blob_put`]: a SAS upload of a block blob, with its MD5.
//! - [`cnc_poll`]: the CnC long poll.
//! - [`live_response_action`]: one Live Response call (`connect`, `results`, `close`).
//! - [`probe`]: a catalog probe, optionally naming the device with [`with_device`].
//! - [`browse`]: the user's browser fetching a page (network protection's visits).
//! - [`kill_pause`]: how the collector's kill-tokens answer pauses a tenant's uploads.

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

/// The collector's answer header naming tenants whose uploads must pause.
const KILL_TOKENS_HEADER: &str = "kill-tokens";

/// The collector's answer header saying how long (seconds, or `this-request-only`).
const KILL_DURATION_HEADER: &str = "kill-duration";

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

/// A 1DS upload of `events` to the collector path `path` (`/OneCollector/1.0`) for a device of
/// `tenant`: deflated JSON lines with the tenant token, anonymous client authentication, the
/// upload time and the SDK version.
pub fn onecollector_post<'a>(
    path: &str,
    tenant: &str,
    device_id: &str,
    events: impl IntoIterator<Item = &'a serde_json::Value>,
) -> HttpRequest {
    let upload_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let request = HttpRequest::new(http::Method::POST, path)
        .header(http::header::CONTENT_TYPE, JSON_STREAM)
        .header(http::header::CONTENT_ENCODING, "deflate")
        .header(HeaderName::from_static(APIKEY_HEADER), tenant_token(tenant))
        .header(HeaderName::from_static(CLIENT_ID_HEADER), CLIENT_ID_NO_AUTH)
        .header(
            HeaderName::from_static(UPLOAD_TIME_HEADER),
            upload_time.to_string(),
        )
        .header(HeaderName::from_static(SDK_VERSION_HEADER), SDK_VERSION)
        .body(onecollector_body(events));
    with_device(request, device_id)
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

/// How long the collector's kill-tokens answer pauses `tenant`'s uploads: `None` when the
/// answer does not name the tenant, zero for `this-request-only`.
pub fn kill_pause(headers: &http::HeaderMap, tenant: &str) -> Option<Duration> {
    let tokens = headers.get(KILL_TOKENS_HEADER)?.to_str().ok()?;
    let ours = tokens.split(',').any(|t| {
        let t = t.trim();
        t == tenant || t.split('-').next() == Some(tenant) || t == "*"
    });
    if !ours {
        return None;
    }
    let duration = headers
        .get(KILL_DURATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0");
    Some(match duration.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        // `this-request-only`: nothing to pause.
        Err(_) => Duration::ZERO,
    })
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
    fn kill_tokens_pause_only_our_tenant() {
        let mut headers = http::HeaderMap::new();
        headers.insert("kill-tokens", "other-token, org1-abc".parse().unwrap());
        headers.insert("kill-duration", "30".parse().unwrap());
        assert_eq!(kill_pause(&headers, "org1"), Some(Duration::from_secs(30)));
        assert_eq!(kill_pause(&headers, "org2"), None);
        headers.insert("kill-duration", "this-request-only".parse().unwrap());
        assert_eq!(kill_pause(&headers, "org1"), Some(Duration::ZERO));
    }
}
