//! `mdelab analyze`: the Client Analyzer's connectivity view. (Placeholder: being written.)

use anyhow::Result;

/// Options of `mdelab analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {}

/// Runs the analysis; `Ok(true)` when every URL group is reachable.
pub async fn run(_args: AnalyzeArgs) -> Result<bool> {
    anyhow::bail!("analyze is not implemented yet")
}
