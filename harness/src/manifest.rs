//! The lab manifest: everything a tool needs to use a running lab, as JSON.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// What `mdelab up --manifest FILE` writes once the lab is ready. Paths are absolute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Lab DNS, UDP and TCP.
    pub dns: SocketAddr,
    /// Mock cloud HTTPS listener (every catalog host, by SNI).
    pub https: SocketAddr,
    /// Mock cloud plain HTTP listener (CRL/CTL hosts).
    pub http: SocketAddr,
    /// The lab's plain CONNECT proxy.
    pub connect_proxy: Option<SocketAddr>,
    /// The lab's TLS-inspecting proxy.
    pub inspect_proxy: Option<SocketAddr>,
    /// The admin API.
    pub admin: Option<SocketAddr>,
    /// Bearer token of the admin API (`Authorization: Bearer …`).
    pub admin_token: String,
    /// PEM bundle of the roots a lab device trusts (never the inspection CA).
    pub trust_bundle: PathBuf,
    /// PEM of the inspection CA.
    pub inspection_ca: PathBuf,
    /// /etc/hosts-style file mapping every exact catalog host to the lab address.
    pub hosts_file: PathBuf,
    /// Pins per endpoint class, curl syntax.
    pub pins: ManifestPins,
    /// Key algorithm of the PKI.
    pub key_algorithm: String,
    /// Folder holding the lab files (deleted at shutdown unless it is a `--state-dir`).
    pub state_dir: PathBuf,
}

/// Pins per endpoint class in curl `--pinnedpubkey` syntax (`sha256//…;sha256//…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPins {
    /// Pinned profile: leaf key, "MDE Lab Secure Server CA 2011", root.
    pub pinned: String,
    /// Azure profile: leaf key, issuing CA, root (the sensor does not pin these hosts).
    pub azure: String,
    /// The leaf key the inspection proxy mints with (what an intercepted host presents).
    pub inspection: String,
}

impl Manifest {
    /// Writes the manifest atomically (temp file + rename), so a reader never sees half of it.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_string_pretty(self).context("failed to serialise the manifest")?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json + "\n")
            .with_context(|| format!("failed to write {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("failed to move the manifest to {}", path.display()))
    }

    /// Reads a manifest written by `mdelab up`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the manifest {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not an mdelab manifest", path.display()))
    }
}
