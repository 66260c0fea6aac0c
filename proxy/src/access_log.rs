//! The access log: a bounded ring of what each proxy was asked and what became of it.
//!
//! A record is written when a request is refused and when a tunnel or forwarded exchange ends,
//! so its byte counts and duration are final. Tests and the harness synchronise on records with
//! [`AccessLog::wait_for`], which wakes on every new record instead of polling.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

/// The default number of records a log keeps.
pub const DEFAULT_LOG_CAPACITY: usize = 4096;

/// What became of one request to the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The tunnel or forwarded exchange ran and ended normally (either side closed).
    Completed,
    /// The destination is not in the destination table: 403, nothing dialled.
    Denied,
    /// Credentials were missing or wrong: 407.
    AuthRequired,
    /// The request was malformed or not a proxy request (origin-form, CONNECT without a port,
    /// garbage bytes): 400.
    BadRequest,
    /// The request head exceeded the header size cap: 431.
    HeaderTooLarge,
    /// The client did not send a complete request head in time; the connection was closed.
    HeaderTimeout,
    /// An unlisted destination's name did not resolve: 502.
    ResolveFailed,
    /// Dialling the destination failed (refused, unreachable): 502.
    UpstreamConnectFailed,
    /// Dialling the destination did not finish within the connect timeout: 504.
    UpstreamConnectTimeout,
    /// A forwarded exchange failed after the destination was reached: 502, or a response
    /// that ended early.
    UpstreamFailed,
    /// The client's TLS with the intercepting proxy failed: a handshake refused or broken off
    /// (the record's `tls` says how), or a first TLS record that was no usable ClientHello.
    ClientTlsFailed,
    /// No byte moved either way for the idle timeout; the tunnel was closed.
    IdleTimeout,
    /// The tunnel broke with an I/O error (e.g. a reset).
    ConnectionError,
    /// The proxy shut down while the tunnel was open.
    Shutdown,
}

impl Outcome {
    /// The snake_case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Denied => "denied",
            Self::AuthRequired => "auth_required",
            Self::BadRequest => "bad_request",
            Self::HeaderTooLarge => "header_too_large",
            Self::HeaderTimeout => "header_timeout",
            Self::ResolveFailed => "resolve_failed",
            Self::UpstreamConnectFailed => "upstream_connect_failed",
            Self::UpstreamConnectTimeout => "upstream_connect_timeout",
            Self::UpstreamFailed => "upstream_failed",
            Self::ClientTlsFailed => "client_tls_failed",
            Self::IdleTimeout => "idle_timeout",
            Self::ConnectionError => "connection_error",
            Self::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the intercepting proxy did with the TLS inside a tunnel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TlsHandling {
    /// The name is on the bypass list: the ClientHello was replayed to the destination and the
    /// bytes copied both ways untouched, so the client saw the destination's own chain.
    Spliced {
        /// The ClientHello's SNI, or the CONNECT host when the client sent none.
        sni: String,
    },
    /// The proxy terminated the client's TLS with a minted certificate and opened its own TLS
    /// connection to the destination.
    Inspected {
        /// The ClientHello's SNI, or the CONNECT host when the client sent none.
        sni: String,
        /// How the client's handshake with the proxy ended.
        client: ClientHandshake,
        /// How the proxy's own handshake with the destination ended.
        upstream: UpstreamResult,
    },
}

/// How a client's TLS handshake with the intercepting proxy ended, classified the way mitmproxy
/// reports TLS failures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientHandshake {
    /// The client accepted the minted certificate.
    Completed,
    /// The client refused the minted certificate with a TLS alert, which is what a client that
    /// pins its server's keys (or does not trust the inspection CA) does.
    RejectedWithAlert {
        /// The alert as rustls names it: `"UnknownCA"`, `"BadCertificate"`,
        /// `"CertificateUnknown"` …
        alert: String,
    },
    /// The client closed the connection during the handshake without sending an alert.
    ClosedDuringHandshake,
    /// The handshake failed otherwise (protocol error, no common ALPN, minting failed …).
    Failed {
        /// What failed.
        detail: String,
    },
}

/// How the intercepting proxy's own TLS handshake with the destination ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UpstreamResult {
    /// The destination's chain verified against the proxy's upstream roots.
    Connected {
        /// The protocol negotiated by ALPN (`"h2"`, `"http/1.1"`), if any.
        alpn: Option<String>,
    },
    /// The destination's certificate was refused (e.g. not issued by an upstream root); every
    /// request in the tunnel is answered 502.
    CertificateRejected {
        /// What the verifier said.
        detail: String,
    },
    /// The handshake failed otherwise (I/O error, timeout, protocol error); every request in
    /// the tunnel is answered 502.
    Failed {
        /// What failed.
        detail: String,
    },
}

/// One HTTP exchange the intercepting proxy relayed inside an inspected tunnel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelayedExchange {
    /// The request method.
    pub method: String,
    /// The request path and query.
    pub path: String,
    /// The protocol the client spoke (`"HTTP/1.1"`, `"HTTP/2.0"`).
    pub version: String,
    /// The status answered to the client (502 when the destination could not be reached).
    pub status: u16,
    /// Why the proxy answered 502 itself, if it did.
    pub error: Option<String>,
}

/// At most this many relayed exchanges are kept per record.
pub(crate) const MAX_RELAYED_PER_RECORD: usize = 256;

/// One entry of the access log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessRecord {
    /// Sequence number, from 1, unique per log.
    pub id: u64,
    /// The proxy instance's name (from its configuration).
    pub proxy: String,
    /// The client's address.
    pub client: SocketAddr,
    /// The request method (`"CONNECT"`, `"GET"` …); empty when the request head was unreadable.
    pub method: String,
    /// The requested `host:port`, or the raw request target when it could not be parsed
    /// (empty when there was none).
    pub target: String,
    /// The status the proxy answered: 200 for an established tunnel, the destination's status
    /// for a forwarded request, or the proxy's own refusal (400, 403, 407, 431, 502, 504 …);
    /// 0 when no HTTP answer was sent.
    pub status: u16,
    /// What became of the request.
    pub outcome: Outcome,
    /// More about a failure, in words.
    pub detail: Option<String>,
    /// Bytes from the client after the request head: tunnel payload, or the request body.
    pub bytes_up: u64,
    /// Bytes to the client after the response head: tunnel payload, or the response body.
    pub bytes_down: u64,
    /// From the request head to the record, in milliseconds.
    pub duration_ms: u64,
    /// What the intercepting proxy did with TLS in the tunnel; `None` for the CONNECT proxy,
    /// for refused requests and for tunnels that carried no TLS.
    pub tls: Option<TlsHandling>,
    /// The HTTP exchanges relayed inside an inspected tunnel (at most 256, oldest first).
    pub relayed: Vec<RelayedExchange>,
}

/// A cheap, cloneable handle on a proxy's access log.
///
/// Holds at most `capacity` records, evicting the oldest first and counting evictions, so a long
/// run cannot grow memory without bound; capacity 0 keeps nothing.
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    ring: Mutex<Ring>,
    /// Counts every record ever added, so that waiters wake on each one.
    added: watch::Sender<u64>,
}

struct Ring {
    capacity: usize,
    entries: VecDeque<AccessRecord>,
    evicted: u64,
    next_id: u64,
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.lock();
        f.debug_struct("AccessLog")
            .field("capacity", &ring.capacity)
            .field("len", &ring.entries.len())
            .field("evicted", &ring.evicted)
            .finish()
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        Self::new(DEFAULT_LOG_CAPACITY)
    }
}

impl AccessLog {
    /// An empty log keeping at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                ring: Mutex::new(Ring {
                    capacity,
                    entries: VecDeque::with_capacity(capacity.min(1024)),
                    evicted: 0,
                    next_id: 1,
                }),
                added: watch::Sender::new(0),
            }),
        }
    }

    /// A copy of the records, oldest first.
    pub fn entries(&self) -> Vec<AccessRecord> {
        self.lock().entries.iter().cloned().collect()
    }

    /// How many records were evicted to respect the capacity since creation or the last
    /// [`clear`](Self::clear).
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
    }

    /// The number of records held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// The maximum number of records held.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Drops every record and resets the eviction count (ids keep increasing).
    pub fn clear(&self) {
        let mut ring = self.lock();
        ring.entries.clear();
        ring.evicted = 0;
    }

    /// The held records for which `pred` is true, oldest first.
    pub fn filter(&self, pred: impl Fn(&AccessRecord) -> bool) -> Vec<AccessRecord> {
        self.lock()
            .entries
            .iter()
            .filter(|r| pred(r))
            .cloned()
            .collect()
    }

    /// The oldest held record for which `pred` is true.
    pub fn find(&self, pred: impl Fn(&AccessRecord) -> bool) -> Option<AccessRecord> {
        self.lock().entries.iter().find(|r| pred(r)).cloned()
    }

    /// Waits until a held record satisfies `pred` and returns the oldest such record, or `None`
    /// when `timeout` passes first. Wakes on every new record; never polls.
    pub async fn wait_for(
        &self,
        pred: impl Fn(&AccessRecord) -> bool,
        timeout: Duration,
    ) -> Option<AccessRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut added = self.inner.added.subscribe();
        loop {
            // Marking the current count seen before scanning means a record added during the
            // scan still wakes the next `changed()`.
            added.borrow_and_update();
            if let Some(found) = self.find(&pred) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, added.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Appends a record, giving it the next id and evicting the oldest when full.
    pub(crate) fn record(&self, mut record: AccessRecord) {
        {
            let mut ring = self.lock();
            record.id = ring.next_id;
            ring.next_id += 1;
            if ring.capacity == 0 {
                ring.evicted += 1;
            } else {
                while ring.entries.len() >= ring.capacity {
                    ring.entries.pop_front();
                    ring.evicted += 1;
                }
                ring.entries.push_back(record);
            }
        }
        self.inner.added.send_modify(|n| *n += 1);
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic elsewhere while holding the lock leaves the ring consistent (every mutation
        // is a single push, pop or clear), so a poisoned lock is still usable.
        self.inner
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fixed facts of a request, known when its head is read; completed into a record later.
#[derive(Clone, Debug)]
pub(crate) struct PendingRecord {
    pub(crate) proxy: String,
    pub(crate) client: SocketAddr,
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) started: Instant,
}

impl PendingRecord {
    /// Completes the record with what happened; byte counts, TLS handling and relayed
    /// exchanges start empty.
    pub(crate) fn finish(
        self,
        status: u16,
        outcome: Outcome,
        detail: Option<String>,
    ) -> AccessRecord {
        AccessRecord {
            id: 0,
            proxy: self.proxy,
            client: self.client,
            method: self.method,
            target: self.target,
            status,
            outcome,
            detail,
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            tls: None,
            relayed: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(target: &str) -> AccessRecord {
        PendingRecord {
            proxy: "test".into(),
            client: SocketAddr::from(([127, 0, 0, 1], 1)),
            method: "CONNECT".into(),
            target: target.into(),
            started: Instant::now(),
        }
        .finish(200, Outcome::Completed, None)
    }

    #[test]
    fn ring_evicts_oldest_and_counts() {
        let log = AccessLog::new(2);
        for t in ["a:1", "b:1", "c:1"] {
            log.record(record(t));
        }
        let entries = log.entries();
        assert_eq!(
            entries
                .iter()
                .map(|r| r.target.as_str())
                .collect::<Vec<_>>(),
            ["b:1", "c:1"]
        );
        assert_eq!(entries.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(log.evicted(), 1);
        log.clear();
        assert!(log.is_empty());
        assert_eq!(log.evicted(), 0);
        log.record(record("d:1"));
        assert_eq!(log.entries()[0].id, 4);

        let off = AccessLog::new(0);
        off.record(record("a:1"));
        assert!(off.is_empty());
        assert_eq!(off.evicted(), 1);
    }

    #[tokio::test]
    async fn wait_for_wakes_on_a_new_record_and_times_out_otherwise() {
        let log = AccessLog::new(8);
        assert!(
            log.wait_for(|_| true, Duration::from_millis(20))
                .await
                .is_none()
        );
        let writer = log.clone();
        let waiter = tokio::spawn(async move {
            log.wait_for(|r| r.target == "b:1", Duration::from_secs(10))
                .await
        });
        writer.record(record("a:1"));
        writer.record(record("b:1"));
        let found = waiter.await.unwrap().expect("record b:1 seen");
        assert_eq!(found.target, "b:1");
    }

    #[test]
    fn records_serialise_with_snake_case_tags() {
        let mut r = record("a:443");
        r.tls = Some(TlsHandling::Inspected {
            sni: "a".into(),
            client: ClientHandshake::RejectedWithAlert {
                alert: "UnknownCA".into(),
            },
            upstream: UpstreamResult::Connected {
                alpn: Some("h2".into()),
            },
        });
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["outcome"], "completed");
        assert_eq!(json["client"], "127.0.0.1:1");
        assert_eq!(json["tls"]["kind"], "inspected");
        assert_eq!(json["tls"]["client"]["kind"], "rejected_with_alert");
        assert_eq!(json["tls"]["client"]["alert"], "UnknownCA");
        assert_eq!(json["tls"]["upstream"]["alpn"], "h2");
    }
}
