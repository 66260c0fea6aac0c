//! State shared by every connection of the mock cloud.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::clock::Clock;
use crate::config::ServiceConfig;
use crate::faults::Faults;
use crate::journal::Journal;
use crate::store::blobs::BlobStore;
use crate::store::devices::DeviceRegistry;
use crate::store::events::EventStore;
use crate::store::live_response::LiveResponse;
use crate::tls::CertStore;
use mdelab_catalog::Catalog;

/// Shared, cheaply cloned state.
#[derive(Clone, Debug)]
pub struct State {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    catalog: &'static Catalog,
    certs: Arc<CertStore>,
    config: ServiceConfig,
    journal: Journal,
    faults: Faults,
    events: EventStore,
    blobs: BlobStore,
    devices: DeviceRegistry,
    live_response: LiveResponse,
    /// The key that signs and checks SAS tokens (random per run).
    storage_key: [u8; 32],
    /// Set by whoever wires the lab once every service is serving.
    ready: AtomicBool,
    /// Client addresses whose connections are dropped (a gateway rule blocking them).
    blocked_peers: Mutex<BTreeSet<IpAddr>>,
    /// Connections dropped because their peer was blocked.
    blocked_connections: AtomicU64,
    /// Connections closed to make room for newer ones at the connection cap.
    shed_connections: AtomicU64,
}

impl State {
    pub(crate) fn new(
        catalog: &'static Catalog,
        certs: Arc<CertStore>,
        config: ServiceConfig,
        journal: Journal,
    ) -> Self {
        journal.set_byte_budget(config.journal_capacity_bytes);
        Self {
            inner: Arc::new(Inner {
                catalog,
                certs,
                faults: Faults::new(config.seed),
                events: EventStore::with_byte_budget(
                    config.event_capacity,
                    config.event_capacity_bytes,
                ),
                blobs: BlobStore::new(config.blob_capacity_bytes),
                devices: DeviceRegistry::new(),
                live_response: LiveResponse::new(config.live_response_timeout)
                    .with_byte_budget(config.live_response_capacity_bytes)
                    .with_clock(config.clock.clone()),
                storage_key: rand::random(),
                ready: AtomicBool::new(false),
                blocked_peers: Mutex::new(BTreeSet::new()),
                blocked_connections: AtomicU64::new(0),
                shed_connections: AtomicU64::new(0),
                journal,
                config,
            }),
        }
    }

    /// The catalog being served.
    pub fn catalog(&self) -> &'static Catalog {
        self.inner.catalog
    }

    /// The certificate store.
    pub fn certs(&self) -> &CertStore {
        &self.inner.certs
    }

    /// Service configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// The wall clock every recorded timestamp is read from.
    pub fn clock(&self) -> &Clock {
        &self.inner.config.clock
    }

    /// The request journal.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// Injected faults.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Accepted 1DS events.
    pub fn events(&self) -> &EventStore {
        &self.inner.events
    }

    /// Uploaded blobs.
    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// The device registry.
    pub fn devices(&self) -> &DeviceRegistry {
        &self.inner.devices
    }

    /// Live Response sessions and CnC command queues.
    pub fn live_response(&self) -> &LiveResponse {
        &self.inner.live_response
    }

    /// The key SAS tokens are signed with.
    pub fn storage_key(&self) -> &[u8; 32] {
        &self.inner.storage_key
    }

    /// Whether the whole lab is serving (set by the wiring, read by `/_lab/ready`).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Marks the lab ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// Drops every later connection from `ip`, as a gateway rule blocking that client would:
    /// the listeners accept it and never answer, so the client sees a timeout. Connections
    /// already being served are not affected.
    pub fn block_peer(&self, ip: IpAddr) {
        self.blocked().insert(ip);
    }

    /// Lifts the block on `ip`; whether it was blocked.
    pub fn unblock_peer(&self, ip: IpAddr) -> bool {
        self.blocked().remove(&ip)
    }

    /// The blocked client addresses, sorted.
    pub fn blocked_peers(&self) -> Vec<IpAddr> {
        self.blocked().iter().copied().collect()
    }

    /// Whether connections from `ip` are dropped.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        self.blocked().contains(&ip)
    }

    /// How many connections were dropped because their peer was blocked.
    pub fn blocked_connections(&self) -> u64 {
        self.inner.blocked_connections.load(Ordering::Relaxed)
    }

    pub(crate) fn count_blocked_connection(&self) {
        self.inner
            .blocked_connections
            .fetch_add(1, Ordering::Relaxed);
    }

    /// How many idle connections were closed to make room for new ones at the connection cap.
    pub fn shed_connections(&self) -> u64 {
        self.inner.shed_connections.load(Ordering::Relaxed)
    }

    pub(crate) fn count_shed_connection(&self) {
        self.inner.shed_connections.fetch_add(1, Ordering::Relaxed);
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, BTreeSet<IpAddr>> {
        self.inner
            .blocked_peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
