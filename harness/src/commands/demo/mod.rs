//! `mdelab demo`: the lab's proof, run in-process on loopback.
//!
//! 1. **The pinning matrix.** A representative endpoint of each service family is reached by
//!    the emulated sensor and by an unpinned browser on the same device, along six paths:
//!    direct; a CONNECT proxy; a CONNECT proxy that demands authentication; an inspecting proxy
//!    whose CA the device trusts; one whose CA it does not trust; and an inspecting proxy with
//!    the MDE hosts on its bypass list. Each cell compares the observed verdict with the one
//!    MDE's documented behaviour predicts ([`expected`]), so a surprise is visible at once.
//! 2. **Which proxy the sensor uses.** The most telling proxy-precedence scenarios (all three
//!    proxies set; WinINet only with a user; an authenticated proxy before and after log-on),
//!    each service's route and the proxy that carried it, from the proxies' own logs.
//! 3. **The catalog sweep.** The sensor probes every URL of the region directly and must get
//!    each URL's expected status through the pinned chain.
//! 4. **Network events behind a forward proxy.** With network protection off, in audit and in
//!    block, what the analyst's documented queries return.
//!
//! [`run`] builds the [`Report`]; [`execute`] is the command: run, render, print.

mod args;

pub use args::DemoArgs;

use anyhow::Result;
use mdelab_catalog::{Catalog, Connectivity, Endpoint, Region, Scheme, Service};
use std::time::Duration;

use mdelab_proxy::{AccessRecord, ClientHandshake, Credentials, TlsHandling};

use crate::lab::{Lab, LabOptions, ProxyKind, ProxySpec};
use crate::report::{Check, Report, Section};
use mdelab_sensor::{self as sensor, ClientKind, ProxyRoute, Route, Target, Verdict};

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The tenant's region.
    pub region: Region,
}

impl From<&DemoArgs> for DemoOptions {
    fn from(args: &DemoArgs) -> Self {
        Self {
            region: args.region,
        }
    }
}

/// Runs `mdelab demo`: prints the report; as expected iff every check was.
pub async fn execute(args: &DemoArgs) -> Result<bool> {
    let report = run(&args.into()).await?;
    super::print(&report.render(args.format)?)?;
    Ok(report.all_as_expected())
}

/// The six paths of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// No proxy.
    Direct,
    /// Plain CONNECT proxy.
    Connect,
    /// CONNECT proxy demanding Basic authentication; the user has credentials, SYSTEM has none.
    ConnectAuth,
    /// Inspecting proxy; the device trusts its CA (an enterprise push).
    InspectTrusted,
    /// Inspecting proxy; the device does not trust its CA.
    InspectUntrusted,
    /// Inspecting proxy (CA trusted) splicing the MDE hosts.
    InspectBypass,
}

impl Path {
    /// Every path, in column order.
    pub const ALL: [Self; 6] = [
        Self::Direct,
        Self::Connect,
        Self::ConnectAuth,
        Self::InspectTrusted,
        Self::InspectUntrusted,
        Self::InspectBypass,
    ];

    /// Column label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Connect => "connect",
            Self::ConnectAuth => "connect+auth",
            Self::InspectTrusted => "inspect (CA trusted)",
            Self::InspectUntrusted => "inspect (CA untrusted)",
            Self::InspectBypass => "inspect+bypass",
        }
    }
}

/// The verdict MDE's documented behaviour predicts for `client` reaching `endpoint` over `path`.
///
/// This is the model the observations are checked against; it never looks at what happened.
pub fn expected(path: Path, client: ClientKind, endpoint: &Endpoint, bypass: &[String]) -> Verdict {
    let ok = Verdict::Connected {
        status: endpoint.probe.status,
    };
    let pinned = client == ClientKind::Sensor && endpoint.pinned;
    let https = endpoint.scheme == Scheme::Https;
    match path {
        Path::Direct | Path::Connect => ok,
        // The sensor runs as SYSTEM: no credentials for an authenticating proxy.
        Path::ConnectAuth if client == ClientKind::Sensor => Verdict::ProxyAuthRequired,
        Path::ConnectAuth => ok,
        // Plain HTTP is forwarded, not inspected.
        _ if !https => ok,
        Path::InspectUntrusted => Verdict::UnknownIssuer,
        Path::InspectBypass
            if bypass
                .iter()
                .any(|p| mdelab_catalog::matches_pattern(p, &endpoint.host)) =>
        {
            ok
        }
        // Inspected with a trusted CA: the chain validates, the pin does not.
        Path::InspectTrusted | Path::InspectBypass if pinned => Verdict::PinMismatch,
        Path::InspectTrusted | Path::InspectBypass => ok,
    }
}

/// The representative endpoints of a region: one per service family that matters to MDE,
/// plus the unpinned neighbours that show what inspection does *not* break.
pub fn representatives(region: Region) -> Vec<(&'static str, &'static Endpoint)> {
    let catalog = Catalog::mde();
    let pick = |model: Connectivity, service: Service, pinned: bool| {
        catalog
            .for_device(region, model)
            .find(|e| e.service == service && e.pinned == pinned)
    };
    let std = Connectivity::Standard;
    let rows = [
        (
            "command-and-control",
            pick(std, Service::CommandAndControl, true),
        ),
        (
            "command-and-control (streamlined)",
            pick(Connectivity::Streamlined, Service::CommandAndControl, true),
        ),
        ("cyber data", pick(std, Service::CyberData, true)),
        (
            "cloud protection",
            pick(std, Service::CloudProtection, true),
        ),
        (
            "cloud protection x-plat (unpinned)",
            pick(std, Service::CloudProtection, false),
        ),
        (
            "auto-IR storage (unpinned)",
            pick(std, Service::AutoIr, false),
        ),
        (
            "sample upload storage (unpinned)",
            pick(std, Service::SampleUpload, false),
        ),
        ("CRL over http", pick(std, Service::CrlCtl, false)),
    ];
    rows.into_iter()
        .filter_map(|(label, e)| Some((label, e?)))
        .collect()
}

/// Runs the demo and returns its deterministic report.
pub async fn run(options: &DemoOptions) -> Result<Report> {
    let mut lab = Lab::start(&LabOptions::default()).await?;
    let matrix = pinning_matrix(&mut lab, options.region).await;
    let sweep = catalog_sweep(&lab, options.region).await;
    lab.shutdown().await?;
    let precedence = crate::scenario::demo_section(options.region).await?;
    let network_events = crate::scenario::netprot::demo_section().await?;
    let mut report = Report {
        title: format!("mdelab demo: region {}", options.region),
        sections: vec![matrix?, precedence, sweep, network_events],
        summary: Vec::new(),
    };
    report.summary = if report.all_as_expected() {
        vec![
            "Lesson: MDE pins its certificates. A proxy that inspects TLS breaks command-and-control, cyber data".into(),
            "and cloud protection even when the device trusts the inspection CA, while a browser notices nothing.".into(),
            "A plain CONNECT proxy works, unless it demands authentication (the sensor runs as SYSTEM: 407).".into(),
            "Fix: splice the MDE hosts (bypass list) or give the sensor an unauthenticated CONNECT proxy.".into(),
            "Which proxy: the static proxy (TelemetryProxyServer) carries the sensor; WinHTTP carries SYSTEM;".into(),
            "the user's WinINet proxy serves only a logged-on user, and only sample upload and MdeConfigMgr.".into(),
            "Behind a proxy, connection events name the proxy; network protection (audit, block) adds the real domains.".into(),
        ]
    } else {
        vec![
            "Some outcomes differ from what MDE does: see the cells marked !! and their evidence."
                .into(),
        ]
    };
    Ok(report)
}

/// The matrix: representatives × paths × {sensor, browser}.
pub async fn pinning_matrix(lab: &mut Lab, region: Region) -> Result<Section> {
    const USER: &str = "alice";
    const PASSWORD: &str = "lab-password";
    let auth_proxy = lab
        .add_proxy(ProxySpec {
            name: "connect-auth",
            port: 0,
            kind: ProxyKind::Connect,
            credentials: Some(Credentials::new(USER, PASSWORD)),
        })
        .await?;
    let bypass = Catalog::mde().inspection_bypass();
    let bypass_proxy = lab
        .add_proxy(ProxySpec {
            name: "inspect-bypass",
            port: 0,
            kind: ProxyKind::Inspect {
                bypass: bypass.clone(),
            },
            credentials: None,
        })
        .await?;
    let network = lab.network();
    let via = |addr, credentials: Option<(&str, &str)>| {
        Route::Proxy(ProxyRoute {
            addr,
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        })
    };
    let mut checks = Vec::new();
    for client in [ClientKind::Sensor, ClientKind::Browser] {
        for (label, endpoint) in representatives(region) {
            for path in Path::ALL {
                let (route, trusts_inspection) = match path {
                    Path::Direct => (Route::Direct, false),
                    Path::Connect => (via(lab.connect_proxy().addr, None), false),
                    // Only the logged-on user has credentials for the proxy.
                    Path::ConnectAuth => {
                        let creds = (client == ClientKind::Browser).then_some((USER, PASSWORD));
                        (via(auth_proxy.addr, creds), false)
                    }
                    Path::InspectTrusted => (via(lab.inspect_proxy().addr, None), true),
                    Path::InspectUntrusted => (via(lab.inspect_proxy().addr, None), false),
                    Path::InspectBypass => (via(bypass_proxy.addr, None), true),
                };
                let trust = lab.device_trust(trusts_inspection);
                let log = match path {
                    Path::Direct => None,
                    Path::Connect => Some(lab.connect_proxy().log.clone()),
                    Path::ConnectAuth => Some(auth_proxy.log.clone()),
                    Path::InspectTrusted | Path::InspectUntrusted => {
                        Some(lab.inspect_proxy().log.clone())
                    }
                    Path::InspectBypass => Some(bypass_proxy.log.clone()),
                };
                let last = log
                    .as_ref()
                    .and_then(|l| l.entries().last().map(|r| r.id))
                    .unwrap_or(0);
                let observed =
                    sensor::probe(&Target::from(endpoint), client, &route, &trust, &network).await;
                let proxy_view = match &log {
                    // The proxy writes its record when the connection ends, just after the probe.
                    Some(log) => log
                        .wait_for(|r| r.id > last, PROXY_RECORD_WAIT)
                        .await
                        .and_then(|r| describe_record(&r)),
                    None => None,
                };
                checks.push(Check {
                    target: format!("{label}: {}", endpoint.host),
                    path: path.label().into(),
                    client: client.name().into(),
                    expected: expected(path, client, endpoint, &bypass),
                    observed,
                    proxy_view,
                    via: None,
                });
            }
        }
    }
    Ok(Section {
        title: format!(
            "Pinning matrix: the sensor (pins) and a browser (no pins) on one device, region {region}"
        ),
        checks,
    })
}

/// How long to wait for a proxy's access record after a probe through it.
const PROXY_RECORD_WAIT: Duration = Duration::from_secs(2);

/// What a proxy's access record adds to the client's story, in words; `None` for a plain
/// tunnel or forward that went through untouched.
fn describe_record(record: &AccessRecord) -> Option<String> {
    if record.status == 407 {
        return Some("answered 407 Proxy Authentication Required".into());
    }
    match record.tls.as_ref()? {
        TlsHandling::Spliced { .. } => {
            Some("spliced (host on the bypass list): the client saw the real chain".into())
        }
        TlsHandling::Inspected { client, .. } => Some(match client {
            ClientHandshake::Completed => {
                "inspected: minted a certificate for the host and read the traffic".into()
            }
            ClientHandshake::RejectedWithAlert { alert } => {
                format!("inspected: the client rejected the minted certificate (TLS alert {alert})")
            }
            ClientHandshake::ClosedDuringHandshake => {
                "inspected: the client hung up during the handshake".into()
            }
            ClientHandshake::Failed { detail } => format!("inspected: handshake failed ({detail})"),
        }),
    }
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
                proxy_view: None,
                via: None,
            });
        }
    }
    Section {
        title: format!("Catalog sweep: the sensor probes every {region} URL directly"),
        checks,
    }
}
