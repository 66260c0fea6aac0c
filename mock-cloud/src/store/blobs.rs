//! Uploaded blobs. (Placeholder: the data-plane implementation replaces this file.)

/// Uploaded blobs.
#[derive(Debug, Default)]
pub struct BlobStore {}

impl BlobStore {
    /// A store keeping at most `capacity_bytes` of blob content.
    pub fn new(_capacity_bytes: u64) -> Self {
        Self {}
    }
}
