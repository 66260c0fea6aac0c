//! The query journal: a bounded ring of what the server was asked and what it answered, so a
//! harness can assert on DNS traffic (for example "the sensor looked up this host over TCP").

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

/// One query the server handled, faulted ones included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryRecord {
    /// The queried name, lowercased and without a trailing dot; empty when the request had no
    /// question.
    pub name: String,
    /// The query type as DNS spells it (`"A"`, `"AAAA"`, `"MX"` …); empty without a question.
    pub qtype: String,
    /// `"udp"` or `"tcp"`.
    pub protocol: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// The response code sent (`"NOERROR"`, `"NXDOMAIN"`, `"REFUSED"`, `"SERVFAIL"`,
    /// `"FORMERR"`, `"NOTIMP"` …), or `"DROPPED"` when a fault suppressed the answer.
    pub rcode: String,
    /// The addresses in the answer section (A and AAAA records only).
    pub answers: Vec<IpAddr>,
}

/// A cheap, cloneable handle on the server's journal.
///
/// Holds at most `capacity` records, evicting the oldest first and counting evictions, so a long
/// run cannot grow memory without bound; capacity 0 turns the journal off.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Mutex<Ring>>,
}

#[derive(Debug)]
struct Ring {
    capacity: usize,
    entries: VecDeque<QueryRecord>,
    evicted: u64,
}

impl Journal {
    /// An empty journal keeping at most `capacity` records (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Ring {
                capacity,
                entries: VecDeque::with_capacity(capacity.min(1024)),
                evicted: 0,
            })),
        }
    }

    /// A copy of the records, oldest first.
    pub fn entries(&self) -> Vec<QueryRecord> {
        self.lock().entries.iter().cloned().collect()
    }

    /// How many records were evicted to respect the capacity since creation or the last
    /// [`clear`](Self::clear).
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
    }

    /// The number of records held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// The maximum number of records held.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Drops every record and resets the eviction count.
    pub fn clear(&self) {
        let mut ring = self.lock();
        ring.entries.clear();
        ring.evicted = 0;
    }

    /// The number of held records for which `pred` is true.
    pub fn count(&self, pred: impl Fn(&QueryRecord) -> bool) -> usize {
        self.lock()
            .entries
            .iter()
            .filter(|record| pred(record))
            .count()
    }

    /// Appends a record, evicting the oldest when full.
    pub(crate) fn record(&self, record: QueryRecord) {
        let mut ring = self.lock();
        if ring.capacity == 0 {
            return;
        }
        while ring.entries.len() >= ring.capacity {
            ring.entries.pop_front();
            ring.evicted += 1;
        }
        ring.entries.push_back(record);
    }

    // A panic while the lock was held cannot leave the ring inconsistent (each operation is a
    // single push, pop or clear), so a poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> QueryRecord {
        QueryRecord {
            name: name.to_owned(),
            qtype: "A".to_owned(),
            protocol: "udp".to_owned(),
            peer: "127.0.0.1:5353".parse().unwrap(),
            rcode: "NOERROR".to_owned(),
            answers: vec!["10.0.0.1".parse().unwrap()],
        }
    }

    #[test]
    fn ring_evicts_oldest_and_counts() {
        let journal = Journal::new(2);
        for name in ["a", "b", "c"] {
            journal.record(record(name));
        }
        let names: Vec<_> = journal.entries().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(journal.evicted(), 1);
        assert_eq!(journal.count(|r| r.name == "c"), 1);
        journal.clear();
        assert!(journal.is_empty());
        assert_eq!(journal.evicted(), 0);
    }

    #[test]
    fn capacity_zero_is_off() {
        let journal = Journal::new(0);
        journal.record(record("a"));
        assert!(journal.is_empty());
        assert_eq!(journal.evicted(), 0);
    }

    #[test]
    fn serializes_with_plain_field_names() {
        let value = serde_json::to_value(record("a")).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "name": "a", "qtype": "A", "protocol": "udp", "peer": "127.0.0.1:5353",
                "rcode": "NOERROR", "answers": ["10.0.0.1"],
            })
        );
    }
}
