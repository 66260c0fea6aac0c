//! Timeouts and size caps shared by both proxies.

use std::time::Duration;

/// The default header read timeout.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default tunnel idle timeout. Generous because a command-and-control long poll is held by
/// the server for minutes without a byte moving.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The default timeout for dialling a destination.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default cap on concurrent client connections per proxy. At the cap the oldest
/// connection that has not sent a request yet is closed for the newcomer; when every connection
/// has, the newcomer is closed.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default cap on a request head (request line and headers), in bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// How long a proxy waits for each thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Time for a client to send a complete request head, counted from when the proxy starts
    /// waiting for it (also between keep-alive requests); the connection is then closed.
    pub header_read: Duration,
    /// A tunnel in which no byte moved either way for this long is closed.
    pub idle: Duration,
    /// Time to establish the TCP connection to a destination (504 when it passes), and for the
    /// intercepting proxy's TLS handshake with the destination.
    pub connect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read: DEFAULT_HEADER_READ_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
            connect: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}
