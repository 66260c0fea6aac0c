//! The mdelab harness: wires the lab, drives the emulated sensor, and reports.
//!
//! This is the only crate that reads argv or the environment and decides exit codes; the
//! libraries below it get everything as values.
//!
//! # Use the lab in your tests
//!
//! A Rust tool can bring the whole lab up on loopback, point itself at it (addresses, trust
//! bundle, pins, admin API) and assert on what the cloud saw. The lab stops when dropped.
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use mdelab::Lab;
//! use mdelab_sensor::{self as sensor, ClientKind, Route, Target};
//! use mdelab_catalog::{Catalog, Region};
//!
//! let lab = Lab::builder().region(Region::Eu).start().await?;
//! let manifest = lab.manifest(); // dns, https, proxies, trust_bundle, hosts_file, pins…
//! assert!(manifest.trust_bundle.exists());
//!
//! // "The tool under test": here, the lab's own pinned client probing the EU CnC gateway.
//! let endpoint = Catalog::mde().endpoints().iter().find(|e| e.host == "winatp-gw-weu.microsoft.com").unwrap();
//! let outcome = sensor::probe(&Target::from(endpoint), ClientKind::Sensor, &Route::Direct,
//!                             &lab.device_trust(false), &lab.network()).await;
//! assert_eq!(outcome.verdict, sensor::Verdict::Connected { status: 200 });
//!
//! // What the cloud saw, through the admin API.
//! let admin = lab.admin();
//! assert!(admin.ready().await?);
//! assert_eq!(admin.journal_count("host=winatp-gw-weu.microsoft.com").await?, 1);
//! lab.shutdown().await?; // or just drop it
//! # Ok::<(), anyhow::Error>(())
//! # })
//! # }
//! ```
//!
//! # Layout
//! - [`cli`]: the `mdelab` command line (clap) and its dispatch.
//! - [`lab`]: starts DNS, the mock cloud, the proxies, the admin API and the lab files
//!   ([`Lab`], [`LabBuilder`], [`LabOptions`]).
//! - [`admin_client`]: a client of the admin API ([`AdminClient`]).
//! - [`manifest`]: the JSON manifest a running lab writes ([`Manifest`]).
//! - [`demo`]: `mdelab demo`.
//! - [`certify`]: `mdelab certify`, the connectivity suite through a vendor's proxy.
//! - [`scenario`]: proxy-precedence scenarios (`mdelab scenario`).
//! - [`analyze`]: the Client Analyzer's connectivity view (`mdelab analyze`).
//! - [`endpoints`]: `mdelab endpoints`.
//! - [`proxy_cmd`]: `mdelab proxy connect|inspect`, one lab proxy alone.
//! - [`running`]: `mdelab env` and `mdelab wait` for a lab started elsewhere.
//! - [`report`]: deterministic reports rendered as table, JSON or JUnit.

pub mod admin_client;
pub mod analyze;
pub mod certify;
pub mod cli;
pub mod demo;
pub mod endpoints;
pub mod lab;
pub mod manifest;
pub mod proxy_cmd;
pub mod report;
pub mod running;
pub mod scenario;

pub use admin_client::AdminClient;
pub use lab::{Lab, LabBuilder, LabOptions};
pub use manifest::Manifest;
pub use report::{Format, Report};
