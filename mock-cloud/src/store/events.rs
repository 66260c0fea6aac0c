//! Accepted 1DS events: a bounded ring, queryable per device, tenant and event name.
//!
//! Every line of every OneCollector body ends up counted here, either as an accepted event
//! (kept until evicted) or as a rejected one; bodies refused as a whole (bad encoding, too large,
//! unsupported type) are counted too. Nothing is dropped without a counter moving.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bytes charged per JSON object entry on top of its key's and value's own heap: the key
/// `String` and the `Value` slot, doubled because a B-tree node is only guaranteed half full.
const OBJECT_ENTRY_COST: usize = 2 * (size_of::<String>() + size_of::<Value>());
/// Bytes charged once per non-empty JSON object: its first B-tree node (11 slots of key and
/// value, plus links), allocated whole even for one entry.
const OBJECT_NODE_COST: usize = 11 * (size_of::<String>() + size_of::<Value>()) + 16;

/// An estimate of the heap a parsed JSON value holds, beyond its own `Value` slot.
///
/// The formula (64-bit, `serde_json` without `preserve_order`, where a `Value` is 32 bytes):
/// a string costs its capacity; an array its capacity × 32 plus its elements' heap; a non-empty
/// object [`OBJECT_NODE_COST`] (≈ 632) plus, per entry, [`OBJECT_ENTRY_COST`] (112) and its
/// key's capacity and value's heap; numbers, booleans and null cost nothing beyond their slot.
/// It errs high (B-tree nodes are assumed half full), never low by more than allocator rounding.
pub fn value_heap_cost(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.capacity(),
        Value::Array(items) => {
            items.capacity() * size_of::<Value>() + items.iter().map(value_heap_cost).sum::<usize>()
        }
        Value::Object(map) if map.is_empty() => 0,
        Value::Object(map) => {
            OBJECT_NODE_COST
                + map
                    .iter()
                    .map(|(k, v)| OBJECT_ENTRY_COST + k.capacity() + value_heap_cost(v))
                    .sum::<usize>()
        }
    }
}

/// What one stored event costs the store, in bytes: its [`StoredEvent`] slot and its cost entry
/// in the ring, its name, its tenant and the heap of its parsed value ([`value_heap_cost`]).
/// The device id and host are shared by the events of a body (`Arc<str>`); their bytes are
/// charged once per body, by the caller, to the body's first event.
pub fn event_cost(name: &str, tenant: Option<&str>, event: &Value) -> usize {
    size_of::<StoredEvent>()
        + size_of::<usize>()
        + name.len()
        + tenant.map_or(0, |t| t.len() + 2 * size_of::<usize>())
        + value_heap_cost(event)
}

/// One accepted event as the cloud keeps it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Sequence number, from 1, never reused (not even after [`EventStore::clear`]).
    pub seq: u64,
    /// When the body carrying it was received, milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// The device: the `Msadeviceticket` header, else the event's `ext.device.localId`.
    pub device_id: Option<Arc<str>>,
    /// The tenant: from the event's `iKey`, else from the API key header.
    pub tenant: Option<Arc<str>>,
    /// The event's `name`, or `""` when it has none.
    pub name: String,
    /// The host the body was posted to (shared by the events of one body).
    pub host: Arc<str>,
    /// The event itself, as sent.
    pub event: serde_json::Value,
}

/// An event about to be stored (a [`StoredEvent`] before it gets its sequence number).
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// What the event costs in memory once stored ([`event_cost`], plus the body's shared
    /// strings on its first event), charged against the store's byte budget.
    pub cost: usize,
    /// See [`StoredEvent::received_ms`].
    pub received_ms: u64,
    /// See [`StoredEvent::device_id`].
    pub device_id: Option<Arc<str>>,
    /// See [`StoredEvent::tenant`].
    pub tenant: Option<Arc<str>>,
    /// See [`StoredEvent::name`].
    pub name: String,
    /// See [`StoredEvent::host`].
    pub host: Arc<str>,
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
    /// Of `bodies_rejected`, those refused because their parsed events would cost more memory
    /// than the per-request multiple of their wire size or the whole byte budget allows.
    pub bodies_too_costly: u64,
    /// Accepted events evicted because the store was full (by count or by bytes).
    pub evicted: u64,
    /// Bytes the held events cost in memory (estimated, see [`event_cost`]).
    pub bytes: usize,
    /// The byte budget.
    pub byte_budget: usize,
    /// Events held now.
    pub held: usize,
    /// Most events held at once.
    pub capacity: usize,
}

/// Accepted 1DS events, bounded: the oldest are evicted (and counted) first.
#[derive(Debug)]
pub struct EventStore {
    capacity: usize,
    /// Most bytes of events held: a count cap alone would let large events take gigabytes.
    byte_budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    events: VecDeque<StoredEvent>,
    /// The size of each held event, in the same order.
    sizes: VecDeque<usize>,
    bytes: usize,
    next_seq: u64,
    accepted: u64,
    rejected: u64,
    bodies_rejected: u64,
    bodies_too_costly: u64,
    evicted: u64,
}

impl EventStore {
    /// A store keeping at most `capacity` events (0 keeps none, but still counts them) and
    /// no byte budget beyond that.
    pub fn new(capacity: usize) -> Self {
        Self::with_byte_budget(capacity, usize::MAX)
    }

    /// A store keeping at most `capacity` events and `byte_budget` bytes of them.
    pub fn with_byte_budget(capacity: usize, byte_budget: usize) -> Self {
        Self {
            capacity,
            byte_budget,
            inner: Mutex::new(Inner {
                // Grows on demand: a large capacity must not cost memory up front.
                events: VecDeque::new(),
                sizes: VecDeque::new(),
                bytes: 0,
                next_seq: 1,
                accepted: 0,
                rejected: 0,
                bodies_rejected: 0,
                bodies_too_costly: 0,
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

    /// Counts one body refused because its events would cost too much memory (also counted in
    /// `bodies_rejected`).
    pub fn count_body_too_costly(&self) {
        let mut inner = self.lock();
        inner.bodies_rejected += 1;
        inner.bodies_too_costly += 1;
    }

    /// The byte budget of the store.
    pub fn byte_budget(&self) -> usize {
        self.byte_budget
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
            bodies_too_costly: inner.bodies_too_costly,
            evicted: inner.evicted,
            held: inner.events.len(),
            capacity: self.capacity,
            bytes: inner.bytes,
            byte_budget: self.byte_budget,
        }
    }

    /// Forgets every event and resets the counters (sequence numbers keep growing, so a
    /// client polling with `since` never sees a number twice).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.events.clear();
        inner.sizes.clear();
        inner.bytes = 0;
        inner.accepted = 0;
        inner.rejected = 0;
        inner.bodies_rejected = 0;
        inner.bodies_too_costly = 0;
        inner.evicted = 0;
    }

    fn push_locked(&self, inner: &mut Inner, e: NewEvent) -> u64 {
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.accepted += 1;
        if self.capacity == 0 || e.cost > self.byte_budget {
            inner.evicted += 1;
            return seq;
        }
        while inner.events.len() >= self.capacity
            || (!inner.events.is_empty() && inner.bytes + e.cost > self.byte_budget)
        {
            inner.events.pop_front();
            inner.bytes -= inner.sizes.pop_front().unwrap_or(0);
            inner.evicted += 1;
        }
        inner.sizes.push_back(e.cost);
        inner.bytes += e.cost;
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
            cost: 100,
            received_ms: 1,
            device_id: Some(device.into()),
            tenant: Some(tenant.into()),
            name: name.to_owned(),
            host: "us-v20.events.data.microsoft.com".into(),
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
    fn byte_budget_evicts_the_oldest_and_counts_them() {
        let store = EventStore::with_byte_budget(100, 250);
        for _ in 0..5 {
            store.push(event("d", "t", "n"));
        }
        let stats = store.stats();
        assert_eq!((stats.held, stats.bytes, stats.evicted), (2, 200, 3));
        let big = NewEvent {
            cost: 300,
            ..event("d", "t", "huge")
        };
        store.push(big);
        let stats = store.stats();
        assert_eq!(
            (stats.held, stats.evicted),
            (2, 4),
            "an event over the whole budget is counted, not kept"
        );
        assert!(
            store
                .query(&EventFilter::default())
                .iter()
                .all(|e| e.name != "huge")
        );
    }

    #[test]
    fn cost_counts_parsed_nodes_not_json_text() {
        // `[0,0,…]`: 2 bytes of text per element, a 32-byte slot parsed.
        let text = format!("{{\"a\":[{}0]}}", "0,".repeat(9_999));
        let value: Value = serde_json::from_str(&text).unwrap();
        let cost = value_heap_cost(&value);
        assert!(
            cost >= 10_000 * size_of::<Value>(),
            "{cost} for {} bytes",
            text.len()
        );
        assert!(cost > 15 * text.len(), "{cost} vs {}", text.len());
        // An empty object costs its slot only; a one-entry object a whole B-tree node.
        assert_eq!(value_heap_cost(&json!({})), 0);
        assert!(value_heap_cost(&json!({"k": 1})) >= OBJECT_NODE_COST);
        assert_eq!(value_heap_cost(&json!("abc")), 3);
        let empty = event_cost("", None, &json!({}));
        assert!(empty >= size_of::<StoredEvent>(), "{empty}");
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
                byte_budget: usize::MAX,
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
