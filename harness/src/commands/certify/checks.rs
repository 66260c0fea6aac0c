//! The certification's checks: the [`Suite`] run through the proxy under test, family by
//! family (reachability, TLS inspection, the held CnC poll, the sample upload, the 1DS posts,
//! CRL/CTL, denial), each producing [`Item`]s; the inspection check is in `inspection.rs`, the
//! long poll in `long_poll.rs`. Every request is the sensor's own
//! ([`mdelab_sensor::wire`]); the cloud's side (stored blobs and events) is read through the
//! admin API.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use mdelab_catalog::{Catalog, Connectivity, Region, Scheme, Service};
use mdelab_sensor::agent::Onboarding;
use mdelab_sensor::{
    self as sensor, ClientKind, HttpRequest, HttpResponse, Network, Origin, Outcome, ProxyRoute,
    Route, Target, Verdict, wire,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::args::CertifyArgs;
use super::inspection::{exchanged, inspecting_issuer, inspection};
use super::long_poll::LongPoll;
use super::model::{Family, Item, Results, sensor_check};
use super::{LINES_PER_POST, LabView, MIB, STEP_TIMEOUT};
use crate::commands::progress::Progress;
use crate::manifest::Manifest;
use crate::report::Check;

/// Probes in flight at once during the reachability sweep (a sensor opens several connections
/// at once too; more would only measure the proxy's accept queue).
const PARALLEL_PROBES: usize = 8;
/// Container the sample uploads go to.
const UPLOAD_CONTAINER: &str = "mdelab-certify";
/// The tenant the 1DS posts name.
const TENANT: &str = "mdelab-certify";

/// One run of the suite: the proxy under test, SYSTEM's route through it, and the lab.
pub(super) struct Suite<'a> {
    args: &'a CertifyArgs,
    proxy: SocketAddr,
    proxy_user: Option<(String, String)>,
    /// SYSTEM's route: the proxy, no credentials.
    route: Route,
    lab: LabView,
    models: Vec<Connectivity>,
    /// Makes this run's device ids and blob names unique on a shared lab.
    nonce: String,
    /// What the run is doing, on stderr.
    progress: &'a Progress,
}

impl<'a> Suite<'a> {
    /// Prepares a run against the lab of `manifest`.
    pub(super) fn new(
        args: &'a CertifyArgs,
        proxy: SocketAddr,
        proxy_user: Option<(String, String)>,
        manifest: &Manifest,
        progress: &'a Progress,
    ) -> Result<Self> {
        Ok(Self {
            args,
            proxy,
            proxy_user,
            route: Route::Proxy(ProxyRoute {
                addr: proxy,
                credentials: None,
            }),
            lab: LabView::from_manifest(manifest)?,
            models: args.connectivity.models(),
            nonce: hex::encode(rand::random::<[u8; 4]>()),
            progress,
        })
    }

    /// The steps [`Suite::run`] reports: reachability, CRL/CTL, an upload and the posts per
    /// model, the wait for the long polls, then the denial and credentials checks when asked.
    pub(super) fn steps(args: &CertifyArgs) -> u64 {
        let models = args.connectivity.models().len() as u64;
        3 + 2 * models + u64::from(args.check_deny) + u64::from(args.proxy_user.is_some())
    }

    /// Sends one of the sensor's requests to `origin` through the proxy, as SYSTEM.
    async fn send(&self, origin: &Origin, request: &HttpRequest) -> Result<HttpResponse, Outcome> {
        sensor::send(
            origin,
            ClientKind::Sensor,
            &self.route,
            &self.lab.trust,
            &self.lab.network,
            request,
        )
        .await
    }

    /// This run's device id for `model`.
    fn device(&self, model: Connectivity) -> String {
        format!("mdelab-certify-{}-{}", self.nonce, model.name())
    }

    /// Runs every family of checks (the long polls alongside the others).
    pub(super) async fn run(self) -> Result<Results> {
        if !self
            .lab
            .admin
            .ready()
            .await
            .context("the lab's admin API does not answer")?
        {
            bail!(
                "the lab is not ready (its admin API says so): wait for `mdelab up` to finish starting"
            );
        }
        // The long polls take `--hold` seconds: run them alongside everything else, as the
        // sensor keeps its CnC poll open while it uploads.
        let polls = self.start_long_polls()?;
        let progress = self.progress;
        progress.step(format_args!(
            "reachability and TLS chains: every HTTPS URL through the proxy (CnC long poll of {} s under way)",
            self.args.hold_secs()
        ));
        let reach = self.reachability().await;
        let inspection = inspection(&reach);
        progress.step("CRL/CTL: every plain-HTTP URL through the proxy");
        let crl = self.crl_ctl().await;
        let mut uploads = Vec::new();
        for model in self.models.clone() {
            progress.step(format_args!(
                "sample upload: {} MiB ({model})",
                self.args.upload_mib
            ));
            uploads.push(self.upload(model).await?);
        }
        let mut posts = Vec::new();
        for model in self.models.clone() {
            progress.step(format_args!(
                "cyber data: {} 1DS posts ({model})",
                self.args.posts
            ));
            posts.push(self.posts(model).await?);
        }
        progress.step(format_args!(
            "CnC long poll: waiting for the end of its {} s hold",
            self.args.hold_secs()
        ));
        let mut long_polls = Vec::new();
        for poll in polls {
            long_polls.push(poll.await.context("the long-poll task failed")?);
        }
        let deny = if self.args.check_deny {
            progress.step(format_args!(
                "denial: CONNECT {} must be refused",
                self.args.deny_target
            ));
            let check = deny_check(self.proxy, &self.args.deny_target, STEP_TIMEOUT).await;
            let reason = (!check.as_expected()).then(|| {
                format!(
                    "the proxy is an open relay: it tunnels to {}",
                    self.args.deny_target
                )
            });
            vec![Item {
                family: Family::Deny,
                host: String::new(),
                pinned: false,
                check,
                reason,
            }]
        } else {
            Vec::new()
        };
        let notes = self.credentials_note(&reach).await;
        Ok(Results {
            reach,
            inspection,
            long_polls,
            uploads,
            posts,
            crl,
            deny,
            notes,
        })
    }

    /// Every HTTPS URL of the region and models, probed through the proxy without credentials.
    async fn reachability(&self) -> Vec<Item> {
        self.probe_catalog(Scheme::Https, Family::Reach, "CONNECT")
            .await
    }

    /// Every catalog URL of `scheme` for the region and models, through the proxy; each must
    /// answer its catalog status.
    async fn probe_catalog(&self, scheme: Scheme, family: Family, path: &str) -> Vec<Item> {
        let mut seen = BTreeSet::new();
        let endpoints: Vec<_> = self
            .models
            .iter()
            .flat_map(|model| Catalog::mde().for_device(self.args.region, *model))
            .filter(|e| e.scheme == scheme && seen.insert(e.url()))
            .collect();
        let targets: Vec<Target> = endpoints.iter().map(|e| Target::from(*e)).collect();
        let outcomes = self.probe_all(targets).await;
        endpoints
            .into_iter()
            .zip(outcomes)
            .map(|(endpoint, observed)| Item {
                family,
                host: endpoint.host.clone(),
                pinned: endpoint.pinned,
                check: sensor_check(
                    format!("{} {}", endpoint.probe.method.as_str(), endpoint.url()),
                    path,
                    Verdict::Connected {
                        status: endpoint.probe.status,
                    },
                    observed,
                ),
                reason: None,
            })
            .collect()
    }

    /// Probes the targets through the proxy, a few at a time; outcomes in target order.
    async fn probe_all(&self, targets: Vec<Target>) -> Vec<Outcome> {
        let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL_PROBES));
        let trust = Arc::new(self.lab.trust.clone());
        let mut tasks = JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let (semaphore, trust) = (semaphore.clone(), trust.clone());
            let (route, network) = (self.route.clone(), self.lab.network.clone());
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let outcome =
                    sensor::probe(&target, ClientKind::Sensor, &route, &trust, &network).await;
                (index, outcome)
            });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(pair) => outcomes.push(pair),
                // A panicked probe is a bug of ours; surface it rather than lose a row.
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        }
        outcomes.sort_by_key(|(index, _)| *index);
        outcomes.into_iter().map(|(_, outcome)| outcome).collect()
    }

    /// Every plain-HTTP URL (CRL/CTL), as absolute-form requests to the proxy.
    async fn crl_ctl(&self) -> Vec<Item> {
        self.probe_catalog(Scheme::Http, Family::CrlCtl, "absolute-form")
            .await
    }

    /// Starts one held CnC poll per model, each on its own task.
    fn start_long_polls(&self) -> Result<Vec<tokio::task::JoinHandle<Item>>> {
        let mut handles = Vec::new();
        for model in &self.models {
            let onboarding = onboarding(self.args.region, *model)?;
            let (origin, path) = onboarding.cnc();
            let poll = LongPoll {
                origin,
                path,
                device: self.device(*model),
                hold: Duration::from_secs(self.args.hold_secs()),
                route: self.route.clone(),
                trust: self.lab.trust.clone(),
                network: self.lab.network.clone(),
            };
            handles.push(tokio::spawn(poll.run()));
        }
        Ok(handles)
    }

    /// One `--upload-mib` block blob to the region's sample-upload storage of `model`, then the
    /// cloud's SHA-256 of what it stored compared with ours.
    async fn upload(&self, model: Connectivity) -> Result<Item> {
        let (account, gateway) = sample_account(self.args.region, model).with_context(|| {
            format!(
                "the catalog has no sample-upload storage for {} {model}",
                self.args.region
            )
        })?;
        let blob = format!("{}-{}.bin", self.nonce, model.name());
        let size = self.args.upload_mib * MIB;
        // Long enough for a slow proxy to carry the body, and for the SAS not to expire meanwhile.
        let timeout = Duration::from_secs(60 + 2 * self.args.upload_mib);
        let answer = self
            .lab
            .admin
            .post(
                "/_lab/storage/sas",
                &json!({
                    "account": account,
                    "container": UPLOAD_CONTAINER,
                    "blob": blob,
                    "permissions": "cw",
                    "ttl_secs": timeout.as_secs() + 600,
                    "gateway": gateway,
                }),
            )
            .await
            .context("the admin API did not mint a SAS URL")?;
        let url = answer["url"]
            .as_str()
            .context("the SAS answer has no url")?;
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("the admin API minted a bad URL {url:?}"))?;
        let host = uri.host().unwrap_or_default().to_owned();
        let pinned = Catalog::mde().https_host(&host).is_some_and(|h| h.pinned);
        let origin = Origin::https(&host, pinned);
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let display_path = path_and_query.split('?').next().unwrap_or_default();
        let target = format!(
            "PUT {} MiB https://{host}{display_path}",
            self.args.upload_mib
        );

        let content = Bytes::from(sample_bytes(size as usize, model_seed(model)));
        let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &content));
        let mut request =
            wire::blob_put(path_and_query, &self.device(model), content).timeout(timeout);
        // An Azure error answer is a small XML document; keep room for it as evidence.
        request.max_response = 1024 * 1024;
        let expected = Verdict::Connected { status: 201 };
        let started = Instant::now();
        let result = self.send(&origin, &request).await;
        let elapsed = started.elapsed();
        let mut reason = None;
        let observed = match result {
            Ok(response) if response.status == 201 => {
                let stored = self
                    .stored_blob(&account, &blob)
                    .await
                    .context("failed to list the cloud's blobs")?;
                match stored {
                    Some((stored_size, stored_sha))
                        if stored_size == size && stored_sha == sha256 =>
                    {
                        Outcome::new(
                            Verdict::Connected { status: 201 },
                            format!(
                                "201 Created; the cloud stored all {size} bytes and their SHA-256 matches the file sent"
                            ),
                            response.served_issuer,
                        )
                    }
                    Some((stored_size, _)) => {
                        reason = Some(format!(
                            "the {} MiB sample upload arrived altered",
                            self.args.upload_mib
                        ));
                        Outcome::new(
                            Verdict::Other {
                                detail: "stored blob differs".into(),
                            },
                            format!(
                                "201 Created, but the cloud stored {stored_size} bytes whose SHA-256 differs from the {size} bytes sent"
                            ),
                            response.served_issuer,
                        )
                    }
                    None => {
                        reason = Some(format!(
                            "the {} MiB sample upload was answered 201 but not stored",
                            self.args.upload_mib
                        ));
                        Outcome::new(
                            Verdict::Other {
                                detail: "blob not stored".into(),
                            },
                            "201 Created, but the cloud holds no such blob",
                            response.served_issuer,
                        )
                    }
                }
            }
            Ok(response) => {
                let code = response
                    .headers
                    .get("x-ms-error-code")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("no error code");
                reason = Some(format!(
                    "the {} MiB sample upload was answered {} ({code})",
                    self.args.upload_mib, response.status
                ));
                Outcome::new(
                    Verdict::Connected {
                        status: response.status,
                    },
                    format!("the storage answered {} ({code})", response.status),
                    response.served_issuer,
                )
            }
            Err(outcome) if inspecting_issuer(&outcome).is_none() => {
                if exchanged(&outcome) {
                    reason = Some(format!(
                        "the {} MiB sample upload broke off after {:.1} s",
                        self.args.upload_mib,
                        elapsed.as_secs_f64()
                    ));
                }
                let evidence = format!(
                    "{} (after {:.1} s)",
                    outcome.evidence,
                    elapsed.as_secs_f64()
                );
                Outcome {
                    evidence,
                    ..outcome
                }
            }
            Err(outcome) => outcome,
        };
        Ok(Item {
            family: Family::Upload,
            host,
            pinned,
            check: sensor_check(target, "CONNECT", expected, observed),
            reason,
        })
    }

    /// Size and SHA-256 of the blob this run uploaded, as the cloud stored it.
    async fn stored_blob(&self, account: &str, blob: &str) -> Result<Option<(u64, String)>> {
        let list = self.lab.admin.get("/_lab/blobs").await?;
        Ok(list.as_array().and_then(|blobs| {
            blobs
                .iter()
                .find(|b| {
                    b["account"] == account
                        && b["container"] == UPLOAD_CONTAINER
                        && b["name"] == blob
                })
                .map(|b| {
                    (
                        b["size"].as_u64().unwrap_or(0),
                        b["sha256_hex"].as_str().unwrap_or_default().to_owned(),
                    )
                })
        }))
    }

    /// `--posts` 1DS posts to the collector of `model`; each must be accepted whole, and the
    /// cloud must then hold exactly the events sent.
    async fn posts(&self, model: Connectivity) -> Result<Item> {
        let onboarding = onboarding(self.args.region, model)?;
        let (origin, path) = onboarding.collector();
        let device = self.device(model);
        let posts = self.args.posts;
        let target = format!(
            "{posts} x POST https://{}{path} ({LINES_PER_POST} events each)",
            origin.host
        );
        let mut sent = Vec::new();
        let mut failures = 0u64;
        let mut first_failure: Option<(u64, Outcome)> = None;
        let mut served_issuer = None;
        for post in 0..posts {
            let mut events = Vec::new();
            for line in 0..LINES_PER_POST {
                let event = json!({
                    "ver": "4.0",
                    "name": "MdelabCertify",
                    "iKey": format!("o:{TENANT}"),
                    "ext": {"device": {"localId": format!("s:{device}")}},
                    "data": {"run": self.nonce, "post": post, "line": line,
                             "padding": "x".repeat(64 + (post as usize * 7 + line * 13) % 256)},
                });
                sent.push(event.to_string());
                events.push(event);
            }
            let request = wire::onecollector_post(&path, TENANT, &device, &events);
            let result = self.send(&origin, &request).await;
            let failure = match result {
                Ok(response) => {
                    served_issuer = response.served_issuer.clone();
                    let counts: Value = serde_json::from_slice(&response.body).unwrap_or_default();
                    let acc = counts["acc"].as_u64().unwrap_or(0);
                    if response.status == 200 && acc == LINES_PER_POST as u64 {
                        None
                    } else {
                        Some(Outcome::new(
                            Verdict::Connected {
                                status: response.status,
                            },
                            format!(
                                "the collector answered {} with acc={acc} for {LINES_PER_POST} events",
                                response.status
                            ),
                            response.served_issuer,
                        ))
                    }
                }
                Err(outcome) => Some(outcome),
            };
            if let Some(outcome) = failure {
                failures += 1;
                first_failure.get_or_insert((post, outcome));
            }
        }
        let expected = Verdict::Connected { status: 200 };
        let host = origin.host.clone();
        if let Some((post, outcome)) = first_failure {
            let evidence = format!(
                "{failures} of {posts} posts failed; the first (post {post}): {}",
                outcome.evidence
            );
            // A refusal before any request (407, inspection…) explains itself; name only
            // failures of the posts themselves.
            let reason = exchanged(&outcome)
                .then(|| format!("{failures} of {posts} 1DS posts to {host} failed"));
            return Ok(Item {
                family: Family::Posts,
                host,
                pinned: origin.pinned,
                check: sensor_check(
                    target,
                    "CONNECT",
                    expected,
                    Outcome {
                        evidence,
                        ..outcome
                    },
                ),
                reason,
            });
        }
        // Every post was accepted: the cloud must hold exactly those events, unchanged.
        let limit = sent.len() + 100;
        let stored = self
            .lab
            .admin
            .get(&format!("/_lab/events?device={device}&limit={limit}"))
            .await
            .context("failed to read the cloud's events")?;
        let mut held: Vec<String> = stored
            .as_array()
            .map(|events| events.iter().map(|e| e["event"].to_string()).collect())
            .unwrap_or_default();
        // The admin API re-serialises what the collector parsed; parse ours the same way so
        // both sides are spelled alike.
        let mut sent: Vec<String> = sent
            .iter()
            .map(|line| {
                serde_json::from_str::<Value>(line)
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            })
            .collect();
        sent.sort();
        held.sort();
        let observed = if held == sent {
            Outcome::new(
                expected.clone(),
                format!(
                    "all {posts} posts answered 200 with acc={LINES_PER_POST}; the cloud holds exactly the {} events sent (SHA-256 of their content matches)",
                    sent.len()
                ),
                served_issuer,
            )
        } else {
            let sent_set: BTreeSet<&String> = sent.iter().collect();
            let held_set: BTreeSet<&String> = held.iter().collect();
            let missing = sent_set.difference(&held_set).count();
            let extra = held.len().saturating_sub(sent.len() - missing);
            Outcome::new(
                Verdict::Other {
                    detail: "events lost or altered".into(),
                },
                format!(
                    "every post answered 200, but the cloud holds {} events for the device where {} were sent: {missing} missing or altered, {extra} unexpected (content SHA-256 {} vs {})",
                    held.len(),
                    sent.len(),
                    short_hash(&held),
                    short_hash(&sent)
                ),
                served_issuer,
            )
        };
        let reason = (observed.verdict != expected)
            .then(|| format!("1DS events sent to {host} were lost or altered on the way"));
        Ok(Item {
            family: Family::Posts,
            host,
            pinned: origin.pinned,
            check: sensor_check(target, "CONNECT", expected, observed),
            reason,
        })
    }

    /// With `--proxy-user`: whether the proxy accepts the user's credentials, next to what
    /// SYSTEM got, as informational notes.
    async fn credentials_note(&self, reach: &[Item]) -> Vec<String> {
        let Some((user, password)) = &self.proxy_user else {
            return Vec::new();
        };
        self.progress
            .step("proxy credentials: one probe with --proxy-user");
        let Some(first) = reach.first() else {
            return Vec::new();
        };
        let Some(endpoint) = self
            .models
            .iter()
            .flat_map(|m| Catalog::mde().for_device(self.args.region, *m))
            .find(|e| e.scheme == Scheme::Https)
        else {
            return Vec::new();
        };
        let route = Route::Proxy(ProxyRoute {
            addr: self.proxy,
            credentials: Some((user.clone(), password.clone())),
        });
        let with_user = sensor::probe(
            &Target::from(endpoint),
            ClientKind::Sensor,
            &route,
            &self.lab.trust,
            &self.lab.network,
        )
        .await;
        let system = &first.check.observed;
        let mut notes = vec![format!(
            "note: with --proxy-user {user:?} the proxy answered {} for {} ({}); the suite ran without credentials, as the sensor (SYSTEM) does, and got {}",
            with_user.verdict.label(),
            endpoint.url(),
            with_user.evidence,
            system.verdict.label()
        )];
        match (&with_user.verdict, &system.verdict) {
            (Verdict::Connected { .. }, Verdict::ProxyAuthRequired) => notes.push(
                "note: the proxy accepts the user's credentials but demands them of SYSTEM too: exempt the MDE destinations from authentication (the sensor cannot authenticate)".into(),
            ),
            (Verdict::ProxyAuthRequired, _) => notes.push(
                "note: the proxy refuses these credentials (407)".into(),
            ),
            _ => {}
        }
        notes
    }
}

/// The lab's onboarding of a device of `region` and `model` (CnC gateway, 1DS collector).
fn onboarding(region: Region, model: Connectivity) -> Result<Onboarding> {
    Onboarding::parse(&Onboarding::blob(TENANT, region, model))
        .context("the lab's own onboarding blob does not parse")
}

/// The sample-upload storage account of a region's model, and the gateway that fronts it
/// (streamlined), from the catalog.
fn sample_account(region: Region, model: Connectivity) -> Option<(String, Option<String>)> {
    let endpoint = Catalog::mde()
        .for_device(region, model)
        .find(|e| e.service == Service::SampleUpload && e.scheme == Scheme::Https)?;
    if let Some(account) = Catalog::mde().storage_account(&endpoint.host) {
        return Some((account, None));
    }
    let account = endpoint
        .probe
        .path
        .strip_prefix("/storage/")?
        .split('/')
        .next()
        .filter(|a| !a.is_empty())?;
    Some((account.to_owned(), Some(endpoint.host.clone())))
}

/// Asks the proxy for a tunnel to `target` (`host:port`, outside MDE): passes when it refuses
/// (403, 407, any non-200 answer or no answer), fails when it answers `200 Connection
/// established` (an open relay).
pub async fn deny_check(proxy: SocketAddr, target: &str, timeout: Duration) -> Check {
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(443)),
        None => (target, 443),
    };
    let origin = Origin {
        host: host.to_owned(),
        port,
        scheme: Scheme::Https,
        pinned: false,
    };
    let route = Route::Proxy(ProxyRoute {
        addr: proxy,
        credentials: None,
    });
    // Through a proxy only the step timeout matters: the proxy resolves the name itself.
    let network = Network {
        dns: proxy,
        port_map: BTreeMap::new(),
        step_timeout: timeout,
        source_ip: None,
        dials: None,
    };
    let label = format!("CONNECT {host}:{port}");
    let (expected, observed) = match sensor::connect::open(&origin, &route, &network).await {
        Ok(_stream) => (
            Verdict::ProxyRefused { status: 403 },
            Outcome::new(
                Verdict::Connected { status: 200 },
                format!(
                    "the proxy answered 200 Connection established to {label}: it relays to destinations outside MDE (an open relay)"
                ),
                None,
            ),
        ),
        // Any refusal is what we want; the verdict is its own expectation.
        Err(outcome) => {
            let evidence = match &outcome.verdict {
                Verdict::ProxyRefused { status } if *status >= 500 => format!(
                    "the proxy answered {status} to {label}: not relayed (a {status} may only mean it could not reach it; a policy denial is 403)"
                ),
                Verdict::ProxyRefused { status } => {
                    format!("the proxy refused {label} with {status}: not an open relay")
                }
                Verdict::ProxyAuthRequired => format!(
                    "the proxy demands authentication for {label} (407): not open to anonymous clients"
                ),
                _ => format!(
                    "the proxy opened no tunnel for {label}: {}",
                    outcome.evidence
                ),
            };
            (
                outcome.verdict.clone(),
                Outcome {
                    evidence,
                    ..outcome
                },
            )
        }
    };
    sensor_check(label, "CONNECT", expected, observed)
}

/// Deterministic pseudo-random bytes (SplitMix64): incompressible, so a proxy that compresses
/// or caches gains nothing, and reproducible from the seed.
fn sample_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut state = seed;
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
    out
}

fn model_seed(model: Connectivity) -> u64 {
    match model {
        Connectivity::Standard => 0x6d64_656c_6162_0001,
        Connectivity::Streamlined => 0x6d64_656c_6162_0002,
    }
}

/// The first 12 hex digits of the SHA-256 of sorted lines (evidence of a difference only).
fn short_hash(lines: &[String]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, lines.join("\n").as_bytes());
    hex::encode(&digest.as_ref()[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_and_model_has_a_sample_upload_account() {
        for region in Region::ALL {
            for model in Connectivity::ALL {
                let (account, gateway) = sample_account(region, model).unwrap();
                assert!(!account.is_empty());
                assert_eq!(gateway.is_some(), model == Connectivity::Streamlined);
            }
        }
    }

    #[test]
    fn sample_bytes_are_deterministic_and_sized() {
        let a = sample_bytes(1001, 7);
        assert_eq!(a.len(), 1001);
        assert_eq!(a, sample_bytes(1001, 7));
        assert_ne!(a, sample_bytes(1001, 8));
    }
}
