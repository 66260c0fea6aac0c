//! Worldwide hosts (reference §1.3, §1.7) and the wildcard host families.

use super::{Endpoint, HostFamily, Models, Probe, ProbeMethod, Profile, Scheme, Service};

/// One worldwide URL, as data: host, scheme, service, pinned, method, path, status, body, source.
struct Row {
    host: &'static str,
    scheme: Scheme,
    service: Service,
    pinned: bool,
    method: ProbeMethod,
    path: &'static str,
    status: u16,
    body: Option<&'static str>,
    source: &'static str,
}

const fn https(
    service: Service,
    host: &'static str,
    path: &'static str,
    status: u16,
    source: &'static str,
) -> Row {
    Row {
        host,
        scheme: Scheme::Https,
        service,
        pinned: false,
        method: ProbeMethod::Get,
        path,
        status,
        body: None,
        source,
    }
}

const fn http(host: &'static str, path: &'static str, status: u16, source: &'static str) -> Row {
    Row {
        host,
        scheme: Scheme::Http,
        service: Service::CrlCtl,
        pinned: false,
        method: ProbeMethod::Get,
        path,
        status,
        body: None,
        source,
    }
}

/// Worldwide URLs used by both connectivity models. Only the worldwide cyber-data collector is
/// pinned: the pinned set is the CnC, cyber-data and MAPS hosts (S10).
const ROWS: &[Row] = &[
    // CRL / CTL on port 80 (S1, S14): the sensor needs them when Windows builds TLS chains.
    http("crl.microsoft.com", "/", 400, "S14"),
    http(
        "crl.microsoft.com",
        "/pki/crl/products/MicRooCerAut2011_2011_03_22.crl",
        200,
        "S1",
    ),
    http("ctldl.windowsupdate.com", "/", 200, "S14"),
    http(
        "ctldl.windowsupdate.com",
        "/msdownload/update/v3/static/trustedr/en/disallowedcertstl.cab",
        200,
        "S14",
    ),
    http(
        "ctldl.windowsupdate.com",
        "/msdownload/update/v3/static/trustedr/en/pinrulesstl.cab",
        200,
        "S10a",
    ),
    http(
        "www.microsoft.com",
        "/pkiops/crl/MicSecSerCA2011_2011-10-18.crl",
        200,
        "S1",
    ),
    // Telemetry and settings (S1, S14).
    https(
        Service::Telemetry,
        "events.data.microsoft.com",
        "/",
        404,
        "S14",
    ),
    https(
        Service::Telemetry,
        "settings-win.data.microsoft.com",
        "/",
        404,
        "S1 (status inferred)",
    ),
    https(
        Service::Telemetry,
        "us.vortex-win.data.microsoft.com",
        "/health/keepalive",
        200,
        "S14",
    ),
    https(
        Service::Telemetry,
        "us.vortex-win.data.microsoft.com",
        "/collect/v1",
        400,
        "S14",
    ),
    // Live Response push and sign-in (S1, S10a): WNS cannot be proxied.
    https(
        Service::LiveResponse,
        "client.wns.windows.com",
        "/",
        404,
        "S10a (status inferred)",
    ),
    https(
        Service::LiveResponse,
        "global.notify.windows.com",
        "/",
        404,
        "S10a (status inferred)",
    ),
    https(
        Service::LiveResponse,
        "login.microsoftonline.com",
        "/",
        404,
        "S1 (status inferred)",
    ),
    https(
        Service::LiveResponse,
        "login.live.com",
        "/",
        404,
        "S1 (status inferred)",
    ),
    // Security settings management (S1).
    https(
        Service::ConfigManager,
        "enterpriseregistration.windows.net",
        "/",
        404,
        "S1 (status inferred)",
    ),
    https(
        Service::ConfigManager,
        "enrollment.dm.microsoft.com",
        "/",
        404,
        "S1 (host and status inferred)",
    ),
    // Cross-platform MAPS CDN (S15, S16).
    Row {
        body: Some("OK"),
        ..https(
            Service::CloudProtection,
            "cdn.x.cp.wd.microsoft.com",
            "/ping",
            200,
            "S15",
        )
    },
    // The rest of the `mdatp connectivity test` list (S16, S15: each prints `[OK]`; no page gives
    // the status, 200 as for `cdn.x.cp…/ping` is inferred). `x.cp.wd.microsoft.com` is checked
    // against the system trust store, not pinned, so it is an Azure-profile host here rather
    // than a member of the pinned `*.cp.wd.microsoft.com` family; S16's curl check shows its
    // `OK` body.
    Row {
        body: Some("OK"),
        ..https(
            Service::CloudProtection,
            "eu-cdn.x.cp.wd.microsoft.com",
            "/ping",
            200,
            "S16 (status and body inferred)",
        )
    },
    Row {
        body: Some("OK"),
        ..https(
            Service::CloudProtection,
            "wu-cdn.x.cp.wd.microsoft.com",
            "/ping",
            200,
            "S16 (status and body inferred)",
        )
    },
    Row {
        body: Some("OK"),
        ..https(
            Service::CloudProtection,
            "x.cp.wd.microsoft.com",
            "/api/report",
            200,
            "S16 (status inferred)",
        )
    },
    // The worldwide cyber-data collector, last of the `mdatp connectivity test` list (S16);
    // pinned like its regional siblings (S10).
    Row {
        pinned: true,
        ..https(
            Service::CyberData,
            "v20.events.data.microsoft.com",
            "/ping",
            200,
            "S16 (status inferred)",
        )
    },
    // SmartScreen / network protection (S11): an empty POST answers 400.
    Row {
        method: ProbeMethod::Post,
        ..https(
            Service::SmartScreen,
            "nf.smartscreen.microsoft.com",
            "/api/network/mac",
            400,
            "S11",
        )
    },
    Row {
        method: ProbeMethod::Post,
        ..https(
            Service::SmartScreen,
            "unitedstates.smartscreen-prod.microsoft.com",
            "/api/network/mac",
            400,
            "S11",
        )
    },
    // Defender Core service: 1DS telemetry and ECS configuration (S1).
    https(
        Service::CoreService,
        "mobile.events.data.microsoft.com",
        "/ping",
        200,
        "S19",
    ),
    https(
        Service::CoreService,
        "ecs.office.com",
        "/config/v1/MicrosoftWindowsDefenderClient/1.0.0.0",
        200,
        "S1",
    ),
    // Updates (S10, S11).
    Row {
        method: ProbeMethod::Head,
        ..https(
            Service::Updates,
            "go.microsoft.com",
            "/fwlink/?linkid=2120136",
            200,
            "S10",
        )
    },
    Row {
        method: ProbeMethod::Head,
        ..https(
            Service::Updates,
            "go.microsoft.com",
            "/fwlink/?linkid=2144709",
            200,
            "S10",
        )
    },
    https(
        Service::Updates,
        "definitionupdates.microsoft.com",
        "/",
        404,
        "S1 (status inferred)",
    ),
    https(
        Service::Updates,
        "packages.microsoft.com",
        "/",
        200,
        "S1 (status inferred)",
    ),
];

/// Appends every worldwide URL.
pub(super) fn push_endpoints(out: &mut Vec<Endpoint>) {
    out.extend(ROWS.iter().map(|row| Endpoint {
        host: row.host.to_owned(),
        port: row.scheme.default_port(),
        scheme: row.scheme,
        service: row.service,
        region: None,
        models: Models::Both,
        profile: (row.scheme == Scheme::Https).then_some(if row.pinned {
            Profile::Pinned
        } else {
            Profile::Azure
        }),
        pinned: row.pinned,
        probe: Probe {
            method: row.method,
            path: row.path.to_owned(),
            status: row.status,
            body: row.body,
        },
        source: row.source,
    }));
}

/// Host families served by pattern. Blob accounts answer 400 at the root like the real service.
pub(super) fn families() -> Vec<HostFamily> {
    let family = |pattern, service, profile, pinned, root_status| HostFamily {
        pattern,
        service,
        profile: Some(profile),
        pinned,
        root_status,
    };
    vec![
        family(
            "*.blob.core.windows.net",
            Service::SampleUpload,
            Profile::Azure,
            false,
            400,
        ),
        // "New services also follow this pattern" (S1): any streamlined name is a pinned gateway.
        family(
            "*.endpoint.security.microsoft.com",
            Service::CommandAndControl,
            Profile::Pinned,
            true,
            404,
        ),
        family(
            "*.cp.wd.microsoft.com",
            Service::CloudProtection,
            Profile::Pinned,
            true,
            404,
        ),
        family(
            "*.wdcp.microsoft.com",
            Service::CloudProtection,
            Profile::Pinned,
            true,
            404,
        ),
        family(
            "*.wdcpalt.microsoft.com",
            Service::CloudProtection,
            Profile::Pinned,
            true,
            404,
        ),
        family(
            "*.x.cp.wd.microsoft.com",
            Service::CloudProtection,
            Profile::Azure,
            false,
            404,
        ),
        family(
            "*.events.data.microsoft.com",
            Service::CoreService,
            Profile::Azure,
            false,
            404,
        ),
        family(
            "*.wns.windows.com",
            Service::LiveResponse,
            Profile::Azure,
            false,
            404,
        ),
        family(
            "*.dm.microsoft.com",
            Service::ConfigManager,
            Profile::Azure,
            false,
            404,
        ),
        family(
            "*.smartscreen.microsoft.com",
            Service::SmartScreen,
            Profile::Azure,
            false,
            404,
        ),
        family(
            "*.smartscreen-prod.microsoft.com",
            Service::SmartScreen,
            Profile::Azure,
            false,
            404,
        ),
        // Not MDE: web sites for the emulated user's traffic. A benign site, and the domain
        // Microsoft documents for testing network protection (it is on the lab's "dangerous
        // domains" list). Exact names: a family pattern without `*.` matches only itself.
        family(
            "www.msftconnecttest.com",
            Service::TestSite,
            Profile::Azure,
            false,
            200,
        ),
        family(
            "smartscreentestratings2.net",
            Service::TestSite,
            Profile::Azure,
            false,
            200,
        ),
    ]
}

/// Domains the lab treats as dangerous (network protection blocks or audits them).
pub const DANGEROUS_DOMAINS: &[&str] = &["smartscreentestratings2.net"];
