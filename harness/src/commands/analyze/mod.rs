//! `mdelab analyze`: the MDE Client Analyzer's connectivity view of a machine profile (or of a
//! proxy given on the command line), run against the lab.
//!
//! The analyzer runs as SYSTEM on the device (reference §2.1): for every URL of its groups for
//! the device's region and connectivity model it tries five methods and prints one line each:
//!
//! 1. **Default proxy**: WinHTTP's configured proxy (`netsh winhttp`), else direct. For the
//!    SampleUpload and MdeConfigMgr groups, with a user logged on, the user's WinINet proxy
//!    (with the user's credentials): the lab's reading of test 3b, where those two groups
//!    alone were reachable with only a WinINet proxy.
//! 2. **Proxy auto discovery (WPAD)**: the proxy the lab's WPAD server answers.
//! 3. **Proxy disabled**: direct (the gateway rule drops it: a 12002 timeout).
//! 4. **Named proxy**: the static proxy (`TelemetryProxyServer`), or `Doesn't exist`.
//! 5. **Command line proxy**: `--proxy`, or `Doesn't exist`.
//!
//! An answer prints `Succeeded (<status>)` whatever the status (WinHTTP delivered a response,
//! a proxy's 407 included); a transport failure prints `Failed (<WinHTTP error>: …)`. The
//! summary then counts per URL like the script's parser (`(200)`, `(400)`, `(404)` or
//! `Succeeded (405)` on any line is a success; so a 407 is a failure) and gives each group
//! its result id. Last, the certificate-chain check fetches each HTTPS host's chain through
//! the analyzer's proxy (static first, then the command-line proxy, then WinHTTP's), trusting
//! anything, and flags an issuer it does not expect (132027, the signature of TLS inspection).
//!
//! `--format mdatp` prints the macOS/Linux view instead (`Testing connection with … [OK]`);
//!
//! Here: [`execute`] and the options; `args.rs` the command line, `env.rs` where the analyzer
//! runs, `analysis.rs` the checks, `model.rs` what they found. The text views are rendered by
//! [`crate::report::analyze`].

mod analysis;
mod args;
mod env;
mod model;

pub use analysis::{
    analyze, analyze_mdatp, analyzer_urls, expected_root, judge_chain, mdatp_urls, method_line,
};
pub use args::{AnalyzeArgs, AnalyzeFormat};
pub use model::{
    Analysis, ChainResult, GroupResult, MdatpReport, MdatpUrl, MethodResult, ProxyConfig, UrlResult,
};

use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::manifest::Manifest;
use crate::report;
use crate::scenario::profile::{LabProxy, MachineProfile};

/// Runs the analysis and prints its view; `Ok(true)` when every URL group is reachable
/// (130017…130021).
pub async fn execute(args: &AnalyzeArgs) -> Result<bool> {
    let profile = match (&args.profile, &args.scenario) {
        (Some(path), _) => MachineProfile::read(path)?,
        (None, Some(name)) => {
            let scenario = crate::scenario::find(name).with_context(|| {
                format!("no scenario named {name:?} (see `mdelab scenario list`)")
            })?;
            MachineProfile::from_toml(scenario.profile)?
        }
        (None, None) if args.proxy.is_some() => MachineProfile::from_toml(
            "name = \"command-line\"\ndescription = \"nothing configured; the proxy given on the command line\"",
        )?,
        (None, None) => MachineProfile::from_toml(DIRECT_DEVICE)?,
    };
    // MDELAB_MANIFEST stands for --lab only where a running lab can serve the device: not for
    // a scenario, nor for a profile or command-line proxy naming a lab proxy.
    let names_lab_proxy = !profile.referenced_proxies().is_empty()
        || args
            .proxy
            .as_deref()
            .is_some_and(|p| p.parse::<LabProxy>().is_ok());
    let from_env = args
        .lab_from_env
        .as_ref()
        .filter(|_| args.scenario.is_none() && !names_lab_proxy);
    let lab = match args.lab.as_ref().or(from_env) {
        Some(path) => Some(Manifest::read(path)?),
        None => None,
    };
    let options = AnalyzeOptions {
        profile,
        command_line_proxy: args.proxy.clone(),
        lab,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
    };
    let progress = super::progress::Progress::new("analyze", 1);
    progress.step(format_args!(
        "{}: every URL by five methods, then the certificate chains (a blocked route gives up after {} ms)",
        options.profile.name, args.timeout_ms
    ));
    let (text, ok) = match args.format {
        AnalyzeFormat::Mdatp => {
            let report = analyze_mdatp(&options).await?;
            (report.text(), report.all_ok())
        }
        AnalyzeFormat::Table => {
            let analysis = analyze(&options).await?;
            (analysis.text(), analysis.all_groups_ok())
        }
        AnalyzeFormat::Json => {
            let analysis = analyze(&options).await?;
            (analysis.json()?, analysis.all_groups_ok())
        }
        AnalyzeFormat::Html => {
            let analysis = analyze(&options).await?;
            (report::html::analysis(&analysis), analysis.all_groups_ok())
        }
    };
    drop(progress);
    super::print(&text)?;
    Ok(ok)
}

/// The device `mdelab analyze` analyzes when given no profile, scenario or proxy: as the real
/// Client Analyzer run with no arguments on a machine with no proxy set and a direct route out.
pub const DIRECT_DEVICE: &str = r#"name = "direct"
description = "no proxy configured; the device reaches the cloud directly"

[gateway]
blocks_direct = false
"#;

/// What to analyze.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    /// The device.
    pub profile: MachineProfile,
    /// Method 5: `http://host:port`, `host:port` or a lab proxy name.
    pub command_line_proxy: Option<String>,
    /// A running lab to use instead of starting one.
    pub lab: Option<Manifest>,
    /// Time each request step may take.
    pub timeout: Duration,
}

impl AnalyzeOptions {
    /// Analyze `profile` in a lab started for it, with the default step timeout.
    pub fn new(profile: MachineProfile) -> Self {
        Self {
            profile,
            command_line_proxy: None,
            lab: None,
            timeout: Duration::from_millis(DEFAULT_STEP_TIMEOUT_MS),
        }
    }
}

/// The default time a request step may take. Every URL is probed at once, so on a loaded
/// two-core machine a handshake can wait its turn for hundreds of milliseconds: 500 ms made a
/// healthy URL look blocked under load (seen in CI); 3 s does not, and a blocked device still
/// answers in about 3 s.
pub const DEFAULT_STEP_TIMEOUT_MS: u64 = 3_000;
