//! Tests of the catalog data: every region, model and service is present and consistent.

use super::*;

#[test]
fn every_region_has_both_models_and_the_core_services() {
    let catalog = Catalog::mde();
    for region in Region::ALL {
        for model in Connectivity::ALL {
            let services: std::collections::BTreeSet<Service> = catalog
                .for_device(region, model)
                .map(|e| e.service)
                .collect();
            for needed in [
                Service::CommandAndControl,
                Service::CyberData,
                Service::AutoIr,
                Service::SampleUpload,
                Service::CloudProtection,
                Service::CrlCtl,
            ] {
                assert!(
                    services.contains(&needed),
                    "{region} {model} lacks {needed}"
                );
            }
        }
    }
}

#[test]
fn reference_probes_have_their_expected_answers() {
    let catalog = Catalog::mde();
    let find = |url: &str| {
        catalog
            .endpoints()
            .iter()
            .find(|e| e.url() == url)
            .unwrap_or_else(|| panic!("{url} missing"))
    };
    assert_eq!(
        find("https://winatp-gw-cus.microsoft.com/test")
            .probe
            .status,
        200
    );
    assert!(find("https://winatp-gw-cus.microsoft.com/test").pinned);
    assert_eq!(
        find("https://mdav.us.endpoint.security.microsoft.com/mdav/test")
            .probe
            .status,
        404
    );
    assert_eq!(
        find("https://ussus1eastprod.blob.core.windows.net/")
            .probe
            .status,
        400
    );
    assert!(!find("https://ussus1eastprod.blob.core.windows.net/").pinned);
    let xcp = find("https://unitedstates.x.cp.wd.microsoft.com/api/report");
    assert_eq!((xcp.probe.status, xcp.probe.body), (200, Some("OK")));
    assert_eq!(
        find("https://us-v20.events.data.microsoft.com/ping")
            .probe
            .status,
        200
    );
    assert_eq!(find("http://crl.microsoft.com/").probe.status, 400);
    assert_eq!(find("http://ctldl.windowsupdate.com/").port, 80);
}

#[test]
fn host_lookup_prefers_exact_hosts_then_longest_family() {
    let catalog = Catalog::mde();
    let exact = catalog.https_host("WINATP-GW-CUS.microsoft.com.").unwrap();
    assert!(exact.pinned);
    assert_eq!(exact.profile, Profile::Pinned);
    let blob = catalog
        .https_host("anyaccount.blob.core.windows.net")
        .unwrap();
    assert_eq!((blob.profile, blob.pinned), (Profile::Azure, false));
    // x.cp.wd is Azure even though *.cp.wd is pinned: the longer suffix wins.
    let xcp = catalog.https_host("newgeo.x.cp.wd.microsoft.com").unwrap();
    assert_eq!(xcp.profile, Profile::Azure);
    assert!(catalog.https_host("www.example.org").is_none());
    assert!(
        catalog.https_host("blob.core.windows.net").is_none(),
        "a family does not match its own suffix"
    );
    assert!(catalog.serves("crl.microsoft.com", 80));
    assert!(!catalog.serves("crl.microsoft.com", 8080));
}

#[test]
fn dns_names_cover_every_host_and_family() {
    let names = Catalog::mde().dns_names();
    assert!(names.contains(&"us-v20.events.data.microsoft.com".to_owned()));
    assert!(names.contains(&"*.blob.core.windows.net".to_owned()));
    assert!(names.iter().all(|n| n == &n.to_ascii_lowercase()));
}

#[test]
fn region_and_connectivity_parse_from_cli_words() {
    assert_eq!("EU".parse::<Region>().unwrap(), Region::Eu);
    assert_eq!("GW_UK".parse::<Region>().unwrap(), Region::Uk);
    assert!(
        "mars"
            .parse::<Region>()
            .unwrap_err()
            .contains("expected one of")
    );
    assert_eq!(
        "streamlined".parse::<Connectivity>().unwrap(),
        Connectivity::Streamlined
    );
}

#[test]
fn a_streamlined_gateway_is_served_as_its_first_service() {
    let catalog = Catalog::mde();
    let edr = catalog
        .https_host("edr-cus.us.endpoint.security.microsoft.com")
        .unwrap();
    assert_eq!(edr.service, Service::CommandAndControl);
    let mdav = catalog
        .https_host("mdav.us.endpoint.security.microsoft.com")
        .unwrap();
    assert_eq!(mdav.service, Service::CloudProtection);
}

#[test]
fn test_sites_are_served_but_never_on_the_mde_bypass_list() {
    let catalog = Catalog::mde();
    let sites: Vec<&str> = catalog.test_sites().map(|f| f.pattern).collect();
    assert_eq!(
        sites,
        vec!["www.msftconnecttest.com", "smartscreentestratings2.net"]
    );
    let site = catalog.https_host("smartscreentestratings2.net").unwrap();
    assert_eq!((site.service, site.pinned), (Service::TestSite, false));
    assert!(
        catalog
            .https_host("sub.smartscreentestratings2.net")
            .is_none(),
        "exact names only"
    );
    assert!(
        catalog
            .dns_names()
            .contains(&"www.msftconnecttest.com".to_owned())
    );
    assert!(
        !catalog
            .inspection_bypass()
            .iter()
            .any(|n| n.contains("msftconnecttest"))
    );
    assert!(DANGEROUS_DOMAINS.contains(&"smartscreentestratings2.net"));
    assert!(
        catalog
            .endpoints()
            .iter()
            .all(|e| e.service != Service::TestSite),
        "not MDE URLs"
    );
}

#[test]
fn streamlined_storage_probes_are_the_pairs_the_analyzers_probe() {
    // XMDE `GW_US` and the signature's `MAPSURL_GW_US` XPLATTEST probe the east/west pair.
    let storage: Vec<&str> = Catalog::mde()
        .for_device(Region::Us, Connectivity::Streamlined)
        .filter(|e| e.service == Service::SampleUpload && e.probe.path.starts_with("/storage/"))
        .map(|e| e.probe.path.as_str())
        .collect();
    assert_eq!(
        storage,
        ["/storage/ussus1eastprod/", "/storage/ussus1westprod/"]
    );
    for spec in REGIONS {
        for account in spec.probed_accounts {
            assert!(spec.sample_accounts.contains(&account), "{account}");
            assert!(
                account.starts_with("uss"),
                "{account} is a Windows-only account"
            );
        }
    }
}

#[test]
fn a_wildcard_needs_whole_non_empty_labels() {
    assert!(matches_pattern(
        "*.blob.core.windows.net",
        "a.blob.core.windows.net"
    ));
    assert!(matches_pattern(
        "*.blob.core.windows.net",
        "a.b.blob.core.windows.net"
    ));
    assert!(matches_pattern(
        "*.blob.core.windows.net",
        "A.BLOB.core.windows.net"
    ));
    for bad in [
        "blob.core.windows.net",
        ".blob.core.windows.net",
        "a..blob.core.windows.net",
        "xblob.core.windows.net",
        "é.blob.core.windows.net.x",
    ] {
        assert!(!matches_pattern("*.blob.core.windows.net", bad), "{bad}");
    }
}
