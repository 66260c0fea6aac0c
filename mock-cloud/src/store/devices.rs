//! The device registry. (Placeholder: the control-plane implementation replaces this file.)

/// The device registry.
#[derive(Debug, Default)]
pub struct DeviceRegistry {}

impl DeviceRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {}
    }
}
