//! The certification's model: each check with what the verdict needs to explain a failure
//! ([`Item`], grouped by [`Family`]), and the results of a run ([`Results`]), which become the
//! [`Report`] that [`crate::report`] renders (one section per family, the verdict last).

use mdelab_sensor::{ClientKind, Outcome, Verdict};

use super::LINES_PER_POST;
use super::args::CertifyArgs;
use super::verdict::{plural, verdict_line};
use crate::report::{Check, Report, Section};

/// A family of checks (one report section each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    /// Every HTTPS URL answers through CONNECT.
    Reach,
    /// Every MDE host serves the lab's chain.
    Inspection,
    /// A held CnC poll survives.
    LongPoll,
    /// A large blob arrives whole.
    Upload,
    /// 1DS posts are accepted and stored.
    Posts,
    /// CRL/CTL over plain HTTP.
    CrlCtl,
    /// A destination outside MDE is refused.
    Deny,
}

impl Family {
    /// The family in a few words, for the verdict line.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Reach => "reachability",
            Self::Inspection => "TLS inspection",
            Self::LongPoll => "CnC long poll",
            Self::Upload => "sample upload",
            Self::Posts => "1DS posts",
            Self::CrlCtl => "CRL/CTL over HTTP",
            Self::Deny => "denial",
        }
    }
}

/// A check with what the verdict line needs to explain a failure.
pub(super) struct Item {
    /// Which family it belongs to.
    pub(super) family: Family,
    /// The MDE host it concerns ("" for none).
    pub(super) host: String,
    /// Whether the sensor pins that host.
    pub(super) pinned: bool,
    /// The check as the report shows it.
    pub(super) check: Check,
    /// The failure's reason for the verdict line, when the check knows better than its verdict.
    pub(super) reason: Option<String>,
}

/// A check made by the sensor.
pub(super) fn sensor_check(
    target: String,
    path: &str,
    expected: Verdict,
    observed: Outcome,
) -> Check {
    Check {
        target,
        path: path.into(),
        client: ClientKind::Sensor.name().into(),
        expected,
        observed,
        proxy_view: None,
        via: None,
    }
}
/// What a run of the suite found, family by family, before it becomes a [`Report`].
pub(super) struct Results {
    /// Reachability of every HTTPS URL.
    pub(super) reach: Vec<Item>,
    /// The chain each MDE host served.
    pub(super) inspection: Vec<Item>,
    /// One held CnC poll per model.
    pub(super) long_polls: Vec<Item>,
    /// One sample upload per model.
    pub(super) uploads: Vec<Item>,
    /// The 1DS posts of each model.
    pub(super) posts: Vec<Item>,
    /// The plain-HTTP CRL/CTL fetches.
    pub(super) crl: Vec<Item>,
    /// The denial check, when asked for.
    pub(super) deny: Vec<Item>,
    /// Informational lines before the verdict (the `--proxy-user` note).
    pub(super) notes: Vec<String>,
}

impl Results {
    /// The report: one section per family that ran, the notes, then the verdict line.
    pub(super) fn into_report(self, args: &CertifyArgs) -> Report {
        let region = args.region;
        let hold = args.hold_secs();
        let mib = args.upload_mib;
        let posts_n = args.posts;
        let mut families: Vec<(String, Vec<Item>)> = vec![
            (
                format!(
                    "Reachability: every {region} HTTPS endpoint through CONNECT, as SYSTEM (no proxy credentials)"
                ),
                self.reach,
            ),
            (
                "TLS inspection: each MDE host must serve the lab's chain through the proxy (pins hold)".into(),
                self.inspection,
            ),
            (
                format!("CnC long poll: held {hold} s through the proxy"),
                self.long_polls,
            ),
            (
                format!("Sample upload: {mib} MiB block blob through the proxy, SHA-256 compared in the cloud"),
                self.uploads,
            ),
            (
                format!(
                    "Cyber data (1DS): {} of {LINES_PER_POST} events per model, events compared in the cloud",
                    plural(posts_n as usize, "post")
                ),
                self.posts,
            ),
            (
                "CRL/CTL over plain HTTP (port 80, absolute-form) through the proxy".into(),
                self.crl,
            ),
        ];
        if !self.deny.is_empty() {
            families.push((
                "Denial: a destination outside MDE must be refused (no open relay)".into(),
                self.deny,
            ));
        }
        let all: Vec<&Item> = families.iter().flat_map(|(_, items)| items).collect();
        let mut summary = self.notes;
        summary.push(verdict_line(&args.proxy, &all));
        let sections = families
            .into_iter()
            .filter(|(_, items)| !items.is_empty())
            .map(|(title, items)| Section {
                title,
                checks: items.into_iter().map(|i| i.check).collect(),
            })
            .collect();
        Report {
            title: format!(
                "mdelab certify: {} for MDE, region {region}",
                args.proxy.trim_end_matches('/')
            ),
            sections,
            summary,
        }
    }
}
