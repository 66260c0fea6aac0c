//! The lab's TLS key log: the session secrets of the lab's own TLS endpoints (the mock cloud's
//! HTTPS listener, both sides of the intercepting proxies), appended in the NSS key-log format
//! (`LABEL <client random> <secret>`, hex) that Wireshark reads to decrypt a capture.
//!
//! rustls's own `KeyLogFile` only ever reads `SSLKEYLOGFILE`; the lab needs an explicit path
//! (`mdelab up --keylog FILE`), so [`KeyLogFile`] is that writer. It is off unless asked for:
//! every configuration keeps rustls's no-op key log by default.
//!
//! The file holds secrets: it is created 0600, and what is written is capped
//! ([`DEFAULT_MAX_BYTES`]); lines past the cap, or that fail to write, are counted, not written.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result};

/// The most bytes one lab writes to its key log (about 200 000 TLS 1.3 sessions).
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// A [`rustls::KeyLog`] that appends NSS key-log lines to one file.
#[derive(Debug)]
pub struct KeyLogFile {
    path: PathBuf,
    writer: Mutex<Writer>,
}

#[derive(Debug)]
struct Writer {
    file: File,
    /// Bytes this writer may still append.
    remaining: u64,
    /// Lines not written (cap reached or write failed).
    dropped: u64,
}

impl KeyLogFile {
    /// Opens `path` for appending (creating it 0600), capped at [`DEFAULT_MAX_BYTES`].
    pub fn create(path: &Path) -> Result<Self> {
        Self::with_cap(path, DEFAULT_MAX_BYTES)
    }

    /// Opens `path` for appending (creating it 0600); at most `max_bytes` are appended.
    pub fn with_cap(path: &Path, max_bytes: u64) -> Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(path).with_context(|| {
            format!(
                "failed to open the TLS key log {} for appending",
                path.display()
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = file
                .metadata()
                .with_context(|| format!("failed to read {}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the TLS key log already existed and others may read it; it will hold session secrets"
                );
            }
        }
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                file,
                remaining: max_bytes,
                dropped: 0,
            }),
        })
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many lines were not written (cap reached or write failed).
    pub fn dropped(&self) -> u64 {
        self.writer.lock().map_or(0, |w| w.dropped)
    }
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format!(
            "{label} {} {}\n",
            hex::encode(client_random),
            hex::encode(secret)
        );
        let Ok(mut writer) = self.writer.lock() else {
            return;
        };
        let len = line.len() as u64;
        if len > writer.remaining {
            if writer.dropped == 0 {
                tracing::warn!(path = %self.path.display(), "the TLS key log is full; further secrets are not written");
            }
            writer.dropped += 1;
            return;
        }
        // One write of a whole line to an O_APPEND file: a line is never torn, and it is on
        // disk (for a Wireshark reading along) before the handshake goes on.
        match writer.file.write_all(line.as_bytes()) {
            Ok(()) => writer.remaining -= len,
            Err(err) => {
                if writer.dropped == 0 {
                    tracing::warn!(path = %self.path.display(), error = %err, "failed to write the TLS key log");
                }
                writer.dropped += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rustls::KeyLog as _;

    use super::KeyLogFile;

    /// A fresh, empty folder for one test, removed when dropped.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("mdelab-keylog-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_nss_lines_to_a_private_file_and_counts_what_the_cap_refuses() {
        let dir = TempDir::new("cap");
        let path = dir.path().join("keys.log");
        let log = KeyLogFile::with_cap(&path, 100).unwrap();
        log.log("CLIENT_TRAFFIC_SECRET_0", &[0xab; 4], &[0x01, 0x02]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "CLIENT_TRAFFIC_SECRET_0 abababab 0102\n");
        log.log("SERVER_TRAFFIC_SECRET_0", &[0; 32], &[0; 48]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "over the cap"
        );
        assert_eq!(log.dropped(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn appends_to_an_existing_file() {
        let dir = TempDir::new("append");
        let path = dir.path().join("keys.log");
        std::fs::write(&path, "# earlier\n").unwrap();
        KeyLogFile::create(&path)
            .unwrap()
            .log("CLIENT_RANDOM", &[1], &[2]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# earlier\nCLIENT_RANDOM 01 02\n"
        );
    }
}
