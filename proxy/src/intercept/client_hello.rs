//! Reading a tunnel's first bytes to decide what it carries.
//!
//! The bytes are fed to a rustls [`Acceptor`] as they arrive and also kept, so that the tunnel
//! can still be spliced (the kept bytes replayed to the destination) after the proxy has seen
//! the ClientHello, or inspected (the [`Accepted`] handed to the handshake, which already holds
//! them).

use std::io;

use rustls::server::{Accepted, Acceptor};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::net::TcpStream;

/// The largest ClientHello accepted: a handshake message can be up to 64 KiB plus framing.
const MAX_HELLO_BYTES: usize = 64 * 1024 + 1024;

/// The TLS record type of a handshake message, the first byte of every ClientHello.
const TLS_HANDSHAKE: u8 = 0x16;

/// What the tunnel's first bytes were.
pub(crate) enum Peeked {
    /// The client closed the tunnel without sending anything.
    Closed,
    /// Not TLS, or a protocol in which the server speaks first: these bytes (possibly none) are
    /// to be replayed to the destination, then the tunnel spliced.
    Raw(Vec<u8>),
    /// A complete ClientHello.
    Hello {
        /// The parsed hello, ready for a handshake.
        accepted: Box<Accepted>,
        /// Every byte read, for replaying when the tunnel is spliced.
        bytes: Vec<u8>,
    },
    /// A TLS record that is not a usable ClientHello.
    Malformed(String),
}

/// Reads from `client` until the first bytes are classified; watches `upstream` too, so that a
/// protocol in which the server speaks first is not stalled waiting for the client.
pub(crate) async fn read_client_hello<C>(client: &mut C, upstream: &TcpStream) -> io::Result<Peeked>
where
    C: AsyncRead + Unpin,
{
    let mut acceptor = Acceptor::default();
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = if bytes.is_empty() {
            let mut probe = [0u8; 1];
            tokio::select! {
                n = client.read(&mut chunk) => n?,
                _ = upstream.peek(&mut probe) => return Ok(Peeked::Raw(Vec::new())),
            }
        } else {
            client.read(&mut chunk).await?
        };
        if n == 0 {
            return Ok(if bytes.is_empty() {
                Peeked::Closed
            } else {
                Peeked::Malformed(format!(
                    "client closed after {} bytes of a ClientHello",
                    bytes.len()
                ))
            });
        }
        let fresh = &chunk[..n];
        if bytes.is_empty() && fresh[0] != TLS_HANDSHAKE {
            return Ok(Peeked::Raw(fresh.to_vec()));
        }
        bytes.extend_from_slice(fresh);
        let mut rest = fresh;
        while !rest.is_empty() {
            if let Err(e) = acceptor.read_tls(&mut rest) {
                return Ok(Peeked::Malformed(format!("unreadable TLS records: {e}")));
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                return Ok(Peeked::Hello {
                    accepted: Box::new(accepted),
                    bytes,
                });
            }
            Ok(None) if bytes.len() > MAX_HELLO_BYTES => {
                return Ok(Peeked::Malformed(format!(
                    "no complete ClientHello in {} bytes",
                    bytes.len()
                )));
            }
            Ok(None) => {}
            Err((e, _alert)) => return Ok(Peeked::Malformed(format!("bad ClientHello: {e}"))),
        }
    }
}
