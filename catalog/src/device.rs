//! What a device asks the catalog about the hosts it is given: which connectivity model a host
//! belongs to (an onboarding blob names hosts, not the model) and which storage account a blob
//! host names (a SAS URL names the account in its host).

use crate::{Catalog, Connectivity, Models, Service, matches_pattern, normalise};

impl Catalog {
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
