//! A request's `Transfer-Encoding` over real TCP. hyper frames a request body as chunked when
//! its last transfer coding is `chunked`, whatever comes before it (`identity, chunked`,
//! `gzip, chunked`) and however often (`chunked, chunked`, or two `chunked` fields); a proxy in
//! front that reads such a header otherwise frames the body otherwise, and the bytes one of
//! them takes for the next request are the other's body (request smuggling). RFC 9112 §6.1:
//! chunked is applied once, and a coding the server does not understand is answered 501.
//! `Hardening` refuses all but one `chunked` before the handler, with a problem and
//! `Connection: close`, so a request pipelined after it is never read.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use hardening_core::Hardening;
use hardening_tests::{Captured, EXCHANGE_LIMIT, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `/upload` answers the length of the body it read (and counts its calls); `/next` is the
/// request pipelined after it.
fn app(calls: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route("/upload", hardening_tests::counting_upload(calls))
        .route("/next", get(|| async { "next" }))
        .layer(Hardening::strict())
}

/// A chunked POST of `hello` to `/upload` with these `Transfer-Encoding` field lines, then a
/// GET of `/next` pipelined on the same connection (which asks to close it), and everything
/// the server sends until it closes the connection.
async fn upload_then_next(addr: std::net::SocketAddr, fields: &[&str]) -> String {
    let mut request = "POST /upload HTTP/1.1\r\nhost: localhost\r\n".to_owned();
    for field in fields {
        request.push_str(&format!("transfer-encoding: {field}\r\n"));
    }
    request.push_str("\r\n5\r\nhello\r\n0\r\n\r\n");
    request.push_str("GET /next HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("{fields:?}: the connection stayed open"))
        .unwrap();
    String::from_utf8(answer).unwrap()
}

/// Header lines of one response head (names lower-case).
fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn a_transfer_encoding_other_than_one_chunked_is_refused_and_the_connection_closed() {
    let refused: &[(&[&str], u16)] = &[
        // A coding nothing here decodes, before chunked: 501 (RFC 9112 §6.1).
        (&["identity, chunked"], 501),
        (&["gzip, chunked"], 501),
        (&["gzip", "chunked"], 501),
        (&["x-custom ,chunked"], 501),
        // chunked applied twice, in one field or two: 400.
        (&["chunked, chunked"], 400),
        (&["chunked", "chunked"], 400),
        (&["Chunked", "CHUNKED"], 400),
    ];
    for &(fields, status) in refused {
        let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
        let calls = Arc::new(AtomicUsize::new(0));
        let addr = serve(app(calls.clone())).await;
        let answer = upload_then_next(addr, fields).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| {
            panic!("{fields:?}: no response head in {answer:?}");
        });
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{fields:?}: {answer}"
        );
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{fields:?}: {answer}"
        );
        assert!(
            !answer.contains("next"),
            "{fields:?}: answered the pipelined request: {answer}"
        );
        assert_eq!(
            field(head, "connection"),
            Some("close"),
            "{fields:?}: {head}"
        );
        assert_eq!(
            field(head, "content-type"),
            Some("application/problem+json"),
            "{fields:?}: {head}"
        );
        let id = field(head, "x-request-id").expect("a request id");
        assert!(body.contains(id), "{fields:?}: {body}");
        assert_eq!(
            calls.load(Ordering::Relaxed),
            0,
            "{fields:?}: the handler ran"
        );
        assert_eq!(
            captured.security_event_names(),
            ["bad_transfer_encoding"],
            "{fields:?}: {}",
            captured.text()
        );
    }
}

/// One `chunked` in any case, with space or empty list elements around it, is the body's
/// framing: served, and the connection goes on to the pipelined request.
#[tokio::test]
async fn one_chunked_is_served_and_the_connection_kept() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    for fields in [
        &["chunked"][..],
        &["CHUNKED"],
        &["chunked "],
        &[", chunked"],
        &["", "chunked"],
    ] {
        let calls = Arc::new(AtomicUsize::new(0));
        let addr = serve(app(calls.clone())).await;
        let answer = upload_then_next(addr, fields).await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{fields:?}: {answer}");
        assert_eq!(
            answer.matches("HTTP/1.1 200 ").count(),
            2,
            "{fields:?}: {answer}"
        );
        assert!(answer.ends_with("next"), "{fields:?}: {answer}");
        assert_eq!(calls.load(Ordering::Relaxed), 1, "{fields:?}");
    }
    assert!(
        captured.security_event_names().is_empty(),
        "{}",
        captured.text()
    );
}
