//! The server end to end, on real loopback sockets: answers, negative answers, flags, TCP, the
//! journal, faults, malformed input and shutdown.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use mdelab_dns::{Config, Error, Fault, NameTable, Running, resolve, spawn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// A bound on waits for answers that should come at once; reaching it fails the test.
const PATIENCE: Duration = Duration::from_secs(5);
/// How long to wait for answers that must not come.
const SHORT: Duration = Duration::from_millis(300);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn table() -> NameTable {
    [
        ("exact.microsoft.com", vec![ip("10.1.0.1")]),
        (
            "dual.microsoft.com",
            vec![ip("10.1.0.2"), ip("2001:db8::2")],
        ),
        ("v6only.microsoft.com", vec![ip("2001:db8::3")]),
        ("*.blob.core.windows.net", vec![ip("10.2.0.1")]),
        ("special.blob.core.windows.net", vec![ip("10.2.0.2")]),
        ("*.core.windows.net", vec![ip("10.2.0.3")]),
    ]
    .into_iter()
    .collect()
}

async fn start(config: Config) -> Running {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn(udp, tcp, config, &CancellationToken::new()).unwrap()
}

async fn start_default() -> Running {
    start(Config::new(table())).await
}

fn question(name: &str, qtype: RecordType) -> Message {
    let mut message = Message::query();
    // Asking for recursion proves the server declines it (RA stays false).
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    message
}

async fn send_udp(server: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buffer = vec![0; 65535];
    let (len, _) = tokio::time::timeout(PATIENCE, socket.recv_from(&mut buffer))
        .await
        .ok()?
        .unwrap();
    Some(Message::from_vec(&buffer[..len]).unwrap())
}

async fn query_udp(server: SocketAddr, message: &Message) -> Message {
    let response = send_udp(server, &message.to_vec().unwrap())
        .await
        .expect("no UDP answer");
    assert_eq!(response.metadata.id, message.metadata.id);
    assert_eq!(response.metadata.message_type, MessageType::Response);
    response
}

async fn write_tcp(stream: &mut TcpStream, message: &Message) {
    let bytes = message.to_vec().unwrap();
    let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
    stream.write_all(&len).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
}

async fn read_tcp(stream: &mut TcpStream) -> Message {
    tokio::time::timeout(PATIENCE, async {
        let mut len = [0; 2];
        stream.read_exact(&mut len).await.unwrap();
        let mut bytes = vec![0; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut bytes).await.unwrap();
        Message::from_vec(&bytes).unwrap()
    })
    .await
    .expect("no TCP answer")
}

fn answer_ips(message: &Message) -> Vec<IpAddr> {
    message
        .answers
        .iter()
        .filter_map(|record| record.data.ip_addr())
        .collect()
}

/// The zone named by the SOA in the authority section, if there is exactly one SOA there.
fn authority_soa_zone(message: &Message) -> Option<String> {
    let soas: Vec<_> = message
        .authorities
        .iter()
        .filter(|record| matches!(record.data, RData::SOA(_)))
        .collect();
    match soas.as_slice() {
        [soa] => Some(soa.name.to_ascii()),
        _ => None,
    }
}

#[tokio::test]
async fn exact_name_gets_its_a_record_authoritatively() {
    let server = start_default().await;
    let response = query_udp(
        server.udp_addr(),
        &question("exact.microsoft.com.", RecordType::A),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    assert_eq!(answer_ips(&response), [ip("10.1.0.1")]);
    assert_eq!(response.answers[0].name.to_ascii(), "exact.microsoft.com.");

    let resolved = resolve(server.udp_addr(), "exact.microsoft.com", PATIENCE)
        .await
        .unwrap();
    assert_eq!(resolved, [ip("10.1.0.1")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn names_match_case_insensitively_and_answers_echo_the_asked_case() {
    let server = start_default().await;
    let response = query_udp(
        server.udp_addr(),
        &question("EXACT.Microsoft.COM.", RecordType::A),
    )
    .await;
    assert_eq!(answer_ips(&response), [ip("10.1.0.1")]);
    assert_eq!(response.answers[0].name.to_ascii(), "EXACT.Microsoft.COM.");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn wildcard_answers_names_below_it_at_any_depth() {
    let server = start_default().await;
    for name in ["foo.blob.core.windows.net", "a.b.blob.core.windows.net"] {
        let resolved = resolve(server.udp_addr(), name, PATIENCE).await.unwrap();
        assert_eq!(resolved, [ip("10.2.0.1")], "{name}");
    }
    // Not `blob.core.windows.net` itself: only the shorter wildcard covers it.
    let resolved = resolve(server.udp_addr(), "blob.core.windows.net", PATIENCE)
        .await
        .unwrap();
    assert_eq!(resolved, [ip("10.2.0.3")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn exact_beats_wildcard_and_longest_wildcard_wins() {
    let server = start_default().await;
    let resolved = resolve(server.udp_addr(), "special.blob.core.windows.net", PATIENCE)
        .await
        .unwrap();
    assert_eq!(resolved, [ip("10.2.0.2")]);
    let resolved = resolve(server.udp_addr(), "x.queue.core.windows.net", PATIENCE)
        .await
        .unwrap();
    assert_eq!(resolved, [ip("10.2.0.3")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn aaaa_answers_ipv6_entries_and_nodata_otherwise() {
    let server = start_default().await;
    let response = query_udp(
        server.udp_addr(),
        &question("v6only.microsoft.com.", RecordType::AAAA),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer_ips(&response), [ip("2001:db8::3")]);

    // A v4-only name asked for AAAA: NODATA, with the zone's SOA for negative caching.
    let response = query_udp(
        server.udp_addr(),
        &question("exact.microsoft.com.", RecordType::AAAA),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    assert!(response.answers.is_empty());
    assert_eq!(
        authority_soa_zone(&response).as_deref(),
        Some("microsoft.com.")
    );

    // And the other way round.
    let response = query_udp(
        server.udp_addr(),
        &question("v6only.microsoft.com.", RecordType::A),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());

    let resolved = resolve(server.udp_addr(), "dual.microsoft.com", PATIENCE)
        .await
        .unwrap();
    assert_eq!(resolved, [ip("10.1.0.2"), ip("2001:db8::2")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_types_for_known_names_are_nodata() {
    let server = start_default().await;
    for qtype in [RecordType::MX, RecordType::TXT, RecordType::CNAME] {
        let response = query_udp(server.udp_addr(), &question("exact.microsoft.com.", qtype)).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NoError,
            "{qtype}"
        );
        assert!(response.answers.is_empty(), "{qtype}");
        assert_eq!(
            authority_soa_zone(&response).as_deref(),
            Some("microsoft.com."),
            "{qtype}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn zone_apex_has_soa_and_ns() {
    let server = start_default().await;
    let response = query_udp(
        server.udp_addr(),
        &question("windows.net.", RecordType::SOA),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    let [soa] = response.answers.as_slice() else {
        panic!("expected one SOA, got {:?}", response.answers);
    };
    let RData::SOA(data) = &soa.data else {
        panic!("expected an SOA, got {soa:?}");
    };
    assert_eq!(soa.name.to_ascii(), "windows.net.");
    assert_eq!(data.mname.to_ascii(), "ns.windows.net.");

    let response = query_udp(server.udp_addr(), &question("windows.net.", RecordType::NS)).await;
    let [ns] = response.answers.as_slice() else {
        panic!("expected one NS, got {:?}", response.answers);
    };
    assert!(matches!(&ns.data, RData::NS(name) if name.0.to_ascii() == "ns.windows.net."));

    // The apex has no address: NODATA, not NXDOMAIN.
    let response = query_udp(server.udp_addr(), &question("windows.net.", RecordType::A)).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.answers.is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_name_inside_a_zone_is_nxdomain() {
    let server = start_default().await;
    let response = query_udp(
        server.udp_addr(),
        &question("nope.microsoft.com.", RecordType::A),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(response.metadata.authoritative);
    assert!(response.answers.is_empty());
    assert_eq!(
        authority_soa_zone(&response).as_deref(),
        Some("microsoft.com.")
    );

    let error = resolve(server.udp_addr(), "nope.microsoft.com", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NxDomain { .. }), "{error:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn names_with_entries_below_them_are_nodata_not_nxdomain() {
    let mut table = table();
    table.insert("a.b.c.example.com", vec![ip("10.3.0.1")]);
    let server = start(Config::new(table)).await;
    for name in ["b.c.example.com.", "c.example.com."] {
        let response = query_udp(server.udp_addr(), &question(name, RecordType::A)).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(response.answers.is_empty(), "{name}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn name_outside_every_zone_is_refused() {
    let server = start_default().await;
    let response = query_udp(
        server.udp_addr(),
        &question("www.example.org.", RecordType::A),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::Refused);
    assert!(!response.metadata.authoritative);
    assert!(response.answers.is_empty());

    let error = resolve(server.udp_addr(), "www.example.org", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Refused { .. }), "{error:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn explicit_zones_replace_the_derived_ones() {
    let server = start(Config::new(table()).with_zones(["microsoft.com"])).await;
    let error = resolve(server.udp_addr(), "foo.blob.core.windows.net", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Refused { .. }), "{error:?}");
    let resolved = resolve(server.udp_addr(), "exact.microsoft.com", PATIENCE)
        .await
        .unwrap();
    assert_eq!(resolved, [ip("10.1.0.1")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn recursion_is_never_available() {
    let server = start_default().await;
    for name in [
        "exact.microsoft.com.",
        "nope.microsoft.com.",
        "www.example.org.",
    ] {
        let query = question(name, RecordType::A);
        assert!(query.metadata.recursion_desired);
        let response = query_udp(server.udp_addr(), &query).await;
        assert!(!response.metadata.recursion_available, "{name}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn edns_is_echoed_and_newer_versions_get_badvers() {
    let server = start_default().await;
    let mut query = question("exact.microsoft.com.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    query.set_edns(edns.clone());
    let response = query_udp(server.udp_addr(), &query).await;
    assert_eq!(response.edns.as_ref().map(Edns::max_payload), Some(1232));
    assert_eq!(answer_ips(&response), [ip("10.1.0.1")]);

    edns.set_version(1);
    query.set_edns(edns);
    let response = query_udp(server.udp_addr(), &query).await;
    // BADVERS shares its value (16) with BADSIG, which is what decoding yields.
    assert_eq!(u16::from(response.metadata.response_code), 16);
    let entries = server.journal().entries();
    assert_eq!(entries.last().map(|r| r.rcode.as_str()), Some("BADVERS"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tcp_queries_are_answered_and_journaled_as_tcp() {
    let server = start_default().await;
    let mut stream = TcpStream::connect(server.tcp_addr()).await.unwrap();
    // Two queries on one connection: the second proves the connection stays usable.
    for (name, expected) in [
        ("exact.microsoft.com.", ip("10.1.0.1")),
        ("foo.blob.core.windows.net.", ip("10.2.0.1")),
    ] {
        let query = question(name, RecordType::A);
        write_tcp(&mut stream, &query).await;
        let response = read_tcp(&mut stream).await;
        assert_eq!(response.metadata.id, query.metadata.id);
        assert!(response.metadata.authoritative);
        assert!(!response.metadata.recursion_available);
        assert_eq!(answer_ips(&response), [expected]);
    }
    let local = stream.local_addr().unwrap();
    let entries = server.journal().entries();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|r| r.protocol == "tcp" && r.peer == local)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn journal_records_queries_and_stays_bounded() {
    let server = start(Config::new(table()).with_journal_capacity(3)).await;
    let journal = server.journal();
    let names = [
        "exact.microsoft.com.",
        "nope.microsoft.com.",
        "www.example.org.",
        "dual.microsoft.com.",
        "v6only.microsoft.com.",
    ];
    for name in names {
        query_udp(server.udp_addr(), &question(name, RecordType::A)).await;
    }
    assert_eq!(journal.evicted(), 2);
    let entries = journal.entries();
    let summary: Vec<_> = entries
        .iter()
        .map(|r| (r.name.as_str(), r.qtype.as_str(), r.rcode.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("www.example.org", "A", "REFUSED"),
            ("dual.microsoft.com", "A", "NOERROR"),
            ("v6only.microsoft.com", "A", "NOERROR"),
        ]
    );
    assert_eq!(entries[1].answers, [ip("10.1.0.2")]);
    assert!(entries[2].answers.is_empty());
    assert!(entries.iter().all(|r| r.protocol == "udp"));
    assert!(entries.iter().all(|r| r.peer.ip() == ip("127.0.0.1")));
    assert_eq!(journal.count(|r| r.rcode == "NOERROR"), 2);

    journal.clear();
    assert!(journal.entries().is_empty());
    assert_eq!(journal.evicted(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn journal_capacity_zero_records_nothing() {
    let server = start(Config::new(table()).with_journal_capacity(0)).await;
    resolve(server.udp_addr(), "exact.microsoft.com", PATIENCE)
        .await
        .unwrap();
    assert!(server.journal().entries().is_empty());
    assert_eq!(server.journal().evicted(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn servfail_fault_fails_the_name_until_cleared() {
    let server = start_default().await;
    let faults = server.faults();
    faults.set("*.blob.core.windows.net", Fault::ServFail);
    let response = query_udp(
        server.udp_addr(),
        &question("foo.blob.core.windows.net.", RecordType::A),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    // Read before `resolve` below, whose two queries may still be in flight when it returns
    // on the first failure.
    assert_eq!(
        server
            .journal()
            .count(|r| r.name == "foo.blob.core.windows.net" && r.rcode == "SERVFAIL"),
        1
    );
    let error = resolve(server.udp_addr(), "foo.blob.core.windows.net", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ServFail { .. }), "{error:?}");
    // Other names are unaffected.
    resolve(server.udp_addr(), "exact.microsoft.com", PATIENCE)
        .await
        .unwrap();

    faults.clear("*.blob.core.windows.net");
    let resolved = resolve(server.udp_addr(), "foo.blob.core.windows.net", PATIENCE)
        .await
        .unwrap();
    assert_eq!(resolved, [ip("10.2.0.1")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn nxdomain_fault_hides_a_known_name() {
    let server = start_default().await;
    server.faults().set("exact.microsoft.com", Fault::NxDomain);
    let response = query_udp(
        server.udp_addr(),
        &question("exact.microsoft.com.", RecordType::A),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        authority_soa_zone(&response).as_deref(),
        Some("microsoft.com.")
    );
    assert_eq!(server.journal().count(|r| r.rcode == "NXDOMAIN"), 1);
    let error = resolve(server.udp_addr(), "exact.microsoft.com", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NxDomain { .. }), "{error:?}");

    server.faults().clear_all();
    resolve(server.udp_addr(), "exact.microsoft.com", PATIENCE)
        .await
        .unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn drop_fault_sends_nothing_so_the_client_times_out() {
    let server = start_default().await;
    server.faults().set("exact.microsoft.com", Fault::Drop);
    let error = resolve(server.udp_addr(), "exact.microsoft.com", SHORT)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Timeout { timeout, .. } if timeout == SHORT),
        "{error:?}"
    );

    // Over TCP one connection's queries are handled in order, so the answer to a second query
    // proves the first was handled (and journaled) without an answer.
    let mut stream = TcpStream::connect(server.tcp_addr()).await.unwrap();
    let dropped = question("exact.microsoft.com.", RecordType::A);
    let answered = question("dual.microsoft.com.", RecordType::A);
    write_tcp(&mut stream, &dropped).await;
    write_tcp(&mut stream, &answered).await;
    let response = read_tcp(&mut stream).await;
    assert_eq!(response.metadata.id, answered.metadata.id);
    let rcodes: Vec<_> = server
        .journal()
        .entries()
        .into_iter()
        .filter(|r| r.protocol == "tcp")
        .map(|r| (r.name, r.rcode))
        .collect();
    assert_eq!(
        rcodes,
        [
            ("exact.microsoft.com".to_owned(), "DROPPED".to_owned()),
            ("dual.microsoft.com".to_owned(), "NOERROR".to_owned()),
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn delay_fault_answers_late() {
    let delay = Duration::from_millis(400);
    let server = start_default().await;
    server.faults().set("*.microsoft.com", Fault::Delay(delay));

    let error = resolve(
        server.udp_addr(),
        "exact.microsoft.com",
        Duration::from_millis(50),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");

    let started = Instant::now();
    let resolved = resolve(server.udp_addr(), "exact.microsoft.com", PATIENCE)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(resolved, [ip("10.1.0.1")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn faults_apply_outside_the_zones_too() {
    let server = start_default().await;
    server.faults().set("www.example.org", Fault::ServFail);
    let error = resolve(server.udp_addr(), "www.example.org", PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ServFail { .. }), "{error:?}");
    server.shutdown().await.unwrap();
}

/// Deterministic noise, so a failure can be replayed.
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_gets_formerr_or_silence_and_the_server_keeps_answering() {
    let server = start_default().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    // A query header announcing one question, followed by a compression pointer far past the
    // end: the header parses, the question does not, and hickory-server answers FORMERR.
    let mut bad_question = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    bad_question.extend_from_slice(&[0xff, 0xff, 0, 1, 0, 1]);
    let response = send_udp(server.udp_addr(), &bad_question)
        .await
        .expect("no FORMERR answer");
    assert_eq!(response.metadata.id, 0x1234);
    assert_eq!(response.metadata.response_code, ResponseCode::FormErr);

    // Shorter than a header, empty, and random: whatever happens, nothing may break.
    socket.send_to(&[1, 2, 3], server.udp_addr()).await.unwrap();
    socket.send_to(&[], server.udp_addr()).await.unwrap();
    for seed in 0..64 {
        let len = 1 + (seed as usize * 37) % 700;
        socket
            .send_to(&noise(seed, len), server.udp_addr())
            .await
            .unwrap();
    }
    // The same over TCP, on a connection of its own.
    let mut garbage_tcp = TcpStream::connect(server.tcp_addr()).await.unwrap();
    garbage_tcp.write_all(&[0, 20]).await.unwrap();
    garbage_tcp.write_all(&noise(99, 20)).await.unwrap();
    garbage_tcp.write_all(&noise(7, 300)).await.unwrap();

    let response = query_udp(
        server.udp_addr(),
        &question("exact.microsoft.com.", RecordType::A),
    )
    .await;
    assert_eq!(answer_ips(&response), [ip("10.1.0.1")]);
    let mut stream = TcpStream::connect(server.tcp_addr()).await.unwrap();
    let query = question("exact.microsoft.com.", RecordType::A);
    write_tcp(&mut stream, &query).await;
    assert_eq!(answer_ips(&read_tcp(&mut stream).await), [ip("10.1.0.1")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn zero_or_several_questions_are_formerr() {
    let server = start_default().await;
    let mut empty = Message::query();
    empty.metadata.recursion_desired = true;
    let response = query_udp(server.udp_addr(), &empty).await;
    assert_eq!(response.metadata.response_code, ResponseCode::FormErr);

    let mut two = question("exact.microsoft.com.", RecordType::A);
    two.add_query(Query::query(
        Name::from_ascii("dual.microsoft.com.").unwrap(),
        RecordType::A,
    ));
    let response = query_udp(server.udp_addr(), &two).await;
    assert_eq!(response.metadata.response_code, ResponseCode::FormErr);
    assert!(response.answers.is_empty());

    let rcodes: Vec<_> = server
        .journal()
        .entries()
        .into_iter()
        .map(|r| (r.name, r.rcode))
        .collect();
    assert_eq!(
        rcodes,
        [
            (String::new(), "FORMERR".to_owned()),
            ("exact.microsoft.com".to_owned(), "FORMERR".to_owned()),
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn opcodes_other_than_query_are_notimp() {
    let server = start_default().await;
    for op_code in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let mut message = question("exact.microsoft.com.", RecordType::A);
        message.metadata.op_code = op_code;
        let response = query_udp(server.udp_addr(), &message).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NotImp,
            "{op_code:?}"
        );
        assert!(response.answers.is_empty());
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_frees_both_ports() {
    let server = start_default().await;
    let (udp_addr, tcp_addr) = (server.udp_addr(), server.tcp_addr());
    resolve(udp_addr, "exact.microsoft.com", PATIENCE)
        .await
        .unwrap();
    // An open connection and a query stuck in a long delay must not hold the shutdown up.
    let _connection = TcpStream::connect(tcp_addr).await.unwrap();
    server.faults().set(
        "dual.microsoft.com",
        Fault::Delay(Duration::from_secs(3600)),
    );
    let stuck = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stuck
        .send_to(
            &question("dual.microsoft.com.", RecordType::A)
                .to_vec()
                .unwrap(),
            udp_addr,
        )
        .await
        .unwrap();

    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .expect("shutdown hung")
        .unwrap();
    UdpSocket::bind(udp_addr).await.unwrap();
    TcpListener::bind(tcp_addr).await.unwrap();
}

#[tokio::test]
async fn cancelling_the_parent_stops_the_server() {
    let parent = CancellationToken::new();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = spawn(udp, tcp, Config::new(table()), &parent).unwrap();
    let (udp_addr, tcp_addr) = (server.udp_addr(), server.tcp_addr());
    parent.cancel();
    // The server was stopped by the parent; shutdown only joins it.
    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .expect("shutdown hung")
        .unwrap();
    UdpSocket::bind(udp_addr).await.unwrap();
    TcpListener::bind(tcp_addr).await.unwrap();
}

#[tokio::test]
async fn spawn_outside_a_runtime_is_an_error() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = std::thread::spawn(move || {
        spawn(udp, tcp, Config::new(table()), &CancellationToken::new()).map(drop)
    })
    .join()
    .unwrap();
    assert!(matches!(result, Err(Error::NoRuntime)), "{result:?}");
}

#[tokio::test]
async fn invalid_zone_is_an_error() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let zone = "x".repeat(64) + ".com";
    let result = spawn(
        udp,
        tcp,
        Config::new(table()).with_zones([zone.as_str()]),
        &CancellationToken::new(),
    );
    assert!(
        matches!(&result, Err(Error::InvalidZone { zone: z, .. }) if *z == zone),
        "{:?}",
        result.map(drop)
    );
}

#[tokio::test]
async fn resolve_rejects_invalid_names() {
    let name = "x".repeat(64) + ".microsoft.com";
    let error = resolve("127.0.0.1:9".parse().unwrap(), &name, SHORT)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidName { .. }), "{error:?}");
}
