//! `mdelab up` options.

use std::net::IpAddr;
use std::path::PathBuf;

use mdelab_catalog::Region;
use mdelab_certs::KeyAlgorithm;

/// Options of `mdelab up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Address every listener binds; one that is not loopback (an interface address, or
    /// 0.0.0.0 for all of them) exposes the lab to the network and needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Allow --bind on a non-loopback address (e.g. for a proxy appliance on the network).
    #[arg(long)]
    pub allow_remote: bool,
    /// Append the TLS session secrets of the lab's HTTPS listener and of both sides of its
    /// inspecting proxy to FILE (NSS key-log format, for Wireshark). Default: the
    /// SSLKEYLOGFILE environment variable, else none. The file holds secrets (created 0600).
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,
    /// Keep the PKI and lab files here (reused across runs); default: fresh, in a temp folder.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Write the manifest (JSON) here once the lab is ready.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// HTTPS port of the mock cloud (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub https_port: u16,
    /// Plain HTTP port of the mock cloud (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub http_port: u16,
    /// DNS port, UDP and TCP (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub dns_port: u16,
    /// Port of the lab's plain CONNECT proxy (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub connect_proxy_port: u16,
    /// Port of the lab's TLS-inspecting proxy (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub inspect_proxy_port: u16,
    /// Port of the admin API (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    pub admin_port: u16,
    /// The region tools and the sensor default to (the lab serves every region).
    #[arg(long, default_value = "us")]
    pub region: Region,
    /// Request journal capacity (entries); 0 switches it off.
    #[arg(long, default_value_t = 10_000)]
    pub journal_capacity: usize,
    /// Also append every journal entry as a JSON line to this file.
    #[arg(long)]
    pub journal_file: Option<PathBuf>,
    /// Fault rules to load at start (TOML, `[[fault]]` tables).
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Seed of every random choice (fault probabilities, jitter).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds a Live Response session may stay pending or connected before it times out.
    #[arg(long, default_value_t = 1800)]
    pub live_response_timeout: u64,
    /// Longest a CnC long poll is held, in seconds.
    #[arg(long, default_value_t = 30)]
    pub cnc_max_hold: u64,
    /// Key algorithm of the lab PKI.
    #[arg(long, default_value = "ecdsa-p256")]
    pub key_algorithm: KeyAlgorithm,
    /// Common name of the inspection CA.
    #[arg(long, default_value = mdelab_certs::pki::DEFAULT_INSPECTION_CA_NAME)]
    pub inspection_ca_name: String,
}
