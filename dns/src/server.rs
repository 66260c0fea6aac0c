//! Starting and stopping the server on sockets the caller has bound.
//!
//! The caller binds because only it knows which addresses the lab uses (and it may need to bind
//! privileged ports before dropping privileges); this crate never binds anything itself.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::NetError;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::error::Error;
use crate::fault::Faults;
use crate::handler::{Handler, Zone};
use crate::journal::Journal;
use crate::table::{NameTable, is_in_zone, normalize};

/// How many responses may wait to be written on one TCP connection; queries on a connection are
/// answered one at a time, so a handful is plenty.
const TCP_RESPONSE_BUFFER: usize = 32;

/// What the server serves and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The names answered.
    pub table: NameTable,
    /// The zones this server is authoritative for, as suffixes (`microsoft.com`); names outside
    /// every zone are REFUSED, unknown names inside one are NXDOMAIN. `""` or `"."` is the root,
    /// which contains every name.
    pub zones: Vec<String>,
    /// How many queries the journal keeps (the oldest are evicted); 0 turns it off.
    pub journal_capacity: usize,
    /// How long a TCP connection may stay idle before the server closes it.
    pub tcp_idle_timeout: Duration,
    /// The TTL of every record sent, in seconds, and the negative-caching TTL.
    pub ttl: u32,
}

impl Config {
    /// Serves `table`, authoritative for the zones it implies (see
    /// [`NameTable::derived_zones`]: the last two labels of every name), with a 1024-entry
    /// journal, a 5 s TCP idle timeout and a 1 s TTL.
    ///
    /// The short TTL keeps caching resolvers in front of this server from hiding changes made
    /// with [`Faults`].
    pub fn new(table: NameTable) -> Self {
        Self {
            zones: table.derived_zones(),
            table,
            journal_capacity: 1024,
            tcp_idle_timeout: Duration::from_secs(5),
            ttl: 1,
        }
    }

    /// Replaces the served zones.
    #[must_use]
    pub fn with_zones<I, S>(mut self, zones: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.zones = zones
            .into_iter()
            .map(|zone| zone.as_ref().to_owned())
            .collect();
        self
    }

    /// Sets the journal capacity (0 turns the journal off).
    #[must_use]
    pub fn with_journal_capacity(mut self, capacity: usize) -> Self {
        self.journal_capacity = capacity;
        self
    }

    /// Sets the TCP idle timeout.
    #[must_use]
    pub fn with_tcp_idle_timeout(mut self, timeout: Duration) -> Self {
        self.tcp_idle_timeout = timeout;
        self
    }

    /// Sets the TTL of the records sent.
    #[must_use]
    pub fn with_ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }
}

/// A running server; [`shutdown`](Self::shutdown) stops it and frees its sockets.
///
/// Dropping it without `shutdown` also stops it, but without waiting for the sockets to close.
#[derive(Debug)]
pub struct Running {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    journal: Journal,
    faults: Faults,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), NetError>>>,
}

/// Starts answering DNS on `udp` and `tcp` with `config`, until [`Running::shutdown`] or the
/// cancellation of `parent`.
///
/// Must be called from within a Tokio runtime. Fails when a socket cannot tell its address or a
/// zone is not a valid DNS name.
pub fn spawn(
    udp: UdpSocket,
    tcp: TcpListener,
    config: Config,
    parent: &CancellationToken,
) -> Result<Running, Error> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let udp_addr = udp.local_addr().map_err(|source| Error::LocalAddr {
        protocol: "UDP",
        source,
    })?;
    let tcp_addr = tcp.local_addr().map_err(|source| Error::LocalAddr {
        protocol: "TCP",
        source,
    })?;

    let zones = config
        .zones
        .iter()
        .map(|zone| Zone::new(zone, config.ttl))
        .collect::<Result<Vec<_>, _>>()?;
    warn_about_unserved_names(&config);

    let journal = Journal::new(config.journal_capacity);
    let faults = Faults::new();
    let handler = Handler::new(
        config.table,
        zones,
        config.ttl,
        journal.clone(),
        faults.clone(),
    );

    // `Server` registers its listener tasks on the current runtime, which was checked above.
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, config.tcp_idle_timeout, TCP_RESPONSE_BUFFER);

    let stop = parent.child_token();
    let task = runtime.spawn(supervise(server, stop.clone()));
    debug!(%udp_addr, %tcp_addr, "DNS server started");
    Ok(Running {
        udp_addr,
        tcp_addr,
        journal,
        faults,
        stop,
        task: Some(task),
    })
}

/// Runs the server until `stop`, then shuts it down gracefully, which returns only once the
/// listener tasks (and with them the sockets) are gone.
async fn supervise(mut server: Server<Handler>, stop: CancellationToken) -> Result<(), NetError> {
    let ended = tokio::select! {
        // Without a shutdown this returns only if a listener fails.
        result = server.block_until_done() => Some(result),
        () = stop.cancelled() => None,
    };
    match ended {
        Some(result) => {
            if let Err(error) = &result {
                warn!(%error, "DNS server stopped on its own");
            }
            result
        }
        None => server.shutdown_gracefully().await,
    }
}

/// Names outside every zone would be REFUSED despite their entry, which is surely a mistake in
/// the caller's configuration; say so once at start.
fn warn_about_unserved_names(config: &Config) {
    let zones: Vec<String> = config.zones.iter().map(|zone| normalize(zone)).collect();
    for (pattern, _) in config.table.iter() {
        let base = pattern.strip_prefix("*.").unwrap_or(&pattern);
        if !zones.iter().any(|zone| is_in_zone(base, zone)) {
            warn!(%pattern, "name table entry lies outside every served zone and will be refused");
        }
    }
}

impl Running {
    /// The address the server answers UDP queries on.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The address the server answers TCP queries on.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// A handle on the server's query journal.
    pub fn journal(&self) -> Journal {
        self.journal.clone()
    }

    /// A handle on the server's faults, to change them while it runs.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// Stops the server and waits until it has stopped and released both sockets, so their ports
    /// can be bound again as soon as this returns.
    ///
    /// Queries in flight (delayed ones included) are abandoned unanswered. Fails if the server
    /// had already failed on its own.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.stop.cancel();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        task.await
            .map_err(|source| Error::Join { source })?
            .map_err(|source| Error::Serve { source })?;
        debug!(udp_addr = %self.udp_addr, tcp_addr = %self.tcp_addr, "DNS server stopped");
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Without this, forgetting `shutdown` would leave the server running until `parent`
        // is cancelled.
        self.stop.cancel();
    }
}
