//! Blob storage. (Placeholder: the data-plane implementation replaces this file.)

use axum::Router;

use crate::State;

/// Routes of `<account>.blob.core.windows.net` hosts (account from the host).
pub fn blob_routes() -> Router<State> {
    Router::new()
}

/// Routes of the streamlined gateways' `/storage/<account>/…` paths.
pub fn gateway_routes() -> Router<State> {
    Router::new()
}
