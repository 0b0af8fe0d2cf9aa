//! Slow clients cannot exhaust the server: half-sent requests are closed on
//! time while others are served, a stalled body is closed, and past
//! `max_connections` a new connection is closed at once.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::*;

fn addr(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Read until the server closes the connection (EOF or reset); the bytes
/// it sent. Panics if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the connection is still open after {within:?}"),
        }
    }
}

async fn healthy(server: &TestServer) -> bool {
    // A fresh client each time: no pooled connection left behind.
    let http = mcpgate_client::http_client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    match http.get(format!("{}/healthz", server.url)).send().await {
        Ok(r) => r.status().as_u16() == 200,
        Err(_) => false,
    }
}

e2e! {
    async fn half_sent_requests_are_closed_on_time_while_others_are_served(backend) {
        let server = TestServer::start_with(backend, |c| c.header_read_timeout_secs = 1).await;
        let target = addr(&server);
        let mut half_sent = Vec::new();
        for i in 0..2000 {
            let mut s = TcpStream::connect(&target).await.unwrap();
            // Headers that never end; every 10th connection sends nothing.
            if i % 10 != 0 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
            }
            half_sent.push(s);
        }
        // One byte every 200 ms keeps a connection busy, not alive.
        let mut drip = TcpStream::connect(&target).await.unwrap();
        let dripping = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            for _ in 0..100 {
                if drip.write_all(b"a").await.is_err() {
                    return Some(started.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            None
        });
        // Everyone else is served meanwhile.
        for _ in 0..5 {
            assert!(healthy(&server).await, "/healthz answers while 2,000 connections are half-sent");
        }
        for s in &mut half_sent {
            let sent = closed_within(s, Duration::from_secs(15)).await;
            assert!(!String::from_utf8_lossy(&sent).contains("200 OK"), "no request was served");
        }
        let dripped = dripping.await.unwrap().expect("the dripping connection was closed");
        assert!(dripped < Duration::from_secs(15), "closed after {dripped:?}");
        assert!(healthy(&server).await);
        server.stop().await;
    }

    async fn a_stalled_body_is_closed_and_a_slow_steady_one_is_not(backend) {
        let server = TestServer::start_with(backend, |c| c.body_read_timeout_secs = 1).await;
        let target = addr(&server);
        let body = br#"{"email":"slow@example.com"}"#;
        let head = format!(
            "POST /api/v1/users/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        // Stalled: half the body, then nothing.
        let mut stalled = TcpStream::connect(&target).await.unwrap();
        stalled.write_all(head.as_bytes()).await.unwrap();
        stalled.write_all(&body[..10]).await.unwrap();
        let answer = closed_within(&mut stalled, Duration::from_secs(15)).await;
        assert!(!String::from_utf8_lossy(&answer).contains("201"), "nothing was created");

        // Steady: a byte every 300 ms takes longer than the timeout in all,
        // but never stalls for it.
        let mut steady = TcpStream::connect(&target).await.unwrap();
        steady.write_all(head.as_bytes()).await.unwrap();
        for b in body.iter() {
            steady.write_all(&[*b]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), steady.read(&mut buf)).await.unwrap().unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        if let Some(key) = answer.split("\"api_key\":\"").nth(1).and_then(|r| r.split('"').next()) {
            mcpgate_e2e::remember_secret(key);
        }
        server.stop().await;
    }

    async fn past_max_connections_new_connections_are_closed_at_once(backend) {
        let server = TestServer::start_with(backend, |c| c.max_connections = 8).await;
        let target = addr(&server);
        let mut idle = Vec::new();
        for _ in 0..8 {
            idle.push(TcpStream::connect(&target).await.unwrap());
        }
        // Let the server accept all eight.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut ninth = TcpStream::connect(&target).await.unwrap();
        ninth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.ok();
        let answer = closed_within(&mut ninth, Duration::from_secs(3)).await;
        assert!(answer.is_empty(), "closed without an answer");
        assert!(!healthy(&server).await, "no room while eight are open");
        // The open ones are served as usual.
        idle[0].write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let answer = closed_within(&mut idle[0], Duration::from_secs(5)).await;
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
        drop(idle);
        let mut served = false;
        for _ in 0..50 {
            if healthy(&server).await {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served, "room again once the connections close");
        server.stop().await;
    }
}
