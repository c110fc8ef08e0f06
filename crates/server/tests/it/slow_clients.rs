//! Slow clients cannot hold the server (issue 15): header, body and keep-alive idle timeouts, a
//! cap on open connections, websockets exempt.
//! The clients are raw TCP sockets, so nothing between the test and the server hides a byte.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Short timeouts for the test; the defaults are seconds.
const SHORT: Duration = Duration::from_millis(300);
/// The longest a test waits for the server to close a connection (far above the timeouts).
const CLOSED_WITHIN: Duration = Duration::from_secs(15);
/// A timeout that a test must not reach.
const LONG: Duration = Duration::from_secs(600);

async fn connect(s: &TestServer) -> TcpStream {
    let addr = s.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection; answers what came. Panics if it stays open.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(CLOSED_WITHIN, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open; it sent {:?}",
        String::from_utf8_lossy(&got)
    );
    got
}

/// Sends `GET /healthz` on a keep-alive connection and reads the whole answer.
async fn healthz(stream: &mut TcpStream) -> (u16, String) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("write");
    answer(stream).await
}

/// Reads one HTTP/1.1 answer with a `content-length`: its status and body.
async fn answer(stream: &mut TcpStream) -> (u16, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(CLOSED_WITHIN, stream.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(
            n > 0,
            "closed before a whole answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().expect("a length"))
                })
                .expect("content-length");
            if body.len() >= length {
                let status = head[9..12].parse().expect("a status");
                return (status, body.to_owned());
            }
        }
    }
}

#[tokio::test]
async fn half_a_request_line_is_closed_after_the_header_timeout() {
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        a.header_timeout = SHORT;
        a.body_timeout = LONG;
        a.idle_timeout = LONG;
    })
    .await;
    let mut stream = connect(&s).await;
    stream.write_all(b"GET /healthz HT").await.expect("write");
    until_closed(&mut stream).await;
    // A client that trickles its headers a byte at a time is cut all the same.
    let mut stream = connect(&s).await;
    let trickle = async {
        for b in b"GET /healthz HTTP/1.1\r\nhost: test\r\nx-slow: yes" {
            if stream.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // All bytes sent without being cut: the read below fails the test.
    };
    trickle.await;
    until_closed(&mut stream).await;
    s.stop().await;
}

#[tokio::test]
async fn a_declared_body_that_never_comes_is_cut_after_the_body_timeout() {
    // The other timeouts far above the wait: only the body timeout can close it.
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        a.body_timeout = SHORT;
        a.header_timeout = LONG;
        a.idle_timeout = LONG;
    })
    .await;
    let mut stream = connect(&s).await;
    let head = format!(
        "POST /api/v1/hubs HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        s.a.portal,
        100 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    until_closed(&mut stream).await;
    s.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        a.idle_timeout = SHORT;
        a.header_timeout = LONG;
        a.body_timeout = LONG;
    })
    .await;
    let mut stream = connect(&s).await;
    assert_eq!(healthz(&mut stream).await.0, 200);
    // Kept alive after the answer, then closed once idle.
    assert_eq!(healthz(&mut stream).await.0, 200);
    until_closed(&mut stream).await;
    s.stop().await;
}

#[tokio::test]
async fn past_the_cap_a_new_connection_is_refused_at_once_and_the_open_ones_still_work() {
    const CAP: u64 = 4;
    let s = TestServer::start_with(Backend::Sqlite, |a| a.max_connections = CAP).await;
    // The test's HTTP client may hold pooled connections too: open raw ones until one is
    // refused. A refused connection is answered without a request; an accepted one is not.
    let mut open = Vec::new();
    let refused = loop {
        assert!(
            open.len() as u64 <= CAP,
            "{} connections open, none refused",
            open.len()
        );
        let mut stream = connect(&s).await;
        let mut first = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut first)).await {
            Err(_) => {
                assert_eq!(healthz(&mut stream).await.0, 200);
                open.push(stream);
            }
            Ok(Ok(1)) => {
                let mut rest = until_closed(&mut stream).await;
                rest.insert(0, first[0]);
                break String::from_utf8(rest).expect("text");
            }
            Ok(other) => panic!("the connection closed without an answer: {other:?}"),
        }
    };
    let (head, body) = refused.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(
        body,
        json!({ "status": 503, "errors": [{ "code": 100,
            "description": "The server has too many open connections; try again later. (code: PRT000100)" }] })
    );
    // The connections held still answer.
    for stream in &mut open {
        assert_eq!(healthz(stream).await.0, 200);
    }
    s.stop().await;
}

#[tokio::test]
async fn requests_and_websockets_still_work_with_short_timeouts() {
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        a.header_timeout = SHORT;
        a.body_timeout = SHORT;
        a.idle_timeout = SHORT;
    })
    .await;
    let hub = s.hub(&s.a.portal, "slow").await;
    let customer = s
        .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
        .await;
    let agent = s
        .direct(&s.a.portal, &hub, "agents", "Agent", json!({}))
        .await;
    let agent = agent["integrationId"].as_str().expect("id");
    let mut ws = s.ws(&format!("iId={agent}"), Some(&s.a.engine)).await;
    // Silent for several idle timeouts: an upgraded socket is not an idle HTTP connection.
    quiet(&mut ws, 1500).await;
    let conv = s
        .establish(
            &s.a.engine,
            customer["integrationId"].as_str().expect("id"),
            "visitor",
        )
        .await;
    let conv = conv["conversationId"].as_str().expect("id");
    s.say(&s.a.engine, conv, "hello").await;
    loop {
        let f = frame(&mut ws).await;
        if f.to_string().contains("hello") {
            break;
        }
    }
    s.stop().await;
}
