//! The request journal: every request to every lab host, in a bounded ring, optionally also
//! streamed as JSON lines to a file.
//!
//! Entries are recorded when the response head is ready; `bytes_out` is the response body's
//! exact length when known (every lab answer but streamed downloads).
//!
//! The ring is bounded twice: by entries (`journal_capacity`) and by the bytes they hold
//! ([`Journal::set_byte_budget`], [`entry_cost`]); the oldest entries go first and are counted.
//! Fields a client chooses are cut when recorded ([`MAX_PATH`], [`MAX_HOST`], [`MAX_DEVICE`],
//! [`MAX_METHOD`]), the cut marked by a `…[+N bytes]` suffix, so one entry holds a few KiB at most.

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::Error;

/// Lines that may wait for the file writer before new ones are counted as dropped.
const FILE_QUEUE: usize = 8192;

/// Longest path (with query) kept in an entry, in bytes; longer is cut and marked.
pub const MAX_PATH: usize = 2048;
/// Longest host and TLS server name kept (a DNS name is at most 253 bytes).
pub const MAX_HOST: usize = 255;
/// Longest device id kept (the CnC and 1DS routes accept no longer).
pub use mdelab_catalog::protocol::MAX_DEVICE_ID as MAX_DEVICE;
/// Longest method kept.
pub const MAX_METHOD: usize = 32;
/// The journal's byte budget until [`Journal::set_byte_budget`] says otherwise.
pub const DEFAULT_BYTE_BUDGET: usize = 16 * 1024 * 1024;

/// What one entry costs held, in bytes: its slot, its strings' capacities and its fault labels.
/// With the field caps, at most ≈ 3 KiB plus its fault labels.
pub fn entry_cost(e: &JournalEntry) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
    std::mem::size_of::<JournalEntry>()
        + e.listener.capacity()
        + e.host.capacity()
        + opt(&e.sni)
        + e.method.capacity()
        + e.path.capacity()
        + opt(&e.device_id)
        + opt(&e.service)
        + e.faults.capacity() * std::mem::size_of::<String>()
        + e.faults.iter().map(String::capacity).sum::<usize>()
}

/// Cuts `s` to at most `max` bytes (at a character boundary), marking the cut with
/// `…[+N bytes]` (N the bytes dropped).
fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = s.len() - end;
    s.truncate(end);
    s.push_str(&format!("…[+{dropped} bytes]"));
    s.shrink_to_fit();
}

/// One request as the cloud saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// When the response head was ready, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Which listener: "https" or "http".
    pub listener: String,
    /// The host the request was for.
    pub host: String,
    /// The TLS server name, for HTTPS.
    pub sni: Option<String>,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status answered (0 when the connection was closed without an answer by a fault).
    pub status: u16,
    /// Request body bytes read.
    pub bytes_in: u64,
    /// Response body bytes (exact length when known).
    pub bytes_out: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The device, from `Msadeviceticket`, when it said.
    pub device_id: Option<String>,
    /// The host's service family.
    pub service: Option<String>,
    /// Time from request head to response head, milliseconds.
    pub duration_ms: u64,
    /// The faults applied, if any (e.g. "delay 200ms", "status 503").
    pub faults: Vec<String>,
}

/// Which entries to return or count. Every field narrows; `None` matches all.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalFilter {
    /// Exact host.
    pub host: Option<String>,
    /// Method.
    pub method: Option<String>,
    /// Path prefix.
    pub path: Option<String>,
    /// Status.
    pub status: Option<u16>,
    /// Device id.
    pub device: Option<String>,
    /// Service family name.
    pub service: Option<String>,
    /// Only entries with a larger sequence number.
    pub since: Option<u64>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

impl JournalFilter {
    fn matches(&self, e: &JournalEntry) -> bool {
        self.host
            .as_ref()
            .is_none_or(|h| h.eq_ignore_ascii_case(&e.host))
            && self
                .method
                .as_ref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&e.method))
            && self
                .path
                .as_ref()
                .is_none_or(|p| e.path.starts_with(p.as_str()))
            && self.status.is_none_or(|s| s == e.status)
            && self
                .device
                .as_ref()
                .is_none_or(|d| e.device_id.as_deref() == Some(d.as_str()))
            && self
                .service
                .as_ref()
                .is_none_or(|s| e.service.as_deref() == Some(s.as_str()))
            && self.since.is_none_or(|s| e.seq > s)
    }
}

/// Counters of the journal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JournalStats {
    /// Entries recorded since start (or the last clear).
    pub recorded: u64,
    /// Entries evicted from the ring because it was full (by count or by bytes).
    pub evicted: u64,
    /// Of `evicted`, those evicted because the byte budget was reached.
    pub evicted_bytes: u64,
    /// Entries whose path, host, server name, method or device id was cut when recorded.
    pub truncated: u64,
    /// Bytes the held entries cost ([`entry_cost`]).
    pub bytes: usize,
    /// The byte budget.
    pub byte_budget: usize,
    /// Lines the file writer could not keep up with (not written to the file).
    pub file_dropped: u64,
    /// Entries held now.
    pub held: usize,
    /// Ring capacity (0 = journal off).
    pub capacity: usize,
}

/// A cheap, cloneable handle on the journal.
#[derive(Clone, Debug)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    byte_budget: std::sync::atomic::AtomicUsize,
    ring: Mutex<Ring>,
    file: Option<SyncSender<FileMsg>>,
    file_dropped: AtomicU64,
}

/// What the file writer thread is sent.
#[derive(Debug)]
enum FileMsg {
    /// A JSON line to append.
    Line(String),
    /// Answer on this channel once everything before has been written and flushed.
    Sync(std::sync::mpsc::Sender<()>),
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<JournalEntry>,
    /// The cost of each held entry, in the same order.
    costs: VecDeque<usize>,
    bytes: usize,
    next_seq: u64,
    recorded: u64,
    evicted: u64,
    evicted_bytes: u64,
    truncated: u64,
}

impl Journal {
    /// A journal holding `capacity` entries (0 = off), optionally appending to `file`.
    pub fn new(capacity: usize, file: Option<&Path>) -> Result<Self, Error> {
        let file = file.map(open_sink).transpose()?;
        Ok(Self {
            inner: Arc::new(Inner {
                capacity,
                byte_budget: std::sync::atomic::AtomicUsize::new(DEFAULT_BYTE_BUDGET),
                ring: Mutex::new(Ring {
                    next_seq: 1,
                    ..Ring::default()
                }),
                file,
                file_dropped: AtomicU64::new(0),
            }),
        })
    }

    /// Sets the most bytes the held entries may cost ([`entry_cost`]); the oldest are evicted
    /// (and counted) to make room. Applies from the next entry recorded.
    pub fn set_byte_budget(&self, bytes: usize) {
        self.inner.byte_budget.store(bytes, Ordering::Relaxed);
    }

    /// Records an entry, assigning its sequence number; over-long fields are cut first.
    pub fn record(&self, mut entry: JournalEntry) {
        let before = (
            entry.path.len(),
            entry.host.len(),
            entry.sni.as_ref().map(String::len),
            entry.method.len(),
            entry.device_id.as_ref().map(String::len),
        );
        cut(&mut entry.path, MAX_PATH);
        cut(&mut entry.host, MAX_HOST);
        cut(&mut entry.method, MAX_METHOD);
        if let Some(sni) = &mut entry.sni {
            cut(sni, MAX_HOST);
        }
        if let Some(device) = &mut entry.device_id {
            cut(device, MAX_DEVICE);
        }
        let was_cut = before
            != (
                entry.path.len(),
                entry.host.len(),
                entry.sni.as_ref().map(String::len),
                entry.method.len(),
                entry.device_id.as_ref().map(String::len),
            );
        let cost = entry_cost(&entry);
        let budget = self.inner.byte_budget.load(Ordering::Relaxed);
        let mut ring = self.ring();
        entry.seq = ring.next_seq;
        ring.next_seq += 1;
        ring.recorded += 1;
        if was_cut {
            ring.truncated += 1;
        }
        if let Some(sink) = &self.inner.file
            && let Ok(line) = serde_json::to_string(&entry)
            && let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                sink.try_send(FileMsg::Line(line))
        {
            self.inner.file_dropped.fetch_add(1, Ordering::Relaxed);
        }
        if self.inner.capacity == 0 {
            return;
        }
        if cost > budget {
            // Larger than the whole budget (only with a tiny budget): counted, not kept.
            ring.evicted += 1;
            ring.evicted_bytes += 1;
            return;
        }
        while ring.entries.len() >= self.inner.capacity
            || (!ring.entries.is_empty() && ring.bytes + cost > budget)
        {
            let by_bytes = ring.entries.len() < self.inner.capacity;
            ring.entries.pop_front();
            let freed = ring.costs.pop_front().unwrap_or(0);
            ring.bytes -= freed;
            ring.evicted += 1;
            if by_bytes {
                ring.evicted_bytes += 1;
            }
        }
        ring.bytes += cost;
        ring.costs.push_back(cost);
        ring.entries.push_back(entry);
    }

    /// The entries matching `filter`, oldest first (the newest `limit` when limited).
    pub fn entries(&self, filter: &JournalFilter) -> Vec<JournalEntry> {
        let ring = self.ring();
        let mut out: Vec<JournalEntry> = ring
            .entries
            .iter()
            .filter(|e| filter.matches(e))
            .cloned()
            .collect();
        if let Some(limit) = filter.limit
            && out.len() > limit
        {
            out.drain(..out.len() - limit);
        }
        out
    }

    /// How many entries match `filter`.
    pub fn count(&self, filter: &JournalFilter) -> usize {
        self.ring()
            .entries
            .iter()
            .filter(|e| filter.matches(e))
            .count()
    }

    /// Forgets every entry and resets the counters (sequence numbers keep growing).
    pub fn clear(&self) {
        let mut ring = self.ring();
        ring.entries.clear();
        ring.costs.clear();
        ring.bytes = 0;
        ring.recorded = 0;
        ring.evicted = 0;
        ring.evicted_bytes = 0;
        ring.truncated = 0;
    }

    /// The counters.
    pub fn stats(&self) -> JournalStats {
        let ring = self.ring();
        JournalStats {
            recorded: ring.recorded,
            evicted: ring.evicted,
            evicted_bytes: ring.evicted_bytes,
            truncated: ring.truncated,
            bytes: ring.bytes,
            byte_budget: self.inner.byte_budget.load(Ordering::Relaxed),
            file_dropped: self.inner.file_dropped.load(Ordering::Relaxed),
            held: ring.entries.len(),
            capacity: self.inner.capacity,
        }
    }

    /// Waits (at most `timeout`) until every line recorded so far is written and flushed to the
    /// journal file; whether it was. Blocking: call it from a blocking context.
    pub fn sync_file(&self, timeout: std::time::Duration) -> bool {
        let Some(sink) = &self.inner.file else {
            return true;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        sink.send(FileMsg::Sync(tx)).is_ok() && rx.recv_timeout(timeout).is_ok()
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.inner
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Opens the JSON-lines file and starts the thread that writes it, so that no request ever
/// waits on the disk.
fn open_sink(path: &Path) -> Result<SyncSender<FileMsg>, Error> {
    let err = |source| Error::JournalFile {
        path: PathBuf::from(path),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<FileMsg>(FILE_QUEUE);
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("mdelab-journal".into())
        .spawn(move || {
            // Buffered: a line per request must not cost a syscall; `Sync` flushes.
            let mut out = std::io::BufWriter::new(file);
            for msg in rx {
                let written = match msg {
                    FileMsg::Line(line) => writeln!(out, "{line}"),
                    FileMsg::Sync(done) => out.flush().map(|()| {
                        let _ = done.send(());
                    }),
                };
                if let Err(e) = written {
                    tracing::error!(path = %path.display(), error = %e, "journal file write failed");
                    break;
                }
            }
            let _ = out.flush();
        })
        .map_err(err)?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, status: u16) -> JournalEntry {
        JournalEntry {
            seq: 0,
            time_ms: 0,
            listener: "https".into(),
            host: host.into(),
            sni: Some(host.into()),
            method: "GET".into(),
            path: "/test".into(),
            status,
            bytes_in: 0,
            bytes_out: 0,
            peer: "127.0.0.1:1".parse().unwrap(),
            device_id: None,
            service: None,
            duration_ms: 0,
            faults: Vec::new(),
        }
    }

    #[test]
    fn ring_is_bounded_and_counts_evictions() {
        let journal = Journal::new(2, None).unwrap();
        for i in 0..5 {
            journal.record(entry(&format!("h{i}"), 200));
        }
        let all = journal.entries(&JournalFilter::default());
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(journal.stats().evicted, 3);
        assert_eq!(journal.stats().recorded, 5);
    }

    #[test]
    fn long_fields_are_cut_marked_and_counted() {
        let journal = Journal::new(10, None).unwrap();
        let mut e = entry(&"h".repeat(1000), 200);
        e.path = format!("/{}", "é".repeat(20_000));
        e.device_id = Some("d".repeat(25_000));
        e.sni = Some("s".repeat(300));
        journal.record(e);
        journal.record(entry("short", 200));
        let held = journal.entries(&JournalFilter::default());
        let long = &held[0];
        assert!(long.path.len() < MAX_PATH + 32, "{}", long.path.len());
        assert!(long.path.ends_with(" bytes]") && long.path.contains("…[+"));
        assert!(long.host.len() < MAX_HOST + 32 && long.host.contains("…[+745 bytes]"));
        let device = long.device_id.as_deref().unwrap();
        assert!(device.starts_with("dddd") && device.ends_with("…[+24744 bytes]"));
        assert!(long.sni.as_deref().unwrap().len() < MAX_HOST + 32);
        assert_eq!(held[1].host, "short");
        let stats = journal.stats();
        assert_eq!(stats.truncated, 1);
        assert!(entry_cost(long) < 4 * 1024, "{}", entry_cost(long));
    }

    #[test]
    fn byte_budget_evicts_the_oldest_and_counts_them() {
        let journal = Journal::new(10_000, None).unwrap();
        let one = entry_cost(&entry("h", 200));
        journal.set_byte_budget(one * 3);
        for _ in 0..10 {
            journal.record(entry("h", 200));
        }
        let stats = journal.stats();
        assert_eq!(
            (stats.held, stats.evicted, stats.evicted_bytes, stats.bytes),
            (3, 7, 7, one * 3)
        );
        journal.clear();
        assert_eq!(journal.stats().bytes, 0);
    }

    #[test]
    fn filters_narrow_and_limit_keeps_the_newest() {
        let journal = Journal::new(10, None).unwrap();
        journal.record(entry("a", 200));
        journal.record(entry("b", 404));
        journal.record(entry("a", 503));
        let a = JournalFilter {
            host: Some("A".into()),
            ..JournalFilter::default()
        };
        assert_eq!(journal.count(&a), 2);
        let limited = JournalFilter {
            limit: Some(1),
            ..a
        };
        assert_eq!(journal.entries(&limited)[0].status, 503);
        let since = JournalFilter {
            since: Some(2),
            ..JournalFilter::default()
        };
        assert_eq!(journal.count(&since), 1);
    }

    #[test]
    fn capacity_zero_keeps_nothing_but_still_counts_and_streams() {
        let dir = std::env::temp_dir().join(format!("mdelab-journal-test-{}", std::process::id()));
        let path = dir.with_extension("jsonl");
        let journal = Journal::new(0, Some(&path)).unwrap();
        journal.record(entry("a", 200));
        assert_eq!(journal.entries(&JournalFilter::default()).len(), 0);
        assert_eq!(journal.stats().recorded, 1);
        // Wait on the writer's own acknowledgement, not on the file's contents.
        assert!(
            journal.sync_file(std::time::Duration::from_secs(5)),
            "journal file not synced"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"host\":\"a\""));
        let _ = std::fs::remove_file(&path);
    }
}
