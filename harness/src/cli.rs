//! The `mdelab` command line: the top-level parser and its dispatch. Names are stable: scripts
//! and CI depend on them.
//!
//! Each subcommand's options are its own `args.rs` under [`crate::commands`].

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::commands::analyze::AnalyzeArgs;
use crate::commands::certify::CertifyArgs;
use crate::commands::demo::DemoArgs;
use crate::commands::endpoints::EndpointsArgs;
use crate::commands::env::EnvArgs;
use crate::commands::hunt::HuntArgs;
use crate::commands::proxy::ProxyCommand;
use crate::commands::scenario::ScenarioCommand;
use crate::commands::up::UpArgs;
use crate::commands::wait::WaitArgs;
use crate::commands::{analyze, certify, demo, endpoints, env, hunt, proxy, scenario, up, wait};

/// An offline imitation of the Microsoft Defender for Endpoint cloud, with a pinning sensor.
#[derive(Debug, Parser)]
#[command(name = "mdelab", version, about)]
pub struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress or announcements on stderr (errors still print); stdout is unchanged.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pinning demonstration in-process; exit 0 iff every outcome is as expected.
    Demo(DemoArgs),
    /// Run the lab until SIGINT/SIGTERM; write the manifest once ready.
    Up(UpArgs),
    /// Run one lab proxy alone (`connect` or `inspect`).
    #[command(subcommand)]
    Proxy(ProxyCommand),
    /// Print shell exports pointing tools at a running lab: `eval "$(mdelab env --manifest F)"`.
    Env(EnvArgs),
    /// Block until a lab started elsewhere is ready (exit 0), or the timeout passes (exit 1).
    Wait(WaitArgs),
    /// Certify a proxy for MDE: run the connectivity suite through it against the lab.
    Certify(CertifyArgs),
    /// Proxy-precedence scenarios: which proxy the sensor really uses.
    #[command(subcommand)]
    Scenario(ScenarioCommand),
    /// The Client Analyzer's connectivity view of a machine profile or a proxy.
    Analyze(AnalyzeArgs),
    /// Advanced hunting on a running lab: a KQL subset over DeviceNetworkEvents.
    Hunt(HuntArgs),
    /// Print the endpoint catalog.
    Endpoints(EndpointsArgs),
}

/// Parses the process's command line.
pub fn parse() -> Result<Cli, clap::Error> {
    Cli::try_parse()
}

/// A hint for a command-line error the user may not see the cause of: `--lab` taken from
/// `MDELAB_MANIFEST` conflicting with options of a lab started here (`certify --bind …`).
pub fn parse_hint(err: &clap::Error) -> Option<String> {
    let manifest = std::env::var_os(crate::commands::MANIFEST_ENV)?;
    (err.kind() == clap::error::ErrorKind::ArgumentConflict && err.to_string().contains("--lab"))
        .then(|| {
            format!(
                "note: --lab comes from {}={}; unset it to start a lab here \
                 (`env -u {0} mdelab …`)",
                crate::commands::MANIFEST_ENV,
                manifest.to_string_lossy()
            )
        })
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
    crate::commands::progress::set_quiet(cli.quiet);
    match cli.command {
        Command::Demo(args) => demo::execute(&args).await,
        Command::Up(args) => up::execute(&args).await,
        Command::Proxy(command) => proxy::execute(command).await,
        Command::Env(args) => env::execute(&args),
        Command::Wait(args) => wait::execute(&args).await,
        Command::Certify(args) => certify::execute(&args).await,
        Command::Scenario(command) => scenario::execute(command).await,
        Command::Analyze(args) => analyze::execute(&args).await,
        Command::Hunt(args) => hunt::execute(&args).await,
        Command::Endpoints(args) => endpoints::execute(&args),
    }
}
