//! Blob storage: SAS-authorised block-blob uploads and downloads, on `<account>.blob.core.windows.net`
//! hosts (account from the host) and on the streamlined gateways' `/storage/<account>/…` paths.
//!
//! The SAS scheme is the lab's own, shaped like Azure's but much simpler (see PROTOCOL.md):
//! `sig` = base64(HMAC-SHA256(storage key, "<account>\n/<container>/<blob>\n<se>\n<sp>")), with
//! `se` in Unix seconds. Errors are Azure-style XML with the Azure error codes clients know.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use md5::{Digest as _, Md5};
use ring::hmac;

use super::{DEVICE_HEADER, probe};
use crate::State;
use crate::store::blobs::{Reservation, StoredBlob};

/// The `sv` the lab's SAS tokens carry. It is not checked (any `sv` is accepted): it is there
/// because Azure clients expect one.
pub const SAS_VERSION: &str = "2022-11-02";

/// Routes of `<account>.blob.core.windows.net` hosts (account from the host).
///
/// The account root (`/`) is deliberately not routed: the catalog probe answers it (400).
pub fn blob_routes() -> Router<State> {
    Router::new().route(
        "/{container}/{*blob}",
        put(on_blob_host).get(on_blob_host).head(on_blob_host),
    )
}

/// Routes of the streamlined gateways' `/storage/<account>/…` paths.
pub fn gateway_routes() -> Router<State> {
    Router::new()
        .route(
            "/storage/{account}/{container}/{*blob}",
            put(on_gateway).get(on_gateway).head(on_gateway),
        )
        .route("/storage/{account}", any(account_root))
        .route("/storage/{account}/", any(account_root))
}

/// Signs a SAS for one blob; returns the query string `sv=…&se=…&sp=…&sig=…` (percent-encoded,
/// ready to append after `?`).
///
/// `permissions` is any combination of `r` (read), `c` (create a new blob), `w` (write, also
/// overwrite).
pub fn sign_sas(
    key: &[u8; 32],
    account: &str,
    container: &str,
    blob: &str,
    expiry_unix: u64,
    permissions: &str,
) -> String {
    let sig = signature(key, account, container, blob, expiry_unix, permissions);
    format!(
        "sv={SAS_VERSION}&se={expiry_unix}&sp={}&sig={}",
        encode_component(permissions),
        encode_component(&sig)
    )
}

/// A full upload/download URL for one blob, valid for `ttl` from now, signed with the state's
/// storage key. `base` is the account's base URL: `https://<account>.blob.core.windows.net` or
/// `https://<gateway>/storage/<account>` (a trailing `/` is ignored).
pub fn sas_url(
    state: &State,
    base: &str,
    account: &str,
    container: &str,
    blob: &str,
    ttl: Duration,
    permissions: &str,
) -> String {
    // Round up so that a sub-second TTL still yields a usable token.
    let ttl_secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let expiry = state.clock().now_unix().saturating_add(ttl_secs);
    let sas = sign_sas(
        state.storage_key(),
        &account.to_ascii_lowercase(),
        container,
        blob,
        expiry,
        permissions,
    );
    format!(
        "{}/{}/{}?{sas}",
        base.trim_end_matches('/'),
        encode_path(container),
        encode_path(blob)
    )
}

fn signature(
    key: &[u8; 32],
    account: &str,
    container: &str,
    blob: &str,
    expiry_unix: u64,
    permissions: &str,
) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(
        &key,
        string_to_sign(account, container, blob, expiry_unix, permissions).as_bytes(),
    );
    BASE64.encode(tag.as_ref())
}

fn string_to_sign(
    account: &str,
    container: &str,
    blob: &str,
    expiry_unix: u64,
    permissions: &str,
) -> String {
    format!("{account}\n/{container}/{blob}\n{expiry_unix}\n{permissions}")
}

/// Why a request's SAS does not authenticate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SasError {
    Missing,
    BadExpiry,
    BadSignature,
    Expired,
}

impl SasError {
    fn message(self) -> &'static str {
        match self {
            Self::Missing => {
                "Server failed to authenticate the request. The SAS (se, sp, sig) is missing."
            }
            Self::BadExpiry => {
                "Server failed to authenticate the request. The signed expiry (se) is not a Unix time."
            }
            Self::BadSignature => {
                "Server failed to authenticate the request. Signature did not match."
            }
            Self::Expired => {
                "Server failed to authenticate the request. Signed expiry time has passed."
            }
        }
    }
}

/// Checks the SAS in `query` for the blob; returns its permissions.
fn check_sas(
    key: &[u8; 32],
    account: &str,
    container: &str,
    blob: &str,
    query: &HashMap<String, String>,
    now_unix: u64,
) -> Result<String, SasError> {
    let (Some(se), Some(sp), Some(sig)) = (query.get("se"), query.get("sp"), query.get("sig"))
    else {
        return Err(SasError::Missing);
    };
    let expiry: u64 = se.parse().map_err(|_| SasError::BadExpiry)?;
    // A hand-built URL may carry an unencoded `+`, which form decoding turned into a space.
    let sig = BASE64
        .decode(sig.replace(' ', "+"))
        .map_err(|_| SasError::BadSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    // Constant-time comparison (ring), so the signature cannot be guessed byte by byte.
    hmac::verify(
        &key,
        string_to_sign(account, container, blob, expiry, sp).as_bytes(),
        &sig,
    )
    .map_err(|_| SasError::BadSignature)?;
    if now_unix >= expiry {
        return Err(SasError::Expired);
    }
    Ok(sp.clone())
}

async fn on_blob_host(
    AxumState(state): AxumState<State>,
    Path((container, blob)): Path<(String, String)>,
    req: Request,
) -> Response {
    let host = probe::request_host(&req).unwrap_or_default();
    // The router sends only blob-family hosts here; anything else has no account.
    let account = state.catalog().blob_account(&host).unwrap_or_default();
    serve(&state, account, container, blob, req).await
}

async fn on_gateway(
    AxumState(state): AxumState<State>,
    Path((account, container, blob)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    serve(&state, account, container, blob, req).await
}

/// `/storage/<account>[/]`: the account root answers 400 like Azure's (and exactly as the
/// catalog probe when the catalog lists that path).
async fn account_root(state: AxumState<State>, req: Request) -> Response {
    let host = probe::request_host(&req).unwrap_or_default();
    let scheme = req
        .extensions()
        .get::<super::ConnInfo>()
        .map_or(mdelab_catalog::Scheme::Https, |c| c.scheme);
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    if state.catalog().probe_for(&host, scheme, path).is_some() {
        return probe::answer(state, req).await;
    }
    StatusCode::BAD_REQUEST.into_response()
}

async fn serve(
    state: &State,
    account: String,
    container: String,
    blob: String,
    req: Request,
) -> Response {
    let account = account.to_ascii_lowercase();
    let query: HashMap<String, String> = Query::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let is_put = req.method() == Method::PUT;
    let refuse = |response: Response| {
        if is_put {
            state.blobs().count_rejected();
        }
        response
    };
    if query.contains_key("comp") || query.contains_key("restype") {
        return refuse(azure_error(
            StatusCode::BAD_REQUEST,
            "UnsupportedQueryParameter",
            "The lab stores whole block blobs only (no comp= or restype= operations).",
        ));
    }
    let permissions = match check_sas(
        state.storage_key(),
        &account,
        &container,
        &blob,
        &query,
        state.clock().now_unix(),
    ) {
        Ok(p) => p,
        Err(e) => {
            return refuse(azure_error(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                e.message(),
            ));
        }
    };
    if is_put {
        put_blob(state, account, container, blob, &permissions, req).await
    } else {
        get_blob(
            state,
            &account,
            &container,
            &blob,
            &permissions,
            req.method(),
        )
    }
}

async fn put_blob(
    state: &State,
    account: String,
    container: String,
    blob: String,
    permissions: &str,
    req: Request,
) -> Response {
    let refuse = |status, code, message| {
        state.blobs().count_rejected();
        azure_error(status, code, message)
    };
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    match headers.get("x-ms-blob-type").map(HeaderValue::to_str) {
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type.",
            );
        }
        Some(Ok("BlockBlob")) => {}
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidHeaderValue",
                "The value for x-ms-blob-type is not supported: the lab stores BlockBlob only.",
            );
        }
    }
    // `w` writes anything; `c` only creates a blob that does not exist yet (as in Azure).
    let exists = state.blobs().contains(&account, &container, &blob);
    if !(permissions.contains('w') || (permissions.contains('c') && !exists)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        );
    }
    let expected_md5 = match headers.get("content-md5") {
        None => None,
        Some(v) => match v
            .to_str()
            .ok()
            .and_then(|s| BASE64.decode(s.trim()).ok())
            .filter(|d| d.len() == 16)
        {
            Some(d) => Some(d),
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "InvalidMd5",
                    "The MD5 value specified in the request is invalid (base64 of 16 bytes).",
                );
            }
        },
    };
    let cap = state
        .config()
        .blob_max_bytes
        .min(state.blobs().capacity_bytes());
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
        )
    };
    if declared_length(headers).is_some_and(|n| n > cap) {
        return too_large();
    }
    let busy = || {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServerBusy",
            "The server is currently unable to receive requests: uploads in progress hold the \
             lab's blob store capacity. Please retry your request.",
        )
    };
    let mut reservation = state.blobs().reserve();
    let content = match read_reserved(body, cap, declared_length(headers), &mut reservation).await {
        Ok(c) => c,
        Err(UploadError::NoRoom) => return busy(),
        Err(UploadError::Read(ReadError::TooLarge)) => return too_large(),
        Err(UploadError::Read(ReadError::Broken(detail))) => {
            tracing::debug!(%detail, "blob upload body broke off");
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "The request body could not be read to its end.",
            );
        }
    };
    let md5 = Md5::digest(&content);
    if expected_md5.is_some_and(|e| e[..] != md5[..]) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Md5Mismatch",
            "The MD5 value specified in the request did not match with the MD5 value calculated by the server.",
        );
    }
    let sha256 = ring::digest::digest(&ring::digest::SHA256, &content);
    let stored = StoredBlob {
        account,
        container,
        name: blob,
        size: content.len() as u64,
        md5_b64: BASE64.encode(md5),
        sha256_hex: hex::encode(sha256.as_ref()),
        uploaded_ms: state.clock().now_ms(),
        device_id: headers
            .get(DEVICE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    // The store counts its own refusal (a blob larger than the whole store).
    let Ok(stored) = state.blobs().put_reserved(stored, content, reservation) else {
        return azure_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The blob is larger than the lab's whole blob store.",
        );
    };
    let mut response = StatusCode::CREATED.into_response();
    blob_headers(response.headers_mut(), &stored);
    response.headers_mut().insert(
        "x-ms-request-server-encrypted",
        HeaderValue::from_static("true"),
    );
    response
}

fn get_blob(
    state: &State,
    account: &str,
    container: &str,
    blob: &str,
    permissions: &str,
    method: &Method,
) -> Response {
    if !permissions.contains('r') {
        return azure_error(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        );
    }
    let Some((stored, content)) = state.blobs().get(account, container, blob) else {
        return azure_error(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        );
    };
    let len = content.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(content)
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    blob_headers(headers, &stored);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
    headers.insert("x-ms-server-encrypted", HeaderValue::from_static("true"));
    response
}

fn blob_headers(headers: &mut HeaderMap, stored: &StoredBlob) {
    if let Ok(v) = HeaderValue::from_str(&stored.md5_b64) {
        headers.insert("content-md5", v);
    }
    // Azure ETags look like "0x8DB…"; derive ours from the content so equal content, equal tag.
    let etag = format!("\"0x{}\"", stored.sha256_hex.get(..16).unwrap_or_default()).to_uppercase();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert("x-ms-version", HeaderValue::from_static(SAS_VERSION));
}

/// An Azure-style XML error with `x-ms-error-code`.
fn azure_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{}</Message></Error>",
        xml_escape(message)
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    headers.insert("x-ms-error-code", HeaderValue::from_static(code));
    response
}

/// Escapes text for an XML element.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Why a capped body read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// More than the cap was sent.
    TooLarge,
    /// The body broke off (client gone, framing error).
    Broken(String),
}

/// The `Content-Length` a request declares, if any and valid.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads a body chunk by chunk, refusing as soon as more than `cap` bytes arrived, whatever
/// the body's `Content-Length` claimed. `hint` (the declared length) only pre-sizes the buffer.
pub(crate) async fn read_capped(
    mut body: Body,
    cap: u64,
    hint: Option<u64>,
) -> Result<Bytes, ReadError> {
    // Pre-size for honest clients, but never trust the claim beyond the cap or a sane chunk.
    let initial = hint.unwrap_or(0).min(cap).min(64 * 1024 * 1024);
    let mut buf = BytesMut::with_capacity(usize::try_from(initial).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() as u64 + data.len() as u64 > cap {
                return Err(ReadError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Why an upload's body could not be read under its reservation.
enum UploadError {
    /// The reservation could not grow (counted by the store).
    NoRoom,
    /// See [`ReadError`].
    Read(ReadError),
}

/// [`read_capped`] for a blob upload: every byte buffered (the buffer's capacity, which is what
/// it costs) is first reserved against the blob store, so concurrent uploads cannot together
/// pass the store's capacity; an honest `Content-Length` is reserved whole before reading.
async fn read_reserved(
    mut body: Body,
    cap: u64,
    hint: Option<u64>,
    reservation: &mut Reservation<'_>,
) -> Result<Bytes, UploadError> {
    let initial = hint.unwrap_or(0).min(cap);
    reservation
        .grow_to(initial)
        .map_err(|_| UploadError::NoRoom)?;
    let mut buf = BytesMut::with_capacity(usize::try_from(initial).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| UploadError::Read(ReadError::Broken(e.to_string())))?;
        if let Ok(data) = frame.into_data() {
            let need = buf.len() as u64 + data.len() as u64;
            if need > cap {
                return Err(UploadError::Read(ReadError::TooLarge));
            }
            if need > buf.capacity() as u64 {
                // Grow by doubling (as the buffer would), reserved before it is allocated.
                let target = need.max(2 * buf.capacity() as u64).min(cap);
                reservation
                    .grow_to(target)
                    .map_err(|_| UploadError::NoRoom)?;
                buf.reserve(usize::try_from(target).unwrap_or(usize::MAX) - buf.len());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_component(s: &str) -> String {
    encode(s, false)
}

/// Percent-encodes a path, keeping `/`.
fn encode_path(s: &str) -> String {
    encode(s, true)
}

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The tests sign tokens relative to the system time, which is the state's default clock.
#[cfg(test)]
fn now_unix() -> u64 {
    crate::Clock::system().now_unix()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{Method, StatusCode};
    use base64::Engine as _;
    use md5::{Digest as _, Md5};

    use super::super::testkit::{Answer, app, app_with, send};
    use super::*;
    use crate::config::ServiceConfig;
    use crate::routes::App;

    const ACCOUNT: &str = "ussus1eastprod";
    const HOST: &str = "ussus1eastprod.blob.core.windows.net";
    const GATEWAY: &str = "mdav.us.endpoint.security.microsoft.com";
    const EDR: &str = "edr-cus.us.endpoint.security.microsoft.com";

    fn key(app: &App) -> [u8; 32] {
        *app.state().storage_key()
    }

    fn sas(app: &App, account: &str, container: &str, blob: &str, perms: &str) -> String {
        sign_sas(&key(app), account, container, blob, now_unix() + 600, perms)
    }

    async fn put_blob(
        app: &App,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &'static [u8],
    ) -> Answer {
        send(app, Method::PUT, host, path, headers, body).await
    }

    const BLOCK: (&str, &str) = ("x-ms-blob-type", "BlockBlob");

    fn error_code(a: &Answer) -> String {
        let text = a.text();
        assert!(
            text.starts_with("<?xml") && text.contains("<Error><Code>"),
            "{text}"
        );
        a.header("x-ms-error-code").unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn put_with_valid_sas_stores_with_the_right_digests() {
        let app = app();
        let content: &'static [u8] = b"sample file content\n";
        let path = format!(
            "/samples/dir/file%20one.bin?{}",
            sas(&app, ACCOUNT, "samples", "dir/file one.bin", "cw")
        );
        let a = put_blob(
            &app,
            HOST,
            &path,
            &[BLOCK, ("msadeviceticket", "dev-1")],
            content,
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
        let md5 = BASE64.encode(Md5::digest(content));
        assert_eq!(a.header("content-md5"), Some(md5.as_str()));
        assert_eq!(a.header("x-ms-request-server-encrypted"), Some("true"));
        assert!(a.header("etag").is_some_and(|e| e.starts_with("\"0X")));
        let (meta, stored) = app
            .state()
            .blobs()
            .get(ACCOUNT, "samples", "dir/file one.bin")
            .expect("stored");
        assert_eq!(&stored[..], content);
        assert_eq!(meta.size, content.len() as u64);
        assert_eq!(meta.md5_b64, md5);
        assert_eq!(
            meta.sha256_hex,
            hex::encode(ring::digest::digest(&ring::digest::SHA256, content))
        );
        assert_eq!(meta.device_id.as_deref(), Some("dev-1"));
        let stats = app.state().blobs().stats();
        let metadata = crate::store::blobs::metadata_cost(&meta);
        assert_eq!(
            (stats.stored, stats.bytes, stats.rejected),
            (1, 20 + metadata, 0)
        );
    }

    #[tokio::test]
    async fn sas_url_round_trips_on_blob_hosts_and_gateways() {
        let app = app();
        for (base, host, account) in [
            (format!("https://{HOST}"), HOST, ACCOUNT),
            (
                format!("https://{GATEWAY}/storage/ussus2eastprod/"),
                GATEWAY,
                "ussus2eastprod",
            ),
            (
                format!("https://{EDR}/storage/automatedirstrprdcus"),
                EDR,
                "automatedirstrprdcus",
            ),
        ] {
            let url = sas_url(
                app.state(),
                &base,
                account,
                "c1",
                "a b/c+d.zip",
                Duration::from_millis(1500),
                "rcw",
            );
            let path = url
                .strip_prefix(&format!("https://{host}"))
                .unwrap_or_else(|| panic!("{url}"));
            assert!(path.contains("/c1/a%20b/c%2Bd.zip?sv="), "{path}");
            let a = put_blob(&app, host, path, &[BLOCK], b"payload").await;
            assert_eq!(a.status, StatusCode::CREATED, "{url}: {}", a.text());
            assert!(app.state().blobs().contains(account, "c1", "a b/c+d.zip"));
            let g = send(&app, Method::GET, host, path, &[], "").await;
            assert_eq!(g.status, StatusCode::OK, "{url}");
            assert_eq!(&g.body[..], b"payload");
            assert_eq!(
                g.header("content-md5"),
                Some(BASE64.encode(Md5::digest(b"payload")).as_str())
            );
            let h = send(&app, Method::HEAD, host, path, &[], "").await;
            assert_eq!(h.status, StatusCode::OK);
            assert!(h.body.is_empty());
            assert_eq!(h.header("content-length"), Some("7"));
        }
        assert_eq!(app.state().blobs().stats().stored, 3);
    }

    #[tokio::test]
    async fn bad_missing_or_expired_sas_is_403_authentication_failed() {
        let app = app();
        let k = key(&app);
        let good = sas(&app, ACCOUNT, "c", "b", "cw");
        let other_key = sign_sas(&[7u8; 32], ACCOUNT, "c", "b", now_unix() + 600, "cw");
        let other_blob = sas(&app, ACCOUNT, "c", "other", "cw");
        let other_account = sas(&app, "someoneelse", "c", "b", "cw");
        let expired = sign_sas(&k, ACCOUNT, "c", "b", now_unix() - 1, "cw");
        // Widening the permissions breaks the signature.
        let widened = good.replace("sp=cw", "sp=rcw");
        for query in [
            String::new(),
            "sv=x&se=1&sp=r".to_owned(),
            other_key,
            other_blob,
            other_account,
            expired,
            widened,
            good.replace("se=", "se=x"),
            format!("{good}zz"),
        ] {
            let a = put_blob(&app, HOST, &format!("/c/b?{query}"), &[BLOCK], b"x").await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{query}");
            assert_eq!(error_code(&a), "AuthenticationFailed", "{query}");
        }
        let stats = app.state().blobs().stats();
        assert_eq!((stats.stored, stats.rejected), (0, 9));
        // Sanity: the good one works.
        let ok = put_blob(&app, HOST, &format!("/c/b?{good}"), &[BLOCK], b"x").await;
        assert_eq!(ok.status, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn missing_permission_is_403_permission_mismatch() {
        let app = app();
        let read_only = sas(&app, ACCOUNT, "c", "b", "r");
        let a = put_blob(&app, HOST, &format!("/c/b?{read_only}"), &[BLOCK], b"x").await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&a), "AuthorizationPermissionMismatch");
        // Create-only may create, not overwrite.
        let create = sas(&app, ACCOUNT, "c", "b", "c");
        let first = put_blob(&app, HOST, &format!("/c/b?{create}"), &[BLOCK], b"1").await;
        assert_eq!(first.status, StatusCode::CREATED);
        let again = put_blob(&app, HOST, &format!("/c/b?{create}"), &[BLOCK], b"2").await;
        assert_eq!(again.status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&again), "AuthorizationPermissionMismatch");
        // Write-only may not read.
        let write = sas(&app, ACCOUNT, "c", "b", "w");
        let get = send(&app, Method::GET, HOST, &format!("/c/b?{write}"), &[], "").await;
        assert_eq!(get.status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&get), "AuthorizationPermissionMismatch");
        let (_, content) = app.state().blobs().get(ACCOUNT, "c", "b").unwrap();
        assert_eq!(&content[..], b"1");
        // Reading a blob that is not there.
        let read = sas(&app, ACCOUNT, "c", "nothing", "r");
        let missing = send(
            &app,
            Method::GET,
            HOST,
            &format!("/c/nothing?{read}"),
            &[],
            "",
        )
        .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(error_code(&missing), "BlobNotFound");
    }

    #[tokio::test]
    async fn md5_mismatch_is_400_and_nothing_is_stored() {
        let app = app();
        let q = sas(&app, ACCOUNT, "c", "b", "cw");
        let wrong = BASE64.encode(Md5::digest(b"something else"));
        let a = put_blob(
            &app,
            HOST,
            &format!("/c/b?{q}"),
            &[BLOCK, ("content-md5", &wrong)],
            b"payload",
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&a), "Md5Mismatch");
        let garbage = put_blob(
            &app,
            HOST,
            &format!("/c/b?{q}"),
            &[BLOCK, ("content-md5", "not base64!")],
            b"payload",
        )
        .await;
        assert_eq!(error_code(&garbage), "InvalidMd5");
        assert!(app.state().blobs().get(ACCOUNT, "c", "b").is_none());
        assert_eq!(app.state().blobs().stats().rejected, 2);
        let right = BASE64.encode(Md5::digest(b"payload"));
        let ok = put_blob(
            &app,
            HOST,
            &format!("/c/b?{q}"),
            &[BLOCK, ("content-md5", &right)],
            b"payload",
        )
        .await;
        assert_eq!(ok.status, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn blob_type_header_is_required() {
        let app = app();
        let q = sas(&app, ACCOUNT, "c", "b", "cw");
        let a = put_blob(&app, HOST, &format!("/c/b?{q}"), &[], b"x").await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&a), "MissingRequiredHeader");
        let b = put_blob(
            &app,
            HOST,
            &format!("/c/b?{q}"),
            &[("x-ms-blob-type", "AppendBlob")],
            b"x",
        )
        .await;
        assert_eq!(b.status, StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&b), "InvalidHeaderValue");
        let c = put_blob(&app, HOST, &format!("/c/b?{q}&comp=block"), &[BLOCK], b"x").await;
        assert_eq!(c.status, StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&c), "UnsupportedQueryParameter");
        assert_eq!(app.state().blobs().stats().stored, 0);
    }

    #[tokio::test]
    async fn oversize_blobs_are_413_and_capacity_evicts_oldest() {
        // Room for two 6-byte blobs named "two" and "three" with their metadata.
        let metadata = |name: &str| {
            crate::store::blobs::metadata_cost(&StoredBlob {
                account: ACCOUNT.into(),
                container: "c".into(),
                name: name.into(),
                size: 0,
                md5_b64: BASE64.encode([0u8; 16]),
                sha256_hex: "0".repeat(64),
                uploaded_ms: 0,
                device_id: None,
            })
        };
        let capacity = 12 + metadata("two") + metadata("three");
        let app = app_with(ServiceConfig {
            blob_max_bytes: 8,
            blob_capacity_bytes: capacity,
            ..ServiceConfig::default()
        });
        let q = sas(&app, ACCOUNT, "c", "big", "cw");
        let a = put_blob(&app, HOST, &format!("/c/big?{q}"), &[BLOCK], b"123456789").await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error_code(&a), "RequestBodyTooLarge");
        // A streamed body with no Content-Length is capped while read, too.
        let chunks = futures_stream(&[b"12345", b"6789"]);
        let b = send(
            &app,
            Method::PUT,
            HOST,
            &format!("/c/big?{q}"),
            &[BLOCK],
            chunks,
        )
        .await;
        assert_eq!(b.status, StatusCode::PAYLOAD_TOO_LARGE);
        for name in ["one", "two", "three"] {
            let q = sas(&app, ACCOUNT, "c", name, "cw");
            let r = put_blob(&app, HOST, &format!("/c/{name}?{q}"), &[BLOCK], b"123456").await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
        let names: Vec<String> = app
            .state()
            .blobs()
            .list()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["two", "three"]);
        let s = app.state().blobs().stats();
        assert_eq!(
            (s.stored, s.bytes, s.evicted, s.rejected),
            (2, capacity, 1, 2)
        );
    }

    #[tokio::test]
    async fn an_upload_without_room_in_flight_is_a_counted_503_server_busy() {
        let app = app_with(ServiceConfig {
            blob_capacity_bytes: 100_000,
            ..ServiceConfig::default()
        });
        // Another upload in flight holds all but 10 bytes of the store.
        let mut other = app.state().blobs().reserve();
        other.grow_to(99_990).unwrap();
        let q = sas(&app, ACCOUNT, "c", "b", "cw");
        let a = put_blob(&app, HOST, &format!("/c/b?{q}"), &[BLOCK], &[7u8; 64]).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_code(&a), "ServerBusy");
        // Streamed without a Content-Length: refused once its buffer outgrows the room.
        let b = send(
            &app,
            Method::PUT,
            HOST,
            &format!("/c/b?{q}"),
            &[BLOCK],
            futures_stream(&[b"12345", b"6789", b"abcdefghijklmnop"]),
        )
        .await;
        assert_eq!(error_code(&b), "ServerBusy");
        let s = app.state().blobs().stats();
        assert_eq!(
            (s.stored, s.in_flight, s.refused_in_flight, s.rejected),
            (0, 99_990, 2, 2)
        );
        // Once the other upload is gone, the same upload fits.
        drop(other);
        let c = put_blob(&app, HOST, &format!("/c/b?{q}"), &[BLOCK], &[7u8; 64]).await;
        assert_eq!(c.status, StatusCode::CREATED);
        assert_eq!(app.state().blobs().stats().in_flight, 0);
    }

    /// A body delivered in chunks, without a Content-Length.
    fn futures_stream(chunks: &[&'static [u8]]) -> Body {
        Body::new(Chunks(
            chunks.iter().map(|c| Bytes::from_static(c)).collect(),
        ))
    }

    /// A body yielding its chunks one frame at a time, with no size hint.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(http_body::Frame::data(c))))
        }
    }

    #[tokio::test]
    async fn account_roots_still_answer_400() {
        let app = app();
        let blob_root = send(&app, Method::GET, HOST, "/", &[], "").await;
        assert_eq!(blob_root.status, StatusCode::BAD_REQUEST);
        let any_account = send(
            &app,
            Method::GET,
            "whatever.blob.core.windows.net",
            "/",
            &[],
            "",
        )
        .await;
        assert_eq!(any_account.status, StatusCode::BAD_REQUEST);
        for path in [
            "/storage/ussus1eastprod/",
            "/storage/notlisted/",
            "/storage/notlisted",
        ] {
            let a = send(&app, Method::GET, GATEWAY, path, &[], "").await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        }
        let edr = send(
            &app,
            Method::GET,
            EDR,
            "/storage/automatedirstrprdcus/",
            &[],
            "",
        )
        .await;
        assert_eq!(edr.status, StatusCode::BAD_REQUEST);
    }
}
