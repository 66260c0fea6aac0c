//! `mdelab endpoints`: the catalog, filtered, as a table or JSON.

mod args;

pub use args::EndpointsArgs;

use anyhow::Result;
use mdelab_catalog::{Catalog, Connectivity, Endpoint, Region};

use crate::report::{self, ListFormat};

/// The endpoints matching the filters (region `None` = every region; model `None` = both).
pub fn select(region: Option<Region>, model: Option<Connectivity>) -> Vec<&'static Endpoint> {
    Catalog::mde()
        .endpoints()
        .iter()
        .filter(|e| region.is_none_or(|r| e.region.is_none_or(|er| er == r)))
        .filter(|e| model.is_none_or(|m| e.models.includes(m)))
        .collect()
}

/// Renders the listing.
pub fn render(endpoints: &[&Endpoint], format: ListFormat) -> Result<String> {
    match format {
        ListFormat::Json => report::json::pretty(endpoints),
        ListFormat::Table => Ok(report::table::endpoints(endpoints)),
    }
}

/// Runs `mdelab endpoints`: prints the listing; always as expected.
pub fn execute(args: &EndpointsArgs) -> Result<bool> {
    let selected = select(args.region, args.connectivity);
    super::print(&render(&selected, args.format)?)?;
    Ok(true)
}
