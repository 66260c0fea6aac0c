//! A minimal stub resolver, for callers that must resolve through a given DNS server (this one)
//! rather than through the operating system's resolver configuration.
//!
//! It asks for A and AAAA over UDP, follows no CNAMEs and does not retry over TCP: enough for the
//! flat answers of [`crate::spawn`], and its errors tell "no such name" from "refused" from "no
//! answer" so a caller can report which.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

use crate::error::Error;
use crate::handler::rcode_name;

/// The largest UDP response accepted; answers larger than 512 bytes need EDNS, which is not
/// sent, so this is ample.
const MAX_DATAGRAM: usize = 4096;

/// Resolves `name` through the DNS server at `server`: the addresses of its A answers, then
/// those of its AAAA answers.
///
/// Both queries are sent at once over UDP and must both be answered within `timeout`. An error
/// response code to either query fails the whole resolution with the matching variant
/// ([`Error::NxDomain`], [`Error::Refused`], [`Error::ServFail`], [`Error::Rcode`]); no answer in
/// time is [`Error::Timeout`]. A name with neither record type resolves to an empty list.
pub async fn resolve(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<Vec<IpAddr>, Error> {
    let fqdn = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_ascii(&fqdn).map_err(|source| Error::InvalidName {
        name: name.to_owned(),
        source,
    })?;

    match tokio::time::timeout(timeout, exchange(server, name, qname)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Error::Timeout {
            server,
            name: name.to_owned(),
            timeout,
        }),
    }
}

/// One query in flight.
struct Pending {
    message: Message,
    /// Its addresses, once answered.
    answer: Option<Vec<IpAddr>>,
}

async fn exchange(server: SocketAddr, name: &str, qname: Name) -> Result<Vec<IpAddr>, Error> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket_error = |source| Error::ClientSocket { server, source };
    let socket = UdpSocket::bind(local).await.map_err(socket_error)?;
    // Connecting makes the kernel discard datagrams from anyone but the server.
    socket.connect(server).await.map_err(socket_error)?;

    let exchange_error = |source| Error::Exchange {
        server,
        name: name.to_owned(),
        source,
    };
    let mut pending = Vec::with_capacity(2);
    // A random id per exchange (from `Message::query`), distinct per query to tell the two
    // responses apart.
    let mut id = Message::query().metadata.id;
    for qtype in [RecordType::A, RecordType::AAAA] {
        let mut message = Message::query();
        message.metadata.id = id;
        id = id.wrapping_add(1);
        // Set like any stub resolver, so the client also works against a recursive server.
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(qname.clone(), qtype));
        let bytes = message.to_vec().map_err(|source| Error::Encode {
            name: name.to_owned(),
            source,
        })?;
        socket.send(&bytes).await.map_err(exchange_error)?;
        pending.push(Pending {
            message,
            answer: None,
        });
    }

    let mut buffer = vec![0; MAX_DATAGRAM];
    while pending.iter().any(|query| query.answer.is_none()) {
        let len = socket.recv(&mut buffer).await.map_err(exchange_error)?;
        let response = Message::from_vec(&buffer[..len]).map_err(|source| Error::Decode {
            server,
            name: name.to_owned(),
            source,
        })?;
        // A late answer to an earlier exchange on a reused port would not match; skip it.
        let Some(query) = pending
            .iter_mut()
            .find(|query| query.answer.is_none() && answers(&query.message, &response))
        else {
            continue;
        };
        query.answer = Some(addresses(server, name, &response)?);
    }
    Ok(pending
        .into_iter()
        .flat_map(|query| query.answer.unwrap_or_default())
        .collect())
}

/// Whether `response` answers `query`: same id, a response, and the same question.
fn answers(query: &Message, response: &Message) -> bool {
    response.metadata.message_type == MessageType::Response
        && response.metadata.id == query.metadata.id
        && response.queries.len() == 1
        && query.queries.first().is_some_and(|asked| {
            let answered = &response.queries[0];
            asked.query_type() == answered.query_type() && asked.name() == answered.name()
        })
}

/// The addresses in `response`, or the error its response code stands for.
fn addresses(server: SocketAddr, name: &str, response: &Message) -> Result<Vec<IpAddr>, Error> {
    let name = name.to_owned();
    match response.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Err(Error::NxDomain { server, name }),
        ResponseCode::Refused => return Err(Error::Refused { server, name }),
        ResponseCode::ServFail => return Err(Error::ServFail { server, name }),
        other => {
            return Err(Error::Rcode {
                server,
                name,
                rcode: rcode_name(other),
            });
        }
    }
    if response.metadata.truncation {
        return Err(Error::Truncated { server, name });
    }
    Ok(response
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect())
}
