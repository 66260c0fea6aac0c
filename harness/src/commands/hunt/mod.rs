//! `mdelab hunt`: advanced hunting (a KQL subset over `DeviceNetworkEvents`) on a lab started
//! elsewhere, found through its manifest, over what its cloud received.

mod args;

pub use args::{HuntArgs, HuntFormat};

use anyhow::{Context as _, Result};

use crate::admin_client::AdminClient;
use crate::manifest::Manifest;
use crate::report::{self, Grid};

/// Runs `mdelab hunt`: prints the answer; an error when the lab refused the query.
pub async fn execute(args: &HuntArgs) -> Result<bool> {
    let lab = Manifest::read(super::manifest_path(args.manifest.as_deref())?)?;
    match hunt(&lab, &args.query).await? {
        Ok(result) => {
            super::print(&render_hunt(&result, args.format)?)?;
            Ok(true)
        }
        Err(message) => Err(anyhow::anyhow!("the query was refused: {message}")),
    }
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

/// The answer (`{"columns": [...], "rows": [[...]]}`) as text cells; `null` is empty.
pub fn grid(result: &serde_json::Value) -> Result<Grid> {
    let columns = result["columns"]
        .as_array()
        .context("answer without columns")?
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_owned())
        .collect();
    let rows = result["rows"]
        .as_array()
        .context("answer without rows")?
        .iter()
        .map(|row| {
            row.as_array()
                .map(|cells| cells.iter().map(cell_text).collect())
                .unwrap_or_default()
        })
        .collect();
    Ok(Grid { columns, rows })
}

/// Renders a hunting answer.
pub fn render_hunt(result: &serde_json::Value, format: HuntFormat) -> Result<String> {
    let grid = grid(result)?;
    Ok(match format {
        HuntFormat::Json => report::json::pretty(result)? + "\n",
        HuntFormat::Csv => report::csv::grid(&grid),
        HuntFormat::Table => report::table::grid(&grid),
    })
}

fn cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
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
}
