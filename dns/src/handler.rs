//! The request handler: turns one parsed DNS request into one answer (or none) from the name
//! table, the served zones and the faults, and journals it.
//!
//! hickory-server's `Catalog` and in-memory zone handlers are not used: they need a zone file's
//! worth of records per zone, while the lab only has a flat name table with wildcards, and their
//! answers could not be faulted or journaled.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::{debug, warn};

use crate::error::Error;
use crate::fault::{Fault, Faults};
use crate::journal::{Journal, QueryRecord};
use crate::table::{NameTable, is_in_zone, normalize};

/// The journal's spelling of a response code: the mnemonic used by dig and the RFCs.
pub(crate) fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::YXDomain => "YXDOMAIN".to_owned(),
        ResponseCode::YXRRSet => "YXRRSET".to_owned(),
        ResponseCode::NXRRSet => "NXRRSET".to_owned(),
        ResponseCode::NotAuth => "NOTAUTH".to_owned(),
        ResponseCode::NotZone => "NOTZONE".to_owned(),
        // Both are 16 and decode as BADSIG; outside TSIG, 16 means BADVERS.
        ResponseCode::BADVERS | ResponseCode::BADSIG => "BADVERS".to_owned(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// A served zone with its synthetic apex records, built once so that answering cannot fail.
#[derive(Debug)]
pub(crate) struct Zone {
    /// Normalized; empty for the root.
    name: String,
    soa: Record,
    ns: Record,
}

impl Zone {
    pub(crate) fn new(zone: &str, ttl: u32) -> Result<Self, Error> {
        let name = normalize(zone);
        let invalid = |source| Error::InvalidZone {
            zone: zone.to_owned(),
            source,
        };
        let fqdn = |label: &str| {
            let full = match (label.is_empty(), name.is_empty()) {
                (true, _) => format!("{name}."),
                (false, true) => format!("{label}."),
                (false, false) => format!("{label}.{name}."),
            };
            Name::from_ascii(full).map_err(invalid)
        };
        let apex = fqdn("")?;
        let ns_name = fqdn("ns")?;
        let soa = SOA::new(
            ns_name.clone(),
            fqdn("hostmaster")?,
            1,
            3600,
            600,
            86400,
            // The negative-caching TTL: as short as positive answers so faults switched off are
            // not hidden by a resolver's cache.
            ttl,
        );
        Ok(Self {
            name,
            soa: Record::from_rdata(apex.clone(), ttl, RData::SOA(soa)),
            ns: Record::from_rdata(apex, ttl, RData::NS(NS(ns_name))),
        })
    }
}

/// The server's [`RequestHandler`].
pub(crate) struct Handler {
    table: NameTable,
    /// Longest first, so the first containing zone is the most specific.
    zones: Vec<Zone>,
    ttl: u32,
    journal: Journal,
    faults: Faults,
}

/// What to answer to one request.
struct Decision<'z> {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    /// The zone whose SOA goes into the authority section (negative answers).
    soa_of: Option<&'z Zone>,
}

impl<'z> Decision<'z> {
    fn error(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            soa_of: None,
        }
    }

    /// An authoritative answer; no answer records means NODATA, which carries the SOA.
    fn answer(zone: &'z Zone, answers: Vec<Record>) -> Self {
        let soa_of = answers.is_empty().then_some(zone);
        Self {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            soa_of,
        }
    }

    fn nxdomain(zone: Option<&'z Zone>) -> Self {
        Self {
            rcode: ResponseCode::NXDomain,
            authoritative: zone.is_some(),
            answers: Vec::new(),
            soa_of: zone,
        }
    }
}

impl Handler {
    pub(crate) fn new(
        table: NameTable,
        mut zones: Vec<Zone>,
        ttl: u32,
        journal: Journal,
        faults: Faults,
    ) -> Self {
        zones.sort_by_key(|zone| std::cmp::Reverse(zone.name.len()));
        Self {
            table,
            zones,
            ttl,
            journal,
            faults,
        }
    }

    async fn respond<R: ResponseHandler>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let queries = request.queries.queries();
        let (name, qtype) = match queries.first() {
            Some(query) => (
                normalize(&query.name().to_ascii()),
                query.query_type().to_string(),
            ),
            None => (String::new(), String::new()),
        };
        let protocol = match request.protocol() {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            _ => "other",
        };

        // Echo EDNS when the client used it, as RFC 6891 asks; it also lets UDP answers exceed
        // 512 bytes when the client allows.
        let response_edns = request.edns.as_ref().map(|request_edns| {
            let mut edns = Edns::new();
            edns.set_max_payload(request_edns.max_payload());
            edns.set_version(0);
            edns
        });

        let Some(decision) = self.decide(request, &name).await else {
            debug!(%name, %qtype, peer = %request.src(), "dropping query (fault)");
            self.journal.record(QueryRecord {
                name,
                qtype,
                protocol: protocol.to_owned(),
                peer: request.src(),
                rcode: "DROPPED".to_owned(),
                answers: Vec::new(),
            });
            return failure_info(&request.metadata);
        };

        let answered: Vec<IpAddr> = decision
            .answers
            .iter()
            .filter_map(|record| record.data.ip_addr())
            .collect();
        // Journal before sending: once the client has its answer, the record must be visible,
        // or a test reading the journal right after a query would race the server.
        self.journal.record(QueryRecord {
            name,
            qtype,
            protocol: protocol.to_owned(),
            peer: request.src(),
            rcode: rcode_name(decision.rcode),
            answers: answered,
        });

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = decision.rcode;
        metadata.authoritative = decision.authoritative;
        // This server never recurses and must say so, whatever the client asked.
        metadata.recursion_available = false;

        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }
        let response = builder.build(
            metadata,
            decision.answers.iter(),
            std::iter::empty(),
            decision.soa_of.map(|zone| &zone.soa),
            std::iter::empty(),
        );
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                warn!(%error, peer = %request.src(), "failed to send DNS response");
                failure_info(&request.metadata)
            }
        }
    }

    /// What to answer, or `None` to answer nothing at all.
    async fn decide(&self, request: &Request, name: &str) -> Option<Decision<'_>> {
        let metadata = &request.metadata;
        if metadata.op_code != OpCode::Query {
            return Some(Decision::error(ResponseCode::NotImp));
        }
        // hickory-server only passes queries on (it drops responses itself); the standard allows
        // exactly one question per query, and nobody sends more.
        let [query] = request.queries.queries() else {
            return Some(Decision::error(ResponseCode::FormErr));
        };
        if request.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
            return Some(Decision::error(ResponseCode::BADVERS));
        }

        // Faults come first so they also apply to names outside the zones.
        match self.faults.lookup_normalized(name) {
            Some(Fault::Drop) => return None,
            Some(Fault::ServFail) => return Some(Decision::error(ResponseCode::ServFail)),
            Some(Fault::NxDomain) => return Some(Decision::nxdomain(self.zone_of(name))),
            Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
            None => {}
        }

        if query.query_class() != DNSClass::IN {
            // The zones exist in class IN only; for any other class this server has no data to
            // be authoritative for.
            return Some(Decision::error(ResponseCode::Refused));
        }
        let Some(zone) = self.zone_of(name) else {
            return Some(Decision::error(ResponseCode::Refused));
        };

        let qtype = query.query_type();
        let owner = query.original().name();
        let mut answers = Vec::new();
        if let Some(addrs) = self.table.lookup_normalized(name) {
            answers.extend(
                addrs
                    .iter()
                    .filter_map(|addr| self.address_record(owner, *addr, qtype)),
            );
        }
        if name == zone.name {
            if matches!(qtype, RecordType::SOA | RecordType::ANY) {
                answers.push(zone.soa.clone());
            }
            if matches!(qtype, RecordType::NS | RecordType::ANY) {
                answers.push(zone.ns.clone());
            }
        } else if self.table.lookup_normalized(name).is_none() && !self.table.has_descendant(name) {
            // Names that have entries below them (including a wildcard's suffix) exist as empty
            // non-terminals and get NODATA: answering NXDOMAIN for them would tell resolvers
            // (RFC 8020) that nothing below exists either.
            return Some(Decision::nxdomain(Some(zone)));
        }
        Some(Decision::answer(zone, answers))
    }

    /// The A or AAAA record for `addr` when it fits `qtype`.
    fn address_record(&self, owner: &Name, addr: IpAddr, qtype: RecordType) -> Option<Record> {
        let data = match (addr, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => RData::A(A(v4)),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(v6)),
            _ => return None,
        };
        Some(Record::from_rdata(owner.clone(), self.ttl, data))
    }

    /// The most specific served zone containing `name`.
    fn zone_of(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|zone| is_in_zone(name, &zone.name))
    }
}

/// The value returned when nothing (or nothing successfully) was sent; hickory-server ignores
/// it, but the trait requires one.
fn failure_info(request: &Metadata) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

// Written out by hand because the trait is declared with `async_trait`, which this workspace
// does not depend on; this is exactly the signature that macro generates.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}
