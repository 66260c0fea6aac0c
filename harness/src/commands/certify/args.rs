//! `mdelab certify` options: the proxy under test, the suite's sizes, and the lab it runs
//! against (started here, or a running one given by its manifest).

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use mdelab_catalog::{Connectivity, Region};

use crate::report::Format;

/// Which connectivity models to certify for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelChoice {
    /// Standard connectivity only (winatp-gw-*, *-v20.events.data…, blob accounts).
    Standard,
    /// Streamlined connectivity only (*.endpoint.security.microsoft.com).
    Streamlined,
    /// Both models (a proxy usually serves devices of both).
    #[default]
    Both,
}

impl ModelChoice {
    /// "standard", "streamlined" or "both".
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Streamlined => "streamlined",
            Self::Both => "both",
        }
    }

    /// The models chosen.
    pub fn models(self) -> Vec<Connectivity> {
        match self {
            Self::Standard => vec![Connectivity::Standard],
            Self::Streamlined => vec![Connectivity::Streamlined],
            Self::Both => Connectivity::ALL.to_vec(),
        }
    }
}

/// Options of `mdelab certify`.
#[derive(Clone, Debug, clap::Args)]
pub struct CertifyArgs {
    /// The proxy to certify, `http://host:port` (the port is required).
    #[arg(long, value_name = "URL")]
    pub proxy: String,
    /// Credentials a logged-on user has for the proxy (`USER:PASSWORD`). The suite still runs
    /// without them, as the sensor (SYSTEM) does; the report only notes whether the proxy
    /// accepts them.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub proxy_user: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The tenant's region.
    #[arg(long, default_value = "us")]
    pub region: Region,
    /// Which connectivity models to certify for.
    #[arg(long, value_enum, default_value_t)]
    pub connectivity: ModelChoice,
    /// Seconds the CnC long poll is held (a proxy that cuts idle tunnels sooner fails).
    /// Default 120; against a running lab (`--lab`), at most the lab's hold cap
    /// (`mdelab up --cnc-max-hold`, read from its admin API), with a note saying so. A `--hold`
    /// above that cap is refused before the suite runs.
    #[arg(long, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub hold: Option<u64>,
    /// Size of the sample upload, in MiB.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub upload_mib: u64,
    /// Number of 1DS posts per connectivity model.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub posts: u64,
    /// Also check that the proxy refuses a destination outside MDE (it must not be an open relay).
    #[arg(long)]
    pub check_deny: bool,
    /// The non-MDE destination `--check-deny` asks for.
    #[arg(long, value_name = "HOST:PORT", default_value = "www.example.org:443")]
    pub deny_target: String,
    /// Manifest of a running `mdelab up` to certify against (it must serve on ports 443 and 80
    /// of an address the proxy resolves the catalog names to). `MDELAB_MANIFEST` (exported by
    /// `mdelab env`) counts as `--lab`. Without either, a lab is started here on the standard
    /// ports of `--bind` (unset `MDELAB_MANIFEST` to use `--bind`, `--dns-port`, `--state-dir`).
    #[arg(long, value_name = "MANIFEST", env = "MDELAB_MANIFEST")]
    pub lab: Option<PathBuf>,
    /// Address of the lab started here (HTTPS 443, HTTP 80, DNS `--dns-port`; needs root).
    #[arg(long, default_value = "127.0.0.2", conflicts_with = "lab")]
    pub bind: IpAddr,
    /// DNS port of the lab started here (UDP and TCP; 0 = ephemeral).
    #[arg(long, default_value_t = 53, conflicts_with = "lab")]
    pub dns_port: u16,
    /// Keep the lab's PKI and files (hosts file included) here, reused across runs.
    #[arg(long, value_name = "DIR", conflicts_with = "lab")]
    pub state_dir: Option<PathBuf>,
}

/// `CertifyArgs` parsed alone (for tools and tests that call [`certify`] directly).
#[derive(clap::Parser)]
#[command(name = "certify", no_binary_name = true)]
struct Standalone {
    #[command(flatten)]
    args: CertifyArgs,
}

/// The CnC hold when `--hold` is not given (capped by a running lab's setting).
pub const DEFAULT_HOLD_SECS: u64 = 120;

impl CertifyArgs {
    /// Seconds the CnC long poll is held: `--hold`, or [`DEFAULT_HOLD_SECS`].
    pub fn hold_secs(&self) -> u64 {
        self.hold.unwrap_or(DEFAULT_HOLD_SECS)
    }

    /// Parses the options as `mdelab certify` would, e.g.
    /// `["--proxy", "http://127.0.0.1:3128", "--hold", "2"]`; every default applies.
    pub fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        <Standalone as clap::Parser>::try_parse_from(args).map(|s| s.args)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn options_parse_with_their_defaults() {
        let args = CertifyArgs::parse_from(["--proxy", "http://127.0.0.1:3128"]).unwrap();
        assert_eq!(
            (args.hold_secs(), args.upload_mib, args.posts, args.region),
            (120, 64, 50, Region::Us)
        );
        assert_eq!(args.connectivity, ModelChoice::Both);
        assert_eq!(args.bind, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(!args.check_deny);
        assert!(CertifyArgs::parse_from(["--proxy", "x:1", "--hold", "0"]).is_err());
        assert!(
            CertifyArgs::parse_from(["--proxy", "x:1", "--lab", "m.json", "--bind", "127.0.0.9"])
                .is_err(),
            "--bind belongs to the lab started here"
        );
    }
}
