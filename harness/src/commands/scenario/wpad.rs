//! The lab's WPAD server: a plain HTTP listener answering every request with the profile's PAC
//! file (`FindProxyForURL` returning one constant naming the rig's proxies). The device's side
//! (fetching and evaluating it) is [`mdelab_sensor::pac`].

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use mdelab_sensor::pac::MAX_PAC;
use mdelab_sensor::{self as sensor, Network};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::profile::{LabProxy, PacAnswer, PacDirective};
use super::rig::Deployed;

/// The lab's WPAD server: answers every request with the profile's PAC file.
#[derive(Debug)]
pub(super) struct Wpad {
    addr: SocketAddr,
    pub(super) fetches: Arc<AtomicU64>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Wpad {
    pub(super) async fn start(
        answer: &PacAnswer,
        proxies: &BTreeMap<LabProxy, Deployed>,
        token: &CancellationToken,
    ) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("failed to bind the WPAD server")?;
        let addr = listener
            .local_addr()
            .context("failed to read the WPAD address")?;
        let directives: Vec<String> = answer
            .directives
            .iter()
            .map(|d| match d {
                PacDirective::Proxy(p) => format!("PROXY {}", proxies[p].addr()),
                PacDirective::Direct => "DIRECT".to_owned(),
            })
            .collect();
        let pac = format!(
            "// mdelab WPAD: the lab's proxy auto-configuration\r\n\
             function FindProxyForURL(url, host) {{\r\n  return \"{}\";\r\n}}\r\n",
            directives.join("; ")
        );
        let fetches = Arc::new(AtomicU64::new(0));
        let count = fetches.clone();
        let token = token.clone();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut stream, _)) = accepted else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let pac = pac.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    let read = tokio::time::timeout(Duration::from_secs(5), async {
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_PAC {
                            let n = stream.read(&mut buf).await?;
                            if n == 0 {
                                break;
                            }
                            head.extend_from_slice(&buf[..n]);
                        }
                        Ok::<_, std::io::Error>(())
                    })
                    .await;
                    if !matches!(read, Ok(Ok(()))) {
                        return;
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{pac}",
                        pac.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self {
            addr,
            fetches,
            task,
        })
    }

    /// The device fetches `http://wpad/wpad.dat` (the WPAD server is on the device's own
    /// network, not behind the gateway) and evaluates it: `Some(proxy)` or `None` for DIRECT.
    pub(super) async fn fetch(
        &self,
        network: &Network,
    ) -> Result<Option<SocketAddr>, sensor::Error> {
        sensor::pac::fetch(self.addr, network).await
    }
}
