//! The accept loop and the handle on a running proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access_log::AccessLog;
use crate::error::Error;
use crate::front::Front;
use crate::intercept::mint::CertCache;

/// How long the accept loop backs off after an accept error (e.g. out of file descriptors), so
/// that a persistent error does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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

async fn accept_loop(listener: TcpListener, front: Arc<Front>) {
    loop {
        let accepted = tokio::select! {
            () = front.token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                front
                    .tracker
                    .spawn(front.clone().serve_connection(stream, peer));
            }
            Err(error) => {
                tracing::warn!(proxy = %front.name, %error, "accept failed");
                tokio::select! {
                    () = front.token.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    tracing::info!(proxy = %front.name, "proxy stopped accepting");
}
