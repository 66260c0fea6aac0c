//! HTTP routing for every lab host.
//!
//! Requests are routed by host (the `Host` header or h2 `:authority`, else the TLS SNI) and
//! path. Today every host answers its catalog probes; service families add their own routers.
//!
//! # Layout
//! - [`probe`]: the catalog probe answers (`/test` → 200, blob account root → 400…), 404 else.

pub mod probe;

use std::net::SocketAddr;

use axum::Router;

use crate::State;
use crate::catalog::Scheme;

/// What the listener knows about the connection a request came on.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Which listener.
    pub scheme: Scheme,
    /// The TLS server name, for HTTPS.
    pub sni: Option<String>,
}

/// The router for every lab host.
pub fn app(state: State) -> Router {
    Router::new().fallback(probe::answer).with_state(state)
}
