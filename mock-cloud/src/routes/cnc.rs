//! Command and control and Live Response actions. (Placeholder: the control-plane
//! implementation replaces this file.)

use axum::Router;

use crate::State;

/// Routes of the CnC gateways (`/commands/cnc`, `/edr/commands/cnc`, `/senseir/v1/actions/…`).
pub fn routes() -> Router<State> {
    Router::new()
}
