//! The analysis: the analyzer's URL groups and their result ids, the five methods' routes,
//! the probes and how the script's parser reads their lines, the certificate-chain check, and
//! the mdatp view's URLs and verdicts. Builds [`Analysis`] and [`MdatpReport`].

use std::collections::BTreeMap;

use anyhow::Result;
use mdelab_catalog::{Catalog, Connectivity, Endpoint, Region, Scheme, Service};
use mdelab_certs::CertSummary;
use mdelab_sensor::{
    self as sensor, ClientKind, Origin, Outcome, ProxyRoute, Route, Target, Verdict,
};

use super::AnalyzeOptions;
use super::env::Env;
use super::model::{
    Analysis, ChainResult, GroupResult, MdatpReport, MdatpUrl, MethodResult, ProxyConfig, UrlResult,
};
use crate::scenario::profile::{LabProxy, PacDirective};
use crate::scenario::rig::Rig;
use crate::scenario::route::{Context, RouteChoice};

/// The analyzer's URL groups (RegionsURLs.json), with their result ids (all good, one
/// failure, more) where the script gives them.
const GROUPS: [(&str, Option<[u32; 3]>); 9] = [
    ("CnCURLs", Some([130_017, 131_013, 132_021])),
    ("CyberDataURLs", Some([130_018, 131_014, 132_022])),
    ("AutoIRBlobs", Some([130_019, 131_015, 132_023])),
    ("SampleUploadBlobs", Some([130_020, 131_016, 132_024])),
    ("MdeConfigMgr", Some([130_021, 131_017, 132_025])),
    ("CTLDL", None),
    ("Settings", None),
    ("Events", None),
    ("OneDs", None),
];

/// The analyzer group of a catalog URL, if the analyzer tests it.
fn group_of(e: &Endpoint) -> Option<&'static str> {
    Some(match e.service {
        Service::CommandAndControl => "CnCURLs",
        // The Windows analyzer's cyber-data URLs are the region's (RegionsURLs.json is keyed by
        // region); the worldwide collector is a Linux/macOS `mdatp connectivity test` URL.
        Service::CyberData if e.region.is_some() => "CyberDataURLs",
        Service::AutoIr => "AutoIRBlobs",
        Service::SampleUpload => "SampleUploadBlobs",
        Service::ConfigManager => "MdeConfigMgr",
        Service::CrlCtl if e.host == "ctldl.windowsupdate.com" => "CTLDL",
        Service::Telemetry if e.host == "settings-win.data.microsoft.com" => "Settings",
        Service::Telemetry if e.host == "events.data.microsoft.com" => "Events",
        Service::CoreService if e.host.ends_with("mobile.events.data.microsoft.com") => "OneDs",
        _ => return None,
    })
}

/// A group's result id: all good, one failed URL, more than one.
fn result_id(ids: [u32; 3], failed: usize) -> u32 {
    ids[failed.min(2)]
}

/// Groups whose services can run in the logged-on user's context (test 3b).
fn user_capable(group: &str) -> bool {
    matches!(group, "SampleUploadBlobs" | "MdeConfigMgr")
}

/// The analyzer's URLs for a device, in group order.
pub fn analyzer_urls(
    region: Region,
    model: Connectivity,
) -> Vec<(&'static str, &'static Endpoint)> {
    let mut out = Vec::new();
    for (group, _) in GROUPS {
        for e in Catalog::mde().for_device(region, model) {
            if group_of(e) == Some(group) {
                out.push((group, e));
            }
        }
    }
    out
}

/// How one method reaches a URL.
#[derive(Clone, Debug)]
enum Via {
    /// Through this route.
    Route(Route),
    /// The method has nothing configured.
    Absent,
    /// The method fails before any request (WPAD found nothing).
    Fails(String),
}

/// The five methods' routes, for URLs of ordinary groups and of user-capable groups.
async fn method_routes(env: &Env) -> [[Via; 5]; 2] {
    let p = &env.profile;
    let winhttp = match p.winhttp.proxy {
        Some(_) => env.step(RouteChoice::WinHttp, Context::System).await,
        None => Some(Route::Direct),
    }
    .unwrap_or(Route::Direct);
    let user = if p.user.logged_on && p.wininet.proxy.is_some() {
        env.step(RouteChoice::WinInet, Context::User).await
    } else {
        None
    };
    let wpad = match (&env.rig, p.wpad_answer()) {
        (Some(_), Some(_)) => match env.step(RouteChoice::Wpad, Context::System).await {
            Some(route) => Via::Route(route),
            None => Via::Fails(wpad_failed()),
        },
        _ => Via::Fails(wpad_failed()),
    };
    let named = match p.static_proxy.telemetry_proxy_server {
        Some(_) => env
            .step(RouteChoice::Static, Context::System)
            .await
            .map_or(Via::Absent, Via::Route),
        None => Via::Absent,
    };
    let command_line = env.command_line.as_ref().map_or(Via::Absent, |(_, addr)| {
        Via::Route(Route::Proxy(ProxyRoute {
            addr: *addr,
            credentials: None,
        }))
    });
    let ordinary = [
        Via::Route(winhttp.clone()),
        wpad,
        Via::Route(Route::Direct),
        named,
        command_line,
    ];
    let mut user_groups = ordinary.clone();
    if let Some(route) = user {
        user_groups[0] = Via::Route(route);
    }
    [ordinary, user_groups]
}

fn wpad_failed() -> String {
    "Failed (12180: WinHttpGetProxyForUrl: 12180: The proxy auto-discovery found no proxy \
     configuration script)"
        .to_owned()
}

/// The analyzer's line for an outcome: any HTTP answer is `Succeeded (status)`, a transport
/// failure its WinHTTP error.
pub fn method_line(outcome: &Outcome) -> String {
    let failed =
        |code: u32, text: &str| format!("Failed ({code}: WinHttpSendRequest: {code}: {text})");
    match &outcome.verdict {
        Verdict::Connected { status } | Verdict::ProxyRefused { status } => {
            format!("Succeeded ({status})")
        }
        Verdict::ProxyAuthRequired => "Succeeded (407)".to_owned(),
        Verdict::Timeout => failed(12002, "The operation timed out"),
        Verdict::Refused => failed(
            12029,
            "A connection with the server could not be established",
        ),
        Verdict::DnsFailure { .. } => {
            failed(12007, "The server name or address could not be resolved")
        }
        Verdict::PinMismatch
        | Verdict::UnknownIssuer
        | Verdict::NameMismatch
        | Verdict::Expired
        | Verdict::TlsAlert { .. } => failed(12175, "A security error occurred"),
        Verdict::Other { .. } | Verdict::BlockedOnDevice { .. } | Verdict::Rows { .. } => failed(
            12030,
            "The connection with the server was terminated abnormally",
        ),
    }
}

/// The script's parser: a line that counts as a success.
fn line_succeeds(line: &str) -> bool {
    ["(200)", "(400)", "(404)"].iter().any(|s| line.contains(s)) || line.contains("Succeeded (405)")
}

const METHOD_NAMES: [&str; 5] = [
    "Default proxy",
    "Proxy auto discovery (WPAD)",
    "Proxy disabled",
    "Named proxy",
    "Command line proxy",
];

/// Sends the probes of `jobs` concurrently; results in order.
async fn probe_all(env: &Env, jobs: Vec<(&'static Endpoint, Route)>) -> Vec<Outcome> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (endpoint, route)) in jobs.into_iter().enumerate() {
        let trust = env.trust.clone();
        let network = env.network.clone();
        set.spawn(async move {
            let target = Target::from(endpoint);
            let outcome =
                sensor::probe(&target, ClientKind::Sensor, &route, &trust, &network).await;
            (i, outcome)
        });
    }
    let mut out: Vec<Option<Outcome>> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, outcome) = joined.unwrap_or_else(|err| {
            (
                usize::MAX,
                Outcome::new(
                    Verdict::Other {
                        detail: err.to_string(),
                    },
                    "the probe task failed",
                    None,
                ),
            )
        });
        if i != usize::MAX {
            if out.len() <= i {
                out.resize(i + 1, None);
            }
            out[i] = Some(outcome);
        }
    }
    out.into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Outcome::new(
                    Verdict::Other {
                        detail: "lost".into(),
                    },
                    "the probe task was lost",
                    None,
                )
            })
        })
        .collect()
}

/// The proxy the analyzer's later checks use, and how it is printed: the static proxy first,
/// then the command-line proxy, then WinHTTP's (named, else the WPAD answer), else direct.
async fn chain_route(env: &Env) -> (Route, String) {
    let p = &env.profile;
    if let Some(proxy) = p.static_proxy.telemetry_proxy_server
        && let Some(route) = env.step(RouteChoice::Static, Context::System).await
    {
        return (route, format!("{} (TelemetryProxyServer)", proxy.nominal()));
    }
    if let Some((label, addr)) = &env.command_line {
        return (
            Route::Proxy(ProxyRoute {
                addr: *addr,
                credentials: None,
            }),
            format!("{label} (command line)"),
        );
    }
    if let Some(proxy) = p.winhttp.proxy
        && let Some(route) = env.step(RouteChoice::WinHttp, Context::System).await
    {
        return (route, format!("{} (WinHTTP proxy)", proxy.nominal()));
    }
    if let Some(answer) = p.wpad_answer()
        && let PacDirective::Proxy(proxy) = answer.first()
        && let Some(route) = env.step(RouteChoice::Wpad, Context::System).await
    {
        return (route, format!("{} (WPAD)", proxy.nominal()));
    }
    (Route::Direct, "no proxy (direct)".to_owned())
}

/// The `Proxy config:` line: WinHTTP's view.
fn proxy_config(env: &Env) -> ProxyConfig {
    let p = &env.profile;
    let real = |proxy: LabProxy| env.rig.as_ref().map(|r| r.proxy(proxy).addr());
    if let Some(proxy) = p.winhttp.proxy {
        return ProxyConfig {
            method: "NamedWinHttp",
            address: proxy.nominal(),
            real_address: real(proxy),
        };
    }
    if p.winhttp.auto_detect
        && let Some(PacDirective::Proxy(proxy)) = p.wpad_answer().map(|a| a.first())
    {
        return ProxyConfig {
            method: "AutoDetect",
            address: proxy.nominal(),
            real_address: real(proxy),
        };
    }
    ProxyConfig {
        method: "NoProxy",
        address: String::new(),
        real_address: None,
    }
}

/// Runs the Windows analyzer's connectivity checks for `options`.
pub async fn analyze(options: &AnalyzeOptions) -> Result<Analysis> {
    let env = Env::start(options).await?;
    let result = analyze_in(&env).await;
    env.shutdown().await?;
    result
}

async fn analyze_in(env: &Env) -> Result<Analysis> {
    let region = env.profile.onboarding.region;
    let model = env.profile.onboarding.connectivity;
    let urls = analyzer_urls(region, model);
    let routes = method_routes(env).await;
    let mut jobs = Vec::new();
    let mut slots = Vec::new();
    for (u, (group, endpoint)) in urls.iter().enumerate() {
        let vias = &routes[usize::from(user_capable(group))];
        for (m, via) in vias.iter().enumerate() {
            if let Via::Route(route) = via {
                slots.push((u, m));
                jobs.push((*endpoint, route.clone()));
            }
        }
    }
    let outcomes = probe_all(env, jobs).await;
    let mut results: BTreeMap<(usize, usize), Outcome> = BTreeMap::new();
    for (slot, outcome) in slots.into_iter().zip(outcomes) {
        results.insert(slot, outcome);
    }
    let mut url_results = Vec::new();
    for (u, (group, endpoint)) in urls.iter().enumerate() {
        let vias = &routes[usize::from(user_capable(group))];
        let methods: Vec<MethodResult> = vias
            .iter()
            .enumerate()
            .map(|(m, via)| {
                let (line, outcome) = match via {
                    Via::Absent => ("Doesn't exist".to_owned(), None),
                    Via::Fails(line) => (line.clone(), None),
                    Via::Route(_) => {
                        let outcome = results.remove(&(u, m));
                        (
                            outcome.as_ref().map(method_line).unwrap_or_default(),
                            outcome,
                        )
                    }
                };
                MethodResult {
                    number: m + 1,
                    name: METHOD_NAMES[m],
                    line,
                    outcome,
                }
            })
            .collect();
        let reachable = methods.iter().any(|m| line_succeeds(&m.line));
        url_results.push(UrlResult {
            url: endpoint.url(),
            group,
            methods,
            reachable,
        });
    }
    let groups = GROUPS
        .iter()
        .map(|(group, ids)| {
            let of_group: Vec<&UrlResult> =
                url_results.iter().filter(|u| u.group == *group).collect();
            let failed = of_group.iter().filter(|u| !u.reachable).count();
            GroupResult {
                group,
                urls: of_group.len(),
                failed,
                result: ids.map(|ids| result_id(ids, failed)),
            }
        })
        .filter(|g| g.urls > 0)
        .collect();
    let (route, chain_proxy) = chain_route(env).await;
    let chains = chain_checks(env, &urls, &route).await;
    Ok(Analysis {
        profile: env.profile.name.clone(),
        region,
        connectivity: model,
        device: env.device.clone(),
        proxy_config: proxy_config(env),
        urls: url_results,
        groups,
        chain_proxy,
        chains,
        proxy_addrs: env.rig.as_ref().map(Rig::proxy_addrs).unwrap_or_default(),
    })
}

/// The root the analyzer expects for a leaf issuer (reference §4.2, with the lab's names).
pub fn expected_root(issuer: &str) -> Option<&'static str> {
    const TABLE: [(&str, &str); 6] = [
        (
            "MDE Lab Secure Server CA",
            mdelab_certs::pki::PINNED_ROOT_NAME,
        ),
        ("MDE Lab Azure", mdelab_certs::pki::AZURE_ROOT_NAME),
        (
            "Microsoft Secure Server CA",
            "Microsoft Root Certificate Authority 2011",
        ),
        ("Microsoft Azure", "DigiCert Global Root G2"),
        ("DigiCert SHA2", "DigiCert Global Root CA"),
        ("Microsoft RSA", "Baltimore CyberTrust Root"),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| issuer.starts_with(prefix))
        .map(|(_, root)| *root)
}

/// Judges a served chain (leaf first) as the analyzer does.
pub fn judge_chain(host: &str, chain: &[CertSummary]) -> ChainResult {
    let Some(leaf) = chain.first() else {
        return ChainResult {
            host: host.to_owned(),
            issuer: None,
            root: None,
            expected_root: None,
            result: Some(131_028),
            detail: "no certificate chain could be retrieved".into(),
        };
    };
    let issuer = leaf.issuer_cn.clone();
    let root = chain.last().map(|c| c.issuer_cn.clone());
    let expected = expected_root(&issuer);
    let (result, detail) = match expected {
        None => (Some(132_027), format!("issuer not expected: '{issuer}'")),
        Some(expected) if root.as_deref() != Some(expected) => (
            Some(132_026),
            format!(
                "issuer '{issuer}' chains to '{}', expected '{expected}'",
                root.clone().unwrap_or_default()
            ),
        ),
        Some(expected) => (None, format!("issuer '{issuer}', root '{expected}'")),
    };
    ChainResult {
        host: host.to_owned(),
        issuer: Some(issuer),
        root,
        expected_root: expected.map(str::to_owned),
        result,
        detail,
    }
}

async fn chain_checks(
    env: &Env,
    urls: &[(&'static str, &'static Endpoint)],
    route: &Route,
) -> Vec<ChainResult> {
    let mut hosts: Vec<&str> = Vec::new();
    for (_, e) in urls {
        if e.scheme == Scheme::Https && !hosts.contains(&e.host.as_str()) {
            hosts.push(&e.host);
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let origin = Origin::https(host, false);
        let route = route.clone();
        let network = env.network.clone();
        set.spawn(async move { (i, sensor::presented_chain(&origin, &route, &network).await) });
    }
    let mut chains: Vec<Vec<CertSummary>> = vec![Vec::new(); hosts.len()];
    while let Some(Ok((i, chain))) = set.join_next().await {
        chains[i] = chain;
    }
    hosts
        .iter()
        .zip(chains)
        .map(|(host, chain)| judge_chain(host, &chain))
        .collect()
}

/// The URLs `mdatp connectivity test` checks: CnC, cyber data, cloud protection and the sample
/// and Auto-IR storage (the Windows-only `ws*` sample accounts excluded).
pub fn mdatp_urls(region: Region, model: Connectivity) -> Vec<&'static Endpoint> {
    Catalog::mde()
        .for_device(region, model)
        .filter(|e| {
            matches!(
                e.service,
                Service::CommandAndControl
                    | Service::CyberData
                    | Service::CloudProtection
                    | Service::SampleUpload
                    | Service::AutoIr
            ) && !e.host.starts_with("ws")
        })
        .collect()
}

/// Runs the macOS/Linux view: one proxy for everything (the static proxy, else the command
/// line's, else WinHTTP's named proxy; PAC and authentication are not supported there), each
/// URL must answer its expected status.
pub async fn analyze_mdatp(options: &AnalyzeOptions) -> Result<MdatpReport> {
    let env = Env::start(options).await?;
    let p = env.profile.clone();
    let (route, proxy) = if let Some(proxy) = p.static_proxy.telemetry_proxy_server {
        (
            env.step(RouteChoice::Static, Context::System).await,
            proxy.nominal(),
        )
    } else if let Some((label, addr)) = &env.command_line {
        (
            Some(Route::Proxy(ProxyRoute {
                addr: *addr,
                credentials: None,
            })),
            label.clone(),
        )
    } else if let Some(proxy) = p.winhttp.proxy {
        (
            env.step(RouteChoice::WinHttp, Context::System).await,
            proxy.nominal(),
        )
    } else {
        (Some(Route::Direct), "none".to_owned())
    };
    let route = route.unwrap_or(Route::Direct);
    let urls = mdatp_urls(p.onboarding.region, p.onboarding.connectivity);
    let outcomes = probe_all(&env, urls.iter().map(|e| (*e, route.clone())).collect()).await;
    env.shutdown().await?;
    let urls = urls
        .iter()
        .zip(outcomes)
        .map(|(e, outcome)| {
            let reason = match &outcome.verdict {
                Verdict::Connected { status } if *status == e.probe.status => None,
                Verdict::Connected { status } => Some(format!(
                    "Request general issue: the server answered {status}, expected {}",
                    e.probe.status
                )),
                Verdict::PinMismatch
                | Verdict::UnknownIssuer
                | Verdict::NameMismatch
                | Verdict::Expired => Some(format!("SSL cert issue: {}", outcome.evidence)),
                Verdict::Timeout | Verdict::DnsFailure { .. } => {
                    Some(format!("Request timeout: {}", outcome.evidence))
                }
                _ => Some(format!("Request general issue: {}", outcome.evidence)),
            };
            MdatpUrl {
                url: e.url(),
                ok: reason.is_none(),
                reason,
            }
        })
        .collect();
    Ok(MdatpReport { proxy, urls })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdelab_certs::Pin;

    fn outcome(verdict: Verdict) -> Outcome {
        Outcome::new(verdict, "x", None)
    }

    #[test]
    fn lines_render_like_the_analyzer_and_parse_like_the_script() {
        let ok = method_line(&outcome(Verdict::Connected { status: 200 }));
        assert_eq!(ok, "Succeeded (200)");
        assert!(line_succeeds(&ok));
        let timeout = method_line(&outcome(Verdict::Timeout));
        assert_eq!(
            timeout,
            "Failed (12002: WinHttpSendRequest: 12002: The operation timed out)"
        );
        assert!(!line_succeeds(&timeout));
        for status in [400, 404] {
            assert!(line_succeeds(&method_line(&outcome(Verdict::Connected {
                status
            }))));
        }
        assert!(line_succeeds("Succeeded (405)"));
        let auth = method_line(&outcome(Verdict::ProxyAuthRequired));
        assert_eq!(auth, "Succeeded (407)");
        assert!(
            !line_succeeds(&auth),
            "a 407 is not a success for the parser"
        );
        assert!(!line_succeeds("Doesn't exist"));
        assert!(method_line(&outcome(Verdict::PinMismatch)).starts_with("Failed (12175"));
        assert!(method_line(&outcome(Verdict::Refused)).starts_with("Failed (12029"));
    }

    #[test]
    fn chains_are_judged_by_their_issuer_then_their_root() {
        let cert = |subject: &str, issuer: &str| CertSummary {
            subject_cn: subject.into(),
            issuer_cn: issuer.into(),
            dns_names: Vec::new(),
            pin: Pin::of_spki_der(b"k"),
            is_ca: false,
            self_issued: false,
            not_before: 0,
            not_after: 0,
        };
        let good = judge_chain(
            "h",
            &[
                cert("h", "MDE Lab Secure Server CA 2011"),
                cert(
                    "MDE Lab Secure Server CA 2011",
                    "MDE Lab Root Certificate Authority 2011",
                ),
            ],
        );
        assert_eq!(good.result, None, "{}", good.detail);
        let inspected = judge_chain("h", &[cert("h", "MDE Lab TLS Inspection CA")]);
        assert_eq!(inspected.result, Some(132_027));
        assert!(inspected.detail.contains("MDE Lab TLS Inspection CA"));
        let wrong_root = judge_chain(
            "h",
            &[
                cert("h", "MDE Lab Azure TLS Issuing CA 01"),
                cert("MDE Lab Azure TLS Issuing CA 01", "Someone Else Root"),
            ],
        );
        assert_eq!(wrong_root.result, Some(132_026));
        assert_eq!(judge_chain("h", &[]).result, Some(131_028));
    }

    #[test]
    fn result_ids_follow_the_failure_count() {
        let ids = GROUPS[0].1.unwrap();
        let by_failures: Vec<u32> = [0, 1, 2, 7].iter().map(|&f| result_id(ids, f)).collect();
        assert_eq!(by_failures, [130_017, 131_013, 132_021, 132_021]);
    }

    #[test]
    fn every_region_and_model_has_urls_in_the_five_main_groups() {
        for region in Region::ALL {
            for model in Connectivity::ALL {
                let urls = analyzer_urls(region, model);
                for group in [
                    "CnCURLs",
                    "CyberDataURLs",
                    "AutoIRBlobs",
                    "SampleUploadBlobs",
                    "MdeConfigMgr",
                ] {
                    assert!(
                        urls.iter().any(|(g, _)| *g == group),
                        "{region} {model} {group}"
                    );
                }
                assert!(!mdatp_urls(region, model).is_empty());
            }
        }
    }
}
