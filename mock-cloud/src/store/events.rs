//! Accepted 1DS events: a bounded ring, queryable per device, tenant and event name.
//!
//! Every line of every OneCollector body ends up counted here, either as an accepted event
//! (kept until evicted) or as a rejected one; bodies refused as a whole (bad encoding, too large,
//! unsupported type) are counted too. Nothing is dropped without a counter moving.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// One accepted event as the cloud keeps it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Sequence number, from 1, never reused (not even after [`EventStore::clear`]).
    pub seq: u64,
    /// When the body carrying it was received, milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// The device: the `Msadeviceticket` header, else the event's `ext.device.localId`.
    pub device_id: Option<String>,
    /// The tenant: from the event's `iKey`, else from the API key header.
    pub tenant: Option<String>,
    /// The event's `name`, or `""` when it has none.
    pub name: String,
    /// The host the body was posted to.
    pub host: String,
    /// The event itself, as sent.
    pub event: serde_json::Value,
}

/// An event about to be stored (a [`StoredEvent`] before it gets its sequence number).
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// See [`StoredEvent::received_ms`].
    pub received_ms: u64,
    /// See [`StoredEvent::device_id`].
    pub device_id: Option<String>,
    /// See [`StoredEvent::tenant`].
    pub tenant: Option<String>,
    /// See [`StoredEvent::name`].
    pub name: String,
    /// See [`StoredEvent::host`].
    pub host: String,
    /// See [`StoredEvent::event`].
    pub event: serde_json::Value,
}

/// Which events to return. Every field narrows; `None` matches all. Deserializable so the
/// admin API can take it straight from a query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Exact device id.
    pub device: Option<String>,
    /// Tenant id (ASCII case-insensitive: tenant ids are GUIDs, spelled either way).
    pub tenant: Option<String>,
    /// Exact event name.
    pub name: Option<String>,
    /// Only events with a larger sequence number (for incremental polling).
    pub since: Option<u64>,
    /// At most this many: the newest.
    pub limit: Option<usize>,
}

impl EventFilter {
    fn matches(&self, e: &StoredEvent) -> bool {
        self.device
            .as_ref()
            .is_none_or(|d| e.device_id.as_deref() == Some(d.as_str()))
            && self.tenant.as_ref().is_none_or(|t| {
                e.tenant
                    .as_deref()
                    .is_some_and(|have| have.eq_ignore_ascii_case(t))
            })
            && self.name.as_ref().is_none_or(|n| &e.name == n)
            && self.since.is_none_or(|s| e.seq > s)
    }
}

/// Counters of the event store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventStats {
    /// Events accepted since start (or the last clear), whether still held or evicted.
    pub accepted: u64,
    /// Event lines rejected (not JSON, not an object, too long).
    pub rejected: u64,
    /// Whole bodies refused (bad encoding, too large, unsupported type or encoding).
    pub bodies_rejected: u64,
    /// Accepted events evicted because the store was full.
    pub evicted: u64,
    /// Events held now.
    pub held: usize,
    /// Most events held at once.
    pub capacity: usize,
}

/// Accepted 1DS events, bounded: the oldest are evicted (and counted) first.
#[derive(Debug)]
pub struct EventStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    events: VecDeque<StoredEvent>,
    next_seq: u64,
    accepted: u64,
    rejected: u64,
    bodies_rejected: u64,
    evicted: u64,
}

impl EventStore {
    /// A store keeping at most `capacity` events (0 keeps none, but still counts them).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                // Grows on demand: a large capacity must not cost memory up front.
                events: VecDeque::new(),
                next_seq: 1,
                accepted: 0,
                rejected: 0,
                bodies_rejected: 0,
                evicted: 0,
            }),
        }
    }

    /// Stores one accepted event and returns its sequence number.
    pub fn push(&self, event: NewEvent) -> u64 {
        let mut inner = self.lock();
        self.push_locked(&mut inner, event)
    }

    /// Stores the accepted events of one body and counts its `rejected` lines, in one critical
    /// section so that a reader never sees half a body. Returns the sequence numbers given.
    pub fn push_batch(&self, events: Vec<NewEvent>, rejected: u64) -> Vec<u64> {
        let mut inner = self.lock();
        inner.rejected += rejected;
        events
            .into_iter()
            .map(|e| self.push_locked(&mut inner, e))
            .collect()
    }

    /// Counts `lines` rejected event lines.
    pub fn count_rejected(&self, lines: u64) {
        self.lock().rejected += lines;
    }

    /// Counts one body refused as a whole.
    pub fn count_body_rejected(&self) {
        self.lock().bodies_rejected += 1;
    }

    /// The events matching `filter`, oldest first (the newest `limit` when limited).
    pub fn query(&self, filter: &EventFilter) -> Vec<StoredEvent> {
        let inner = self.lock();
        let limit = filter.limit.unwrap_or(usize::MAX);
        // Walk from the newest so a small limit does not clone the whole ring.
        let mut out: Vec<StoredEvent> = inner
            .events
            .iter()
            .rev()
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// The counters.
    pub fn stats(&self) -> EventStats {
        let inner = self.lock();
        EventStats {
            accepted: inner.accepted,
            rejected: inner.rejected,
            bodies_rejected: inner.bodies_rejected,
            evicted: inner.evicted,
            held: inner.events.len(),
            capacity: self.capacity,
        }
    }

    /// Forgets every event and resets the counters (sequence numbers keep growing, so a
    /// client polling with `since` never sees a number twice).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.events.clear();
        inner.accepted = 0;
        inner.rejected = 0;
        inner.bodies_rejected = 0;
        inner.evicted = 0;
    }

    fn push_locked(&self, inner: &mut Inner, e: NewEvent) -> u64 {
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.accepted += 1;
        if self.capacity == 0 {
            inner.evicted += 1;
            return seq;
        }
        while inner.events.len() >= self.capacity {
            inner.events.pop_front();
            inner.evicted += 1;
        }
        inner.events.push_back(StoredEvent {
            seq,
            received_ms: e.received_ms,
            device_id: e.device_id,
            tenant: e.tenant,
            name: e.name,
            host: e.host,
            event: e.event,
        });
        seq
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the data plane down with it: the ring stays usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(device: &str, tenant: &str, name: &str) -> NewEvent {
        NewEvent {
            received_ms: 1,
            device_id: Some(device.to_owned()),
            tenant: Some(tenant.to_owned()),
            name: name.to_owned(),
            host: "us-v20.events.data.microsoft.com".to_owned(),
            event: json!({"name": name}),
        }
    }

    #[test]
    fn eviction_is_counted_and_keeps_the_newest() {
        let store = EventStore::new(3);
        for i in 0..5 {
            store.push(event("d1", "t1", &format!("e{i}")));
        }
        let stats = store.stats();
        assert_eq!(
            (stats.accepted, stats.evicted, stats.held, stats.capacity),
            (5, 2, 3, 3)
        );
        let names: Vec<String> = store
            .query(&EventFilter::default())
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["e2", "e3", "e4"]);
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_counts_everything() {
        let store = EventStore::new(0);
        store.push_batch(vec![event("d", "t", "a"), event("d", "t", "b")], 1);
        let stats = store.stats();
        assert_eq!(
            (stats.accepted, stats.evicted, stats.rejected, stats.held),
            (2, 2, 1, 0)
        );
    }

    #[test]
    fn filters_narrow_and_limit_takes_the_newest() {
        let store = EventStore::new(100);
        store.push(event("d1", "AAAA", "hb"));
        store.push(event("d2", "aaaa", "hb"));
        store.push(event("d1", "bbbb", "alert"));
        store.push(event("d1", "aaaa", "hb"));
        let q = |f: EventFilter| -> Vec<u64> { store.query(&f).iter().map(|e| e.seq).collect() };
        assert_eq!(
            q(EventFilter {
                device: Some("d1".into()),
                ..EventFilter::default()
            }),
            [1, 3, 4]
        );
        assert_eq!(
            q(EventFilter {
                tenant: Some("aaaa".into()),
                ..EventFilter::default()
            }),
            [1, 2, 4]
        );
        assert_eq!(
            q(EventFilter {
                name: Some("hb".into()),
                since: Some(1),
                ..EventFilter::default()
            }),
            [2, 4]
        );
        assert_eq!(
            q(EventFilter {
                limit: Some(2),
                ..EventFilter::default()
            }),
            [3, 4]
        );
        assert!(
            q(EventFilter {
                device: Some("nobody".into()),
                ..EventFilter::default()
            })
            .is_empty()
        );
    }

    #[test]
    fn clear_resets_counters_but_not_sequence_numbers() {
        let store = EventStore::new(10);
        store.push(event("d", "t", "a"));
        store.count_rejected(2);
        store.count_body_rejected();
        store.clear();
        assert_eq!(
            store.stats(),
            EventStats {
                capacity: 10,
                ..EventStats::default()
            }
        );
        assert_eq!(store.push(event("d", "t", "b")), 2);
    }

    #[test]
    fn filter_deserializes_from_a_query_string_shape() {
        let f: EventFilter =
            serde_json::from_value(json!({"device": "d1", "since": 3, "limit": 2})).unwrap();
        assert_eq!(f.device.as_deref(), Some("d1"));
        assert_eq!((f.since, f.limit), (Some(3), Some(2)));
        assert!(serde_json::from_value::<EventFilter>(json!({"bogus": 1})).is_err());
    }
}
