//! The crate's error type.

use std::io;

/// Everything that can fail when starting a proxy.
///
/// Failures while serving (a client that sends garbage, an upstream that refuses) never surface
/// here: they end one connection and are written to the [`crate::AccessLog`], and the listener
/// keeps serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listener handed to `spawn` could not tell its own address.
    #[error("failed to read the local address of the {proxy} proxy listener")]
    LocalAddr {
        /// The proxy's instance name.
        proxy: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },

    /// `spawn` was called outside a Tokio runtime, where it cannot start tasks.
    #[error("failed to start the {proxy} proxy: not called from within a Tokio runtime")]
    NoRuntime {
        /// The proxy's instance name.
        proxy: String,
    },

    /// A certificate of the intercepting proxy's upstream root store was refused by rustls.
    #[error("failed to add upstream root certificate #{index} to the {proxy} proxy's root store")]
    UpstreamRoot {
        /// The proxy's instance name.
        proxy: String,
        /// Position of the certificate in `upstream_roots`.
        index: usize,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },

    /// rustls refused to build a TLS configuration (e.g. no usable protocol version).
    #[error("failed to build the {side} TLS configuration of the {proxy} proxy")]
    TlsConfig {
        /// The proxy's instance name.
        proxy: String,
        /// `"client-facing"` or `"upstream"`.
        side: &'static str,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },

    /// The intercepting proxy could not mint a certificate for a name.
    #[error("failed to mint an inspection certificate for {name}")]
    Mint {
        /// The name (SNI or CONNECT host) the certificate was for.
        name: String,
        /// What the PKI said.
        #[source]
        source: mdelab_certs::Error,
    },

    /// A freshly minted certificate's key could not be loaded for signing.
    #[error("failed to load the key of the inspection certificate for {name}")]
    MintKey {
        /// The name the certificate was for.
        name: String,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
}
