//! `mdelab certify`: the MDE connectivity suite run through a vendor's proxy.
//! (Placeholder: being written.)

use anyhow::Result;

/// Options of `mdelab certify`.
#[derive(Debug, clap::Args)]
pub struct CertifyArgs {
    /// The proxy to certify, `http://host:port`.
    #[arg(long)]
    pub proxy: String,
}

/// Runs the certification; `Ok(true)` when the proxy is fit for MDE.
pub async fn run(args: CertifyArgs) -> Result<bool> {
    anyhow::bail!("certify is not implemented yet (proxy {})", args.proxy)
}
