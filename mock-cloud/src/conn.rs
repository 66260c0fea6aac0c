//! Connection bookkeeping shared by every lab HTTP listener (the mock cloud's and the admin
//! API's): the connection cap with shedding, the idle watchdog (first request, keep-alive
//! idle), the body-idle timeout and the hard cut at the shutdown deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::config::ConnectionLimits;

/// The open connections of one listener.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    next: AtomicU64,
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

/// One open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    /// Requests (or h2 streams) being exchanged.
    in_flight: AtomicUsize,
    /// Whether a complete request head has arrived.
    served: AtomicBool,
    /// When the connection last finished an exchange (or opened).
    last_active: Mutex<Instant>,
    /// Cancelled to close the connection at once.
    cut: CancellationToken,
}

/// What [`Registry::admit`] decided.
pub(crate) enum Admission {
    /// Admitted; the entry leaves the registry when the guard drops.
    Admitted(ConnGuard),
    /// Admitted after shedding an older idle connection.
    AdmittedShedding(ConnGuard),
    /// Every connection is busy: the newcomer is refused.
    Full,
}

/// Removes its connection from the registry on drop.
pub(crate) struct ConnGuard {
    registry: Arc<Registry>,
    pub(crate) conn: Arc<Conn>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.conn.id);
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection; at `cap`, sheds the oldest connection that has not sent a
    /// request yet, else the oldest idle one, else refuses the newcomer.
    pub(crate) fn admit(self: &Arc<Self>, cap: usize) -> Admission {
        let mut conns = self.lock();
        let mut shed = false;
        // Connections already cut may still be listed until their task ends: count the live.
        let live = conns.values().filter(|c| !c.cut.is_cancelled()).count();
        if live >= cap {
            let idle = |c: &&Arc<Conn>| !c.cut.is_cancelled() && c.in_flight() == 0;
            let victim = conns
                .values()
                .filter(idle)
                .find(|c| !c.served.load(Ordering::Relaxed))
                .or_else(|| conns.values().find(idle))
                .cloned();
            match victim {
                Some(victim) => {
                    victim.cut.cancel();
                    shed = true;
                }
                None => return Admission::Full,
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            last_active: Mutex::new(Instant::now()),
            cut: CancellationToken::new(),
        });
        conns.insert(id, conn.clone());
        let guard = ConnGuard {
            registry: self.clone(),
            conn,
        };
        if shed {
            Admission::AdmittedShedding(guard)
        } else {
            Admission::Admitted(guard)
        }
    }

    /// Closes every connection at once (the shutdown deadline passed).
    pub(crate) fn cut_all(&self) {
        for conn in self.lock().values() {
            conn.cut.cancel();
        }
    }
}

impl Conn {
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Resolves when the connection is to be closed at once.
    pub(crate) fn cut(&self) -> &CancellationToken {
        &self.cut
    }

    fn touch(&self) {
        *self
            .last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn begin(self: &Arc<Self>) -> Exchange {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Exchange { conn: self.clone() }
    }

    /// When the connection has been idle too long, given the limits.
    fn idle_deadline(&self, limits: &ConnectionLimits) -> Instant {
        let last = *self
            .last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.served.load(Ordering::Relaxed) {
            last + limits.keep_alive_idle
        } else {
            last + limits.request_head_timeout
        }
    }

    /// Resolves when the connection has had no exchange in flight for longer than its idle
    /// limit (the request-head timeout before the first request, keep-alive idle after).
    pub(crate) async fn idle_expired(&self, limits: &ConnectionLimits) {
        loop {
            let deadline = self.idle_deadline(limits);
            tokio::time::sleep_until(deadline).await;
            if self.in_flight() == 0 && Instant::now() >= self.idle_deadline(limits) {
                return;
            }
            if self.in_flight() > 0 {
                // Busy: look again one idle period from now.
                tokio::time::sleep(limits.keep_alive_idle.min(limits.request_head_timeout)).await;
            }
        }
    }
}

/// One request in flight; ends (and marks the connection active) on drop.
struct Exchange {
    conn: Arc<Conn>,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.conn.touch();
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A body that holds its exchange open until it is dropped and, for request bodies, errors
/// and cuts the connection when no frame arrives within the idle timeout.
struct Tracked<B> {
    inner: B,
    _exchange: Option<Arc<Exchange>>,
    idle: Option<(Duration, Arc<Conn>)>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
            }
            Poll::Pending => {}
        }
        let Some((timeout, conn)) = &this.idle else {
            return Poll::Pending;
        };
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(*timeout)));
        ready!(sleep.as_mut().poll(cx));
        conn.cut.cancel();
        tracing::debug!(
            timeout_ms = timeout.as_millis(),
            "request body idle too long; closing the connection"
        );
        Poll::Ready(Some(Err(format!(
            "request body idle for more than {} ms",
            timeout.as_millis()
        )
        .into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves HTTP/1 and HTTP/2 on `io` with `handler`, under the limits: the request-head
/// timeout, keep-alive idle, body idle, h2 pings, and the connection's cut. On `token`, the
/// connection is shut down gracefully; the cut (shedding, shutdown deadline) ends it at once.
pub(crate) async fn serve<I, H, F, E>(
    io: I,
    conn: Arc<Conn>,
    limits: &ConnectionLimits,
    token: CancellationToken,
    handler: H,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(axum::extract::Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<axum::response::Response, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let body_idle = limits.body_idle_timeout;
    let service_conn = conn.clone();
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        let conn = service_conn.clone();
        async move {
            let exchange = Arc::new(conn.begin());
            let req = req.map(|body| {
                axum::body::Body::new(Tracked {
                    inner: body,
                    _exchange: Some(exchange.clone()),
                    idle: Some((body_idle, conn.clone())),
                    sleep: None,
                })
            });
            let response = handler(req).await?;
            Ok::<_, E>(response.map(|body| {
                axum::body::Body::new(Tracked {
                    inner: body,
                    _exchange: Some(exchange),
                    idle: None,
                    sleep: None,
                })
            }))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_head_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.h2_ping_interval))
        .keep_alive_timeout(limits.h2_ping_interval);
    let served = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(served);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            return;
        }
        () = conn.cut.cancelled() => return,
        () = conn.idle_expired(limits) => {
            tracing::debug!("connection idle too long; closing it");
            return;
        }
        () = token.cancelled() => {}
    }
    served.as_mut().graceful_shutdown();
    tokio::select! {
        _ = served => {}
        () = conn.cut.cancelled() => {}
    }
}
