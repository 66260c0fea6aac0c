//! `mdelab demo` options.

use mdelab_catalog::Region;

use crate::report::Format;

/// Options of `mdelab demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The tenant's region.
    #[arg(long, default_value = "us")]
    pub region: Region,
}
