//! CORS through `Hardening`: the wildcard and caches, credentials and the CSRF check.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use hardening_core::{Cors, Hardening, HardeningConfig};
use http::{Request, Response};
use tower::ServiceExt;

fn app(hardening: Hardening) -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async { "hello" }).post(|| async { "posted" }),
        )
        .layer(hardening)
}

async fn call(app: &Router, req: http::request::Builder) -> Response<Body> {
    let mut req = req.body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    app.clone().oneshot(req).await.unwrap()
}

fn vary_has_origin(res: &Response<Body>) -> bool {
    res.headers()
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin") || v.trim() == "*")
}

/// `Cors::allow_origins(["*"])`: a shared cache may store the answer to a request without
/// `Origin` and serve it to cross-origin callers, so `Access-Control-Allow-Origin: *` is on
/// every response, or the response says it varies by `Origin` (Fetch, "CORS protocol and
/// HTTP caches").
#[tokio::test]
async fn any_origin_answers_are_safe_to_cache_with_or_without_an_origin() {
    let app = app(Hardening::strict().cors(Cors::allow_origins(["*"]).unwrap()));
    let with_origin = call(
        &app,
        Request::get("/hello")
            .header("host", "api.example.com")
            .header("origin", "https://other.example"),
    )
    .await;
    assert_eq!(with_origin.headers()["access-control-allow-origin"], "*");

    let without_origin = call(
        &app,
        Request::get("/hello").header("host", "api.example.com"),
    )
    .await;
    assert_eq!(without_origin.status(), 200);
    let acao_always = without_origin
        .headers()
        .contains_key("access-control-allow-origin");
    assert!(
        acao_always || vary_has_origin(&without_origin),
        "ACAO depends on Origin but neither is it always sent nor does the response vary by \
         Origin: {:?}",
        without_origin.headers()
    );
}

/// `HARDENING_CORS_ORIGINS` + `HARDENING_CORS_CREDENTIALS=true` ("let allowed origins send
/// cookies"): after the preflight, the cookie-authenticated POST from that origin passes the
/// strict preset's CSRF check, which trusts the origins CORS lets send credentials.
#[tokio::test]
async fn origins_cors_lets_send_credentials_pass_the_csrf_check() {
    let hardening = HardeningConfig::from_vars([
        ("HARDENING_CORS_ORIGINS", "https://app.example.com"),
        ("HARDENING_CORS_CREDENTIALS", "true"),
    ])
    .unwrap()
    .build()
    .unwrap();
    let app = app(hardening);

    let preflight = call(
        &app,
        Request::options("/hello")
            .header("host", "api.example.com")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type"),
    )
    .await;
    assert_eq!(preflight.status(), 204, "{:?}", preflight.headers());
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );

    // What a browser then sends for fetch(url, {method: "POST", credentials: "include"}).
    for site in ["same-site", "cross-site"] {
        let res = call(
            &app,
            Request::post("/hello")
                .header("host", "api.example.com")
                .header("origin", "https://app.example.com")
                .header("sec-fetch-site", site)
                .header("cookie", "__Host-session=abc")
                .header("content-type", "application/json"),
        )
        .await;
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        assert_eq!(
            status,
            200,
            "Sec-Fetch-Site: {site}: a credentialed POST from the allowed origin was refused: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

async fn cookie_post(app: &Router, origin: &str) -> u16 {
    call(
        app,
        Request::post("/hello")
            .header("host", "api.example.com")
            .header("origin", origin)
            .header("sec-fetch-site", "cross-site")
            .header("cookie", "__Host-session=abc"),
    )
    .await
    .status()
    .as_u16()
}

/// Only credentialed CORS origins are trusted, only those listed, and whichever of `cors`
/// and `csrf` is set first.
#[tokio::test]
async fn the_csrf_check_trusts_only_origins_cors_lets_send_credentials() {
    let listed = "https://app.example.com";
    let credentialed = || {
        Cors::allow_origins([listed])
            .unwrap()
            .allow_credentials()
            .unwrap()
    };
    for (name, hardening) in [
        (
            "cors then csrf",
            Hardening::strict()
                .cors(credentialed())
                .csrf(hardening_auth::Csrf::new()),
        ),
        (
            "csrf then cors",
            Hardening::strict()
                .csrf(hardening_auth::Csrf::new())
                .cors(credentialed()),
        ),
    ] {
        let app = app(hardening);
        assert_eq!(cookie_post(&app, listed).await, 200, "{name}");
        assert_eq!(
            cookie_post(&app, "https://evil.example").await,
            403,
            "{name}"
        );
    }
    // Without credentials, a listed origin gets CORS headers but no CSRF trust: its
    // cookie-carrying POST is still refused.
    let served = app(Hardening::strict().cors(Cors::allow_origins([listed]).unwrap()));
    assert_eq!(cookie_post(&served, listed).await, 403);
    // A CORS policy set again replaces the first one's trust: it was added to, so an origin
    // the first listed (from `HARDENING_CORS_*`, say, replaced in code) stayed trusted.
    let other = "https://other.example.com";
    let replaced = |second: Cors| {
        Hardening::strict()
            .cors(credentialed())
            .cors(second)
            .csrf(hardening_auth::Csrf::new())
    };
    let served = app(replaced(Cors::allow_origins([other]).unwrap()));
    assert_eq!(cookie_post(&served, listed).await, 403);
    let served = app(replaced(
        Cors::allow_origins([other])
            .unwrap()
            .allow_credentials()
            .unwrap(),
    ));
    assert_eq!(cookie_post(&served, listed).await, 403);
    assert_eq!(cookie_post(&served, other).await, 200);
    // `csrf` first, then two CORS policies: the same.
    let served = app(Hardening::strict()
        .csrf(hardening_auth::Csrf::new())
        .cors(credentialed())
        .cors(Cors::allow_origins([other]).unwrap()));
    assert_eq!(cookie_post(&served, listed).await, 403);
}

/// A single-page app sending `Authorization: Bearer ..` (or using PUT) cross-origin could not
/// be configured from the environment: there was no variable for the request headers or
/// methods. `HARDENING_CORS_HEADERS` and `HARDENING_CORS_METHODS` set them as
/// `Cors::allow_headers` and `Cors::allow_methods` do.
#[tokio::test]
async fn cors_request_headers_and_methods_come_from_the_environment() {
    let hardening = HardeningConfig::from_vars([
        ("HARDENING_CORS_ORIGINS", "https://app.example.com"),
        ("HARDENING_CORS_HEADERS", "content-type, Authorization"),
        ("HARDENING_CORS_METHODS", "get, POST,put"),
    ])
    .unwrap()
    .build()
    .unwrap();
    let app = app(hardening);
    let preflight = |method: &str, headers: &str| {
        Request::options("/hello")
            .header("host", "api.example.com")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
    };
    for (method, headers, status) in [
        ("POST", "authorization, content-type", 204),
        ("PUT", "authorization", 204),
        ("DELETE", "authorization", 403),
        ("GET", "x-other", 403),
    ] {
        let res = call(&app, preflight(method, headers)).await;
        assert_eq!(res.status(), status, "{method} with {headers}: {res:?}");
        if status == 204 {
            assert_eq!(
                res.headers()["access-control-allow-headers"],
                "content-type, authorization"
            );
            assert_eq!(
                res.headers()["access-control-allow-methods"],
                "GET, POST, PUT"
            );
        }
    }
}

/// The names in a response's `Access-Control-Expose-Headers`, lower case, in order.
fn exposed(res: &Response<Body>) -> Vec<String> {
    res.headers()
        .get_all("access-control-expose-headers")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// A single-page app on an allowed origin read `null` for the request id it should quote to
/// support, and for the `Retry-After` our own 429 tells it to wait for: no response header
/// was exposed unless listed by hand. The headers `Hardening` writes itself are exposed to
/// allowed origins on actual responses (the 429 too), after the app's own, each once; an
/// unlisted origin and a request without `Origin` get no CORS headers, and a preflight no
/// `Access-Control-Expose-Headers` (browsers read it on actual responses only).
#[tokio::test]
async fn an_allowed_origin_may_read_the_headers_hardening_writes() {
    use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
    use std::num::NonZeroU32;
    const OURS: [&str; 4] = [
        "x-request-id",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
    ];
    let quota = Quota::per_hour(NonZeroU32::new(1).unwrap());
    for (user_exposes, expected) in [
        (&[][..], OURS.to_vec()),
        (
            &["X-Total", "x-request-id", "ETag"][..],
            [
                "x-total",
                "x-request-id",
                "etag",
                "retry-after",
                "ratelimit",
                "ratelimit-policy",
            ]
            .to_vec(),
        ),
    ] {
        let mut cors = Cors::allow_origins(["https://app.example.com"]).unwrap();
        if !user_exposes.is_empty() {
            cors = cors.expose_headers(user_exposes).unwrap();
        }
        let app = app(Hardening::strict()
            .cors(cors)
            .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", quota)]))
            .unwrap());
        let get = |origin: Option<&str>| {
            let req = Request::get("/hello").header("host", "api.example.com");
            match origin {
                Some(origin) => req.header("origin", origin),
                None => req,
            }
        };
        let allowed = call(&app, get(Some("https://app.example.com"))).await;
        assert_eq!(allowed.status(), 200);
        assert_eq!(exposed(&allowed), expected, "{user_exposes:?}: {allowed:?}");
        // Spent: the 429 names its `Retry-After`, and the app may read it.
        let limited = call(&app, get(Some("https://app.example.com"))).await;
        assert_eq!(limited.status(), 429);
        assert!(limited.headers().contains_key("retry-after"));
        assert_eq!(exposed(&limited), expected, "{user_exposes:?}: {limited:?}");
        for other in [
            call(&app, get(Some("https://evil.example"))).await,
            call(&app, get(None)).await,
        ] {
            let cors_headers: Vec<_> = other
                .headers()
                .keys()
                .filter(|name| name.as_str().starts_with("access-control-"))
                .collect();
            assert!(cors_headers.is_empty(), "{user_exposes:?}: {other:?}");
        }
        let preflight = call(
            &app,
            Request::options("/hello")
                .header("host", "api.example.com")
                .header("origin", "https://app.example.com")
                .header("access-control-request-method", "POST"),
        )
        .await;
        assert_eq!(preflight.status(), 204);
        assert!(
            exposed(&preflight).is_empty(),
            "{user_exposes:?}: {preflight:?}"
        );
    }
}
