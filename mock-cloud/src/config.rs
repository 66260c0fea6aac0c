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
    /// Also append every journal entry as a JSON line to this file.
    pub journal_file: Option<PathBuf>,
    /// Accepted 1DS events kept (oldest evicted first, counted).
    pub event_capacity: usize,
    /// Bytes of accepted events kept (as received; oldest evicted first, counted).
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

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            journal_capacity: 10_000,
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
            seed: 0x6d64_656c_6162,
            clock: Clock::system(),
            connections: ConnectionLimits::default(),
        }
    }
}
