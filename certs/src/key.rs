//! Key algorithms and key generation.
//!
//! ECDSA P-256 is the default because it is fast to generate and to sign with. RSA-2048 is
//! there for tools that need RSA chains; ring cannot generate RSA keys, so the `rsa` crate does
//! and rcgen signs with the PKCS#8 result.

use std::fmt;

use rcgen::KeyPair;
use rustls_pki_types::PrivatePkcs8KeyDer;

use crate::Error;

/// The key algorithm of every key in a PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default: fast).
    #[default]
    EcdsaP256,
    /// RSA 2048-bit with PKCS#1 v1.5 SHA-256 signatures.
    Rsa2048,
}

impl KeyAlgorithm {
    /// A short stable name ("ecdsa-p256", "rsa-2048").
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
        }
    }

    /// Generates a fresh key pair.
    pub(crate) fn generate(self) -> Result<KeyPair, Error> {
        match self {
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| {
                Error::KeyGeneration {
                    algorithm: self.name(),
                    detail: e.to_string(),
                }
            }),
            Self::Rsa2048 => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| {
                    Error::KeyGeneration {
                        algorithm: self.name(),
                        detail: e.to_string(),
                    }
                })?;
                let der = key.to_pkcs8_der().map_err(|e| Error::KeyGeneration {
                    algorithm: self.name(),
                    detail: e.to_string(),
                })?;
                let pkcs8 = PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
                KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).map_err(
                    |e| Error::KeyGeneration {
                        algorithm: self.name(),
                        detail: e.to_string(),
                    },
                )
            }
        }
    }

    /// Which algorithm a loaded key pair uses, if it is one of ours.
    pub(crate) fn of(key: &KeyPair) -> Option<Self> {
        let alg = key.algorithm();
        if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            Some(Self::EcdsaP256)
        } else if alg == &rcgen::PKCS_RSA_SHA256 {
            Some(Self::Rsa2048)
        } else {
            None
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa" | "ecdsa-p256" | "p256" => Ok(Self::EcdsaP256),
            "rsa" | "rsa-2048" | "rsa2048" => Ok(Self::Rsa2048),
            other => Err(format!(
                "unknown key algorithm {other:?} (expected ecdsa-p256 or rsa-2048)"
            )),
        }
    }
}

/// Loads a PEM private key and checks it against the expected algorithm.
pub(crate) fn load_key_pem(pem: &str, what: &str) -> Result<KeyPair, Error> {
    // `from_pem` guesses ECDSA/Ed25519 but not RSA with ring; try RSA explicitly after.
    KeyPair::from_pem(pem)
        .or_else(|_| KeyPair::from_pem_and_sign_algo(pem, &rcgen::PKCS_RSA_SHA256))
        .map_err(|e| Error::Parse {
            what: what.to_owned(),
            detail: e.to_string(),
        })
}
