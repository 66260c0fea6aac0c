//! The sensor crate's one error type. Refused connections are not errors (they are
//! [`Verdict`](crate::Verdict)s); these are inputs the device cannot use: a machine profile, an
//! onboarding blob, a PAC file.

use std::path::PathBuf;

/// What the sensor could not use, and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A machine profile is not valid TOML of the profile's shape (unknown fields included).
    #[error("invalid machine profile: {detail}")]
    ProfileSyntax {
        /// The TOML parser's message (line, column, what it expected).
        detail: String,
    },
    /// A machine profile asks for a combination the lab cannot build.
    #[error("{detail}")]
    InvalidProfile {
        /// Which setting is wrong and why.
        detail: String,
    },
    /// A profile file could not be read.
    #[error("failed to read the profile {}", path.display())]
    ReadProfile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A profile file was read but is not a valid profile.
    #[error("in {}", path.display())]
    InProfile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<Error>,
    },
    /// Not the JSON shape of an onboarding blob.
    #[error("not an onboarding blob: {0}")]
    OnboardingShape(String),
    /// An onboarding blob field is missing or unusable.
    #[error("onboarding blob field {field}: {detail}")]
    OnboardingField {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A PAC file the device fetched could not be evaluated (the lab serves one constant
    /// `return "PROXY host:port; DIRECT";`).
    #[error("{detail}")]
    Pac {
        /// What is wrong with it.
        detail: String,
    },
    /// The WPAD server could not be reached or did not answer in time.
    #[error("the WPAD server did not answer: {detail}")]
    Wpad {
        /// What happened.
        detail: String,
    },
}
