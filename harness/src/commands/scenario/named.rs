//! The named scenarios: every test of `reference/proxy-precedence.md`, each with its machine
//! profile (`harness/profiles/*.toml`) and the outcome the write-up reports, per service, as
//! data. Nothing here is derived from what the lab observes.
//!
//! Where the write-up speaks of "the sensor" or "most features", the rows spell out the lab's
//! reading of it (the rules in [`super::route`]); each scenario's `writeup` is the write-up's
//! own observation, in our words.

use serde::Serialize;

use super::route::RouteChoice::{self, Direct, Static, WinHttp, WinInet, Wpad};
use super::route::SensorService::{
    self, AutoIr, CloudProtection, CommandAndControl, ConfigManager, CrlCtl, CyberData,
    LiveResponse, SampleUpload, WindowsUpdate,
};

/// What the write-up says happens to a service's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    /// It works: the service gets its normal answer.
    Works,
    /// Nothing answers: the route is blocked (a Live Response session times out).
    TimesOut,
    /// The proxy demands authentication (407) and the request has no credentials.
    ProxyAuth,
    /// TLS inspection breaks the pinned connection.
    PinBroken,
}

impl Expected {
    /// A short word for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Works => "works",
            Self::TimesOut => "timeout",
            Self::ProxyAuth => "proxy 407",
            Self::PinBroken => "pin mismatch",
        }
    }
}

/// The expected route, carriers and outcome of one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectRow {
    /// The service.
    pub service: SensorService,
    /// The proxy settings its requests follow, in order (a fall-back adds a second).
    pub route: &'static [RouteChoice],
    /// The proxies whose access logs show its connections, in order (empty: none).
    pub via: &'static [&'static str],
    /// What becomes of it.
    pub outcome: Expected,
}

/// One phase of a scenario (most have one; "the user logs on" makes a second).
#[derive(Clone, Debug, Serialize)]
pub struct PhaseSpec {
    /// What the phase is.
    pub title: &'static str,
    /// Whether a user is logged on during it.
    pub user_logged_on: bool,
    /// One row per service.
    pub rows: Vec<ExpectRow>,
    /// Events left in the device's cache at the end of the phase (each phase generates
    /// [`super::run::EVENTS_PER_PHASE`] and the cyber-data upload tries to send them all).
    pub cached_after: usize,
}

/// A named scenario.
#[derive(Clone, Debug, Serialize)]
pub struct NamedScenario {
    /// The name on the command line.
    pub name: &'static str,
    /// One line.
    pub title: &'static str,
    /// Where in the write-up.
    pub source: &'static str,
    /// What the write-up observed, in our words.
    pub writeup: &'static str,
    /// The machine profile (TOML).
    #[serde(skip)]
    pub profile: &'static str,
    /// The phases.
    pub phases: Vec<PhaseSpec>,
}

const S: &[RouteChoice] = &[Static];
const SD: &[RouteChoice] = &[Static, Direct];
const H: &[RouteChoice] = &[WinHttp];
const HI: &[RouteChoice] = &[WinHttp, WinInet];
const W: &[RouteChoice] = &[Wpad];
const I: &[RouteChoice] = &[WinInet];
const D: &[RouteChoice] = &[Direct];

const P1: &[&str] = &["PROX01"];
const P2: &[&str] = &["PROX02"];
const P3: &[&str] = &["PROX03"];
const P12: &[&str] = &["PROX01", "PROX02"];
const NONE: &[&str] = &[];

use Expected::{PinBroken, ProxyAuth, TimesOut, Works};

fn row(
    service: SensorService,
    route: &'static [RouteChoice],
    via: &'static [&'static str],
    outcome: Expected,
) -> ExpectRow {
    ExpectRow {
        service,
        route,
        via,
        outcome,
    }
}

/// Every service the same way.
fn all(
    route: &'static [RouteChoice],
    via: &'static [&'static str],
    outcome: Expected,
) -> Vec<ExpectRow> {
    SensorService::ALL
        .into_iter()
        .map(|s| row(s, route, via, outcome))
        .collect()
}

/// Every service the same way, except those given.
fn all_but(
    route: &'static [RouteChoice],
    via: &'static [&'static str],
    outcome: Expected,
    except: Vec<ExpectRow>,
) -> Vec<ExpectRow> {
    SensorService::ALL
        .into_iter()
        .map(|s| {
            except
                .iter()
                .find(|r| r.service == s)
                .cloned()
                .unwrap_or_else(|| row(s, route, via, outcome))
        })
        .collect()
}

fn phase(title: &'static str, user: bool, rows: Vec<ExpectRow>, cached_after: usize) -> PhaseSpec {
    PhaseSpec {
        title,
        user_logged_on: user,
        rows,
        cached_after,
    }
}

/// Test 3b (and the second phase of test 3): WinINet only, with a user.
fn wininet_with_user() -> Vec<ExpectRow> {
    all_but(
        D,
        NONE,
        TimesOut,
        vec![
            row(CyberData, I, P2, Works),
            row(SampleUpload, I, P2, Works),
            row(ConfigManager, I, P2, Works),
        ],
    )
}

/// An authenticated WinHTTP and WinINet proxy with a user who has credentials.
fn auth_with_user() -> Vec<ExpectRow> {
    all_but(
        H,
        P1,
        ProxyAuth,
        vec![
            row(CyberData, HI, P12, Works),
            row(SampleUpload, I, P2, Works),
            row(ConfigManager, I, P2, Works),
        ],
    )
}

/// Events generated per phase (see [`super::run::EVENTS_PER_PHASE`]).
const N: usize = super::run::EVENTS_PER_PHASE;

/// Every named scenario, in the write-up's order.
pub fn scenarios() -> Vec<NamedScenario> {
    vec![
        NamedScenario {
            name: "winhttp-only",
            title: "WinHTTP only (PROX01), nobody logged on",
            source: "proxy-precedence.md, test 1",
            writeup: "Live Response succeeds through PROX01; the Client Analyzer shows \
                      Method=NamedWinHttp, default proxy and WPAD succeed, direct times out (12002).",
            profile: include_str!("../../../profiles/winhttp-only.toml"),
            phases: vec![phase("nobody logged on", false, all(H, P1, Works), 0)],
        },
        NamedScenario {
            name: "winhttp-wininet-user",
            title: "WinHTTP (PROX01) + WinINet (PROX02), a user logged on",
            source: "proxy-precedence.md, test 2",
            writeup: "The sensor still uses WinHTTP (PROX01): it runs as SYSTEM. Live Response \
                      works through PROX01.",
            profile: include_str!("../../../profiles/winhttp-wininet-user.toml"),
            phases: vec![phase(
                "a user is logged on",
                true,
                all_but(
                    H,
                    P1,
                    Works,
                    vec![
                        row(SampleUpload, I, P2, Works),
                        row(ConfigManager, I, P2, Works),
                    ],
                ),
                0,
            )],
        },
        NamedScenario {
            name: "wininet-only-logon",
            title: "WinINet only (PROX02): nobody logged on, then the user logs on",
            source: "proxy-precedence.md, test 3",
            writeup: "No sensor traffic at all; a Live Response session times out. The sensor \
                      caches its signals and uploads them once a user logs on and the WinINet \
                      proxy becomes usable (the timeline fills in after log-on).",
            profile: include_str!("../../../profiles/wininet-only.toml"),
            phases: vec![
                phase("nobody logged on", false, all(D, NONE, TimesOut), N),
                phase("the user logs on", true, wininet_with_user(), 0),
            ],
        },
        NamedScenario {
            name: "wininet-only-user",
            title: "WinINet only (PROX02), a user logged on",
            source: "proxy-precedence.md, test 3b",
            writeup: "Most features work, but Live Response still times out. In the Client \
                      Analyzer only the SampleUpload and MdeConfigMgr URL groups are reachable.",
            profile: include_str!("../../../profiles/wininet-only-user.toml"),
            phases: vec![phase("a user is logged on", true, wininet_with_user(), 0)],
        },
        NamedScenario {
            name: "static-only",
            title: "Static proxy only (PROX03)",
            source: "proxy-precedence.md, test 4",
            writeup: "Everything works, including Live Response, right after reboot; nothing \
                      else on the device has Internet access (not even Windows Update).",
            profile: include_str!("../../../profiles/static-only.toml"),
            phases: vec![phase(
                "nobody logged on",
                false,
                all_but(S, P3, Works, vec![row(WindowsUpdate, D, NONE, TimesOut)]),
                0,
            )],
        },
        NamedScenario {
            name: "all-three",
            title: "Static (PROX03) + WinHTTP (PROX01) + WinINet (PROX02), a user logged on",
            source: "proxy-precedence.md, test 5",
            writeup: "Live Response uses the static proxy (PROX03); user-context services use \
                      WinINet (PROX02); the other SYSTEM services use WinHTTP (PROX01).",
            profile: include_str!("../../../profiles/all-three.toml"),
            phases: vec![phase(
                "a user is logged on",
                true,
                vec![
                    row(CyberData, S, P3, Works),
                    row(CommandAndControl, S, P3, Works),
                    row(LiveResponse, S, P3, Works),
                    row(SampleUpload, I, P2, Works),
                    row(AutoIr, H, P1, Works),
                    row(CloudProtection, H, P1, Works),
                    row(ConfigManager, I, P2, Works),
                    row(CrlCtl, H, P1, Works),
                    row(WindowsUpdate, H, P1, Works),
                ],
                0,
            )],
        },
        NamedScenario {
            name: "static-unreachable",
            title: "Static proxy (PROX03) unreachable: the sensor falls back to direct",
            source: "proxy-precedence.md, rules (and reference §4.5, S5)",
            writeup: "Static proxy, when set, carries the sensor's EDR, command-and-control and \
                      Live Response traffic; unreachable static proxy → direct.",
            profile: include_str!("../../../profiles/static-unreachable.toml"),
            phases: vec![phase(
                "nobody logged on, direct traffic allowed",
                false,
                all_but(
                    D,
                    NONE,
                    Works,
                    vec![
                        row(CyberData, SD, NONE, Works),
                        row(CommandAndControl, SD, NONE, Works),
                        row(LiveResponse, SD, NONE, Works),
                    ],
                ),
                0,
            )],
        },
        NamedScenario {
            name: "winhttp-wpad",
            title: "WinHTTP auto-discovery (WPAD answers PROX01), nobody logged on",
            source: "proxy-precedence.md, rules",
            writeup: "Without a static proxy, SYSTEM services use WinHTTP (named or WPAD); Live \
                      Response in particular needs a SYSTEM-usable route.",
            profile: include_str!("../../../profiles/winhttp-wpad.toml"),
            phases: vec![phase("nobody logged on", false, all(W, P1, Works), 0)],
        },
        NamedScenario {
            name: "auth-proxy-user",
            title: "Authenticating proxies, a user with credentials logged on",
            source: "proxy-precedence.md, authenticated proxies: workstation, user logged on",
            writeup: "Works through the user's credentials (WinINet); SYSTEM traffic has no \
                      credentials.",
            profile: include_str!("../../../profiles/auth-proxy-user.toml"),
            phases: vec![phase("a user is logged on", true, auth_with_user(), 0)],
        },
        NamedScenario {
            name: "auth-proxy-no-user",
            title: "Authenticating proxies: nobody logged on, then the user logs on",
            source: "proxy-precedence.md, authenticated proxies: workstation, no user",
            writeup: "Sensor does not work: no authentication context. Live Response, \
                      cloud-delivered protection, EDR data, command-and-control and automated \
                      investigation fail; signals are cached and sent after a user logs on.",
            profile: include_str!("../../../profiles/auth-proxy-no-user.toml"),
            phases: vec![
                phase("nobody logged on", false, all(H, P1, ProxyAuth), N),
                phase("the user logs on", true, auth_with_user(), 0),
            ],
        },
        NamedScenario {
            name: "inspecting-proxy",
            title: "Static proxy (PROX03) inspecting TLS, inspection CA trusted, no bypass list",
            source: "proxy-precedence.md, unauthenticated proxies: TLS inspection",
            writeup: "TLS inspection must be excluded: MDE pins certificates, inspection breaks \
                      the connection, whichever route it took.",
            profile: include_str!("../../../profiles/inspecting-proxy.toml"),
            phases: vec![phase(
                "nobody logged on",
                false,
                vec![
                    row(CyberData, S, P3, PinBroken),
                    row(CommandAndControl, S, P3, PinBroken),
                    row(LiveResponse, S, P3, PinBroken),
                    row(SampleUpload, S, P3, Works),
                    row(AutoIr, S, P3, Works),
                    row(CloudProtection, S, P3, PinBroken),
                    row(ConfigManager, S, P3, Works),
                    row(CrlCtl, S, P3, Works),
                    row(WindowsUpdate, D, NONE, TimesOut),
                ],
                N,
            )],
        },
        NamedScenario {
            name: "inspecting-proxy-bypass",
            title: "Static proxy (PROX03) inspecting TLS with the MDE hosts on its bypass list",
            source: "proxy-precedence.md, unauthenticated proxies: TLS inspection excluded",
            writeup: "With the MDE hosts excluded from inspection, the proxy works like any \
                      unauthenticated proxy.",
            profile: include_str!("../../../profiles/inspecting-proxy-bypass.toml"),
            phases: vec![phase(
                "nobody logged on",
                false,
                all_but(S, P3, Works, vec![row(WindowsUpdate, D, NONE, TimesOut)]),
                0,
            )],
        },
    ]
}

/// A named scenario.
pub fn find(name: &str) -> Option<NamedScenario> {
    scenarios().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::profile::MachineProfile;
    use crate::scenario::route::select_route;

    #[test]
    fn every_profile_parses_and_every_phase_covers_every_service_once() {
        let all = scenarios();
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "names are unique");
        for s in &all {
            let profile = MachineProfile::from_toml(s.profile).unwrap();
            assert!(
                s.name.starts_with(&profile.name),
                "{} uses {}",
                s.name,
                profile.name
            );
            for phase in &s.phases {
                let services: Vec<SensorService> = phase.rows.iter().map(|r| r.service).collect();
                assert_eq!(
                    services,
                    SensorService::ALL.to_vec(),
                    "{} {}",
                    s.name,
                    phase.title
                );
            }
        }
    }

    /// The expectations are the write-up's; the route rules are the lab's reading of it. They
    /// must agree on the first route of every service, or one of them is wrong.
    #[test]
    fn the_route_rules_agree_with_the_expected_first_route() {
        for s in scenarios() {
            let profile = MachineProfile::from_toml(s.profile).unwrap();
            for phase in &s.phases {
                for r in &phase.rows {
                    let d = select_route(&profile, r.service, phase.user_logged_on);
                    assert_eq!(
                        d.route, r.route[0],
                        "{} {} {}",
                        s.name, phase.title, r.service
                    );
                }
            }
        }
    }
}
