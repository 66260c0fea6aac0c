//! `mdelab env`: shell exports that point ordinary tools at a lab started elsewhere, found
//! through its manifest.

mod args;

pub use args::{EnvArgs, EnvProxy};

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::manifest::Manifest;

/// Runs `mdelab env`: prints the exports; always as expected.
pub fn execute(args: &EnvArgs) -> Result<bool> {
    let path = super::manifest_path(args.manifest.as_deref())?;
    let manifest = Manifest::read(path)?;
    super::print(&exports(path, &manifest, args.proxy)?)?;
    Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
