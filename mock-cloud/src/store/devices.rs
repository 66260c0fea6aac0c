//! The device registry: every device that polled a CnC gateway, where from and when.
//!
//! A device is known by the id it sends in `Msadeviceticket`; each CnC poll upserts its row.
//! The registry is bounded: past [`DEFAULT_CAPACITY`] devices the least recently seen one is
//! evicted, and evictions are counted (a count-bounded [`Bounded`] map).

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use mdelab_catalog::{Connectivity, Region};

use super::bounded::Bounded;

/// How many devices the registry keeps by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// One device as the cloud knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device {
    /// The id the device sends in `Msadeviceticket`.
    pub id: String,
    /// The region of the gateway it last polled (`None` for a gateway outside the catalog).
    pub region: Option<Region>,
    /// The connectivity model of the gateway it last polled.
    pub connectivity: Option<Connectivity>,
    /// First poll, milliseconds since the Unix epoch.
    pub first_seen_ms: u64,
    /// Latest poll, milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
    /// Polls seen (every CnC request, answered or not).
    pub polls: u64,
    /// The client address of the latest poll.
    pub peer: SocketAddr,
    /// The gateway host of the latest poll.
    pub host: String,
    /// The listener of the latest poll ("https").
    pub listener: String,
    /// The TLS server name of the latest poll.
    pub sni: Option<String>,
}

/// What one CnC poll tells the registry about its device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The device id.
    pub id: String,
    /// Region of the gateway polled.
    pub region: Option<Region>,
    /// Connectivity model of the gateway polled.
    pub connectivity: Option<Connectivity>,
    /// Client address.
    pub peer: SocketAddr,
    /// Gateway host.
    pub host: String,
    /// Listener name.
    pub listener: String,
    /// TLS server name.
    pub sni: Option<String>,
}

/// Counters of the registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceStats {
    /// Devices held now.
    pub held: usize,
    /// Most devices held.
    pub capacity: usize,
    /// Devices evicted because the registry was full (least recently seen first).
    pub evicted: u64,
    /// Polls recorded since start (or the last clear).
    pub polls: u64,
}

/// The device registry (thread-safe; every operation takes one short lock).
#[derive(Debug)]
pub struct DeviceRegistry {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Device id → row, least recently seen first (each poll re-inserts its device as the
    /// newest), bounded by count.
    devices: Bounded<String, Device>,
    polls: u64,
}

impl Default for DeviceRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceRegistry {
    /// An empty registry holding at most [`DEFAULT_CAPACITY`] devices.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty registry holding at most `capacity` devices (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            inner: Mutex::new(Inner {
                devices: Bounded::with_max_entries(capacity),
                polls: 0,
            }),
        }
    }

    /// Records a poll at `now_ms` (milliseconds since the Unix epoch): creates the device or
    /// updates its latest-poll fields, and returns the row as it is now.
    pub fn record_poll(&self, sighting: Sighting, now_ms: u64) -> Device {
        let mut inner = self.lock();
        inner.polls += 1;
        let device = match inner.devices.remove(&sighting.id) {
            Some(mut device) => {
                device.region = sighting.region;
                device.connectivity = sighting.connectivity;
                device.last_seen_ms = now_ms;
                device.polls += 1;
                device.peer = sighting.peer;
                device.host = sighting.host;
                device.listener = sighting.listener;
                device.sni = sighting.sni;
                device
            }
            None => Device {
                id: sighting.id,
                region: sighting.region,
                connectivity: sighting.connectivity,
                first_seen_ms: now_ms,
                last_seen_ms: now_ms,
                polls: 1,
                peer: sighting.peer,
                host: sighting.host,
                listener: sighting.listener,
                sni: sighting.sni,
            },
        };
        // A new device makes room first (the least recently seen goes), so the registry never
        // exceeds its cap; a count-only map refuses nothing.
        let _ = inner.devices.insert(device.id.clone(), device.clone(), 0);
        device
    }

    /// Every device, sorted by id (so listings are stable).
    pub fn list(&self) -> Vec<Device> {
        let mut out: Vec<Device> = self.lock().devices.iter().map(|(_, d)| d.clone()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// One device.
    pub fn get(&self, id: &str) -> Option<Device> {
        self.lock().devices.get(id).cloned()
    }

    /// Forgets every device and resets the counters.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.devices.clear();
        inner.polls = 0;
    }

    /// The registry's counters.
    pub fn stats(&self) -> DeviceStats {
        let inner = self.lock();
        DeviceStats {
            held: inner.devices.len(),
            capacity: self.capacity,
            evicted: inner.devices.evicted(),
            polls: inner.polls,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the maps inconsistent mid-update in a way that matters
        // more than losing the registry, so keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sighting(id: &str, host: &str) -> Sighting {
        Sighting {
            id: id.to_owned(),
            region: Some(Region::Us),
            connectivity: Some(Connectivity::Standard),
            peer: SocketAddr::from(([127, 0, 0, 1], 40_000)),
            host: host.to_owned(),
            listener: "https".to_owned(),
            sni: Some(host.to_owned()),
        }
    }

    #[test]
    fn polls_update_the_row_and_keep_first_seen() {
        let reg = DeviceRegistry::new();
        reg.record_poll(sighting("a", "winatp-gw-cus.microsoft.com"), 10);
        let d = reg.record_poll(sighting("a", "winatp-gw-eus.microsoft.com"), 20);
        assert_eq!((d.first_seen_ms, d.last_seen_ms, d.polls), (10, 20, 2));
        assert_eq!(d.host, "winatp-gw-eus.microsoft.com");
        assert_eq!(reg.get("a"), Some(d));
        assert_eq!(reg.stats().polls, 2);
        reg.clear();
        assert!(reg.list().is_empty());
    }

    #[test]
    fn full_registry_evicts_the_least_recently_seen_and_counts() {
        let reg = DeviceRegistry::with_capacity(2);
        reg.record_poll(sighting("a", "h"), 1);
        reg.record_poll(sighting("b", "h"), 2);
        // "a" polls again, so "b" is now the least recently seen.
        reg.record_poll(sighting("a", "h"), 3);
        reg.record_poll(sighting("c", "h"), 4);
        let ids: Vec<String> = reg.list().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["a", "c"]);
        let stats = reg.stats();
        assert_eq!((stats.held, stats.evicted, stats.capacity), (2, 1, 2));
    }
}
