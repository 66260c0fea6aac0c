//! `mdelab up`: run the lab until SIGINT/SIGTERM; write the manifest once ready.

mod args;

pub use args::UpArgs;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use mdelab_certs::PkiOptions;
use mdelab_mock_cloud::ServiceConfig;

use crate::keylog::KeyLogFile;
use crate::lab::{Lab, LabOptions, reachable_ip};
use crate::manifest::Manifest;
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
        .with_memory_budget(self.memory_budget)
    }

    /// Refuses a non-loopback `--bind` without `--allow-remote`.
    fn check_bind(&self) -> Result<()> {
        if !self.bind.is_loopback() && !self.allow_remote {
            anyhow::bail!(
                "--bind {} is not a loopback address: it would expose the lab's DNS, mock cloud, \
                 proxies and admin API to the network; pass --allow-remote to do that on purpose",
                self.bind
            );
        }
        Ok(())
    }

    /// The key-log file asked for: `--keylog`, else a non-empty `SSLKEYLOGFILE` (as curl and
    /// browsers honour it), and where that came from.
    fn keylog_path(&self) -> Option<(PathBuf, &'static str)> {
        if let Some(path) = &self.keylog {
            return Some((path.clone(), "--keylog"));
        }
        std::env::var_os("SSLKEYLOGFILE")
            .filter(|value| !value.is_empty())
            .map(|value| (PathBuf::from(value), "SSLKEYLOGFILE"))
    }

    /// The lab these options ask for.
    fn lab_options(&self, key_log: Option<Arc<dyn rustls::KeyLog>>) -> LabOptions {
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
            key_log,
        }
    }
}

/// Runs `mdelab up`: starts the lab, writes the manifest, prints where everything listens,
/// then serves until SIGINT or SIGTERM and removes the manifest again. Shutdown takes at most
/// the connection shutdown deadline (5 s by default) whatever clients do; a second signal
/// during shutdown exits at once.
pub async fn execute(args: &UpArgs) -> Result<bool> {
    args.check_bind()?;
    // Before anything that a signal's default action would leave behind (the manifest, the
    // key log): a SIGTERM from now on stops the lab through the normal path.
    let mut signals = super::StopSignals::install()?;
    let keylog_path = args.keylog_path();
    let key_log = match &keylog_path {
        Some((path, _)) => Some(Arc::new(KeyLogFile::create(path)?)),
        None => None,
    };
    let shared: Option<Arc<dyn rustls::KeyLog>> = key_log.clone().map(|k| k as _);
    let lab = Lab::start(&args.lab_options(shared)).await?;
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
    if let Some((path, from)) = &keylog_path {
        rows.push([
            "key log".into(),
            format!(
                "{} (from {from}; holds TLS session secrets: whoever reads it decrypts the lab's traffic)",
                path.display()
            ),
        ]);
    }
    let mut summary = format!("mdelab is up ({} PKI)\n", manifest.key_algorithm);
    summary.push_str(&table::columns("  ", &rows));
    if !args.bind.is_loopback() {
        summary.push_str(&exposure(&lab, &manifest, args.bind));
    }
    summary.push_str("Stop with Ctrl-C or SIGTERM.\n");
    super::print(&summary)?;
    signals.wait().await?;
    eprintln!("mdelab: stopping (signal again to exit at once)");
    tokio::select! {
        stopped = lab.shutdown() => stopped?,
        again = signals.wait() => {
            again?;
            if let Some(path) = &args.manifest {
                let _ = std::fs::remove_file(path);
            }
            eprintln!("mdelab: second signal: exiting without waiting for the lab to stop");
            std::process::exit(130);
        }
    }
    if let Some(key_log) = &key_log
        && key_log.dropped() > 0
    {
        eprintln!(
            "mdelab: {} TLS secrets were not written to {} (cap reached or write failed)",
            key_log.dropped(),
            key_log.path().display()
        );
    }
    if let Some(path) = &args.manifest {
        // A stale manifest would point tools at ports nobody serves any more.
        let _ = std::fs::remove_file(path);
    }
    eprintln!("mdelab stopped");
    Ok(true)
}

/// What a non-loopback `--bind` exposes to the network, listener by listener, and what guards
/// each (as the lab behaves, not as configured elsewhere).
fn exposure(lab: &Lab, manifest: &Manifest, bind: IpAddr) -> String {
    let on = |addr: SocketAddr| SocketAddr::new(bind, addr.port()).to_string();
    let proxy_policy = if lab.destinations().allows_unlisted() {
        "any destination (unlisted ones resolved and dialled)".to_owned()
    } else {
        "only catalog hosts (on the mock cloud): any other destination gets 403, nothing is \
         dialled"
            .to_owned()
    };
    let rows: Vec<[String; 3]> = vec![
        [
            "dns".into(),
            format!("{} udp+tcp", on(manifest.dns)),
            "authoritative for the catalog's names only: NXDOMAIN inside its zones, REFUSED \
             outside; never recurses"
                .into(),
        ],
        [
            "https".into(),
            on(manifest.https),
            "TLS for catalog host names only (no SNI or another name: access_denied alert); no \
             client authentication"
                .into(),
        ],
        [
            "http".into(),
            on(manifest.http),
            "plain HTTP for the catalog's port-80 hosts (CRL/CTL)".into(),
        ],
        [
            "connect proxy".into(),
            on(lab.connect_proxy().addr),
            format!("no authentication; reaches {proxy_policy}"),
        ],
        [
            "inspect proxy".into(),
            on(lab.inspect_proxy().addr),
            format!(
                "no authentication; inspects TLS with the lab's inspection CA; reaches \
                 {proxy_policy}"
            ),
        ],
        [
            "admin".into(),
            on(lab.admin_addr()),
            "plain HTTP: every route but /_lab/ready, /_lab/health and /_lab/openapi.yaml needs \
             the bearer token (readable on the wire); only loopback Host names and the bound address \
             are answered (421 otherwise)"
                .into(),
        ],
    ];
    let mut text = format!("Exposed to the network on {bind} (--allow-remote):\n");
    text.push_str(&table::columns("  ", &rows));
    let named = reachable_ip(bind);
    if named != bind {
        text.push_str(&format!(
            "DNS answers, the hosts file and the manifest name {named}: on {bind} the lab cannot \
             tell which address remote clients reach; bind that address instead for devices \
             that resolve through the lab DNS.\n"
        ));
    }
    text
}
