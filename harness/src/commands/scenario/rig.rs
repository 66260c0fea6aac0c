//! The rig: a lab brought up for one machine profile, with the write-up's topology around the
//! emulated device.
//!
//! - The three proxies PROX01/02/03, each plain or inspecting, with or without authentication,
//!   or unreachable (a bound port nobody listens on: the device's connection is refused).
//! - The gateway rule: the mock cloud drops every connection whose peer is the device's source
//!   address ([`DEVICE_IP`]), so a direct attempt times out as on a blocked route, while the
//!   proxies (which dial from 127.0.0.1) still get through.
//! - A WPAD server answering the profile's PAC (`FindProxyForURL` returning one constant;
//!   the `wpad` module).
//!
//! [`Rig::send`] makes one request of the device along one [`Step`] and reports what the
//! proxies' own access logs say about it: every TCP connection the device opened is looked up,
//! by its source port, in the log of the proxy it reached.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result};
use mdelab_catalog::Catalog;
use mdelab_proxy::{AccessRecord, ClientHandshake, Credentials, TlsHandling};
use serde::Serialize;
use tokio::net::TcpSocket;
use tokio_util::sync::CancellationToken;

use super::profile::{LAB_PASSWORD, LAB_USER, LabProxy, MachineProfile};
use super::route::{Context, RouteChoice, Step};
use super::wpad::Wpad;
use crate::lab::{Lab, LabOptions, ProxyInfo, ProxyKind, ProxySpec};
use mdelab_sensor::{
    self as sensor, ClientKind, DeviceTrust, DialTrace, HttpRequest, HttpResponse, Network, Origin,
    Outcome, ProxyRoute, Route, Verdict,
};

/// The emulated device's source address: every socket it opens binds it, and the gateway rule
/// blocks it.
pub const DEVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 77));

/// The device id the emulated sensor sends.
pub const DEVICE_ID: &str = "mdelab-ws01";

/// The tenant the device is onboarded to.
pub const ORG_ID: &str = "mdelab-org";

/// Default time the device allows each step (connect, handshake, response): short, so a
/// blocked route costs little; every real exchange on loopback takes a few milliseconds.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_millis(500);

/// The address the rig's proxies listen on.
pub const PROXY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));

/// How long to wait for a proxy's access record once the device's connection has ended.
const RECORD_WAIT: Duration = Duration::from_secs(3);

/// How the rig runs.
#[derive(Clone, Debug)]
pub struct RigOptions {
    /// Time the device allows each step.
    pub step_timeout: Duration,
    /// The device's source address.
    pub device_ip: IpAddr,
    /// The proxies' address: apart from the lab's, as a corporate proxy's would be, so an
    /// analyst can tell connections to the proxy from connections to real targets.
    pub proxy_ip: IpAddr,
}

impl Default for RigOptions {
    fn default() -> Self {
        Self {
            step_timeout: DEFAULT_STEP_TIMEOUT,
            device_ip: DEVICE_IP,
            proxy_ip: PROXY_IP,
        }
    }
}

/// One lab proxy as deployed.
#[derive(Debug)]
pub enum Deployed {
    /// Serving, with its access log.
    Running(ProxyInfo),
    /// A port bound but not listening: connections to it are refused.
    Unreachable {
        /// Its address.
        addr: SocketAddr,
        /// Holds the port so nobody else takes it.
        _socket: TcpSocket,
    },
}

impl Deployed {
    /// Where the device reaches it.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Self::Running(info) => info.addr,
            Self::Unreachable { addr, .. } => *addr,
        }
    }
}

/// A lab with the profile's topology around the device.
#[derive(Debug)]
pub struct Rig {
    lab: Lab,
    profile: MachineProfile,
    proxies: BTreeMap<LabProxy, Deployed>,
    wpad: Option<Wpad>,
    options: RigOptions,
    token: CancellationToken,
}

/// What one proxy's access record says about a connection of the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The proxy, by the name in its own access record.
    pub proxy: String,
    /// The status it answered (200 for a tunnel; 407; 403…).
    pub status: u16,
    /// What became of the request, as the proxy logged it.
    pub outcome: String,
    /// What it did with the TLS, in words, when it inspected or spliced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

impl Hop {
    /// Whether the proxy's own access log has the record (a hop is only evidence if so).
    pub fn logged(&self) -> bool {
        !(self.status == 0 && self.outcome == "no access record")
    }

    /// `PROX01`, `PROX01 (407)`, `PROX03 (inspected)`…
    pub fn label(&self) -> String {
        if !self.logged() {
            format!("{} (no access record)", self.proxy)
        } else if self.status == 407 {
            format!("{} (407)", self.proxy)
        } else if self
            .tls
            .as_deref()
            .is_some_and(|t| t.starts_with("inspected"))
        {
            format!("{} (inspected)", self.proxy)
        } else if self.status != 200 && self.status != 0 && self.outcome != "completed" {
            format!("{} ({})", self.proxy, self.status)
        } else {
            self.proxy.clone()
        }
    }
}

/// One request of the device along one step.
#[derive(Debug)]
pub struct Attempt {
    /// The step followed.
    pub step: Step,
    /// What came back, or why not.
    pub result: Result<HttpResponse, Outcome>,
    /// What the proxies' access logs say about the device's connections, in order.
    pub hops: Vec<Hop>,
    /// The step named a proxy and the device could not open a connection to it.
    pub proxy_unreachable: bool,
    /// How the route was resolved, when that needs saying (the PAC answer).
    pub note: Option<String>,
}

impl Rig {
    /// Starts a lab for `profile`: the three proxies, the gateway rule, the WPAD server.
    pub async fn start(profile: &MachineProfile, options: RigOptions) -> Result<Self> {
        let lab_options = LabOptions {
            region: profile.onboarding.region,
            proxy_ip: Some(options.proxy_ip),
            ..LabOptions::default()
        };
        let mut lab = Lab::start(&lab_options).await?;
        let token = CancellationToken::new();
        let mut proxies = BTreeMap::new();
        for proxy in LabProxy::ALL {
            let settings = profile.proxies.get(proxy);
            let deployed = if settings.unreachable {
                let socket = TcpSocket::new_v4().context("failed to create a socket")?;
                socket
                    .bind(SocketAddr::new(options.proxy_ip, 0))
                    .context("failed to bind the unreachable proxy's port")?;
                let addr = socket
                    .local_addr()
                    .context("failed to read the unreachable proxy's port")?;
                Deployed::Unreachable {
                    addr,
                    _socket: socket,
                }
            } else {
                let kind = if settings.inspects_tls {
                    let mut bypass = settings.bypass.clone();
                    if settings.bypass_mde {
                        bypass.extend(Catalog::mde().inspection_bypass());
                    }
                    ProxyKind::Inspect { bypass }
                } else {
                    ProxyKind::Connect
                };
                let credentials = settings
                    .requires_auth
                    .then(|| Credentials::new(LAB_USER, LAB_PASSWORD));
                let info = lab
                    .add_proxy(ProxySpec {
                        name: proxy.name(),
                        port: 0,
                        kind,
                        credentials,
                    })
                    .await?;
                Deployed::Running(info)
            };
            proxies.insert(proxy, deployed);
        }
        if profile.gateway.blocks_direct {
            lab.cloud().block_peer(options.device_ip);
        }
        let wpad = match profile.wpad_answer() {
            Some(answer) => Some(Wpad::start(&answer, &proxies, &token).await?),
            None => None,
        };
        Ok(Self {
            lab,
            profile: profile.clone(),
            proxies,
            wpad,
            options,
            token,
        })
    }

    /// The lab.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The profile the rig was built for.
    pub fn profile(&self) -> &MachineProfile {
        &self.profile
    }

    /// One lab proxy.
    pub fn proxy(&self, proxy: LabProxy) -> &Deployed {
        &self.proxies[&proxy]
    }

    /// The real address of every lab proxy, for JSON output.
    pub fn proxy_addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.proxies
            .iter()
            .map(|(p, d)| (p.name().to_owned(), d.addr()))
            .collect()
    }

    /// The lab proxy listening at `addr`.
    pub fn proxy_at(&self, addr: SocketAddr) -> Option<LabProxy> {
        self.proxies
            .iter()
            .find(|(_, d)| d.addr() == addr)
            .map(|(p, _)| *p)
    }

    /// How many times the device fetched the PAC file.
    pub fn wpad_fetches(&self) -> u64 {
        self.wpad
            .as_ref()
            .map_or(0, |w| w.fetches.load(Ordering::Relaxed))
    }

    /// The device's network: the lab DNS, its source address, the short step timeout, and a
    /// fresh dial trace.
    pub fn network(&self) -> Network {
        Network {
            step_timeout: self.options.step_timeout,
            source_ip: Some(self.options.device_ip),
            dials: Some(DialTrace::new()),
            ..self.lab.network()
        }
    }

    /// The device's trust store, as the profile says.
    pub fn trust(&self) -> DeviceTrust {
        self.lab.device_trust(self.profile.trust.inspection_ca)
    }

    /// The device's source address.
    pub fn device_ip(&self) -> IpAddr {
        self.options.device_ip
    }

    /// How long the device allows each step.
    pub fn step_timeout(&self) -> Duration {
        self.options.step_timeout
    }

    /// The concrete route for a step; `Err` says why there is none (a setting the profile
    /// lacks). The note tells how WPAD resolved.
    pub async fn route_for(&self, step: Step) -> Result<(Route, Option<String>), String> {
        let credentials = (step.context == Context::User && self.profile.user.has_credentials)
            .then(|| (LAB_USER.to_owned(), LAB_PASSWORD.to_owned()));
        let via = |proxy: Option<LabProxy>, setting: &str| {
            let proxy = proxy.ok_or_else(|| format!("the profile sets no {setting}"))?;
            Ok::<_, String>(Route::Proxy(ProxyRoute {
                addr: self.proxy(proxy).addr(),
                credentials: credentials.clone(),
            }))
        };
        match step.route {
            RouteChoice::Direct => Ok((Route::Direct, None)),
            RouteChoice::Static => Ok((
                via(
                    self.profile.static_proxy.telemetry_proxy_server,
                    "static proxy",
                )?,
                None,
            )),
            RouteChoice::WinHttp => Ok((via(self.profile.winhttp.proxy, "WinHTTP proxy")?, None)),
            RouteChoice::WinInet => Ok((via(self.profile.wininet.proxy, "WinINet proxy")?, None)),
            RouteChoice::Wpad => match &self.wpad {
                None => Ok((
                    Route::Direct,
                    Some("WPAD found no PAC file: direct".to_owned()),
                )),
                Some(wpad) => match wpad.fetch(&self.network()).await {
                    Ok(Some(addr)) => {
                        let name = self
                            .proxy_at(addr)
                            .map_or_else(|| "a proxy outside the lab".to_owned(), |p| p.nominal());
                        Ok((
                            Route::Proxy(ProxyRoute {
                                addr,
                                credentials: credentials.clone(),
                            }),
                            Some(format!("the PAC file answered PROXY {name}")),
                        ))
                    }
                    Ok(None) => Ok((
                        Route::Direct,
                        Some("the PAC file answered DIRECT".to_owned()),
                    )),
                    Err(err) => Ok((Route::Direct, Some(format!("WPAD failed ({err}): direct")))),
                },
            },
        }
    }

    /// Sends one request of the device to `origin` along `step`, as `client`, and reads the
    /// access logs of the proxies it reached.
    pub async fn send(
        &self,
        step: Step,
        origin: &Origin,
        request: &HttpRequest,
        client: ClientKind,
    ) -> Attempt {
        let (route, note) = match self.route_for(step).await {
            Ok(pair) => pair,
            Err(detail) => {
                return Attempt {
                    step,
                    result: Err(Outcome::new(
                        Verdict::Other {
                            detail: detail.clone(),
                        },
                        detail,
                        None,
                    )),
                    hops: Vec::new(),
                    proxy_unreachable: false,
                    note: None,
                };
            }
        };
        let network = self.network();
        let trace = network.dials.clone().unwrap_or_default();
        let result = sensor::send(origin, client, &route, &self.trust(), &network, request).await;
        let dials = trace.dials();
        let proxy_unreachable = match &route {
            Route::Proxy(p) => !dials.iter().any(|d| d.peer == p.addr),
            Route::Direct => false,
        };
        let mut hops = Vec::new();
        for dial in dials {
            let Some(Deployed::Running(info)) = self.proxy_at(dial.peer).map(|p| self.proxy(p))
            else {
                continue;
            };
            let record = info
                .log
                .wait_for(|r| r.client == dial.local, RECORD_WAIT)
                .await;
            hops.push(match record {
                Some(record) => hop_of(&record),
                None => Hop {
                    proxy: info.name.clone(),
                    status: 0,
                    outcome: "no access record".into(),
                    tls: None,
                },
            });
        }
        Attempt {
            step,
            result,
            hops,
            proxy_unreachable,
            note,
        }
    }

    /// Stops everything; ports are free when this returns.
    pub async fn shutdown(self) -> Result<()> {
        self.token.cancel();
        if let Some(wpad) = self.wpad {
            let _ = wpad.task.await;
        }
        self.lab.shutdown().await
    }
}

/// What a proxy's record says, as a hop.
fn hop_of(record: &AccessRecord) -> Hop {
    let tls = record.tls.as_ref().map(|tls| match tls {
        TlsHandling::Spliced { .. } => "spliced (on the bypass list)".to_owned(),
        TlsHandling::Inspected { client, .. } => match client {
            ClientHandshake::Completed => {
                "inspected: the client accepted the minted certificate".into()
            }
            ClientHandshake::RejectedWithAlert { alert } => {
                format!("inspected: the client refused the minted certificate (alert {alert})")
            }
            ClientHandshake::ClosedDuringHandshake => {
                "inspected: the client hung up during the handshake".into()
            }
            ClientHandshake::Failed { detail } => format!("inspected: handshake failed ({detail})"),
        },
    });
    Hop {
        proxy: record.proxy.clone(),
        status: record.status,
        outcome: record.outcome.as_str().to_owned(),
        tls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_labels_say_what_the_proxy_did() {
        let hop = |status, outcome: &str, tls: Option<&str>| Hop {
            proxy: "PROX01".into(),
            status,
            outcome: outcome.into(),
            tls: tls.map(str::to_owned),
        };
        assert_eq!(hop(200, "completed", None).label(), "PROX01");
        assert_eq!(hop(407, "auth_required", None).label(), "PROX01 (407)");
        assert_eq!(
            hop(200, "client_tls_failed", Some("inspected: x")).label(),
            "PROX01 (inspected)"
        );
        assert_eq!(hop(403, "denied", None).label(), "PROX01 (403)");
        assert_eq!(hop(404, "completed", None).label(), "PROX01");
    }
}
