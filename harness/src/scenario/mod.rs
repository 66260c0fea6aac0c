//! Proxy-precedence scenarios: which proxy the sensor really uses. (Placeholder: being written.)

use anyhow::Result;

/// `mdelab scenario …`.
#[derive(Debug, clap::Subcommand)]
pub enum ScenarioCommand {
    /// List the named scenarios.
    List,
}

/// Runs a scenario command; `Ok(true)` when every outcome is as expected.
pub async fn run(command: ScenarioCommand) -> Result<bool> {
    match command {
        ScenarioCommand::List => Ok(true),
    }
}
