//! Live Response sessions and the per-device CnC command queues.
//!
//! The admin API starts a session with [`LiveResponse::start`]: that queues a CnC command for
//! the device, delivered on its next poll (or at once to a poll being held, woken through a
//! per-device [`Notify`]). The device then drives the session over the gateway's
//! `/senseir/v1/actions/<session>/…` paths: connect, results, close (see PROTOCOL.md).
//!
//! Timeouts are evaluated lazily, whenever a session is read or touched, against the tokio
//! clock: no background task, and tests can move time with `tokio::time::pause`/`advance`.
//! Everything sits behind one short `std::sync::Mutex` section per call, never held across an
//! await.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::bounded::Bounded;
use crate::clock::Clock;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How many sessions the store keeps by default.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// How many bytes of sessions the store keeps by default ([`session_cost`]).
pub const DEFAULT_BYTE_BUDGET: u64 = 64 * 1024 * 1024;

/// What a session costs held, in bytes: its entry slot, the map's bookkeeping (≈ 64 bytes), its
/// strings (ids twice: key and record), its commands and its results with their text.
pub fn session_cost(s: &Session) -> u64 {
    use std::mem::size_of;
    let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    let commands: usize = s
        .commands
        .iter()
        .map(|c| size_of::<LrCommand>() + c.path().len())
        .sum();
    let results: usize = s
        .results
        .iter()
        .map(|r| size_of::<LrResult>() + opt(&r.output) + opt(&r.blob) + opt(&r.sha256))
        .sum();
    (size_of::<Entry>()
        + 64
        + 2 * s.id.len()
        + s.device_id.len()
        + s.command_id.len()
        + opt(&s.reason)
        + opt(&s.gateway_host)
        + commands
        + results) as u64
}

/// The blob container getfile uploads go to.
pub const CONTAINER: &str = "liveresponse";

/// One Live Response command, as the admin API gives it and the device receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrCommand {
    /// List a directory: `{"kind":"dir","path":"C:\\Temp"}`.
    Dir {
        /// The directory.
        path: String,
    },
    /// Upload a file to the cloud: `{"kind":"getfile","path":"C:\\Temp\\notes.txt"}`.
    #[serde(rename = "getfile")]
    GetFile {
        /// The file.
        path: String,
    },
}

impl LrCommand {
    /// The path the command is about.
    pub fn path(&self) -> &str {
        match self {
            Self::Dir { path } | Self::GetFile { path } => path,
        }
    }

    /// The wire name of the command ("dir", "getfile").
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dir { .. } => "dir",
            Self::GetFile { .. } => "getfile",
        }
    }
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Started; the device has not connected yet.
    Pending,
    /// The device connected and is working through the commands.
    Connected,
    /// The device closed it.
    Closed,
    /// No device action within the timeout while pending or connected.
    TimedOut,
}

impl SessionState {
    /// The wire name ("pending", "connected", "closed", "timed_out").
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Connected => "connected",
            Self::Closed => "closed",
            Self::TimedOut => "timed_out",
        }
    }

    /// Whether the session can still change (pending or connected).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Connected)
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a command succeeded on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// It did.
    Ok,
    /// It did not (`output` says why).
    Error,
}

/// A device's result for one command (the body of `POST …/results`, plus when it arrived).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrResult {
    /// Index of the command in the session.
    pub index: usize,
    /// Outcome.
    pub status: ResultStatus,
    /// Text output (a listing for `dir`, an error message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// For a successful getfile: the uploaded blob as `<container>/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// For a successful getfile: SHA-256 of the file, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// For a successful getfile: the file size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// When the cloud stored it, milliseconds since the Unix epoch (set by the cloud).
    #[serde(default, skip_deserializing)]
    pub received_ms: u64,
}

/// One Live Response session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    /// Session id (32 hex digits).
    pub id: String,
    /// The device it is for.
    pub device_id: String,
    /// Where it is in its life.
    pub state: SessionState,
    /// Started, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When the device (last) connected.
    pub connected_ms: Option<u64>,
    /// When it was closed or timed out.
    pub closed_ms: Option<u64>,
    /// The commands, in order (a result's `index` points here).
    pub commands: Vec<LrCommand>,
    /// Results received, sorted by index (a repeated index replaces the earlier result).
    pub results: Vec<LrResult>,
    /// Inactivity timeout, milliseconds.
    pub timeout_ms: u64,
    /// Why it ended (close reason, or the timeout).
    pub reason: Option<String>,
    /// Id of the CnC command that announces it.
    pub command_id: String,
    /// The gateway the command was delivered through (before delivery: the start hint).
    pub gateway_host: Option<String>,
    /// When a poll took the CnC command.
    pub delivered_ms: Option<u64>,
    /// Latest start/connect/result, milliseconds since the Unix epoch; the timeout runs from it.
    pub last_activity_ms: u64,
}

impl Session {
    /// The blob name (inside [`CONTAINER`]) the getfile command at `index` uploads to:
    /// `<session>/<index>-<file name>`; `None` when `index` is not a getfile.
    pub fn upload_blob(&self, index: usize) -> Option<String> {
        match self.commands.get(index)? {
            LrCommand::GetFile { path } => {
                Some(format!("{}/{index}-{}", self.id, safe_file_name(path)))
            }
            LrCommand::Dir { .. } => None,
        }
    }
}

/// A command as CnC delivers it: `{"id":"…","type":"live_response",…}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CncCommand {
    /// Command id (32 hex digits).
    pub id: String,
    /// What to do; its `type` tag sits next to `id`.
    #[serde(flatten)]
    pub body: CommandBody,
}

/// The kinds of CnC command. Only Live Response exists so far; others (collect_package…)
/// become new variants with their own fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommandBody {
    /// Open a Live Response session.
    LiveResponse {
        /// The session id.
        session: String,
        /// `https://<gateway host>/senseir/v1/actions/<session>`: where the device drives it.
        actions_url: String,
    },
}

/// Why a device action on a session was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// No such session (never started, or evicted).
    #[error("no Live Response session {session}")]
    UnknownSession {
        /// The id asked for.
        session: String,
    },
    /// The session is another device's.
    #[error("session {session} belongs to another device")]
    WrongDevice {
        /// The session.
        session: String,
    },
    /// The action is not allowed in the session's state.
    #[error("session {session} is {state}: {action} is not allowed")]
    State {
        /// The session.
        session: String,
        /// Its state.
        state: SessionState,
        /// The refused action ("connect", "results", "close").
        action: &'static str,
    },
    /// A result for a command the session does not have.
    #[error("result index {index} is out of range: the session has {commands} commands")]
    IndexOutOfRange {
        /// The index sent.
        index: usize,
        /// How many commands the session has.
        commands: usize,
    },
    /// A result whose fields do not fit its command.
    #[error("invalid result: {detail}")]
    InvalidResult {
        /// What is wrong.
        detail: String,
    },
    /// A successful getfile result names a blob that was never uploaded.
    #[error("blob {blob} has not been uploaded")]
    BlobMissing {
        /// `<container>/<name>`.
        blob: String,
    },
    /// The uploaded blob is not what the getfile result says.
    #[error("blob {blob} does not match the result: {detail}")]
    BlobMismatch {
        /// `<container>/<name>`.
        blob: String,
        /// What differs.
        detail: String,
    },
}

/// Counters of the session store and the command queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LrStats {
    /// Sessions held now.
    pub held: usize,
    /// Most sessions held.
    pub capacity: usize,
    /// Sessions started since start (or the last clear).
    pub started: u64,
    /// Sessions evicted because the store was full, by count or by bytes (closed/timed-out
    /// first, oldest first).
    pub evicted: u64,
    /// Bytes the held sessions cost ([`session_cost`]).
    pub bytes: u64,
    /// The byte budget.
    pub byte_budget: u64,
    /// Held sessions pending.
    pub pending: usize,
    /// Held sessions connected.
    pub connected: usize,
    /// Held sessions closed.
    pub closed: usize,
    /// Held sessions timed out.
    pub timed_out: usize,
    /// CnC commands waiting for a poll.
    pub queued: usize,
    /// CnC commands delivered to a poll.
    pub delivered: u64,
    /// Queued commands dropped at a poll because their session had ended or was evicted.
    pub dropped: u64,
    /// CnC polls being held right now.
    pub held_polls: usize,
}

/// Live Response sessions and per-device command queues.
#[derive(Debug)]
pub struct LiveResponse {
    timeout: Duration,
    capacity: usize,
    /// Most bytes of sessions held ([`session_cost`]).
    max_bytes: u64,
    /// The wall clock of the session timestamps (`*_ms`).
    clock: Clock,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Session id → session, in creation order (for eviction, lists), bounded by count; the
    /// store picks its own victim (ended sessions first) and the map counts evictions.
    sessions: Bounded<String, Entry>,
    queues: HashMap<String, DeviceQueue>,
    started: u64,
    delivered: u64,
    dropped: u64,
}

impl Inner {
    fn new(capacity: usize) -> Self {
        Self {
            sessions: Bounded::with_max_entries(capacity),
            queues: HashMap::new(),
            started: 0,
            delivered: 0,
            dropped: 0,
        }
    }
}

#[derive(Debug)]
struct Entry {
    session: Session,
    /// The tokio-clock twin of `session.last_activity_ms`, so paused time drives timeouts.
    last_activity: Instant,
}

#[derive(Debug, Default)]
struct DeviceQueue {
    commands: VecDeque<Queued>,
    notify: Arc<Notify>,
    /// Polls of this device being held; the entry is dropped once empty and unwatched.
    waiters: usize,
}

#[derive(Debug)]
struct Queued {
    id: String,
    kind: QueuedKind,
}

/// A command before delivery: its URLs depend on the gateway the poll came through.
#[derive(Debug)]
enum QueuedKind {
    LiveResponse { session: String },
}

impl LiveResponse {
    /// Sessions time out after `timeout` pending or connected without device activity; at
    /// most [`DEFAULT_CAPACITY`] sessions are kept.
    pub fn new(timeout: Duration) -> Self {
        Self::with_capacity(timeout, DEFAULT_CAPACITY)
    }

    /// Like [`LiveResponse::new`], keeping at most `capacity` sessions (at least one).
    pub fn with_capacity(timeout: Duration, capacity: usize) -> Self {
        Self {
            timeout,
            capacity: capacity.max(1),
            max_bytes: DEFAULT_BYTE_BUDGET,
            clock: Clock::system(),
            inner: Mutex::new(Inner::new(capacity.max(1))),
        }
    }

    /// Keeps at most `bytes` of sessions ([`session_cost`]): the store evicts (closed and
    /// timed-out first, then the oldest, counted) when a start or a result would pass it. A
    /// single session is never evicted for its own growth, so one session alone may pass the
    /// budget by its own results (each bounded by the CnC body cap).
    #[must_use]
    pub fn with_byte_budget(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Reads session timestamps from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The session inactivity timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts a session for `device_id`: queues its CnC command (delivered on the device's
    /// next poll, or at once to a poll being held) and returns it, `pending`.
    ///
    /// `gateway_host_hint` is recorded as the session's `gateway_host` until a poll takes the
    /// command; the actions URL is always built from the host of the poll that takes it.
    pub fn start(
        &self,
        device_id: &str,
        commands: Vec<LrCommand>,
        gateway_host_hint: Option<String>,
    ) -> Session {
        let now = Instant::now();
        let now_ms = self.clock.now_ms();
        let session = Session {
            id: random_id(),
            device_id: device_id.to_owned(),
            state: SessionState::Pending,
            created_ms: now_ms,
            connected_ms: None,
            closed_ms: None,
            commands,
            results: Vec::new(),
            timeout_ms: duration_ms(self.timeout),
            reason: None,
            command_id: random_id(),
            gateway_host: gateway_host_hint,
            delivered_ms: None,
            last_activity_ms: now_ms,
        };
        let cost = session_cost(&session);
        let mut inner = self.lock();
        while inner.sessions.len() >= self.capacity
            || inner.sessions.weight().saturating_add(cost) > self.max_bytes
        {
            if !self.evict_one(&mut inner, now, None) {
                break;
            }
        }
        inner.started += 1;
        // Room was made above, so a map with no weight cap of its own neither evicts nor
        // refuses here.
        let _ = inner.sessions.insert(
            session.id.clone(),
            Entry {
                session: session.clone(),
                last_activity: now,
            },
            cost,
        );
        let queue = inner.queues.entry(device_id.to_owned()).or_default();
        queue.commands.push_back(Queued {
            id: session.command_id.clone(),
            kind: QueuedKind::LiveResponse {
                session: session.id.clone(),
            },
        });
        // notify_waiters wakes only polls already waiting; a poll that arrives later finds the
        // command in the queue, so no wake-up is lost (waiters enable their Notified first).
        queue.notify.notify_waiters();
        session
    }

    /// One session, its timeout evaluated now.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut inner = self.lock();
        let entry = inner.sessions.get_mut(id)?;
        refresh(entry, self.timeout, now);
        Some(entry.session.clone())
    }

    /// Every session, oldest first, timeouts evaluated now.
    pub fn list(&self) -> Vec<Session> {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(inner.sessions.len());
        inner.sessions.for_each_mut(|_, entry| {
            refresh(entry, self.timeout, now);
            out.push(entry.session.clone());
        });
        out
    }

    /// The store's counters, timeouts evaluated now.
    pub fn stats(&self) -> LrStats {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut stats = LrStats {
            held: inner.sessions.len(),
            capacity: self.capacity,
            started: inner.started,
            evicted: inner.sessions.evicted(),
            bytes: inner.sessions.weight(),
            byte_budget: self.max_bytes,
            delivered: inner.delivered,
            dropped: inner.dropped,
            queued: inner.queues.values().map(|q| q.commands.len()).sum(),
            held_polls: inner.queues.values().map(|q| q.waiters).sum(),
            ..LrStats::default()
        };
        for entry in inner.sessions.values_mut() {
            refresh(entry, self.timeout, now);
            match entry.session.state {
                SessionState::Pending => stats.pending += 1,
                SessionState::Connected => stats.connected += 1,
                SessionState::Closed => stats.closed += 1,
                SessionState::TimedOut => stats.timed_out += 1,
            }
        }
        stats
    }

    /// Forgets every session and queued command and resets the counters. Polls being held
    /// keep waiting until their hold ends.
    pub fn clear(&self) {
        let mut inner = self.lock();
        let queues = std::mem::take(&mut inner.queues);
        *inner = Inner::new(self.capacity);
        // Held polls still count on their queue entries (and their Notify) to find their way
        // back, so keep those, emptied.
        for (device, mut queue) in queues {
            if queue.waiters > 0 {
                queue.commands.clear();
                inner.queues.insert(device, queue);
            }
        }
    }

    /// CnC commands waiting for `device_id`'s next poll.
    pub fn queued(&self, device_id: &str) -> usize {
        self.lock()
            .queues
            .get(device_id)
            .map_or(0, |q| q.commands.len())
    }

    /// Polls of `device_id` being held right now (0 when it is not polling).
    pub fn held_polls(&self, device_id: &str) -> usize {
        self.lock().queues.get(device_id).map_or(0, |q| q.waiters)
    }

    /// Takes every command queued for `device_id`, as delivered through `gateway_host`
    /// (which the actions URLs point at). Commands whose session has ended or was evicted
    /// are dropped (counted), not delivered.
    pub fn take_commands(&self, device_id: &str, gateway_host: &str) -> Vec<CncCommand> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.drain(&mut inner, device_id, gateway_host, now)
    }

    /// Takes the commands queued for `device_id`, waiting up to `hold` for one to be queued:
    /// a long poll. Returns at once when commands are queued, as soon as one is queued while
    /// waiting, or empty when the hold ends.
    pub async fn wait_for_commands(
        &self,
        device_id: &str,
        gateway_host: &str,
        hold: Duration,
    ) -> Vec<CncCommand> {
        let deadline = Instant::now() + hold;
        let notify = {
            let mut inner = self.lock();
            let queue = inner.queues.entry(device_id.to_owned()).or_default();
            queue.waiters += 1;
            queue.notify.clone()
        };
        let _waiting = Waiting {
            store: self,
            device_id,
        };
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            // Registered before looking at the queue: a start() between the look and the
            // await below still wakes this poll.
            notified.as_mut().enable();
            let commands = self.take_commands(device_id, gateway_host);
            if !commands.is_empty() {
                return commands;
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return Vec::new(),
            }
        }
    }

    /// The device connects: `pending` (or already `connected`, a retried connect) becomes
    /// `connected`.
    pub fn connect(&self, session_id: &str, device_id: &str) -> Result<Session, ActionError> {
        self.act(
            session_id,
            device_id,
            "connect",
            |entry, now, now_ms| match entry.session.state {
                SessionState::Pending | SessionState::Connected => {
                    entry.session.state = SessionState::Connected;
                    entry.session.connected_ms = Some(now_ms);
                    touch(entry, now, now_ms);
                    Ok(())
                }
                state => Err(state),
            },
        )
    }

    /// The device reports a command's result (only while `connected`); a repeated index
    /// replaces the earlier result.
    pub fn record_result(
        &self,
        session_id: &str,
        device_id: &str,
        result: LrResult,
    ) -> Result<Session, ActionError> {
        self.record_result_verified(session_id, device_id, result, |_| Ok(()))
    }

    /// [`LiveResponse::record_result`], with `verify_upload` also checking a successful
    /// getfile result (its `blob` already checked to be the one the session issued) against
    /// the uploaded blob. It runs under the store's lock, after every other check, so it must
    /// be quick and must not call back into this store.
    pub fn record_result_verified(
        &self,
        session_id: &str,
        device_id: &str,
        mut result: LrResult,
        verify_upload: impl FnOnce(&LrResult) -> Result<(), ActionError>,
    ) -> Result<Session, ActionError> {
        let mut invalid = None;
        let session = self.act(session_id, device_id, "results", |entry, now, now_ms| {
            if entry.session.state != SessionState::Connected {
                return Err(entry.session.state);
            }
            let checked = check_result(&entry.session, &result).and_then(|getfile_ok| {
                if getfile_ok {
                    verify_upload(&result)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = checked {
                invalid = Some(e);
                return Ok(());
            }
            result.received_ms = now_ms;
            let results = &mut entry.session.results;
            match results.binary_search_by_key(&result.index, |r| r.index) {
                Ok(at) => results[at] = result.clone(),
                Err(at) => results.insert(at, result.clone()),
            }
            touch(entry, now, now_ms);
            Ok(())
        })?;
        match invalid {
            Some(e) => Err(e),
            None => Ok(session),
        }
    }

    /// The device closes the session: `pending` or `connected` becomes `closed`; closing a
    /// closed session again changes nothing (a retried close).
    pub fn close(
        &self,
        session_id: &str,
        device_id: &str,
        reason: Option<String>,
    ) -> Result<Session, ActionError> {
        self.act(
            session_id,
            device_id,
            "close",
            |entry, _now, now_ms| match entry.session.state {
                SessionState::Pending | SessionState::Connected => {
                    entry.session.state = SessionState::Closed;
                    entry.session.closed_ms = Some(now_ms);
                    entry.session.reason =
                        Some(reason.unwrap_or_else(|| "closed by the device".to_owned()));
                    Ok(())
                }
                SessionState::Closed => Ok(()),
                state @ SessionState::TimedOut => Err(state),
            },
        )
    }

    /// Looks the session up, checks the device and the timeout, then applies `change`
    /// (which refuses with the state it found unsuitable).
    fn act(
        &self,
        session_id: &str,
        device_id: &str,
        action: &'static str,
        change: impl FnOnce(&mut Entry, Instant, u64) -> Result<(), SessionState>,
    ) -> Result<Session, ActionError> {
        let now = Instant::now();
        let now_ms = self.clock.now_ms();
        let mut inner = self.lock();
        let entry =
            inner
                .sessions
                .get_mut(session_id)
                .ok_or_else(|| ActionError::UnknownSession {
                    session: session_id.to_owned(),
                })?;
        if entry.session.device_id != device_id {
            return Err(ActionError::WrongDevice {
                session: session_id.to_owned(),
            });
        }
        refresh(entry, self.timeout, now);
        change(entry, now, now_ms).map_err(|state| ActionError::State {
            session: session_id.to_owned(),
            state,
            action,
        })?;
        let session = entry.session.clone();
        // A result grows the session: weigh it again and make room among the others.
        inner.sessions.reweigh(session_id, session_cost(&session));
        while inner.sessions.weight() > self.max_bytes {
            if !self.evict_one(&mut inner, now, Some(session_id)) {
                break;
            }
        }
        Ok(session)
    }

    fn drain(
        &self,
        inner: &mut Inner,
        device_id: &str,
        gateway_host: &str,
        now: Instant,
    ) -> Vec<CncCommand> {
        let Inner {
            sessions,
            queues,
            delivered,
            dropped,
            ..
        } = inner;
        let Some(queue) = queues.get_mut(device_id) else {
            return Vec::new();
        };
        let taken: Vec<Queued> = queue.commands.drain(..).collect();
        if queue.waiters == 0 {
            queues.remove(device_id);
        }
        let now_ms = self.clock.now_ms();
        let mut out = Vec::with_capacity(taken.len());
        for queued in taken {
            match queued.kind {
                QueuedKind::LiveResponse { session } => {
                    let Some(entry) = sessions.get_mut(&session) else {
                        *dropped += 1;
                        continue;
                    };
                    refresh(entry, self.timeout, now);
                    if entry.session.state != SessionState::Pending {
                        *dropped += 1;
                        continue;
                    }
                    entry.session.gateway_host = Some(gateway_host.to_owned());
                    entry.session.delivered_ms = Some(now_ms);
                    *delivered += 1;
                    out.push(CncCommand {
                        id: queued.id,
                        body: CommandBody::LiveResponse {
                            actions_url: format!(
                                "https://{gateway_host}/senseir/v1/actions/{session}"
                            ),
                            session,
                        },
                    });
                }
            }
        }
        out
    }

    /// Evicts the oldest ended (closed or timed-out) session, else the oldest of all, with its
    /// queued command.
    /// Evicts one session (the oldest ended one, else the oldest), never `spare`; whether one
    /// was evicted.
    fn evict_one(&self, inner: &mut Inner, now: Instant, spare: Option<&str>) -> bool {
        let ended = inner.sessions.find_map_mut(|id, entry| {
            refresh(entry, self.timeout, now);
            (!entry.session.state.is_open() && Some(id.as_str()) != spare).then(|| id.clone())
        });
        let oldest = || {
            inner
                .sessions
                .iter()
                .map(|(id, _)| id)
                .find(|id| Some(id.as_str()) != spare)
                .cloned()
        };
        let Some(id) = ended.or_else(oldest) else {
            return false;
        };
        if let Some(entry) = inner.sessions.evict(&id) {
            let device = &entry.session.device_id;
            if let Some(queue) = inner.queues.get_mut(device) {
                queue.commands.retain(|q| match &q.kind {
                    QueuedKind::LiveResponse { session } => *session != id,
                });
                if queue.commands.is_empty() && queue.waiters == 0 {
                    inner.queues.remove(device);
                }
            }
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent before it can panic, so a poisoned lock is
        // still usable; the cloud keeps serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A held poll; dropping it (answer or cancelled connection) unregisters the waiter.
struct Waiting<'a> {
    store: &'a LiveResponse,
    device_id: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut inner = self.store.lock();
        if let Some(queue) = inner.queues.get_mut(self.device_id) {
            queue.waiters = queue.waiters.saturating_sub(1);
            if queue.waiters == 0 && queue.commands.is_empty() {
                inner.queues.remove(self.device_id);
            }
        }
    }
}

/// Times the session out if it has been open without device activity for longer than
/// `timeout`.
fn refresh(entry: &mut Entry, timeout: Duration, now: Instant) {
    let session = &mut entry.session;
    if session.state.is_open() && now.saturating_duration_since(entry.last_activity) > timeout {
        // The deadline passed at last activity + timeout; report that, not the time of the
        // read that noticed it, so the record does not depend on when someone looked.
        session.closed_ms = Some(session.last_activity_ms + session.timeout_ms);
        session.reason = Some(format!(
            "timed out: no device activity for {} ms while {}",
            session.timeout_ms, session.state
        ));
        session.state = SessionState::TimedOut;
    }
}

fn touch(entry: &mut Entry, now: Instant, now_ms: u64) {
    entry.last_activity = now;
    entry.session.last_activity_ms = now_ms;
}

/// Checks a result against the command it answers; says whether it is a successful getfile.
/// A successful getfile must name the blob it was told to upload to, with its digest and
/// size, so the lab can tie the upload to it.
fn check_result(session: &Session, result: &LrResult) -> Result<bool, ActionError> {
    let Some(command) = session.commands.get(result.index) else {
        return Err(ActionError::IndexOutOfRange {
            index: result.index,
            commands: session.commands.len(),
        });
    };
    let invalid = |detail: String| Err(ActionError::InvalidResult { detail });
    if matches!(command, LrCommand::GetFile { .. }) && result.status == ResultStatus::Ok {
        let expected = session
            .upload_blob(result.index)
            .map(|name| format!("{CONTAINER}/{name}"));
        if result.blob != expected {
            return invalid(format!(
                "a getfile result must name its blob {:?}",
                expected.unwrap_or_default()
            ));
        }
        let sha_ok = result
            .sha256
            .as_deref()
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !sha_ok {
            return invalid("a getfile result needs sha256 as 64 hex digits".to_owned());
        }
        if result.size.is_none() {
            return invalid("a getfile result needs size".to_owned());
        }
        return Ok(true);
    }
    Ok(false)
}

/// The last path component (either separator), with anything but `[A-Za-z0-9._-]` replaced by
/// `_`, so blob names and URLs need no escaping; at most 100 characters.
pub fn safe_file_name(path: &str) -> String {
    let last = path
        .rsplit(['\\', '/'])
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if name.chars().all(|c| c == '.') {
        "file".to_owned()
    } else {
        name
    }
}

fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(60);

    fn getfile(path: &str) -> LrCommand {
        LrCommand::GetFile {
            path: path.to_owned(),
        }
    }

    #[test]
    fn command_json_shapes() {
        let cmd: LrCommand =
            serde_json::from_str(r#"{"kind":"getfile","path":"C:\\Temp\\a.txt"}"#).unwrap();
        assert_eq!(cmd, getfile(r"C:\Temp\a.txt"));
        for bad in [
            r#"{"kind":"dir","path":"x","extra":1}"#,
            r#"{"kind":"putfile","path":"x"}"#,
            r#"{"kind":"dir"}"#,
        ] {
            assert!(serde_json::from_str::<LrCommand>(bad).is_err(), "{bad}");
        }
        // The arrival time is the cloud's to set.
        let forged = r#"{"index":0,"status":"ok","received_ms":1}"#;
        assert!(serde_json::from_str::<LrResult>(forged).is_err());
        let dir = LrCommand::Dir {
            path: r"C:\Temp".to_owned(),
        };
        assert_eq!(
            serde_json::to_value(&dir).unwrap(),
            serde_json::json!({"kind": "dir", "path": "C:\\Temp"})
        );
        let cnc = CncCommand {
            id: "c".to_owned(),
            body: CommandBody::LiveResponse {
                session: "s".to_owned(),
                actions_url: "https://h/senseir/v1/actions/s".to_owned(),
            },
        };
        assert_eq!(
            serde_json::to_value(&cnc).unwrap(),
            serde_json::json!({"id": "c", "type": "live_response", "session": "s",
                "actions_url": "https://h/senseir/v1/actions/s"})
        );
    }

    fn dir_cmd() -> LrCommand {
        LrCommand::Dir {
            path: r"C:\Temp".to_owned(),
        }
    }

    #[test]
    fn sessions_are_bounded_by_bytes_and_evictions_counted() {
        let probe = LiveResponse::new(TIMEOUT).start("dev", vec![dir_cmd()], None);
        let one = session_cost(&probe);
        let lr = LiveResponse::new(TIMEOUT).with_byte_budget(3 * one);
        let ids: Vec<String> = (0..5)
            .map(|_| lr.start("dev", vec![dir_cmd()], None).id)
            .collect();
        let stats = lr.stats();
        assert_eq!(
            (stats.held, stats.evicted, stats.bytes, stats.byte_budget),
            (3, 2, 3 * one, 3 * one)
        );
        assert!(lr.get(&ids[0]).is_none() && lr.get(&ids[4]).is_some());
    }

    #[test]
    fn a_growing_session_evicts_others_not_itself() {
        let lr = LiveResponse::new(TIMEOUT).with_byte_budget(20_000);
        let old = lr.start("dev", vec![dir_cmd()], None);
        let s = lr.start("dev", vec![dir_cmd()], None);
        lr.connect(&s.id, "dev").unwrap();
        let big = LrResult {
            index: 0,
            status: ResultStatus::Ok,
            output: Some("x".repeat(19_000)),
            blob: None,
            sha256: None,
            size: None,
            received_ms: 0,
        };
        let after = lr.record_result(&s.id, "dev", big).unwrap();
        let stats = lr.stats();
        assert_eq!((stats.held, stats.evicted), (1, 1), "{stats:?}");
        assert_eq!(stats.bytes, session_cost(&after));
        assert!(stats.bytes > 19_000 && stats.bytes <= 20_000, "{stats:?}");
        assert!(lr.get(&old.id).is_none() && lr.get(&s.id).is_some());
    }

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(safe_file_name(r"C:\Temp\notes.txt"), "notes.txt");
        assert_eq!(safe_file_name("/var/log/a b?.log"), "a_b_.log");
        assert_eq!(safe_file_name(r"C:\Temp\"), "Temp");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name(""), "file");
    }

    #[test]
    fn start_queues_and_take_delivers_once_with_the_poll_host() {
        let lr = LiveResponse::new(TIMEOUT);
        let s = lr.start("dev", vec![getfile("a")], Some("hint".to_owned()));
        assert_eq!(
            (s.state, s.gateway_host.as_deref()),
            (SessionState::Pending, Some("hint"))
        );
        assert_eq!(lr.queued("dev"), 1);
        assert!(lr.take_commands("other", "gw").is_empty());
        let cmds = lr.take_commands("dev", "gw.example");
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            cmds[0].body,
            CommandBody::LiveResponse {
                session: s.id.clone(),
                actions_url: format!("https://gw.example/senseir/v1/actions/{}", s.id),
            }
        );
        assert!(lr.take_commands("dev", "gw.example").is_empty());
        let after = lr.get(&s.id).unwrap();
        assert_eq!(after.gateway_host.as_deref(), Some("gw.example"));
        assert!(after.delivered_ms.is_some());
        assert_eq!(lr.stats().delivered, 1);
    }

    #[test]
    fn lifecycle_and_refusals() {
        let lr = LiveResponse::new(TIMEOUT);
        let s = lr.start("dev", vec![getfile(r"C:\x.bin")], None);
        let ok = |index| LrResult {
            index,
            status: ResultStatus::Error,
            output: Some("denied".to_owned()),
            blob: None,
            sha256: None,
            size: None,
            received_ms: 0,
        };
        assert!(matches!(
            lr.record_result(&s.id, "dev", ok(0)),
            Err(ActionError::State {
                state: SessionState::Pending,
                ..
            })
        ));
        assert!(matches!(
            lr.connect(&s.id, "intruder"),
            Err(ActionError::WrongDevice { .. })
        ));
        assert!(matches!(
            lr.connect("nope", "dev"),
            Err(ActionError::UnknownSession { .. })
        ));
        assert_eq!(
            lr.connect(&s.id, "dev").unwrap().state,
            SessionState::Connected
        );
        assert!(matches!(
            lr.record_result(&s.id, "dev", ok(1)),
            Err(ActionError::IndexOutOfRange {
                index: 1,
                commands: 1
            })
        ));
        // A successful getfile must name the blob it was given.
        let mut bad = ok(0);
        bad.status = ResultStatus::Ok;
        bad.blob = Some("liveresponse/elsewhere".to_owned());
        bad.sha256 = Some("00".repeat(32));
        bad.size = Some(1);
        assert!(matches!(
            lr.record_result(&s.id, "dev", bad.clone()),
            Err(ActionError::InvalidResult { .. })
        ));
        bad.blob = Some(format!("{CONTAINER}/{}/0-x.bin", s.id));
        lr.record_result(&s.id, "dev", ok(0)).unwrap();
        let stored = lr.record_result(&s.id, "dev", bad).unwrap();
        assert_eq!(stored.results.len(), 1, "a repeated index replaces");
        assert_eq!(stored.results[0].status, ResultStatus::Ok);
        let closed = lr.close(&s.id, "dev", None).unwrap();
        assert_eq!(closed.state, SessionState::Closed);
        assert!(matches!(
            lr.connect(&s.id, "dev"),
            Err(ActionError::State {
                state: SessionState::Closed,
                ..
            })
        ));
        assert_eq!(
            lr.close(&s.id, "dev", None).unwrap().state,
            SessionState::Closed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn open_sessions_time_out_lazily_and_undelivered_commands_are_dropped() {
        let lr = LiveResponse::new(TIMEOUT);
        let s = lr.start("dev", vec![], None);
        tokio::time::advance(TIMEOUT).await;
        assert_eq!(
            lr.get(&s.id).unwrap().state,
            SessionState::Pending,
            "not longer yet"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let timed_out = lr.get(&s.id).unwrap();
        assert_eq!(timed_out.state, SessionState::TimedOut);
        assert_eq!(
            timed_out.closed_ms,
            Some(timed_out.created_ms + duration_ms(TIMEOUT))
        );
        assert!(lr.take_commands("dev", "gw").is_empty());
        let stats = lr.stats();
        assert_eq!((stats.timed_out, stats.dropped, stats.queued), (1, 1, 0));
    }

    #[test]
    fn full_store_evicts_ended_sessions_first_and_their_commands() {
        let lr = LiveResponse::with_capacity(TIMEOUT, 2);
        let a = lr.start("dev", vec![], None);
        let b = lr.start("dev", vec![], None);
        lr.close(&b.id, "dev", None).unwrap();
        let c = lr.start("dev", vec![], None);
        let ids: Vec<String> = lr.list().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, [a.id.clone(), c.id.clone()]);
        // Nothing ended now: the oldest goes, and its queued command with it.
        let d = lr.start("dev", vec![], None);
        let ids: Vec<String> = lr.list().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, [c.id.clone(), d.id.clone()]);
        assert_eq!(lr.stats().evicted, 2);
        let delivered: Vec<String> = lr
            .take_commands("dev", "gw")
            .into_iter()
            .map(|cmd| match cmd.body {
                CommandBody::LiveResponse { session, .. } => session,
            })
            .collect();
        assert_eq!(delivered, [c.id, d.id]);
    }
}
