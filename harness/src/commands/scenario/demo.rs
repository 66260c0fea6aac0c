//! The scenarios `mdelab demo` shows, as one report section of the demo.

use anyhow::Result;
use mdelab_catalog::Region;
use mdelab_sensor::{Outcome, Verdict};

use super::lookup;
use super::profile::MachineProfile;
use super::rig::RigOptions;
use super::run::run_with_profile;
use crate::report::{Check, Section};

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
