//! Verdicts: what happened to one connection attempt, as data.
//!
//! An expected TLS rejection is a result, not an error. Each verdict names the layer that
//! decided it, so a report can say *which* check refused the connection: DNS, TCP, the proxy,
//! chain trust, the pin, the name, or the HTTP exchange.

use std::fmt;

use serde::Serialize;

/// What happened to a connection attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// The exchange completed; the server answered with this status.
    Connected {
        /// HTTP status.
        status: u16,
    },
    /// The chain was trusted but no certificate in it carries a pinned key.
    PinMismatch,
    /// The chain does not lead to a root in the device's trust store.
    UnknownIssuer,
    /// The certificate does not name the host.
    NameMismatch,
    /// The certificate is expired or not yet valid.
    Expired,
    /// The proxy demanded authentication (407) and the client has no credentials for it.
    ProxyAuthRequired,
    /// The proxy refused the CONNECT or request with this status (403, 502…).
    ProxyRefused {
        /// Status the proxy answered.
        status: u16,
    },
    /// The server ended the handshake with a TLS alert.
    TlsAlert {
        /// The alert, as rustls names it.
        alert: String,
    },
    /// The name did not resolve.
    DnsFailure {
        /// What the resolver said (NXDOMAIN, REFUSED, SERVFAIL, timeout).
        reason: String,
    },
    /// The TCP connection was refused.
    Refused,
    /// Nothing answered in time.
    Timeout,
    /// The device itself refused to connect (network protection in block mode).
    BlockedOnDevice {
        /// What blocked it.
        by: String,
    },
    /// A query over what the cloud received answered this many rows.
    Rows {
        /// Row count.
        count: usize,
    },
    /// Anything else, with the detail.
    Other {
        /// What failed.
        detail: String,
    },
}

/// The layer that decided a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// Name resolution.
    Dns,
    /// TCP connect.
    Tcp,
    /// The proxy.
    Proxy,
    /// TLS chain validation against the trust store.
    TlsTrust,
    /// The pin check after chain validation.
    TlsPin,
    /// TLS name or validity checks, or a server alert.
    Tls,
    /// The HTTP exchange.
    Http,
    /// The device, before any connection (network protection).
    Device,
    /// What the cloud received (advanced hunting).
    Hunting,
}

impl Verdict {
    /// Which layer decided.
    pub fn layer(&self) -> Layer {
        match self {
            Self::Connected { .. } => Layer::Http,
            Self::PinMismatch => Layer::TlsPin,
            Self::UnknownIssuer => Layer::TlsTrust,
            Self::NameMismatch | Self::Expired | Self::TlsAlert { .. } => Layer::Tls,
            Self::ProxyAuthRequired | Self::ProxyRefused { .. } => Layer::Proxy,
            Self::DnsFailure { .. } => Layer::Dns,
            Self::Refused | Self::Timeout | Self::Other { .. } => Layer::Tcp,
            Self::BlockedOnDevice { .. } => Layer::Device,
            Self::Rows { .. } => Layer::Hunting,
        }
    }

    /// A short label for tables: `200`, `pin mismatch`, `407`…
    pub fn label(&self) -> String {
        match self {
            Self::Connected { status } => status.to_string(),
            Self::PinMismatch => "pin mismatch".into(),
            Self::UnknownIssuer => "unknown issuer".into(),
            Self::NameMismatch => "name mismatch".into(),
            Self::Expired => "expired".into(),
            Self::ProxyAuthRequired => "proxy 407".into(),
            Self::ProxyRefused { status } => format!("proxy {status}"),
            Self::TlsAlert { alert } => format!("alert {alert}"),
            Self::DnsFailure { reason } => format!("dns {reason}"),
            Self::Refused => "refused".into(),
            Self::Timeout => "timeout".into(),
            Self::BlockedOnDevice { .. } => "blocked on device".into(),
            Self::Rows { count: 1 } => "1 row".into(),
            Self::Rows { count } => format!("{count} rows"),
            Self::Other { .. } => "error".into(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// A verdict with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// What happened.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Which layer decided.
    pub layer: Layer,
    /// Why, in words for a change board (deterministic: names, never hashes or ports).
    pub evidence: String,
    /// Issuer of the leaf the server presented, when a TLS handshake got that far.
    pub served_issuer: Option<String>,
}

impl Outcome {
    /// An outcome with its layer derived from the verdict.
    pub fn new(
        verdict: Verdict,
        evidence: impl Into<String>,
        served_issuer: Option<String>,
    ) -> Self {
        Self {
            layer: verdict.layer(),
            verdict,
            evidence: evidence.into(),
            served_issuer,
        }
    }
}
