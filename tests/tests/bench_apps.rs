//! The benchmark services answer alike, and the loopback floor variant sends exactly the
//! response headers `Hardening::strict()` sends (else the floor would not measure them).

#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hardening_tests::bench_apps::Variant;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(variant: Variant) -> http::Response<Body> {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let req = http::Request::get("/")
        .header("host", "localhost")
        .extension(ConnectInfo(peer))
        .body(Body::empty())
        .unwrap();
    variant.app().oneshot(req).await.unwrap()
}

#[tokio::test]
async fn every_variant_says_hello() {
    for variant in Variant::ALL
        .into_iter()
        .chain([Variant::BareWithStrictHeaders, Variant::StandaloneHeaders])
    {
        assert_eq!(Variant::from_name(variant.name()), Some(variant));
        let res = get(variant).await;
        assert_eq!(res.status(), 200, "{}", variant.name());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"Hello, World!", "{}", variant.name());
    }
    let res = get(Variant::StandaloneHeaders).await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["content-length"], "13");
}

#[tokio::test]
async fn the_floor_sends_stricts_headers() {
    let strict = get(Variant::Hardening).await;
    let floor = get(Variant::BareWithStrictHeaders).await;
    let names = |res: &http::Response<Body>| {
        let mut names: Vec<String> = res.headers().keys().map(|n| n.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(names(&floor), names(&strict));
    for (name, value) in strict.headers() {
        let floor_value = &floor.headers()[name];
        if name == "x-request-id" || name == "ratelimit" {
            // Per request; the same length (a UUID; the same remaining count's digits).
            assert_eq!(floor_value.len(), value.len(), "{name}");
        } else {
            assert_eq!(floor_value, value, "{name}");
        }
    }
}
