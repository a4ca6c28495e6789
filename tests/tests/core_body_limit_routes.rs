//! A larger body limit for one route (`Hardening::allow_larger_body`), over TCP: the route
//! takes its size, every other path keeps the default, and so do spellings of the route's
//! path that axum routes elsewhere. Every handler reads its body itself (`Body`, which
//! axum's `DefaultBodyLimit` does not limit), so the layer's limit is the only one: what a
//! handler or layer that reads the body directly gets.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hardening_core::{ConfigError, DEFAULT_BODY_LIMIT, Hardening};
use hardening_tests::{EXCHANGE_LIMIT, Reply, read_reply, serve};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::ServiceExt;

const MIB: usize = 1024 * 1024;
const UPLOAD: usize = 20 * MIB;

/// Reads the whole body and answers its size; 400 when it cannot be read (the limit cut
/// it off), as a handler that can only call it a bad body does.
async fn read_all(body: Body) -> Response {
    match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes.len().to_string().into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `/upload` and `/docs/{id}/file` raised to 20 MiB; `/notes`, `/upload/` and every other
/// path (the fallback) read bodies too, under the default.
fn routes() -> Router {
    Router::new()
        .route("/upload", post(read_all))
        .route("/docs/{id}/file", post(read_all))
        .route("/notes", post(read_all))
        .route("/upload/", post(read_all))
        .fallback(read_all)
}

fn hardening() -> Hardening {
    Hardening::strict()
        .allow_larger_body("/upload", UPLOAD)
        .and_then(|h| h.allow_larger_body("/docs/{id}/file", UPLOAD))
        .unwrap()
}

async fn server() -> SocketAddr {
    serve(routes().layer(hardening())).await
}

/// Sends `request` (with `connection: close`) while reading the response, as a client
/// streaming a large body does: a server that answers before it has read the whole body (a
/// 413) and closes the connection has its answer read, and the rest is not sent.
async fn exchange_while_sending(addr: SocketAddr, request: Vec<u8>) -> Reply {
    tokio::time::timeout(EXCHANGE_LIMIT, async {
        let reading = TcpStream::connect(addr).await.unwrap().into_std().unwrap();
        let mut writing = TcpStream::from_std(reading.try_clone().unwrap()).unwrap();
        let mut reading = TcpStream::from_std(reading).unwrap();
        let sending = tokio::spawn(async move {
            // Fails once the server has answered and closed: the rest is not wanted.
            let _ = writing.write_all(&request).await;
            // Kept open until the answer is read (not half-closed).
            writing
        });
        let reply = read_reply(&mut reading).await;
        sending.abort();
        reply
    })
    .await
    .expect("the exchange took too long")
}

/// `POST path` with a body of `size` bytes, sent with its `Content-Length`.
async fn declared(addr: SocketAddr, path: &str, size: usize) -> Reply {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: \
         {size}\r\n\r\n"
    )
    .into_bytes();
    req.resize(req.len() + size, b'x');
    exchange_while_sending(addr, req).await
}

/// `POST path` with a body of `size` bytes, chunked (64 KiB chunks): its size unknown until
/// it ends.
async fn chunked(addr: SocketAddr, path: &str, size: usize) -> Reply {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ntransfer-encoding: \
         chunked\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        req.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        req.extend_from_slice(&chunk[..n]);
        req.extend_from_slice(b"\r\n");
        left -= n;
    }
    req.extend_from_slice(b"0\r\n\r\n");
    exchange_while_sending(addr, req).await
}

/// The reply is the body-limit problem, naming `limit`.
fn assert_too_large(reply: &Reply, limit: usize, what: &str) {
    assert_eq!(reply.status, 413, "{what}: {}", reply.body);
    let problem = reply.problem(413);
    assert_eq!(
        problem["detail"],
        format!("the request body is larger than this service accepts ({limit} bytes)"),
        "{what}"
    );
}

#[tokio::test]
async fn the_raised_route_takes_a_body_over_the_default() {
    let addr = server().await;
    let five = 5 * MIB;
    for path in ["/upload", "/upload?name=report.pdf", "/docs/7/file"] {
        let reply = declared(addr, path, five).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "5242880"),
            "{path}"
        );
        let reply = chunked(addr, path, five).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "5242880"),
            "{path}"
        );
    }
    // Up to its limit exactly.
    let reply = chunked(addr, "/upload", UPLOAD).await;
    assert_eq!((reply.status, reply.body), (200, UPLOAD.to_string()));
}

#[tokio::test]
async fn the_raised_route_refuses_a_body_over_its_own_limit() {
    let addr = server().await;
    // Counted as it arrives, cut off past 20 MiB, whatever the handler answered then.
    let reply = chunked(addr, "/upload", 21 * MIB).await;
    assert_too_large(&reply, UPLOAD, "21 MiB chunked");
    let reply = chunked(addr, "/upload", UPLOAD + 1).await;
    assert_too_large(&reply, UPLOAD, "20 MiB and a byte, chunked");
    // Declared: refused before the body is read.
    let reply = declared(addr, "/docs/7/file", 21 * MIB).await;
    assert_too_large(&reply, UPLOAD, "21 MiB declared");
}

#[tokio::test]
async fn every_other_path_keeps_the_default() {
    let addr = server().await;
    let two = 2 * MIB;
    for path in [
        "/notes",
        "/other",
        // Spellings of the raised routes that axum routes elsewhere: `/upload/` to its own
        // route, the others to the fallback.
        "/upload/",
        "//upload",
        "/upload//",
        "/Upload",
        "/upl%6Fad",
        "/upl%6fad",
        "/upload/x",
        "/./upload",
        "/upload%2F",
        "/docs/7/file/",
        "/docs/7/8/file",
        "//docs/7/file",
    ] {
        let reply = declared(addr, path, two).await;
        assert_too_large(&reply, DEFAULT_BODY_LIMIT, &format!("{path} declared"));
        let reply = chunked(addr, path, two).await;
        assert_too_large(&reply, DEFAULT_BODY_LIMIT, &format!("{path} chunked"));
    }
    // Within the default, they are served.
    let reply = declared(addr, "/notes", DEFAULT_BODY_LIMIT).await;
    assert_eq!(reply.status, 200);
}

/// `dangerous_disable_body_limit` lifts every limit, the raised route's too, in either
/// order; a later `body_limit` brings the route's limit back.
#[tokio::test]
async fn dangerous_disable_body_limit_still_wins() {
    let big = 21 * MIB;
    let before = hardening().dangerous_disable_body_limit();
    let after = Hardening::strict()
        .dangerous_disable_body_limit()
        .allow_larger_body("/upload", UPLOAD)
        .unwrap();
    for hardening in [before, after] {
        let app = routes().layer(hardening);
        for path in ["/upload", "/notes"] {
            let req = http::Request::post(path)
                .body(Body::from(vec![b'x'; big]))
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
        }
    }
    let restored = hardening()
        .dangerous_disable_body_limit()
        .body_limit(2 * MIB)
        .unwrap();
    let app = routes().layer(restored);
    for (path, size, status) in [
        ("/upload", big, 413),
        ("/upload", 5 * MIB, 200),
        ("/notes", 3 * MIB, 413),
    ] {
        let req = http::Request::post(path)
            .body(Body::from(vec![b'x'; size]))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path} {size}");
    }
}

/// Each raise is logged as a loosening, with its route and size.
#[test]
fn each_raise_is_logged_as_a_loosening() {
    let (captured, guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    let _ = hardening();
    drop(guard);
    assert_eq!(
        captured.loosenings(),
        [
            (
                "allow_larger_body".to_owned(),
                "hardening loosened: request bodies up to 20971520 bytes are accepted on \
                 route /upload (1048576 bytes elsewhere)"
                    .to_owned()
            ),
            (
                "allow_larger_body".to_owned(),
                "hardening loosened: request bodies up to 20971520 bytes are accepted on \
                 route /docs/{id}/file (1048576 bytes elsewhere)"
                    .to_owned()
            ),
        ]
    );
}

/// A raise that cannot work is refused when the layer is built, saying what to change.
#[test]
fn a_raise_that_cannot_work_is_refused_at_build() {
    let message = |result: Result<Hardening, ConfigError>| result.unwrap_err().to_string();
    assert_eq!(
        message(Hardening::strict().allow_larger_body("/upload", 0)),
        "allow_larger_body must be greater than zero"
    );
    assert_eq!(
        message(Hardening::strict().allow_larger_body("/upload", DEFAULT_BODY_LIMIT)),
        "allow_larger_body(\"/upload\", 1048576) does not raise the body limit of 1048576 \
         bytes: give the route more, or leave it to body_limit; to lower one route's limit, \
         put axum's DefaultBodyLimit::max on that route"
    );
    // In either order.
    assert_eq!(
        message(hardening().body_limit(UPLOAD)),
        "allow_larger_body(\"/upload\", 20971520) does not raise the body limit of 20971520 \
         bytes: give the route more, or leave it to body_limit; to lower one route's limit, \
         put axum's DefaultBodyLimit::max on that route"
    );
    assert!(hardening().body_limit(UPLOAD - 1).is_ok());
    for (route, why) in [
        ("upload", "a route starts with `/`"),
        ("/upload?x", "it has a character no request path has"),
        (
            "/files/{*path}/raw",
            "a catch-all `{*name}` can only be the last segment",
        ),
        ("/docs/{id}.pdf", "a parameter is a whole segment"),
        (
            "/docs/{name}/file",
            "it matches the same paths as \"/docs/{id}/file\", given before",
        ),
    ] {
        let text = message(hardening().allow_larger_body(route, UPLOAD));
        assert!(
            text.starts_with(&format!(
                "invalid route {route:?} for allow_larger_body: {why}"
            )),
            "{text}"
        );
    }
}
