//! Admin routes over the cloud's stores (events, blobs, devices, Live Response sessions).
//! (Filled in once the stores exist.)

use axum::Router;

/// The store routes (protected by the admin token by the caller).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
}
