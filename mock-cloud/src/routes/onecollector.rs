//! 1DS OneCollector ingestion. (Placeholder: the data-plane implementation replaces this file.)

use axum::Router;

use crate::State;

/// Routes of the cyber-data hosts (`POST /OneCollector/1.0[/]`).
pub fn routes() -> Router<State> {
    Router::new()
}
