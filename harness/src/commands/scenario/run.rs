//! Running a scenario: the device makes each service's real request along the route the rules
//! select (trying the fall-back for real), the proxies' access logs say which proxy carried
//! it, and the result is compared with the write-up's expectation.
//!
//! Per service, the request is the sensor's own: a 1DS upload of the cached events for cyber
//! data; a Live Response session started on the cloud and run over the CnC channel (poll,
//! connect, close); and the catalog probe of the service family for the others (the CnC
//! gateway's `/commands/test`, the sample and Auto-IR storage accounts, MAPS, settings
//! management, the CRL, and Windows Update for contrast).
//!
//! The reports' model is in `model.rs`; their renderings ([`render`], [`table`]) are in
//! [`crate::report::scenario`], re-exported here where tools and tests found them.

use anyhow::{Context as _, Result};
use mdelab_catalog::{Catalog, Connectivity, Endpoint, Region};
use mdelab_mock_cloud::store::events::EventFilter;
use mdelab_mock_cloud::store::live_response::SessionState;

use super::model::{CacheRow, ExpectedView, PhaseReport, ScenarioReport, ServiceRow};
use super::named::{NamedScenario, PhaseSpec};
use super::profile::MachineProfile;
use super::rig::{DEVICE_ID, Hop, ORG_ID, Rig, RigOptions};
use super::route::{Decision, RouteChoice, SensorService, Step, Trigger, select_route};
use mdelab_sensor::agent::Onboarding;
use mdelab_sensor::{
    ClientKind, HttpRequest, HttpResponse, Origin, Outcome, Target, Verdict, wire,
};

pub use crate::report::scenario::{render, table};

/// Events the device generates at the start of every phase (cached until uploaded).
pub const EVENTS_PER_PHASE: usize = 5;

/// What one service's requests should be, for one device.
#[derive(Clone, Debug)]
struct Plan {
    service: SensorService,
    kind: PlanKind,
    /// The status a working route gets.
    ok_status: u16,
    /// The URL, for reports.
    url: String,
}

#[derive(Clone, Debug)]
enum PlanKind {
    /// One catalog probe.
    Probe {
        origin: Origin,
        request: HttpRequest,
    },
    /// A 1DS upload of the cached events.
    Upload { origin: Origin, path: String },
    /// A Live Response session over the CnC channel.
    LiveResponse { gateway: Origin, poll_path: String },
}

/// The catalog URL a service's probe goes to.
fn pick(region: Region, model: Connectivity, service: SensorService) -> Option<&'static Endpoint> {
    let mut urls = Catalog::mde()
        .for_device(region, model)
        .filter(|e| e.service == service.catalog_service());
    match service {
        SensorService::CrlCtl => urls.find(|e| e.probe.path.ends_with(".crl")),
        SensorService::WindowsUpdate => urls.find(|e| e.region.is_none()),
        _ => urls.next(),
    }
}

fn plans(profile: &MachineProfile, rig: &Rig) -> Result<Vec<Plan>> {
    let region = profile.onboarding.region;
    let model = profile.onboarding.connectivity;
    let onboarding = Onboarding::parse(&Onboarding::blob(ORG_ID, region, model))
        .context("the lab's onboarding blob does not parse")?;
    let (gateway, poll_path) = onboarding.cnc();
    let (collector, collector_path) = onboarding.collector();
    let step = rig.step_timeout();
    let probe = |e: &Endpoint| {
        let target = Target::from(e);
        PlanKind::Probe {
            origin: target.origin(),
            request: wire::with_device(wire::probe(&target), DEVICE_ID).timeout(step),
        }
    };
    let mut out = Vec::new();
    for service in SensorService::ALL {
        let plan = match service {
            SensorService::CyberData => Plan {
                service,
                kind: PlanKind::Upload {
                    origin: collector.clone(),
                    path: collector_path.clone(),
                },
                ok_status: 200,
                url: format!("https://{}{collector_path}", collector.host),
            },
            SensorService::LiveResponse => Plan {
                service,
                kind: PlanKind::LiveResponse {
                    gateway: gateway.clone(),
                    poll_path: poll_path.clone(),
                },
                ok_status: 200,
                url: format!("https://{}{poll_path}", gateway.host),
            },
            SensorService::CommandAndControl => {
                let e = Catalog::mde()
                    .for_device(region, model)
                    .find(|e| e.host == gateway.host && e.probe.path.ends_with("commands/test"))
                    .with_context(|| format!("no CnC probe for {} in the catalog", gateway.host))?;
                Plan {
                    service,
                    kind: probe(e),
                    ok_status: e.probe.status,
                    url: e.url(),
                }
            }
            _ => {
                let e = pick(region, model, service).with_context(|| {
                    format!("no {service} URL for {region} {model} in the catalog")
                })?;
                Plan {
                    service,
                    kind: probe(e),
                    ok_status: e.probe.status,
                    url: e.url(),
                }
            }
        };
        out.push(plan);
    }
    Ok(out)
}

/// The requests of one service, following its decision; the fall-back is taken when its
/// trigger really happens, and then kept for the service's later requests.
struct Channel<'a> {
    rig: &'a Rig,
    decision: &'a Decision,
    settled: Option<Step>,
    routes: Vec<RouteChoice>,
    hops: Vec<Hop>,
    notes: Vec<String>,
}

impl<'a> Channel<'a> {
    fn new(rig: &'a Rig, decision: &'a Decision) -> Self {
        Self {
            rig,
            decision,
            settled: None,
            routes: Vec::new(),
            hops: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn record(&mut self, attempt: &super::rig::Attempt) {
        if self.routes.last() != Some(&attempt.step.route) {
            self.routes.push(attempt.step.route);
        }
        for hop in &attempt.hops {
            if self.hops.last() != Some(hop) {
                self.hops.push(hop.clone());
            }
        }
        if let Some(note) = &attempt.note
            && !self.notes.contains(note)
        {
            self.notes.push(note.clone());
        }
    }

    async fn request(
        &mut self,
        origin: &Origin,
        request: &HttpRequest,
    ) -> Result<HttpResponse, Outcome> {
        let primary = self.settled.unwrap_or(Step {
            route: self.decision.route,
            context: self.decision.context,
        });
        let first = self
            .rig
            .send(primary, origin, request, ClientKind::Sensor)
            .await;
        self.record(&first);
        if self.settled.is_none() {
            if let Some((trigger, step)) = self.decision.fallback {
                let fire = match trigger {
                    Trigger::Unreachable => first.proxy_unreachable,
                    Trigger::AuthRequired => matches!(
                        &first.result,
                        Err(o) if o.verdict == Verdict::ProxyAuthRequired
                    ),
                };
                if fire {
                    let note = match trigger {
                        Trigger::Unreachable => format!(
                            "the {} proxy could not be reached: fell back to {}",
                            primary.route, step.route
                        ),
                        Trigger::AuthRequired => format!(
                            "the {} proxy answered 407: retried through the {} proxy in the {} context",
                            primary.route,
                            step.route,
                            step.context.name()
                        ),
                    };
                    self.notes.push(note);
                    let second = self
                        .rig
                        .send(step, origin, request, ClientKind::Sensor)
                        .await;
                    self.record(&second);
                    self.settled = Some(step);
                    return second.result;
                }
            }
            self.settled = Some(primary);
        }
        first.result
    }
}

/// An answered exchange as an outcome.
fn answered(response: &HttpResponse, what: &str) -> Outcome {
    let evidence = match &response.served_issuer {
        Some(issuer) => format!(
            "{what} {} through a chain issued by '{issuer}'",
            response.status
        ),
        None => format!("{what} {} over plain HTTP", response.status),
    };
    Outcome::new(
        Verdict::Connected {
            status: response.status,
        },
        evidence,
        response.served_issuer.clone(),
    )
}

fn event(seq: usize) -> serde_json::Value {
    serde_json::json!({
        "ver": "4.0",
        "name": "MdeLabSignal",
        "time": "2024-01-01T00:00:00Z",
        "iKey": format!("o:{ORG_ID}"),
        "ext": {
            "device": { "localId": format!("s:{DEVICE_ID}") },
            "sdk": { "seq": seq, "installId": DEVICE_ID, "ver": wire::SDK_VERSION },
        },
        "data": { "seq": seq },
    })
}

/// What one service's requests came to.
struct Observed {
    outcome: Outcome,
    routes: Vec<RouteChoice>,
    hops: Vec<Hop>,
    notes: Vec<String>,
    /// Events the collector accepted (cyber data).
    accepted: usize,
}

/// Runs one service's requests along its decision.
async fn observe(
    rig: &Rig,
    plan: &Plan,
    decision: &Decision,
    cache: &[serde_json::Value],
) -> Observed {
    let mut channel = Channel::new(rig, decision);
    let mut accepted = 0;
    let mut notes = Vec::new();
    let outcome = match &plan.kind {
        PlanKind::Probe { origin, request } => match channel.request(origin, request).await {
            Ok(response) => answered(&response, "answered"),
            Err(outcome) => outcome,
        },
        PlanKind::Upload { origin, path } => {
            let encoding = rig.profile().upload_encoding;
            let request = wire::onecollector_upload(path, ORG_ID, DEVICE_ID, cache, encoding, None)
                .timeout(rig.step_timeout());
            match channel.request(origin, &request).await {
                Ok(response) => {
                    if response.status == 200 {
                        let counts: serde_json::Value =
                            serde_json::from_slice(&response.body).unwrap_or_default();
                        accepted = counts["acc"]
                            .as_u64()
                            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
                        notes.push(format!(
                            "uploaded the {} cached events; the collector accepted {accepted}",
                            cache.len()
                        ));
                    }
                    answered(&response, "the collector answered")
                }
                Err(outcome) => {
                    notes.push(format!("{} events stay cached", cache.len()));
                    outcome
                }
            }
        }
        PlanKind::LiveResponse { gateway, poll_path } => {
            live_response(rig, &mut channel, gateway, poll_path, &mut notes).await
        }
    };
    let mut all_notes = channel.notes;
    all_notes.extend(notes);
    Observed {
        outcome,
        routes: channel.routes,
        hops: channel.hops,
        notes: all_notes,
        accepted,
    }
}

/// A Live Response session from the portal: started on the cloud, delivered on the device's
/// CnC poll, connected and closed by the device, all along the service's route.
async fn live_response(
    rig: &Rig,
    channel: &mut Channel<'_>,
    gateway: &Origin,
    poll_path: &str,
    notes: &mut Vec<String>,
) -> Outcome {
    let store = rig.lab().cloud().live_response();
    let session = store.start(DEVICE_ID, Vec::new(), None);
    let post = |path: String| {
        wire::live_response_action(&path, DEVICE_ID, &serde_json::json!({}))
            .timeout(rig.step_timeout())
    };
    let poll =
        wire::cnc_poll(poll_path, std::time::Duration::ZERO, DEVICE_ID).timeout(rig.step_timeout());
    let outcome = async {
        let response = channel.request(gateway, &poll).await?;
        if response.status != 200 {
            return Err(Outcome::new(
                Verdict::Connected {
                    status: response.status,
                },
                format!(
                    "the CnC poll answered {} without the Live Response command",
                    response.status
                ),
                response.served_issuer,
            ));
        }
        let answer: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        let actions = answer["commands"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["session"] == session.id.as_str())
            .and_then(|c| c["actions_url"].as_str())
            .and_then(|u| u.parse::<http::Uri>().ok())
            .ok_or_else(|| {
                Outcome::new(
                    Verdict::Other {
                        detail: "no Live Response command".into(),
                    },
                    "the CnC poll carried no command for the session",
                    None,
                )
            })?;
        let host = actions.host().unwrap_or_default().to_owned();
        let pinned = Catalog::mde().https_host(&host).is_some_and(|h| h.pinned);
        let origin = Origin::https(&host, pinned);
        let base = actions.path().trim_end_matches('/').to_owned();
        let connect = channel
            .request(&origin, &post(format!("{base}/connect")))
            .await?;
        if connect.status != 200 {
            return Ok(answered(&connect, "the session connect answered"));
        }
        let close = channel
            .request(&origin, &post(format!("{base}/close")))
            .await?;
        Ok(answered(
            &close,
            "the session was delivered on the CnC poll, connected and closed; the gateway answered",
        ))
    }
    .await
    .unwrap_or_else(|outcome| outcome);
    let state = store.get(&session.id).map(|s| s.state);
    notes.push(match state {
        Some(SessionState::Closed) => "the portal's Live Response session completed".to_owned(),
        Some(SessionState::Pending) => {
            "the portal's Live Response session is still pending: it times out".to_owned()
        }
        Some(other) => format!(
            "the portal's Live Response session is {}",
            serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        None => "the portal's Live Response session is gone".to_owned(),
    });
    outcome
}

/// Runs a named scenario on a fresh rig.
pub async fn run_named(scenario: &NamedScenario, options: &RigOptions) -> Result<ScenarioReport> {
    let profile = MachineProfile::from_toml(scenario.profile)
        .with_context(|| format!("the profile of scenario {} is invalid", scenario.name))?;
    run_with_profile(scenario, &profile, options).await
}

/// Runs a named scenario's expectations against `profile` (its own, or a variant of it, e.g.
/// another region).
pub async fn run_with_profile(
    scenario: &NamedScenario,
    profile: &MachineProfile,
    options: &RigOptions,
) -> Result<ScenarioReport> {
    let rig = Rig::start(profile, options.clone()).await?;
    let result = run_phases(scenario, profile, &rig).await;
    let proxy_addrs = rig.proxy_addrs();
    let device_ip = rig.device_ip().to_string();
    rig.shutdown().await?;
    Ok(ScenarioReport {
        name: scenario.name.to_owned(),
        title: scenario.title.to_owned(),
        source: scenario.source.to_owned(),
        writeup: scenario.writeup.to_owned(),
        profile: profile.summary(),
        device_ip,
        proxy_addrs,
        phases: result?,
    })
}

async fn run_phases(
    scenario: &NamedScenario,
    profile: &MachineProfile,
    rig: &Rig,
) -> Result<Vec<PhaseReport>> {
    let plans = plans(profile, rig)?;
    let mut cache: Vec<serde_json::Value> = Vec::new();
    let mut generated = 0;
    let mut phases = Vec::new();
    for spec in &scenario.phases {
        for _ in 0..EVENTS_PER_PHASE {
            generated += 1;
            cache.push(event(generated));
        }
        let dropped_before = rig.lab().cloud().blocked_connections();
        let (rows, accepted) = run_phase(spec, profile, rig, &plans, &cache).await;
        // The collector counts what it accepted; those leave the cache, oldest first.
        cache.drain(..accepted.min(cache.len()));
        let accepted_by_cloud = rig
            .lab()
            .cloud()
            .events()
            .query(&EventFilter {
                device: Some(DEVICE_ID.to_owned()),
                ..EventFilter::default()
            })
            .len();
        let cache_ok =
            cache.len() == spec.cached_after && accepted_by_cloud == generated - spec.cached_after;
        phases.push(PhaseReport {
            title: spec.title.to_owned(),
            user_logged_on: spec.user_logged_on,
            rows,
            cache: CacheRow {
                generated,
                cached: cache.len(),
                accepted_by_cloud,
                expected_cached: spec.cached_after,
                as_expected: cache_ok,
            },
            gateway_dropped: rig.lab().cloud().blocked_connections() - dropped_before,
        });
    }
    Ok(phases)
}

async fn run_phase(
    spec: &PhaseSpec,
    profile: &MachineProfile,
    rig: &Rig,
    plans: &[Plan],
    cache: &[serde_json::Value],
) -> (Vec<ServiceRow>, usize) {
    let decisions: Vec<Decision> = plans
        .iter()
        .map(|p| select_route(profile, p.service, spec.user_logged_on))
        .collect();
    let run = |i: usize| observe(rig, &plans[i], &decisions[i], cache);
    // Every service at once, as on a real device: a blocked route costs one timeout, not nine.
    let (a, b, c, d, e, f, g, h, i) = tokio::join!(
        run(0),
        run(1),
        run(2),
        run(3),
        run(4),
        run(5),
        run(6),
        run(7),
        run(8)
    );
    let observed = [a, b, c, d, e, f, g, h, i];
    let mut accepted = 0;
    let mut rows = Vec::new();
    for ((plan, decision), obs) in plans.iter().zip(&decisions).zip(observed) {
        let Some(expect) = spec.rows.iter().find(|r| r.service == plan.service) else {
            continue;
        };
        let expected = ExpectedView::new(expect, plan.ok_status);
        let via: Vec<String> = obs
            .hops
            .iter()
            .filter(|h| h.logged())
            .map(|h| h.proxy.clone())
            .collect();
        let as_expected = obs.routes == expected.route
            && via == expected.via
            && obs.outcome.verdict == expected.verdict;
        if plan.service == SensorService::CyberData {
            accepted = obs.accepted;
        }
        rows.push(ServiceRow {
            service: plan.service,
            url: plan.url.clone(),
            context: decision.context,
            reason: decision.reason.clone(),
            route: obs.routes,
            hops: obs.hops,
            outcome: obs.outcome,
            notes: obs.notes,
            expected,
            as_expected,
        });
    }
    (rows, accepted)
}
