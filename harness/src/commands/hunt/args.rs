//! `mdelab hunt` options.

use std::path::PathBuf;

/// Options of `mdelab hunt`.
#[derive(Debug, clap::Args)]
pub struct HuntArgs {
    /// The query, e.g. `DeviceNetworkEvents | where ActionType == "ConnectionSuccess" | take 10`.
    pub query: String,
    /// The running lab's manifest (required unless `MDELAB_MANIFEST` is set).
    #[arg(long, env = "MDELAB_MANIFEST", value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: HuntFormat,
}

/// Output format of `mdelab hunt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum HuntFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// `{"columns": [...], "rows": [[...]]}`.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}
