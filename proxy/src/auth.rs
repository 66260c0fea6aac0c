//! Optional Basic proxy authentication.
//!
//! Corporate proxies often demand credentials that SYSTEM services (the sensor among them) do
//! not have; the 407 this produces is one of the failures the lab shows.

use std::fmt;

use base64::Engine as _;
use http::HeaderMap;
use http::header::{HeaderValue, PROXY_AUTHORIZATION};

/// The challenge sent with every 407 (realm "mdelab").
pub(crate) fn challenge() -> HeaderValue {
    HeaderValue::from_static("Basic realm=\"mdelab\"")
}

/// A user name and password the proxy demands in `Proxy-Authorization: Basic …`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The `Proxy-Authorization` header value a client sends for these credentials.
    pub fn header_value(&self) -> String {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        format!("Basic {token}")
    }

    /// Whether a request's headers carry these credentials.
    pub(crate) fn accepts(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(PROXY_AUTHORIZATION)
            .iter()
            .filter_map(|value| decode_basic(value.as_bytes()))
            .any(|decoded| {
                let expected = format!("{}:{}", self.user, self.password);
                constant_time_eq(decoded.as_slice(), expected.as_bytes())
            })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out of logs and panic messages.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Decodes `Basic <base64>` (scheme case-insensitive) into `user:password` bytes.
fn decode_basic(value: &[u8]) -> Option<Vec<u8>> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()
}

/// Compares without an early exit, so that response timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(PROXY_AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn basic_credentials_are_checked() {
        let creds = Credentials::new("alice", "s3cret:with:colons");
        assert!(creds.accepts(&headers(&[&creds.header_value()])));
        let lower = creds.header_value().replacen("Basic", "basic", 1);
        assert!(creds.accepts(&headers(&[&lower])));
        assert!(!creds.accepts(&headers(&[])));
        assert!(!creds.accepts(&headers(&["Basic !!!not-base64"])));
        assert!(!creds.accepts(&headers(&["Bearer abc"])));
        let wrong = Credentials::new("alice", "nope").header_value();
        assert!(!creds.accepts(&headers(&[&wrong])));
        assert!(creds.accepts(&headers(&[&wrong, &creds.header_value()])));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?}", Credentials::new("alice", "hunter2"));
        assert!(shown.contains("alice") && !shown.contains("hunter2"));
        assert_eq!(challenge().to_str().unwrap(), "Basic realm=\"mdelab\"");
    }
}
