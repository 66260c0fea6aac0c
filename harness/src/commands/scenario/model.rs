//! The scenario's model: per phase, what became of each service (route, carrying proxies,
//! outcome, against the write-up) and of the device's event cache ([`ScenarioReport`]); and
//! the listing of the named scenarios ([`ScenarioList`]). Rendered by
//! [`crate::report::scenario`].

use mdelab_sensor::netprot::NetworkProtection;
use mdelab_sensor::profile::MachineProfile;
use mdelab_sensor::route::{Context, RouteChoice, SensorService};
use mdelab_sensor::{Outcome, Verdict};
use serde::Serialize;

use super::named::{ExpectRow, Expected, NamedScenario};
use super::netprot;
use super::rig::Hop;

/// What became of one service in one phase.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceRow {
    /// The service.
    pub service: SensorService,
    /// The URL its request went to.
    pub url: String,
    /// Whose request it was first (SYSTEM or the user).
    pub context: Context,
    /// Why the rules chose the route.
    pub reason: String,
    /// The proxy settings followed, in order.
    pub route: Vec<RouteChoice>,
    /// What the proxies' access logs say, in order (empty: no proxy saw it).
    pub hops: Vec<Hop>,
    /// The final outcome on the device.
    pub outcome: Outcome,
    /// Notes: WPAD answers, fall-backs, Live Response session state, cache uploads.
    pub notes: Vec<String>,
    /// What the write-up says.
    pub expected: ExpectedView,
    /// Whether route, carriers and outcome all match.
    pub as_expected: bool,
}

/// The expectation, resolved to a verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ExpectedView {
    /// The proxy settings followed.
    pub route: Vec<RouteChoice>,
    /// The proxies that carry it.
    pub via: Vec<String>,
    /// The outcome in the write-up's terms.
    pub outcome: Expected,
    /// The verdict that means.
    pub verdict: Verdict,
}

impl ExpectedView {
    /// The expectation of `row`, for a service whose working answer is `ok_status`.
    pub(super) fn new(row: &ExpectRow, ok_status: u16) -> Self {
        Self {
            route: row.route.to_vec(),
            via: row.via.iter().map(|&s| s.to_owned()).collect(),
            outcome: row.outcome,
            verdict: match row.outcome {
                Expected::Works => Verdict::Connected { status: ok_status },
                Expected::TimesOut => Verdict::Timeout,
                Expected::ProxyAuth => Verdict::ProxyAuthRequired,
                Expected::PinBroken => Verdict::PinMismatch,
            },
        }
    }
}

impl ServiceRow {
    /// The proxies that carried it, by name, in order.
    pub fn via(&self) -> Vec<String> {
        self.hops
            .iter()
            .filter(|h| h.logged())
            .map(|h| h.proxy.clone())
            .collect()
    }
}

/// The device's event cache over a phase.
#[derive(Clone, Debug, Serialize)]
pub struct CacheRow {
    /// Events generated so far (all phases).
    pub generated: usize,
    /// Events still in the device's cache at the end of the phase.
    pub cached: usize,
    /// Events the cloud holds for the device (from the cloud's event store).
    pub accepted_by_cloud: usize,
    /// What the write-up implies is left in the cache.
    pub expected_cached: usize,
    /// Whether the cache and the cloud agree with it.
    pub as_expected: bool,
}

/// One phase's results.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    /// What the phase is.
    pub title: String,
    /// Whether a user was logged on.
    pub user_logged_on: bool,
    /// One row per service.
    pub rows: Vec<ServiceRow>,
    /// The event cache.
    pub cache: CacheRow,
    /// Direct connections of the device the gateway dropped during the phase.
    pub gateway_dropped: u64,
}

/// One scenario's results.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// One line.
    pub title: String,
    /// Where in the write-up.
    pub source: String,
    /// What the write-up observed.
    pub writeup: String,
    /// The profile in words.
    pub profile: Vec<String>,
    /// The device's source address (what the gateway rule blocks).
    pub device_ip: String,
    /// The real addresses of the lab proxies (the tables print names and port 3128).
    pub proxy_addrs: std::collections::BTreeMap<String, std::net::SocketAddr>,
    /// The phases.
    pub phases: Vec<PhaseReport>,
}

impl ScenarioReport {
    /// How many rows (services and caches) matched, and how many did not.
    pub fn counts(&self) -> (usize, usize) {
        let mut ok = 0;
        let mut bad = 0;
        for phase in &self.phases {
            for matched in phase
                .rows
                .iter()
                .map(|r| r.as_expected)
                .chain([phase.cache.as_expected])
            {
                if matched {
                    ok += 1;
                } else {
                    bad += 1;
                }
            }
        }
        (ok, bad)
    }

    /// Whether everything matched the write-up.
    pub fn all_as_expected(&self) -> bool {
        self.counts().1 == 0
    }
}
/// One named scenario in the listing: the scenario with its machine profile in words (in
/// place of its TOML).
#[derive(Clone, Debug)]
pub struct ListedScenario {
    /// The scenario.
    pub scenario: NamedScenario,
    /// Its machine profile in words.
    pub profile: Vec<String>,
}

impl Serialize for ListedScenario {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let s = &self.scenario;
        let mut row = serializer.serialize_struct("ListedScenario", 6)?;
        row.serialize_field("name", s.name)?;
        row.serialize_field("title", s.title)?;
        row.serialize_field("source", s.source)?;
        row.serialize_field("writeup", s.writeup)?;
        row.serialize_field("profile", &self.profile)?;
        row.serialize_field("phases", &s.phases)?;
        row.end()
    }
}

/// `mdelab scenario list`: the proxy-precedence scenarios, then the network-protection ones.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioList {
    /// The named proxy-precedence scenarios (what `scenario run all` runs).
    pub scenarios: Vec<ListedScenario>,
    /// The network-protection scenarios, by name, with their mode.
    pub network_protection: Vec<(&'static str, NetworkProtection)>,
}

impl ScenarioList {
    /// Lists `scenarios` (their profiles in words) and the network-protection scenarios.
    pub fn new(scenarios: &[NamedScenario]) -> anyhow::Result<Self> {
        let scenarios = scenarios
            .iter()
            .map(|s| {
                Ok(ListedScenario {
                    scenario: s.clone(),
                    profile: MachineProfile::from_toml(s.profile)?.summary(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            scenarios,
            network_protection: netprot::SCENARIOS.to_vec(),
        })
    }
}
