//! Service configuration of the mock cloud: capacities, holds and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use crate::clock::Clock;

/// How the mock cloud's services behave. Every capacity is a cap: what does not fit is evicted
/// and counted, never dropped silently.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Request journal capacity (entries); 0 switches the journal off.
    pub journal_capacity: usize,
    /// Bytes the journal's entries may hold (see `journal::entry_cost`; oldest evicted first,
    /// counted). Long paths, hosts and device ids are cut when recorded, so an entry holds a few
    /// KiB at most.
    pub journal_capacity_bytes: usize,
    /// Also append every journal entry as a JSON line to this file.
    pub journal_file: Option<PathBuf>,
    /// Accepted 1DS events kept (oldest evicted first, counted).
    pub event_capacity: usize,
    /// Bytes of accepted events kept, at their estimated cost in memory once parsed (see
    /// `store::events::event_cost`; oldest evicted first, counted).
    pub event_capacity_bytes: usize,
    /// Largest 1DS request body as sent (compressed), in bytes; larger gets 413.
    pub onecollector_max_body: usize,
    /// Largest 1DS body after decompression, in bytes; larger gets 413 (zip-bomb cap).
    pub onecollector_max_decompressed: usize,
    /// Largest single 1DS event line, in bytes; larger lines are rejected (counted in `rej`).
    pub onecollector_max_event: usize,
    /// Total bytes of uploaded blobs kept (oldest evicted first, counted).
    pub blob_capacity_bytes: u64,
    /// Largest single blob upload, in bytes; larger gets 413.
    pub blob_max_bytes: u64,
    /// Longest a CnC long poll is held before answering 204 (the client may ask for less).
    pub cnc_max_hold: Duration,
    /// How long a Live Response session may stay pending or connected before it times out.
    pub live_response_timeout: Duration,
    /// Bytes of Live Response sessions kept (see `store::live_response::session_cost`; ended
    /// sessions evicted first, then the oldest, counted).
    pub live_response_capacity_bytes: u64,
    /// Seed of every random choice (fault probabilities, jitter), for reproducible runs.
    pub seed: u64,
    /// The wall clock of every timestamp the cloud records (the system clock by default; a
    /// [`Clock::manual`] one makes timestamps predictable in tests).
    pub clock: Clock,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            journal_capacity: 10_000,
            journal_capacity_bytes: crate::journal::DEFAULT_BYTE_BUDGET,
            journal_file: None,
            event_capacity: 100_000,
            event_capacity_bytes: 256 * 1024 * 1024,
            onecollector_max_body: 3 * 1024 * 1024,
            onecollector_max_decompressed: 16 * 1024 * 1024,
            onecollector_max_event: 2 * 1024 * 1024,
            blob_capacity_bytes: 1024 * 1024 * 1024,
            blob_max_bytes: 512 * 1024 * 1024,
            cnc_max_hold: Duration::from_secs(30),
            // Microsoft's inactive timeout is 30 minutes; labs and demos set seconds.
            live_response_timeout: Duration::from_secs(30 * 60),
            live_response_capacity_bytes: crate::store::live_response::DEFAULT_BYTE_BUDGET,
            seed: 0x6d64_656c_6162,
            clock: Clock::system(),
        }
    }
}
