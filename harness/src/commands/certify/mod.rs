//! `mdelab certify`: the MDE connectivity suite, run through a vendor's proxy against the lab.
//!
//! The proxy under test must resolve the catalog names to the lab (the lab's hosts file, or the
//! lab DNS) and reach it on the standard ports (443 and 80). The emulated sensor then talks to
//! the lab's cloud *through that proxy*, as SYSTEM (no proxy credentials), and every family of
//! checks becomes one section of a [`Report`]:
//!
//! 1. **Reachability**: every HTTPS catalog URL of the region answers its probe through CONNECT.
//! 2. **TLS inspection**: every MDE host serves the lab's chain (so the pins hold); otherwise the
//!    check names the issuer that replaced it.
//! 3. **CnC long poll**: one poll per gateway held `--hold` seconds survives the proxy.
//! 4. **Sample upload**: a `--upload-mib` block blob arrives whole (SHA-256 compared in the cloud).
//! 5. **Cyber data**: `--posts` 1DS posts are accepted and the cloud holds exactly those events.
//! 6. **CRL/CTL**: the plain-HTTP certificate-revocation fetches pass (absolute-form requests).
//! 7. **Denial** (`--check-deny`): a non-MDE destination is refused (no open relay).
//!
//! The report's last line is the verdict; [`execute`] returns `Ok(true)` only when the proxy is
//! fit.
//!
//! The cloud's side of the story (stored blobs and events) is read through the admin API, for an
//! in-process lab and for a running `mdelab up` (`--lab MANIFEST`) alike: one code path.
//!
//! Here: the lab this runs against and [`certify`]; `args.rs` the options, `checks.rs` the
//! suite (with `inspection.rs` and `long_poll.rs`), `model.rs` its results and the [`Report`]
//! they make, `verdict.rs` the verdict line. The report is rendered by [`crate::report`].

mod args;
mod checks;
mod inspection;
mod long_poll;
mod model;
mod verdict;

pub use args::{CertifyArgs, DEFAULT_HOLD_SECS, ModelChoice};
pub use checks::deny_check;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mdelab_certs::pki::{PINNED_ISSUING_NAME, PINNED_ROOT_NAME};
use mdelab_certs::{Pin, PinSet};
use mdelab_mock_cloud::ServiceConfig;
use mdelab_sensor::{DeviceTrust, Network};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::admin_client::AdminClient;
use crate::commands::progress::Progress;
use crate::lab::{Lab, LabOptions};
use crate::manifest::Manifest;
use crate::report::Report;

/// One mebibyte.
const MIB: u64 = 1024 * 1024;
/// JSON lines in each 1DS post.
const LINES_PER_POST: usize = 3;
/// Time allowed for each step through the proxy (CONNECT answer, TLS handshake, response).
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the certification and prints the report; `Ok(true)` when the proxy is fit for MDE.
pub async fn execute(args: &CertifyArgs) -> Result<bool> {
    let report = certify(args).await?;
    super::print(&report.render(args.format)?)?;
    Ok(report.all_as_expected())
}

/// Runs the certification and returns the report (its last summary line is the verdict).
///
/// Progress and the lab's coordinates (hosts file, DNS) go to stderr.
pub async fn certify(args: &CertifyArgs) -> Result<Report> {
    let proxy = resolve_proxy(&args.proxy).await?;
    let proxy_user = args.proxy_user.as_deref().map(parse_user).transpose()?;
    let (lab, manifest) = match &args.lab {
        Some(path) => (None, Manifest::read(path)?),
        None => {
            let lab = Lab::start(&lab_options(args)).await.context(
                "failed to start the lab on standard ports (give --lab MANIFEST to use a running one)",
            )?;
            let manifest = lab.manifest();
            (Some(lab), manifest)
        }
    };
    let in_process = lab.is_some();
    let result = run_suite(args, proxy, proxy_user, &manifest, in_process).await;
    if let Some(lab) = lab {
        lab.shutdown().await?;
    }
    result
}

/// Plans the run against the lab of `manifest` (the hold it allows), then runs the suite.
async fn run_suite(
    args: &CertifyArgs,
    proxy: SocketAddr,
    proxy_user: Option<(String, String)>,
    manifest: &Manifest,
    in_process: bool,
) -> Result<Report> {
    // A lab started here was given the hold asked for; a running one says what it allows.
    let cap = if in_process {
        None
    } else {
        lab_hold_cap(manifest).await
    };
    let (args, hold_note) = plan_hold(args, cap)?;
    let args = &args;
    let progress = Progress::new("certify", checks::Suite::steps(args));
    announce(args, manifest, in_process, proxy, &progress);
    let suite = checks::Suite::new(args, proxy, proxy_user, manifest, &progress)?;
    let mut results = suite.run().await?;
    results.notes.splice(0..0, hold_note);
    Ok(results.into_report(args))
}

/// The longest CnC hold a running lab allows (`limits.cnc_max_hold_secs` of `/_lab/stats`);
/// `None` when the lab does not say (an older lab: the hold asked for is tried as is).
async fn lab_hold_cap(manifest: &Manifest) -> Option<u64> {
    let admin = AdminClient::new(manifest.admin?, manifest.admin_token.clone());
    let stats = admin.get("/_lab/stats").await.ok()?;
    stats["limits"]["cnc_max_hold_secs"].as_u64()
}

/// The options with the hold this run uses, and the note saying so when the lab's cap
/// shortened the default: `--hold` unset holds [`DEFAULT_HOLD_SECS`] or the lab's cap if lower;
/// an explicit `--hold` above the cap is refused (the check could only fail on a lab setting).
fn plan_hold(args: &CertifyArgs, cap: Option<u64>) -> Result<(CertifyArgs, Option<String>)> {
    let (hold, note) = match (args.hold, cap) {
        (Some(hold), Some(cap)) if hold > cap => bail!(
            "--hold {hold}: the lab holds CnC long polls for at most {cap} s; start it with \
             `mdelab up --cnc-max-hold {hold}`, or give --hold {cap} or less"
        ),
        (Some(hold), _) => (hold, None),
        (None, Some(cap)) if cap < DEFAULT_HOLD_SECS => (
            cap.max(1),
            Some(format!(
                "note: the CnC long poll was held {} s, the lab's cap, not the suite's default {DEFAULT_HOLD_SECS} s \
                 (start the lab with `mdelab up --cnc-max-hold {DEFAULT_HOLD_SECS}` to certify the full hold)",
                cap.max(1)
            )),
        ),
        (None, _) => (DEFAULT_HOLD_SECS, None),
    };
    let mut planned = args.clone();
    planned.hold = Some(hold);
    Ok((planned, note))
}

/// The lab started by `certify` itself: standard ports, and the cloud's limits raised to what
/// the suite asks of it (hold, upload size).
fn lab_options(args: &CertifyArgs) -> LabOptions {
    let upload = args.upload_mib * MIB;
    let models = args.connectivity.models().len() as u64;
    let defaults = ServiceConfig::default();
    LabOptions {
        bind: args.bind,
        https_port: 443,
        http_port: 80,
        dns_port: args.dns_port,
        services: ServiceConfig {
            cnc_max_hold: defaults
                .cnc_max_hold
                .max(Duration::from_secs(args.hold_secs())),
            blob_max_bytes: defaults.blob_max_bytes.max(upload),
            // Room for one upload per model, so none evicts the other before it is compared.
            blob_capacity_bytes: defaults.blob_capacity_bytes.max(upload * models + MIB),
            ..defaults
        },
        region: args.region,
        state_dir: args.state_dir.clone(),
        ..LabOptions::default()
    }
}

/// Tells the operator where the lab is and how the proxy must find it (stderr: stdout is the
/// report, which may be JSON or XML).
fn announce(
    args: &CertifyArgs,
    manifest: &Manifest,
    in_process: bool,
    proxy: SocketAddr,
    progress: &Progress,
) {
    let ip = manifest.https.ip();
    let mut text = format!(
        "mdelab certify: proxy {}, region {}, connectivity {}\n",
        args.proxy,
        args.region,
        args.connectivity.name()
    );
    text.push_str(&format!(
        "  lab          {ip} (https {}, http {}){}\n",
        manifest.https.port(),
        manifest.http.port(),
        if in_process {
            " started for this run"
        } else {
            ""
        }
    ));
    text.push_str(&format!(
        "  hosts file   {}  (the proxy must resolve catalog names to {ip}: e.g. squid `hosts_file`)\n",
        manifest.hosts_file.display()
    ));
    text.push_str(&format!(
        "  lab DNS      {}  (or let the proxy resolve through it, e.g. squid `dns_nameservers {ip}`)\n",
        manifest.dns
    ));
    // The lab's own CONNECT proxy knows the lab's ports; any other proxy dials 443 and 80.
    let own_proxy = manifest.connect_proxy == Some(proxy);
    if !own_proxy && (manifest.https.port() != 443 || manifest.http.port() != 80) {
        text.push_str(&format!(
            "  warning: the lab is not on ports 443/80: a proxy resolving catalog names to {ip} \
             dials 443 and 80 and will miss it (start it with --https-port 443 --http-port 80)\n"
        ));
    }
    text.push_str(&format!(
        "  the CnC long poll is held {} s: the run takes at least that long\n",
        args.hold_secs()
    ));
    progress.line(text.trim_end());
}

/// The proxy's address from `http://host:port` (or `host:port`).
async fn resolve_proxy(url: &str) -> Result<SocketAddr> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.contains("://") {
        bail!("--proxy {url:?}: only http:// proxies are supported (CONNECT over plain HTTP)");
    }
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        bail!(
            "--proxy {url:?}: give credentials with --proxy-user, not in the URL (the suite runs without them anyway)"
        );
    }
    if rest
        .rsplit_once(':')
        .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    {
        bail!("--proxy {url:?}: give the port, e.g. http://proxy.example:3128");
    }
    let mut addrs = tokio::net::lookup_host(rest)
        .await
        .with_context(|| format!("failed to resolve the proxy {rest}"))?;
    addrs
        .next()
        .with_context(|| format!("the proxy {rest} has no address"))
}

/// `USER:PASSWORD` of `--proxy-user`.
fn parse_user(value: &str) -> Result<(String, String)> {
    let (user, password) = value
        .split_once(':')
        .context("--proxy-user takes USER:PASSWORD")?;
    Ok((user.to_owned(), password.to_owned()))
}

/// What the suite needs of a lab, read from its manifest (the same for a lab started here and
/// a running `mdelab up`).
struct LabView {
    /// The admin API (the cloud's stores).
    admin: AdminClient,
    /// The device's trust store and the sensor's pins.
    trust: DeviceTrust,
    /// How the device reaches the lab.
    network: Network,
}

impl LabView {
    /// Reads what the suite needs from a lab's manifest.
    fn from_manifest(manifest: &Manifest) -> Result<Self> {
        let admin_addr = manifest.admin.context(
            "the lab manifest names no admin API (the suite reads the cloud's stores through it)",
        )?;
        let pem = std::fs::read(&manifest.trust_bundle).with_context(|| {
            format!(
                "failed to read the lab trust bundle {}",
                manifest.trust_bundle.display()
            )
        })?;
        let roots = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{} is not PEM", manifest.trust_bundle.display()))?;
        Ok(Self {
            admin: AdminClient::new(admin_addr, manifest.admin_token.clone()),
            trust: DeviceTrust {
                roots,
                sensor_pins: pins_of(&manifest.pins.pinned)?,
            },
            network: Network {
                // Unused through a proxy (it resolves the names); kept for completeness.
                dns: manifest.dns,
                port_map: BTreeMap::new(),
                step_timeout: STEP_TIMEOUT,
                source_ip: None,
                dials: None,
            },
        })
    }
}

/// The sensor's pins from the manifest's curl string, labelled in the order the lab writes
/// them (leaf key, issuing CA, root), so evidence names the keys it expected.
fn pins_of(curl: &str) -> Result<PinSet> {
    let labels = [
        format!("{PINNED_ISSUING_NAME} leaf key"),
        PINNED_ISSUING_NAME.to_owned(),
        PINNED_ROOT_NAME.to_owned(),
    ];
    let mut set = PinSet::new();
    for (i, pin) in curl.split(';').filter(|p| !p.trim().is_empty()).enumerate() {
        let pin = Pin::parse(pin).with_context(|| format!("bad pin {pin:?} in the manifest"))?;
        let label = labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("pin {}", i + 1));
        set = set.with(pin, label);
    }
    if set.is_empty() {
        bail!("the lab manifest carries no pins for the pinned profile");
    }
    Ok(set)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn proxy_urls_need_http_and_a_port() {
        assert_eq!(
            resolve_proxy("http://127.0.0.1:3128/").await.unwrap(),
            "127.0.0.1:3128".parse().unwrap()
        );
        assert!(resolve_proxy("127.0.0.1:8080").await.is_ok());
        for bad in [
            "https://127.0.0.1:3128",
            "http://127.0.0.1",
            "http://u:p@127.0.0.1:1",
        ] {
            assert!(resolve_proxy(bad).await.is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_hold_follows_a_lower_lab_cap_and_an_explicit_one_above_it_is_refused() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["--proxy", "http://127.0.0.1:3128"];
            argv.extend(extra);
            CertifyArgs::parse_from(argv).unwrap()
        };
        let (planned, note) = plan_hold(&parse(&[]), Some(30)).unwrap();
        assert_eq!(planned.hold, Some(30));
        assert_eq!(
            note.as_deref(),
            Some(
                "note: the CnC long poll was held 30 s, the lab's cap, not the suite's default 120 s \
                 (start the lab with `mdelab up --cnc-max-hold 120` to certify the full hold)"
            )
        );
        assert_eq!(plan_hold(&parse(&[]), Some(300)).unwrap().0.hold, Some(120));
        assert_eq!(plan_hold(&parse(&[]), None).unwrap().0.hold, Some(120));
        let (planned, note) = plan_hold(&parse(&["--hold", "5"]), Some(30)).unwrap();
        assert_eq!((planned.hold, note), (Some(5), None));
        let refused = plan_hold(&parse(&["--hold", "60"]), Some(30)).unwrap_err();
        assert!(
            refused.to_string().contains("mdelab up --cnc-max-hold 60"),
            "{refused}"
        );
    }

    #[test]
    fn pins_from_the_manifest_keep_the_lab_labels() {
        let pin = Pin::of_spki_der(b"key");
        let set = pins_of(&format!(
            "{};{}",
            pin.curl(),
            Pin::of_spki_der(b"k2").curl()
        ))
        .unwrap();
        assert_eq!(
            set.label_of(&pin),
            Some(format!("{PINNED_ISSUING_NAME} leaf key").as_str())
        );
        assert!(pins_of("").is_err());
    }
}
