//! Cloud protection (MAPS) and settings. (Placeholder: the data-plane implementation replaces
//! this file.)

use axum::Router;

use crate::State;

/// Routes of the MAPS hosts (`*.cp.wd…`, `mdav.*`, `x.cp.wd…`).
pub fn routes() -> Router<State> {
    Router::new()
}

/// Routes of the settings/ECS hosts.
pub fn settings_routes() -> Router<State> {
    Router::new()
}
