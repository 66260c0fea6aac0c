//! Accepted 1DS events. (Placeholder: the data-plane implementation replaces this file.)

/// Accepted 1DS events.
#[derive(Debug, Default)]
pub struct EventStore {}

impl EventStore {
    /// A store keeping at most `capacity` events.
    pub fn new(_capacity: usize) -> Self {
        Self {}
    }
}
