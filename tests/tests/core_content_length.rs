//! `Hardening`, and the standalone `SecurityHeadersLayer`, write `Content-Length` where hyper
//! (and axum) would write it anyway, into the header map they build, and nowhere else: a plain
//! tower service under the layer, so that no router adds the header after it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use hardening_core::Hardening;
use hardening_core::headers::{HeaderPolicy, SecurityHeadersLayer};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

/// A body whose size is not known up front (like a stream).
struct Unsized(Option<Bytes>);

impl Body for Unsized {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }
}

/// What the service answers; the request's path picks it.
fn answer(path: &str) -> Response<http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>> {
    let full = |text: &'static str| Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync();
    let mut res = Response::new(full("hello"));
    match path {
        "/stream" => {
            *res.body_mut() = Unsized(Some(Bytes::from_static(b"streamed"))).boxed_unsync()
        }
        "/no-content" => {
            *res.status_mut() = StatusCode::NO_CONTENT;
            *res.body_mut() = full("");
        }
        "/not-modified" => {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            *res.body_mut() = full("");
        }
        "/own-length" => {
            res.headers_mut().insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from_static("5"),
            );
        }
        _ => {}
    }
    res
}

/// Which layer the service is under.
#[derive(Debug, Clone, Copy)]
enum Under {
    Hardening,
    SecurityHeadersLayer,
}

async fn lengths(under: Under, method: Method, path: &str) -> (StatusCode, Vec<String>, Bytes) {
    let service = service_fn(|req: Request<axum::body::Body>| async move {
        Ok::<_, Infallible>(answer(req.uri().path()))
    });
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .extension(ConnectInfo(peer))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = match under {
        Under::Hardening => Hardening::strict().layer(service).oneshot(req).await,
        Under::SecurityHeadersLayer => {
            // The layer's body type answers its own refusals (`From<Bytes>`): axum's `Body`,
            // which keeps the inner body's size hint.
            let service = service.map_response(|res| res.map(axum::body::Body::new));
            let layer = SecurityHeadersLayer::new(HeaderPolicy::api().build().unwrap());
            let res = layer.layer(service).oneshot(req).await.unwrap();
            assert_eq!(res.headers()["x-content-type-options"], "nosniff");
            Ok(res.map(axum::body::Body::new))
        }
    }
    .unwrap();
    let values = res
        .headers()
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, values, body)
}

#[tokio::test]
async fn a_body_of_known_size_gets_its_length_once() {
    for under in [Under::Hardening, Under::SecurityHeadersLayer] {
        let (status, values, body) = lengths(under, Method::GET, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(values, ["5"], "{under:?}");
        assert_eq!(&body[..], b"hello");
        // The service's own value is kept, and not doubled.
        let (_, values, _) = lengths(under, Method::GET, "/own-length").await;
        assert_eq!(values, ["5"], "{under:?}");
    }
}

#[tokio::test]
async fn no_length_where_hyper_would_send_none() {
    for under in [Under::Hardening, Under::SecurityHeadersLayer] {
        for (method, path) in [
            (Method::GET, "/stream"),
            (Method::HEAD, "/"),
            (Method::GET, "/no-content"),
            (Method::GET, "/not-modified"),
        ] {
            let (_, values, _) = lengths(under, method.clone(), path).await;
            assert!(values.is_empty(), "{under:?} {method} {path}: {values:?}");
        }
    }
}

#[tokio::test]
async fn problems_get_their_length_too() {
    // A response the layer writes itself: a declared body over the 1 MiB limit.
    let service = Hardening::strict().layer(service_fn(|_req: Request<axum::body::Body>| async {
        Ok::<_, Infallible>(answer("/"))
    }));
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let req = Request::post("/")
        .header("host", "localhost")
        .header("content-length", (2 * 1024 * 1024).to_string())
        .extension(ConnectInfo(peer))
        .body(axum::body::Body::from(vec![b'x'; 2 * 1024 * 1024]))
        .unwrap();
    let res = service.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let declared: usize = res.headers()[http::header::CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(declared, body.len());
}
