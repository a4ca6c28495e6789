//! A handler's `Content-Length` that disagrees with its body, over real TCP on one kept-alive
//! connection. hyper sends the header it is given and then the whole body of known size, so
//! the extra bytes would be read as the start of the next response (and debug builds of hyper
//! assert). `Hardening` sends the body's size instead. A streaming body, whose size hyper does
//! not know, is cut at the declared length by hyper itself.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use hardening_core::Hardening;
use hardening_tests::{EXCHANGE_LIMIT, serve};
use http::header::CONTENT_LENGTH;
use http_body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A body of unknown size (a stream), in these frames.
struct Frames(VecDeque<&'static str>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.0
                .pop_front()
                .map(|s| Ok(Frame::data(Bytes::from_static(s.as_bytes())))),
        )
    }
}

fn app(hardening: Hardening) -> Router {
    Router::new()
        .route(
            "/wrong",
            get(|| async { ([(CONTENT_LENGTH, "2")], "hello") }),
        )
        .route(
            "/several",
            get(|| async {
                let mut res = axum::response::Response::new(Body::from("hello"));
                res.headers_mut()
                    .append(CONTENT_LENGTH, "5".parse().unwrap());
                res.headers_mut()
                    .append(CONTENT_LENGTH, "2".parse().unwrap());
                res
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let body = Frames(VecDeque::from(["hello", " streamed ", "world"]));
                ([(CONTENT_LENGTH, "7")], Body::new(body))
            }),
        )
        .route("/next", get(|| async { "next" }))
        .layer(hardening)
}

/// One response read off the connection: exactly its head and `Content-Length` bytes,
/// whatever follows left in `buf` for the next one.
#[derive(Debug)]
struct Response {
    status_line: String,
    lengths: Vec<String>,
    body: Vec<u8>,
}

/// Reads one response framed by its (single) `Content-Length`, keeping what follows in `buf`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Response {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "the server closed the connection before a whole response head; got {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let lengths: Vec<String> = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.trim().to_owned())
        .collect();
    assert!(
        status_line.starts_with("HTTP/1.1 "),
        "not a status line: {status_line:?} (bytes of the previous body?)"
    );
    assert_eq!(lengths.len(), 1, "one content-length: {head}");
    let length: usize = lengths[0].parse().unwrap();
    buf.drain(..head_end + 4);
    while buf.len() < length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection within a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.drain(..length).collect();
    Response {
        status_line,
        lengths,
        body,
    }
}

/// Sends GET `first` and then GET `/next` on one connection (the second asks to close it),
/// and reads both responses, and then everything up to the close.
async fn two_on_one_connection(hardening: Hardening, first: &str) -> (Response, Response, Vec<u8>) {
    let addr = serve(app(hardening)).await;
    tokio::time::timeout(EXCHANGE_LIMIT, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        let request = format!("GET {first} HTTP/1.1\r\nhost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let one = read_response(&mut stream, &mut buf).await;
        stream
            .write_all(b"GET /next HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let two = read_response(&mut stream, &mut buf).await;
        stream.read_to_end(&mut buf).await.unwrap();
        (one, two, buf)
    })
    .await
    .expect("the exchange took too long")
}

#[tokio::test]
async fn a_wrong_content_length_does_not_desync_a_kept_alive_connection() {
    // Without the security headers too: their `Content-Length` slot is not there to fix it.
    let configs = || {
        [
            Hardening::strict(),
            Hardening::strict().dangerous_without_security_headers(),
        ]
    };
    for (hardening, path) in configs()
        .into_iter()
        .map(|h| (h, "/wrong"))
        .chain(configs().into_iter().map(|h| (h, "/several")))
    {
        let (one, two, rest) = two_on_one_connection(hardening, path).await;
        assert_eq!(one.status_line, "HTTP/1.1 200 OK", "{path}");
        assert_eq!(one.lengths, ["5"], "{path}");
        assert_eq!(one.body, b"hello", "{path}");
        assert_eq!(two.status_line, "HTTP/1.1 200 OK", "{path}");
        assert_eq!(two.body, b"next", "{path}");
        assert!(
            rest.is_empty(),
            "{path}: bytes after the last response: {rest:?}"
        );
    }
}

/// What hyper does with a body of unknown size longer than the declared `Content-Length`: it
/// sends the declared length and drops the rest of the body, and the connection stays in step.
/// (Left to hyper: `Hardening` cannot know a stream's size before sending the head.)
#[tokio::test]
async fn hyper_cuts_a_stream_longer_than_its_content_length() {
    let (one, two, rest) = two_on_one_connection(Hardening::strict(), "/stream").await;
    assert_eq!(one.lengths, ["7"]);
    assert_eq!(one.body, b"hello s");
    assert_eq!(two.status_line, "HTTP/1.1 200 OK");
    assert_eq!(two.body, b"next");
    assert!(rest.is_empty(), "bytes after the last response: {rest:?}");
}
