//! The mdelab PKI, built from code: mock Microsoft-like roots and issuing CAs, leaves for any
//! host name, the TLS-inspection CA that the intercepting proxy mints from, and SPKI pins.
//!
//! Every name says it is a mock ("MDE Lab …"); no real Microsoft key or certificate is involved.
//! The crate does no network I/O and needs no runtime: the only I/O is the explicit
//! [`Pki::save`] / [`Pki::load_or_generate`] of a state directory.
//!
//! # Layout
//! - [`authority`]: a certificate authority ([`Authority`]) and leaf minting from it
//!   ([`LeafIssuer`], [`IssuedLeaf`]).
//! - [`cache`]: the bounded cache of minted leaves, per normalised host ([`CertCache`]).
//! - [`key`]: key algorithms and generation ([`KeyAlgorithm`]), ECDSA P-256 or RSA-2048.
//! - [`pki`]: the lab's whole PKI ([`Pki`]): the pinned profile, the Azure profile and the
//!   inspection CA, fresh per run or persisted in a state directory.
//! - [`pin`]: SPKI SHA-256 pins ([`Pin`], [`PinSet`]) in curl, OkHttp, HPKP and raw syntax.
//! - [`describe`]: a summary of a DER certificate ([`CertSummary`]), for evidence in reports.
//! - [`error`]: the crate's [`Error`].

pub mod authority;
pub mod cache;
pub mod describe;
pub mod error;
pub mod key;
pub mod pin;
pub mod pki;

pub use authority::{Authority, IssuedLeaf, LeafIssuer};
pub use cache::{CacheStats, CertCache};
pub use describe::{CertSummary, describe};
pub use error::Error;
pub use key::KeyAlgorithm;
pub use pin::{Pin, PinSet};
pub use pki::{Pki, PkiOptions, Profile};
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
