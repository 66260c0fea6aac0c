//! The device's side of WPAD: fetching `wpad.dat` and evaluating the PAC file it gets.
//!
//! The lab's WPAD server (in the harness) answers one constant `FindProxyForURL`; the device
//! fetches it over plain HTTP from its own network (not behind the gateway) and takes the first
//! directive: a proxy address, or direct.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::Network;
use crate::error::Error;

/// The largest PAC file (response included) the device reads.
pub const MAX_PAC: usize = 16 * 1024;

/// The device fetches `http://wpad/wpad.dat` from the WPAD server at `server` and evaluates
/// it: `Some(proxy)`, or `None` for DIRECT.
pub async fn fetch(server: SocketAddr, network: &Network) -> Result<Option<SocketAddr>, Error> {
    let wpad = |detail: String| Error::Wpad { detail };
    let body = tokio::time::timeout(network.step_timeout.max(Duration::from_secs(2)), async {
        let mut stream = TcpStream::connect(server)
            .await
            .map_err(|e| wpad(e.to_string()))?;
        stream
            .write_all(b"GET /wpad.dat HTTP/1.1\r\nHost: wpad\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| wpad(e.to_string()))?;
        let mut response = Vec::new();
        (&mut stream)
            .take(MAX_PAC as u64)
            .read_to_end(&mut response)
            .await
            .map_err(|e| wpad(e.to_string()))?;
        Ok::<_, Error>(String::from_utf8_lossy(&response).into_owned())
    })
    .await
    .map_err(|_| wpad("the WPAD server did not answer in time".to_owned()))??;
    parse(&body)
}

/// Evaluates a PAC file of the one shape the lab serves: `return "<directives>";`. The first
/// directive wins: `Some(addr)` for `PROXY addr`, `None` for `DIRECT`.
pub fn parse(text: &str) -> Result<Option<SocketAddr>, Error> {
    let pac = |detail: &str| Error::Pac {
        detail: detail.to_owned(),
    };
    let start = text
        .find("return \"")
        .ok_or_else(|| pac("the PAC file has no constant return"))?
        + "return \"".len();
    let end = text[start..]
        .find('"')
        .ok_or_else(|| pac("the PAC file's return is not terminated"))?;
    let first = text[start..start + end]
        .split(';')
        .map(str::trim)
        .find(|d| !d.is_empty())
        .ok_or_else(|| pac("the PAC file returns nothing"))?;
    let mut words = first.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kw), None) if kw.eq_ignore_ascii_case("DIRECT") => Ok(None),
        (Some(kw), Some(addr)) if kw.eq_ignore_ascii_case("PROXY") => addr
            .parse()
            .map(Some)
            .map_err(|_| pac(&format!("the PAC file names {addr:?}, not an ip:port"))),
        _ => Err(pac(&format!("unsupported PAC directive {first:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pac_answers_parse() {
        let pac = "function FindProxyForURL(url, host) {\r\n  return \"PROXY 127.0.0.1:3128; DIRECT\";\r\n}";
        assert_eq!(parse(pac).unwrap(), Some("127.0.0.1:3128".parse().unwrap()));
        assert_eq!(parse("return \"DIRECT\";").unwrap(), None);
        assert!(parse("return \"SOCKS 1.2.3.4:1080\";").is_err());
        assert!(parse("nothing here").is_err());
    }

    #[test]
    fn pac_errors_name_what_is_wrong() {
        let message = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            message("return \"PROXY prox01\";"),
            "the PAC file names \"prox01\", not an ip:port"
        );
        assert_eq!(message("return \" ; \";"), "the PAC file returns nothing");
        assert_eq!(
            message("return \"DIRECT"),
            "the PAC file's return is not terminated"
        );
    }
}
