//! The mock MDE cloud: the endpoint catalog and the listeners that serve it.
//!
//! One HTTPS listener serves every catalog host, choosing the certificate by SNI from the lab
//! PKI (pinned or Azure profile, as the catalog says); one plain HTTP listener serves the
//! port-80 hosts (CRL/CTL). Each host answers its catalog probes exactly; unknown paths 404.
//!
//! # Layout
//! - [`admin`]: the admin API (journal, faults, stores, readiness), on its own listener.
//! - [`bond`]: 1DS bodies in Bond CompactBinary v1 (`CsProtocol::Record`) as Common Schema JSON.
//! - [`tls`]: SNI certificate selection and the rustls server configuration.
//! - [`server`]: the listeners ([`spawn`], [`Running`]); the caller binds, this crate serves.
//! - [`routes`]: HTTP routing per host and service family.
//! - [`state`]: state shared by all connections ([`State`]).
//! - [`store`]: what the cloud keeps (events, blobs, devices, Live Response sessions).
//! - [`journal`]: the bounded request journal (and its JSON-lines file).
//! - [`hunting`]: the `DeviceNetworkEvents` table and a documented KQL subset.
//! - [`faults`]: injected faults (delays, statuses, resets, truncation, kill-tokens).
//! - [`clock`]: the one wall clock of every recorded timestamp ([`Clock`]).
//! - [`config`]: service capacities, holds and timeouts ([`ServiceConfig`]).
//! - [`error`]: the crate's [`Error`].

pub mod admin;
mod admin_stores;
pub mod bond;
pub mod clock;
pub mod config;
mod conn;
pub mod error;
pub mod faults;
pub mod hunting;
pub mod journal;
pub mod routes;
pub mod server;
pub mod state;
pub mod store;
pub mod tls;

pub use clock::Clock;
pub use config::{ConnectionLimits, ServiceConfig};
pub use error::Error;
pub use server::{CloudConfig, Listeners, Running, spawn};
pub use state::State;
