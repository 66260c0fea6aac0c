//! The `mdelab` command line. Names are stable: scripts and CI depend on them.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use mdelab_catalog::{Connectivity, Region};
use mdelab_certs::{KeyAlgorithm, PkiOptions};
use mdelab_mock_cloud::ServiceConfig;

use crate::demo::{self, DemoOptions};
use crate::endpoints::{self, ListFormat};
use crate::lab::{Lab, LabOptions};
use crate::report::Format;

/// An offline imitation of the Microsoft Defender for Endpoint cloud, with a pinning sensor.
#[derive(Debug, Parser)]
#[command(name = "mdelab", version, about)]
pub struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pinning demonstration in-process; exit 0 iff every outcome is as expected.
    Demo {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// The tenant's region.
        #[arg(long, default_value = "us")]
        region: Region,
    },
    /// Run the lab until SIGINT/SIGTERM; write the manifest once ready.
    Up(UpArgs),
    /// Run one lab proxy alone (`connect` or `inspect`).
    #[command(subcommand)]
    Proxy(crate::proxy_cmd::ProxyCommand),
    /// Print shell exports pointing tools at a running lab: `eval "$(mdelab env --manifest F)"`.
    Env {
        /// The running lab's manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// Which lab proxy to export.
        #[arg(long, value_enum, default_value_t)]
        proxy: crate::running::EnvProxy,
    },
    /// Block until a lab started elsewhere is ready (exit 0), or the timeout passes (exit 1).
    Wait {
        /// The manifest `mdelab up --manifest` will write.
        #[arg(long)]
        manifest: PathBuf,
        /// Seconds to wait at most.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Certify a proxy for MDE: run the connectivity suite through it against the lab.
    Certify(crate::certify::CertifyArgs),
    /// Proxy-precedence scenarios: which proxy the sensor really uses.
    #[command(subcommand)]
    Scenario(crate::scenario::ScenarioCommand),
    /// The Client Analyzer's connectivity view of a machine profile or a proxy.
    Analyze(crate::analyze::AnalyzeArgs),
    /// Advanced hunting on a running lab: a KQL subset over DeviceNetworkEvents.
    Hunt {
        /// The query, e.g. `DeviceNetworkEvents | where ActionType == "ConnectionSuccess" | take 10`.
        query: String,
        /// The running lab's manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: crate::running::HuntFormat,
    },
    /// Print the endpoint catalog.
    Endpoints {
        /// Only this region (worldwide hosts are always included).
        #[arg(long)]
        region: Option<Region>,
        /// Only this connectivity model.
        #[arg(long)]
        connectivity: Option<Connectivity>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: ListFormat,
    },
}

/// Options of `mdelab up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Address every listener binds.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Keep the PKI and lab files here (reused across runs); default: fresh, in a temp folder.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Write the manifest (JSON) here once the lab is ready.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// HTTPS port of the mock cloud (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub https_port: u16,
    /// Plain HTTP port of the mock cloud (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub http_port: u16,
    /// DNS port, UDP and TCP (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub dns_port: u16,
    /// Port of the lab's plain CONNECT proxy (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub connect_proxy_port: u16,
    /// Port of the lab's TLS-inspecting proxy (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub inspect_proxy_port: u16,
    /// Port of the admin API (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub admin_port: u16,
    /// The region tools and the sensor default to (the lab serves every region).
    #[arg(long, default_value = "us")]
    pub region: Region,
    /// Request journal capacity (entries); 0 switches it off.
    #[arg(long, default_value_t = 10_000)]
    pub journal_capacity: usize,
    /// Also append every journal entry as a JSON line to this file.
    #[arg(long)]
    pub journal_file: Option<PathBuf>,
    /// Fault rules to load at start (TOML, `[[fault]]` tables).
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Seed of every random choice (fault probabilities, jitter).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds a Live Response session may stay pending or connected before it times out.
    #[arg(long, default_value_t = 1800)]
    pub live_response_timeout: u64,
    /// Longest a CnC long poll is held, in seconds.
    #[arg(long, default_value_t = 30)]
    pub cnc_max_hold: u64,
    /// Key algorithm of the lab PKI.
    #[arg(long, default_value = "ecdsa-p256")]
    pub key_algorithm: KeyAlgorithm,
    /// Common name of the inspection CA.
    #[arg(long, default_value = mdelab_certs::pki::DEFAULT_INSPECTION_CA_NAME)]
    pub inspection_ca_name: String,
}

impl UpArgs {
    fn services(&self) -> ServiceConfig {
        let defaults = ServiceConfig::default();
        ServiceConfig {
            journal_capacity: self.journal_capacity,
            journal_file: self.journal_file.clone(),
            seed: self.seed.unwrap_or(defaults.seed),
            live_response_timeout: std::time::Duration::from_secs(self.live_response_timeout),
            cnc_max_hold: std::time::Duration::from_secs(self.cnc_max_hold),
            ..defaults
        }
    }

    fn lab_options(&self) -> LabOptions {
        LabOptions {
            bind: self.bind,
            https_port: self.https_port,
            http_port: self.http_port,
            dns_port: self.dns_port,
            connect_proxy_port: self.connect_proxy_port,
            inspect_proxy_port: self.inspect_proxy_port,
            proxy_ip: None,
            admin_port: self.admin_port,
            services: self.services(),
            faults_file: self.faults.clone(),
            region: self.region,
            state_dir: self.state_dir.clone(),
            pki: PkiOptions {
                algorithm: self.key_algorithm,
                inspection_ca_name: self.inspection_ca_name.clone(),
            },
        }
    }
}

/// Installs the log subscriber (stderr), honouring `RUST_LOG`.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a command; `Ok(true)` when every outcome was as expected.
pub async fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Demo { format, region } => {
            let report = demo::run(&DemoOptions { region }).await?;
            print(&report.render(format)?)?;
            Ok(report.all_as_expected())
        }
        Command::Endpoints {
            region,
            connectivity,
            format,
        } => {
            let selected = endpoints::select(region, connectivity);
            print(&endpoints::render(&selected, format)?)?;
            Ok(true)
        }
        Command::Up(args) => up(args).await,
        Command::Env { manifest, proxy } => {
            let lab = crate::manifest::Manifest::read(&manifest)?;
            print(&crate::running::exports(&manifest, &lab, proxy)?)?;
            Ok(true)
        }
        Command::Hunt {
            query,
            manifest,
            format,
        } => {
            let lab = crate::manifest::Manifest::read(&manifest)?;
            match crate::running::hunt(&lab, &query).await? {
                Ok(result) => {
                    print(&crate::running::render_hunt(&result, format)?)?;
                    Ok(true)
                }
                Err(message) => Err(anyhow::anyhow!("the query was refused: {message}")),
            }
        }
        Command::Wait { manifest, timeout } => {
            let ready =
                crate::running::wait(&manifest, std::time::Duration::from_secs(timeout)).await?;
            if !ready {
                eprintln!(
                    "mdelab: the lab of {} was not ready within {timeout} s",
                    manifest.display()
                );
            }
            Ok(ready)
        }
        Command::Proxy(command) => crate::proxy_cmd::run(command).await,
        Command::Certify(args) => crate::certify::run(args).await,
        Command::Scenario(command) => crate::scenario::run(command).await,
        Command::Analyze(args) => crate::analyze::run(args).await,
    }
}

async fn up(args: UpArgs) -> Result<bool> {
    let lab = Lab::start(&args.lab_options()).await?;
    let manifest = lab.manifest();
    if let Some(path) = &args.manifest {
        manifest.write(path)?;
    }
    let row = |name: &str, value: String| format!("  {name:<14} {value}\n");
    let mut summary = format!("mdelab is up ({} PKI)\n", manifest.key_algorithm);
    summary.push_str(&row("dns", format!("{} (udp+tcp)", manifest.dns)));
    summary.push_str(&row("https", manifest.https.to_string()));
    summary.push_str(&row("http", manifest.http.to_string()));
    summary.push_str(&row("connect proxy", lab.connect_proxy().addr.to_string()));
    summary.push_str(&row("inspect proxy", lab.inspect_proxy().addr.to_string()));
    summary.push_str(&row(
        "admin",
        format!("http://{} (token in the manifest)", lab.admin_addr()),
    ));
    summary.push_str(&row("trust", manifest.trust_bundle.display().to_string()));
    summary.push_str(&row("hosts", manifest.hosts_file.display().to_string()));
    if let Some(path) = &args.manifest {
        summary.push_str(&row("manifest", path.display().to_string()));
    }
    summary.push_str("Stop with Ctrl-C or SIGTERM.\n");
    let signals = StopSignals::install()?;
    print(&summary)?;
    signals.wait().await?;
    lab.shutdown().await?;
    if let Some(path) = &args.manifest {
        // A stale manifest would point tools at ports nobody serves any more.
        let _ = std::fs::remove_file(path);
    }
    eprintln!("mdelab stopped");
    Ok(true)
}

/// SIGINT and SIGTERM handlers, installed *before* a service announces it is ready, so a
/// signal sent right after the announcement stops it cleanly instead of killing it.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers.
    pub(crate) fn install() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt()).context("failed to listen for SIGINT")?,
                term: signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for either signal.
    pub(crate) async fn wait(mut self) -> Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("failed to listen for Ctrl-C")?;
        Ok(())
    }
}

/// Prints to stdout; a closed pipe (e.g. `| head`) is not an error.
fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("failed to write to stdout"),
    }
}
