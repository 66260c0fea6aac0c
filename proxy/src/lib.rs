//! Generic lab proxies: a plain CONNECT proxy and a TLS-intercepting proxy.
//!
//! They are the two kinds of proxy a corporate network puts in front of a device, and the
//! difference between them is what the lab shows: a CONNECT proxy tunnels bytes, so a client's
//! TLS (and its certificate pinning) runs end to end; an intercepting proxy terminates TLS with
//! a certificate minted by its own CA, which a pinning client refuses.
//!
//! Neither proxy knows anything of Microsoft Defender for Endpoint: each is given a
//! destination table ([`Destinations`]), optional credentials ([`Credentials`]) and, for the
//! intercepting one, a leaf issuer and the roots it trusts upstream. Both record what they did
//! in an [`AccessLog`]. The caller binds the listener; `spawn` returns a [`Running`] handle.
//!
//! # Layout
//! - [`connect`]: the plain CONNECT proxy (tunnels, plus absolute-form `http://` forwarding).
//! - [`intercept`]: the TLS-intercepting proxy (ClientHello peek, bypass list, minted
//!   certificates, HTTP relay over its own TLS to the destination).
//! - `front`: the HTTP/1 front door both share: request parsing, policy, authentication,
//!   dialling, tunnels and forwarding.
//! - [`destinations`]: the destination policy ([`Destinations`], [`Route`]).
//! - [`auth`]: Basic proxy authentication ([`Credentials`]).
//! - [`access_log`]: the bounded access log and its records ([`AccessRecord`]).
//! - [`limits`]: timeouts and size caps ([`Timeouts`]).
//! - `server`: the accept loop and [`Running`].
//! - `io`, `http`, `tasks`: metered streams and dialling, HTTP helpers, tracked tasks.
//! - [`error`]: the crate's [`Error`].

#![warn(missing_docs)]

pub mod access_log;
pub mod auth;
pub mod connect;
pub mod destinations;
pub mod error;
mod front;
mod http;
pub mod intercept;
mod io;
pub mod limits;
mod server;
mod tasks;

pub use access_log::{
    AccessLog, AccessRecord, ClientHandshake, Outcome, RelayedExchange, TlsHandling, UpstreamResult,
};
pub use auth::Credentials;
pub use destinations::{Destinations, Route};
pub use error::Error;
pub use limits::Timeouts;
pub use server::Running;

#[cfg(test)]
mod tests;
