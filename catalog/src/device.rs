//! What a device asks the catalog about the hosts it is given: which connectivity model a host
//! belongs to (an onboarding blob names hosts, not the model), which storage account a blob
//! host names (a SAS URL names the account in its host), and which CnC gateway and 1DS
//! collector an onboarding blob of a region and model names.

use crate::{Catalog, Connectivity, Endpoint, Models, Region, Service, matches_pattern, normalise};

/// The CnC gateway's test path, below the base path of its API (`/` or `/edr/`).
const CNC_TEST: &str = "commands/test";

impl Catalog {
    /// The CnC gateway of the first datacenter of `region` for `model`, and the base path of
    /// its API (`/` on the standard gateways, `/edr/` on the streamlined ones).
    pub fn cnc_gateway(&self, region: Region, model: Connectivity) -> Option<(&str, &str)> {
        let endpoint = self.for_device(region, model).find(|e| {
            e.service == Service::CommandAndControl && e.probe.path.ends_with(CNC_TEST)
        })?;
        let base = endpoint.probe.path.strip_suffix(CNC_TEST)?;
        Some((endpoint.host.as_str(), base))
    }

    /// The 1DS collector (cyber data) of `region` for `model`.
    pub fn collector(&self, region: Region, model: Connectivity) -> Option<&Endpoint> {
        self.for_device(region, model)
            .find(|e| e.service == Service::CyberData)
    }

    /// The connectivity model whose devices use `host`: from its catalog rows, or, for a host
    /// the catalog does not list, from the rows of the host family it falls in. `None` when
    /// the host is unknown or both models use it.
    pub fn model_of(&self, host: &str) -> Option<Connectivity> {
        let host = normalise(host);
        let mut rows: Vec<Models> = self
            .endpoints
            .iter()
            .filter(|e| e.host == host)
            .map(|e| e.models)
            .collect();
        if rows.is_empty() {
            let family = self.family_of(&host)?;
            rows = self
                .endpoints
                .iter()
                .filter(|e| matches_pattern(family.pattern, &e.host))
                .map(|e| e.models)
                .collect();
        }
        let first = *rows.first()?;
        if rows.iter().any(|m| *m != first) {
            return None;
        }
        match first {
            Models::Standard => Some(Connectivity::Standard),
            Models::Streamlined => Some(Connectivity::Streamlined),
            Models::Both => None,
        }
    }

    /// The storage account a blob-storage host names (`acct` for `acct.<storage suffix>`), or
    /// `None` when `host` is not in a storage host family.
    pub fn storage_account(&self, host: &str) -> Option<String> {
        let host = normalise(host);
        let family = self.family_of(&host)?;
        if !matches!(family.service, Service::SampleUpload | Service::AutoIr) {
            return None;
        }
        let suffix = family.pattern.strip_prefix("*.")?;
        host.strip_suffix(suffix)?
            .strip_suffix('.')
            .filter(|account| !account.is_empty() && !account.contains('.'))
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Catalog, Connectivity};

    #[test]
    fn hosts_name_their_connectivity_model() {
        let catalog = Catalog::mde();
        assert_eq!(
            catalog.model_of("winatp-gw-cus.microsoft.com"),
            Some(Connectivity::Standard)
        );
        assert_eq!(
            catalog.model_of("edr-cus.us.endpoint.security.microsoft.com"),
            Some(Connectivity::Streamlined)
        );
        // Not listed, but in the streamlined family.
        assert_eq!(
            catalog.model_of("edr-new.us.endpoint.security.microsoft.com"),
            Some(Connectivity::Streamlined)
        );
        assert_eq!(catalog.model_of("example.invalid"), None);
    }

    #[test]
    fn every_region_and_model_has_a_gateway_and_a_collector() {
        let catalog = Catalog::mde();
        for region in crate::Region::ALL {
            for model in Connectivity::ALL {
                let (host, base) = catalog.cnc_gateway(region, model).unwrap();
                assert_eq!(catalog.model_of(host), Some(model), "{host}");
                assert_eq!(
                    base,
                    if model == Connectivity::Standard {
                        "/"
                    } else {
                        "/edr/"
                    }
                );
                let collector = catalog.collector(region, model).unwrap();
                assert!(collector.pinned, "{}", collector.host);
            }
        }
        assert_eq!(
            catalog.cnc_gateway(crate::Region::Us, Connectivity::Standard),
            Some(("winatp-gw-cus.microsoft.com", "/"))
        );
    }

    #[test]
    fn blob_hosts_name_their_account() {
        let catalog = Catalog::mde();
        assert_eq!(
            catalog.storage_account("ussus1eastprod.blob.core.windows.net"),
            Some("ussus1eastprod".to_owned())
        );
        assert_eq!(catalog.storage_account("winatp-gw-cus.microsoft.com"), None);
        assert_eq!(
            catalog.storage_account("edr-cus.us.endpoint.security.microsoft.com"),
            None
        );
    }
}
