//! Support for mdelab's end-to-end tests: start a lab in-process, run the `mdelab` binary as a
//! process and wait for it to be ready, and call real peers (curl, dig, squid).
//!
//! Nothing here sleeps to synchronise: a lab is ready when `Lab::start` returns, and an
//! `mdelab up` process is ready when it prints its summary (the manifest is written before).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mdelab::{Lab, LabOptions, Manifest};

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
        "`{name}` is not installed: `apt-get install {package}` (.ci/run installs it)"
    );
    Command::new(name)
}

/// A running `mdelab up` process; killed on drop if still running.
pub struct UpProcess {
    child: Child,
    /// The manifest it wrote.
    pub manifest: Manifest,
    /// Where it wrote it.
    pub manifest_path: PathBuf,
    /// Its stdout up to and including the ready summary.
    pub summary: String,
}

impl UpProcess {
    /// Starts `mdelab up --manifest <dir>/manifest.json [extra…]` and waits until it is ready.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        let manifest_path = dir.join("manifest.json");
        let mut child = Command::new(mdelab_bin())
            .arg("up")
            .arg("--manifest")
            .arg(&manifest_path)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mdelab up starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut summary = String::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read mdelab up output");
            assert!(
                n > 0,
                "mdelab up exited before it was ready; output so far:\n{summary}"
            );
            summary.push_str(&line);
            if line.starts_with("Stop with") {
                break;
            }
        }
        // Keep draining stdout in the background so the child never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let manifest =
            Manifest::read(&manifest_path).expect("manifest written before the ready line");
        Self {
            child,
            manifest,
            manifest_path,
            summary,
        }
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
    /// Starts `squid -N` with a minimal config and waits until it accepts connections.
    pub fn start(hosts_file: &Path, extra_config: &str) -> Self {
        let dir = tempfile::tempdir().expect("squid dir");
        // Squid drops root privileges to its own user, which must be able to write its logs.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = free_port();
        let d = dir.path().display();
        let config = format!(
            "http_port 127.0.0.1:{port}\n\
             hosts_file {hosts}\n\
             acl SSL_ports port 443\n\
             acl Safe_ports port 80 443\n\
             http_access deny !Safe_ports\n\
             http_access deny CONNECT !SSL_ports\n\
             http_access allow localhost\n\
             http_access deny all\n\
             cache deny all\n\
             access_log stdio:{d}/access.log\n\
             cache_log {d}/cache.log\n\
             pid_filename {d}/squid.pid\n\
             coredump_dir {d}\n\
             shutdown_lifetime 0 seconds\n\
             {extra_config}\n",
            hosts = hosts_file.display(),
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
