//! One route left out of `Hardening`'s rate limit (`allow_route_without_rate_limit`), over
//! TCP: a payment provider's webhook, called in bursts from one address, is never refused by
//! the per-IP limit, while every other path keeps it, and so does every spelling of the
//! webhook's path that axum routes elsewhere. The loosening is logged once with its route, and
//! a pattern that cannot match is refused when the layer is built.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::Router;
use axum::routing::{get, post};
use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
use hardening_core::{ConfigError, Hardening};
use hardening_tests::{Captured, Reply, get as http_get, request, serve};

/// One request an hour per client IP.
fn once_per_ip() -> RateLimiter {
    RateLimiter::new([Policy::per_client_ip(
        "per-ip",
        Quota::per_hour(NonZeroU32::new(1).unwrap()),
    )])
}

/// The webhook, a route under a parameter, the app's own routes, and a fallback that
/// answers every other path (so a spelling axum does not route to the webhook is served,
/// and shows whether it was counted).
fn routes() -> Router {
    Router::new()
        .route("/webhooks/stripe", post(|| async { "received" }))
        .route("/webhooks/stripe/", post(|| async { "the other route" }))
        .route("/hooks/{provider}", post(|| async { "received" }))
        .route("/notes", get(|| async { "notes" }))
        .fallback(|| async { "fallback" })
}

fn hardening() -> Hardening {
    Hardening::strict()
        .rate_limit(once_per_ip())
        .and_then(|h| h.allow_route_without_rate_limit("/webhooks/stripe"))
        .and_then(|h| h.allow_route_without_rate_limit("/hooks/{provider}"))
        .unwrap()
}

async fn server() -> SocketAddr {
    serve(routes().layer(hardening())).await
}

fn assert_not_counted(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {reply:?}");
    assert_eq!(reply.header("ratelimit"), None, "{what}: {reply:?}");
    assert_eq!(reply.header("ratelimit-policy"), None, "{what}: {reply:?}");
}

/// A burst on the webhook, far past the per-IP budget, is served whole; the per-IP budget
/// is still there for the rest of the app afterwards, and then spent.
#[tokio::test]
async fn the_exempt_route_is_never_counted_and_every_other_path_is() {
    let addr = server().await;
    for i in 0..20 {
        let reply = request(addr, "POST", "/webhooks/stripe", &[]).await;
        assert_not_counted(&reply, &format!("webhook {i}"));
        let reply = request(addr, "POST", "/hooks/github", &[]).await;
        assert_not_counted(&reply, &format!("hook {i}"));
    }
    let notes = http_get(addr, "/notes", &[]).await;
    assert_eq!(notes.status, 200, "{notes:?}");
    assert_eq!(
        notes.header("ratelimit-policy"),
        Some("\"per-ip\";q=1;w=3600")
    );
    let refused = http_get(addr, "/notes", &[]).await;
    refused.problem(429);
    // The webhook still answers: its burst never touched the budget, nor does it now.
    assert_not_counted(
        &request(addr, "POST", "/webhooks/stripe", &[]).await,
        "after",
    );
}

/// Each spelling of an exempt route's path that axum does not route to it (another route,
/// or the fallback) is counted: it spends the budget, and the next request is refused. The
/// spellings are matched byte for byte, as axum's router matches them: no percent-decoding,
/// no merged slashes, no trailing slash ignored, case counting; and a parameter takes one
/// non-empty segment only.
#[tokio::test]
async fn spellings_axum_routes_elsewhere_are_counted() {
    for path in [
        "//webhooks/stripe",
        "/webhooks/stripe/",
        "/webhooks/stripe//",
        "/webhooks//stripe",
        "/Webhooks/stripe",
        "/WEBHOOKS/STRIPE",
        "/webhooks/strip%65",
        "/webhooks/stripe%2F",
        "/%2Fwebhooks/stripe",
        "/./webhooks/stripe",
        "/webhooks/x/../stripe",
        "/webhooks/stripe/x",
        "/webhooks/stripes",
        "/hooks/",
        "/hooks//",
        "/hooks/github/",
        "/hooks/github/x",
        "//hooks/github",
    ] {
        // A server of its own: a fresh budget of one request.
        let addr = server().await;
        let reply = request(addr, "POST", path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert_eq!(
            reply.header("ratelimit-policy"),
            Some("\"per-ip\";q=1;w=3600"),
            "{path} was not counted"
        );
        let after = http_get(addr, "/notes", &[]).await;
        assert_eq!(after.status, 429, "{path} did not spend the budget");
    }
}

/// Each route is logged once as a loosening, when it is given, naming it.
#[test]
fn each_exempt_route_is_logged_as_a_loosening() {
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    let _ = hardening();
    drop(guard);
    let exempt: Vec<String> = captured
        .loosenings()
        .into_iter()
        .filter(|(setting, _)| setting == "allow_route_without_rate_limit")
        .map(|(_, message)| message)
        .collect();
    assert_eq!(
        exempt,
        [
            "hardening loosened: requests to route /webhooks/stripe are not rate limited (the \
             rate limit still applies to every other path)",
            "hardening loosened: requests to route /hooks/{provider} are not rate limited (the \
             rate limit still applies to every other path)",
        ]
    );
}

/// A pattern that cannot match a request's path, or matches the same paths as one given
/// before, is refused when the layer is built, saying what to change; so is one for a
/// setting given to `allow_larger_body` in the same words, with that method's name.
#[test]
fn an_exempt_route_that_cannot_work_is_refused_at_build() {
    let message = |result: Result<Hardening, ConfigError>| result.unwrap_err().to_string();
    for (route, why) in [
        ("webhooks/stripe", "a route starts with `/`"),
        ("", "a route starts with `/`"),
        (
            "/webhooks/stripe?x=1",
            "it has a character no request path has",
        ),
        ("/web hooks", "it has a character no request path has"),
        (
            "/hooks/{*rest}/events",
            "a catch-all `{*name}` can only be the last segment",
        ),
        ("/hooks/{provider}.json", "a parameter is a whole segment"),
        ("/hooks/{{provider}}", "literal braces"),
        (
            "/hooks/{name}",
            "it matches the same paths as \"/hooks/{provider}\", given before",
        ),
        (
            "/webhooks/stripe",
            "it matches the same paths as \"/webhooks/stripe\", given before",
        ),
    ] {
        let text = message(hardening().allow_route_without_rate_limit(route));
        assert!(
            text.starts_with(&format!(
                "invalid route {route:?} for allow_route_without_rate_limit: {why}"
            )),
            "{text}"
        );
    }
    assert!(matches!(
        Hardening::strict().allow_route_without_rate_limit("hooks"),
        Err(ConfigError::InvalidRoute {
            setting: "allow_route_without_rate_limit",
            ..
        })
    ));
}

/// `dangerous_without_rate_limit` limits nothing anywhere, exempt or not; a limiter set after
/// the exemption keeps it.
#[tokio::test]
async fn the_exemption_outlives_a_later_limiter_and_the_limit_off_wins() {
    let later = Hardening::strict()
        .allow_route_without_rate_limit("/webhooks/stripe")
        .and_then(|h| h.rate_limit(once_per_ip()))
        .unwrap();
    let addr = serve(routes().layer(later)).await;
    for _ in 0..3 {
        assert_not_counted(
            &request(addr, "POST", "/webhooks/stripe", &[]).await,
            "later limiter",
        );
    }
    assert_eq!(http_get(addr, "/notes", &[]).await.status, 200);
    assert_eq!(http_get(addr, "/notes", &[]).await.status, 429);
    let off = hardening().dangerous_without_rate_limit();
    let addr = serve(routes().layer(off)).await;
    for path in ["/notes", "/notes", "/webhooks/stripe"] {
        let method = if path == "/notes" { "GET" } else { "POST" };
        assert_not_counted(&request(addr, method, path, &[]).await, path);
    }
}
