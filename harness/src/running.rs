//! Commands for a lab that is already running, found through its manifest: `mdelab env` (shell
//! exports that point ordinary tools at the lab) and `mdelab wait` (block until it is ready).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::admin_client::AdminClient;
use crate::manifest::Manifest;

/// Which lab proxy `mdelab env` points tools at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvProxy {
    /// The plain CONNECT proxy (pins hold).
    #[default]
    Connect,
    /// The TLS-inspecting proxy (pinned clients fail: the point of the lab).
    Inspect,
}

/// Shell exports for a running lab, for `eval "$(mdelab env --manifest FILE)"`.
///
/// Both spellings of the proxy variables are set: curl reads only lowercase `http_proxy`, most
/// other tools either. The CA variables point at the lab trust bundle (never the inspection CA).
pub fn exports(manifest_path: &Path, manifest: &Manifest, proxy: EnvProxy) -> Result<String> {
    let proxy_addr = match proxy {
        EnvProxy::Connect => manifest.connect_proxy,
        EnvProxy::Inspect => manifest.inspect_proxy,
    }
    .context("the manifest names no such proxy")?;
    let url = format!("http://{proxy_addr}");
    let bundle = manifest.trust_bundle.display().to_string();
    let manifest_path =
        std::path::absolute(manifest_path).unwrap_or_else(|_| manifest_path.to_owned());
    let mut vars: Vec<(&str, String)> = vec![
        ("HTTPS_PROXY", url.clone()),
        ("https_proxy", url.clone()),
        ("HTTP_PROXY", url.clone()),
        ("http_proxy", url),
        ("NO_PROXY", "localhost,127.0.0.1,::1".into()),
        ("no_proxy", "localhost,127.0.0.1,::1".into()),
        ("SSL_CERT_FILE", bundle.clone()),
        ("CURL_CA_BUNDLE", bundle.clone()),
        ("REQUESTS_CA_BUNDLE", bundle),
        ("MDELAB_MANIFEST", manifest_path.display().to_string()),
    ];
    if let Some(admin) = manifest.admin {
        vars.push(("MDELAB_ADMIN", format!("http://{admin}")));
        vars.push(("MDELAB_ADMIN_TOKEN", manifest.admin_token.clone()));
    }
    Ok(vars
        .into_iter()
        .map(|(k, v)| format!("export {k}={}\n", shell_quote(&v)))
        .collect())
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Waits until the manifest exists and the lab's admin API says ready; `Ok(false)` on timeout.
pub async fn wait(manifest_path: &Path, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    // Another process is starting the lab: there is nothing to subscribe to, so poll briefly.
    let pause = Duration::from_millis(50);
    loop {
        if let Ok(manifest) = Manifest::read(manifest_path)
            && let Some(admin) = manifest.admin
            && AdminClient::new(admin, manifest.admin_token.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
