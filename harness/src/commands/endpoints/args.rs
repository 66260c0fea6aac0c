//! `mdelab endpoints` options.

use mdelab_catalog::{Connectivity, Region};

use crate::report::ListFormat;

/// Options of `mdelab endpoints`.
#[derive(Debug, clap::Args)]
pub struct EndpointsArgs {
    /// Only this region (worldwide hosts are always included).
    #[arg(long)]
    pub region: Option<Region>,
    /// Only this connectivity model.
    #[arg(long)]
    pub connectivity: Option<Connectivity>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}
