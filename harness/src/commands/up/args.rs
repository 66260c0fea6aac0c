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
    /// Memory the lab's stores may hold in all (events, journal, blobs, Live Response, split by
    /// documented shares; see PROTOCOL.md): bytes, or with a KiB/MiB/GiB suffix.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub memory_budget: u64,
    /// Key algorithm of the lab PKI.
    #[arg(long, default_value = "ecdsa-p256")]
    pub key_algorithm: KeyAlgorithm,
    /// Common name of the inspection CA.
    #[arg(long, default_value = mdelab_certs::pki::DEFAULT_INSPECTION_CA_NAME)]
    pub inspection_ca_name: String,
}

/// A size in bytes: a whole number, optionally followed by `KiB`, `MiB` or `GiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 1GiB, 512MiB, 800000000)"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (KiB, MiB or GiB)")),
    };
    let bytes = n
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes < 16 << 20 {
        return Err(format!("{text:?} is below the 16MiB the lab needs to run"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("800000000"), Ok(800_000_000));
        assert!(parse_size("1GB").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1KiB").is_err(), "too small to run");
    }
}
