//! The crate's error type.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::ProtoError;
use hickory_proto::serialize::binary::DecodeError;
use hickory_server::net::NetError;

/// Everything that can fail in this crate: starting and stopping the server, and resolving
/// through it with [`crate::resolve`].
///
/// The resolution outcomes a caller reports differently ("no such name" against "refused" against
/// "no answer") are separate variants.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server's UDP or TCP socket could not tell its own address.
    #[error("failed to read local address of the DNS {protocol} socket")]
    LocalAddr {
        /// `"UDP"` or `"TCP"`.
        protocol: &'static str,
        /// The socket error.
        #[source]
        source: io::Error,
    },

    /// [`crate::spawn`] was called outside a Tokio runtime, where it cannot start tasks.
    #[error("failed to start the DNS server: not called from within a Tokio runtime")]
    NoRuntime,

    /// A served zone is not a valid DNS name.
    #[error("failed to use {zone:?} as a DNS zone: not a valid name")]
    InvalidZone {
        /// The zone as configured.
        zone: String,
        /// Why it is invalid.
        #[source]
        source: ProtoError,
    },

    /// A listener task of the server ended with an error.
    #[error("DNS server failed while serving")]
    Serve {
        /// The server's error.
        #[source]
        source: NetError,
    },

    /// The server's supervising task panicked or was aborted.
    #[error("DNS server task did not finish cleanly")]
    Join {
        /// The task's failure.
        #[source]
        source: tokio::task::JoinError,
    },

    /// The name given to [`crate::resolve`] is not a valid DNS name.
    #[error("failed to resolve {name:?}: not a valid DNS name")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is invalid.
        #[source]
        source: ProtoError,
    },

    /// The stub client could not open its UDP socket towards the server.
    #[error("failed to open a UDP socket to query the DNS server {server}")]
    ClientSocket {
        /// The server queried.
        server: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },

    /// A query could not be encoded.
    #[error("failed to encode the DNS query for {name}")]
    Encode {
        /// The name queried.
        name: String,
        /// The encoder's error.
        #[source]
        source: ProtoError,
    },

    /// Sending a query or receiving its response failed at the socket level.
    #[error("failed to exchange DNS messages with {server} for {name}")]
    Exchange {
        /// The server queried.
        server: SocketAddr,
        /// The name queried.
        name: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },

    /// The server answered with something that is not a DNS message.
    #[error("failed to decode the DNS response from {server} for {name}")]
    Decode {
        /// The server queried.
        server: SocketAddr,
        /// The name queried.
        name: String,
        /// The decoder's error.
        #[source]
        source: DecodeError,
    },

    /// The server set the truncation bit; this stub client does not retry over TCP.
    #[error("failed to resolve {name} via {server}: the response was truncated")]
    Truncated {
        /// The server queried.
        server: SocketAddr,
        /// The name queried.
        name: String,
    },

    /// The server says the name does not exist (NXDOMAIN).
    #[error("failed to resolve {name} via {server}: no such name (NXDOMAIN)")]
    NxDomain {
        /// The server queried.
        server: SocketAddr,
        /// The name queried.
        name: String,
    },

    /// The server refused to answer (REFUSED), typically because the name is outside its zones.
    #[error("failed to resolve {name} via {server}: the DNS server refused (REFUSED)")]
    Refused {
        /// The server queried.
        server: SocketAddr,
        /// The name queried.
        name: String,
    },

    /// The server failed (SERVFAIL).
    #[error("failed to resolve {name} via {server}: the DNS server failed (SERVFAIL)")]
    ServFail {
        /// The server queried.
        server: SocketAddr,
        /// The name queried.
        name: String,
    },

    /// The server answered with another error response code.
    #[error("failed to resolve {name} via {server}: the DNS server answered {rcode}")]
    Rcode {
        /// The server queried.
        server: SocketAddr,
        /// The name queried.
        name: String,
        /// The response code, spelled as in [`crate::QueryRecord::rcode`].
        rcode: String,
    },

    /// No usable answer arrived in time.
    #[error("failed to resolve {name} via {server}: no answer within {timeout:?}")]
    Timeout {
        /// The server queried.
        server: SocketAddr,
        /// The name queried.
        name: String,
        /// The time allowed.
        timeout: Duration,
    },
}
