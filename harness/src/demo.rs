//! `mdelab demo`: the lab's proof, run in-process on loopback.
//!
//! Today it sweeps the catalog: the emulated sensor probes every URL of the region directly and
//! must get each URL's expected status through the pinned chain.

use anyhow::Result;
use mdelab_mock_cloud::{Catalog, Connectivity, Region};

use crate::lab::{Lab, LabOptions};
use crate::report::{Check, Report, Section};
use crate::sensor::{self, ClientKind, Route, Target, Verdict};

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The tenant's region.
    pub region: Region,
}

/// Runs the demo and returns its deterministic report.
pub async fn run(options: &DemoOptions) -> Result<Report> {
    let lab = Lab::start(&LabOptions::default()).await?;
    let sweep = catalog_sweep(&lab, options.region).await;
    lab.shutdown().await?;
    Ok(Report {
        title: format!("mdelab demo: region {}", options.region),
        sections: vec![sweep],
        summary: vec![
            "Every probe above crossed the lab's pinned chains directly, with no proxy in the way."
                .into(),
        ],
    })
}

/// The sensor, direct, against every URL of `region` (both connectivity models).
pub async fn catalog_sweep(lab: &Lab, region: Region) -> Section {
    let network = lab.network();
    let trust = lab.device_trust(false);
    let mut checks = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for model in Connectivity::ALL {
        for endpoint in Catalog::mde().for_device(region, model) {
            let url = endpoint.url();
            if !seen.insert(url.clone()) {
                continue;
            }
            let target = Target::from(endpoint);
            let observed = sensor::probe(
                &target,
                ClientKind::Sensor,
                &Route::Direct,
                &trust,
                &network,
            )
            .await;
            checks.push(Check {
                target: format!("{} {}", endpoint.probe.method.as_str(), url),
                path: "direct".into(),
                client: ClientKind::Sensor.name().into(),
                expected: Verdict::Connected {
                    status: endpoint.probe.status,
                },
                observed,
            });
        }
    }
    Section {
        title: format!("Catalog sweep: the sensor probes every {region} URL directly"),
        checks,
    }
}
