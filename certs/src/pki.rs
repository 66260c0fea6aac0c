//! The lab's whole PKI: two server-certificate profiles and the inspection CA.
//!
//! - **Pinned profile**: "MDE Lab Root Certificate Authority 2011" → "MDE Lab Secure Server
//!   CA 2011" → leaves. Mirrors the chain MDE pins for its CnC gateways, cloud protection and
//!   cyber data.
//! - **Azure profile**: "MDE Lab Global Root G2" → "MDE Lab Azure TLS Issuing CA 01" → leaves.
//!   Trusted by the device but not pinned, like Azure blob storage.
//! - **Inspection CA**: a root the intercepting proxy mints from. Whether a device trusts it
//!   (an enterprise push) is a scenario's decision, so it is never in [`Pki::trust_bundle_pem`].
//!
//! Fresh per run by default (Pebble's rule: nobody learns to trust a lab root for good); a
//! state directory keeps one set across runs, private keys written 0600.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;

use crate::authority::{Authority, LeafIssuer};
use crate::{Error, KeyAlgorithm, PinSet};
pub use mdelab_catalog::Profile;

/// Common name of the pinned profile's root.
pub const PINNED_ROOT_NAME: &str = "MDE Lab Root Certificate Authority 2011";
/// Common name of the pinned profile's issuing CA.
pub const PINNED_ISSUING_NAME: &str = "MDE Lab Secure Server CA 2011";
/// Common name of the Azure profile's root.
pub const AZURE_ROOT_NAME: &str = "MDE Lab Global Root G2";
/// Common name of the Azure profile's issuing CA.
pub const AZURE_ISSUING_NAME: &str = "MDE Lab Azure TLS Issuing CA 01";
/// Default common name of the inspection CA.
pub const DEFAULT_INSPECTION_CA_NAME: &str = "MDE Lab TLS Inspection CA";

/// How to build the PKI.
#[derive(Clone, Debug)]
pub struct PkiOptions {
    /// Key algorithm for every key.
    pub algorithm: KeyAlgorithm,
    /// Common name of the inspection CA (vendors like to see their own product's name).
    pub inspection_ca_name: String,
}

impl Default for PkiOptions {
    fn default() -> Self {
        Self {
            algorithm: KeyAlgorithm::default(),
            inspection_ca_name: DEFAULT_INSPECTION_CA_NAME.to_owned(),
        }
    }
}

/// The lab PKI.
#[derive(Clone, Debug)]
pub struct Pki {
    pinned_root: Arc<Authority>,
    pinned: LeafIssuer,
    azure_root: Arc<Authority>,
    azure: LeafIssuer,
    inspection: LeafIssuer,
    algorithm: KeyAlgorithm,
}

/// File stems in a state directory, in the order they are written.
const PINNED_ROOT: &str = "pinned-root";
const PINNED_ISSUING: &str = "pinned-issuing";
const PINNED_LEAF: &str = "pinned-leaf";
const AZURE_ROOT: &str = "azure-root";
const AZURE_ISSUING: &str = "azure-issuing";
const AZURE_LEAF: &str = "azure-leaf";
const INSPECTION_CA: &str = "inspection-ca";
const INSPECTION_LEAF: &str = "inspection-leaf";

impl Pki {
    /// Generates a fresh PKI.
    pub fn generate(options: &PkiOptions) -> Result<Self, Error> {
        let alg = options.algorithm;
        let pinned_root = Arc::new(Authority::new_root(PINNED_ROOT_NAME, alg)?);
        let pinned_issuing = Authority::new_intermediate(PINNED_ISSUING_NAME, &pinned_root, alg)?;
        let azure_root = Arc::new(Authority::new_root(AZURE_ROOT_NAME, alg)?);
        let azure_issuing = Authority::new_intermediate(AZURE_ISSUING_NAME, &azure_root, alg)?;
        let inspection_ca = Authority::new_root(&options.inspection_ca_name, alg)?;
        Ok(Self {
            pinned: LeafIssuer::new(Arc::new(pinned_issuing), alg)?,
            pinned_root,
            azure: LeafIssuer::new(Arc::new(azure_issuing), alg)?,
            azure_root,
            inspection: LeafIssuer::new(Arc::new(inspection_ca), alg)?,
            algorithm: alg,
        })
    }

    /// Loads the PKI persisted in `dir`, or generates one and saves it there.
    ///
    /// Returns the PKI and whether it was freshly generated. An inspection CA whose name differs
    /// from the requested one is replaced (and saved); the server profiles are kept.
    pub fn load_or_generate(dir: &Path, options: &PkiOptions) -> Result<(Self, bool), Error> {
        if !dir.join(format!("{PINNED_ROOT}.pem")).exists() {
            let pki = Self::generate(options)?;
            pki.save(dir)?;
            return Ok((pki, true));
        }
        let mut pki = Self::load(dir)?;
        if pki.algorithm != options.algorithm {
            return Err(Error::AlgorithmMismatch {
                dir: dir.to_owned(),
                found: pki.algorithm.name(),
                requested: options.algorithm.name(),
            });
        }
        if pki.inspection.authority().common_name() != options.inspection_ca_name {
            let ca = Authority::new_root(&options.inspection_ca_name, options.algorithm)?;
            pki.inspection = LeafIssuer::new(Arc::new(ca), options.algorithm)?;
            pki.save(dir)?;
        }
        Ok((pki, false))
    }

    /// Loads the PKI persisted in `dir` as it is (e.g. a running lab's, to mint from its
    /// inspection CA), without generating or changing anything.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let read = |stem: &str, ext: &str| -> Result<String, Error> {
            let path = dir.join(format!("{stem}.{ext}"));
            fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
        };
        let authority = |stem: &str, parent: Option<&Authority>| -> Result<Authority, Error> {
            Authority::from_pem(&read(stem, "pem")?, &read(stem, "key")?, parent, stem)
        };
        let leaf = |authority: Arc<Authority>, stem: &str| -> Result<LeafIssuer, Error> {
            LeafIssuer::with_key_pem(authority, &read(stem, "key")?, stem)
        };
        let pinned_root = Arc::new(authority(PINNED_ROOT, None)?);
        let algorithm = pinned_root.algorithm().unwrap_or_default();
        let pinned_issuing = Arc::new(authority(PINNED_ISSUING, Some(&pinned_root))?);
        let azure_root = Arc::new(authority(AZURE_ROOT, None)?);
        let azure_issuing = Arc::new(authority(AZURE_ISSUING, Some(&azure_root))?);
        let inspection_ca = Arc::new(authority(INSPECTION_CA, None)?);
        Ok(Self {
            pinned: leaf(pinned_issuing, PINNED_LEAF)?,
            pinned_root,
            azure: leaf(azure_issuing, AZURE_LEAF)?,
            azure_root,
            inspection: leaf(inspection_ca, INSPECTION_LEAF)?,
            algorithm,
        })
    }

    /// Writes every certificate (PEM, 0644) and key (PEM, 0600) into `dir`, creating it 0700.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        create_private_dir(dir)?;
        let authorities: [(&str, &Authority); 5] = [
            (PINNED_ROOT, &self.pinned_root),
            (PINNED_ISSUING, self.pinned.authority()),
            (AZURE_ROOT, &self.azure_root),
            (AZURE_ISSUING, self.azure.authority()),
            (INSPECTION_CA, self.inspection.authority()),
        ];
        for (stem, ca) in authorities {
            write_file(
                &dir.join(format!("{stem}.pem")),
                ca.certificate_pem(),
                0o644,
            )?;
            write_file(&dir.join(format!("{stem}.key")), &ca.key_pem(), 0o600)?;
        }
        for (stem, issuer) in [
            (PINNED_LEAF, &self.pinned),
            (AZURE_LEAF, &self.azure),
            (INSPECTION_LEAF, &self.inspection),
        ] {
            write_file(&dir.join(format!("{stem}.key")), &issuer.key_pem(), 0o600)?;
        }
        Ok(())
    }

    /// The leaf issuer of a server profile.
    pub fn issuer(&self, profile: Profile) -> &LeafIssuer {
        match profile {
            Profile::Pinned => &self.pinned,
            Profile::Azure => &self.azure,
        }
    }

    /// The root of a server profile.
    pub fn root(&self, profile: Profile) -> &Authority {
        match profile {
            Profile::Pinned => &self.pinned_root,
            Profile::Azure => &self.azure_root,
        }
    }

    /// The inspection CA's leaf issuer (what an intercepting proxy mints from).
    pub fn inspection(&self) -> &LeafIssuer {
        &self.inspection
    }

    /// The key algorithm of every key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The roots a lab device trusts (both profiles; never the inspection CA).
    pub fn trust_anchors(&self) -> Vec<CertificateDer<'static>> {
        vec![
            self.pinned_root.certificate().clone(),
            self.azure_root.certificate().clone(),
        ]
    }

    /// The device trust bundle as PEM (both profile roots; never the inspection CA).
    pub fn trust_bundle_pem(&self) -> String {
        format!(
            "{}{}",
            self.pinned_root.certificate_pem(),
            self.azure_root.certificate_pem()
        )
    }

    /// The pins of a profile: its leaf key, issuing CA and root, each labelled.
    ///
    /// A chain matches when any of its certificates has one of these keys; curl matches only
    /// the leaf, which is why the leaf key is included.
    pub fn pins(&self, profile: Profile) -> PinSet {
        let issuer = self.issuer(profile);
        let root = self.root(profile);
        PinSet::new()
            .with(
                issuer.leaf_pin(),
                format!("{} leaf key", issuer.authority().common_name()),
            )
            .with(issuer.authority().pin(), issuer.authority().common_name())
            .with(root.pin(), root.common_name())
    }
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
            Error::Write {
                path: dir.to_owned(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Writes a file with the given Unix mode, set at creation so a key is never readable by others.
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(err)?;
    // `mode` applies only when the file is created; tighten an existing file too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(err)?;
    }
    file.write_all(contents.as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests;
