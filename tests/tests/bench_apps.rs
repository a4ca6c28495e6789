//! The benchmark services answer alike, and the loopback floor variant sends exactly the
//! response headers `Hardening::strict()` sends (else the floor would not measure them).

#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hardening_tests::bench_apps::{Step, Variant, app_named};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(variant: Variant) -> http::Response<Body> {
    get_from(variant.app(), "/").await
}

async fn get_from(app: axum::Router, path: &str) -> http::Response<Body> {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let req = http::Request::get(path)
        .header("host", "localhost")
        .extension(ConnectInfo(peer))
        .body(Body::empty())
        .unwrap();
    app.oneshot(req).await.unwrap()
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

#[tokio::test]
async fn the_floor_as_a_layer_sends_the_floors_headers() {
    let floor = get(Variant::BareWithStrictHeaders).await;
    let layered = get_from(app_named("floor-as-layer").unwrap(), "/").await;
    assert_eq!(layered.headers(), floor.headers());
    let body = layered.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Hello, World!");
}

#[tokio::test]
async fn each_step_left_out_is_gone_and_only_it() {
    let strict = get(Variant::Hardening).await;
    assert!(strict.headers().contains_key("ratelimit"));
    assert!(strict.headers().contains_key("x-content-type-options"));
    assert_eq!(
        get_from(app_named("hardening-strict").unwrap(), "/healthz")
            .await
            .status(),
        200
    );

    let app = |steps: &str| app_named(&format!("hardening-strict-without:{steps}")).unwrap();
    let no_limit = get_from(app("rate-limit"), "/").await;
    assert!(!no_limit.headers().contains_key("ratelimit"));
    assert!(no_limit.headers().contains_key("x-content-type-options"));

    let no_headers = get_from(app("security-headers"), "/").await;
    assert!(!no_headers.headers().contains_key("x-content-type-options"));
    assert!(no_headers.headers().contains_key("ratelimit"));
    assert!(no_headers.headers().contains_key("x-request-id"));

    // Without health, `/healthz` reaches the router, which has no such route.
    assert_eq!(get_from(app("health"), "/healthz").await.status(), 404);

    // Without limits, a query over the 50-parameter cap reaches the handler.
    let many = format!("/?{}", vec!["a=1"; 60].join("&"));
    assert_eq!(get_from(app("rate-limit"), &many).await.status(), 400);
    assert_eq!(get_from(app("limits"), &many).await.status(), 200);

    // Without CSRF, a cross-site cookie POST reaches the router (which has no POST route).
    let cross_site_post = |app: axum::Router| async move {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let req = http::Request::post("/")
            .header("host", "localhost")
            .header("cookie", "session=1")
            .header("origin", "https://elsewhere.example")
            .header("sec-fetch-site", "cross-site")
            .extension(ConnectInfo(peer))
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap().status()
    };
    assert_eq!(cross_site_post(app("rate-limit")).await, 403);
    assert_eq!(cross_site_post(app("csrf")).await, 405);

    // All at once, and every name once.
    let all: Vec<&str> = Step::ALL.iter().map(|(name, _)| *name).collect();
    let res = get_from(app(&all.join(",")), "/").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    assert!(!res.headers().contains_key("ratelimit"));

    let unknown = app_named("hardening-strict-without:rate-limit,nope").unwrap_err();
    assert!(
        unknown.contains("\"nope\"") && unknown.contains("rate-limit"),
        "{unknown}"
    );
    assert!(app_named("no-such-variant").is_err());

    let noop = get_from(app_named("bare-axum-noop-layer").unwrap(), "/").await;
    assert_eq!(noop.status(), 200);
    assert!(!noop.headers().contains_key("x-request-id"));
}
