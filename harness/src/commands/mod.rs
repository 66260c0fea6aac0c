//! The `mdelab` commands, one folder each: `args.rs` holds the command's clap types, `mod.rs`
//! builds its model (e.g. [`demo::run`] → [`crate::report::Report`]), which [`crate::report`]
//! renders, and has `execute(args)`: run, print, and say whether every outcome was as expected
//! (the exit status [`crate::cli::run`] hands back).
//!
//! `args.rs` beside the folders is clap's spelling of the report formats several commands share.
//!
//! `certify`, `analyze` and `scenario` are larger and split further: their checks or analysis,
//! their model and (for `scenario`) the named scenarios, the rig and the runner each have a
//! file of their own; their renderings are in [`crate::report`].

pub mod analyze;
mod args;
pub mod certify;
pub mod demo;
pub mod endpoints;
pub mod env;
pub mod hunt;
pub mod progress;
pub mod proxy;
pub mod scenario;
pub mod up;
pub mod wait;

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// Prints to stdout; a closed pipe (e.g. `| head`) is not an error.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("failed to write to stdout"),
    }
}

/// The environment variable naming a running lab's manifest, read wherever `--manifest` (or
/// `--lab MANIFEST`) is; `mdelab env` exports it.
pub const MANIFEST_ENV: &str = "MDELAB_MANIFEST";

/// The lab manifest of `--manifest` (or `MDELAB_MANIFEST`, which clap has already read into
/// it), or an error naming both.
pub(crate) fn manifest_path(path: Option<&Path>) -> Result<&Path> {
    path.with_context(|| {
        format!(
            "no lab manifest: give --manifest FILE or set {MANIFEST_ENV} \
             (`mdelab up --manifest FILE` writes one; `eval \"$(mdelab env --manifest FILE)\"` sets the variable)"
        )
    })
}

/// SIGINT and SIGTERM handlers, installed *before* a service announces it is ready, so a
/// signal sent right after the announcement stops it cleanly instead of killing it.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers.
    pub(crate) fn install() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt()).context("failed to listen for SIGINT")?,
                term: signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for either signal; may be called again to wait for the next one.
    pub(crate) async fn wait(&mut self) -> Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("failed to listen for Ctrl-C")?;
        Ok(())
    }
}
