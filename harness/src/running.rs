//! Commands for a lab that is already running, found through its manifest: `mdelab env` (shell
//! exports that point ordinary tools at the lab), `mdelab wait` (block until it is ready) and
//! `mdelab hunt` (advanced hunting over what the cloud received).

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

/// Output format of `mdelab hunt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum HuntFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// `{"columns": [...], "rows": [[...]]}`.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// Runs a hunting query on a running lab; `Ok(Err(message))` when the lab refused the query.
pub async fn hunt(
    manifest: &Manifest,
    query: &str,
) -> Result<std::result::Result<serde_json::Value, String>> {
    let admin = manifest.admin.context("the manifest names no admin API")?;
    let client = AdminClient::new(admin, manifest.admin_token.clone());
    let (status, body) = client
        .call(
            http::Method::POST,
            "/_lab/hunt",
            Some(&serde_json::json!({"query": query})),
        )
        .await?;
    if status == 200 {
        return Ok(Ok(body));
    }
    let message = body["message"]
        .as_str()
        .unwrap_or("the lab refused the query");
    let position = body["position"].as_u64().unwrap_or(0) as usize;
    // Point at the place in the query, as a compiler would.
    let caret = format!("{}\n{}^", query, " ".repeat(position.min(query.len())));
    Ok(Err(format!("{message}\n{caret}")))
}

/// Renders a hunting answer.
pub fn render_hunt(result: &serde_json::Value, format: HuntFormat) -> Result<String> {
    let columns: Vec<String> = result["columns"]
        .as_array()
        .context("answer without columns")?
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_owned())
        .collect();
    let rows: Vec<Vec<String>> = result["rows"]
        .as_array()
        .context("answer without rows")?
        .iter()
        .map(|row| {
            row.as_array()
                .map(|cells| cells.iter().map(cell_text).collect())
                .unwrap_or_default()
        })
        .collect();
    Ok(match format {
        HuntFormat::Json => serde_json::to_string_pretty(result)? + "\n",
        HuntFormat::Csv => {
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .map(|c| csv_field(c))
                    .collect::<Vec<_>>()
                    .join(",")
                    + "\n"
            };
            let mut out = line(&columns);
            for row in &rows {
                out.push_str(&line(row));
            }
            out
        }
        HuntFormat::Table => {
            let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| {
                let padded: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}", w = *w))
                    .collect();
                padded.join("  ").trim_end().to_owned() + "\n"
            };
            let mut out = line(&columns);
            for row in &rows {
                out.push_str(&line(row));
            }
            out.push_str(&format!("({} rows)\n", rows.len()));
            out
        }
    })
}

fn cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunt_renders_table_and_csv() {
        let answer = serde_json::json!({"columns": ["DeviceId", "count_"], "rows": [["dev, \"a\"", 3], ["b", null]]});
        let csv = render_hunt(&answer, HuntFormat::Csv).unwrap();
        assert_eq!(csv, "DeviceId,count_\n\"dev, \"\"a\"\"\",3\nb,\n");
        let table = render_hunt(&answer, HuntFormat::Table).unwrap();
        assert!(
            table.starts_with("DeviceId  count_\ndev, \"a\"  3\nb\n"),
            "{table}"
        );
        assert!(table.ends_with("(2 rows)\n"));
    }

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
