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
