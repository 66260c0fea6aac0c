//! Live Response sessions and CnC command queues. (Placeholder: the control-plane
//! implementation replaces this file.)

use std::time::Duration;

/// Live Response sessions and per-device command queues.
#[derive(Debug, Default)]
pub struct LiveResponse {}

impl LiveResponse {
    /// Sessions time out after `timeout` pending or connected.
    pub fn new(_timeout: Duration) -> Self {
        Self {}
    }
}
