//! Network protection and the user's browsing, as the sensor reports them.
//!
//! MDE's guidance on investigating connections behind forward proxies: a plain connection
//! monitor records each TCP connection the device opens, so behind a proxy every event's
//! `RemoteIP` is the proxy; with network protection in audit or block mode, HTTP-level
//! monitoring adds events that carry the real target (`RemoteUrl`), and block mode refuses
//! dangerous domains on the device. This module makes the emulated user browse a few sites and
//! turns what happened on the device into `DeviceNetworkEvents` sent over 1DS by the sensor.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mdelab_catalog::DANGEROUS_DOMAINS;
use mdelab_catalog::protocol::NETWORK_EVENT_NAME;
use serde::{Deserialize, Serialize};

use super::agent::Agent;
use super::connect::{Dial, DialTrace, Route};
use super::{ClientKind, DeviceTrust, Network, Origin, Outcome, Verdict, send, wire};
use mdelab_catalog::Scheme;

/// The process the user's browsing is attributed to.
pub const BROWSER_PROCESS: &str = "msedge.exe";

/// `ActionType` of a domain blocked by network protection.
pub const BLOCKED_ACTION: &str = "ExploitGuardNetworkProtectionBlocked";
/// `ActionType` of a dangerous domain allowed but reported (audit mode).
pub const AUDITED_ACTION: &str = "ExploitGuardNetworkProtectionAudited";

/// Network protection's mode on the device.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NetworkProtection {
    /// Nothing blocked, nothing extra reported (the default).
    #[default]
    Off,
    /// Dangerous domains allowed but reported; real targets reported.
    Audit,
    /// Dangerous domains blocked and reported; real targets reported.
    Block,
}

impl NetworkProtection {
    /// Every mode.
    pub const ALL: [Self; 3] = [Self::Off, Self::Audit, Self::Block];

    /// "off", "audit", "block".
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Audit => "audit",
            Self::Block => "block",
        }
    }
}

impl fmt::Display for NetworkProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A page the user opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visit {
    /// Where.
    pub origin: Origin,
    /// Path and query.
    pub path: String,
}

impl Visit {
    fn new(scheme: Scheme, host: &str, path: &str) -> Self {
        let origin = Origin {
            host: host.to_owned(),
            port: scheme.default_port(),
            scheme,
            pinned: false,
        };
        Self {
            origin,
            path: path.to_owned(),
        }
    }

    /// The URL.
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            self.origin.scheme.name(),
            self.origin.host,
            self.path
        )
    }

    /// Whether the domain is on the lab's dangerous-domains list.
    pub fn dangerous(&self) -> bool {
        DANGEROUS_DOMAINS.contains(&self.origin.host.as_str())
    }
}

/// The user's browsing: a benign site, the network-protection test domain, and two Microsoft
/// URLs of the catalog (one HTTPS, one plain HTTP).
pub fn user_visits() -> Vec<Visit> {
    vec![
        Visit::new(Scheme::Https, "www.msftconnecttest.com", "/"),
        Visit::new(Scheme::Https, "smartscreentestratings2.net", "/"),
        Visit::new(Scheme::Https, "go.microsoft.com", "/fwlink/?linkid=2120136"),
        Visit::new(Scheme::Http, "ctldl.windowsupdate.com", "/"),
    ]
}

/// What one visit did.
#[derive(Clone, Debug)]
pub struct VisitResult {
    /// The page.
    pub visit: Visit,
    /// What the browser got.
    pub outcome: Outcome,
    /// The TCP connection the device opened for it, if any.
    pub dial: Option<Dial>,
    /// How many `DeviceNetworkEvents` the sensor emitted for it.
    pub events: usize,
}

/// One `DeviceNetworkEvents` row as the sensor sends it (the `data` of a 1DS event).
fn network_event(action: &str, local: IpAddr, remote: SocketAddr, url: &str) -> serde_json::Value {
    serde_json::json!({
        "ActionType": action,
        "RemoteIP": remote.ip().to_string(),
        "RemotePort": remote.port(),
        "RemoteUrl": url,
        "LocalIP": local.to_string(),
        "InitiatingProcessFileName": BROWSER_PROCESS,
        "Protocol": "Tcp",
    })
}

/// The user opens every page of [`user_visits`] over `route` with network protection in
/// `mode`; the sensor (`agent`) reports each connection as `DeviceNetworkEvents`.
pub async fn browse(
    agent: &Agent,
    mode: NetworkProtection,
    route: &Route,
    trust: &DeviceTrust,
    network: &Network,
) -> Vec<VisitResult> {
    let mut network = network.clone();
    let trace = network.dials.get_or_insert_with(DialTrace::new).clone();
    let local_ip = network.source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut results = Vec::new();
    for visit in user_visits() {
        let host = visit.origin.host.clone();
        // Network protection looks the domain up itself: the address of the real target.
        let target_ip = mdelab_dns::resolve(network.dns, &host, network.step_timeout)
            .await
            .ok()
            .and_then(|ips| ips.first().copied())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let target = SocketAddr::new(target_ip, visit.origin.port);
        let mut events = Vec::new();
        if mode == NetworkProtection::Block && visit.dangerous() {
            events.push(network_event(BLOCKED_ACTION, local_ip, target, &host));
            let outcome = Outcome::new(
                Verdict::BlockedOnDevice {
                    by: "network protection".into(),
                },
                format!(
                    "network protection blocked {host} on the device (dangerous domain): no connection was opened"
                ),
                None,
            );
            results.push(emit_all(
                agent,
                VisitResult {
                    visit,
                    outcome,
                    dial: None,
                    events: 0,
                },
                events,
            ));
            continue;
        }
        let before = trace.dials().len();
        let request = wire::browse(&visit.path).timeout(network.step_timeout);
        let outcome = match send(
            &visit.origin,
            ClientKind::Browser,
            route,
            trust,
            &network,
            &request,
        )
        .await
        {
            Ok(response) => super::connected(response.status, response.served_issuer),
            Err(outcome) => outcome,
        };
        let dial = trace.dials().get(before).copied();
        let reached = matches!(outcome.verdict, Verdict::Connected { .. });
        // The connection monitor sees the socket the device opened: the proxy, when proxied.
        match dial {
            Some(dial) => events.push(network_event(
                "ConnectionSuccess",
                dial.local.ip(),
                dial.peer,
                "",
            )),
            None => {
                let first_hop = match route {
                    Route::Proxy(proxy) => proxy.addr,
                    Route::Direct => target,
                };
                events.push(network_event("ConnectionFailed", local_ip, first_hop, ""));
            }
        }
        if mode != NetworkProtection::Off {
            // HTTP-level monitoring knows the real domain.
            let action = if reached {
                "ConnectionSuccess"
            } else {
                "ConnectionFailed"
            };
            let local = dial.map_or(local_ip, |d| d.local.ip());
            events.push(network_event(action, local, target, &host));
            if visit.dangerous() && mode == NetworkProtection::Audit {
                events.push(network_event(AUDITED_ACTION, local, target, &host));
            }
        }
        results.push(emit_all(
            agent,
            VisitResult {
                visit,
                outcome,
                dial,
                events: 0,
            },
            events,
        ));
    }
    results
}

fn emit_all(agent: &Agent, mut result: VisitResult, events: Vec<serde_json::Value>) -> VisitResult {
    result.events = events.len();
    for data in events {
        agent.emit(NETWORK_EVENT_NAME, data);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_cover_a_benign_site_the_test_domain_and_catalog_urls() {
        let visits = user_visits();
        assert_eq!(visits.iter().filter(|v| v.dangerous()).count(), 1);
        assert!(visits.iter().any(|v| v.origin.scheme == Scheme::Http));
        for v in &visits {
            assert!(
                mdelab_catalog::Catalog::mde().serves(&v.origin.host, v.origin.port)
                    || mdelab_catalog::Catalog::mde()
                        .https_host(&v.origin.host)
                        .is_some(),
                "{} is served by the lab",
                v.url()
            );
        }
    }

    #[test]
    fn modes_parse_from_profile_words() {
        let parsed: Vec<NetworkProtection> = ["\"off\"", "\"audit\"", "\"block\""]
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        assert_eq!(parsed, NetworkProtection::ALL.to_vec());
        assert!(serde_json::from_str::<NetworkProtection>("\"enforce\"").is_err());
    }
}
