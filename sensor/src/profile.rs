//! Machine profiles: one Windows device's proxy settings, its user session, its trust store and
//! onboarding, and the lab around it (the gateway rule and the three proxies), as TOML.
//!
//! Every table and field is optional except `name`; unknown fields are refused, so a typo in
//! a profile is an error rather than a silently ignored setting. Proxies are named by the lab
//! topology of the write-up: `PROX01` (the WinHTTP proxy), `PROX02` (the WinINet proxy) and
//! `PROX03` (the static proxy). A setting may name any of them, as `PROX01` or `PROX01:3128`
//! (3128 is the nominal port the reports print; the real one is ephemeral).
//!
//! ```toml
//! name = "all-three"
//! [static_proxy]                 # HKLM\Software\Policies\Microsoft\Windows\DataCollection
//! telemetry_proxy_server = "PROX03:3128"
//! disable_enterprise_auth_proxy = true
//! [winhttp]                      # netsh winhttp set proxy PROX01:3128
//! proxy = "PROX01:3128"
//! [wininet]                      # the logged-on user's Internet settings
//! proxy = "PROX02:3128"
//! [user]
//! logged_on = true
//! [proxies.PROX01]
//! requires_auth = false
//! ```

use std::fmt;
use std::str::FromStr;

use mdelab_catalog::{Connectivity, Region};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The port reports print for every lab proxy (the write-up's proxies listen on 3128); the
/// real, ephemeral port is in the JSON output.
pub const NOMINAL_PORT: u16 = 3128;

/// The account the lab's authenticating proxies accept, which a logged-on user's session
/// offers (SYSTEM has none).
pub const LAB_USER: &str = "alice";
/// Its password.
pub const LAB_PASSWORD: &str = "alice-lab-password";

/// One of the lab's three proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LabProxy {
    /// The proxy WinHTTP is set to in the write-up.
    Prox01,
    /// The proxy the user's WinINet settings name.
    Prox02,
    /// The static proxy (`TelemetryProxyServer`).
    Prox03,
}

impl LabProxy {
    /// All three, in order.
    pub const ALL: [Self; 3] = [Self::Prox01, Self::Prox02, Self::Prox03];

    /// `PROX01`, `PROX02`, `PROX03`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prox01 => "PROX01",
            Self::Prox02 => "PROX02",
            Self::Prox03 => "PROX03",
        }
    }

    /// `PROX01:3128`: the name and the nominal port, as reports print a proxy address.
    pub fn nominal(self) -> String {
        format!("{}:{NOMINAL_PORT}", self.name())
    }
}

impl fmt::Display for LabProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LabProxy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, port) = match s.trim().split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (s.trim(), None),
        };
        if let Some(port) = port
            && port.parse::<u16>() != Ok(NOMINAL_PORT)
        {
            return Err(format!(
                "{s:?}: a lab proxy is PROX01, PROX02 or PROX03, optionally with its nominal port \
                 :{NOMINAL_PORT}"
            ));
        }
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("{s:?} is not a lab proxy (expected PROX01, PROX02 or PROX03)"))
    }
}

impl Serialize for LabProxy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for LabProxy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One directive of a PAC answer (`FindProxyForURL`'s return value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "proxy")]
pub enum PacDirective {
    /// `PROXY host:port`.
    Proxy(LabProxy),
    /// `DIRECT`.
    Direct,
}

/// What the lab's WPAD server answers: a PAC `return` value such as `"PROXY PROX01:3128; DIRECT"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacAnswer {
    /// The directives, in order (WinHTTP uses the first).
    pub directives: Vec<PacDirective>,
}

impl PacAnswer {
    /// The answer naming one lab proxy.
    pub fn proxy(proxy: LabProxy) -> Self {
        Self {
            directives: vec![PacDirective::Proxy(proxy)],
        }
    }

    /// The first directive (what WinHTTP uses).
    pub fn first(&self) -> PacDirective {
        self.directives
            .first()
            .copied()
            .unwrap_or(PacDirective::Direct)
    }
}

impl fmt::Display for PacAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .directives
            .iter()
            .map(|d| match d {
                PacDirective::Proxy(p) => format!("PROXY {}", p.nominal()),
                PacDirective::Direct => "DIRECT".to_owned(),
            })
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl FromStr for PacAnswer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut directives = Vec::new();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let mut words = part.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(kw), None, None) if kw.eq_ignore_ascii_case("DIRECT") => {
                    directives.push(PacDirective::Direct);
                }
                (Some(kw), Some(target), None) if kw.eq_ignore_ascii_case("PROXY") => {
                    directives.push(PacDirective::Proxy(target.parse()?));
                }
                _ => {
                    return Err(format!(
                        "{part:?} is not a PAC directive the lab serves (PROXY PROXnn:3128 or DIRECT)"
                    ));
                }
            }
        }
        if directives.is_empty() {
            return Err(format!("{s:?} has no PAC directive"));
        }
        Ok(Self { directives })
    }
}

impl Serialize for PacAnswer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PacAnswer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn de_parse<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

fn default_true() -> bool {
    true
}

fn default_region() -> Region {
    Region::Us
}

fn default_connectivity() -> Connectivity {
    Connectivity::Standard
}

/// A device's proxy settings, user session, trust store and onboarding, and the lab around it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MachineProfile {
    /// A short name (`winhttp-only`).
    pub name: String,
    /// One line saying what the profile is.
    #[serde(default)]
    pub description: String,
    /// Region and connectivity model of the onboarding package.
    #[serde(default)]
    pub onboarding: OnboardingSettings,
    /// The GPO "Configure connected user experiences and telemetry" settings.
    #[serde(default)]
    pub static_proxy: StaticProxy,
    /// The machine-wide WinHTTP proxy (SYSTEM services).
    #[serde(default)]
    pub winhttp: WinHttp,
    /// The user's WinINet (Internet Options) proxy.
    #[serde(default)]
    pub wininet: WinInet,
    /// Whether a user is logged on and what their session can offer a proxy.
    #[serde(default)]
    pub user: UserSession,
    /// The network's gateway rule.
    #[serde(default)]
    pub gateway: Gateway,
    /// The device's trust store.
    #[serde(default)]
    pub trust: TrustStore,
    /// How each lab proxy behaves.
    #[serde(default)]
    pub proxies: Topology,
    /// Network protection on the device: `off` (default), `audit` or `block`.
    #[serde(default)]
    pub network_protection: crate::netprot::NetworkProtection,
    /// How the sensor writes its 1DS batches: `json` (default) or `bond`, what a Windows
    /// sensor's native telemetry stack (the 1DS C++ SDK) sends.
    #[serde(default, skip_serializing_if = "is_json")]
    pub upload_encoding: crate::wire::UploadEncoding,
}

fn is_json(encoding: &crate::wire::UploadEncoding) -> bool {
    *encoding == crate::wire::UploadEncoding::Json
}

/// Onboarding: which region's URLs, and which connectivity model.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardingSettings {
    /// The tenant's region (`us`, `eu`…; default `us`).
    #[serde(default = "default_region", deserialize_with = "de_parse")]
    pub region: Region,
    /// `standard` (default) or `streamlined`.
    #[serde(default = "default_connectivity", deserialize_with = "de_parse")]
    pub connectivity: Connectivity,
}

impl Default for OnboardingSettings {
    fn default() -> Self {
        Self {
            region: default_region(),
            connectivity: default_connectivity(),
        }
    }
}

/// `HKLM\Software\Policies\Microsoft\Windows\DataCollection` and
/// `…\Windows Advanced Threat Protection\PreferStaticProxyForHttpRequest`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticProxy {
    /// `TelemetryProxyServer` (REG_SZ `host:port`): the sensor's static proxy.
    #[serde(default)]
    pub telemetry_proxy_server: Option<LabProxy>,
    /// `DisableEnterpriseAuthProxy` = 1: DiagTrack does not use the logged-on user's
    /// authenticated proxy.
    #[serde(default)]
    pub disable_enterprise_auth_proxy: bool,
    /// `PreferStaticProxyForHttpRequest` = 1: the sensor's other HTTP requests (CRL, sample
    /// storage, settings management) use the static proxy too.
    #[serde(default)]
    pub prefer_static_proxy_for_http_request: bool,
}

/// The machine-wide WinHTTP settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WinHttp {
    /// `netsh winhttp set proxy` (a named proxy).
    #[serde(default)]
    pub proxy: Option<LabProxy>,
    /// WinHTTP auto-discovery (WPAD) for SYSTEM services when no proxy is named.
    #[serde(default)]
    pub auto_detect: bool,
    /// What the lab's WPAD server answers (`"PROXY PROX01:3128"`, `"DIRECT"`); default: the
    /// named WinHTTP proxy when there is one, else there is no WPAD server.
    #[serde(default)]
    pub pac: Option<PacAnswer>,
}

/// The user's Internet settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WinInet {
    /// The proxy the user's Internet Options name.
    #[serde(default)]
    pub proxy: Option<LabProxy>,
}

/// The interactive session.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserSession {
    /// Whether a user is logged on (WinINet exists only in a user's session).
    #[serde(default)]
    pub logged_on: bool,
    /// Whether the user's session holds credentials the lab's authenticating proxies accept
    /// (default true).
    #[serde(default = "default_true")]
    pub has_credentials: bool,
}

impl Default for UserSession {
    fn default() -> Self {
        Self {
            logged_on: false,
            has_credentials: true,
        }
    }
}

/// The gateway between the device and the Internet.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Whether every direct connection of the device is dropped (default true, as in the
    /// write-up's lab); the proxies still reach the cloud.
    #[serde(default = "default_true")]
    pub blocks_direct: bool,
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            blocks_direct: true,
        }
    }
}

/// The device's trust store.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustStore {
    /// Whether policy pushed the TLS-inspection CA into it.
    #[serde(default)]
    pub inspection_ca: bool,
}

/// How each lab proxy behaves.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// PROX01.
    #[serde(rename = "PROX01", default)]
    pub prox01: ProxySettings,
    /// PROX02.
    #[serde(rename = "PROX02", default)]
    pub prox02: ProxySettings,
    /// PROX03.
    #[serde(rename = "PROX03", default)]
    pub prox03: ProxySettings,
}

impl Topology {
    /// One proxy's settings.
    pub fn get(&self, proxy: LabProxy) -> &ProxySettings {
        match proxy {
            LabProxy::Prox01 => &self.prox01,
            LabProxy::Prox02 => &self.prox02,
            LabProxy::Prox03 => &self.prox03,
        }
    }
}

/// One lab proxy.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// Demands Basic authentication (407 without).
    #[serde(default)]
    pub requires_auth: bool,
    /// Terminates TLS with the lab's inspection CA.
    #[serde(default)]
    pub inspects_tls: bool,
    /// Names spliced instead of inspected (exact hosts and `*.suffix`).
    #[serde(default)]
    pub bypass: Vec<String>,
    /// Splice every MDE host (the catalog's inspection bypass list).
    #[serde(default)]
    pub bypass_mde: bool,
    /// Nothing listens at its address (the device's connection is refused).
    #[serde(default)]
    pub unreachable: bool,
}

impl ProxySettings {
    /// A few words: "plain CONNECT", "inspects TLS, requires authentication"…
    pub fn describe(&self) -> String {
        if self.unreachable {
            return "unreachable".into();
        }
        let mut words = vec![if self.inspects_tls {
            "inspects TLS"
        } else {
            "plain CONNECT"
        }];
        if self.inspects_tls && (self.bypass_mde || !self.bypass.is_empty()) {
            words.push(if self.bypass_mde {
                "MDE hosts on the bypass list"
            } else {
                "with a bypass list"
            });
        }
        if self.requires_auth {
            words.push("requires authentication");
        }
        words.join(", ")
    }
}

impl MachineProfile {
    /// Parses and checks a profile.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let profile: Self = toml::from_str(text).map_err(|source| Error::ProfileSyntax {
            detail: source.to_string(),
        })?;
        profile.validate()?;
        Ok(profile)
    }

    /// Reads a profile file.
    pub fn read(path: &std::path::Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadProfile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| Error::InProfile {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Refuses combinations the lab cannot build.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |detail: String| Err(Error::InvalidProfile { detail });
        if self.name.trim().is_empty() {
            return invalid("the profile needs a name".to_owned());
        }
        for proxy in LabProxy::ALL {
            let s = self.proxies.get(proxy);
            if (s.bypass_mde || !s.bypass.is_empty()) && !s.inspects_tls {
                return invalid(format!(
                    "proxies.{proxy}: a bypass list only applies to a proxy that inspects TLS"
                ));
            }
            if s.unreachable && (s.requires_auth || s.inspects_tls) {
                return invalid(format!(
                    "proxies.{proxy}: an unreachable proxy cannot also authenticate or inspect"
                ));
            }
        }
        Ok(())
    }

    /// What the lab's WPAD server answers, if there is one: the explicit PAC answer, else the
    /// named WinHTTP proxy (the lab's WPAD points at the WinHTTP proxy, as in the write-up).
    pub fn wpad_answer(&self) -> Option<PacAnswer> {
        self.winhttp
            .pac
            .clone()
            .or_else(|| self.winhttp.proxy.map(PacAnswer::proxy))
    }

    /// Which lab proxies any setting names.
    pub fn referenced_proxies(&self) -> Vec<LabProxy> {
        let mut out: Vec<LabProxy> = [
            self.static_proxy.telemetry_proxy_server,
            self.winhttp.proxy,
            self.wininet.proxy,
        ]
        .into_iter()
        .flatten()
        .chain(
            self.wpad_answer()
                .into_iter()
                .flat_map(|a| a.directives)
                .filter_map(|d| match d {
                    PacDirective::Proxy(p) => Some(p),
                    PacDirective::Direct => None,
                }),
        )
        .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The configuration in words, one line per setting (deterministic).
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let proxy = |p: LabProxy| format!("{} ({})", p.nominal(), self.proxies.get(p).describe());
        match self.static_proxy.telemetry_proxy_server {
            Some(p) => lines.push(format!(
                "static proxy: TelemetryProxyServer={}, DisableEnterpriseAuthProxy={}, PreferStaticProxyForHttpRequest={}",
                proxy(p),
                u8::from(self.static_proxy.disable_enterprise_auth_proxy),
                u8::from(self.static_proxy.prefer_static_proxy_for_http_request)
            )),
            None => lines.push(format!(
                "static proxy: none (DisableEnterpriseAuthProxy={})",
                u8::from(self.static_proxy.disable_enterprise_auth_proxy)
            )),
        }
        let mut winhttp = match self.winhttp.proxy {
            Some(p) => format!("WinHTTP proxy: {} (named)", proxy(p)),
            None if self.winhttp.auto_detect => "WinHTTP proxy: auto-detect (WPAD)".to_owned(),
            None => "WinHTTP proxy: none (direct access)".to_owned(),
        };
        match self.wpad_answer() {
            Some(answer) => winhttp.push_str(&format!("; WPAD answers \"{answer}\"")),
            None => winhttp.push_str("; no WPAD server"),
        }
        lines.push(winhttp);
        lines.push(match self.wininet.proxy {
            Some(p) => format!("WinINet proxy: {}", proxy(p)),
            None => "WinINet proxy: none".to_owned(),
        });
        lines.push(if self.user.logged_on {
            format!(
                "user: logged on, {}",
                if self.user.has_credentials {
                    "has proxy credentials"
                } else {
                    "has no proxy credentials"
                }
            )
        } else {
            "user: nobody logged on".to_owned()
        });
        lines.push(format!(
            "gateway: {}; device trusts {}; onboarded {} {}",
            if self.gateway.blocks_direct {
                "blocks the device's direct connections"
            } else {
                "lets direct connections through"
            },
            if self.trust.inspection_ca {
                "the lab roots and the inspection CA"
            } else {
                "the lab roots only"
            },
            self.onboarding.region,
            self.onboarding.connectivity
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_profile_takes_every_default() {
        let p = MachineProfile::from_toml("name = \"bare\"").unwrap();
        assert_eq!(p.onboarding.region, Region::Us);
        assert_eq!(p.onboarding.connectivity, Connectivity::Standard);
        assert!(p.gateway.blocks_direct);
        assert!(!p.user.logged_on && p.user.has_credentials);
        assert!(p.static_proxy.telemetry_proxy_server.is_none());
        assert!(p.wpad_answer().is_none());
        assert!(p.referenced_proxies().is_empty());
    }

    #[test]
    fn the_upload_encoding_is_json_unless_the_profile_says_bond() {
        let p = MachineProfile::from_toml("name = \"bare\"").unwrap();
        assert_eq!(p.upload_encoding, crate::wire::UploadEncoding::Json);
        let p = MachineProfile::from_toml("name = \"n\"\nupload_encoding = \"bond\"").unwrap();
        assert_eq!(p.upload_encoding, crate::wire::UploadEncoding::Bond);
        assert!(MachineProfile::from_toml("name = \"n\"\nupload_encoding = \"xml\"").is_err());
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        for text in [
            "name = \"x\"\ncolour = \"red\"",
            "name = \"x\"\n[static_proxy]\ntelemetry_proxy = \"PROX03\"",
            "name = \"x\"\n[winhttp]\nproxi = \"PROX01\"",
            "name = \"x\"\n[wininet]\nproxy = \"PROX02\"\nbypass = []",
            "name = \"x\"\n[user]\nlogged_in = true",
            "name = \"x\"\n[gateway]\nblock = true",
            "name = \"x\"\n[trust]\ninspection = true",
            "name = \"x\"\n[onboarding]\ngeo = \"eu\"",
            "name = \"x\"\n[proxies.PROX04]\nrequires_auth = true",
            "name = \"x\"\n[proxies.PROX01]\nauth = true",
        ] {
            let err = MachineProfile::from_toml(text).unwrap_err();
            assert!(
                format!("{err:#}").contains("unknown field"),
                "{text}: {err:#}"
            );
        }
    }

    #[test]
    fn proxy_references_and_pac_answers_parse() {
        let p = MachineProfile::from_toml(
            "name = \"x\"\n[static_proxy]\ntelemetry_proxy_server = \"PROX03:3128\"\n\
             [winhttp]\nproxy = \"prox01\"\npac = \"PROXY PROX02:3128; DIRECT\"\n\
             [onboarding]\nregion = \"GW_EU\"\nconnectivity = \"streamlined\"",
        )
        .unwrap();
        assert_eq!(
            p.static_proxy.telemetry_proxy_server,
            Some(LabProxy::Prox03)
        );
        assert_eq!(p.winhttp.proxy, Some(LabProxy::Prox01));
        let pac = p.wpad_answer().unwrap();
        assert_eq!(pac.first(), PacDirective::Proxy(LabProxy::Prox02));
        assert_eq!(pac.to_string(), "PROXY PROX02:3128; DIRECT");
        assert_eq!(p.onboarding.region, Region::Eu);
        assert_eq!(
            p.referenced_proxies(),
            vec![LabProxy::Prox01, LabProxy::Prox02, LabProxy::Prox03]
        );
        for bad in [
            "[winhttp]\nproxy = \"PROX04\"",
            "[winhttp]\nproxy = \"PROX01:8080\"",
            "[winhttp]\npac = \"SOCKS PROX01:3128\"",
            "[onboarding]\nregion = \"mars\"",
            "[proxies.PROX01]\nbypass_mde = true",
            "[proxies.PROX03]\nunreachable = true\nrequires_auth = true",
        ] {
            assert!(
                MachineProfile::from_toml(&format!("name = \"x\"\n{bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn profile_errors_name_the_setting_and_the_file() {
        let err = MachineProfile::from_toml("name = \" \"").unwrap_err();
        assert_eq!(err.to_string(), "the profile needs a name");
        let err = MachineProfile::from_toml("name = \"x\"\n[proxies.PROX01]\nbypass_mde = true")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "proxies.PROX01: a bypass list only applies to a proxy that inspects TLS"
        );
        let missing = std::path::Path::new("/nonexistent/mdelab-profile.toml");
        let err = MachineProfile::read(missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to read the profile /nonexistent/mdelab-profile.toml"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "the I/O error is kept"
        );
    }

    #[test]
    fn the_named_winhttp_proxy_is_the_default_wpad_answer() {
        let p = MachineProfile::from_toml("name = \"x\"\n[winhttp]\nproxy = \"PROX01\"").unwrap();
        assert_eq!(p.wpad_answer(), Some(PacAnswer::proxy(LabProxy::Prox01)));
    }
}
