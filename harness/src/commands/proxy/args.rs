//! `mdelab proxy connect|inspect` options.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Options both proxies share.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// Where to listen (port 0 = ephemeral; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Manifest of a running `mdelab up`: reach its catalog hosts (and only those).
    #[arg(long, env = "MDELAB_MANIFEST", value_name = "MANIFEST")]
    pub lab: Option<PathBuf>,
    /// Demand Basic authentication with these credentials (`user:password`); 407 without.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub require_auth: Option<String>,
    /// Dial destinations outside the lab catalog too (an open relay: only where you mean it).
    #[arg(long)]
    pub allow_unlisted: bool,
    /// Instance name written into access records.
    #[arg(long)]
    pub name: Option<String>,
}

/// Options of the intercepting proxy.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Splice instead of inspecting this host or `*.suffix` pattern (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub bypass: Vec<String>,
    /// Splice every MDE host (the catalog's inspection bypass list).
    #[arg(long)]
    pub bypass_mde: bool,
    /// Mint from this CA certificate (PEM) instead of the lab's inspection CA.
    #[arg(long, requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    /// Private key (PEM) of `--ca-cert`.
    #[arg(long, requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
}

/// Which proxy to run.
#[derive(Debug, clap::Subcommand)]
pub enum ProxyCommand {
    /// Plain CONNECT proxy (tunnels bytes untouched; pins hold).
    Connect(CommonArgs),
    /// TLS-intercepting proxy (mints certificates; pinned clients refuse them).
    Inspect(InspectArgs),
}
