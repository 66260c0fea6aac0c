//! `mdelab proxy connect|inspect`: run one lab proxy alone, in front of anything in the lab.
//!
//! With `--lab MANIFEST` the proxy reaches every catalog host of a running `mdelab up` (and
//! nothing else); the intercepting proxy mints from that lab's inspection CA (or from the CA
//! given with `--ca-cert/--ca-key`) and verifies upstream chains against the lab roots. Each
//! access record is printed to stdout as one JSON line when its connection ends.

mod args;

pub use args::{CommonArgs, InspectArgs, ProxyCommand};

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mdelab_catalog::Catalog;
use mdelab_certs::{Authority, KeyAlgorithm, LeafIssuer, Pki};
use mdelab_proxy::{AccessLog, Credentials, Destinations};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::lab::catalog_destinations;
use crate::manifest::Manifest;

/// Runs `mdelab proxy`: the proxy until SIGINT/SIGTERM, printing its access records.
pub async fn execute(command: ProxyCommand) -> Result<bool> {
    let token = CancellationToken::new();
    let (running, kind) = match command {
        ProxyCommand::Connect(args) => {
            let (listener, destinations, _manifest) = prepare(&args).await?;
            let mut config = mdelab_proxy::connect::ConnectConfig::new(
                args.name.clone().unwrap_or_else(|| "connect".into()),
                destinations,
            );
            config.credentials = credentials(&args)?;
            (
                mdelab_proxy::connect::spawn(listener, config, &token)?,
                "connect",
            )
        }
        ProxyCommand::Inspect(args) => {
            let (listener, destinations, lab) = prepare(&args.common).await?;
            let Some(manifest) = lab else {
                bail!(
                    "the intercepting proxy needs --lab MANIFEST (or {}): it verifies upstream chains against the lab roots",
                    super::MANIFEST_ENV
                );
            };
            let pki_dir = manifest.state_dir.join("pki");
            let pki = Pki::load(&pki_dir).with_context(|| {
                format!("failed to load the lab PKI from {}", pki_dir.display())
            })?;
            let issuer = match (&args.ca_cert, &args.ca_key) {
                (Some(cert), Some(key)) => external_issuer(cert, key)?,
                _ => pki.inspection().clone(),
            };
            let mut bypass = args.bypass.clone();
            if args.bypass_mde {
                bypass.extend(Catalog::mde().inspection_bypass());
            }
            let mut config = mdelab_proxy::intercept::InterceptConfig::new(
                args.common.name.clone().unwrap_or_else(|| "inspect".into()),
                destinations,
                issuer,
                pki.trust_anchors(),
            );
            config.credentials = credentials(&args.common)?;
            config.bypass = bypass;
            (
                mdelab_proxy::intercept::spawn(listener, config, &token)?,
                "inspect",
            )
        }
    };
    let mut signals = super::StopSignals::install()?;
    println!("mdelab proxy {kind} listening on {}", running.addr());
    let printer = tokio::spawn(print_records(running.log()));
    signals.wait().await?;
    running.shutdown().await;
    printer.abort();
    Ok(true)
}

async fn prepare(args: &CommonArgs) -> Result<(TcpListener, Destinations, Option<Manifest>)> {
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "listening on a non-loopback address");
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let manifest = args.lab.as_deref().map(Manifest::read).transpose()?;
    let destinations = match &manifest {
        Some(m) => catalog_destinations(m.https, m.http),
        None if args.allow_unlisted => Destinations::new(),
        None => bail!(
            "give --lab MANIFEST or set {} (reach the lab's catalog hosts), or --allow-unlisted \
             (reach anything: an open relay); the proxy never relays by default",
            super::MANIFEST_ENV
        ),
    };
    Ok((
        listener,
        destinations.allow_unlisted(args.allow_unlisted),
        manifest,
    ))
}

fn credentials(args: &CommonArgs) -> Result<Option<Credentials>> {
    args.require_auth
        .as_deref()
        .map(|s| {
            let (user, password) = s
                .split_once(':')
                .context("--require-auth takes USER:PASSWORD")?;
            Ok(Credentials::new(user, password))
        })
        .transpose()
}

fn external_issuer(cert: &std::path::Path, key: &std::path::Path) -> Result<LeafIssuer> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("failed to read {}", p.display()))
    };
    let authority = Authority::from_pem(&read(cert)?, &read(key)?, None, "--ca-cert")
        .context("failed to load the CA given with --ca-cert/--ca-key")?;
    let algorithm = authority.algorithm().unwrap_or(KeyAlgorithm::EcdsaP256);
    LeafIssuer::new(Arc::new(authority), algorithm).context("failed to make a leaf key")
}

/// Prints every access record as one JSON line, as it is written.
async fn print_records(log: AccessLog) {
    let mut last = 0;
    loop {
        let Some(record) = log
            .wait_for(|r| r.id > last, Duration::from_secs(3600))
            .await
        else {
            continue;
        };
        last = record.id;
        if let Ok(line) = serde_json::to_string(&record) {
            println!("{line}");
        }
    }
}
