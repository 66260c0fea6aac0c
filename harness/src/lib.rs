//! The mdelab harness: wires the lab, drives the emulated sensor, and reports.
//!
//! This is the only crate that reads argv or the environment and decides exit codes; the
//! libraries below it get everything as values.
//!
//! # Layout
//! - [`cli`]: the `mdelab` command line (clap) and its dispatch.
//! - [`lab`]: starts DNS, the mock cloud and the lab files ([`Lab`], [`LabOptions`]).
//! - [`manifest`]: the JSON manifest a running lab writes ([`Manifest`]).
//! - [`sensor`]: the emulated sensor and the unpinned browser client; verdicts.
//! - [`demo`]: `mdelab demo`.
//! - [`endpoints`]: `mdelab endpoints`.
//! - [`proxy_cmd`]: `mdelab proxy connect|inspect`, one lab proxy alone.
//! - [`report`]: deterministic reports rendered as table, JSON or JUnit.

pub mod cli;
pub mod demo;
pub mod endpoints;
pub mod lab;
pub mod manifest;
pub mod proxy_cmd;
pub mod report;
pub mod sensor;

pub use lab::{Lab, LabOptions};
pub use manifest::Manifest;
pub use report::{Format, Report};
