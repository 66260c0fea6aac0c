//! `mdelab wait` options.

use std::path::PathBuf;

/// Options of `mdelab wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The manifest `mdelab up --manifest` will write (required unless `MDELAB_MANIFEST` is
    /// set).
    #[arg(long, env = "MDELAB_MANIFEST", value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Seconds to wait at most.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}
