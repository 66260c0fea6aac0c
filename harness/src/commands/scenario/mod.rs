//! `mdelab scenario`: proxy-precedence scenarios, which proxy setting the sensor really uses.
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
//! - [`named`]: the named scenarios and the write-up's expected outcome for each service.
//! - [`rig`]: the lab around the device: the three proxies, the gateway rule enforced by the
//!   mock cloud, a WPAD server (`wpad.rs`); the device's requests and what the proxies' logs
//!   say of them.
//! - [`run`]: the runner: each service's real request along the route the rules select.
//! - [`model`]: what a run found ([`ScenarioReport`]) and the listing ([`model::ScenarioList`]),
//!   rendered by [`crate::report::scenario`] (table, JSON, JUnit).
//! - [`netprot`]: network events behind a forward proxy, one scenario per network-protection
//!   mode, checked through the analyst's hunting queries.
//! - [`demo_section`]: the scenarios `mdelab demo` shows.
//!
//! `mdelab scenario list`, `mdelab scenario run NAME|all [--format table|json|junit|html]` (exit 0
//! iff every observation matches the write-up) and `mdelab scenario profile NAME`.

mod args;
mod demo;
pub mod model;
pub mod named;
pub mod netprot;
pub mod rig;
pub mod run;
mod wpad;

// The machine profile and the route rules are the device's: they live in the sensor crate.
pub use mdelab_sensor::{profile, route};

use std::time::Duration;

use anyhow::{Result, bail};

pub use args::ScenarioCommand;
pub use demo::{DEMO_SCENARIOS, demo_section};
pub use model::ScenarioReport;
pub use named::{Expected, NamedScenario, find, scenarios};
pub use profile::{LabProxy, MachineProfile};
pub use rig::{DEVICE_IP, Rig, RigOptions};
pub use route::{Decision, RouteChoice, SensorService, select_route};
pub use run::{run_named, run_with_profile};

use crate::report::{self, ListFormat};

/// The named scenario `name`, or an error listing the known names.
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

/// Runs a scenario command and prints its output; `Ok(true)` when every outcome is as
/// expected.
pub async fn execute(command: ScenarioCommand) -> Result<bool> {
    match command {
        ScenarioCommand::List { format } => {
            print(&list(format)?)?;
            Ok(true)
        }
        ScenarioCommand::Profile { name } => {
            print(lookup(&name)?.profile)?;
            Ok(true)
        }
        ScenarioCommand::Run {
            name,
            format,
            step_timeout_ms,
        } => {
            let options = RigOptions {
                step_timeout: Duration::from_millis(step_timeout_ms.max(1)),
                ..RigOptions::default()
            };
            if let Some(mode) = netprot::find(&name) {
                let run = netprot::run(mode, &options).await?;
                let all_as_expected = run.report.all_as_expected();
                print(&run.report.render(format)?)?;
                run.rig.shutdown().await?;
                return Ok(all_as_expected);
            }
            let selected = if name == "all" {
                scenarios()
            } else {
                vec![lookup(&name)?]
            };
            let progress = super::progress::Progress::new("scenario", selected.len() as u64);
            let mut reports = Vec::new();
            for scenario in &selected {
                progress.step(format_args!("{}: {}", scenario.name, scenario.title));
                reports.push(run_named(scenario, &options).await?);
            }
            drop(progress);
            print(&report::scenario::render(&reports, format)?)?;
            Ok(reports.iter().all(ScenarioReport::all_as_expected))
        }
    }
}

/// Prints `text` ending with a newline (JSON and a profile may lack their last one).
fn print(text: &str) -> Result<()> {
    if text.ends_with('\n') {
        super::print(text)
    } else {
        super::print(&format!("{text}\n"))
    }
}

/// The list of named scenarios, rendered.
pub fn list(format: ListFormat) -> Result<String> {
    report::scenario::list(&model::ScenarioList::new(&scenarios())?, format)
}
