//! `mdelab up --keylog`: a loopback capture of the lab's traffic, taken with a real `tshark`,
//! decrypts with the key log (the direct exchange, both legs of the inspected one, and the
//! minted certificate a pinning client refused) and shows nothing of it without; and
//! `SSLKEYLOGFILE` is honoured when `--keylog` is not given.

use std::io::{BufRead as _, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mdelab::Manifest;
use mdelab_tests::{UpProcess, curl_status, read_until, tool};

/// The host every request names (a pinned CnC gateway).
const HOST: &str = "winatp-gw-cus.microsoft.com";

/// A running `tshark -i lo` writing a pcapng file; killed on drop.
struct Capture {
    child: Child,
    file: PathBuf,
    /// Bound on loopback: a datagram to itself marks the end of the capture.
    end: UdpSocket,
    /// tshark's packet summaries (`-P`), one line each.
    summaries: mpsc::Receiver<String>,
}

/// A UDP socket on loopback that sends marker datagrams to itself.
fn marker() -> (UdpSocket, u16) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// Whether a tshark summary line is the datagram `port` sent to itself.
fn is_marker(line: &str, port: u16) -> bool {
    line.contains("UDP") && line.contains(&format!(" {port} → {port} "))
}

impl Capture {
    /// Starts capturing the TCP `ports` on loopback and returns once tshark has captured a
    /// marker datagram: its "Capturing on" comes a little before packets are really taken.
    fn start(dir: &Path, ports: &[u16]) -> Self {
        let (start, start_port) = marker();
        let (end, end_port) = marker();
        let mut filter: Vec<String> = ports.iter().map(|p| format!("tcp port {p}")).collect();
        filter.push(format!("udp port {start_port} or udp port {end_port}"));
        let file = dir.join("capture.pcapng");
        let mut child = tool("tshark", "tshark")
            .env_remove("SSLKEYLOGFILE")
            .args(["-i", "lo", "-f", &filter.join(" or "), "-l", "-P", "-w"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark starts");
        // Capturing needs root or CAP_NET_RAW; without, tshark says so and exits.
        read_until(child.stderr.take().unwrap(), "tshark", |line| {
            line.contains("Capturing on")
        });
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, summaries) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let capture = Self {
            child,
            file,
            end,
            summaries,
        };
        // Resend the start marker until one is captured (packets are captured in order, so
        // everything sent after that is in the file too); at most 30 s in all.
        let to_self = start.local_addr().unwrap();
        let mut captured = false;
        for _ in 0..150 {
            start.send_to(b"start", to_self).unwrap();
            match capture.summaries.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if is_marker(&line, start_port) => {
                    captured = true;
                    break;
                }
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        assert!(captured, "tshark captured no start marker within 30 s");
        capture
    }

    /// Sends the end marker, waits until tshark has captured it (so every packet before it is
    /// in the file), stops tshark with SIGINT and returns the file.
    fn stop(mut self) -> PathBuf {
        let to_self = self.end.local_addr().unwrap();
        self.end.send_to(b"end", to_self).unwrap();
        loop {
            let line = self
                .summaries
                .recv_timeout(Duration::from_secs(30))
                .expect("tshark captures the end marker within 30 s");
            if is_marker(&line, to_self.port()) {
                break;
            }
        }
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tshark stopped with {status}");
        self.file.clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What Wireshark shows of `capture`, with or without `keylog`: request paths (HTTP/1.1 and
/// HTTP/2) and the names in certificates, one field set per line.
fn dissect(capture: &Path, keylog: Option<&Path>) -> String {
    let mut tshark = tool("tshark", "tshark");
    tshark.arg("-r").arg(capture);
    if let Some(keylog) = keylog {
        tshark
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keylog.display()));
    }
    let out = tshark
        .args([
            "-Y",
            "http.request or http2.headers.path or tls.handshake.type == 11",
            "-T",
            "fields",
            "-e",
            "http.request.uri",
            "-e",
            "http2.headers.path",
            "-e",
            "x509sat.uTF8String",
        ])
        .output()
        .expect("tshark reads the capture");
    assert!(
        out.status.success(),
        "tshark -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// curl straight to the mock cloud's HTTPS listener for `path` on [`HOST`], over HTTP/1.1.
fn curl_direct(m: &Manifest, path: &str) -> Output {
    let port = m.https.port();
    curl_status()
        .args(["--http1.1", "--cacert"])
        .arg(&m.trust_bundle)
        .args(["--resolve", &format!("{HOST}:{port}:127.0.0.1")])
        .arg(format!("https://{HOST}:{port}{path}"))
        .output()
        .expect("curl runs")
}

#[test]
fn a_capture_decrypts_with_the_key_log_and_not_without() {
    let dir = tempfile::tempdir().unwrap();
    let keylog = dir.path().join("keys.log");
    let up = UpProcess::start(dir.path(), &["--keylog", keylog.to_str().unwrap()]);
    assert!(
        up.summary.contains("holds TLS session secrets"),
        "{}",
        up.summary
    );
    let m = up.manifest.clone();
    let inspect = format!("http://{}", m.inspect_proxy.unwrap());
    let capture = Capture::start(
        dir.path(),
        &[m.https.port(), m.inspect_proxy.unwrap().port()],
    );

    // Direct, over HTTP/1.1.
    let direct = curl_direct(&m, "/keylog-direct");
    // An unknown path: the mock cloud's own 404 says the request got there.
    assert_eq!(String::from_utf8_lossy(&direct.stdout), "404", "{direct:?}");
    // Inspected (the client trusts the inspection CA), over HTTP/2 on both legs.
    let inspected = curl_status()
        .arg("--cacert")
        .arg(&m.inspection_ca)
        .args(["-x", &inspect])
        .arg(format!("https://{HOST}/keylog-inspected"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inspected.stdout),
        "404",
        "{inspected:?}"
    );
    // Pinned: the client refuses the minted certificate and sends no request.
    let pinned = curl_status()
        .arg("--cacert")
        .arg(&m.inspection_ca)
        .args(["--pinnedpubkey", &m.pins.pinned, "-x", &inspect])
        .arg(format!("https://{HOST}/keylog-pinned"))
        .output()
        .unwrap();
    assert_eq!(pinned.status.code(), Some(90), "pin mismatch: {pinned:?}");
    let file = capture.stop();

    let clear = dissect(&file, Some(&keylog));
    assert!(clear.contains("/keylog-direct"), "{clear}");
    assert_eq!(
        clear.matches("/keylog-inspected").count(),
        2,
        "the client's leg and the proxy's own leg: {clear}"
    );
    assert!(!clear.contains("keylog-pinned"), "never sent: {clear}");
    assert!(
        clear.contains("MDE Lab TLS Inspection CA"),
        "the minted certificates, the pinned client's refused one among them: {clear}"
    );
    assert!(
        clear.contains("MDE Lab Secure Server CA 2011"),
        "the mock cloud's own certificates: {clear}"
    );

    let opaque = dissect(&file, None);
    for hidden in ["/keylog-", "MDE Lab"] {
        assert!(!opaque.contains(hidden), "{hidden} without keys: {opaque}");
    }
    assert!(up.terminate().success());
}

#[test]
fn sslkeylogfile_is_honoured_without_keylog_in_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let keylog = dir.path().join("from-env.log");
    let up = UpProcess::start_with_env(dir.path(), &[], &[("SSLKEYLOGFILE", keylog.as_os_str())]);
    assert!(up.summary.contains("from SSLKEYLOGFILE"), "{}", up.summary);
    let out = curl_direct(&up.manifest, "/test");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    // The server side logs its secrets before it answers, so they are there now.
    let text = std::fs::read_to_string(&keylog).unwrap();
    assert!(text.contains("CLIENT_TRAFFIC_SECRET_0 "), "{text}");
    assert!(text.contains("SERVER_TRAFFIC_SECRET_0 "), "{text}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&keylog).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(up.terminate().success());
}
