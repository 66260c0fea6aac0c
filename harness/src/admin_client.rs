//! A small client of the lab's admin API, for Rust tools' tests.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The longest one admin call may take, connect to last byte, unless set with
/// [`AdminClient::with_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest admin answer read (journals and event lists can be long).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// Talks to one lab's admin API with its token.
#[derive(Clone, Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    token: String,
    timeout: Duration,
}

impl AdminClient {
    /// A client for the admin API at `addr` with `token` (both in the manifest).
    pub fn new(addr: SocketAddr, token: String) -> Self {
        Self {
            addr,
            token,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another deadline per call (connect to last byte).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends one request; returns the status and the body as JSON (`Null` when empty or not
    /// JSON). Fails when the whole exchange takes longer than the client's deadline (30 s by
    /// default), so a port that accepts and never answers cannot hang the caller.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        match tokio::time::timeout(
            self.timeout,
            self.call_unbounded(method.clone(), path, body),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => bail!(
                "the admin API at {} did not answer {method} {path} within {} ms",
                self.addr,
                self.timeout.as_millis()
            ),
        }
    }

    async fn call_unbounded(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("failed to connect to the admin API at {}", self.addr))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .context("admin API handshake failed")?;
        let driver = AbortOnDrop(tokio::spawn(conn));
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.addr.to_string())
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(payload))
            .context("bad admin request")?;
        let response = sender
            .send_request(request)
            .await
            .context("admin API request failed")?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("failed to read the admin answer: {e}"))?
            .to_bytes();
        drop(driver);
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// `GET path`, expecting 200.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let (status, body) = self.call(http::Method::GET, path, None).await?;
        if status != 200 {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// `POST path` with a JSON body, expecting 200 or 201.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let (status, answer) = self.call(http::Method::POST, path, Some(body)).await?;
        if !(200..300).contains(&status) {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// Whether the lab says it is ready.
    pub async fn ready(&self) -> Result<bool> {
        let (_, body) = self.call(http::Method::GET, "/_lab/ready", None).await?;
        Ok(body["ready"].as_bool().unwrap_or(false))
    }

    /// How many journal entries match a query string (e.g. `host=…&status=200`).
    pub async fn journal_count(&self, query: &str) -> Result<u64> {
        let body = self.get(&format!("/_lab/journal/count?{query}")).await?;
        body["count"]
            .as_u64()
            .context("journal count without a count")
    }

    /// Starts a Live Response session for a device; returns the session.
    pub async fn start_live_response(&self, device_id: &str, commands: Value) -> Result<Value> {
        self.post(
            "/_lab/liveresponse/sessions",
            &serde_json::json!({"device_id": device_id, "commands": commands}),
        )
        .await
    }

    /// Adds a fault rule (see the admin API docs); returns its id.
    pub async fn add_fault(&self, rule: Value) -> Result<u64> {
        let answer = self.post("/_lab/faults", &rule).await?;
        answer["ids"][0]
            .as_u64()
            .context("fault answer without an id")
    }
}

/// Aborts the connection driver when the call ends, also when its deadline drops it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::AdminClient;

    #[tokio::test]
    async fn a_silent_admin_port_fails_within_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and never answers.
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let client = AdminClient::new(addr, "t".into()).with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(5), client.ready())
            .await
            .expect("the call ends by its own deadline");
        let err = outcome.expect_err("a silent port is an error");
        assert!(err.to_string().contains("did not answer"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
