//! The accept loop and the handle on a running proxy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access_log::AccessLog;
use crate::error::Error;
use crate::front::Front;
use crate::intercept::mint::CertCache;

/// How long the accept loop backs off after a first accept error (e.g. out of file
/// descriptors), doubling up to [`ACCEPT_BACKOFF_MAX`] while errors persist, so that a
/// persistent error does not spin.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(1);
/// The longest accept back-off.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A running proxy (either kind): its address, its access log, and how to stop it.
///
/// Dropping it cancels the proxy too; [`shutdown`](Self::shutdown) also waits for every
/// connection task to end.
#[derive(Debug)]
pub struct Running {
    name: String,
    addr: SocketAddr,
    log: AccessLog,
    token: CancellationToken,
    tracker: TaskTracker,
    certs: Option<Arc<CertCache>>,
}

impl Running {
    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's instance name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle on the proxy's access log.
    pub fn log(&self) -> AccessLog {
        self.log.clone()
    }

    /// How many leaf certificates the intercepting proxy has minted (each name is minted once
    /// and then served from its cache); always 0 for the CONNECT proxy.
    pub fn minted(&self) -> u64 {
        self.certs.as_ref().map_or(0, |c| c.minted())
    }

    /// The names the intercepting proxy holds minted certificates for, sorted; empty for the
    /// CONNECT proxy.
    pub fn cached_names(&self) -> Vec<String> {
        self.certs.as_ref().map_or_else(Vec::new, |c| c.names())
    }

    /// Stops accepting, cancels every connection and tunnel, and waits until all have ended and
    /// the listening socket is closed (so its port can be bound again at once).
    pub async fn shutdown(self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Starts the accept loop of `front` on `listener`.
pub(crate) fn start(
    listener: TcpListener,
    front: Front,
    certs: Option<Arc<CertCache>>,
) -> Result<Running, Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::NoRuntime { proxy: front.name });
    }
    let addr = listener.local_addr().map_err(|source| Error::LocalAddr {
        proxy: front.name.clone(),
        source,
    })?;
    let front = Arc::new(front);
    let running = Running {
        name: front.name.clone(),
        addr,
        log: front.log.clone(),
        token: front.token.clone(),
        tracker: front.tracker.clone(),
        certs,
    };
    tracing::info!(proxy = %front.name, %addr, "proxy listening");
    front.tracker.spawn(accept_loop(listener, front.clone()));
    Ok(running)
}

/// The open client connections of one proxy, oldest first.
#[derive(Default)]
struct Slots {
    next: u64,
    open: BTreeMap<u64, Slot>,
}

struct Slot {
    /// Requests the connection has sent.
    requests: Arc<AtomicU64>,
    /// Cancelled to close it.
    cut: CancellationToken,
}

impl Slots {
    /// Makes room for one more connection under `cap`: sheds the oldest connection that has not
    /// sent a request yet; `false` when every open connection has.
    fn make_room(&mut self, cap: usize) -> bool {
        self.open.retain(|_, slot| !slot.cut.is_cancelled());
        if self.open.len() < cap {
            return true;
        }
        let victim = self
            .open
            .iter()
            .find(|(_, slot)| slot.requests.load(Ordering::Relaxed) == 0)
            .map(|(id, _)| *id);
        match victim.and_then(|id| self.open.remove(&id)) {
            Some(slot) => {
                slot.cut.cancel();
                true
            }
            None => false,
        }
    }
}

async fn accept_loop(listener: TcpListener, front: Arc<Front>) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            () = front.token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                let requests = Arc::new(AtomicU64::new(0));
                let cut = CancellationToken::new();
                let id = {
                    let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
                    if !slots.make_room(front.max_connections) {
                        tracing::warn!(proxy = %front.name, %peer, "at the connection cap with every connection busy: closing the newcomer");
                        continue;
                    }
                    let id = slots.next;
                    slots.next += 1;
                    slots.open.insert(
                        id,
                        Slot {
                            requests: requests.clone(),
                            cut: cut.clone(),
                        },
                    );
                    id
                };
                let serve = front.clone().serve_connection(stream, peer, requests);
                let slots = slots.clone();
                front.tracker.spawn(async move {
                    tokio::select! {
                        () = serve => {}
                        () = cut.cancelled() => {}
                    }
                    slots
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .open
                        .remove(&id);
                });
            }
            Err(error) => {
                tracing::warn!(proxy = %front.name, %error, "accept failed");
                tokio::select! {
                    () = front.token.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
    tracing::info!(proxy = %front.name, "proxy stopped accepting");
}
