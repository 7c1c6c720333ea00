//! Connections that never become requests: idle ones, half-sent heads and stalled TLS
//! handshakes are closed by the server after the header-read or idle timeout, and a flood
//! of them from one address is capped, so that other clients are still served.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use streamhub_admin::{AdminConfig, AdminHandle, AdminService, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::*;

/// Attacking connections in each test: well beyond the per-address cap below, and within
/// what the test process's own file descriptors allow (the server raises the soft limit
/// of this process, which it shares).
const FLOOD: usize = 3000;
const PER_ADDRESS: usize = 500;
/// Generous hang guard for everything the server must do by itself.
const GUARD: Duration = Duration::from_secs(60);

fn short_limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3),
        max_connections_per_address: PER_ADDRESS,
        ..Limits::default()
    }
}

/// The attacker's connection from 127.0.0.1; the well-behaved client uses 127.0.0.2 (all
/// of 127.0.0.0/8 is loopback on Linux), another address as far as the caps go.
async fn connect_from_attacker(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

fn client(pem: Option<&[u8]>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(30));
    if let Some(pem) = pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
    }
    builder.build().unwrap()
}

async fn assert_healthy(client: &reqwest::Client, handle: &AdminHandle) {
    let res = client
        .get(format!("{}/api/health", handle.url()))
        .send()
        .await
        .expect("/api/health must answer while connections are flooding in");
    assert_eq!(res.status(), StatusCode::OK);
}

/// Reads until the server closes the connection (end of stream, or a reset).
async fn closed_by_server(mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn all_closed_by_server(streams: Vec<TcpStream>) {
    let n = streams.len();
    tokio::time::timeout(GUARD, join_all(streams.into_iter().map(closed_by_server)))
        .await
        .unwrap_or_else(|_| panic!("the server left some of {n} stalled connections open"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_are_closed_and_capped_while_health_answers() {
    let dir = tempfile::tempdir().unwrap();
    let handle = AdminService::start(AdminConfig {
        limits: short_limits(),
        ..config(&dir)
    })
    .await
    .unwrap();
    let client = client(None);
    let mut streams = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let mut stream = connect_from_attacker(handle.addr()).await;
        if i % 2 == 1 {
            // A request head that never ends; the server may already have closed it.
            let _ = stream
                .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
        }
        streams.push(stream);
        if i % 500 == 0 {
            assert_healthy(&client, &handle).await;
        }
    }
    assert_healthy(&client, &handle).await;
    all_closed_by_server(streams).await;
    assert_healthy(&client, &handle).await;
    handle.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_and_idle_tls_connections_are_closed_while_health_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (files, pem) = crate::tls::self_signed(dir.path());
    let handle = AdminService::start(AdminConfig {
        tls: Some(files),
        limits: short_limits(),
        ..config(&dir)
    })
    .await
    .unwrap();
    let client = client(Some(&pem));
    let mut streams = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let mut stream = connect_from_attacker(handle.addr()).await;
        if i % 2 == 1 {
            // The start of a TLS record that never ends.
            let _ = stream
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await;
        }
        streams.push(stream);
        if i % 500 == 0 {
            assert_healthy(&client, &handle).await;
        }
    }
    assert_healthy(&client, &handle).await;
    all_closed_by_server(streams).await;

    // Connections that finish the handshake, then send nothing.
    let mut idle = Vec::new();
    for _ in 0..20 {
        let tcp = connect_from_attacker(handle.addr()).await;
        let mut connector =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
        connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
        let ssl = connector
            .build()
            .configure()
            .unwrap()
            .into_ssl("localhost")
            .unwrap();
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        std::pin::Pin::new(&mut tls).connect().await.unwrap();
        idle.push(tls);
    }
    let closed = idle.into_iter().map(|mut tls| async move {
        let mut buf = [0u8; 64];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    tokio::time::timeout(GUARD, join_all(closed))
        .await
        .expect("the server left idle TLS connections open");
    assert_healthy(&client, &handle).await;
    handle.stop().await.unwrap();
}
