//! The analyzer's model: per URL the five methods' lines, per group its result id, per HTTPS
//! host its certificate-chain check ([`Analysis`], the Windows view), and the macOS/Linux view
//! ([`MdatpReport`]). Both serialise as the JSON view; their text is rendered by
//! [`crate::report::analyze`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mdelab_catalog::{Connectivity, Region};
use mdelab_sensor::Outcome;
use serde::Serialize;

/// One method's result for one URL.
#[derive(Clone, Debug, Serialize)]
pub struct MethodResult {
    /// 1 to 5.
    pub number: usize,
    /// `Default proxy`…
    pub name: &'static str,
    /// The analyzer's text after the colon.
    pub line: String,
    /// What the device saw (absent for `Doesn't exist` and WPAD failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// One URL's block.
#[derive(Clone, Debug, Serialize)]
pub struct UrlResult {
    /// The URL.
    pub url: String,
    /// Its analyzer group.
    pub group: &'static str,
    /// The five methods.
    pub methods: Vec<MethodResult>,
    /// Whether the script's parser counts it reachable.
    pub reachable: bool,
}

/// One group's summary.
#[derive(Clone, Debug, Serialize)]
pub struct GroupResult {
    /// `CnCURLs`…
    pub group: &'static str,
    /// URLs tested.
    pub urls: usize,
    /// URLs with no successful method.
    pub failed: usize,
    /// The script's result id, where it has one.
    pub result: Option<u32>,
}

/// One host's certificate-chain check.
#[derive(Clone, Debug, Serialize)]
pub struct ChainResult {
    /// The host.
    pub host: String,
    /// The leaf's issuer, when a chain came back.
    pub issuer: Option<String>,
    /// The issuer of the top certificate served (the root it chains to).
    pub root: Option<String>,
    /// The root the analyzer expects for that issuer, if it knows the issuer.
    pub expected_root: Option<String>,
    /// `None` when the chain is as expected; else 132027 (issuer not expected), 132026 (root
    /// mismatch) or 131028 (no chain).
    pub result: Option<u32>,
    /// In words.
    pub detail: String,
}

/// The proxy configuration line.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyConfig {
    /// `NamedWinHttp`, `AutoDetect` or `NoProxy`.
    pub method: &'static str,
    /// The address as printed (`PROX01:3128`), or empty.
    pub address: String,
    /// Its real address, when it is a lab proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_address: Option<SocketAddr>,
}

/// The Windows analyzer's connectivity view.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// The profile's name.
    pub profile: String,
    /// Region.
    pub region: Region,
    /// Connectivity model.
    pub connectivity: Connectivity,
    /// Where the analyzer ran.
    pub device: String,
    /// The `Proxy config:` line.
    pub proxy_config: ProxyConfig,
    /// One block per URL.
    pub urls: Vec<UrlResult>,
    /// One line per group.
    pub groups: Vec<GroupResult>,
    /// The proxy the certificate checks went through, as printed.
    pub chain_proxy: String,
    /// One line per HTTPS host.
    pub chains: Vec<ChainResult>,
    /// The lab proxies' real addresses.
    pub proxy_addrs: BTreeMap<String, SocketAddr>,
}

impl Analysis {
    /// Whether every group with a result id is all good (1300xx).
    pub fn all_groups_ok(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.result.is_none_or(|id| id / 1000 == 130))
    }

    /// The result id of a group.
    pub fn group_result(&self, group: &str) -> Option<u32> {
        self.groups.iter().find(|g| g.group == group)?.result
    }
}

/// The macOS/Linux `mdatp connectivity test` view.
#[derive(Clone, Debug, Serialize)]
pub struct MdatpReport {
    /// The proxy used, as printed.
    pub proxy: String,
    /// One entry per URL.
    pub urls: Vec<MdatpUrl>,
}

/// One URL of the mdatp view.
#[derive(Clone, Debug, Serialize)]
pub struct MdatpUrl {
    /// The URL.
    pub url: String,
    /// Whether it got its expected status.
    pub ok: bool,
    /// Why not.
    pub reason: Option<String>,
}

impl MdatpReport {
    /// Whether every URL passed.
    pub fn all_ok(&self) -> bool {
        self.urls.iter().all(|u| u.ok)
    }
}
