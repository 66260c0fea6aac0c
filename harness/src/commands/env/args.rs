//! `mdelab env` options.

use std::path::PathBuf;

/// Options of `mdelab env`.
#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    /// The running lab's manifest (required unless `MDELAB_MANIFEST` is set).
    #[arg(long, env = "MDELAB_MANIFEST", value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Which lab proxy to export.
    #[arg(long, value_enum, default_value_t)]
    pub proxy: EnvProxy,
}

/// Which lab proxy `mdelab env` points tools at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvProxy {
    /// The plain CONNECT proxy (pins hold).
    #[default]
    Connect,
    /// The TLS-inspecting proxy (pinned clients fail: the point of the lab).
    Inspect,
}
