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
//! - [`lab`]: starts DNS, the mock cloud, the proxies, the admin API and the lab files
//!   ([`Lab`], [`LabBuilder`], [`LabOptions`]).
//! - [`keylog`]: the TLS key log for Wireshark ([`keylog::KeyLogFile`]).
//! - [`admin_client`]: a client of the admin API ([`AdminClient`]).
//! - [`manifest`]: the JSON manifest a running lab writes ([`Manifest`]).
//! - [`cli`]: the `mdelab` command line: the top-level parser and its dispatch.
//! - [`commands`]: one folder per command, `args.rs` (its clap types) beside `mod.rs` (running
//!   it and building its model):
//!   - [`commands::demo`] (also [`demo`]): `mdelab demo`, the pinning matrix and the lab's proof;
//!   - [`commands::up`]: `mdelab up`, the lab until a signal;
//!   - [`commands::endpoints`]: `mdelab endpoints`, the catalog;
//!   - [`commands::proxy`]: `mdelab proxy connect|inspect`, one lab proxy alone;
//!   - [`commands::env`], [`commands::wait`], [`commands::hunt`]: `mdelab env`, `wait` and
//!     `hunt` for a lab started elsewhere;
//!   - [`commands::certify`] (also [`certify`]): `mdelab certify`, the connectivity suite
//!     through a vendor's proxy (`checks.rs` the suite, `model.rs` its results and report,
//!     `verdict.rs` the verdict line);
//!   - [`commands::scenario`] (also [`scenario`]): `mdelab scenario`, the proxy-precedence
//!     scenarios (`named.rs` the definitions, `rig.rs` and `wpad.rs` the lab around the device,
//!     `run.rs` the runner, `model.rs` the report model, `netprot.rs` network protection);
//!   - [`commands::analyze`] (also [`analyze`]): `mdelab analyze`, the Client Analyzer's
//!     connectivity view (`env.rs` where it runs, `analysis.rs` the checks, `model.rs` the
//!     model).
//! - [`report`]: the report models shared by several commands and the one renderer of every
//!   model: [`report::table`] (the one column aligner), [`report::json`], [`report::junit`]
//!   (the one JUnit writer), [`report::csv`], [`report::html`], and the views of one command:
//!   [`report::analyze`] (the Windows analyzer and mdatp text), [`report::scenario`] (the
//!   scenario tables, JUnit and listing).

pub mod admin_client;
pub mod cli;
pub mod commands;
pub mod keylog;
pub mod lab;
pub mod manifest;
pub mod report;

pub use admin_client::AdminClient;
pub use commands::{analyze, certify, demo, scenario};
pub use lab::{Lab, LabBuilder, LabOptions};
pub use manifest::Manifest;
pub use report::{Format, Report};
