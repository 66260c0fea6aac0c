//! Support for mdelab's end-to-end tests: start a lab in-process, run the `mdelab` binary as a
//! process and wait for it to be ready, and call real peers (curl, dig, squid).
//!
//! Nothing here sleeps to synchronise: a lab is ready when `Lab::start` returns, and an
//! `mdelab up` process is ready when it prints its summary (the manifest is written before).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mdelab::{Lab, LabOptions, Manifest};

/// A fault rule for one service family's path prefix that fires `times` times.
pub fn fault_rule(
    service: &str,
    path: &str,
    action: mdelab_mock_cloud::faults::FaultAction,
    times: u32,
) -> mdelab_mock_cloud::faults::FaultRule {
    mdelab_mock_cloud::faults::FaultRule {
        id: 0,
        host: None,
        service: Some(service.into()),
        path: Some(path.into()),
        action,
        probability: 1.0,
        times: Some(times),
    }
}

/// The emulated sensor sends `request` to `origin` directly, trusting what the lab's device
/// trusts (not the inspection CA): the one exchange most end-to-end tests start from.
pub async fn send_direct(
    lab: &Lab,
    origin: &mdelab_sensor::Origin,
    request: &mdelab_sensor::HttpRequest,
) -> Result<mdelab_sensor::HttpResponse, mdelab_sensor::Outcome> {
    mdelab_sensor::send(
        origin,
        mdelab_sensor::ClientKind::Sensor,
        &mdelab_sensor::Route::Direct,
        &lab.device_trust(false),
        &lab.network(),
        request,
    )
    .await
}

/// A response's status and its body as JSON (`null` when it is not JSON).
pub fn status_and_json(response: &mdelab_sensor::HttpResponse) -> (u16, serde_json::Value) {
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or_default(),
    )
}

/// Starts a lab with every port ephemeral on 127.0.0.1.
pub async fn start_lab() -> Lab {
    Lab::start(&LabOptions::default())
        .await
        .expect("the lab starts")
}

/// The `mdelab` binary built alongside this test (cargo builds it for `cargo test --workspace`).
pub fn mdelab_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/mdelab
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("mdelab");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so the binary is built",
        bin.display()
    );
    bin
}

/// Runs an external tool, failing the test with an install hint when it is missing.
pub fn tool(name: &str, package: &str) -> Command {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{name}` is not installed: `apt-get install {package}` (scripts/test installs it)"
    );
    Command::new(name)
}

/// curl that prints only the HTTP status (`000` when nothing answered), within 20 s. It never
/// writes TLS secrets to an inherited `SSLKEYLOGFILE`.
pub fn curl_status() -> Command {
    let mut curl = tool("curl", "curl");
    curl.env_remove("SSLKEYLOGFILE");
    curl.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "20",
    ]);
    curl
}

/// Reads a child's output line by line up to and including the first line `done` accepts, and
/// returns what it read; the rest is drained in the background, so the child never blocks on
/// a full pipe. Fails the test, with the output so far, if the output ends first.
pub fn read_until(
    output: impl std::io::Read + Send + 'static,
    who: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut reader = BufReader::new(output);
    let mut read = String::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("failed to read the output of {who}: {e}"));
        assert!(n > 0, "{who} ended its output early; so far:\n{read}");
        read.push_str(&line);
        if done(&line) {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    read
}

/// `mdelab up` on the standard HTTPS and HTTP ports of `ip` (DNS ephemeral: a proxy such as
/// Squid resolves through the hosts file), for peers that dial catalog hosts on 443 and 80.
pub fn standard_port_lab(dir: &Path, ip: &str) -> UpProcess {
    UpProcess::start(
        dir,
        &[
            "--bind",
            ip,
            "--https-port",
            "443",
            "--http-port",
            "80",
            "--dns-port",
            "0",
        ],
    )
}

/// A running `mdelab up` process; killed on drop if still running.
pub struct UpProcess {
    child: Child,
    /// Its stderr, line by line, when started by [`UpProcess::start_watching_stderr`]; the
    /// channel closes when the process closes its stderr, i.e. when it exits.
    stderr: Option<std::sync::mpsc::Receiver<String>>,
    /// The manifest it wrote.
    pub manifest: Manifest,
    /// Where it wrote it.
    pub manifest_path: PathBuf,
    /// Its stdout up to and including the ready summary.
    pub summary: String,
}

impl UpProcess {
    /// Starts `mdelab up --manifest <dir>/manifest.json [extra…]` and waits until it is ready.
    /// An inherited `SSLKEYLOGFILE` is not passed on (see [`UpProcess::start_with_env`]).
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(dir, extra, &[])
    }

    /// [`UpProcess::start`] with these environment variables set (and no other
    /// `SSLKEYLOGFILE` than one among them).
    pub fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        Self::spawn(dir, extra, env, false)
    }

    /// [`UpProcess::start`], with its stderr read line by line ([`UpProcess::stderr_line`],
    /// [`UpProcess::wait_exit`]) and echoed to the test's own stderr.
    pub fn start_watching_stderr(dir: &Path, extra: &[&str]) -> Self {
        Self::spawn(dir, extra, &[], true)
    }

    fn spawn(
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        watch_stderr: bool,
    ) -> Self {
        let manifest_path = dir.join("manifest.json");
        let mut child = Command::new(mdelab_bin())
            .env_remove("SSLKEYLOGFILE")
            .envs(env.iter().copied())
            .arg("up")
            .arg("--manifest")
            .arg(&manifest_path)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(if watch_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("mdelab up starts");
        let stderr = child.stderr.take().map(|err| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let summary = read_until(stdout, "mdelab up", |line| line.starts_with("Stop with"));
        let manifest =
            Manifest::read(&manifest_path).expect("manifest written before the ready line");
        Self {
            child,
            stderr,
            manifest,
            manifest_path,
            summary,
        }
    }

    /// Waits up to `limit` for a stderr line that `pred` accepts (needs
    /// [`UpProcess::start_watching_stderr`]); `None` if none came or the process exited first.
    pub fn stderr_line(
        &self,
        limit: std::time::Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let rx = self
            .stderr
            .as_ref()
            .expect("started with start_watching_stderr");
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits up to `limit` for the process to exit (its stderr closing says so; needs
    /// [`UpProcess::start_watching_stderr`]) and returns its status, `None` if it is still running.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let rx = self
            .stderr
            .as_ref()
            .expect("started with start_watching_stderr");
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match rx.recv_timeout(left) {
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Some(self.child.wait().expect("wait works"));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait works")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        self.child.wait().expect("mdelab up exits")
    }
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Squid in plain CONNECT mode, resolving catalog names with the lab's hosts file.
/// Killed on drop.
pub struct Squid {
    child: Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its working folder (config, logs).
    pub dir: tempfile::TempDir,
}

impl Squid {
    /// Starts `squid -N` in plain CONNECT mode with `extra_config` and waits until it accepts
    /// connections (see [`Squid::start_with`] for TLS inspection and destination lists).
    pub fn start(hosts_file: &Path, extra_config: &str) -> Self {
        Self::start_with(&SquidOptions {
            hosts_file,
            tls: SquidTls::Plain,
            allow_domains: None,
            extra_config,
        })
    }

    /// Waits (bounded) until Squid accepts TCP connections, failing with its log otherwise.
    fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("squid exited with {status}: {}", self.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "squid not ready in 30 s: {}",
                self.log()
            );
            // Readiness poll of another process's socket: there is no event to wait on.
            std::thread::park_timeout(std::time::Duration::from_millis(50));
        }
    }

    /// Squid's cache.log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("cache.log")).unwrap_or_default()
    }

    /// Squid's access.log.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a child process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA for a TLS-inspecting Squid (`ssl_bump`), written where Squid's unprivileged user
/// (`proxy`, which it drops to when started as root) can read it. Removed on drop.
pub struct SquidCa {
    /// The CA's common name: the issuer an inspected client sees.
    pub name: String,
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, 0600, owned by Squid's user when running as root).
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl SquidCa {
    /// Mints a fresh root CA named `name` (ECDSA P-256) and writes it for Squid.
    pub fn new(name: &str) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let authority =
            mdelab_certs::Authority::new_root(name, mdelab_certs::KeyAlgorithm::EcdsaP256)
                .expect("the Squid CA is minted");
        let dir = tempfile::tempdir().expect("Squid CA dir");
        // The folder must be traversable by Squid's user; the key stays private to it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let cert = dir.path().join("squid-ca.pem");
        let key = dir.path().join("squid-ca.key");
        std::fs::write(&cert, authority.certificate_pem()).unwrap();
        std::fs::write(&key, authority.key_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        give_to_squid_user(&key);
        Self {
            name: name.to_owned(),
            cert,
            key,
            _dir: dir,
        }
    }
}

/// When running as root, hands `path` (recursively) to Squid's unprivileged user, which reads
/// keys and runs the certificate helper after dropping privileges.
fn give_to_squid_user(path: &Path) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let status = Command::new("chown")
            .args(["-R", "proxy:proxy"])
            .arg(path)
            .status()
            .expect("chown runs");
        assert!(
            status.success(),
            "chown proxy:proxy {} failed",
            path.display()
        );
    }
}

/// What a Squid does with the TLS inside CONNECT tunnels.
pub enum SquidTls<'a> {
    /// Tunnels the bytes untouched.
    Plain,
    /// `ssl_bump`: peeks at the SNI, splices the names in `splice` (Squid `ssl::server_name`
    /// entries: exact names or `.suffix`), bumps everything else with a certificate minted by
    /// `ca`, and trusts `upstream_ca` (PEM bundle) for its own connections to the servers.
    Bump {
        /// The inspection CA.
        ca: &'a SquidCa,
        /// The roots Squid trusts upstream (the lab's trust bundle).
        upstream_ca: &'a Path,
        /// Names spliced instead of bumped.
        splice: Vec<String>,
    },
}

/// How to start a [`Squid`] with [`Squid::start_with`].
pub struct SquidOptions<'a> {
    /// `/etc/hosts`-style file Squid resolves names with (the lab's).
    pub hosts_file: &'a Path,
    /// Plain CONNECT or TLS inspection.
    pub tls: SquidTls<'a>,
    /// When set, only these destinations (Squid `dstdomain` entries) are allowed; anything
    /// else is refused with 403, as a proxy that must not be an open relay does.
    pub allow_domains: Option<Vec<String>>,
    /// More squid.conf lines (e.g. `read_timeout 1 seconds`).
    pub extra_config: &'a str,
}

impl Squid {
    /// Starts `squid -N` configured by `options` and waits until it accepts connections.
    pub fn start_with(options: &SquidOptions<'_>) -> Self {
        let dir = tempfile::tempdir().expect("squid dir");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = free_port();
        let d = dir.path().display();
        let mut port_options = String::new();
        let mut tls_config = String::new();
        if let SquidTls::Bump {
            ca,
            upstream_ca,
            splice,
        } = &options.tls
        {
            // The certificate helper's database must exist, and belong to Squid's user.
            let db = dir.path().join("ssl_db");
            let out = tool("/usr/lib/squid/security_file_certgen", "squid-openssl")
                .arg("-c")
                .arg("-s")
                .arg(&db)
                .args(["-M", "4MB"])
                .output()
                .expect("security_file_certgen runs");
            assert!(
                out.status.success(),
                "security_file_certgen -c failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            give_to_squid_user(&db);
            port_options = format!(
                " ssl-bump tls-cert={} tls-key={} generate-host-certificates=on dynamic_cert_mem_cache_size=4MB",
                ca.cert.display(),
                ca.key.display()
            );
            tls_config = format!(
                "sslcrtd_program /usr/lib/squid/security_file_certgen -s {d}/ssl_db -M 4MB\n\
                 sslcrtd_children 4 startup=1 idle=1\n\
                 tls_outgoing_options cafile={}\n\
                 acl step1 at_step SslBump1\n\
                 ssl_bump peek step1\n",
                upstream_ca.display()
            );
            if !splice.is_empty() {
                let list = dir.path().join("splice.txt");
                std::fs::write(&list, splice.join("\n") + "\n").unwrap();
                tls_config.push_str(&format!(
                    "acl mde_tls ssl::server_name \"{}\"\nssl_bump splice mde_tls\n",
                    list.display()
                ));
            }
            tls_config.push_str("ssl_bump bump all\n");
        }
        let mut allow = String::new();
        if let Some(domains) = &options.allow_domains {
            let list = dir.path().join("allow.txt");
            std::fs::write(&list, domains.join("\n") + "\n").unwrap();
            allow = format!(
                "acl allowed_dst dstdomain \"{}\"\nhttp_access deny !allowed_dst\n",
                list.display()
            );
        }
        let config = format!(
            "http_port 127.0.0.1:{port}{port_options}\n\
             hosts_file {hosts}\n\
             acl SSL_ports port 443\n\
             acl Safe_ports port 80 443\n\
             http_access deny !Safe_ports\n\
             http_access deny CONNECT !SSL_ports\n\
             {allow}\
             http_access allow localhost\n\
             http_access deny all\n\
             {tls_config}\
             cache deny all\n\
             access_log stdio:{d}/access.log\n\
             cache_log {d}/cache.log\n\
             pid_filename {d}/squid.pid\n\
             coredump_dir {d}\n\
             shutdown_lifetime 0 seconds\n\
             {extra}\n",
            hosts = options.hosts_file.display(),
            extra = options.extra_config,
        );
        let conf = dir.path().join("squid.conf");
        std::fs::write(&conf, config).unwrap();
        let child = tool("squid", "squid-openssl")
            .arg("-N")
            .arg("-f")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("squid starts");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut squid = Self { child, addr, dir };
        squid.wait_ready();
        squid
    }
}

/// Squid `dstdomain`/`ssl::server_name` entries for host patterns (`*.suffix` → `.suffix`),
/// leaving out exact names a `.suffix` already covers (Squid refuses such overlaps).
pub fn squid_domains(patterns: &[String]) -> Vec<String> {
    let suffixes: Vec<&str> = patterns
        .iter()
        .filter_map(|p| p.strip_prefix("*."))
        .collect();
    let mut out: Vec<String> = patterns
        .iter()
        .filter_map(|p| match p.strip_prefix("*.") {
            Some(suffix) => {
                // A suffix inside another suffix is an overlap too.
                let covered = suffixes
                    .iter()
                    .any(|s| *s != suffix && suffix.ends_with(&format!(".{s}")));
                (!covered).then(|| format!(".{suffix}"))
            }
            None => {
                let covered = suffixes
                    .iter()
                    .any(|s| p == s || p.ends_with(&format!(".{s}")));
                (!covered).then(|| p.clone())
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Reads a JUnit XML report with junitparser (PyPI; `.ci/run` installs it), a real consumer of
/// JUnit: `(suites, test cases, cases not passed)`. Fails the test if it refuses the XML.
pub fn junit_counts(xml: &[u8]) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let check = r#"
import sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
suites = list(xml)
cases = [case for suite in suites for case in suite]
failed = [case for case in cases if not case.is_passed]
print(len(suites), len(cases), len(failed))
"#;
    let parsed = tool("python3", "python3")
        .arg("-c")
        .arg(check)
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        parsed.status.success(),
        "junitparser refused the report: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let counts: Vec<usize> = String::from_utf8_lossy(&parsed.stdout)
        .split_whitespace()
        .map(|n| n.parse().expect("a count"))
        .collect();
    assert_eq!(counts.len(), 3, "junitparser output: {counts:?}");
    (counts[0], counts[1], counts[2])
}
