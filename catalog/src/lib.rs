//! The MDE endpoint catalog: one data table that DNS names, certificates, probes, pins, the
//! proxies' destination tables and the reports all derive from.
//!
//! It is built from two tables: [`regions::REGIONS`] (one row per geography, giving its
//! datacenters, storage accounts and host prefixes) and [`shared`] (worldwide hosts and the
//! wildcard host families). Every row cites its source in `reference/mde-network-facts.md`
//! (`S1`, `S10`…); names that no public source lists are marked `inferred`.
//!
//! [`protocol`] holds the header and event names that both the device and the cloud speak.

pub mod common_schema;
mod device;
pub mod protocol;
mod regions;
mod shared;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::Serialize;

pub use regions::{REGIONS, RegionSpec};
pub use shared::DANGEROUS_DOMAINS;

/// Which chain issues a host's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// The chain the sensor pins (CnC, cyber data, cloud protection).
    Pinned,
    /// The Azure-like chain: trusted, not pinned (blob storage, shared hosts).
    Azure,
}

impl Profile {
    /// A short stable name ("pinned", "azure").
    pub fn name(self) -> &'static str {
        match self {
            Self::Pinned => "pinned",
            Self::Azure => "azure",
        }
    }
}

/// A geography a tenant's data lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// United States.
    Us,
    /// Europe.
    Eu,
    /// United Kingdom.
    Uk,
    /// Australia.
    Au,
    /// Switzerland.
    Ch,
    /// India.
    In,
}

impl Region {
    /// Every region, in catalog order.
    pub const ALL: [Self; 6] = [Self::Us, Self::Eu, Self::Uk, Self::Au, Self::Ch, Self::In];

    /// The short lowercase name used on the command line ("us", "eu"…).
    pub fn name(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
            Self::Uk => "uk",
            Self::Au => "au",
            Self::Ch => "ch",
            Self::In => "in",
        }
    }

    /// The region's row in [`REGIONS`].
    pub fn spec(self) -> &'static RegionSpec {
        REGIONS
            .iter()
            .find(|r| r.region == self)
            .unwrap_or(&REGIONS[0])
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| {
                r.name() == lower
                    || r.spec().partner_geo.eq_ignore_ascii_case(s)
                    || r.spec().maps_geo == lower
            })
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|r| r.name()).collect();
                format!(
                    "unknown region {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// How a device is onboarded: which set of URLs it talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Connectivity {
    /// Service-specific host names per region (winatp-gw-*, *-v20.events.data…, blob accounts).
    Standard,
    /// One domain, `*.endpoint.security.microsoft.com`.
    Streamlined,
}

impl Connectivity {
    /// Both models.
    pub const ALL: [Self; 2] = [Self::Standard, Self::Streamlined];

    /// The lowercase name ("standard", "streamlined").
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Streamlined => "streamlined",
        }
    }
}

impl fmt::Display for Connectivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Connectivity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "standard" => Ok(Self::Standard),
            "streamlined" => Ok(Self::Streamlined),
            other => Err(format!(
                "unknown connectivity model {other:?} (expected standard or streamlined)"
            )),
        }
    }
}

/// Which connectivity models an endpoint belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Models {
    /// Only devices onboarded with the standard package.
    Standard,
    /// Only devices onboarded with the streamlined package.
    Streamlined,
    /// Both (worldwide hosts such as CRL/CTL).
    Both,
}

impl Models {
    /// Whether a device on `model` uses this endpoint.
    pub fn includes(self, model: Connectivity) -> bool {
        matches!(
            (self, model),
            (Self::Both, _)
                | (Self::Standard, Connectivity::Standard)
                | (Self::Streamlined, Connectivity::Streamlined)
        )
    }
}

/// The service family an endpoint belongs to (the Client Analyzer's URL groups, and more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// EDR command and control (CnC gateway; also carries Live Response actions).
    CommandAndControl,
    /// EDR cyber data (1DS / OneCollector on the v20 hosts).
    CyberData,
    /// Automated investigation (Auto-IR) sample storage.
    AutoIr,
    /// Malware sample submission storage.
    SampleUpload,
    /// Cloud-delivered protection (MAPS).
    CloudProtection,
    /// Security settings management (MdeConfigMgr / SenseCM).
    ConfigManager,
    /// Certificate revocation and trust lists on port 80.
    CrlCtl,
    /// Connected User Experiences and Telemetry, settings and vortex hosts.
    Telemetry,
    /// Live Response push (WNS) and sign-in hosts.
    LiveResponse,
    /// SmartScreen and network protection.
    SmartScreen,
    /// Defender Core service (1DS telemetry and ECS configuration).
    CoreService,
    /// Product and definition updates.
    Updates,
    /// Not MDE: lab-served web sites for user traffic (a benign one and the network-protection
    /// test domain), so network protection has something to allow and something to block.
    TestSite,
}

impl Service {
    /// The kebab-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::CommandAndControl => "command-and-control",
            Self::CyberData => "cyber-data",
            Self::AutoIr => "auto-ir",
            Self::SampleUpload => "sample-upload",
            Self::CloudProtection => "cloud-protection",
            Self::ConfigManager => "config-manager",
            Self::CrlCtl => "crl-ctl",
            Self::Telemetry => "telemetry",
            Self::LiveResponse => "live-response",
            Self::SmartScreen => "smartscreen",
            Self::CoreService => "core-service",
            Self::Updates => "updates",
            Self::TestSite => "test-site",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// URL scheme of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// TLS on port 443.
    Https,
    /// Plain HTTP on port 80 (CRL/CTL).
    Http,
}

impl Scheme {
    /// The standard port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Https => 443,
            Self::Http => 80,
        }
    }

    /// "https" or "http".
    pub fn name(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Http => "http",
        }
    }
}

/// The HTTP method of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProbeMethod {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// POST with an empty body.
    Post,
}

impl ProbeMethod {
    /// The method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
        }
    }
}

/// How a URL answers a connectivity probe (reference §1.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Method the probe uses.
    pub method: ProbeMethod,
    /// Path and query (e.g. `/test`, `/packages/?ostype=mac`).
    pub path: String,
    /// The status a healthy route gets.
    pub status: u16,
    /// The exact body, when the reference gives one (e.g. `OK`).
    pub body: Option<&'static str>,
}

/// One URL of the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Host name (lowercase).
    pub host: String,
    /// TCP port (443 or 80).
    pub port: u16,
    /// https or http.
    pub scheme: Scheme,
    /// Service family.
    pub service: Service,
    /// Region, or `None` for worldwide hosts.
    pub region: Option<Region>,
    /// Which connectivity models use it.
    pub models: Models,
    /// Which lab chain serves its certificate (`None` for plain HTTP).
    #[serde(serialize_with = "serialize_profile")]
    pub profile: Option<Profile>,
    /// Whether the sensor pins the chain (pinned-profile CAs) on this URL.
    pub pinned: bool,
    /// The connectivity probe and its expected answer.
    pub probe: Probe,
    /// Where the fact comes from (`S1`, `S10`…, or `inferred`).
    pub source: &'static str,
}

impl Endpoint {
    /// The probe URL, e.g. `https://winatp-gw-cus.microsoft.com/test`.
    pub fn url(&self) -> String {
        if self.port == self.scheme.default_port() {
            format!("{}://{}{}", self.scheme.name(), self.host, self.probe.path)
        } else {
            format!(
                "{}://{}:{}{}",
                self.scheme.name(),
                self.host,
                self.port,
                self.probe.path
            )
        }
    }

    /// Whether a device of `region` onboarded with `model` uses this URL.
    pub fn applies_to(&self, region: Region, model: Connectivity) -> bool {
        self.region.is_none_or(|r| r == region) && self.models.includes(model)
    }
}

fn serialize_profile<S: serde::Serializer>(p: &Option<Profile>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(p.name()),
        None => s.serialize_none(),
    }
}

/// A family of host names served by pattern (`*.blob.core.windows.net`) rather than listed one
/// by one: storage accounts, WNS front-ends and the like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostFamily {
    /// `*.suffix` pattern.
    pub pattern: &'static str,
    /// Service family of hosts in it.
    pub service: Service,
    /// Which lab chain serves their certificates.
    #[serde(serialize_with = "serialize_profile")]
    pub profile: Option<Profile>,
    /// Whether the sensor pins them.
    pub pinned: bool,
    /// What the account/host root answers (400 for blob accounts without a container).
    pub root_status: u16,
}

/// What the lab needs to know to serve one host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// Service family.
    pub service: Service,
    /// Certificate chain.
    pub profile: Profile,
    /// Whether the sensor pins it.
    pub pinned: bool,
}

/// The whole catalog.
#[derive(Debug)]
pub struct Catalog {
    endpoints: Vec<Endpoint>,
    families: Vec<HostFamily>,
    /// Exact HTTPS host → what serves it; derived from `endpoints` once.
    https_hosts: BTreeMap<String, HostInfo>,
}

static MDE: LazyLock<Catalog> = LazyLock::new(|| {
    let mut endpoints = Vec::new();
    for spec in REGIONS {
        regions::push_endpoints(spec, &mut endpoints);
    }
    shared::push_endpoints(&mut endpoints);
    Catalog::new(endpoints, shared::families())
});

impl Catalog {
    /// The MDE catalog.
    pub fn mde() -> &'static Self {
        &MDE
    }

    fn new(endpoints: Vec<Endpoint>, families: Vec<HostFamily>) -> Self {
        // A host's service is that of its first URL (a streamlined gateway's first URL is its
        // CnC or MAPS probe; its /storage paths come after).
        let mut https_hosts = BTreeMap::new();
        for e in &endpoints {
            if let Some(profile) = e.profile {
                https_hosts.entry(e.host.clone()).or_insert(HostInfo {
                    service: e.service,
                    profile,
                    pinned: e.pinned,
                });
            }
        }
        Self {
            endpoints,
            families,
            https_hosts,
        }
    }

    /// Every URL.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The URLs a device of `region` onboarded with `model` uses.
    pub fn for_device(
        &self,
        region: Region,
        model: Connectivity,
    ) -> impl Iterator<Item = &Endpoint> {
        self.endpoints
            .iter()
            .filter(move |e| e.applies_to(region, model))
    }

    /// The wildcard host families.
    pub fn families(&self) -> &[HostFamily] {
        &self.families
    }

    /// Exact HTTPS host names, sorted.
    pub fn https_hosts(&self) -> impl Iterator<Item = &str> {
        self.https_hosts.keys().map(String::as_str)
    }

    /// Every name the lab DNS must answer: exact hosts and `*.suffix` family patterns.
    pub fn dns_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.endpoints.iter().map(|e| e.host.clone()).collect();
        names.extend(self.families.iter().map(|f| f.pattern.to_owned()));
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The lab-served test sites (not MDE; see [`Service::TestSite`]).
    pub fn test_sites(&self) -> impl Iterator<Item = &HostFamily> {
        self.families
            .iter()
            .filter(|f| f.service == Service::TestSite)
    }

    /// The names an inspecting proxy must splice for MDE to work: every exact catalog host and
    /// every family except `*.blob.core.windows.net`. Microsoft's guidance (S5) is to exempt
    /// only the MDE storage accounts, never all of blob storage, and those accounts are listed
    /// exactly.
    pub fn inspection_bypass(&self) -> Vec<String> {
        let mut names: Vec<String> = self.endpoints.iter().map(|e| e.host.clone()).collect();
        names.extend(
            self.families
                .iter()
                .filter(|f| f.pattern != BLOB_STORAGE_FAMILY && f.service != Service::TestSite)
                .map(|f| f.pattern.to_owned()),
        );
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The family whose pattern matches `host`, the longest suffix winning.
    pub fn family_of(&self, host: &str) -> Option<&HostFamily> {
        let host = normalise(host);
        self.families
            .iter()
            .filter(|f| matches_pattern(f.pattern, &host))
            .max_by_key(|f| f.pattern.len())
    }

    /// How an HTTPS host is served: exact catalog hosts first, then families.
    pub fn https_host(&self, host: &str) -> Option<HostInfo> {
        let host = normalise(host);
        if let Some(info) = self.https_hosts.get(&host) {
            return Some(*info);
        }
        let family = self.family_of(&host)?;
        Some(HostInfo {
            service: family.service,
            profile: family.profile?,
            pinned: family.pinned,
        })
    }

    /// Whether `host` is a lab host on `port` (exact or in a family).
    pub fn serves(&self, host: &str, port: u16) -> bool {
        let host = normalise(host);
        match port {
            443 => self.https_host(&host).is_some(),
            80 => self
                .endpoints
                .iter()
                .any(|e| e.port == 80 && e.host == host),
            _ => false,
        }
    }

    /// The storage account `host` names (its first label) when it lies in the blob storage
    /// family ([`BLOB_STORAGE_FAMILY`]: `<account>.blob.core.windows.net`), `None` for any
    /// other host.
    pub fn blob_account(&self, host: &str) -> Option<String> {
        let host = normalise(host);
        if !self.is_blob_host(&host) {
            return None;
        }
        host.split('.').next().map(str::to_owned)
    }

    /// Whether `host` is an account of the blob storage family (exact catalog accounts
    /// included).
    pub fn is_blob_host(&self, host: &str) -> bool {
        self.family_of(host)
            .is_some_and(|f| f.pattern == BLOB_STORAGE_FAMILY)
    }

    /// The CnC gateway `host` names, if it is one: a standard `winatp-gw-<dc>.microsoft.com`
    /// or a streamlined `edr-<dc>.<geo>.endpoint.security.microsoft.com` name (the shapes the
    /// catalog's gateway rows have), with its region and model from the catalog when the
    /// host is listed. Streamlined names outside the list (the family serves any) have no
    /// region.
    pub fn gateway(&self, host: &str) -> Option<GatewayHost> {
        let host = normalise(host);
        let standard = host
            .strip_prefix(STANDARD_GATEWAY_PREFIX)
            .and_then(|rest| rest.strip_suffix(STANDARD_GATEWAY_SUFFIX))
            .filter(|dc| valid_datacenter(dc));
        let streamlined = || {
            let (dc, domain) = host
                .strip_prefix(STREAMLINED_GATEWAY_PREFIX)?
                .split_once('.')?;
            let geo = domain
                .strip_suffix(STREAMLINED_GATEWAY_DOMAIN)?
                .strip_suffix('.')?;
            (valid_datacenter(dc) && !geo.is_empty() && !geo.contains('.')).then_some(dc)
        };
        let (dc, by_name) = match standard {
            Some(dc) => (dc, Connectivity::Standard),
            None => (streamlined()?, Connectivity::Streamlined),
        };
        // The catalog knows the region (and confirms the model) of listed gateways.
        let listed = self
            .endpoints
            .iter()
            .find(|e| e.host == host && e.service == Service::CommandAndControl);
        let model = match listed.map(|e| e.models) {
            Some(Models::Standard) => Connectivity::Standard,
            Some(Models::Streamlined) => Connectivity::Streamlined,
            Some(Models::Both) | None => by_name,
        };
        Some(GatewayHost {
            region: listed.and_then(|e| e.region),
            datacenter: dc.to_owned(),
            model,
            host,
        })
    }

    /// The catalog probe for `host` and a request path (query included), if any.
    pub fn probe_for(&self, host: &str, scheme: Scheme, path_and_query: &str) -> Option<&Endpoint> {
        let host = normalise(host);
        self.endpoints
            .iter()
            .find(|e| e.scheme == scheme && e.host == host && e.probe.path == path_and_query)
    }
}

/// The `*.suffix` pattern of the Azure blob storage family: storage accounts
/// (`<account>.blob.core.windows.net`), where sample upload and Auto-IR blobs go.
pub const BLOB_STORAGE_FAMILY: &str = "*.blob.core.windows.net";

/// Standard CnC gateways are `winatp-gw-<dc>.microsoft.com` (S14).
const STANDARD_GATEWAY_PREFIX: &str = "winatp-gw-";
const STANDARD_GATEWAY_SUFFIX: &str = ".microsoft.com";
/// Streamlined CnC gateways are `edr-<dc>.<geo>.endpoint.security.microsoft.com` (S10).
const STREAMLINED_GATEWAY_PREFIX: &str = "edr-";
const STREAMLINED_GATEWAY_DOMAIN: &str = "endpoint.security.microsoft.com";
/// Standard Auto-IR storage accounts are `automatedirstrprd<dc>` (S14).
const AUTO_IR_ACCOUNT_PREFIX: &str = "automatedirstrprd";

/// A CnC gateway host, as [`Catalog::gateway`] recognises it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayHost {
    /// The host name (normalised).
    pub host: String,
    /// The connectivity model it serves.
    pub model: Connectivity,
    /// Its region, when the catalog lists it.
    pub region: Option<Region>,
    /// The datacenter suffix (`cus`), which names its Auto-IR storage account.
    pub datacenter: String,
}

impl GatewayHost {
    /// The poll path this gateway serves.
    pub fn poll_path(&self) -> &'static str {
        match self.model {
            Connectivity::Standard => "/commands/cnc",
            Connectivity::Streamlined => "/edr/commands/cnc",
        }
    }

    /// The gateway's Auto-IR storage account (`automatedirstrprd<dc>`).
    pub fn auto_ir_account(&self) -> String {
        format!("{AUTO_IR_ACCOUNT_PREFIX}{}", self.datacenter)
    }

    /// Where its storage account is reached: the account's blob host (standard) or the
    /// gateway's own `/storage/<account>` path (streamlined, reference §1.4).
    pub fn storage_base(&self) -> String {
        match self.model {
            Connectivity::Standard => format!("https://{}", blob_host(&self.auto_ir_account())),
            Connectivity::Streamlined => {
                format!("https://{}/storage/{}", self.host, self.auto_ir_account())
            }
        }
    }
}

/// The host of blob storage account `account` in [`BLOB_STORAGE_FAMILY`].
pub fn blob_host(account: &str) -> String {
    let suffix = BLOB_STORAGE_FAMILY.trim_start_matches('*');
    format!("{account}{suffix}")
}

fn valid_datacenter(dc: &str) -> bool {
    !dc.is_empty()
        && dc
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Lowercases and strips a trailing dot and a port.
pub fn normalise(host: &str) -> String {
    let host = host.trim_end_matches('.');
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    };
    host.to_ascii_lowercase()
}

/// Whether `host` matches an exact name or a `*.suffix` pattern (any depth below the suffix).
pub fn matches_pattern(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        // One or more whole, non-empty labels before the suffix (`a..x.example` is no name).
        Some(suffix) => host
            .len()
            .checked_sub(suffix.len())
            .and_then(|cut| {
                let (head, tail) = (host.get(..cut)?, host.get(cut..)?);
                tail.eq_ignore_ascii_case(suffix).then_some(head)
            })
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|labels| labels.split('.').all(|l| !l.is_empty())),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod routing_tests {
    use super::*;

    #[test]
    fn every_gateway_row_is_recognised_with_its_region_and_model() {
        let catalog = Catalog::mde();
        let gateways: Vec<&Endpoint> = catalog
            .endpoints()
            .iter()
            .filter(|e| {
                e.service == Service::CommandAndControl
                    && (e.host.starts_with("winatp-gw-") || e.host.starts_with("edr-"))
            })
            .collect();
        assert!(gateways.len() > 10, "{}", gateways.len());
        for e in gateways {
            let gateway = catalog
                .gateway(&e.host)
                .unwrap_or_else(|| panic!("{} is not recognised as a gateway", e.host));
            assert_eq!(gateway.region, e.region, "{}", e.host);
            assert!(e.models.includes(gateway.model), "{}", e.host);
        }
        assert_eq!(catalog.gateway("www.microsoft.com"), None);
        let unlisted = catalog
            .gateway("edr-abc.zz.endpoint.security.microsoft.com")
            .unwrap();
        assert_eq!(
            (
                unlisted.region,
                unlisted.model,
                unlisted.datacenter.as_str()
            ),
            (None, Connectivity::Streamlined, "abc")
        );
    }

    #[test]
    fn auto_ir_accounts_are_catalog_blob_hosts() {
        let catalog = Catalog::mde();
        for e in catalog.endpoints() {
            let Some(gateway) = catalog.gateway(&e.host) else {
                continue;
            };
            if gateway.model == Connectivity::Standard && gateway.region.is_some() {
                let account = gateway.auto_ir_account();
                let host = blob_host(&account);
                assert!(
                    catalog.endpoints().iter().any(|e| e.host == host),
                    "{host} (for {}) is not in the catalog",
                    gateway.host
                );
                assert_eq!(catalog.blob_account(&host), Some(account));
            }
        }
        assert!(catalog.is_blob_host("Whatever.blob.core.windows.net."));
        assert!(!catalog.is_blob_host("us-v20.events.data.microsoft.com"));
        assert_eq!(
            catalog.blob_account("us-v20.events.data.microsoft.com"),
            None
        );
    }
}
