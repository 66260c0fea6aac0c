//! Wiring the lab: bind every listener on loopback, start DNS and the mock cloud, write the
//! files a device or tool needs (trust bundle, inspection CA, hosts file), and describe it all
//! in a [`Manifest`].
//!
//! Ports default to ephemeral; the manifest says what was bound. Stopping the lab cancels one
//! root token and joins every service, so its ports are free when [`Lab::shutdown`] returns.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use mdelab_catalog::{Catalog, Connectivity, Region, Scheme};
use mdelab_certs::{Pki, PkiOptions, Profile};
use mdelab_mock_cloud::admin::{AdminConfig, AdminRunning};
use mdelab_mock_cloud::{CloudConfig, Listeners, ServiceConfig};
use mdelab_proxy::{AccessLog, Credentials, Destinations};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::manifest::{Manifest, ManifestPins};
use mdelab_sensor::{DeviceTrust, Network};

/// What to start and where.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Address every listener binds (loopback by default).
    pub bind: IpAddr,
    /// HTTPS port of the mock cloud (0 = ephemeral).
    pub https_port: u16,
    /// Plain HTTP port of the mock cloud (0 = ephemeral).
    pub http_port: u16,
    /// DNS port, UDP and TCP (0 = ephemeral).
    pub dns_port: u16,
    /// Port of the lab's plain CONNECT proxy (0 = ephemeral).
    pub connect_proxy_port: u16,
    /// Port of the lab's TLS-inspecting proxy (0 = ephemeral).
    pub inspect_proxy_port: u16,
    /// Address the lab's proxies bind, when not `bind` (a corporate proxy has its own address,
    /// which is what an analyst sees as `RemoteIP` of proxied connections).
    pub proxy_ip: Option<IpAddr>,
    /// Port of the admin API (0 = ephemeral).
    pub admin_port: u16,
    /// How the cloud's services behave (journal, capacities, holds, timeouts, seed).
    pub services: ServiceConfig,
    /// Fault rules (TOML, `[[fault]]` tables) loaded at start.
    pub faults_file: Option<PathBuf>,
    /// The region tools and the sensor default to (the lab serves every region).
    pub region: Region,
    /// Where the PKI and lab files persist; `None` = fresh PKI in a private temp folder.
    pub state_dir: Option<PathBuf>,
    /// How to build the PKI.
    pub pki: PkiOptions,
    /// Where the lab's own TLS endpoints (the mock cloud's HTTPS listener, both sides of every
    /// intercepting proxy) write their session secrets, for Wireshark; `None` (the default)
    /// writes nothing. See [`crate::keylog::KeyLogFile`].
    pub key_log: Option<Arc<dyn rustls::KeyLog>>,
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            https_port: 0,
            http_port: 0,
            dns_port: 0,
            connect_proxy_port: 0,
            inspect_proxy_port: 0,
            proxy_ip: None,
            admin_port: 0,
            services: ServiceConfig::default(),
            faults_file: None,
            region: Region::Us,
            state_dir: None,
            pki: PkiOptions::default(),
            key_log: None,
        }
    }
}

/// A running lab.
#[derive(Debug)]
pub struct Lab {
    pki: Pki,
    dns: mdelab_dns::Running,
    cloud: mdelab_mock_cloud::Running,
    admin: AdminRunning,
    admin_token: String,
    connect_proxy: ProxyInfo,
    inspect_proxy: ProxyInfo,
    /// Every proxy the lab runs (the two above and any added later), for shutdown.
    proxies: Vec<mdelab_proxy::connect::Running>,
    /// Where added proxies bind.
    proxy_ip: IpAddr,
    /// Where added intercepting proxies write their TLS secrets, if anywhere.
    key_log: Option<Arc<dyn rustls::KeyLog>>,
    region: Region,
    files: LabFiles,
    token: CancellationToken,
    /// Cancels every service when the lab is dropped without [`Lab::shutdown`].
    _stop_on_drop: tokio_util::sync::DropGuard,
}

/// A lab proxy's name, address and access log.
#[derive(Clone, Debug)]
pub struct ProxyInfo {
    /// The instance name (in its access records).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its access log: which connections crossed it, and what it did with their TLS.
    pub log: AccessLog,
}

/// A proxy to start.
#[derive(Clone, Debug)]
pub struct ProxySpec<'a> {
    /// Instance name (in its access records).
    pub name: &'a str,
    /// Port on the lab address (0 = ephemeral).
    pub port: u16,
    /// Plain CONNECT or inspecting.
    pub kind: ProxyKind,
    /// Basic credentials it demands (407 without), if any.
    pub credentials: Option<Credentials>,
}

/// How a lab proxy treats the TLS in its tunnels.
#[derive(Clone, Debug)]
pub enum ProxyKind {
    /// Plain CONNECT: bytes copied untouched; pins hold.
    Connect,
    /// TLS inspection with the lab's inspection CA, splicing the names on `bypass`.
    Inspect {
        /// Exact hosts and `*.suffix` patterns to splice instead of inspecting.
        bypass: Vec<String>,
    },
}

impl Lab {
    /// Builds the PKI, binds every listener, starts every service and writes the lab files.
    ///
    /// When a step fails, every service started before it is stopped (and its ports freed)
    /// before the error is returned.
    pub async fn start(options: &LabOptions) -> Result<Self> {
        let files = LabFiles::prepare(options.state_dir.as_deref())?;
        // The PKI always lives in the lab folder (private, keys 0600), so that a standalone
        // `mdelab proxy inspect --lab MANIFEST` can mint from the same inspection CA.
        let pki_dir = files.dir.join("pki");
        let pki = if options.state_dir.is_some() {
            Pki::load_or_generate(&pki_dir, &options.pki)
                .with_context(|| {
                    format!("failed to load or create the PKI in {}", pki_dir.display())
                })?
                .0
        } else {
            let pki = Pki::generate(&options.pki).context("failed to generate the lab PKI")?;
            pki.save(&pki_dir)
                .with_context(|| format!("failed to save the PKI in {}", pki_dir.display()))?;
            pki
        };
        let token = CancellationToken::new();
        let mut started = Started::default();
        let wired = start_services(options, &pki, &files, &token, &mut started).await;
        let (admin_token, connect_proxy, inspect_proxy) = match wired {
            Ok(wired) => wired,
            Err(err) => {
                started.shutdown().await;
                return Err(err);
            }
        };
        let Started {
            dns: Some(dns),
            cloud: Some(cloud),
            admin: Some(admin),
            proxies,
        } = started
        else {
            unreachable!("start_services returned Ok with every service started")
        };
        // Everything is bound and serving, the PKI minted: only now is the lab ready.
        cloud.state().set_ready(true);
        Ok(Self {
            pki,
            dns,
            cloud,
            admin,
            admin_token,
            connect_proxy,
            inspect_proxy,
            proxies,
            proxy_ip: options.proxy_ip.unwrap_or(options.bind),
            key_log: options.key_log.clone(),
            region: options.region,
            files,
            _stop_on_drop: token.clone().drop_guard(),
            token,
        })
    }

    /// Starts another proxy on the lab address, reaching every catalog host; it stops with
    /// the lab.
    pub async fn add_proxy(&mut self, spec: ProxySpec<'_>) -> Result<ProxyInfo> {
        let destinations = self.destinations();
        let shared = Shared {
            pki: &self.pki,
            destinations: &destinations,
            key_log: self.key_log.as_ref(),
            token: &self.token,
        };
        let (info, running) = spawn_proxy(spec, self.proxy_ip, &shared).await?;
        self.proxies.push(running);
        Ok(info)
    }

    /// Where every catalog name really is (what the lab proxies dial).
    pub fn destinations(&self) -> Destinations {
        catalog_destinations(self.https_addr(), self.http_addr())
    }

    /// The mock cloud's shared state (journal, stores, faults).
    pub fn cloud(&self) -> &mdelab_mock_cloud::State {
        self.cloud.state()
    }

    /// The admin API's address.
    pub fn admin_addr(&self) -> SocketAddr {
        reachable(self.admin.addr())
    }

    /// The admin API's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The lab's plain CONNECT proxy.
    pub fn connect_proxy(&self) -> &ProxyInfo {
        &self.connect_proxy
    }

    /// The lab's TLS-inspecting proxy (inspects everything; no bypass list).
    pub fn inspect_proxy(&self) -> &ProxyInfo {
        &self.inspect_proxy
    }

    /// The lab PKI.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The DNS server's address (UDP and TCP share it).
    pub fn dns_addr(&self) -> SocketAddr {
        reachable(self.dns.udp_addr())
    }

    /// The DNS server (journal, faults).
    pub fn dns(&self) -> &mdelab_dns::Running {
        &self.dns
    }

    /// The mock cloud's HTTPS address.
    pub fn https_addr(&self) -> SocketAddr {
        reachable(self.cloud.https_addr())
    }

    /// The mock cloud's HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        reachable(self.cloud.http_addr())
    }

    /// How an emulated device on this lab reaches it.
    pub fn network(&self) -> Network {
        let mut port_map = BTreeMap::new();
        for (catalog_port, bound) in [
            (443, self.https_addr().port()),
            (80, self.http_addr().port()),
        ] {
            if catalog_port != bound {
                port_map.insert(catalog_port, bound);
            }
        }
        Network {
            dns: self.dns_addr(),
            port_map,
            step_timeout: Duration::from_secs(5),
            source_ip: None,
            dials: None,
        }
    }

    /// A device trust store: the lab roots, plus the inspection CA when policy pushed it.
    pub fn device_trust(&self, trusts_inspection_ca: bool) -> DeviceTrust {
        let mut roots = self.pki.trust_anchors();
        if trusts_inspection_ca {
            roots.push(self.pki.inspection().authority().certificate().clone());
        }
        DeviceTrust {
            roots,
            sensor_pins: self.pki.pins(Profile::Pinned),
        }
    }

    /// The manifest describing this lab.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            version: 1,
            dns: self.dns_addr(),
            https: self.https_addr(),
            http: self.http_addr(),
            connect_proxy: Some(self.connect_proxy.addr),
            inspect_proxy: Some(self.inspect_proxy.addr),
            admin: Some(self.admin_addr()),
            admin_token: self.admin_token.clone(),
            trust_bundle: self.files.trust_bundle.clone(),
            inspection_ca: self.files.inspection_ca.clone(),
            hosts_file: self.files.hosts_file.clone(),
            pins: ManifestPins {
                pinned: self.pki.pins(Profile::Pinned).curl(),
                azure: self.pki.pins(Profile::Azure).curl(),
                inspection: self.pki.inspection().leaf_pin().curl(),
            },
            key_algorithm: self.pki.algorithm().name().to_owned(),
            state_dir: self.files.dir.clone(),
        }
    }

    /// Stops every service and waits for them; ports are free when this returns. Open
    /// exchanges get the connection shutdown deadline (`ConnectionLimits::shutdown_deadline`),
    /// then are cut.
    pub async fn shutdown(self) -> Result<()> {
        self.cloud.state().set_ready(false);
        self.token.cancel();
        // Side by side, so their shutdown deadlines (5 s by default) run concurrently and the
        // whole stop stays within one deadline whatever clients hold open.
        let proxies = async {
            for proxy in self.proxies {
                proxy.shutdown().await;
            }
        };
        let (admin, (), cloud) =
            tokio::join!(self.admin.shutdown(), proxies, self.cloud.shutdown());
        admin.context("the admin API did not stop cleanly")?;
        cloud.context("the mock cloud did not stop cleanly")?;
        self.dns
            .shutdown()
            .await
            .context("the lab DNS did not stop cleanly")?;
        // `files` is dropped here, which removes a temporary lab folder.
        Ok(())
    }

    /// The default region of this lab.
    pub fn region(&self) -> Region {
        self.region
    }

    /// A client of this lab's admin API.
    pub fn admin(&self) -> crate::admin_client::AdminClient {
        crate::admin_client::AdminClient::new(self.admin_addr(), self.admin_token.clone())
    }

    /// A sensor configuration for a device of the lab's region, onboarded with `connectivity`,
    /// going direct and trusting the lab roots (change `route`/`trust` to taste).
    pub fn agent_config(
        &self,
        device_id: &str,
        connectivity: Connectivity,
    ) -> mdelab_sensor::agent::AgentConfig {
        let blob = mdelab_sensor::agent::Onboarding::blob("mdelab-org", self.region, connectivity);
        let onboarding = mdelab_sensor::agent::Onboarding::parse(&blob)
            .unwrap_or_else(|_| unreachable!("the lab's own onboarding blob parses"));
        mdelab_sensor::agent::AgentConfig::new(
            device_id,
            onboarding,
            mdelab_sensor::Route::Direct,
            self.device_trust(false),
            self.network(),
        )
    }
}

/// Builds and starts a [`Lab`]; every setting has a default (loopback, ephemeral ports, fresh
/// ECDSA PKI, region US).
#[derive(Clone, Debug, Default)]
pub struct LabBuilder {
    options: LabOptions,
}

impl Lab {
    /// A builder with every default.
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }
}

impl LabBuilder {
    /// The region tools and the sensor default to.
    pub fn region(mut self, region: Region) -> Self {
        self.options.region = region;
        self
    }

    /// The address every listener binds.
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.options.bind = ip;
        self
    }

    /// Standard ports (443, 80, 53) instead of ephemeral ones; needs root or the bind capability.
    pub fn standard_ports(mut self) -> Self {
        self.options.https_port = 443;
        self.options.http_port = 80;
        self.options.dns_port = 53;
        self
    }

    /// Keep the PKI and lab files in `dir` (reused across runs).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.state_dir = Some(dir.into());
        self
    }

    /// The PKI's key algorithm.
    pub fn key_algorithm(mut self, algorithm: mdelab_certs::KeyAlgorithm) -> Self {
        self.options.pki.algorithm = algorithm;
        self
    }

    /// Service behaviour (journal, capacities, holds, timeouts, seed).
    pub fn services(mut self, services: ServiceConfig) -> Self {
        self.options.services = services;
        self
    }

    /// Write the TLS secrets of the lab's own endpoints (mock cloud, inspecting proxies) to
    /// `key_log`, e.g. a [`crate::keylog::KeyLogFile`], so a capture decrypts in Wireshark.
    pub fn key_log(mut self, key_log: Arc<dyn rustls::KeyLog>) -> Self {
        self.options.key_log = Some(key_log);
        self
    }

    /// Every option at once.
    pub fn options(mut self, options: LabOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts the lab; it is ready (and `/_lab/ready` true) when this returns.
    pub async fn start(self) -> Result<Lab> {
        Lab::start(&self.options).await
    }
}

/// The services started so far, in start order. Each stops when dropped; [`Started::shutdown`]
/// also waits until their ports are free. [`Lab::start`] starts into one, so that a failure
/// part-way stops what was already running.
#[derive(Debug, Default)]
struct Started {
    dns: Option<mdelab_dns::Running>,
    cloud: Option<mdelab_mock_cloud::Running>,
    admin: Option<AdminRunning>,
    proxies: Vec<mdelab_proxy::connect::Running>,
}

impl Started {
    /// Stops every service started, last started first, and waits for each. Errors are logged:
    /// this runs on a failure path that already has an error to report.
    async fn shutdown(self) {
        for proxy in self.proxies.into_iter().rev() {
            proxy.shutdown().await;
        }
        if let Some(admin) = self.admin
            && let Err(err) = admin.shutdown().await
        {
            tracing::warn!(error = %err, "the admin API did not stop cleanly");
        }
        if let Some(cloud) = self.cloud
            && let Err(err) = cloud.shutdown().await
        {
            tracing::warn!(error = %err, "the mock cloud did not stop cleanly");
        }
        if let Some(dns) = self.dns
            && let Err(err) = dns.shutdown().await
        {
            tracing::warn!(error = %err, "the lab DNS did not stop cleanly");
        }
    }
}

/// Binds and starts DNS, the mock cloud, the admin API and the two lab proxies, each into
/// `started` as soon as it runs, and writes the lab files. Returns the admin token and the
/// proxies' descriptions.
async fn start_services(
    options: &LabOptions,
    pki: &Pki,
    files: &LabFiles,
    token: &CancellationToken,
    started: &mut Started,
) -> Result<(String, ProxyInfo, ProxyInfo)> {
    let catalog = Catalog::mde();
    let (udp, tcp) = bind_dns(options.bind, options.dns_port).await?;
    let mut table = mdelab_dns::NameTable::new();
    let answer = reachable_ip(options.bind);
    for name in catalog.dns_names() {
        table.insert(&name, vec![answer]);
    }
    started.dns = Some(
        mdelab_dns::spawn(udp, tcp, mdelab_dns::Config::new(table), token)
            .context("failed to start the lab DNS")?,
    );

    let listeners = Listeners {
        https: bind_tcp(options.bind, options.https_port, "mock cloud HTTPS").await?,
        http: bind_tcp(options.bind, options.http_port, "mock cloud HTTP").await?,
    };
    let cloud_config = CloudConfig {
        services: options.services.clone(),
        key_log: options.key_log.clone(),
        ..CloudConfig::new(pki.clone())
    };
    let cloud = started.cloud.insert(
        mdelab_mock_cloud::spawn(listeners, cloud_config, token)
            .context("failed to start the mock cloud")?,
    );
    if let Some(path) = &options.faults_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the fault file {}", path.display()))?;
        cloud
            .state()
            .faults()
            .load_toml(&text)
            .with_context(|| format!("invalid fault file {}", path.display()))?;
    }
    let admin_token = hex::encode(rand::random::<[u8; 24]>());
    let admin_config = AdminConfig {
        token: admin_token.clone(),
        trust_bundle_pem: pki.trust_bundle_pem(),
        inspection_ca_pem: pki.inspection().authority().certificate_pem().to_owned(),
    };
    let admin_listener = bind_tcp(options.bind, options.admin_port, "admin API").await?;
    started.admin = Some(
        mdelab_mock_cloud::admin::spawn(admin_listener, cloud.state().clone(), admin_config, token)
            .context("failed to start the admin API")?,
    );

    files.write(pki, catalog, answer)?;
    let destinations =
        catalog_destinations(reachable(cloud.https_addr()), reachable(cloud.http_addr()));
    let proxy_ip = options.proxy_ip.unwrap_or(options.bind);
    let shared = Shared {
        pki,
        destinations: &destinations,
        key_log: options.key_log.as_ref(),
        token,
    };
    let mut proxy = async |name: &'static str, port: u16, kind: ProxyKind| -> Result<ProxyInfo> {
        let spec = ProxySpec {
            name,
            port,
            kind,
            credentials: None,
        };
        let (info, running) = spawn_proxy(spec, proxy_ip, &shared).await?;
        started.proxies.push(running);
        Ok(info)
    };
    let connect_proxy = proxy("connect", options.connect_proxy_port, ProxyKind::Connect).await?;
    let inspect = ProxyKind::Inspect { bypass: Vec::new() };
    let inspect_proxy = proxy("inspect", options.inspect_proxy_port, inspect).await?;
    Ok((admin_token, connect_proxy, inspect_proxy))
}

/// What every lab proxy is started with.
struct Shared<'a> {
    pki: &'a Pki,
    /// Where every catalog name really is.
    destinations: &'a Destinations,
    /// Where intercepting proxies write their TLS secrets, if anywhere.
    key_log: Option<&'a Arc<dyn rustls::KeyLog>>,
    token: &'a CancellationToken,
}

async fn spawn_proxy(
    spec: ProxySpec<'_>,
    ip: IpAddr,
    shared: &Shared<'_>,
) -> Result<(ProxyInfo, mdelab_proxy::connect::Running)> {
    let Shared {
        pki,
        destinations,
        key_log,
        token,
    } = *shared;
    let name = spec.name;
    let listener = bind_tcp(ip, spec.port, &format!("{name} proxy")).await?;
    let running = match spec.kind {
        ProxyKind::Connect => {
            let mut config = mdelab_proxy::connect::ConnectConfig::new(name, destinations.clone());
            config.credentials = spec.credentials;
            mdelab_proxy::connect::spawn(listener, config, token)
        }
        ProxyKind::Inspect { bypass } => {
            let mut config = mdelab_proxy::intercept::InterceptConfig::new(
                name,
                destinations.clone(),
                pki.inspection().clone(),
                pki.trust_anchors(),
            );
            config.credentials = spec.credentials;
            config.bypass = bypass;
            config.key_log = key_log.cloned();
            mdelab_proxy::intercept::spawn(listener, config, token)
        }
    }
    .with_context(|| format!("failed to start the {name} proxy"))?;
    let info = ProxyInfo {
        name: name.to_owned(),
        addr: reachable(running.addr()),
        log: running.log(),
    };
    Ok((info, running))
}

/// Where every catalog name really is: HTTPS hosts and families on the mock cloud's TLS
/// listener, port-80 hosts on its HTTP listener. Nothing else is reachable through a lab proxy.
pub fn catalog_destinations(https: SocketAddr, http: SocketAddr) -> Destinations {
    let catalog = Catalog::mde();
    let mut destinations = Destinations::new();
    for host in catalog.https_hosts() {
        destinations.add(host, 443, https);
    }
    for family in catalog.families() {
        destinations.add(family.pattern, 443, https);
    }
    for endpoint in catalog
        .endpoints()
        .iter()
        .filter(|e| e.scheme == Scheme::Http)
    {
        destinations.add(&endpoint.host, endpoint.port, http);
    }
    destinations
}

/// The address the lab names and dials for listeners bound on `ip`: `ip` itself, or loopback
/// when `ip` is unspecified (`0.0.0.0` or `::`, every interface). The lab cannot know which of
/// the machine's addresses a remote client reaches it at, and nothing of the lab dials an
/// unspecified address, so its DNS answers, hosts file, manifest and proxies' destinations
/// then name loopback.
pub fn reachable_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// `addr` with its IP made [`reachable_ip`].
fn reachable(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(reachable_ip(addr.ip()), addr.port())
}

/// Binds a TCP listener, naming the service and the remedy on failure.
pub async fn bind_tcp(ip: IpAddr, port: u16, what: &str) -> Result<TcpListener> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr)
        .await
        .with_context(|| bind_advice(what, addr))
}

fn bind_advice(what: &str, addr: SocketAddr) -> String {
    let mut msg = format!("failed to bind the {what} listener on {addr}");
    if addr.port() != 0 && addr.port() < 1024 {
        msg.push_str(" (ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, or `setcap cap_net_bind_service=+ep` on the binary)");
    } else {
        msg.push_str(" (is the port already in use? pass another port, or 0 for an ephemeral one)");
    }
    msg
}

/// Binds UDP and TCP on the same port; with port 0, retries until both get the same one.
async fn bind_dns(ip: IpAddr, port: u16) -> Result<(UdpSocket, TcpListener)> {
    const ATTEMPTS: usize = 16;
    for _ in 0..ATTEMPTS {
        let udp_addr = SocketAddr::new(ip, port);
        let udp = UdpSocket::bind(udp_addr)
            .await
            .with_context(|| bind_advice("DNS (UDP)", udp_addr))?;
        let bound = udp
            .local_addr()
            .context("failed to read the DNS UDP address")?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // An ephemeral UDP port may be taken on TCP; try another.
            Err(_) if port == 0 => continue,
            Err(err) => return Err(err).with_context(|| bind_advice("DNS (TCP)", bound)),
        }
    }
    anyhow::bail!(
        "failed to find a port free for DNS on both UDP and TCP after {ATTEMPTS} attempts"
    )
}

/// The files a device or tool needs, in the state directory or a private temp folder.
#[derive(Debug)]
struct LabFiles {
    dir: PathBuf,
    /// Whether `dir` is ours to delete at shutdown.
    temporary: bool,
    trust_bundle: PathBuf,
    inspection_ca: PathBuf,
    hosts_file: PathBuf,
}

impl LabFiles {
    fn prepare(state_dir: Option<&Path>) -> Result<Self> {
        let (dir, temporary) = match state_dir {
            Some(dir) => (dir.to_owned(), false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                (
                    std::env::temp_dir().join(format!("mdelab-{}-{nanos:x}", std::process::id())),
                    true,
                )
            }
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let dir = std::path::absolute(&dir)
            .with_context(|| format!("failed to resolve {}", dir.display()))?;
        Ok(Self {
            trust_bundle: dir.join("trust-bundle.pem"),
            inspection_ca: dir.join("inspection-ca.pem"),
            hosts_file: dir.join("hosts"),
            dir,
            temporary,
        })
    }

    fn write(&self, pki: &Pki, catalog: &Catalog, ip: IpAddr) -> Result<()> {
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text)
                .with_context(|| format!("failed to write {}", path.display()))
        };
        write(&self.trust_bundle, &pki.trust_bundle_pem())?;
        write(
            &self.inspection_ca,
            pki.inspection().authority().certificate_pem(),
        )?;
        write(&self.hosts_file, &hosts_file(catalog, ip))
    }

    fn cleanup(&self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for LabFiles {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// An /etc/hosts-style file mapping every exact catalog host to the lab address.
pub fn hosts_file(catalog: &Catalog, ip: IpAddr) -> String {
    let mut out = String::from(
        "# mdelab: every exact catalog host -> the lab address.\n\
         # Wildcard families (e.g. *.blob.core.windows.net accounts) need the lab DNS instead.\n",
    );
    // `dns_names` is sorted and unique already.
    for host in catalog
        .dns_names()
        .into_iter()
        .filter(|n| !n.starts_with('*'))
    {
        out.push_str(&format!("{ip} {host}\n"));
    }
    out
}
