//! `mdelab up`: run the lab until SIGINT/SIGTERM; write the manifest once ready.

mod args;

pub use args::UpArgs;

use anyhow::Result;
use mdelab_certs::PkiOptions;
use mdelab_mock_cloud::ServiceConfig;

use crate::lab::{Lab, LabOptions};
use crate::report::table;

impl UpArgs {
    /// The mock cloud's service settings these options ask for.
    fn services(&self) -> ServiceConfig {
        let defaults = ServiceConfig::default();
        ServiceConfig {
            journal_capacity: self.journal_capacity,
            journal_file: self.journal_file.clone(),
            seed: self.seed.unwrap_or(defaults.seed),
            live_response_timeout: std::time::Duration::from_secs(self.live_response_timeout),
            cnc_max_hold: std::time::Duration::from_secs(self.cnc_max_hold),
            ..defaults
        }
    }

    /// The lab these options ask for.
    fn lab_options(&self) -> LabOptions {
        LabOptions {
            bind: self.bind,
            https_port: self.https_port,
            http_port: self.http_port,
            dns_port: self.dns_port,
            connect_proxy_port: self.connect_proxy_port,
            inspect_proxy_port: self.inspect_proxy_port,
            proxy_ip: None,
            admin_port: self.admin_port,
            services: self.services(),
            faults_file: self.faults.clone(),
            region: self.region,
            state_dir: self.state_dir.clone(),
            pki: PkiOptions {
                algorithm: self.key_algorithm,
                inspection_ca_name: self.inspection_ca_name.clone(),
            },
        }
    }
}

/// Runs `mdelab up`: starts the lab, writes the manifest, prints where everything listens,
/// then serves until SIGINT or SIGTERM and removes the manifest again.
pub async fn execute(args: &UpArgs) -> Result<bool> {
    let lab = Lab::start(&args.lab_options()).await?;
    let manifest = lab.manifest();
    if let Some(path) = &args.manifest {
        manifest.write(path)?;
    }
    let mut rows: Vec<[String; 2]> = vec![
        ["dns".into(), format!("{} (udp+tcp)", manifest.dns)],
        ["https".into(), manifest.https.to_string()],
        ["http".into(), manifest.http.to_string()],
        ["connect proxy".into(), lab.connect_proxy().addr.to_string()],
        ["inspect proxy".into(), lab.inspect_proxy().addr.to_string()],
        [
            "admin".into(),
            format!("http://{} (token in the manifest)", lab.admin_addr()),
        ],
        ["trust".into(), manifest.trust_bundle.display().to_string()],
        ["hosts".into(), manifest.hosts_file.display().to_string()],
    ];
    if let Some(path) = &args.manifest {
        rows.push(["manifest".into(), path.display().to_string()]);
    }
    let mut summary = format!("mdelab is up ({} PKI)\n", manifest.key_algorithm);
    summary.push_str(&table::columns("  ", &rows));
    summary.push_str("Stop with Ctrl-C or SIGTERM.\n");
    let signals = super::StopSignals::install()?;
    super::print(&summary)?;
    signals.wait().await?;
    lab.shutdown().await?;
    if let Some(path) = &args.manifest {
        // A stale manifest would point tools at ports nobody serves any more.
        let _ = std::fs::remove_file(path);
    }
    eprintln!("mdelab stopped");
    Ok(true)
}
