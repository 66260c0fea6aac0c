//! Network events behind forward proxies: one scenario per network-protection mode.
//!
//! The user browses through the lab's forward proxy (WinINet PROX02, on its own address), the
//! sensor reports every connection over 1DS (through its static proxy PROX03), and the
//! analyst's two documented queries run over what the cloud received:
//!
//! ```text
//! DeviceNetworkEvents | where ActionType == "ConnectionSuccess" | take 10
//! DeviceNetworkEvents | where ActionType == "ConnectionSuccess" and RemoteIP != "ProxyIP" | take 10
//! ```
//!
//! With protection off the analyst sees only connections to the proxy; in audit the real
//! domains appear (and the dangerous one is reported); in block the dangerous domain is
//! blocked on the device, never reaches the proxy, and is reported.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mdelab_catalog::Catalog;
use mdelab_mock_cloud::hunting::{self, HuntResult};
use tokio_util::sync::CancellationToken;

use super::profile::{LabProxy, MachineProfile};
use super::rig::{DEVICE_ID, ORG_ID, Rig, RigOptions};
use crate::report::{Check, Report, Section};
use mdelab_sensor::agent::{Agent, AgentConfig, Onboarding};
use mdelab_sensor::netprot::{
    AUDITED_ACTION, BLOCKED_ACTION, NetworkProtection, Visit, browse, user_visits,
};
use mdelab_sensor::{Outcome, ProxyRoute, Route, Verdict};

/// The machine profile of these scenarios (network protection set per scenario).
pub const PROFILE: &str = include_str!("../../../profiles/network-protection.toml");

/// The scenarios, by name.
pub const SCENARIOS: [(&str, NetworkProtection); 3] = [
    ("network-protection-off", NetworkProtection::Off),
    ("network-protection-audit", NetworkProtection::Audit),
    ("network-protection-block", NetworkProtection::Block),
];

/// The mode of a scenario name, if it is one of these.
pub fn find(name: &str) -> Option<NetworkProtection> {
    SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, mode)| *mode)
}

/// How long the sensor may take to deliver its events.
const DELIVERY: Duration = Duration::from_secs(20);

/// The analyst's queries, with the proxy's address in place of "ProxyIP".
pub fn queries(proxy_ip: IpAddr) -> [(&'static str, String); 4] {
    [
        (
            "connections",
            r#"DeviceNetworkEvents | where ActionType == "ConnectionSuccess""#.to_owned(),
        ),
        (
            "real targets",
            format!(
                r#"DeviceNetworkEvents | where ActionType == "ConnectionSuccess" and RemoteIP != "{proxy_ip}""#
            ),
        ),
        (
            "blocked",
            format!(r#"DeviceNetworkEvents | where ActionType == "{BLOCKED_ACTION}""#),
        ),
        (
            "audited",
            format!(r#"DeviceNetworkEvents | where ActionType == "{AUDITED_ACTION}""#),
        ),
    ]
}

/// What each query should answer in `mode`, derived from the visits (never from observation):
/// every TCP connection gives one event; protection on adds one per visit with the real
/// domain, and one audit event per dangerous visit; block mode opens no connection for a
/// dangerous visit and reports it blocked.
pub fn expected_rows(mode: NetworkProtection, visits: &[Visit]) -> [usize; 4] {
    let n = visits.len();
    let d = visits.iter().filter(|v| v.dangerous()).count();
    match mode {
        NetworkProtection::Off => [n, 0, 0, 0],
        NetworkProtection::Audit => [2 * n, n, 0, d],
        NetworkProtection::Block => [2 * (n - d), n - d, d, 0],
    }
}

/// A finished run, with the lab still up (so its events can be hunted further).
pub struct NpRun {
    /// The mode.
    pub mode: NetworkProtection,
    /// What happened, checked against the model.
    pub report: Report,
    /// The rig (lab, proxies); shut it down when done.
    pub rig: Rig,
}

/// Runs the scenario of `mode`.
pub async fn run(mode: NetworkProtection, options: &RigOptions) -> Result<NpRun> {
    let mut profile = MachineProfile::from_toml(PROFILE)?;
    profile.network_protection = mode;
    let rig = Rig::start(&profile, options.clone()).await?;
    let token = CancellationToken::new();
    let via = |proxy: LabProxy| {
        Route::Proxy(ProxyRoute {
            addr: rig.proxy(proxy).addr(),
            credentials: None,
        })
    };
    let blob = Onboarding::blob(
        ORG_ID,
        profile.onboarding.region,
        profile.onboarding.connectivity,
    );
    let onboarding = Onboarding::parse(&blob).context("the lab's onboarding blob")?;
    let mut config = AgentConfig::new(
        DEVICE_ID,
        onboarding,
        via(LabProxy::Prox03),
        rig.trust(),
        rig.network(),
    );
    // Generous steps for the sensor's own uploads; the browsing keeps the rig's short ones.
    config.network.step_timeout = Duration::from_secs(5);
    config.encoding = profile.upload_encoding;
    let sensor = Agent::start(config, &token);
    let results = browse(
        &sensor,
        mode,
        &via(LabProxy::Prox02),
        &rig.trust(),
        &rig.network(),
    )
    .await;
    let total: usize = results.iter().map(|r| r.events).sum();
    let delivered = sensor
        .wait_until(|s| s.generated == total as u64 && s.cached == 0, DELIVERY)
        .await;
    let stats = sensor.stats();
    sensor.stop().await;
    if !delivered {
        bail!("the sensor did not deliver its {total} events in {DELIVERY:?}: {stats:?}");
    }

    let catalog = Catalog::mde();
    let mut browsing = Vec::new();
    for result in &results {
        let host = &result.visit.origin.host;
        let status = catalog
            .probe_for(host, result.visit.origin.scheme, &result.visit.path)
            .map(|e| e.probe.status)
            .or_else(|| catalog.family_of(host).map(|f| f.root_status))
            .unwrap_or(200);
        let expected = if mode == NetworkProtection::Block && result.visit.dangerous() {
            Verdict::BlockedOnDevice {
                by: "network protection".into(),
            }
        } else {
            Verdict::Connected { status }
        };
        let via = result
            .dial
            .and_then(|d| rig.proxy_at(d.peer))
            .map(|p| p.name().to_owned());
        // A blocked visit must not show up at the user's proxy either: its own log says so.
        let proxy_view = (result.dial.is_none()).then(|| match rig.proxy(LabProxy::Prox02) {
            super::rig::Deployed::Running(info) => {
                let n = info
                    .log
                    .entries()
                    .iter()
                    .filter(|r| r.target.starts_with(host.as_str()))
                    .count();
                format!("PROX02's access log holds {n} requests for {host}")
            }
            super::rig::Deployed::Unreachable { .. } => "PROX02 is not running".into(),
        });
        browsing.push(Check {
            target: result.visit.url(),
            path: format!("network protection {mode}"),
            client: "user".into(),
            expected,
            observed: result.outcome.clone(),
            proxy_view,
            via,
        });
    }

    let proxy_ip = options.proxy_ip;
    let expected = expected_rows(mode, &user_visits());
    let mut hunts = Vec::new();
    for ((label, query), rows) in queries(proxy_ip).iter().zip(expected) {
        let answer = hunting::run(query, rig.lab().cloud().events())
            .map_err(|e| anyhow::anyhow!("{label} query refused: {e}"))?;
        let observed = Outcome::new(
            Verdict::Rows {
                count: answer.rows.len(),
            },
            describe_rows(&answer, proxy_ip),
            None,
        );
        hunts.push(Check {
            target: format!(
                "{label}: {}",
                query.replace(&proxy_ip.to_string(), "ProxyIP")
            ),
            path: format!("network protection {mode}"),
            client: "analyst".into(),
            expected: Verdict::Rows { count: rows },
            observed,
            proxy_view: None,
            via: None,
        });
    }
    let report = Report {
        title: format!("network protection {mode}: connection events behind a forward proxy"),
        sections: vec![
            Section {
                title: format!("The user browses through PROX02 (network protection {mode})"),
                checks: browsing,
            },
            Section {
                title: "What the analyst sees in DeviceNetworkEvents".into(),
                checks: hunts,
            },
        ],
        summary: vec![lesson(mode).into()],
    };
    Ok(NpRun { mode, report, rig })
}

/// The rows' remote addresses and URLs, counted, with the proxy's address named: deterministic
/// evidence for a report.
fn describe_rows(answer: &HuntResult, proxy_ip: IpAddr) -> String {
    let col = |name: &str| answer.columns.iter().position(|c| c == name);
    let (Some(ip), Some(url)) = (col("RemoteIP"), col("RemoteUrl")) else {
        return String::new();
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for row in &answer.rows {
        let remote = row[ip].as_str().unwrap_or_default();
        let remote = if remote == proxy_ip.to_string() {
            "ProxyIP".to_owned()
        } else {
            format!("target {remote}")
        };
        let target = match row[url].as_str().unwrap_or_default() {
            "" => remote,
            u => format!("{remote} {u}"),
        };
        *counts.entry(target).or_insert(0) += 1;
    }
    if counts.is_empty() {
        return "no rows".into();
    }
    counts
        .into_iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn lesson(mode: NetworkProtection) -> &'static str {
    match mode {
        NetworkProtection::Off => {
            "Protection off: every connection event names the proxy (RemoteIP = ProxyIP); the analyst cannot tell where the user went."
        }
        NetworkProtection::Audit => {
            "Protection in audit: HTTP-level events add the real domains (RemoteUrl); the dangerous one is reached and reported as audited."
        }
        NetworkProtection::Block => {
            "Protection in block: the dangerous domain is blocked on the device (it never reaches the proxy) and reported; real domains appear."
        }
    }
}

/// The three modes as one report section for `mdelab demo`: the analyst's queries per mode.
pub async fn demo_section() -> Result<Section> {
    let mut checks = Vec::new();
    for (_, mode) in SCENARIOS {
        let run = run(mode, &RigOptions::default()).await?;
        let mut sections = run.report.sections;
        run.rig.shutdown().await?;
        // The user's view first (the blocked visit), then the analyst's.
        for section in sections.drain(..) {
            for mut check in section.checks {
                check.path = mode.name().to_owned();
                if check.client == "analyst" {
                    // "real targets: DeviceNetworkEvents | …" -> "real targets query"
                    let label = check
                        .target
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    check.target = format!("{label} query");
                }
                checks.push(check);
            }
        }
    }
    Ok(Section {
        title: "Network events behind a forward proxy: what the analyst sees with network protection off, audit, block".into(),
        checks,
    })
}
