//! Byte-level plumbing: metered streams with an idle watchdog, dialling destinations, and
//! splicing two streams together.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::access_log::Outcome;

/// Counts the bytes of a client connection both ways and when one last moved.
#[derive(Debug)]
pub(crate) struct Meter {
    start: Instant,
    up: AtomicU64,
    down: AtomicU64,
    /// Milliseconds after `start` of the last byte either way.
    last_ms: AtomicU64,
}

impl Meter {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    /// Bytes read from the client.
    pub(crate) fn up(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }

    /// Bytes written to the client.
    pub(crate) fn down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Resolves once no byte has moved for `limit`.
    pub(crate) async fn idle(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A stream whose reads count as bytes up and writes as bytes down on a [`Meter`].
#[derive(Debug)]
pub(crate) struct Metered<S> {
    inner: S,
    meter: Arc<Meter>,
}

impl<S> Metered<S> {
    pub(crate) fn new(inner: S, meter: Arc<Meter>) -> Self {
        Self { inner, meter }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.meter.up.fetch_add(read as u64, Ordering::Relaxed);
            self.meter.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.count_written(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.count_written(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> Metered<S> {
    fn count_written(&self, n: usize) {
        if n > 0 {
            self.meter.down.fetch_add(n as u64, Ordering::Relaxed);
            self.meter.touch();
        }
    }
}

/// Why a destination could not be dialled.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The system resolver failed for an unlisted name.
    Resolve(io::Error),
    /// The name resolved to no address.
    NoAddress,
    /// Every address refused or was unreachable; the last error.
    Connect(io::Error),
    /// The connect timeout passed.
    Timeout(Duration),
}

impl DialError {
    /// The status a proxy answers for this failure.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The access-log outcome for this failure.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::Resolve(_) | Self::NoAddress => Outcome::ResolveFailed,
            Self::Connect(_) => Outcome::UpstreamConnectFailed,
            Self::Timeout(_) => Outcome::UpstreamConnectTimeout,
        }
    }

    /// In words, naming the destination.
    pub(crate) fn describe(&self, target: &str) -> String {
        match self {
            Self::Resolve(e) => format!("failed to resolve {target}: {e}"),
            Self::NoAddress => format!("failed to resolve {target}: no address"),
            Self::Connect(e) => format!("failed to connect to {target}: {e}"),
            Self::Timeout(t) => format!("failed to connect to {target} within {t:?}"),
        }
    }
}

/// Dials `mapped` when the destination table names an address, otherwise resolves `host:port`
/// and tries each address in turn; the whole attempt is bounded by `timeout`.
pub(crate) async fn dial(
    mapped: Option<SocketAddr>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, DialError> {
    let attempt = async {
        let addrs: Vec<SocketAddr> = match mapped {
            Some(addr) => vec![addr],
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(DialError::Resolve)?
                .collect(),
        };
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    // Handshakes are many small round trips; Nagle would only delay them.
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(DialError::NoAddress, DialError::Connect))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(DialError::Timeout(timeout)))
}

/// Writes `replay` (bytes already read from the client) to the upstream, then copies both ways
/// until both sides have closed.
pub(crate) async fn splice<C, U>(client: &mut C, upstream: &mut U, replay: &[u8]) -> io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    if !replay.is_empty() {
        upstream.write_all(replay).await?;
    }
    tokio::io::copy_bidirectional(client, upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn metered_streams_count_both_ways() {
        let (a, mut b) = tokio::io::duplex(64);
        let meter = Meter::new();
        let mut metered = Metered::new(a, meter.clone());
        metered.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 3];
        metered.read_exact(&mut buf).await.unwrap();
        assert_eq!((meter.up(), meter.down()), (3, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_resolves_only_after_a_quiet_period() {
        let (a, mut b) = tokio::io::duplex(64);
        let meter = Meter::new();
        let mut metered = Metered::new(a, meter.clone());
        tokio::time::advance(Duration::from_secs(2)).await;
        b.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        metered.read_exact(&mut one).await.unwrap();
        let started = Instant::now();
        meter.idle(Duration::from_secs(5)).await;
        // The byte at t=2s pushed the deadline to t=7s.
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn dialling_a_closed_port_fails_with_502() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = dial(Some(addr), "x", addr.port(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(err.outcome(), Outcome::UpstreamConnectFailed);
        assert!(err.describe("x:1").starts_with("failed to connect to x:1"));
    }
}
