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
    /// How long hostile or silent clients may hold a connection (see PROTOCOL.md,
    /// "Connection limits").
    pub connections: ConnectionLimits,
}

/// Connection caps and timeouts of every lab HTTP listener (the mock cloud's and the admin
/// API's): what a silent, slow or idle client may hold, and for how long.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Most concurrent connections per listener. At the cap the oldest connection that has
    /// not sent a request yet (else the oldest idle one) is shed for the newcomer; when every
    /// connection is busy the newcomer is closed. Both are counted.
    pub max_connections: usize,
    /// How long a client may take to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a new connection may take to deliver its first complete request head (covers
    /// the first byte, hyper's protocol sniffing and a half-sent head).
    pub request_head_timeout: Duration,
    /// How long a request body may go without delivering a byte.
    pub body_idle_timeout: Duration,
    /// How long a keep-alive connection may stay idle between requests.
    pub keep_alive_idle: Duration,
    /// Interval of HTTP/2 keep-alive pings (an unanswered ping within the same time closes
    /// the connection).
    pub h2_ping_interval: Duration,
    /// How long a shutdown waits for open exchanges before it cuts every connection.
    pub shutdown_deadline: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            request_head_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            keep_alive_idle: Duration::from_secs(90),
            h2_ping_interval: Duration::from_secs(20),
            shutdown_deadline: Duration::from_secs(5),
        }
    }
}

/// The lab's whole memory budget by default: 1 GiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1024 * 1024 * 1024;

/// How [`ServiceConfig::with_memory_budget`] splits the budget, in 64ths: blobs 40/64
/// (62.5 %), events 16/64 (25 %), Live Response sessions 4/64 (6.25 %), the request journal
/// 4/64 (6.25 %). Of 1 GiB: 640, 256, 64 and 64 MiB.
pub const MEMORY_SHARES: MemoryShares = MemoryShares {
    blobs: 40,
    events: 16,
    live_response: 4,
    journal: 4,
};

/// Shares of the memory budget, in 64ths (they add up to 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryShares {
    /// Uploaded blobs (`blob_capacity_bytes`).
    pub blobs: u64,
    /// Accepted 1DS events (`event_capacity_bytes`).
    pub events: u64,
    /// Live Response sessions (`live_response_capacity_bytes`).
    pub live_response: u64,
    /// The request journal (`journal_capacity_bytes`).
    pub journal: u64,
}

impl ServiceConfig {
    /// Splits `bytes` among the stores by [`MEMORY_SHARES`], setting `blob_capacity_bytes`,
    /// `event_capacity_bytes`, `live_response_capacity_bytes` and `journal_capacity_bytes`
    /// (`blob_max_bytes` is lowered to the blob share if it was larger). What the stores hold
    /// then stays within `bytes`, by their own estimates of what they cost; requests being
    /// processed add their bounded transient memory (a 1DS body at most 64 × its decoded size;
    /// an upload only within the blob share, reserved as it streams). `mdelab up
    /// --memory-budget` sets this.
    #[must_use]
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        let share = |n: u64| bytes / 64 * n;
        let size = |n: u64| usize::try_from(share(n)).unwrap_or(usize::MAX);
        self.blob_capacity_bytes = share(MEMORY_SHARES.blobs);
        self.blob_max_bytes = self.blob_max_bytes.min(self.blob_capacity_bytes);
        self.event_capacity_bytes = size(MEMORY_SHARES.events);
        self.live_response_capacity_bytes = share(MEMORY_SHARES.live_response);
        self.journal_capacity_bytes = size(MEMORY_SHARES.journal);
        self
    }

    /// What the stores may hold together: the sum of their byte budgets.
    pub fn memory_budget(&self) -> u64 {
        self.blob_capacity_bytes
            .saturating_add(self.event_capacity_bytes as u64)
            .saturating_add(self.live_response_capacity_bytes)
            .saturating_add(self.journal_capacity_bytes as u64)
    }
}

impl Default for ServiceConfig {
    /// The defaults, with [`DEFAULT_MEMORY_BUDGET`] split by [`MEMORY_SHARES`].
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
            connections: ConnectionLimits::default(),
        }
        .with_memory_budget(DEFAULT_MEMORY_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_is_split_by_the_documented_shares() {
        let c = ServiceConfig::default();
        const MIB: u64 = 1024 * 1024;
        assert_eq!(c.memory_budget(), DEFAULT_MEMORY_BUDGET);
        assert_eq!(
            (
                c.blob_capacity_bytes / MIB,
                c.event_capacity_bytes as u64 / MIB,
                c.live_response_capacity_bytes / MIB,
                c.journal_capacity_bytes as u64 / MIB
            ),
            (640, 256, 64, 64)
        );
        assert!(c.blob_max_bytes <= c.blob_capacity_bytes);
        let small = ServiceConfig::default().with_memory_budget(64 * MIB);
        assert!(small.memory_budget() <= 64 * MIB);
        assert_eq!(small.blob_max_bytes, small.blob_capacity_bytes);
        let s = MEMORY_SHARES;
        assert_eq!(s.blobs + s.events + s.live_response + s.journal, 64);
    }
}
