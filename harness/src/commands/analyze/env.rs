//! Where the analyzer runs ([`Env`]): a rig started for the machine profile (the three lab
//! proxies, the gateway rule, WPAD), or a running lab found through its manifest; and the
//! routes each of the profile's settings gives.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mdelab_certs::{Pin, PinSet};
use mdelab_sensor::{DeviceTrust, Network, Route};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::AnalyzeOptions;
use crate::manifest::Manifest;
use crate::scenario::profile::{LabProxy, MachineProfile};
use crate::scenario::rig::{Rig, RigOptions};
use crate::scenario::route::{Context, RouteChoice, Step};

/// Where the analyzer runs: a rig started for the profile, or a running lab.
#[derive(Debug)]
pub(super) struct Env {
    /// The rig started for the profile; `None` against a running lab.
    pub(super) rig: Option<Rig>,
    /// How the device reaches the lab.
    pub(super) network: Network,
    /// The device's trust store and pins.
    pub(super) trust: DeviceTrust,
    /// The machine profile.
    pub(super) profile: MachineProfile,
    /// Method 5's proxy: as printed, and its address.
    pub(super) command_line: Option<(String, SocketAddr)>,
    /// Where the analyzer ran, in words.
    pub(super) device: String,
}

impl Env {
    /// Starts the rig (or reads the running lab) for `options`.
    pub(super) async fn start(options: &AnalyzeOptions) -> Result<Self> {
        let profile = options.profile.clone();
        let (rig, network, trust, device) = match &options.lab {
            None => {
                let rig = Rig::start(
                    &profile,
                    RigOptions {
                        step_timeout: options.timeout,
                        ..RigOptions::default()
                    },
                )
                .await?;
                let mut network = rig.network();
                network.dials = None;
                let trust = rig.trust();
                let device = format!(
                    "the device ({}{})",
                    rig.device_ip(),
                    if profile.gateway.blocks_direct {
                        ", direct traffic blocked at the gateway"
                    } else {
                        ""
                    }
                );
                (Some(rig), network, trust, device)
            }
            Some(manifest) => {
                if let Some(p) = profile.referenced_proxies().first() {
                    bail!(
                        "the profile names {p}, but the lab proxies run only in a lab started here: \
                         drop --lab, or give the proxy with --proxy"
                    );
                }
                (
                    None,
                    network_of(manifest, options.timeout),
                    trust_of(manifest, profile.trust.inspection_ca)?,
                    "this host, against a running lab (no gateway rule)".to_owned(),
                )
            }
        };
        let mut env = Self {
            rig,
            network,
            trust,
            profile,
            command_line: None,
            device,
        };
        if let Some(text) = &options.command_line_proxy {
            env.command_line = Some(env.command_line_proxy(text).await?);
        }
        Ok(env)
    }

    /// Method 5's proxy: a lab proxy name, `http://host:port` or `host:port`.
    async fn command_line_proxy(&self, text: &str) -> Result<(String, SocketAddr)> {
        if let (Ok(proxy), Some(rig)) = (text.parse::<LabProxy>(), &self.rig) {
            return Ok((proxy.nominal(), rig.proxy(proxy).addr()));
        }
        let authority = text
            .strip_prefix("http://")
            .unwrap_or(text)
            .trim_end_matches('/');
        if authority.contains('/') || authority.starts_with("https://") {
            bail!("--proxy takes http://host:port, host:port or a lab proxy name, not {text:?}");
        }
        let addr = tokio::net::lookup_host(authority)
            .await
            .with_context(|| format!("cannot resolve the proxy {authority:?}"))?
            .next()
            .with_context(|| format!("the proxy {authority:?} has no address"))?;
        Ok((authority.to_owned(), addr))
    }

    /// The route of a step of the profile, or `None` when the profile does not set it.
    pub(super) async fn step(&self, route: RouteChoice, context: Context) -> Option<Route> {
        let rig = self.rig.as_ref()?;
        rig.route_for(Step { route, context })
            .await
            .ok()
            .map(|(route, _)| route)
    }

    /// Stops the rig, if one was started.
    pub(super) async fn shutdown(self) -> Result<()> {
        match self.rig {
            Some(rig) => rig.shutdown().await,
            None => Ok(()),
        }
    }
}

/// How the device reaches a running lab: its DNS, its ports in place of 443 and 80.
fn network_of(manifest: &Manifest, timeout: Duration) -> Network {
    let mut port_map = BTreeMap::new();
    for (catalog, bound) in [(443, manifest.https.port()), (80, manifest.http.port())] {
        if catalog != bound {
            port_map.insert(catalog, bound);
        }
    }
    Network {
        dns: manifest.dns,
        port_map,
        step_timeout: timeout,
        source_ip: None,
        dials: None,
    }
}

/// The device trust of a running lab: its bundle (and inspection CA), its pins.
fn trust_of(manifest: &Manifest, with_inspection_ca: bool) -> Result<DeviceTrust> {
    let mut roots = Vec::new();
    let mut files = vec![&manifest.trust_bundle];
    if with_inspection_ca {
        files.push(&manifest.inspection_ca);
    }
    for file in files {
        let pem =
            std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.push(cert.with_context(|| format!("{} is not PEM", file.display()))?);
        }
    }
    let mut pins = PinSet::new();
    for (i, pin) in manifest
        .pins
        .pinned
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .enumerate()
    {
        let pin = Pin::parse(pin).with_context(|| format!("bad pin {pin:?} in the manifest"))?;
        pins = pins.with(pin, format!("pinned key {}", i + 1));
    }
    Ok(DeviceTrust {
        roots,
        sensor_pins: pins,
    })
}
