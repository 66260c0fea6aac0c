//! The crate's error type.

use std::io;

/// What can go wrong while starting or stopping the mock cloud.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listener's local address could not be read.
    #[error("failed to read the local address of the {listener} listener")]
    LocalAddr {
        /// Which listener ("https", "http").
        listener: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A certificate for a catalog host could not be minted.
    #[error("failed to mint the certificate for {host}")]
    Certificate {
        /// The host.
        host: String,
        /// What the PKI said.
        #[source]
        source: mdelab_certs::Error,
    },
    /// rustls refused a certificate or key.
    #[error("failed to load the certificate for {host} into rustls")]
    Rustls {
        /// The host.
        host: String,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// The TLS server configuration could not be built.
    #[error("failed to build the TLS server configuration")]
    TlsConfig {
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// The journal file could not be opened.
    #[error("failed to open the journal file {path}")]
    JournalFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A fault file or rule is not valid.
    #[error("invalid fault rules: {detail}")]
    Faults {
        /// What is wrong.
        detail: String,
    },
}
