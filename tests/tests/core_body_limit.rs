//! The body limit through plain tower, with no hyper in front: hyper gives a request body the
//! exact size its `Content-Length` declares, so over TCP (`core_strict.rs`) the layer judges
//! that size; here a body's own size and the header can differ, and each is judged where it
//! is the one that is known.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use hardening_core::Hardening;
use hardening_tests::UnknownSize;
use http::{Request, StatusCode};
use tower::ServiceExt;

/// A router with a 1000-byte limit: `/upload` reads the body, `/ignore` never does (so only
/// the layer can refuse it) and counts its calls.
fn app(calls: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/ignore",
            post(move || async move {
                calls.fetch_add(1, Ordering::Relaxed);
                "ignored"
            }),
        )
        .layer(Hardening::strict().body_limit(1000).unwrap())
}

async fn status(app: Router, req: Request<Body>) -> StatusCode {
    app.oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn a_body_of_known_size_is_judged_by_its_size_before_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    // No header, or one that understates the body: the body's own size counts.
    for declared in [None, Some("10")] {
        let mut req = Request::post("/ignore");
        if let Some(declared) = declared {
            req = req.header("content-length", declared);
        }
        let req = req.body(Body::from(vec![b'x'; 2000])).unwrap();
        assert_eq!(
            status(app(calls.clone()), req).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "declared {declared:?}"
        );
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "refused before the handler"
    );

    let req = Request::post("/ignore")
        .body(Body::from(vec![b'x'; 1000]))
        .unwrap();
    assert_eq!(status(app(calls.clone()), req).await, StatusCode::OK);
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // A header that overstates a body of known size: the body is what it is (over HTTP the
    // framing makes the two agree; only a caller without hyper can make them differ).
    let req = Request::post("/upload")
        .header("content-length", "5000")
        .body(Body::from(vec![b'x'; 5]))
        .unwrap();
    let res = app(calls.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_of_unknown_size_is_judged_by_its_declared_size_then_counted() {
    let calls = Arc::new(AtomicUsize::new(0));
    let declared_too_large = Request::post("/ignore")
        .header("content-length", "5000")
        .body(Body::new(UnknownSize(Some(Bytes::from_static(b"hello")))))
        .unwrap();
    assert_eq!(
        status(app(calls.clone()), declared_too_large).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "refused before the handler"
    );

    let small = Request::post("/upload")
        .header("content-length", "5")
        .body(Body::new(UnknownSize(Some(Bytes::from_static(b"hello")))))
        .unwrap();
    assert_eq!(status(app(calls.clone()), small).await, StatusCode::OK);

    // Not declared, or declared small, and sent large: counted as it is read.
    for declared in [None, Some("5")] {
        let mut req = Request::post("/upload");
        if let Some(declared) = declared {
            req = req.header("content-length", declared);
        }
        let sent_too_large = req
            .body(Body::new(UnknownSize(Some(Bytes::from(vec![b'x'; 2000])))))
            .unwrap();
        assert_eq!(
            status(app(calls.clone()), sent_too_large).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "declared {declared:?}"
        );
    }
}

/// Over TCP: a chunked body is refused from the first byte past the limit, not at it, with a
/// problem carrying the request id; a declared size over the limit is refused before a
/// client that waits for `100 Continue` sends its body.
#[tokio::test]
async fn over_tcp_the_limit_is_exact_and_expect_continue_is_refused_first() {
    use hardening_tests::{exchange, serve};
    let addr = serve(app(Arc::default())).await;
    let chunked = |size: usize| {
        let mut req = b"POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for chunk in vec![b'x'; size].chunks(300) {
            req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            req.extend_from_slice(chunk);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        req
    };
    let at = exchange(addr, &chunked(1000)).await;
    assert_eq!((at.status, at.body.as_str()), (200, "1000"));
    let over = exchange(addr, &chunked(1001)).await;
    assert_eq!(over.status, 413);
    assert_eq!(
        over.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        over.json()["request_id"].as_str(),
        over.header("x-request-id")
    );

    let waiting = exchange(
        addr,
        b"POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\nexpect: 100-continue\r\ncontent-length: 1001\r\n\r\n",
    )
    .await;
    assert_eq!(waiting.status, 413, "{waiting:?}");
}
