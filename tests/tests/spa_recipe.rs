//! The README's recipe "A single-page app on another origin, and webhooks", built as written
//! and checked claim by claim: the SPA's origin may call with its cookie (preflight and
//! request, reading the request id and rate-limit fields), other origins and a sibling
//! subdomain's script may not, the session cookie gets `SameSite=Strict` on the way out, and
//! a webhook (no cookie, no Fetch Metadata) passes the CSRF check with no exemption.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use hardening_core::headers::{CookiePolicy, HeaderPolicy, SameSite};
use hardening_core::{Cors, Hardening};
use http::{Method, Request, Response};
use tower::ServiceExt;

const SESSION: &str = "__Host-session";

/// The recipe's layer, as the README writes it.
fn hardening() -> Result<Hardening, Box<dyn std::error::Error>> {
    let cors = Cors::allow_origins(["https://app.example.com"])?
        .allow_methods([Method::GET, Method::POST, Method::DELETE])?
        .allow_headers(["content-type"])?
        .allow_credentials()?;
    let hardening = Hardening::strict().cors(cors).security_headers(
        HeaderPolicy::api().cookies(CookiePolicy::default().same_site(SESSION, SameSite::Strict)?),
    )?;
    Ok(hardening)
}

fn app() -> Router {
    Router::new()
        .route("/me", get(|| async { "me" }))
        .route(
            "/login",
            post(|| async {
                (
                    [(
                        "set-cookie",
                        format!("{SESSION}=t; Path=/; Secure; HttpOnly"),
                    )],
                    "in",
                )
            }),
        )
        .route("/orders", post(|| async { "ordered" }))
        .route(
            "/webhooks/payments",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .layer(hardening().unwrap())
}

async fn call(req: http::request::Builder, body: &'static str) -> Response<Body> {
    let mut req = req
        .header("host", "api.example.com")
        .body(Body::from(body))
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [192, 0, 2, 7],
            40000,
        ))));
    app().oneshot(req).await.unwrap()
}

fn from(origin: &'static str, site: &'static str) -> http::request::Builder {
    Request::post("/orders")
        .header("origin", origin)
        .header("sec-fetch-site", site)
        .header("sec-fetch-mode", "cors")
        .header("content-type", "application/json")
        .header("cookie", format!("{SESSION}=t"))
}

#[tokio::test]
async fn the_spa_recipe_does_what_the_readme_says() {
    // The SPA's preflight and its credentialed call.
    let preflight = call(
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/orders")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type"),
        "",
    )
    .await;
    assert!(preflight.status().is_success(), "{preflight:?}");
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");

    let res = call(from("https://app.example.com", "same-site"), "{}").await;
    assert_eq!(res.status(), 200, "the SPA's call: {res:?}");
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    // What the SPA may read of the answer: the request id, Retry-After, RateLimit.
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "x-request-id",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
    ] {
        assert!(
            exposed.split(',').any(|n| n.trim() == name),
            "{name}: {exposed}"
        );
    }

    // Every other origin with the cookie: refused, a sibling subdomain too.
    for (origin, site) in [
        ("https://blog.example.com", "same-site"),
        ("https://evil.example", "cross-site"),
    ] {
        let res = call(from(origin, site), "{}").await;
        assert_eq!(res.status(), 403, "{origin}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{origin}"
        );
    }

    // A sibling's script logging the victim in to another account (no cookie, a form body).
    let login_csrf = call(
        Request::post("/login")
            .header("origin", "https://blog.example.com")
            .header("sec-fetch-site", "same-site")
            .header("sec-fetch-mode", "cors")
            .header("content-type", "application/x-www-form-urlencoded"),
        "user=attacker&password=x",
    )
    .await;
    assert_eq!(login_csrf.status(), 403);
    assert!(!login_csrf.headers().contains_key("set-cookie"));

    // The SPA's own login: the session cookie goes out SameSite=Strict.
    let login = call(
        Request::post("/login")
            .header("origin", "https://app.example.com")
            .header("sec-fetch-site", "same-site")
            .header("sec-fetch-mode", "cors")
            .header("content-type", "application/json"),
        "{}",
    )
    .await;
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");

    // A webhook: no cookie, no Origin, no Fetch Metadata. No exemption needed.
    let webhook = call(
        Request::post("/webhooks/payments")
            .header("content-type", "application/json")
            .header("stripe-signature", "t=1,v1=00"),
        r#"{"type":"payment_intent.succeeded"}"#,
    )
    .await;
    assert_eq!(webhook.status(), 200, "{webhook:?}");
}
