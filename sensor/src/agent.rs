//! The sensor as a running client of the cloud.
//!
//! An [`Agent`] is onboarded from an onboarding blob (which names its region and connectivity
//! model, hence its CnC gateway and cyber-data collector), and then runs two loops until it is
//! stopped:
//!
//! - **Cyber data**: events wait in a bounded local cache and are uploaded in batches to the
//!   1DS collector (`POST /OneCollector/1.0`, JSON lines or Bond, deflate). 200 removes the
//!   batch; 408, 429 and 5xx (and any network or TLS failure) keep it cached and retry with
//!   exponential back-off (base × 2ⁿ, ±20 % jitter, capped), as the 1DS SDKs do; other 4xx drop
//!   it (counted). Every answer's kill switch and retry headers are obeyed as the SDKs do
//!   ([`crate::kill_switch`]): a killed tenant's cached and new events are dropped (counted),
//!   `Retry-After` holds every upload, the collector's clock delta is echoed. Events that
//!   arrive while the cloud is unreachable stay cached and go out when it returns; if the cache
//!   overflows, the oldest are evicted and counted.
//! - **Command and control**: a long poll of the gateway; a Live Response command makes the
//!   agent open the session, run `dir` and `getfile` against a fake file system, upload the
//!   file through the SAS URL it was given, report results and close.
//!
//! Every failure is recorded as an [`Outcome`] (the same verdicts as the probes), so a test or
//! report can say *why* the sensor could not talk to the cloud (e.g. a pin mismatch).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use mdelab_catalog::{Catalog, Connectivity, Region};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::Error;
use super::{ClientKind, DeviceTrust, HttpRequest, Network, Origin, Outcome, Route, send, wire};
use crate::kill_switch::KillSwitch;

/// What onboarding tells the sensor (reference §1.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Onboarding {
    /// The tenant.
    pub org_id: String,
    /// The tenant's region.
    pub region: Region,
    /// Standard or streamlined.
    pub connectivity: Connectivity,
    /// The CnC base URL (`https://winatp-gw-cus.microsoft.com/`, `https://edr-cus…/edr/`).
    pub geo_location_url: String,
    /// The 1DS collector URL (`https://us-v20.events…/OneCollector/1.0`).
    pub vortex_server_url: String,
}

#[derive(Serialize, Deserialize)]
struct Blob {
    body: String,
    sig: String,
    sha256sig: String,
    cert: String,
    chain: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlobBody {
    org_id: String,
    geo_location_url: String,
    datacenter: String,
    vortex_geo_location: String,
    vortex_server_url: String,
    vortex_ticket_url: String,
    partner_geo_location: String,
    version: String,
    device_type: String,
}

impl Onboarding {
    /// The lab's onboarding blob for a tenant of `region` onboarded with `connectivity`: the
    /// real blob's shape, with the first datacenter of the region, and no real signature.
    pub fn blob(org_id: &str, region: Region, connectivity: Connectivity) -> String {
        let spec = region.spec();
        let dc = spec.datacenters.first().copied().unwrap_or_default();
        // The hosts come from the catalog; a region without them gets URLs that do not parse.
        let catalog = Catalog::mde();
        let geo = catalog
            .cnc_gateway(region, connectivity)
            .map(|(host, base)| format!("https://{host}{base}"))
            .unwrap_or_default();
        let vortex = catalog
            .collector(region, connectivity)
            .map(|e| format!("https://{}{}", e.host, wire::ONECOLLECTOR_PATH))
            .unwrap_or_default();
        let body = BlobBody {
            org_id: org_id.to_owned(),
            geo_location_url: geo,
            datacenter: dc.to_owned(),
            vortex_geo_location: region.name().to_uppercase(),
            vortex_server_url: vortex,
            vortex_ticket_url: "https://events.data.microsoft.com".into(),
            partner_geo_location: spec.partner_geo.to_owned(),
            version: "2.11".into(),
            device_type: "Server".into(),
        };
        let blob = Blob {
            body: serde_json::to_string(&body).unwrap_or_default(),
            sig: "mdelab-unsigned".into(),
            sha256sig: "mdelab-unsigned".into(),
            cert: String::new(),
            chain: Vec::new(),
        };
        serde_json::to_string_pretty(&blob).unwrap_or_default()
    }

    /// Reads an onboarding blob.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let blob: Blob =
            serde_json::from_str(text).map_err(|e| Error::OnboardingShape(e.to_string()))?;
        let body: BlobBody = serde_json::from_str(&blob.body)
            .map_err(|e| Error::OnboardingShape(format!("body: {e}")))?;
        let region = body
            .partner_geo_location
            .parse::<Region>()
            .or_else(|_| body.vortex_geo_location.parse::<Region>())
            .map_err(|detail| Error::OnboardingField {
                field: "partnerGeoLocation",
                detail,
            })?;
        let host = |url: &str, field| {
            url.parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_owned))
                .ok_or_else(|| Error::OnboardingField {
                    field,
                    detail: format!("{url:?} is not a URL"),
                })
        };
        let cnc_host = host(&body.geo_location_url, "geoLocationUrl")?;
        host(&body.vortex_server_url, "vortexServerUrl")?;
        // The blob names hosts, not the model: the catalog knows which model the gateway serves.
        let connectivity = Catalog::mde()
            .model_of(&cnc_host)
            .unwrap_or(Connectivity::Standard);
        Ok(Self {
            org_id: body.org_id,
            region,
            connectivity,
            geo_location_url: body.geo_location_url,
            vortex_server_url: body.vortex_server_url,
        })
    }

    /// The CnC gateway and the long-poll path on it.
    pub fn cnc(&self) -> (Origin, String) {
        let (origin, base) = origin_and_path(&self.geo_location_url);
        (
            origin,
            format!("{}/commands/cnc", base.trim_end_matches('/')),
        )
    }

    /// The 1DS collector and its path.
    pub fn collector(&self) -> (Origin, String) {
        origin_and_path(&self.vortex_server_url)
    }
}

/// Splits a URL into the origin (pinned as the catalog says) and the path and query.
fn origin_and_path(url: &str) -> (Origin, String) {
    let uri: http::Uri = url.parse().unwrap_or_default();
    let host = uri.host().unwrap_or_default().to_owned();
    let pinned = Catalog::mde().https_host(&host).is_some_and(|h| h.pinned);
    let path = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    (Origin::https(&host, pinned), path)
}

/// Exponential back-off with jitter, as the 1DS SDKs retry.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// First delay (the SDKs use 3 s; tests use milliseconds).
    pub base: Duration,
    /// Longest delay (the SDKs cap at 600 s).
    pub cap: Duration,
}

impl Backoff {
    /// The delay before retry `attempt` (0-based): base × 2ⁿ, ±20 %, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let raw = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.cap);
        let jitter: f64 = rand::random::<f64>() * 0.4 + 0.8;
        raw.mul_f64(jitter).min(self.cap)
    }
}

/// A tiny read-only file system for Live Response to look at.
#[derive(Clone, Debug, Default)]
pub struct FakeFs {
    files: BTreeMap<String, Bytes>,
}

impl FakeFs {
    /// A few files under `C:\Temp` and `C:\Windows`.
    pub fn lab_default() -> Self {
        let mut fs = Self::default();
        fs.add(
            r"C:\Temp\notes.txt",
            Bytes::from_static(b"mdelab: nothing to see here\r\n"),
        );
        let report: Vec<u8> = (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        fs.add(r"C:\Temp\report.bin", Bytes::from(report));
        fs.add(
            r"C:\Windows\System32\drivers\etc\hosts",
            Bytes::from_static(b"127.0.0.1 localhost\r\n"),
        );
        fs
    }

    /// Adds (or replaces) a file.
    pub fn add(&mut self, path: &str, content: Bytes) {
        self.files.insert(path.to_ascii_lowercase(), content);
    }

    /// A file's content.
    pub fn read(&self, path: &str) -> Option<Bytes> {
        self.files.get(&path.to_ascii_lowercase()).cloned()
    }

    /// `dir`: the files below a folder, one per line with their size.
    pub fn dir(&self, path: &str) -> Option<String> {
        let prefix = format!("{}\\", path.trim_end_matches('\\').to_ascii_lowercase());
        let lines: Vec<String> = self
            .files
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix))
            .map(|(p, c)| format!("{:>10}  {}", c.len(), &p[prefix.len()..]))
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The device id (sent as `Msadeviceticket`).
    pub device_id: String,
    /// What onboarding said.
    pub onboarding: Onboarding,
    /// How the sensor's traffic leaves the device.
    pub route: Route,
    /// The device trust store and the sensor's pins.
    pub trust: DeviceTrust,
    /// How the device reaches the lab.
    pub network: Network,
    /// Most events per upload.
    pub batch_max: usize,
    /// How often the cache is flushed when not full.
    pub upload_every: Duration,
    /// Retry back-off.
    pub backoff: Backoff,
    /// Most events cached; the oldest are evicted (and counted) beyond it.
    pub cache_capacity: usize,
    /// How batches are written: JSON lines, or Bond as the native 1DS C++ SDK sends them.
    pub encoding: wire::UploadEncoding,
    /// How long each CnC poll asks the cloud to hold.
    pub cnc_hold: Duration,
    /// What Live Response sees.
    pub files: FakeFs,
}

impl AgentConfig {
    /// Lab defaults: fast uploads and back-off, 2 s CnC holds.
    pub fn new(
        device_id: &str,
        onboarding: Onboarding,
        route: Route,
        trust: DeviceTrust,
        network: Network,
    ) -> Self {
        Self {
            device_id: device_id.to_owned(),
            onboarding,
            route,
            trust,
            network,
            batch_max: 100,
            upload_every: Duration::from_millis(100),
            backoff: Backoff {
                base: Duration::from_millis(50),
                cap: Duration::from_millis(500),
            },
            cache_capacity: 10_000,
            encoding: wire::UploadEncoding::Json,
            cnc_hold: Duration::from_secs(2),
            files: FakeFs::lab_default(),
        }
    }
}

/// What became of a Live Response session on the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveResponseRecord {
    /// Session id.
    pub session: String,
    /// "completed" or "failed".
    pub result: String,
    /// Why it failed.
    pub reason: Option<String>,
}

/// The agent's counters and last outcomes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentStats {
    /// Events generated on the device.
    pub generated: u64,
    /// Upload requests answered 200.
    pub batches_ok: u64,
    /// Events the collector counted as accepted.
    pub accepted: u64,
    /// Events the collector counted as rejected.
    pub rejected: u64,
    /// Upload attempts that will be retried (408/429/5xx, network, TLS).
    pub retries: u64,
    /// Events dropped on a non-retryable answer (other 4xx).
    pub dropped: u64,
    /// Events evicted because the cache was full.
    pub evicted: u64,
    /// Events waiting in the cache now.
    pub cached: usize,
    /// Answers whose kill-tokens named this device's tenant.
    pub killed: u64,
    /// Events dropped because the collector killed their tenant (cached, in the answered batch,
    /// or generated while the kill lasted).
    pub killed_dropped: u64,
    /// Times `Retry-After` held every upload.
    pub retry_after_holds: u64,
    /// Why the last failed upload failed.
    pub last_upload_failure: Option<Outcome>,
    /// CnC polls answered (200 or 204).
    pub cnc_polls: u64,
    /// CnC commands received.
    pub cnc_commands: u64,
    /// Why the last failed CnC poll failed.
    pub last_cnc_failure: Option<Outcome>,
    /// Live Response sessions handled.
    pub live_response: Vec<LiveResponseRecord>,
}

struct Shared {
    config: AgentConfig,
    cache: Mutex<VecDeque<(u64, serde_json::Value)>>,
    next_seq: Mutex<u64>,
    stats: Mutex<AgentStats>,
    changed: watch::Sender<u64>,
    upload_now: Notify,
    /// The Live Response sessions in progress; [`Agent::stop`] cancels and waits for them.
    sessions: TaskTracker,
    /// What the collector's answers said: kills, `Retry-After`, the clock delta.
    kill_switch: Mutex<KillSwitch>,
    /// The tenant token this device uploads with (what kill-tokens name).
    tenant_token: String,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut AgentStats)) {
        {
            let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut stats);
            stats.cached = self
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
        }
        self.changed.send_modify(|v| *v += 1);
    }
}

/// A running sensor.
pub struct Agent {
    shared: Arc<Shared>,
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Agent {
    /// Starts the upload and CnC loops; they stop when `parent` is cancelled or on [`Agent::stop`].
    pub fn start(config: AgentConfig, parent: &CancellationToken) -> Self {
        let tenant_token = wire::tenant_token(&config.onboarding.org_id);
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            config,
            cache: Mutex::new(VecDeque::new()),
            next_seq: Mutex::new(1),
            stats: Mutex::new(AgentStats::default()),
            changed,
            upload_now: Notify::new(),
            sessions: TaskTracker::new(),
            tenant_token,
            kill_switch: Mutex::new(KillSwitch::new()),
        });
        let token = parent.child_token();
        let tasks = vec![
            tokio::spawn(upload_loop(shared.clone(), token.clone())),
            tokio::spawn(cnc_loop(shared.clone(), token.clone())),
        ];
        Self {
            shared,
            token,
            tasks,
        }
    }

    /// Generates one event (Common Schema 4.0) and caches it for upload; returns its sequence
    /// number, which the cloud sees as `ext.sdk.seq`.
    pub fn emit(&self, name: &str, data: serde_json::Value) -> u64 {
        let config = &self.shared.config;
        let seq = {
            let mut next = self
                .shared
                .next_seq
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let seq = *next;
            *next += 1;
            seq
        };
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let event = serde_json::json!({
            "ver": "4.0",
            "name": name,
            "time": time,
            "iKey": format!("o:{}", config.onboarding.org_id),
            "ext": {
                "device": { "localId": format!("s:{}", config.device_id) },
                "sdk": { "seq": seq, "installId": config.device_id, "ver": wire::SDK_VERSION },
            },
            "data": data,
        });
        // A killed tenant's new events are dropped, not cached (`isTokenBlocked` when storing).
        let killed = self
            .shared
            .kill_switch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .killed_until(&self.shared.tenant_token, Instant::now())
            .is_some();
        if killed {
            self.shared.update(|s| {
                s.generated += 1;
                s.killed_dropped += 1;
            });
            return seq;
        }
        let mut evicted = 0;
        let cached = {
            let mut cache = self
                .shared
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            cache.push_back((seq, event));
            while cache.len() > config.cache_capacity {
                cache.pop_front();
                evicted += 1;
            }
            cache.len()
        };
        self.shared.update(|s| {
            s.generated += 1;
            s.evicted += evicted;
        });
        if cached >= config.batch_max {
            self.shared.upload_now.notify_one();
        }
        seq
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AgentStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (at most `timeout`) until `pred` holds for the counters; whether it did.
    pub async fn wait_until(&self, pred: impl Fn(&AgentStats) -> bool, timeout: Duration) -> bool {
        let mut changes = self.shared.changed.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.stats()) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return pred(&self.stats()),
            }
        }
    }

    /// Stops both loops and any Live Response session in progress, and waits for them all.
    pub async fn stop(self) {
        self.token.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        // The CnC loop has ended, so no session starts after this.
        self.shared.sessions.close();
        self.shared.sessions.wait().await;
    }
}

/// Sleeps `delay` unless cancelled first; whether to go on.
async fn pause(token: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = token.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

async fn upload_loop(shared: Arc<Shared>, token: CancellationToken) {
    let config = &shared.config;
    let (origin, path) = config.onboarding.collector();
    let tenant = config.onboarding.org_id.clone();
    let tenant_token = &shared.tenant_token;
    let mut attempt = 0u32;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(config.upload_every) => {}
            () = shared.upload_now.notified() => {}
        }
        loop {
            let (blocked, killed) = {
                let mut ks = shared
                    .kill_switch
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                (ks.blocked_until(now), ks.killed_until(tenant_token, now))
            };
            if killed.is_some() {
                drop_cached(&shared, usize::MAX);
                break;
            }
            if let Some(until) = blocked {
                // `Retry-After`: nothing goes out, for any tenant, until it passes.
                if !pause(&token, until.saturating_duration_since(Instant::now())).await {
                    return;
                }
                continue;
            }
            let batch: Vec<(u64, serde_json::Value)> = {
                let cache = shared.cache.lock().unwrap_or_else(PoisonError::into_inner);
                cache.iter().take(config.batch_max).cloned().collect()
            };
            if batch.is_empty() {
                break;
            }
            let delta = shared
                .kill_switch
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .delta_to_apply();
            let request = wire::onecollector_upload(
                &path,
                &tenant,
                &config.device_id,
                batch.iter().map(|(_, event)| event),
                config.encoding,
                delta.as_deref(),
            );
            let result = send(
                &origin,
                ClientKind::Sensor,
                &config.route,
                &config.trust,
                &config.network,
                &request,
            )
            .await;
            // Every answer's kill switch and retry headers count, whatever its status.
            if let Ok(response) = &result {
                let directive = shared
                    .kill_switch
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .handle(&response.headers, tenant_token, Instant::now());
                if directive.drop_batch {
                    // Dropped first, then counted: whoever sees `killed` also sees the drop.
                    drop_cached(&shared, batch.len());
                    shared.update(|s| s.killed += 1);
                }
                if directive.killed_until.is_some() {
                    drop_cached(&shared, usize::MAX);
                }
                if directive.blocked_until.is_some() {
                    shared.update(|s| s.retry_after_holds += 1);
                }
                if directive.drop_batch {
                    attempt = 0;
                    if response.status == 200 {
                        shared.update(|s| s.batches_ok += 1);
                    }
                    continue;
                }
            }
            let retry = match result {
                Ok(response) if response.status == 200 => {
                    let counts: serde_json::Value =
                        serde_json::from_slice(&response.body).unwrap_or_default();
                    let acc = counts["acc"].as_u64().unwrap_or(0);
                    let rej = counts["rej"].as_u64().unwrap_or(0);
                    remove_front(&shared, batch.len());
                    shared.update(|s| {
                        s.batches_ok += 1;
                        s.accepted += acc;
                        s.rejected += rej;
                    });
                    attempt = 0;
                    false
                }
                Ok(response) if retryable(response.status) => {
                    let outcome = Outcome::new(
                        super::Verdict::Connected {
                            status: response.status,
                        },
                        format!("the collector answered {}; retrying later", response.status),
                        response.served_issuer,
                    );
                    shared.update(|s| {
                        s.retries += 1;
                        s.last_upload_failure = Some(outcome);
                    });
                    true
                }
                Ok(response) => {
                    // Other 4xx: the SDKs drop the batch; so do we, counting it.
                    remove_front(&shared, batch.len());
                    let n = batch.len() as u64;
                    let status = response.status;
                    shared.update(|s| {
                        s.dropped += n;
                        s.last_upload_failure = Some(Outcome::new(
                            super::Verdict::Connected { status },
                            format!("the collector refused the batch with {status}; dropped"),
                            None,
                        ));
                    });
                    false
                }
                Err(outcome) => {
                    shared.update(|s| {
                        s.retries += 1;
                        s.last_upload_failure = Some(outcome);
                    });
                    true
                }
            };
            if retry {
                let delay = config.backoff.delay(attempt);
                attempt = attempt.saturating_add(1);
                if !pause(&token, delay).await {
                    return;
                }
            }
        }
    }
}

/// Drops up to `n` of the oldest cached events because the collector killed their tenant.
fn drop_cached(shared: &Shared, n: usize) {
    let dropped = {
        let mut cache = shared.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let n = n.min(cache.len());
        cache.drain(..n);
        n as u64
    };
    if dropped > 0 {
        shared.update(|s| s.killed_dropped += dropped);
    }
}

/// The C++ 1DS SDK's rule: 408, 429 and 5xx are retried; everything else is final.
fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

fn remove_front(shared: &Shared, n: usize) {
    let mut cache = shared.cache.lock().unwrap_or_else(PoisonError::into_inner);
    let n = n.min(cache.len());
    cache.drain(..n);
}

#[derive(Deserialize)]
struct CncAnswer {
    #[serde(default)]
    commands: Vec<CncCommand>,
}

#[derive(Deserialize)]
struct CncCommand {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    session: String,
    #[serde(default)]
    actions_url: String,
}

async fn cnc_loop(shared: Arc<Shared>, token: CancellationToken) {
    let config = &shared.config;
    let (origin, path) = config.onboarding.cnc();
    let mut attempt = 0u32;
    loop {
        let request = wire::cnc_poll(&path, config.cnc_hold, &config.device_id);
        let poll = send(
            &origin,
            ClientKind::Sensor,
            &config.route,
            &config.trust,
            &config.network,
            &request,
        );
        let result = tokio::select! {
            () = token.cancelled() => return,
            result = poll => result,
        };
        match result {
            Ok(response) if response.status == 200 || response.status == 204 => {
                attempt = 0;
                let answer: CncAnswer =
                    serde_json::from_slice(&response.body).unwrap_or(CncAnswer {
                        commands: Vec::new(),
                    });
                shared.update(|s| {
                    s.cnc_polls += 1;
                    s.cnc_commands += answer.commands.len() as u64;
                });
                for command in answer
                    .commands
                    .into_iter()
                    .filter(|c| c.kind == "live_response")
                {
                    let session = live_response(shared.clone(), command);
                    let token = token.clone();
                    shared.sessions.spawn(async move {
                        tokio::select! {
                            () = token.cancelled() => {}
                            () = session => {}
                        }
                    });
                }
            }
            other => {
                let outcome = match other {
                    Ok(response) => Outcome::new(
                        super::Verdict::Connected {
                            status: response.status,
                        },
                        format!("the CnC gateway answered {}", response.status),
                        response.served_issuer,
                    ),
                    Err(outcome) => outcome,
                };
                shared.update(|s| s.last_cnc_failure = Some(outcome));
                let delay = config.backoff.delay(attempt);
                attempt = attempt.saturating_add(1);
                if !pause(&token, delay).await {
                    return;
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct LrConnect {
    #[serde(default)]
    commands: Vec<LrCommand>,
}

#[derive(Deserialize)]
struct LrCommand {
    index: usize,
    kind: String,
    path: String,
    #[serde(default)]
    upload_url: Option<String>,
    /// The blob name the cloud expects in the result (`<container>/<name>`).
    #[serde(default)]
    blob: Option<String>,
}

/// Runs one Live Response session to its end and records how it went.
async fn live_response(shared: Arc<Shared>, command: CncCommand) {
    let result = run_session(&shared, &command.actions_url).await;
    let record = LiveResponseRecord {
        session: command.session,
        result: if result.is_ok() {
            "completed"
        } else {
            "failed"
        }
        .into(),
        reason: result.err(),
    };
    shared.update(|s| s.live_response.push(record));
}

async fn run_session(shared: &Shared, actions_url: &str) -> Result<(), String> {
    let config = &shared.config;
    let (origin, base) = origin_and_path(actions_url);
    let post = |path: String, body: serde_json::Value| {
        wire::live_response_action(&path, &config.device_id, &body)
    };
    let call = |request: HttpRequest, origin: Origin| async move {
        let response = send(
            &origin,
            ClientKind::Sensor,
            &config.route,
            &config.trust,
            &config.network,
            &request,
        )
        .await
        .map_err(|o| o.evidence)?;
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(format!("{} answered {}", origin.host, response.status))
        }
    };
    let connect = call(
        post(format!("{base}/connect"), serde_json::json!({})),
        origin.clone(),
    )
    .await?;
    let session: LrConnect =
        serde_json::from_slice(&connect.body).map_err(|e| format!("bad connect answer: {e}"))?;
    for cmd in session.commands {
        let result = match cmd.kind.as_str() {
            "dir" => match config.files.dir(&cmd.path) {
                Some(listing) => {
                    serde_json::json!({"index": cmd.index, "status": "ok", "output": listing})
                }
                None => {
                    serde_json::json!({"index": cmd.index, "status": "error", "output": "path not found"})
                }
            },
            "getfile" => match (config.files.read(&cmd.path), &cmd.upload_url) {
                (Some(content), Some(url)) => {
                    let (blob_origin, blob_path) = origin_and_path(url);
                    let put = wire::blob_put(&blob_path, &config.device_id, content.clone());
                    call(put, blob_origin).await?;
                    // The cloud names the blob it expects; without that, take it from the URL.
                    let blob = cmd.blob.clone().unwrap_or_else(|| {
                        let path = blob_path.split('?').next().unwrap_or_default();
                        path.trim_start_matches('/').to_owned()
                    });
                    let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &content));
                    serde_json::json!({"index": cmd.index, "status": "ok", "blob": blob, "sha256": sha256, "size": content.len()})
                }
                (None, _) => {
                    serde_json::json!({"index": cmd.index, "status": "error", "output": "file not found"})
                }
                (Some(_), None) => {
                    serde_json::json!({"index": cmd.index, "status": "error", "output": "no upload URL"})
                }
            },
            other => {
                serde_json::json!({"index": cmd.index, "status": "error", "output": format!("unsupported command {other}")})
            }
        };
        call(post(format!("{base}/results"), result), origin.clone()).await?;
    }
    call(post(format!("{base}/close"), serde_json::json!({})), origin).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onboarding_blob_round_trips_for_every_region_and_model() {
        for region in Region::ALL {
            for model in Connectivity::ALL {
                let parsed = Onboarding::parse(&Onboarding::blob("org1", region, model)).unwrap();
                assert_eq!((parsed.region, parsed.connectivity), (region, model));
                let (cnc, path) = parsed.cnc();
                assert!(
                    Catalog::mde().https_host(&cnc.host).is_some(),
                    "{} is a catalog host",
                    cnc.host
                );
                assert!(cnc.pinned);
                assert_eq!(
                    path,
                    if model == Connectivity::Standard {
                        "/commands/cnc"
                    } else {
                        "/edr/commands/cnc"
                    }
                );
                let (collector, path) = parsed.collector();
                assert!(
                    collector.pinned && path == "/OneCollector/1.0",
                    "{collector:?} {path}"
                );
            }
        }
        assert!(Onboarding::parse("{}").is_err());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let d0 = b.delay(0).as_millis();
            assert!((80..=120).contains(&d0), "{d0}");
            let d2 = b.delay(2).as_millis();
            assert!((320..=480).contains(&d2), "{d2}");
            assert!(b.delay(30) <= b.cap);
        }
    }

    #[test]
    fn retry_rule_follows_the_cpp_sdk() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(status), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 413] {
            assert!(!retryable(status), "{status}");
        }
    }

    #[test]
    fn fake_fs_lists_and_reads() {
        let fs = FakeFs::lab_default();
        let listing = fs.dir(r"C:\Temp").unwrap();
        assert!(listing.contains("notes.txt") && listing.contains("report.bin"));
        assert!(
            fs.read(r"c:\temp\NOTES.txt").is_some(),
            "paths are case-insensitive, as on Windows"
        );
        assert!(fs.dir(r"D:\").is_none());
    }
}
