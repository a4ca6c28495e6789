//! A request's `Content-Length` through plain tower, with no hyper in front: for a body of
//! unknown size `Hardening` reads the header, and one that is not a valid length (RFC 9110
//! §8.6, RFC 9112 §6.3: digits only, within `u64`; several fields or a list only if all are
//! the same) is answered 400 with a problem and a `bad_content_length` event before the
//! handler, as hyper answers it on the wire. A valid one is judged against the body limit as
//! before.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use hardening_core::Hardening;
use hardening_tests::{Captured, UnknownSize};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Not valid lengths, each as the list of its `Content-Length` fields.
const INVALID: &[&[&str]] = &[
    &["+5"],
    &["-1"],
    &["5 5"],
    &["5, 6"],
    &["5", "6"],
    &["5,"],
    &["0x10"],
    &["5.0"],
    &[""],
    // 21 digits: past `u64`.
    &["100000000000000000000"],
];

/// Valid lengths of the 5-byte body `hello`. The space around a list element is allowed (on
/// the wire hyper trims it, and the space before a field's value is not part of it).
const VALID: &[&[&str]] = &[&["5"], &["005"], &["5, 5"], &["5", "5"], &[" 5"]];

/// `Hardening::strict()` (1 MiB body limit) around `/upload`, which reads the body and
/// answers its length, and counts its calls.
fn app(calls: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route("/upload", hardening_tests::counting_upload(calls))
        .layer(Hardening::strict())
}

/// A POST of `hello` to `/upload`, its size unknown (as a chunked upload's would be), with
/// these `Content-Length` fields.
fn upload(content_length: &[&'static str]) -> Request<Body> {
    let mut req = Request::post("/upload");
    for &value in content_length {
        req = req.header("content-length", value);
    }
    req.body(Body::new(UnknownSize(Some(Bytes::from_static(b"hello")))))
        .unwrap()
}

#[tokio::test]
async fn an_invalid_content_length_is_a_400_problem_with_an_event() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let calls = Arc::new(AtomicUsize::new(0));
    for &content_length in INVALID {
        let before = captured.security_events().len();
        let res = app(calls.clone())
            .oneshot(upload(content_length))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{content_length:?}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{content_length:?}"
        );
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 400, "{content_length:?}");
        assert_eq!(problem["request_id"], id.as_str(), "{content_length:?}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("Content-Length") && detail.contains("not valid"),
            "{detail}"
        );

        let events = captured.security_events();
        assert_eq!(events.len(), before + 1, "{content_length:?}: {events:?}");
        let (name, event) = &events[before];
        assert_eq!(name, "bad_content_length", "{content_length:?}");
        assert_eq!(event["fields"]["request_id"], id.as_str());
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "refused before the handler"
    );
}

#[tokio::test]
async fn a_valid_content_length_passes() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let calls = Arc::new(AtomicUsize::new(0));
    for &content_length in VALID {
        let res = app(calls.clone())
            .oneshot(upload(content_length))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{content_length:?}");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"5", "{content_length:?}");
    }
    assert_eq!(calls.load(Ordering::Relaxed), VALID.len());
    assert_eq!(captured.security_event_names(), Vec::<String>::new());
}

#[tokio::test]
async fn a_valid_content_length_over_the_limit_is_413_up_front() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let calls = Arc::new(AtomicUsize::new(0));
    let over = "1048577"; // 1 MiB and one byte
    for content_length in [&[over][..], &["1048577, 1048577"], &[over, over]] {
        let res = app(calls.clone())
            .oneshot(upload(content_length))
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{content_length:?}"
        );
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "refused before the handler"
    );
    assert_eq!(captured.security_event_names(), ["body_too_large"; 3]);
}

/// A body that knows its size is judged by it, as before: the header is not read (with hyper
/// in front the two agree; only a caller without it can make them differ).
#[tokio::test]
async fn a_body_of_known_size_is_not_judged_by_its_header() {
    let calls = Arc::new(AtomicUsize::new(0));
    let req = Request::post("/upload")
        .header("content-length", "+5")
        .body(Body::from("hello"))
        .unwrap();
    let res = app(calls.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

/// Served, hyper answers the same values the same way before `Hardening` sees them (so this
/// test pins hyper's behaviour, not `Hardening`'s: the check above matters for servers other
/// than hyper), with one exception: it also refuses a list of equal values in one field
/// (`5, 5`), which RFC 9110 §8.6 leaves to the recipient (reject, as hyper over HTTP/1 and the
/// `h2` crate do, or read as the one value, as `Hardening` does).
#[tokio::test]
async fn served_hyper_agrees_on_each_value() {
    use hardening_tests::{exchange, serve};
    let addr = serve(app(Arc::default())).await;
    let send = |content_length: &[&str]| {
        let mut req = b"POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".to_vec();
        for value in content_length {
            req.extend_from_slice(format!("content-length: {value}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\nhello");
        async move { exchange(addr, &req).await }
    };
    for &content_length in INVALID {
        let reply = send(content_length).await;
        assert_eq!(reply.status, 400, "{content_length:?}: {reply:?}");
    }
    for &content_length in VALID {
        let reply = send(content_length).await;
        let expected = if content_length.iter().any(|v| v.contains(',')) {
            (400, "")
        } else {
            (200, "5")
        };
        assert_eq!(
            (reply.status, reply.body.as_str()),
            expected,
            "{content_length:?}"
        );
    }
}
