//! The request journal: every request to every lab host, in a bounded ring, optionally also
//! streamed as JSON lines to a file.
//!
//! Entries are recorded when the response head is ready; `bytes_out` is the response body's
//! exact length when known (every lab answer but streamed downloads).

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
    /// Entries evicted from the ring because it was full.
    pub evicted: u64,
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
    next_seq: u64,
    recorded: u64,
    evicted: u64,
}

impl Journal {
    /// A journal holding `capacity` entries (0 = off), optionally appending to `file`.
    pub fn new(capacity: usize, file: Option<&Path>) -> Result<Self, Error> {
        let file = file.map(open_sink).transpose()?;
        Ok(Self {
            inner: Arc::new(Inner {
                capacity,
                ring: Mutex::new(Ring {
                    next_seq: 1,
                    ..Ring::default()
                }),
                file,
                file_dropped: AtomicU64::new(0),
            }),
        })
    }

    /// Records an entry, assigning its sequence number.
    pub fn record(&self, mut entry: JournalEntry) {
        let mut ring = self.ring();
        entry.seq = ring.next_seq;
        ring.next_seq += 1;
        ring.recorded += 1;
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
        if ring.entries.len() == self.inner.capacity {
            ring.entries.pop_front();
            ring.evicted += 1;
        }
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
        ring.recorded = 0;
        ring.evicted = 0;
    }

    /// The counters.
    pub fn stats(&self) -> JournalStats {
        let ring = self.ring();
        JournalStats {
            recorded: ring.recorded,
            evicted: ring.evicted,
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
