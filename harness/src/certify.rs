//! `mdelab certify`: the MDE connectivity suite, run through a vendor's proxy against the lab.
//!
//! The proxy under test must resolve the catalog names to the lab (the lab's hosts file, or the
//! lab DNS) and reach it on the standard ports (443 and 80). The emulated sensor then talks to
//! the lab's cloud *through that proxy*, as SYSTEM (no proxy credentials), and every family of
//! checks becomes one section of a [`Report`]:
//!
//! 1. **Reachability**: every HTTPS catalog URL of the region answers its probe through CONNECT.
//! 2. **TLS inspection**: every MDE host serves the lab's chain (so the pins hold); otherwise the
//!    check names the issuer that replaced it.
//! 3. **CnC long poll**: one poll per gateway held `--hold` seconds survives the proxy.
//! 4. **Sample upload**: a `--upload-mib` block blob arrives whole (SHA-256 compared in the cloud).
//! 5. **Cyber data**: `--posts` 1DS posts are accepted and the cloud holds exactly those events.
//! 6. **CRL/CTL**: the plain-HTTP certificate-revocation fetches pass (absolute-form requests).
//! 7. **Denial** (`--check-deny`): a non-MDE destination is refused (no open relay).
//!
//! The report's last line is the verdict; `run` returns `Ok(true)` only when the proxy is fit.
//!
//! The cloud's side of the story (stored blobs and events) is read through the admin API, for an
//! in-process lab and for a running `mdelab up` (`--lab MANIFEST`) alike: one code path.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use mdelab_catalog::{Catalog, Connectivity, Region, Scheme, Service};
use mdelab_certs::pki::{AZURE_ISSUING_NAME, PINNED_ISSUING_NAME, PINNED_ROOT_NAME};
use mdelab_certs::{Pin, PinSet, Profile};
use mdelab_mock_cloud::ServiceConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::admin_client::AdminClient;
use crate::lab::{Lab, LabOptions};
use crate::manifest::Manifest;
use crate::report::{Check, Format, Report, Section};
use mdelab_sensor::agent::Onboarding;
use mdelab_sensor::{
    self as sensor, ClientKind, DeviceTrust, Network, Origin, Outcome, ProxyRoute, Route, Target,
    Verdict, wire,
};

/// One mebibyte.
const MIB: u64 = 1024 * 1024;
/// JSON lines in each 1DS post.
const LINES_PER_POST: usize = 3;
/// Probes in flight at once during the reachability sweep (a sensor opens several connections
/// at once too; more would only measure the proxy's accept queue).
const PARALLEL_PROBES: usize = 8;
/// Time allowed for each step through the proxy (CONNECT answer, TLS handshake, response).
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Container the sample uploads go to.
const UPLOAD_CONTAINER: &str = "mdelab-certify";
/// The tenant the 1DS posts name.
const TENANT: &str = "mdelab-certify";

/// Which connectivity models to certify for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelChoice {
    /// Standard connectivity only (winatp-gw-*, *-v20.events.data…, blob accounts).
    Standard,
    /// Streamlined connectivity only (*.endpoint.security.microsoft.com).
    Streamlined,
    /// Both models (a proxy usually serves devices of both).
    #[default]
    Both,
}

impl ModelChoice {
    /// "standard", "streamlined" or "both".
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Streamlined => "streamlined",
            Self::Both => "both",
        }
    }

    /// The models chosen.
    pub fn models(self) -> Vec<Connectivity> {
        match self {
            Self::Standard => vec![Connectivity::Standard],
            Self::Streamlined => vec![Connectivity::Streamlined],
            Self::Both => Connectivity::ALL.to_vec(),
        }
    }
}

/// Options of `mdelab certify`.
#[derive(Clone, Debug, clap::Args)]
pub struct CertifyArgs {
    /// The proxy to certify, `http://host:port` (the port is required).
    #[arg(long, value_name = "URL")]
    pub proxy: String,
    /// Credentials a logged-on user has for the proxy (`USER:PASSWORD`). The suite still runs
    /// without them, as the sensor (SYSTEM) does; the report only notes whether the proxy
    /// accepts them.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub proxy_user: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The tenant's region.
    #[arg(long, default_value = "us")]
    pub region: Region,
    /// Which connectivity models to certify for.
    #[arg(long, value_enum, default_value_t)]
    pub connectivity: ModelChoice,
    /// Seconds the CnC long poll is held (a proxy that cuts idle tunnels sooner fails).
    #[arg(long, value_name = "SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub hold: u64,
    /// Size of the sample upload, in MiB.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub upload_mib: u64,
    /// Number of 1DS posts per connectivity model.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub posts: u64,
    /// Also check that the proxy refuses a destination outside MDE (it must not be an open relay).
    #[arg(long)]
    pub check_deny: bool,
    /// The non-MDE destination `--check-deny` asks for.
    #[arg(long, value_name = "HOST:PORT", default_value = "www.example.org:443")]
    pub deny_target: String,
    /// Manifest of a running `mdelab up` to certify against (it must serve on ports 443 and 80
    /// of an address the proxy resolves the catalog names to). Without it, a lab is started
    /// here on the standard ports of `--bind`.
    #[arg(long, value_name = "MANIFEST")]
    pub lab: Option<PathBuf>,
    /// Address of the lab started here (HTTPS 443, HTTP 80, DNS `--dns-port`; needs root).
    #[arg(long, default_value = "127.0.0.2", conflicts_with = "lab")]
    pub bind: IpAddr,
    /// DNS port of the lab started here (UDP and TCP; 0 = ephemeral).
    #[arg(long, default_value_t = 53, conflicts_with = "lab")]
    pub dns_port: u16,
    /// Keep the lab's PKI and files (hosts file included) here, reused across runs.
    #[arg(long, value_name = "DIR", conflicts_with = "lab")]
    pub state_dir: Option<PathBuf>,
}

/// `CertifyArgs` parsed alone (for tools and tests that call [`certify`] directly).
#[derive(clap::Parser)]
#[command(name = "certify", no_binary_name = true)]
struct Standalone {
    #[command(flatten)]
    args: CertifyArgs,
}

impl CertifyArgs {
    /// Parses the options as `mdelab certify` would, e.g.
    /// `["--proxy", "http://127.0.0.1:3128", "--hold", "2"]`; every default applies.
    pub fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        <Standalone as clap::Parser>::try_parse_from(args).map(|s| s.args)
    }
}

/// Runs the certification and prints the report; `Ok(true)` when the proxy is fit for MDE.
pub async fn run(args: CertifyArgs) -> Result<bool> {
    let report = certify(&args).await?;
    print(&report.render(args.format)?)?;
    Ok(report.all_as_expected())
}

/// Runs the certification and returns the report (its last summary line is the verdict).
///
/// Progress and the lab's coordinates (hosts file, DNS) go to stderr.
pub async fn certify(args: &CertifyArgs) -> Result<Report> {
    let proxy = resolve_proxy(&args.proxy).await?;
    let proxy_user = args.proxy_user.as_deref().map(parse_user).transpose()?;
    let (lab, manifest) = match &args.lab {
        Some(path) => (None, Manifest::read(path)?),
        None => {
            let lab = Lab::start(&lab_options(args)).await.context(
                "failed to start the lab on standard ports (give --lab MANIFEST to use a running one)",
            )?;
            let manifest = lab.manifest();
            (Some(lab), manifest)
        }
    };
    announce(args, &manifest, lab.is_some());
    let suite = Suite::new(args, proxy, proxy_user, &manifest);
    let result = match suite {
        Ok(suite) => suite.run().await,
        Err(err) => Err(err),
    };
    if let Some(lab) = lab {
        lab.shutdown().await?;
    }
    result
}

/// The lab started by `certify` itself: standard ports, and the cloud's limits raised to what
/// the suite asks of it (hold, upload size).
fn lab_options(args: &CertifyArgs) -> LabOptions {
    let upload = args.upload_mib * MIB;
    let models = args.connectivity.models().len() as u64;
    let defaults = ServiceConfig::default();
    LabOptions {
        bind: args.bind,
        https_port: 443,
        http_port: 80,
        dns_port: args.dns_port,
        services: ServiceConfig {
            cnc_max_hold: defaults.cnc_max_hold.max(Duration::from_secs(args.hold)),
            blob_max_bytes: defaults.blob_max_bytes.max(upload),
            // Room for one upload per model, so none evicts the other before it is compared.
            blob_capacity_bytes: defaults.blob_capacity_bytes.max(upload * models + MIB),
            ..defaults
        },
        region: args.region,
        state_dir: args.state_dir.clone(),
        ..LabOptions::default()
    }
}

/// Tells the operator where the lab is and how the proxy must find it (stderr: stdout is the
/// report, which may be JSON or XML).
fn announce(args: &CertifyArgs, manifest: &Manifest, in_process: bool) {
    let ip = manifest.https.ip();
    let mut text = format!(
        "mdelab certify: proxy {}, region {}, connectivity {}\n",
        args.proxy,
        args.region,
        args.connectivity.name()
    );
    text.push_str(&format!(
        "  lab          {ip} (https {}, http {}){}\n",
        manifest.https.port(),
        manifest.http.port(),
        if in_process {
            " started for this run"
        } else {
            ""
        }
    ));
    text.push_str(&format!(
        "  hosts file   {}  (the proxy must resolve catalog names to {ip}: e.g. squid `hosts_file`)\n",
        manifest.hosts_file.display()
    ));
    text.push_str(&format!(
        "  lab DNS      {}  (or let the proxy resolve through it, e.g. squid `dns_nameservers {ip}`)\n",
        manifest.dns
    ));
    if manifest.https.port() != 443 || manifest.http.port() != 80 {
        text.push_str(&format!(
            "  warning: the lab is not on ports 443/80: a proxy resolving catalog names to {ip} \
             dials 443 and 80 and will miss it (start it with --https-port 443 --http-port 80)\n"
        ));
    }
    text.push_str(&format!(
        "  the CnC long poll is held {} s: the run takes at least that long\n",
        args.hold
    ));
    eprint!("{text}");
}

/// The proxy's address from `http://host:port` (or `host:port`).
async fn resolve_proxy(url: &str) -> Result<SocketAddr> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.contains("://") {
        bail!("--proxy {url:?}: only http:// proxies are supported (CONNECT over plain HTTP)");
    }
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        bail!(
            "--proxy {url:?}: give credentials with --proxy-user, not in the URL (the suite runs without them anyway)"
        );
    }
    if rest
        .rsplit_once(':')
        .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    {
        bail!("--proxy {url:?}: give the port, e.g. http://proxy.example:3128");
    }
    let mut addrs = tokio::net::lookup_host(rest)
        .await
        .with_context(|| format!("failed to resolve the proxy {rest}"))?;
    addrs
        .next()
        .with_context(|| format!("the proxy {rest} has no address"))
}

fn parse_user(value: &str) -> Result<(String, String)> {
    let (user, password) = value
        .split_once(':')
        .context("--proxy-user takes USER:PASSWORD")?;
    Ok((user.to_owned(), password.to_owned()))
}

/// What the suite needs of a lab, read from its manifest (the same for a lab started here and
/// a running `mdelab up`).
struct LabView {
    admin: AdminClient,
    trust: DeviceTrust,
    network: Network,
}

impl LabView {
    fn from_manifest(manifest: &Manifest) -> Result<Self> {
        let admin_addr = manifest.admin.context(
            "the lab manifest names no admin API (the suite reads the cloud's stores through it)",
        )?;
        let pem = std::fs::read(&manifest.trust_bundle).with_context(|| {
            format!(
                "failed to read the lab trust bundle {}",
                manifest.trust_bundle.display()
            )
        })?;
        let roots = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{} is not PEM", manifest.trust_bundle.display()))?;
        Ok(Self {
            admin: AdminClient::new(admin_addr, manifest.admin_token.clone()),
            trust: DeviceTrust {
                roots,
                sensor_pins: pins_of(&manifest.pins.pinned)?,
            },
            network: Network {
                // Unused through a proxy (it resolves the names); kept for completeness.
                dns: manifest.dns,
                port_map: BTreeMap::new(),
                step_timeout: STEP_TIMEOUT,
                source_ip: None,
                dials: None,
            },
        })
    }
}

/// The sensor's pins from the manifest's curl string, labelled in the order the lab writes
/// them (leaf key, issuing CA, root), so evidence names the keys it expected.
fn pins_of(curl: &str) -> Result<PinSet> {
    let labels = [
        format!("{PINNED_ISSUING_NAME} leaf key"),
        PINNED_ISSUING_NAME.to_owned(),
        PINNED_ROOT_NAME.to_owned(),
    ];
    let mut set = PinSet::new();
    for (i, pin) in curl.split(';').filter(|p| !p.trim().is_empty()).enumerate() {
        let pin = Pin::parse(pin).with_context(|| format!("bad pin {pin:?} in the manifest"))?;
        let label = labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("pin {}", i + 1));
        set = set.with(pin, label);
    }
    if set.is_empty() {
        bail!("the lab manifest carries no pins for the pinned profile");
    }
    Ok(set)
}

/// Whether `issuer` is one of the lab's issuing CAs (what an uninspected MDE host serves).
fn is_lab_issuer(issuer: &str) -> bool {
    issuer == PINNED_ISSUING_NAME || issuer == AZURE_ISSUING_NAME
}

/// The issuer the lab's chain for `host` carries.
fn lab_issuer_of(host: &str) -> &'static str {
    match Catalog::mde().https_host(host).map(|h| h.profile) {
        Some(Profile::Pinned) => PINNED_ISSUING_NAME,
        _ => AZURE_ISSUING_NAME,
    }
}

/// The issuer that replaced the lab's chain, when an outcome shows TLS inspection.
fn inspecting_issuer(outcome: &Outcome) -> Option<&str> {
    outcome
        .served_issuer
        .as_deref()
        .filter(|issuer| !is_lab_issuer(issuer))
}

/// Whether a failed exchange got past the proxy and the TLS handshake (the lab's chain was
/// served, or it was plain HTTP) and then broke: an HTTP answer, a cut or a timeout.
fn exchanged(outcome: &Outcome) -> bool {
    match outcome.verdict {
        Verdict::Connected { .. } => true,
        Verdict::Other { .. } | Verdict::Timeout => {
            outcome.served_issuer.as_deref().is_some_and(is_lab_issuer)
        }
        _ => false,
    }
}

/// A family of checks (one report section each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Reach,
    Inspection,
    LongPoll,
    Upload,
    Posts,
    CrlCtl,
    Deny,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Self::Reach => "reachability",
            Self::Inspection => "TLS inspection",
            Self::LongPoll => "CnC long poll",
            Self::Upload => "sample upload",
            Self::Posts => "1DS posts",
            Self::CrlCtl => "CRL/CTL over HTTP",
            Self::Deny => "denial",
        }
    }
}

/// A check with what the verdict line needs to explain a failure.
struct Item {
    family: Family,
    /// The MDE host it concerns ("" for none).
    host: String,
    /// Whether the sensor pins that host.
    pinned: bool,
    check: Check,
    /// The failure's reason for the verdict line, when the check knows better than its verdict.
    reason: Option<String>,
}

fn sensor_check(target: String, path: &str, expected: Verdict, observed: Outcome) -> Check {
    Check {
        target,
        path: path.into(),
        client: ClientKind::Sensor.name().into(),
        expected,
        observed,
        proxy_view: None,
        via: None,
    }
}

struct Suite<'a> {
    args: &'a CertifyArgs,
    proxy: SocketAddr,
    proxy_user: Option<(String, String)>,
    /// SYSTEM's route: the proxy, no credentials.
    route: Route,
    lab: LabView,
    models: Vec<Connectivity>,
    /// Makes this run's device ids and blob names unique on a shared lab.
    nonce: String,
}

impl<'a> Suite<'a> {
    fn new(
        args: &'a CertifyArgs,
        proxy: SocketAddr,
        proxy_user: Option<(String, String)>,
        manifest: &Manifest,
    ) -> Result<Self> {
        Ok(Self {
            args,
            proxy,
            proxy_user,
            route: Route::Proxy(ProxyRoute {
                addr: proxy,
                credentials: None,
            }),
            lab: LabView::from_manifest(manifest)?,
            models: args.connectivity.models(),
            nonce: hex::encode(rand::random::<[u8; 4]>()),
        })
    }

    fn device(&self, model: Connectivity) -> String {
        format!("mdelab-certify-{}-{}", self.nonce, model.name())
    }

    async fn run(self) -> Result<Report> {
        if !self
            .lab
            .admin
            .ready()
            .await
            .context("the lab's admin API does not answer")?
        {
            bail!(
                "the lab is not ready (its admin API says so): wait for `mdelab up` to finish starting"
            );
        }
        // The long polls take `--hold` seconds: run them alongside everything else, as the
        // sensor keeps its CnC poll open while it uploads.
        let polls = self.start_long_polls()?;
        let reach = self.reachability().await;
        let inspection = inspection(&reach);
        let crl = self.crl_ctl().await;
        let mut uploads = Vec::new();
        for model in self.models.clone() {
            uploads.push(self.upload(model).await?);
        }
        let mut posts = Vec::new();
        for model in self.models.clone() {
            posts.push(self.posts(model).await?);
        }
        if polls.iter().any(|p| !p.is_finished()) {
            eprintln!(
                "  waiting for the CnC long poll to end its {} s hold…",
                self.args.hold
            );
        }
        let mut long_polls = Vec::new();
        for poll in polls {
            long_polls.push(poll.await.context("the long-poll task failed")?);
        }
        let deny = if self.args.check_deny {
            let check = deny_check(self.proxy, &self.args.deny_target, STEP_TIMEOUT).await;
            let reason = (!check.as_expected()).then(|| {
                format!(
                    "the proxy is an open relay: it tunnels to {}",
                    self.args.deny_target
                )
            });
            vec![Item {
                family: Family::Deny,
                host: String::new(),
                pinned: false,
                check,
                reason,
            }]
        } else {
            Vec::new()
        };
        let notes = self.credentials_note(&reach).await;

        let region = self.args.region;
        let hold = self.args.hold;
        let mib = self.args.upload_mib;
        let posts_n = self.args.posts;
        let mut families: Vec<(String, Vec<Item>)> = vec![
            (
                format!(
                    "Reachability: every {region} HTTPS endpoint through CONNECT, as SYSTEM (no proxy credentials)"
                ),
                reach,
            ),
            (
                "TLS inspection: each MDE host must serve the lab's chain through the proxy (pins hold)".into(),
                inspection,
            ),
            (
                format!("CnC long poll: held {hold} s through the proxy"),
                long_polls,
            ),
            (
                format!("Sample upload: {mib} MiB block blob through the proxy, SHA-256 compared in the cloud"),
                uploads,
            ),
            (
                format!(
                    "Cyber data (1DS): {} of {LINES_PER_POST} events per model, events compared in the cloud",
                    plural(posts_n as usize, "post")
                ),
                posts,
            ),
            (
                "CRL/CTL over plain HTTP (port 80, absolute-form) through the proxy".into(),
                crl,
            ),
        ];
        if !deny.is_empty() {
            families.push((
                "Denial: a destination outside MDE must be refused (no open relay)".into(),
                deny,
            ));
        }
        let all: Vec<&Item> = families.iter().flat_map(|(_, items)| items).collect();
        let mut summary = notes;
        summary.push(verdict_line(&self.args.proxy, &all));
        let sections = families
            .into_iter()
            .filter(|(_, items)| !items.is_empty())
            .map(|(title, items)| Section {
                title,
                checks: items.into_iter().map(|i| i.check).collect(),
            })
            .collect();
        Ok(Report {
            title: format!(
                "mdelab certify: {} for MDE, region {region}",
                self.args.proxy.trim_end_matches('/')
            ),
            sections,
            summary,
        })
    }

    /// Every HTTPS URL of the region and models, probed through the proxy without credentials.
    async fn reachability(&self) -> Vec<Item> {
        self.probe_catalog(Scheme::Https, Family::Reach, "CONNECT")
            .await
    }

    /// Every catalog URL of `scheme` for the region and models, through the proxy; each must
    /// answer its catalog status.
    async fn probe_catalog(&self, scheme: Scheme, family: Family, path: &str) -> Vec<Item> {
        let mut seen = BTreeSet::new();
        let endpoints: Vec<_> = self
            .models
            .iter()
            .flat_map(|model| Catalog::mde().for_device(self.args.region, *model))
            .filter(|e| e.scheme == scheme && seen.insert(e.url()))
            .collect();
        let targets: Vec<Target> = endpoints.iter().map(|e| Target::from(*e)).collect();
        let outcomes = self.probe_all(targets).await;
        endpoints
            .into_iter()
            .zip(outcomes)
            .map(|(endpoint, observed)| Item {
                family,
                host: endpoint.host.clone(),
                pinned: endpoint.pinned,
                check: sensor_check(
                    format!("{} {}", endpoint.probe.method.as_str(), endpoint.url()),
                    path,
                    Verdict::Connected {
                        status: endpoint.probe.status,
                    },
                    observed,
                ),
                reason: None,
            })
            .collect()
    }

    /// Probes the targets through the proxy, a few at a time; outcomes in target order.
    async fn probe_all(&self, targets: Vec<Target>) -> Vec<Outcome> {
        let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL_PROBES));
        let trust = Arc::new(self.lab.trust.clone());
        let mut tasks = JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let (semaphore, trust) = (semaphore.clone(), trust.clone());
            let (route, network) = (self.route.clone(), self.lab.network.clone());
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let outcome =
                    sensor::probe(&target, ClientKind::Sensor, &route, &trust, &network).await;
                (index, outcome)
            });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(pair) => outcomes.push(pair),
                // A panicked probe is a bug of ours; surface it rather than lose a row.
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        }
        outcomes.sort_by_key(|(index, _)| *index);
        outcomes.into_iter().map(|(_, outcome)| outcome).collect()
    }

    /// Every plain-HTTP URL (CRL/CTL), as absolute-form requests to the proxy.
    async fn crl_ctl(&self) -> Vec<Item> {
        self.probe_catalog(Scheme::Http, Family::CrlCtl, "absolute-form")
            .await
    }

    /// Starts one held CnC poll per model, each on its own task.
    fn start_long_polls(&self) -> Result<Vec<tokio::task::JoinHandle<Item>>> {
        let mut handles = Vec::new();
        for model in &self.models {
            let onboarding = onboarding(self.args.region, *model)?;
            let (origin, path) = onboarding.cnc();
            let poll = LongPoll {
                origin,
                path,
                device: self.device(*model),
                hold: Duration::from_secs(self.args.hold),
                route: self.route.clone(),
                trust: self.lab.trust.clone(),
                network: self.lab.network.clone(),
            };
            handles.push(tokio::spawn(poll.run()));
        }
        Ok(handles)
    }

    /// One `--upload-mib` block blob to the region's sample-upload storage of `model`, then the
    /// cloud's SHA-256 of what it stored compared with ours.
    async fn upload(&self, model: Connectivity) -> Result<Item> {
        let (account, gateway) = sample_account(self.args.region, model).with_context(|| {
            format!(
                "the catalog has no sample-upload storage for {} {model}",
                self.args.region
            )
        })?;
        let blob = format!("{}-{}.bin", self.nonce, model.name());
        let size = self.args.upload_mib * MIB;
        // Long enough for a slow proxy to carry the body, and for the SAS not to expire meanwhile.
        let timeout = Duration::from_secs(60 + 2 * self.args.upload_mib);
        let answer = self
            .lab
            .admin
            .post(
                "/_lab/storage/sas",
                &json!({
                    "account": account,
                    "container": UPLOAD_CONTAINER,
                    "blob": blob,
                    "permissions": "cw",
                    "ttl_secs": timeout.as_secs() + 600,
                    "gateway": gateway,
                }),
            )
            .await
            .context("the admin API did not mint a SAS URL")?;
        let url = answer["url"]
            .as_str()
            .context("the SAS answer has no url")?;
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("the admin API minted a bad URL {url:?}"))?;
        let host = uri.host().unwrap_or_default().to_owned();
        let pinned = Catalog::mde().https_host(&host).is_some_and(|h| h.pinned);
        let origin = Origin::https(&host, pinned);
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let display_path = path_and_query.split('?').next().unwrap_or_default();
        let target = format!(
            "PUT {} MiB https://{host}{display_path}",
            self.args.upload_mib
        );

        let content = Bytes::from(sample_bytes(size as usize, model_seed(model)));
        let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &content));
        let mut request =
            wire::blob_put(path_and_query, &self.device(model), content).timeout(timeout);
        // An Azure error answer is a small XML document; keep room for it as evidence.
        request.max_response = 1024 * 1024;
        let expected = Verdict::Connected { status: 201 };
        let started = Instant::now();
        let result = sensor::send(
            &origin,
            ClientKind::Sensor,
            &self.route,
            &self.lab.trust,
            &self.lab.network,
            &request,
        )
        .await;
        let elapsed = started.elapsed();
        let mut reason = None;
        let observed = match result {
            Ok(response) if response.status == 201 => {
                let stored = self
                    .stored_blob(&account, &blob)
                    .await
                    .context("failed to list the cloud's blobs")?;
                match stored {
                    Some((stored_size, stored_sha))
                        if stored_size == size && stored_sha == sha256 =>
                    {
                        Outcome::new(
                            Verdict::Connected { status: 201 },
                            format!(
                                "201 Created; the cloud stored all {size} bytes and their SHA-256 matches the file sent"
                            ),
                            response.served_issuer,
                        )
                    }
                    Some((stored_size, _)) => {
                        reason = Some(format!(
                            "the {} MiB sample upload arrived altered",
                            self.args.upload_mib
                        ));
                        Outcome::new(
                            Verdict::Other {
                                detail: "stored blob differs".into(),
                            },
                            format!(
                                "201 Created, but the cloud stored {stored_size} bytes whose SHA-256 differs from the {size} bytes sent"
                            ),
                            response.served_issuer,
                        )
                    }
                    None => {
                        reason = Some(format!(
                            "the {} MiB sample upload was answered 201 but not stored",
                            self.args.upload_mib
                        ));
                        Outcome::new(
                            Verdict::Other {
                                detail: "blob not stored".into(),
                            },
                            "201 Created, but the cloud holds no such blob",
                            response.served_issuer,
                        )
                    }
                }
            }
            Ok(response) => {
                let code = response
                    .headers
                    .get("x-ms-error-code")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("no error code");
                reason = Some(format!(
                    "the {} MiB sample upload was answered {} ({code})",
                    self.args.upload_mib, response.status
                ));
                Outcome::new(
                    Verdict::Connected {
                        status: response.status,
                    },
                    format!("the storage answered {} ({code})", response.status),
                    response.served_issuer,
                )
            }
            Err(outcome) if inspecting_issuer(&outcome).is_none() => {
                if exchanged(&outcome) {
                    reason = Some(format!(
                        "the {} MiB sample upload broke off after {:.1} s",
                        self.args.upload_mib,
                        elapsed.as_secs_f64()
                    ));
                }
                let evidence = format!(
                    "{} (after {:.1} s)",
                    outcome.evidence,
                    elapsed.as_secs_f64()
                );
                Outcome {
                    evidence,
                    ..outcome
                }
            }
            Err(outcome) => outcome,
        };
        Ok(Item {
            family: Family::Upload,
            host,
            pinned,
            check: sensor_check(target, "CONNECT", expected, observed),
            reason,
        })
    }

    /// Size and SHA-256 of the blob this run uploaded, as the cloud stored it.
    async fn stored_blob(&self, account: &str, blob: &str) -> Result<Option<(u64, String)>> {
        let list = self.lab.admin.get("/_lab/blobs").await?;
        Ok(list.as_array().and_then(|blobs| {
            blobs
                .iter()
                .find(|b| {
                    b["account"] == account
                        && b["container"] == UPLOAD_CONTAINER
                        && b["name"] == blob
                })
                .map(|b| {
                    (
                        b["size"].as_u64().unwrap_or(0),
                        b["sha256_hex"].as_str().unwrap_or_default().to_owned(),
                    )
                })
        }))
    }

    /// `--posts` 1DS posts to the collector of `model`; each must be accepted whole, and the
    /// cloud must then hold exactly the events sent.
    async fn posts(&self, model: Connectivity) -> Result<Item> {
        let onboarding = onboarding(self.args.region, model)?;
        let (origin, path) = onboarding.collector();
        let device = self.device(model);
        let posts = self.args.posts;
        let target = format!(
            "{posts} x POST https://{}{path} ({LINES_PER_POST} events each)",
            origin.host
        );
        let mut sent = Vec::new();
        let mut failures = 0u64;
        let mut first_failure: Option<(u64, Outcome)> = None;
        let mut served_issuer = None;
        for post in 0..posts {
            let mut events = Vec::new();
            for line in 0..LINES_PER_POST {
                let event = json!({
                    "ver": "4.0",
                    "name": "MdelabCertify",
                    "iKey": format!("o:{TENANT}"),
                    "ext": {"device": {"localId": format!("s:{device}")}},
                    "data": {"run": self.nonce, "post": post, "line": line,
                             "padding": "x".repeat(64 + (post as usize * 7 + line * 13) % 256)},
                });
                sent.push(event.to_string());
                events.push(event);
            }
            let request = wire::onecollector_post(&path, TENANT, &device, &events);
            let result = sensor::send(
                &origin,
                ClientKind::Sensor,
                &self.route,
                &self.lab.trust,
                &self.lab.network,
                &request,
            )
            .await;
            let failure = match result {
                Ok(response) => {
                    served_issuer = response.served_issuer.clone();
                    let counts: Value = serde_json::from_slice(&response.body).unwrap_or_default();
                    let acc = counts["acc"].as_u64().unwrap_or(0);
                    if response.status == 200 && acc == LINES_PER_POST as u64 {
                        None
                    } else {
                        Some(Outcome::new(
                            Verdict::Connected {
                                status: response.status,
                            },
                            format!(
                                "the collector answered {} with acc={acc} for {LINES_PER_POST} events",
                                response.status
                            ),
                            response.served_issuer,
                        ))
                    }
                }
                Err(outcome) => Some(outcome),
            };
            if let Some(outcome) = failure {
                failures += 1;
                first_failure.get_or_insert((post, outcome));
            }
        }
        let expected = Verdict::Connected { status: 200 };
        let host = origin.host.clone();
        if let Some((post, outcome)) = first_failure {
            let evidence = format!(
                "{failures} of {posts} posts failed; the first (post {post}): {}",
                outcome.evidence
            );
            // A refusal before any request (407, inspection…) explains itself; name only
            // failures of the posts themselves.
            let reason = exchanged(&outcome)
                .then(|| format!("{failures} of {posts} 1DS posts to {host} failed"));
            return Ok(Item {
                family: Family::Posts,
                host,
                pinned: origin.pinned,
                check: sensor_check(
                    target,
                    "CONNECT",
                    expected,
                    Outcome {
                        evidence,
                        ..outcome
                    },
                ),
                reason,
            });
        }
        // Every post was accepted: the cloud must hold exactly those events, unchanged.
        let limit = sent.len() + 100;
        let stored = self
            .lab
            .admin
            .get(&format!("/_lab/events?device={device}&limit={limit}"))
            .await
            .context("failed to read the cloud's events")?;
        let mut held: Vec<String> = stored
            .as_array()
            .map(|events| events.iter().map(|e| e["event"].to_string()).collect())
            .unwrap_or_default();
        // The admin API re-serialises what the collector parsed; parse ours the same way so
        // both sides are spelled alike.
        let mut sent: Vec<String> = sent
            .iter()
            .map(|line| {
                serde_json::from_str::<Value>(line)
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            })
            .collect();
        sent.sort();
        held.sort();
        let observed = if held == sent {
            Outcome::new(
                expected.clone(),
                format!(
                    "all {posts} posts answered 200 with acc={LINES_PER_POST}; the cloud holds exactly the {} events sent (SHA-256 of their content matches)",
                    sent.len()
                ),
                served_issuer,
            )
        } else {
            let sent_set: BTreeSet<&String> = sent.iter().collect();
            let held_set: BTreeSet<&String> = held.iter().collect();
            let missing = sent_set.difference(&held_set).count();
            let extra = held.len().saturating_sub(sent.len() - missing);
            Outcome::new(
                Verdict::Other {
                    detail: "events lost or altered".into(),
                },
                format!(
                    "every post answered 200, but the cloud holds {} events for the device where {} were sent: {missing} missing or altered, {extra} unexpected (content SHA-256 {} vs {})",
                    held.len(),
                    sent.len(),
                    short_hash(&held),
                    short_hash(&sent)
                ),
                served_issuer,
            )
        };
        let reason = (observed.verdict != expected)
            .then(|| format!("1DS events sent to {host} were lost or altered on the way"));
        Ok(Item {
            family: Family::Posts,
            host,
            pinned: origin.pinned,
            check: sensor_check(target, "CONNECT", expected, observed),
            reason,
        })
    }

    /// With `--proxy-user`: whether the proxy accepts the user's credentials, next to what
    /// SYSTEM got, as informational notes.
    async fn credentials_note(&self, reach: &[Item]) -> Vec<String> {
        let Some((user, password)) = &self.proxy_user else {
            return Vec::new();
        };
        let Some(first) = reach.first() else {
            return Vec::new();
        };
        let Some(endpoint) = self
            .models
            .iter()
            .flat_map(|m| Catalog::mde().for_device(self.args.region, *m))
            .find(|e| e.scheme == Scheme::Https)
        else {
            return Vec::new();
        };
        let route = Route::Proxy(ProxyRoute {
            addr: self.proxy,
            credentials: Some((user.clone(), password.clone())),
        });
        let with_user = sensor::probe(
            &Target::from(endpoint),
            ClientKind::Sensor,
            &route,
            &self.lab.trust,
            &self.lab.network,
        )
        .await;
        let system = &first.check.observed;
        let mut notes = vec![format!(
            "note: with --proxy-user {user:?} the proxy answered {} for {} ({}); the suite ran without credentials, as the sensor (SYSTEM) does, and got {}",
            with_user.verdict.label(),
            endpoint.url(),
            with_user.evidence,
            system.verdict.label()
        )];
        match (&with_user.verdict, &system.verdict) {
            (Verdict::Connected { .. }, Verdict::ProxyAuthRequired) => notes.push(
                "note: the proxy accepts the user's credentials but demands them of SYSTEM too: exempt the MDE destinations from authentication (the sensor cannot authenticate)".into(),
            ),
            (Verdict::ProxyAuthRequired, _) => notes.push(
                "note: the proxy refuses these credentials (407)".into(),
            ),
            _ => {}
        }
        notes
    }
}

/// The lab's onboarding of a device of `region` and `model` (CnC gateway, 1DS collector).
fn onboarding(region: Region, model: Connectivity) -> Result<Onboarding> {
    Onboarding::parse(&Onboarding::blob(TENANT, region, model))
        .context("the lab's own onboarding blob does not parse")
}

/// The sample-upload storage account of a region's model, and the gateway that fronts it
/// (streamlined), from the catalog.
fn sample_account(region: Region, model: Connectivity) -> Option<(String, Option<String>)> {
    let endpoint = Catalog::mde()
        .for_device(region, model)
        .find(|e| e.service == Service::SampleUpload && e.scheme == Scheme::Https)?;
    if let Some(account) = Catalog::mde().storage_account(&endpoint.host) {
        return Some((account, None));
    }
    let account = endpoint
        .probe
        .path
        .strip_prefix("/storage/")?
        .split('/')
        .next()
        .filter(|a| !a.is_empty())?;
    Some((account.to_owned(), Some(endpoint.host.clone())))
}

/// One held CnC poll, owning everything it needs so it can run on its own task.
struct LongPoll {
    origin: Origin,
    path: String,
    device: String,
    hold: Duration,
    route: Route,
    trust: DeviceTrust,
    network: Network,
}

impl LongPoll {
    async fn run(self) -> Item {
        let hold_secs = self.hold.as_secs();
        let request = wire::cnc_poll(&self.path, self.hold, &self.device)
            // Room beyond the hold for a slow proxy; a proxy that holds longer still fails.
            .timeout(self.hold + Duration::from_secs(10).max(self.hold / 4));
        let target = format!(
            "GET https://{}{}?hold={hold_secs}",
            self.origin.host, self.path
        );
        let started = Instant::now();
        let result = sensor::send(
            &self.origin,
            ClientKind::Sensor,
            &self.route,
            &self.trust,
            &self.network,
            &request,
        )
        .await;
        let elapsed = started.elapsed();
        let secs = elapsed.as_secs_f64();
        // The cloud answers 204 exactly when the hold ends; allow for timer granularity.
        let held_fully = elapsed + Duration::from_millis(100) >= self.hold;
        let mut reason = None;
        let observed = match result {
            Ok(response) if response.status == 204 && held_fully => Outcome::new(
                Verdict::Connected { status: 204 },
                format!(
                    "204 No Content after the full {hold_secs} s hold: the proxy kept the idle tunnel open"
                ),
                response.served_issuer,
            ),
            Ok(response) if response.status == 204 => {
                reason = Some(format!(
                    "the lab answered the CnC poll after {secs:.0} s, before the {hold_secs} s asked: its hold cap is lower (a lab setting, not the proxy: start it with `mdelab up --cnc-max-hold {hold_secs}`)"
                ));
                Outcome::new(
                    Verdict::Other {
                        detail: "the lab's hold cap is below --hold".into(),
                    },
                    format!(
                        "204 after only {secs:.1} s of the {hold_secs} s asked: the lab caps CnC holds lower (mdelab up --cnc-max-hold)"
                    ),
                    response.served_issuer,
                )
            }
            Ok(response) => Outcome::new(
                Verdict::Connected {
                    status: response.status,
                },
                format!("the gateway answered {} after {secs:.1} s", response.status),
                response.served_issuer,
            ),
            Err(outcome) => {
                // Past the TLS handshake (the lab's chain was served), a broken exchange is the
                // proxy cutting the held tunnel.
                let after_handshake = outcome.served_issuer.as_deref().is_some_and(is_lab_issuer);
                if !after_handshake {
                    // Refused before the poll began (407, inspection…): nothing was held.
                    return self.item(target, outcome, None);
                }
                if matches!(outcome.verdict, Verdict::Other { .. } | Verdict::Timeout) {
                    reason = Some(format!(
                        "the proxy cut the CnC long poll to {} after {secs:.0} s of a {hold_secs} s hold",
                        self.origin.host
                    ));
                }
                let evidence = format!(
                    "after {secs:.1} s of a {hold_secs} s hold: {}",
                    outcome.evidence
                );
                Outcome {
                    evidence,
                    ..outcome
                }
            }
        };
        self.item(target, observed, reason)
    }

    fn item(&self, target: String, observed: Outcome, reason: Option<String>) -> Item {
        Item {
            family: Family::LongPoll,
            host: self.origin.host.clone(),
            pinned: self.origin.pinned,
            check: sensor_check(
                target,
                "CONNECT",
                Verdict::Connected { status: 204 },
                observed,
            ),
            reason,
        }
    }
}

/// One check per MDE host, from the reachability probes: the chain it served through the proxy
/// must be the lab's. When another issuer served it, the proxy inspects TLS and the evidence
/// names that issuer (what Microsoft's own connectivity tests report).
fn inspection(reach: &[Item]) -> Vec<Item> {
    let mut hosts: Vec<&str> = Vec::new();
    for item in reach {
        if !hosts.contains(&item.host.as_str()) {
            hosts.push(&item.host);
        }
    }
    hosts
        .into_iter()
        .filter_map(|host| {
            let of_host: Vec<&Item> = reach.iter().filter(|i| i.host == host).collect();
            // Prefer a probe that got as far as seeing a chain.
            let item = of_host
                .iter()
                .find(|i| i.check.observed.served_issuer.is_some())
                .or_else(|| of_host.first())?;
            let observed = &item.check.observed;
            let lab_issuer = lab_issuer_of(host);
            let pin_note = if item.pinned {
                "the sensor's pins hold"
            } else {
                "not pinned by the sensor"
            };
            let outcome = match observed.served_issuer.as_deref() {
                Some(issuer) if is_lab_issuer(issuer) => {
                    let verdict = match &observed.verdict {
                        Verdict::Connected { .. } => item.check.expected.clone(),
                        other => other.clone(),
                    };
                    Outcome::new(
                        verdict,
                        format!("the lab's chain (issued by '{issuer}'): not inspected; {pin_note}"),
                        Some(issuer.to_owned()),
                    )
                }
                Some(issuer) => {
                    let verdict = match &observed.verdict {
                        // A chain the device trusted but not the lab's: still inspection.
                        Verdict::Connected { .. } => Verdict::Other {
                            detail: "TLS inspection".into(),
                        },
                        other => other.clone(),
                    };
                    Outcome::new(
                        verdict,
                        format!(
                            "TLS inspection detected: chain issued by '{issuer}' instead of the lab's '{lab_issuer}' ({})",
                            observed.evidence
                        ),
                        Some(issuer.to_owned()),
                    )
                }
                None => Outcome::new(
                    observed.verdict.clone(),
                    format!("no chain to look at: {}", observed.evidence),
                    None,
                ),
            };
            Some(Item {
                family: Family::Inspection,
                host: host.to_owned(),
                pinned: item.pinned,
                check: sensor_check(
                    host.to_owned(),
                    "CONNECT + TLS",
                    item.check.expected.clone(),
                    outcome,
                ),
                reason: None,
            })
        })
        .collect()
}

/// Asks the proxy for a tunnel to `target` (`host:port`, outside MDE): passes when it refuses
/// (403, 407, any non-200 answer or no answer), fails when it answers `200 Connection
/// established` (an open relay).
pub async fn deny_check(proxy: SocketAddr, target: &str, timeout: Duration) -> Check {
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(443)),
        None => (target, 443),
    };
    let origin = Origin {
        host: host.to_owned(),
        port,
        scheme: Scheme::Https,
        pinned: false,
    };
    let route = Route::Proxy(ProxyRoute {
        addr: proxy,
        credentials: None,
    });
    // Through a proxy only the step timeout matters: the proxy resolves the name itself.
    let network = Network {
        dns: proxy,
        port_map: BTreeMap::new(),
        step_timeout: timeout,
        source_ip: None,
        dials: None,
    };
    let label = format!("CONNECT {host}:{port}");
    let (expected, observed) = match sensor::connect::open(&origin, &route, &network).await {
        Ok(_stream) => (
            Verdict::ProxyRefused { status: 403 },
            Outcome::new(
                Verdict::Connected { status: 200 },
                format!(
                    "the proxy answered 200 Connection established to {label}: it relays to destinations outside MDE (an open relay)"
                ),
                None,
            ),
        ),
        // Any refusal is what we want; the verdict is its own expectation.
        Err(outcome) => {
            let evidence = match &outcome.verdict {
                Verdict::ProxyRefused { status } if *status >= 500 => format!(
                    "the proxy answered {status} to {label}: not relayed (a {status} may only mean it could not reach it; a policy denial is 403)"
                ),
                Verdict::ProxyRefused { status } => {
                    format!("the proxy refused {label} with {status}: not an open relay")
                }
                Verdict::ProxyAuthRequired => format!(
                    "the proxy demands authentication for {label} (407): not open to anonymous clients"
                ),
                _ => format!(
                    "the proxy opened no tunnel for {label}: {}",
                    outcome.evidence
                ),
            };
            (
                outcome.verdict.clone(),
                Outcome {
                    evidence,
                    ..outcome
                },
            )
        }
    };
    sensor_check(label, "CONNECT", expected, observed)
}

/// `VERDICT: <proxy> is fit for MDE (N checks passed)`, or why not, reasons grouped.
fn verdict_line(proxy: &str, items: &[&Item]) -> String {
    let proxy = proxy.trim_end_matches('/');
    let failed: Vec<&&Item> = items.iter().filter(|i| !i.check.as_expected()).collect();
    if failed.is_empty() {
        return format!(
            "VERDICT: {proxy} is fit for MDE ({} passed)",
            plural(items.len(), "check")
        );
    }
    format!(
        "VERDICT: {proxy} is NOT fit for MDE: {} failed ({})",
        plural(failed.len(), "check"),
        reasons(&failed).join("; ")
    )
}

/// The distinct reasons of the failed checks, in order of first appearance: TLS inspection per
/// issuer with the hosts it covered, everything else counted.
fn reasons(failed: &[&&Item]) -> Vec<String> {
    enum Reason {
        Inspection {
            issuer: String,
            pinned: BTreeSet<String>,
            unpinned: BTreeSet<String>,
        },
        Counted {
            text: String,
            count: usize,
        },
    }
    let mut order: Vec<String> = Vec::new();
    let mut reasons: BTreeMap<String, Reason> = BTreeMap::new();
    for item in failed {
        if let Some(issuer) = inspecting_issuer(&item.check.observed) {
            let key = format!("inspection\n{issuer}");
            if !reasons.contains_key(&key) {
                order.push(key.clone());
            }
            let entry = reasons.entry(key).or_insert_with(|| Reason::Inspection {
                issuer: issuer.to_owned(),
                pinned: BTreeSet::new(),
                unpinned: BTreeSet::new(),
            });
            if let Reason::Inspection {
                pinned, unpinned, ..
            } = entry
            {
                if item.pinned {
                    pinned.insert(item.host.clone());
                } else {
                    unpinned.insert(item.host.clone());
                }
            }
            continue;
        }
        let text = item.reason.clone().unwrap_or_else(|| generic_reason(item));
        if !reasons.contains_key(&text) {
            order.push(text.clone());
        }
        if let Reason::Counted { count, .. } = reasons
            .entry(text.clone())
            .or_insert(Reason::Counted { text, count: 0 })
        {
            *count += 1;
        }
    }
    order
        .into_iter()
        .filter_map(|key| reasons.remove(&key))
        .map(|reason| match reason {
            Reason::Inspection {
                issuer,
                pinned,
                unpinned,
            } => {
                let mut text = format!("TLS inspection by '{issuer}' on ");
                if !pinned.is_empty() {
                    text.push_str(&plural(pinned.len(), "pinned host"));
                }
                if !pinned.is_empty() && !unpinned.is_empty() {
                    text.push_str(" and ");
                }
                if !unpinned.is_empty() {
                    text.push_str(&plural(unpinned.len(), "unpinned host"));
                }
                text
            }
            Reason::Counted { text, count: 1 } => text,
            Reason::Counted { text, count } => format!("{text} ({count} checks)"),
        })
        .collect()
}

/// A reason from the verdict alone, for checks that set none.
fn generic_reason(item: &Item) -> String {
    match &item.check.observed.verdict {
        Verdict::ProxyAuthRequired => {
            "the proxy demands authentication (407) and the sensor, running as SYSTEM, has no credentials".into()
        }
        Verdict::ProxyRefused { status } => format!("the proxy refused MDE destinations with {status}"),
        Verdict::Timeout => "requests through the proxy timed out".into(),
        Verdict::Refused => "the proxy refused the TCP connection".into(),
        Verdict::Connected { .. } => format!("{}: unexpected HTTP answers", item.family.name()),
        other => format!("{}: {}", item.family.name(), other.label()),
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Deterministic pseudo-random bytes (SplitMix64): incompressible, so a proxy that compresses
/// or caches gains nothing, and reproducible from the seed.
fn sample_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut state = seed;
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
    out
}

fn model_seed(model: Connectivity) -> u64 {
    match model {
        Connectivity::Standard => 0x6d64_656c_6162_0001,
        Connectivity::Streamlined => 0x6d64_656c_6162_0002,
    }
}

/// The first 12 hex digits of the SHA-256 of sorted lines (evidence of a difference only).
fn short_hash(lines: &[String]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, lines.join("\n").as_bytes());
    hex::encode(&digest.as_ref()[..6])
}

/// Prints to stdout; a closed pipe (e.g. `| head`) is not an error.
fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("failed to write to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn options_parse_with_their_defaults() {
        let args = CertifyArgs::parse_from(["--proxy", "http://127.0.0.1:3128"]).unwrap();
        assert_eq!(
            (args.hold, args.upload_mib, args.posts, args.region),
            (120, 64, 50, Region::Us)
        );
        assert_eq!(args.connectivity, ModelChoice::Both);
        assert_eq!(args.bind, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(!args.check_deny);
        assert!(CertifyArgs::parse_from(["--proxy", "x:1", "--hold", "0"]).is_err());
        assert!(
            CertifyArgs::parse_from(["--proxy", "x:1", "--lab", "m.json", "--bind", "127.0.0.9"])
                .is_err(),
            "--bind belongs to the lab started here"
        );
    }

    #[tokio::test]
    async fn proxy_urls_need_http_and_a_port() {
        assert_eq!(
            resolve_proxy("http://127.0.0.1:3128/").await.unwrap(),
            "127.0.0.1:3128".parse().unwrap()
        );
        assert!(resolve_proxy("127.0.0.1:8080").await.is_ok());
        for bad in [
            "https://127.0.0.1:3128",
            "http://127.0.0.1",
            "http://u:p@127.0.0.1:1",
        ] {
            assert!(resolve_proxy(bad).await.is_err(), "{bad}");
        }
    }

    #[test]
    fn every_region_and_model_has_a_sample_upload_account() {
        for region in Region::ALL {
            for model in Connectivity::ALL {
                let (account, gateway) = sample_account(region, model).unwrap();
                assert!(!account.is_empty());
                assert_eq!(gateway.is_some(), model == Connectivity::Streamlined);
            }
        }
    }

    #[test]
    fn sample_bytes_are_deterministic_and_sized() {
        let a = sample_bytes(1001, 7);
        assert_eq!(a.len(), 1001);
        assert_eq!(a, sample_bytes(1001, 7));
        assert_ne!(a, sample_bytes(1001, 8));
    }

    fn failed_item(family: Family, host: &str, pinned: bool, observed: Outcome) -> Item {
        Item {
            family,
            host: host.into(),
            pinned,
            check: sensor_check(
                host.into(),
                "CONNECT",
                Verdict::Connected { status: 200 },
                observed,
            ),
            reason: None,
        }
    }

    #[test]
    fn the_verdict_groups_inspection_by_issuer_and_counts_the_rest() {
        let inspected = |host: &str, pinned| {
            failed_item(
                Family::Inspection,
                host,
                pinned,
                Outcome::new(
                    Verdict::UnknownIssuer,
                    "x",
                    Some("Squid Lab Inspection CA".into()),
                ),
            )
        };
        let items = [
            inspected("a.example", true),
            inspected("b.example", true),
            inspected("a.example", true),
            inspected("c.example", false),
            failed_item(
                Family::Reach,
                "d.example",
                true,
                Outcome::new(Verdict::ProxyAuthRequired, "407", None),
            ),
            failed_item(
                Family::Reach,
                "e.example",
                true,
                Outcome::new(Verdict::ProxyAuthRequired, "407", None),
            ),
        ];
        let refs: Vec<&Item> = items.iter().collect();
        let line = verdict_line("http://p:1/", &refs);
        assert_eq!(
            line,
            "VERDICT: http://p:1 is NOT fit for MDE: 6 checks failed (TLS inspection by \
             'Squid Lab Inspection CA' on 2 pinned hosts and 1 unpinned host; the proxy demands \
             authentication (407) and the sensor, running as SYSTEM, has no credentials (2 checks))"
        );
        let ok = Item {
            check: sensor_check(
                "x".into(),
                "CONNECT",
                Verdict::Connected { status: 200 },
                Outcome::new(Verdict::Connected { status: 200 }, "ok", None),
            ),
            ..failed_item(
                Family::Reach,
                "x",
                true,
                Outcome::new(Verdict::Timeout, "", None),
            )
        };
        assert_eq!(
            verdict_line("http://p:1", &[&ok]),
            "VERDICT: http://p:1 is fit for MDE (1 check passed)"
        );
    }

    #[test]
    fn pins_from_the_manifest_keep_the_lab_labels() {
        let pin = Pin::of_spki_der(b"key");
        let set = pins_of(&format!(
            "{};{}",
            pin.curl(),
            Pin::of_spki_der(b"k2").curl()
        ))
        .unwrap();
        assert_eq!(
            set.label_of(&pin),
            Some(format!("{PINNED_ISSUING_NAME} leaf key").as_str())
        );
        assert!(pins_of("").is_err());
    }
}
