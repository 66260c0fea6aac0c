//! The plain CONNECT proxy: it opens tunnels and copies bytes, never looking inside, so the
//! client's TLS runs end to end with the destination and certificate pinning holds.
//!
//! It also forwards absolute-form `http://` requests (`GET http://crl.microsoft.com/…`), which
//! is how certificate revocation lists and trust lists are fetched through a proxy.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access_log::{AccessLog, DEFAULT_LOG_CAPACITY};
use crate::auth::Credentials;
use crate::destinations::Destinations;
use crate::error::Error;
use crate::front::{Front, Mode};
use crate::limits::{DEFAULT_MAX_HEADER_BYTES, Timeouts};

pub use crate::server::Running;

/// Configuration of a CONNECT proxy.
#[derive(Clone, Debug)]
pub struct ConnectConfig {
    /// The instance name, written into every access record (e.g. `"connect"`, `"PROX01"`).
    pub name: String,
    /// Where clients may go and where those names really are.
    pub destinations: Destinations,
    /// When set, requests without these Basic credentials get 407.
    pub credentials: Option<Credentials>,
    /// Header read, tunnel idle and connect timeouts.
    pub timeouts: Timeouts,
    /// The cap on a request head in bytes; larger heads get 431.
    pub max_header_bytes: usize,
    /// How many access records are kept.
    pub log_capacity: usize,
    /// Most concurrent client connections; at the cap the oldest that has not sent a request
    /// yet is closed for the newcomer, else the newcomer is closed.
    pub max_connections: usize,
}

impl ConnectConfig {
    /// A configuration with no authentication and default limits.
    pub fn new(name: impl Into<String>, destinations: Destinations) -> Self {
        Self {
            name: name.into(),
            destinations,
            credentials: None,
            timeouts: Timeouts::default(),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            log_capacity: DEFAULT_LOG_CAPACITY,
            max_connections: crate::limits::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Starts a CONNECT proxy on a listener the caller bound; it stops when `parent` is cancelled
/// or [`Running::shutdown`] is called.
pub fn spawn(
    listener: TcpListener,
    config: ConnectConfig,
    parent: &CancellationToken,
) -> Result<Running, Error> {
    let front = Front {
        log: AccessLog::new(config.log_capacity),
        name: config.name,
        destinations: config.destinations,
        credentials: config.credentials,
        timeouts: config.timeouts,
        max_header_bytes: config.max_header_bytes,
        max_connections: config.max_connections,
        mode: Mode::Splice,
        tracker: TaskTracker::new(),
        token: parent.child_token(),
    };
    crate::server::start(listener, front, None)
}
