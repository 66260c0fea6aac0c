//! Proxy-precedence scenarios: which proxy setting the sensor really uses.
//!
//! Microsoft's lab write-ups (summarised in `reference/proxy-precedence.md`) put one
//! workstation behind a gateway that blocks every direct route, with three proxies: PROX01
//! (set as the WinHTTP proxy), PROX02 (the user's WinINet proxy) and PROX03 (the static
//! `TelemetryProxyServer`), and watched which proxy carried the sensor's traffic. This module
//! rebuilds that lab offline and replays every test:
//!
//! - [`profile`]: the machine profile (TOML, unknown fields refused): static, WinHTTP (named or
//!   WPAD) and WinINet settings, the user session, the gateway rule, the trust store, the
//!   onboarding, and how each of the three proxies behaves.
//! - [`route`]: [`select_route`], the precedence rules as a pure function, per service.
//! - [`rig`]: the lab around the device: the three proxies, the gateway rule enforced by the
//!   mock cloud, a WPAD server; the device's requests and what the proxies' logs say of them.
//! - [`named`]: the named scenarios and the write-up's expected outcome for each service.
//! - [`netprot`]: network events behind a forward proxy, one scenario per network-protection
//!   mode, checked through the analyst's hunting queries.
//! - [`run`]: running a scenario and rendering its report (table, JSON, JUnit).
//!
//! `mdelab scenario list`, `mdelab scenario run NAME|all [--format table|json|junit]` (exit 0
//! iff every observation matches the write-up) and `mdelab scenario profile NAME`.

pub mod named;
pub mod netprot;
pub mod rig;
pub mod run;
mod wpad;

// The machine profile and the route rules are the device's: they live in the sensor crate.
pub use mdelab_sensor::{profile, route};

use std::time::Duration;

use anyhow::{Result, bail};
use mdelab_catalog::Region;

pub use named::{Expected, NamedScenario, find, scenarios};
pub use profile::{LabProxy, MachineProfile};
pub use rig::{DEVICE_IP, Rig, RigOptions};
pub use route::{Decision, RouteChoice, SensorService, select_route};
pub use run::{ScenarioReport, run_named, run_with_profile};

use crate::report::ListFormat;
use crate::report::{Check, Format, Section};
use mdelab_sensor::{Outcome, Verdict};

/// `mdelab scenario …`.
#[derive(Debug, clap::Subcommand)]
pub enum ScenarioCommand {
    /// List the named scenarios.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: ListFormat,
    },
    /// Run a named scenario (or `all`): per service, the route taken, the proxy that carried
    /// it (from the proxies' access logs) and the outcome, against the write-up. Exit 0 iff
    /// every one matches.
    Run {
        /// The scenario (see `mdelab scenario list`), or `all`.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Time the emulated device allows each step (connect, handshake, response), in
        /// milliseconds; a blocked route costs this much.
        #[arg(long, default_value_t = 500)]
        step_timeout_ms: u64,
    },
    /// Print a named scenario's machine profile (TOML), e.g. to edit it for
    /// `mdelab analyze --profile FILE`.
    Profile {
        /// The scenario.
        name: String,
    },
}

fn lookup(name: &str) -> Result<NamedScenario> {
    match find(name) {
        Some(s) => Ok(s),
        None => {
            let mut names: Vec<&str> = scenarios().iter().map(|s| s.name).collect();
            names.extend(netprot::SCENARIOS.iter().map(|(n, _)| *n));
            bail!(
                "no scenario named {name:?} (known: {}, or all)",
                names.join(", ")
            )
        }
    }
}

/// Runs a scenario command; `Ok(true)` when every outcome is as expected.
pub async fn run(command: ScenarioCommand) -> Result<bool> {
    match command {
        ScenarioCommand::List { format } => {
            print(&list(format)?);
            Ok(true)
        }
        ScenarioCommand::Profile { name } => {
            print(lookup(&name)?.profile);
            Ok(true)
        }
        ScenarioCommand::Run {
            name,
            format,
            step_timeout_ms,
        } => {
            if let Some(mode) = netprot::find(&name) {
                let options = RigOptions {
                    step_timeout: Duration::from_millis(step_timeout_ms.max(1)),
                    ..RigOptions::default()
                };
                let run = netprot::run(mode, &options).await?;
                let all_as_expected = run.report.all_as_expected();
                print(&run.report.render(format)?);
                run.rig.shutdown().await?;
                return Ok(all_as_expected);
            }
            let selected = if name == "all" {
                scenarios()
            } else {
                vec![lookup(&name)?]
            };
            let options = RigOptions {
                step_timeout: Duration::from_millis(step_timeout_ms.max(1)),
                ..RigOptions::default()
            };
            let mut reports = Vec::new();
            for scenario in &selected {
                reports.push(run_named(scenario, &options).await?);
            }
            print(&run::render(&reports, format)?);
            Ok(reports.iter().all(ScenarioReport::all_as_expected))
        }
    }
}

fn print(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// The list of named scenarios.
pub fn list(format: ListFormat) -> Result<String> {
    let all = scenarios();
    match format {
        ListFormat::Json => {
            #[derive(serde::Serialize)]
            struct Row<'a> {
                name: &'a str,
                title: &'a str,
                source: &'a str,
                writeup: &'a str,
                profile: Vec<String>,
                phases: &'a [named::PhaseSpec],
            }
            let rows = all
                .iter()
                .map(|s| {
                    Ok(Row {
                        name: s.name,
                        title: s.title,
                        source: s.source,
                        writeup: s.writeup,
                        profile: MachineProfile::from_toml(s.profile)?.summary(),
                        phases: &s.phases,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(serde_json::to_string_pretty(&rows)?)
        }
        ListFormat::Table => {
            let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
            let mut out = String::new();
            for s in &all {
                out.push_str(&format!(
                    "{:<width$}  {}\n{:<width$}  ({}) {}\n",
                    s.name, s.title, "", s.source, s.writeup
                ));
            }
            for (name, mode) in netprot::SCENARIOS {
                out.push_str(&format!(
                    "{name:<width$}  network protection {mode}: the user browses behind a forward proxy\n{:<width$}  (MDE docs: investigate connection events behind forward proxies)\n",
                    ""
                ));
            }
            out.push_str(&format!(
                "{} scenarios; run one with `mdelab scenario run NAME` (`all` runs the {} proxy-precedence ones)\n",
                all.len() + netprot::SCENARIOS.len(),
                all.len()
            ));
            Ok(out)
        }
    }
}

/// The scenarios `mdelab demo` shows: precedence with all three set, WinINet only with a
/// user (Live Response times out), and an authenticating proxy with nobody logged on.
pub const DEMO_SCENARIOS: [&str; 3] = ["all-three", "wininet-only-user", "auth-proxy-no-user"];

/// A report section for `mdelab demo`: the most telling scenarios ([`DEMO_SCENARIOS`]) for a
/// device of `region`, one column per scenario phase and one row per service; each cell is
/// the observed outcome against the write-up's, and the "why" lines name the route and the
/// proxy whose access log shows the traffic.
///
/// A cell whose outcome matches but whose route or carrying proxy does not is reported as
/// observed `error` with the route in its evidence, so the section's verdict reflects the
/// route too.
pub async fn demo_section(region: Region) -> Result<Section> {
    let options = RigOptions::default();
    let mut checks = Vec::new();
    for name in DEMO_SCENARIOS {
        let scenario = lookup(name)?;
        let mut profile = MachineProfile::from_toml(scenario.profile)?;
        profile.onboarding.region = region;
        let report = run_with_profile(&scenario, &profile, &options).await?;
        for (n, phase) in report.phases.iter().enumerate() {
            let path = if report.phases.len() > 1 {
                format!("{name} #{}", n + 1)
            } else {
                name.to_owned()
            };
            for row in &phase.rows {
                let route: Vec<&str> = row.route.iter().map(|r| r.name()).collect();
                let route = route.join(" → ");
                let seen: Vec<String> = row
                    .hops
                    .iter()
                    .map(|h| {
                        if h.status == 407 {
                            format!("{} answered 407", h.proxy)
                        } else if h.tls.as_deref().is_some_and(|t| t.starts_with("inspected")) {
                            format!("{} inspected it", h.proxy)
                        } else {
                            format!("carried by {}", h.proxy)
                        }
                    })
                    .collect();
                let mut observed = row.outcome.clone();
                observed.evidence = match &row.outcome.verdict {
                    Verdict::Connected { status } => {
                        format!(
                            "{}: {} {route}, answered {status}",
                            row.service,
                            row.context.name()
                        )
                    }
                    _ => format!(
                        "{}: {} {route}: {}",
                        row.service,
                        row.context.name(),
                        row.outcome.evidence
                    ),
                };
                let route_ok = row.route == row.expected.route && row.via() == row.expected.via;
                if !route_ok {
                    observed = Outcome::new(
                        Verdict::Other {
                            detail: "unexpected route".into(),
                        },
                        format!(
                            "{}; expected route {:?} via {:?}",
                            observed.evidence, row.expected.route, row.expected.via
                        ),
                        observed.served_issuer,
                    );
                }
                checks.push(Check {
                    target: row.service.name().to_owned(),
                    path: path.clone(),
                    client: "device".to_owned(),
                    expected: row.expected.verdict.clone(),
                    observed,
                    proxy_view: (!seen.is_empty()).then(|| seen.join(", then ")),
                    via: Some(row.via())
                        .filter(|v| !v.is_empty())
                        .map(|v| v.join("→")),
                });
            }
        }
    }
    Ok(Section {
        title: format!(
            "Proxy precedence: which proxy carries each service (write-up tests 5 and 3b, authenticated proxy), region {region}"
        ),
        checks,
    })
}
