//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while building, loading or saving the lab PKI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// rcgen refused to build or sign a certificate.
    #[error("failed to issue the certificate for {subject}")]
    Issue {
        /// The subject (CA name or leaf host) being issued.
        subject: String,
        /// What rcgen said.
        #[source]
        source: rcgen::Error,
    },
    /// A key pair could not be generated.
    #[error("failed to generate a {algorithm} key pair")]
    KeyGeneration {
        /// The algorithm requested.
        algorithm: &'static str,
        /// What failed, as text (the RSA and ring errors have no common type).
        detail: String,
    },
    /// A PEM key or certificate could not be parsed.
    #[error("failed to parse {what}: {detail}")]
    Parse {
        /// Which item (e.g. a file name).
        what: String,
        /// What the parser said.
        detail: String,
    },
    /// A state directory holds keys of another algorithm than requested.
    #[error(
        "the state directory {dir} holds {found} keys but {requested} was requested; \
         pass the matching key algorithm or use another state directory"
    )]
    AlgorithmMismatch {
        /// The state directory.
        dir: PathBuf,
        /// Algorithm of the stored keys.
        found: &'static str,
        /// Algorithm requested by the caller.
        requested: &'static str,
    },
    /// Reading a file of the state directory failed.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file of the state directory failed.
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A pin string is not in any of the four known syntaxes.
    #[error(
        "not a SHA-256 SPKI pin: {input:?} (expected sha256//B64, sha256/B64, pin-sha256=\"B64\" or B64)"
    )]
    BadPin {
        /// The text given.
        input: String,
    },
}
