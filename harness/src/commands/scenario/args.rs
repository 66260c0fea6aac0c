//! `mdelab scenario` options.

use crate::report::{Format, ListFormat};

/// `mdelab scenario …`.
#[derive(Debug, clap::Subcommand)]
pub enum ScenarioCommand {
    /// List the named scenarios.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: ListFormat,
    },
    /// Run a named scenario (or `all`): per service, the route taken, the proxy that carried
    /// it (from the proxies' access logs) and the outcome, against the write-up. Exit 0 iff
    /// every one matches.
    Run {
        /// The scenario (see `mdelab scenario list`), or `all`.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Time the emulated device allows each step (connect, handshake, response), in
        /// milliseconds; a blocked route costs this much.
        #[arg(long, default_value_t = 500)]
        step_timeout_ms: u64,
    },
    /// Print a named scenario's machine profile (TOML), e.g. to edit it for
    /// `mdelab analyze --profile FILE`.
    Profile {
        /// The scenario.
        name: String,
    },
}
