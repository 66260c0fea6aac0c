//! The lab's lifecycle: a start that fails part-way stops every service it had started, so
//! nothing keeps serving (or holding a port) behind an error.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use mdelab::{Lab, LabOptions};

/// A port free on both UDP and TCP right now (the lab binds DNS on both).
fn free_dns_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP");
        let port = udp.local_addr().expect("UDP address").port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

/// A TCP port free right now.
fn free_tcp_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind TCP")
        .port()
}

#[tokio::test]
async fn a_failed_start_stops_every_service_it_had_started() {
    // DNS and the mock cloud start before the admin API; give them known ports, and hold the
    // admin API's port so that its bind fails after they are serving.
    let dns_port = free_dns_port();
    let https_port = free_tcp_port();
    let http_port = free_tcp_port();
    let occupied = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the blocker");
    let admin_port = occupied.local_addr().expect("blocker address").port();
    let options = LabOptions {
        dns_port,
        https_port,
        http_port,
        admin_port,
        ..LabOptions::default()
    };

    let err = Lab::builder()
        .options(options)
        .start()
        .await
        .expect_err("the admin API's port is taken, so the lab cannot start");
    let message = format!("{err:#}");
    assert!(
        message.contains("admin API") && message.contains(&format!("127.0.0.1:{admin_port}")),
        "the error names the listener and the address: {message}"
    );
    assert!(
        message.contains("already in use"),
        "the error suggests the remedy: {message}"
    );

    // Everything started before the failure is gone: its ports can be bound again at once.
    let localhost = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    for (what, port) in [
        ("HTTPS", https_port),
        ("HTTP", http_port),
        ("DNS (TCP)", dns_port),
    ] {
        TcpListener::bind(localhost(port)).unwrap_or_else(|e| {
            panic!("the mock cloud's {what} port {port} is still held after the failed start: {e}")
        });
    }
    UdpSocket::bind(localhost(dns_port)).unwrap_or_else(|e| {
        panic!("the DNS UDP port {dns_port} is still held after the failed start: {e}")
    });
    drop(occupied);
}
