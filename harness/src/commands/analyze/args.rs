//! `mdelab analyze` options.

use std::path::PathBuf;

use super::DEFAULT_STEP_TIMEOUT_MS;

/// Output of `mdelab analyze`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AnalyzeFormat {
    /// The Windows Client Analyzer's text (`Testing URL : …`, five methods per URL).
    #[default]
    Table,
    /// The macOS/Linux `mdatp connectivity test` view.
    Mdatp,
    /// The Windows view as JSON.
    Json,
    /// The Windows view as one self-contained HTML page.
    Html,
}

/// Options of `mdelab analyze`. With none, the analyzer's view of a directly connected device
/// (no proxy configured, nothing blocked) in a lab started for it.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A machine profile (TOML) to analyze.
    #[arg(long, conflicts_with = "scenario")]
    pub profile: Option<PathBuf>,
    /// The machine profile of a named scenario (see `mdelab scenario list`).
    #[arg(long)]
    pub scenario: Option<String>,
    /// A proxy given on the analyzer's command line (method 5): `http://host:port`,
    /// `host:port`, or a lab proxy name (`PROX02`).
    #[arg(long)]
    pub proxy: Option<String>,
    /// Analyze against a running lab (`mdelab up --manifest FILE`) instead of starting one;
    /// the profile may then name no lab proxy, and the gateway rule is not enforced. Without
    /// it, `MDELAB_MANIFEST` (exported by `mdelab env`) is used the same way, except with
    /// `--scenario` or a profile naming a lab proxy: those run in a lab of their own.
    #[arg(long, value_name = "MANIFEST")]
    pub lab: Option<PathBuf>,
    /// `MDELAB_MANIFEST` as read when the options were parsed (see `--lab`).
    #[arg(skip = std::env::var_os(crate::commands::MANIFEST_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from))]
    pub lab_from_env: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: AnalyzeFormat,
    /// Time each request step may take, in milliseconds (a blocked route's 12002 comes after
    /// this; every URL is probed at once, so a blocked device takes about this long in all).
    #[arg(long, default_value_t = DEFAULT_STEP_TIMEOUT_MS)]
    pub timeout_ms: u64,
}
