//! Route selection: which proxy setting each service of the device uses, as a pure function of
//! the machine profile ([`select_route`]). This is the lab's reading of
//! `reference/proxy-precedence.md`; the scenarios then *observe* the routes on the wire.
//!
//! The rules, in order:
//!
//! 1. **User context.** Sample upload and security-settings management (MdeConfigMgr) can run
//!    in the logged-on user's context: with a user logged on and a WinINet proxy, they use it,
//!    with the user's credentials (tests 3b and 5).
//! 2. **Static proxy.** With `TelemetryProxyServer` set, the sensor's own services (cyber data,
//!    command and control, Live Response) use it, and so do its other HTTP requests (Auto-IR and
//!    sample storage, cloud protection, settings management, CRL/CTL) when
//!    `PreferStaticProxyForHttpRequest` = 1 (test 4: everything works through it). If the
//!    static proxy cannot be reached, the sensor falls back to a direct connection.
//! 3. **WinHTTP.** Every other SYSTEM service uses the machine's WinHTTP proxy: the named one,
//!    else the one WPAD finds (tests 1, 2 and 5). A proxy demanding authentication answers
//!    SYSTEM with 407, which SYSTEM cannot satisfy.
//! 4. **DiagTrack and the user's proxy.** Cyber data travels through DiagTrack, which uses the
//!    logged-on user's (authenticated) proxy unless `DisableEnterpriseAuthProxy` = 1: when
//!    SYSTEM has no proxy, or its proxy answers 407, cyber data goes through the user's WinINet
//!    proxy with the user's credentials (test 3: the cached signals go out once a user logs
//!    on; "works through the user's credentials" on an authenticated proxy).
//! 5. **Direct.** Otherwise SYSTEM goes direct, which the write-up's gateway blocks.
//!
//! WinINet is never used by SYSTEM otherwise: without a logged-on user it does not exist.

use std::fmt;

use mdelab_catalog::Service;
use serde::Serialize;

use crate::profile::MachineProfile;

/// The services of the device whose routes the scenarios observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SensorService {
    /// EDR cyber data (1DS uploads, through DiagTrack).
    CyberData,
    /// EDR command and control (the CnC gateway).
    CommandAndControl,
    /// Live Response (a session started from the portal, over the CnC channel).
    LiveResponse,
    /// Malware sample submission storage.
    SampleUpload,
    /// Automated investigation (Auto-IR) sample storage.
    AutoIr,
    /// Defender Antivirus cloud-delivered protection (MAPS).
    CloudProtection,
    /// Security settings management (MdeConfigMgr / SenseCM).
    ConfigManager,
    /// Certificate revocation and trust lists (port 80).
    CrlCtl,
    /// Not MDE: Windows Update, a SYSTEM service of the OS, for contrast (test 4: "not even
    /// Windows Update" gets out through the static proxy).
    WindowsUpdate,
}

/// Whether a service uses the static proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticUse {
    /// Always when it is set (the sensor's EDR, CnC and Live Response traffic).
    Always,
    /// Only with `PreferStaticProxyForHttpRequest` = 1.
    WhenPreferred,
    /// Never (not the sensor's traffic).
    Never,
}

/// Whether a service can use the logged-on user's WinINet route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserRoute {
    /// Runs in the user's context when a user is logged on: prefers the user's proxy.
    Preferred,
    /// DiagTrack's enterprise authenticated proxy: the user's proxy when SYSTEM has none or
    /// gets 407, unless `DisableEnterpriseAuthProxy` = 1.
    EnterpriseAuth,
    /// SYSTEM only.
    Never,
}

impl SensorService {
    /// Every service, in report order.
    pub const ALL: [Self; 9] = [
        Self::CyberData,
        Self::CommandAndControl,
        Self::LiveResponse,
        Self::SampleUpload,
        Self::AutoIr,
        Self::CloudProtection,
        Self::ConfigManager,
        Self::CrlCtl,
        Self::WindowsUpdate,
    ];

    /// The kebab-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::CyberData => "cyber-data",
            Self::CommandAndControl => "command-and-control",
            Self::LiveResponse => "live-response",
            Self::SampleUpload => "sample-upload",
            Self::AutoIr => "auto-ir",
            Self::CloudProtection => "cloud-protection",
            Self::ConfigManager => "config-manager",
            Self::CrlCtl => "crl-ctl",
            Self::WindowsUpdate => "windows-update",
        }
    }

    /// The catalog's service family whose URL the service's request goes to.
    pub fn catalog_service(self) -> Service {
        match self {
            Self::CyberData => Service::CyberData,
            Self::CommandAndControl | Self::LiveResponse => Service::CommandAndControl,
            Self::SampleUpload => Service::SampleUpload,
            Self::AutoIr => Service::AutoIr,
            Self::CloudProtection => Service::CloudProtection,
            Self::ConfigManager => Service::ConfigManager,
            Self::CrlCtl => Service::CrlCtl,
            Self::WindowsUpdate => Service::Updates,
        }
    }

    /// Whether it uses the static proxy.
    pub fn static_use(self) -> StaticUse {
        match self {
            Self::CyberData | Self::CommandAndControl | Self::LiveResponse => StaticUse::Always,
            Self::SampleUpload
            | Self::AutoIr
            | Self::CloudProtection
            | Self::ConfigManager
            | Self::CrlCtl => StaticUse::WhenPreferred,
            Self::WindowsUpdate => StaticUse::Never,
        }
    }

    /// Whether it can use the logged-on user's WinINet route.
    pub fn user_route(self) -> UserRoute {
        match self {
            Self::SampleUpload | Self::ConfigManager => UserRoute::Preferred,
            Self::CyberData => UserRoute::EnterpriseAuth,
            _ => UserRoute::Never,
        }
    }
}

impl fmt::Display for SensorService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A proxy setting a request can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteChoice {
    /// The static proxy (`TelemetryProxyServer`).
    Static,
    /// The named WinHTTP proxy.
    WinHttp,
    /// WinHTTP auto-discovery: the proxy the WPAD server's PAC answer names.
    Wpad,
    /// The logged-on user's WinINet proxy.
    WinInet,
    /// No proxy.
    Direct,
}

impl RouteChoice {
    /// "static", "winhttp", "wpad", "wininet", "direct".
    pub fn name(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::WinHttp => "winhttp",
            Self::Wpad => "wpad",
            Self::WinInet => "wininet",
            Self::Direct => "direct",
        }
    }
}

impl fmt::Display for RouteChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whose request it is: SYSTEM has no proxy credentials; a logged-on user does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    /// LocalSystem.
    System,
    /// The logged-on user.
    User,
}

impl Context {
    /// "SYSTEM" or "user".
    pub fn name(self) -> &'static str {
        match self {
            Self::System => "SYSTEM",
            Self::User => "user",
        }
    }
}

/// When a fall-back applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The proxy could not be reached (no TCP connection).
    Unreachable,
    /// The proxy answered 407.
    AuthRequired,
}

/// One route in a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Which setting.
    pub route: RouteChoice,
    /// Whose request.
    pub context: Context,
}

/// Which route a service takes, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The route tried first.
    pub route: RouteChoice,
    /// Whose request it is on that route.
    pub context: Context,
    /// What is tried next, and when.
    pub fallback: Option<(Trigger, Step)>,
    /// The rule that decided, in words.
    pub reason: String,
}

/// The route `service` takes on a device configured as `profile`, with or without a
/// logged-on user (which overrides the profile's own `user.logged_on`, so a scenario can log
/// the user on between phases).
pub fn select_route(
    profile: &MachineProfile,
    service: SensorService,
    user_logged_on: bool,
) -> Decision {
    let user_proxy = if user_logged_on {
        profile.wininet.proxy
    } else {
        None
    };
    let system = Context::System;
    // 1. User-context services prefer the logged-on user's WinINet proxy.
    if let (UserRoute::Preferred, Some(proxy)) = (service.user_route(), user_proxy) {
        return Decision {
            route: RouteChoice::WinInet,
            context: Context::User,
            fallback: None,
            reason: format!(
                "runs in the logged-on user's context: the user's WinINet proxy {proxy}"
            ),
        };
    }
    // 2. The static proxy, for the sensor's traffic.
    if let Some(proxy) = profile.static_proxy.telemetry_proxy_server {
        let prefer = profile.static_proxy.prefer_static_proxy_for_http_request;
        let uses = match service.static_use() {
            StaticUse::Always => Some("the sensor's EDR, CnC and Live Response traffic"),
            StaticUse::WhenPreferred if prefer => {
                Some("the sensor's other HTTP requests too (PreferStaticProxyForHttpRequest=1)")
            }
            StaticUse::WhenPreferred | StaticUse::Never => None,
        };
        if let Some(what) = uses {
            return Decision {
                route: RouteChoice::Static,
                context: system,
                fallback: Some((
                    Trigger::Unreachable,
                    Step {
                        route: RouteChoice::Direct,
                        context: system,
                    },
                )),
                reason: format!(
                    "TelemetryProxyServer={proxy} carries {what}; direct if it cannot be reached"
                ),
            };
        }
    }
    // 4 (as a fall-back of 3). DiagTrack may use the user's authenticated proxy.
    let enterprise_auth = service.user_route() == UserRoute::EnterpriseAuth
        && !profile.static_proxy.disable_enterprise_auth_proxy;
    let diagtrack_user = user_proxy.filter(|_| enterprise_auth);
    // 3. WinHTTP for SYSTEM: named, else WPAD.
    let winhttp = match (profile.winhttp.proxy, profile.winhttp.auto_detect) {
        (Some(proxy), _) => Some((
            RouteChoice::WinHttp,
            format!("SYSTEM service: the named WinHTTP proxy {proxy}"),
        )),
        (None, true) => Some((
            RouteChoice::Wpad,
            "SYSTEM service: the proxy WinHTTP auto-discovery (WPAD) finds".to_owned(),
        )),
        (None, false) => None,
    };
    if let Some((route, mut reason)) = winhttp {
        let fallback = diagtrack_user.map(|proxy| {
            reason.push_str(&format!(
                "; on 407, DiagTrack retries through the user's proxy {proxy} (DisableEnterpriseAuthProxy is not 1)"
            ));
            (
                Trigger::AuthRequired,
                Step {
                    route: RouteChoice::WinInet,
                    context: Context::User,
                },
            )
        });
        return Decision {
            route,
            context: system,
            fallback,
            reason,
        };
    }
    // 4. No SYSTEM proxy: DiagTrack takes the user's proxy.
    if let Some(proxy) = diagtrack_user {
        return Decision {
            route: RouteChoice::WinInet,
            context: Context::User,
            fallback: None,
            reason: format!(
                "SYSTEM has no proxy; DiagTrack uses the logged-on user's proxy {proxy} (DisableEnterpriseAuthProxy is not 1)"
            ),
        };
    }
    // 5. Direct.
    let mut reason = "SYSTEM has no proxy setting it can use: direct".to_owned();
    if profile.wininet.proxy.is_some() && !user_logged_on {
        reason.push_str(" (WinINet exists only in a logged-on user's session)");
    }
    Decision {
        route: RouteChoice::Direct,
        context: system,
        fallback: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::LabProxy;

    fn profile(text: &str) -> MachineProfile {
        MachineProfile::from_toml(&format!("name = \"t\"\n{text}")).unwrap()
    }

    fn routes(p: &MachineProfile, user: bool) -> Vec<(SensorService, RouteChoice, Context)> {
        SensorService::ALL
            .into_iter()
            .map(|s| {
                let d = select_route(p, s, user);
                (s, d.route, d.context)
            })
            .collect()
    }

    const STATIC: &str = "[static_proxy]\ntelemetry_proxy_server = \"PROX03\"\n";
    const STATIC_PREFER: &str = "[static_proxy]\ntelemetry_proxy_server = \"PROX03\"\n\
                                 prefer_static_proxy_for_http_request = true\n\
                                 disable_enterprise_auth_proxy = true\n";
    const WINHTTP: &str = "[winhttp]\nproxy = \"PROX01\"\n";
    const WPAD: &str = "[winhttp]\nauto_detect = true\npac = \"PROXY PROX01:3128\"\n";
    const WININET: &str = "[wininet]\nproxy = \"PROX02\"\n";

    #[test]
    fn nothing_configured_means_direct_for_everyone() {
        for user in [false, true] {
            for (s, route, ctx) in routes(&profile(""), user) {
                assert_eq!((route, ctx), (RouteChoice::Direct, Context::System), "{s}");
            }
        }
    }

    #[test]
    fn winhttp_only_carries_every_system_service() {
        for (s, route, ctx) in routes(&profile(WINHTTP), false) {
            assert_eq!((route, ctx), (RouteChoice::WinHttp, Context::System), "{s}");
        }
        let d = select_route(&profile(WINHTTP), SensorService::CyberData, false);
        assert_eq!(d.fallback, None, "no user: nothing to fall back to");
    }

    #[test]
    fn wpad_is_used_when_no_proxy_is_named() {
        for (s, route, _) in routes(&profile(WPAD), false) {
            assert_eq!(route, RouteChoice::Wpad, "{s}");
        }
        // A named proxy wins over auto-detection.
        let both = profile("[winhttp]\nproxy = \"PROX01\"\nauto_detect = true\n");
        for (s, route, _) in routes(&both, false) {
            assert_eq!(route, RouteChoice::WinHttp, "{s}");
        }
    }

    #[test]
    fn wininet_is_ignored_without_a_logged_on_user() {
        let p = profile(WININET);
        for (s, route, ctx) in routes(&p, false) {
            assert_eq!((route, ctx), (RouteChoice::Direct, Context::System), "{s}");
        }
        let d = select_route(&p, SensorService::CommandAndControl, false);
        assert!(
            d.reason.contains("logged-on user's session"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn with_a_user_only_user_context_services_and_diagtrack_use_wininet() {
        let p = profile(WININET);
        for (s, route, ctx) in routes(&p, true) {
            let expected = match s {
                SensorService::SampleUpload
                | SensorService::ConfigManager
                | SensorService::CyberData => (RouteChoice::WinInet, Context::User),
                _ => (RouteChoice::Direct, Context::System),
            };
            assert_eq!((route, ctx), expected, "{s}");
        }
    }

    #[test]
    fn disable_enterprise_auth_proxy_keeps_cyber_data_off_the_users_proxy() {
        let p = profile(&format!(
            "{WININET}[static_proxy]\ndisable_enterprise_auth_proxy = true\n"
        ));
        let d = select_route(&p, SensorService::CyberData, true);
        assert_eq!(d.route, RouteChoice::Direct);
        let p = profile(&format!(
            "{WININET}{WINHTTP}[static_proxy]\ndisable_enterprise_auth_proxy = true\n"
        ));
        let d = select_route(&p, SensorService::CyberData, true);
        assert_eq!((d.route, d.fallback), (RouteChoice::WinHttp, None));
    }

    #[test]
    fn winhttp_wins_over_wininet_for_system_services_with_a_407_fallback_for_diagtrack() {
        let p = profile(&format!("{WINHTTP}{WININET}"));
        for (s, route, ctx) in routes(&p, true) {
            let expected = match s {
                SensorService::SampleUpload | SensorService::ConfigManager => {
                    (RouteChoice::WinInet, Context::User)
                }
                _ => (RouteChoice::WinHttp, Context::System),
            };
            assert_eq!((route, ctx), expected, "{s}");
        }
        let d = select_route(&p, SensorService::CyberData, true);
        assert_eq!(
            d.fallback,
            Some((
                Trigger::AuthRequired,
                Step {
                    route: RouteChoice::WinInet,
                    context: Context::User
                }
            ))
        );
        // No user, no fall-back.
        assert_eq!(
            select_route(&p, SensorService::CyberData, false).fallback,
            None
        );
    }

    #[test]
    fn static_proxy_carries_the_sensor_and_falls_back_to_direct() {
        let p = profile(STATIC);
        for (s, route, ctx) in routes(&p, false) {
            let expected = match s {
                SensorService::CyberData
                | SensorService::CommandAndControl
                | SensorService::LiveResponse => RouteChoice::Static,
                _ => RouteChoice::Direct,
            };
            assert_eq!((route, ctx), (expected, Context::System), "{s}");
        }
        let d = select_route(&p, SensorService::LiveResponse, false);
        assert_eq!(
            d.fallback,
            Some((
                Trigger::Unreachable,
                Step {
                    route: RouteChoice::Direct,
                    context: Context::System
                }
            ))
        );
    }

    #[test]
    fn prefer_static_sends_every_mde_request_to_the_static_proxy_but_not_the_os() {
        for user in [false, true] {
            for (s, route, _) in routes(&profile(STATIC_PREFER), user) {
                let expected = if s == SensorService::WindowsUpdate {
                    RouteChoice::Direct
                } else {
                    RouteChoice::Static
                };
                assert_eq!(route, expected, "{s} user={user}");
            }
        }
    }

    #[test]
    fn all_three_splits_the_traffic_three_ways() {
        let p = profile(&format!(
            "[static_proxy]\ntelemetry_proxy_server = \"PROX03\"\ndisable_enterprise_auth_proxy = true\n{WINHTTP}{WININET}"
        ));
        for (s, route, _) in routes(&p, true) {
            let expected = match s {
                SensorService::CyberData
                | SensorService::CommandAndControl
                | SensorService::LiveResponse => RouteChoice::Static,
                SensorService::SampleUpload | SensorService::ConfigManager => RouteChoice::WinInet,
                _ => RouteChoice::WinHttp,
            };
            assert_eq!(route, expected, "{s}");
        }
        // Without the user, the user-context services fall to WinHTTP.
        for s in [SensorService::SampleUpload, SensorService::ConfigManager] {
            assert_eq!(select_route(&p, s, false).route, RouteChoice::WinHttp);
        }
    }

    #[test]
    fn user_context_beats_the_static_proxy_even_when_preferred() {
        let p = profile(&format!("{STATIC_PREFER}{WININET}"));
        let d = select_route(&p, SensorService::SampleUpload, true);
        assert_eq!((d.route, d.context), (RouteChoice::WinInet, Context::User));
        assert_eq!(
            select_route(&p, SensorService::SampleUpload, false).route,
            RouteChoice::Static
        );
    }

    #[test]
    fn the_session_argument_overrides_the_profiles_user() {
        // The profile says a user is logged on, the phase says nobody is: no WinINet.
        let p = profile(&format!("{WININET}[user]\nlogged_on = true\n"));
        let d = select_route(&p, SensorService::SampleUpload, false);
        assert_eq!((d.route, d.context), (RouteChoice::Direct, Context::System));
        // …and the other way round.
        let p = profile(&format!("{WININET}[user]\nlogged_on = false\n"));
        let d = select_route(&p, SensorService::SampleUpload, true);
        assert_eq!((d.route, d.context), (RouteChoice::WinInet, Context::User));
    }

    #[test]
    fn diagtrack_falls_back_from_wpad_to_the_users_proxy_on_407() {
        let p = profile(&format!("{WPAD}{WININET}"));
        let d = select_route(&p, SensorService::CyberData, true);
        assert_eq!((d.route, d.context), (RouteChoice::Wpad, Context::System));
        assert_eq!(
            d.fallback,
            Some((
                Trigger::AuthRequired,
                Step {
                    route: RouteChoice::WinInet,
                    context: Context::User
                }
            ))
        );
        // Only DiagTrack: the CnC channel has no user fall-back.
        let cnc = select_route(&p, SensorService::CommandAndControl, true);
        assert_eq!((cnc.route, cnc.fallback), (RouteChoice::Wpad, None));
    }

    #[test]
    fn every_service_has_exactly_one_decision_with_a_reason() {
        let texts = [
            String::new(),
            STATIC.into(),
            STATIC_PREFER.into(),
            WINHTTP.into(),
            WPAD.into(),
            WININET.into(),
            format!("{STATIC}{WINHTTP}{WININET}"),
        ];
        for text in &texts {
            let p = profile(text);
            for user in [false, true] {
                for s in SensorService::ALL {
                    let d = select_route(&p, s, user);
                    assert!(!d.reason.is_empty());
                    // SYSTEM never takes WinINet; the user context only ever takes WinINet.
                    assert_eq!(
                        d.route == RouteChoice::WinInet,
                        d.context == Context::User,
                        "{s} {text}"
                    );
                    if d.route == RouteChoice::WinInet {
                        assert!(user, "WinINet without a user: {s} {text}");
                    }
                }
            }
        }
        let _ = LabProxy::ALL;
    }
}
