//! `mdelab wait`: block until a lab started elsewhere, found through its manifest, is ready.

mod args;

pub use args::WaitArgs;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::admin_client::AdminClient;
use crate::manifest::Manifest;

/// Runs `mdelab wait`: as expected iff the lab became ready in time (else a note on stderr).
pub async fn execute(args: &WaitArgs) -> Result<bool> {
    let path = super::manifest_path(args.manifest.as_deref())?;
    let ready = wait(path, Duration::from_secs(args.timeout)).await?;
    if !ready {
        eprintln!(
            "mdelab: the lab of {} was not ready within {} s",
            path.display(),
            args.timeout
        );
    }
    Ok(ready)
}

/// Waits until the manifest exists and the lab's admin API says ready; `Ok(false)` on timeout.
pub async fn wait(manifest_path: &Path, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    // Another process is starting the lab: there is nothing to subscribe to, so poll briefly.
    let pause = Duration::from_millis(50);
    loop {
        // Each probe gets what is left of the deadline (at least 100 ms), so a port that accepts
        // and never answers cannot outlast `--timeout`.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        if let Ok(manifest) = Manifest::read(manifest_path)
            && let Some(admin) = manifest.admin
            && AdminClient::new(admin, manifest.admin_token.clone())
                .with_timeout(left)
                .ready()
                .await
                .unwrap_or(false)
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause).await;
    }
}
