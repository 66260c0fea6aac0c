//! The regional table: one row per geography (reference §1.2, §1.4, §1.5).

use super::{Endpoint, Models, Probe, ProbeMethod, Profile, Region, Scheme, Service};

/// One geography's endpoints, as data.
#[derive(Debug)]
pub struct RegionSpec {
    /// The region.
    pub region: Region,
    /// Streamlined partner geo key (`GW_US`…), as in the onboarding blob.
    pub partner_geo: &'static str,
    /// Datacenter suffixes of the CnC gateways (`cus` → `winatp-gw-cus`, `edr-cus`).
    pub datacenters: &'static [&'static str],
    /// Prefix of the cyber-data hosts (`us` → `us-v20.events.data.microsoft.com`).
    pub v20_prefix: &'static str,
    /// MAPS geo name (`unitedstates` → `unitedstates.cp.wd.microsoft.com`).
    pub maps_geo: &'static str,
    /// Streamlined geo label (`us` → `edr-cus.us.endpoint.security.microsoft.com`).
    pub streamlined_geo: &'static str,
    /// Malware sample submission storage accounts.
    pub sample_accounts: &'static [&'static str],
    /// The two sample accounts the Client Analyzers probe through a streamlined gateway
    /// (`/storage/<account>/`), in their order: an east/west (or north/west, south/west) pair
    /// of the `uss…` accounts. Sources: the XMDE analyzer's `GW_*` lists (S10) and the AV
    /// signature's `MAPSURL_GW_*` XPLATTEST lists (S11); the `ws…` accounts are Windows-only
    /// on the standard sheet (S1).
    pub probed_accounts: [&'static str; 2],
    /// Source of this row (`S1`, or `inferred` for names no public source lists).
    pub source: &'static str,
}

/// Every region. US, EU, UK and AU follow the commercial URL sheet (S1); CH and IN have only
/// their MAPS geo and sample accounts in public sources (S11), so their gateway datacenters and
/// v20 prefix are inferred from the naming pattern.
pub const REGIONS: &[RegionSpec] = &[
    RegionSpec {
        region: Region::Us,
        partner_geo: "GW_US",
        datacenters: &["cus", "eus", "cus3", "eus3"],
        v20_prefix: "us",
        maps_geo: "unitedstates",
        streamlined_geo: "us",
        sample_accounts: &[
            "ussus1eastprod",
            "ussus2eastprod",
            "ussus3eastprod",
            "ussus4eastprod",
            "ussus1westprod",
            "ussus2westprod",
            "ussus3westprod",
            "ussus4westprod",
            "wsus1eastprod",
            "wsus2eastprod",
            "wsus1westprod",
            "wsus2westprod",
        ],
        probed_accounts: ["ussus1eastprod", "ussus1westprod"],
        source: "S1",
    },
    RegionSpec {
        region: Region::Eu,
        partner_geo: "GW_EU",
        datacenters: &["neu", "weu", "neu3", "weu3"],
        v20_prefix: "eu",
        maps_geo: "europe",
        streamlined_geo: "eu",
        sample_accounts: &[
            "usseu1northprod",
            "wseu1northprod",
            "usseu1westprod",
            "wseu1westprod",
        ],
        probed_accounts: ["usseu1northprod", "usseu1westprod"],
        source: "S1",
    },
    RegionSpec {
        region: Region::Uk,
        partner_geo: "GW_UK",
        datacenters: &["uks", "ukw"],
        v20_prefix: "uk",
        maps_geo: "unitedkingdom",
        streamlined_geo: "uk",
        sample_accounts: &[
            "ussuk1southprod",
            "wsuk1southprod",
            "ussuk1westprod",
            "wsuk1westprod",
        ],
        probed_accounts: ["ussuk1southprod", "ussuk1westprod"],
        source: "S1",
    },
    RegionSpec {
        region: Region::Au,
        partner_geo: "GW_AU",
        datacenters: &["aue", "aus"],
        v20_prefix: "au",
        maps_geo: "australia",
        streamlined_geo: "au",
        sample_accounts: &["ussau1southeastprod", "ussau1eastprod"],
        probed_accounts: ["ussau1eastprod", "ussau1southeastprod"],
        source: "S1",
    },
    RegionSpec {
        region: Region::Ch,
        partner_geo: "GW_CH",
        datacenters: &["chn", "chw"],
        v20_prefix: "ch",
        maps_geo: "switzerland",
        streamlined_geo: "ch",
        sample_accounts: &["ussch1northprod", "ussch1westprod"],
        probed_accounts: ["ussch1northprod", "ussch1westprod"],
        source: "S11 (datacenters inferred)",
    },
    RegionSpec {
        region: Region::In,
        partner_geo: "GW_IN",
        datacenters: &["cin", "sin"],
        v20_prefix: "in",
        maps_geo: "india",
        streamlined_geo: "ina",
        sample_accounts: &["ussin1southprod", "ussin1centralprod"],
        probed_accounts: ["ussin1southprod", "ussin1centralprod"],
        source: "S11 (datacenters inferred)",
    },
];

const STREAMLINED_DOMAIN: &str = "endpoint.security.microsoft.com";

/// Appends every URL of one region, standard then streamlined.
pub(super) fn push_endpoints(spec: &RegionSpec, out: &mut Vec<Endpoint>) {
    let region = Some(spec.region);
    let src = spec.source;
    let https = |host: String, service, models, profile, pinned, probe: Probe| Endpoint {
        host,
        port: 443,
        scheme: Scheme::Https,
        service,
        region,
        models,
        profile: Some(profile),
        pinned,
        probe,
        source: src,
    };
    let get = |path: &str, status: u16, body: Option<&'static str>| Probe {
        method: ProbeMethod::Get,
        path: path.to_owned(),
        status,
        body,
    };
    let std_models = Models::Standard;
    let sl_models = Models::Streamlined;

    // Standard: CnC gateways, pinned (S14, S10).
    for dc in spec.datacenters {
        let host = format!("winatp-gw-{dc}.microsoft.com");
        out.push(https(
            host.clone(),
            Service::CommandAndControl,
            std_models,
            Profile::Pinned,
            true,
            get("/test", 200, None),
        ));
        out.push(https(
            host,
            Service::CommandAndControl,
            std_models,
            Profile::Pinned,
            true,
            get("/commands/test", 200, None),
        ));
    }
    // Standard: cyber data (S15, S16).
    out.push(https(
        format!("{}-v20.events.data.microsoft.com", spec.v20_prefix),
        Service::CyberData,
        std_models,
        Profile::Pinned,
        true,
        get("/ping", 200, None),
    ));
    // Standard: Auto-IR storage, one account per datacenter, 400 at the account root (S14).
    for dc in spec.datacenters {
        out.push(https(
            format!("automatedirstrprd{dc}.blob.core.windows.net"),
            Service::AutoIr,
            std_models,
            Profile::Azure,
            false,
            get("/", 400, None),
        ));
    }
    // Standard: sample submission storage (S1, S14).
    for account in spec.sample_accounts {
        out.push(https(
            format!("{account}.blob.core.windows.net"),
            Service::SampleUpload,
            std_models,
            Profile::Azure,
            false,
            get("/", 400, None),
        ));
    }
    // Standard: MAPS (S10, S11): the pinned Windows cloud and the unpinned cross-platform broker.
    out.push(https(
        format!("{}.cp.wd.microsoft.com", spec.maps_geo),
        Service::CloudProtection,
        std_models,
        Profile::Pinned,
        true,
        get("/wdcp.svc/bond/submitReport/test", 404, None),
    ));
    out.push(https(
        format!("{}.x.cp.wd.microsoft.com", spec.maps_geo),
        Service::CloudProtection,
        std_models,
        Profile::Azure,
        false,
        get("/api/report", 200, Some("OK")),
    ));

    // Streamlined (S10, S11, S12): CnC + Auto-IR storage behind the EDR gateway, pinned.
    let geo = spec.streamlined_geo;
    for dc in spec.datacenters {
        let host = format!("edr-{dc}.{geo}.{STREAMLINED_DOMAIN}");
        out.push(https(
            host.clone(),
            Service::CommandAndControl,
            sl_models,
            Profile::Pinned,
            true,
            get("/edr/commands/test", 200, None),
        ));
        out.push(https(
            host,
            Service::AutoIr,
            sl_models,
            Profile::Pinned,
            true,
            get(&format!("/storage/automatedirstrprd{dc}/"), 400, None),
        ));
    }
    out.push(https(
        format!("{}-v20.events.{STREAMLINED_DOMAIN}", spec.v20_prefix),
        Service::CyberData,
        sl_models,
        Profile::Pinned,
        true,
        get("/ping", 200, None),
    ));
    let mdav = format!("mdav.{geo}.{STREAMLINED_DOMAIN}");
    out.push(https(
        mdav.clone(),
        Service::CloudProtection,
        sl_models,
        Profile::Pinned,
        true,
        get("/mdav/test", 404, None),
    ));
    out.push(https(
        mdav.clone(),
        Service::CloudProtection,
        sl_models,
        Profile::Pinned,
        true,
        get("/xplat/api/report", 200, Some("OK")),
    ));
    // The streamlined output shows two /storage entries (S6): the pair the analyzers probe.
    for account in spec.probed_accounts {
        out.push(https(
            mdav.clone(),
            Service::SampleUpload,
            sl_models,
            Profile::Pinned,
            true,
            get(&format!("/storage/{account}/"), 400, None),
        ));
    }
    // Platform updates, one HEAD per platform the analyzers check (S6: one `/packages` entry;
    // S10 probes `ostype=mac` on macOS and `ostype=linux` on Linux).
    for ostype in ["mac", "linux"] {
        out.push(https(
            mdav.clone(),
            Service::Updates,
            sl_models,
            Profile::Pinned,
            true,
            Probe {
                method: ProbeMethod::Head,
                path: format!("/packages/?ostype={ostype}"),
                status: 200,
                body: None,
            },
        ));
    }
}
