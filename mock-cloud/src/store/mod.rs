//! What the cloud keeps: accepted events, uploaded blobs, the device registry, Live Response
//! sessions and their CnC command queues. Every store is bounded and thread-safe (short
//! `std::sync::Mutex` sections, never held across an await).
//!
//! # Layout
//! - [`events`]: accepted 1DS events, queryable per device and tenant.
//! - [`blobs`]: uploaded blobs (sample upload, Auto-IR, Live Response getfile).
//! - [`devices`]: the device registry (who polled CnC, from where, when).
//! - `bounded`: the bounded map under the keyed stores (count and byte caps, eviction and
//!   refusal counters).
//! - [`live_response`]: sessions and the per-device command queues CnC polls drain.

pub mod blobs;
mod bounded;
pub mod devices;
pub mod events;
pub mod live_response;
