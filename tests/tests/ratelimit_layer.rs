//! The standalone `RateLimitLayer` over TCP: keyed by the socket peer, 429 problems after the
//! burst, IETF headers on every response, one `rate_limited` security event per refusal (and
//! still one, not two, inside `Hardening`); a limiter forced past its cap of keys says so.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;

use axum::Router;
use axum::routing::get;
use hardening_core::ratelimit::{LimiterConfigError, Policy, Quota, RateLimitLayer, RateLimiter};
use hardening_tests::{Captured, get as http_get, serve};

#[tokio::test]
async fn standalone_layer_limits_by_peer() {
    let quota = Quota::per_hour(NonZeroU32::new(10).unwrap()).burst(NonZeroU32::new(2).unwrap());
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(RateLimitLayer::new(RateLimiter::new([
            Policy::per_client_ip("per-ip", quota),
        ])));
    let addr = serve(app).await;
    let a = http_get(addr, "/", &["x-forwarded-for: 1.2.3.4"]).await;
    let b = http_get(addr, "/", &["x-forwarded-for: 5.6.7.8"]).await;
    let c = http_get(addr, "/", &[]).await;
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "forwarding headers do not make new keys"
    );
    assert_eq!(a.header("ratelimit-policy"), Some("\"per-ip\";q=10;w=3600"));
    assert_eq!(c.status, 429);
    assert_eq!(c.header("content-type"), Some("application/problem+json"));
    assert_eq!(c.header("retry-after"), Some("360"));
    assert_eq!(c.json()["violated-policies"][0], "per-ip");
}

/// A limiter with no policies would limit nothing. `RateLimiter::new` takes one or more
/// (an empty array does not build: its doc test); `try_new`, for a list made at run time,
/// refuses none. An empty list used to make a limiter, and a `RateLimitLayer` or
/// `CostLayer` over it admitted every request.
#[test]
fn a_limiter_without_policies_is_refused() {
    let err = RateLimiter::try_new(Vec::<Policy>::new()).unwrap_err();
    assert_eq!(err, LimiterConfigError::NoPolicies);
    assert!(err.to_string().contains("at least one Policy"), "{err}");
    let quota = Quota::per_hour(NonZeroU32::new(10).unwrap());
    let limiter = RateLimiter::try_new(vec![Policy::per_client_ip("per-ip", quota)]).unwrap();
    assert_eq!(limiter.policies().count(), 1);
}

/// A route whose `RateLimitLayer` admits one request per client (policy `name`).
fn one_request_per_client(name: &'static str) -> Router {
    let quota = Quota::per_hour(NonZeroU32::new(10).unwrap()).burst(NonZeroU32::new(1).unwrap());
    Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(RateLimitLayer::new(RateLimiter::new([
            Policy::per_client_ip(name, quota),
        ])))
}

#[tokio::test]
async fn standalone_refusals_carry_a_request_id_and_are_reported_once() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(one_request_per_client("per-ip")).await;
    assert_eq!(http_get(addr, "/", &[]).await.status, 200);
    let refused = http_get(addr, "/", &[]).await;
    assert_eq!(refused.status, 429);
    // No `Hardening` gave this request an id: the layer makes one, in the body and the log.
    let id = refused.json()["request_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    let events = captured.security_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let (name, event) = &events[0];
    assert_eq!(name, "rate_limited");
    assert_eq!(event["fields"]["request_id"], id.as_str());
    assert_eq!(event["fields"]["client.address"], "127.0.0.1");
    assert!(
        event["fields"]["policies"]
            .as_str()
            .unwrap()
            .contains("per-ip"),
        "{event}"
    );
}

#[tokio::test]
async fn inside_hardening_the_layer_keys_on_the_client_behind_a_trusted_proxy() {
    use hardening_core::Hardening;
    let app = one_request_per_client("route-per-ip")
        .layer(Hardening::strict().trusted_proxies(["127.0.0.1"]).unwrap());
    let addr = serve(app).await;
    // Two clients behind the same proxy (the test's socket, 127.0.0.1): one bucket each.
    let a = http_get(addr, "/", &["x-forwarded-for: 198.51.100.1"]).await;
    let b = http_get(addr, "/", &["x-forwarded-for: 198.51.100.2"]).await;
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "clients behind one proxy share a bucket: {b:?}"
    );
    let again = http_get(addr, "/", &["x-forwarded-for: 198.51.100.1"]).await;
    assert_eq!(again.status, 429, "{again:?}");
    assert_eq!(again.json()["violated-policies"][0], "route-per-ip");
}

#[tokio::test]
async fn inside_hardening_a_refusal_of_the_layer_is_reported_once_with_hardenings_id() {
    use hardening_core::Hardening;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = one_request_per_client("route-per-ip").layer(Hardening::strict());
    let addr = serve(app).await;
    assert_eq!(http_get(addr, "/", &[]).await.status, 200);
    let refused = http_get(addr, "/", &[]).await;
    assert_eq!(refused.status, 429);
    let id = refused.header("x-request-id").unwrap().to_owned();
    assert_eq!(refused.json()["request_id"], id.as_str());
    let events = captured.security_events();
    assert_eq!(
        events.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["rate_limited"],
        "the layer reports its refusal; Hardening, seeing it reported, does not again"
    );
    let event = &events[0].1;
    assert_eq!(event["fields"]["request_id"], id.as_str());
    assert!(
        event["fields"]["policies"]
            .as_str()
            .unwrap()
            .contains("route-per-ip"),
        "{event}"
    );
}

/// More keys still limited than a policy may track: the limiter must forget some buckets
/// that still limit (which loosens those keys' limits), and says so once, naming the policy.
#[tokio::test]
async fn a_policy_forced_to_forget_limited_keys_warns_once() {
    use tower::ServiceExt;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let limiter = RateLimiter::new([Policy::per_header(
        "per-api-key",
        Quota::per_hour(NonZeroU32::new(10).unwrap()),
        http::HeaderName::from_static("x-api-key"),
    )])
    .max_keys(100);
    let app = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(RateLimitLayer::new(limiter.clone()));
    for i in 0..5_000u32 {
        let req = http::Request::get("/")
            .header("x-api-key", i)
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 200);
    }
    assert!(
        limiter.tracked_keys()[0] < 5_000,
        "{:?}",
        limiter.tracked_keys()
    );
    let text = captured.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("hardening loosened"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("per-api-key"), "{}", warnings[0]);
}

/// The draft lets a list be split over several `RateLimit` field lines. A handler's own
/// fields (an upstream API's, passed on) in two lines used to lose the second when the layer
/// joined its entry to them: only the first line was read, and the joined value replaced all.
#[tokio::test]
async fn a_field_split_over_lines_keeps_every_entry_when_joined() {
    use axum::response::AppendHeaders;
    use hardening_core::ratelimit::RATELIMIT;
    use tower::ServiceExt;
    let quota = Quota::per_hour(NonZeroU32::new(10).unwrap());
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                let upstream = [
                    (RATELIMIT.clone(), "\"upstream-minute\";r=5;t=30"),
                    (RATELIMIT.clone(), "\"upstream-day\";r=900;t=3600"),
                ];
                (AppendHeaders(upstream), "hi")
            }),
        )
        .layer(RateLimitLayer::new(RateLimiter::new([Policy::global(
            "route", quota,
        )])));
    let request = http::Request::get("/")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let fields: Vec<&str> = response
        .headers()
        .get_all(&RATELIMIT)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        fields.join(", "),
        "\"upstream-minute\";r=5;t=30, \"upstream-day\";r=900;t=3600, \"route\";r=9;t=360",
        "every entry of every line, then the layer's"
    );
}

/// `Hardening::strict()`'s own policy is `per-ip`. A route's `RateLimitLayer` with a policy
/// of that name too put two `"per-ip"` entries in each field (`"per-ip";r=0;t=360,
/// "per-ip";r=49;t=1`): a client reading one entry per name could take `r=49` and meet the
/// route's 429. The fields now carry the route's entry alone (the limit whose 429 names it),
/// on both of `Hardening`'s paths (with security headers and without), and `Hardening` warns
/// once, naming the policy.
#[tokio::test]
async fn a_policy_named_as_hardenings_own_leaves_one_entry_and_is_warned_about_once() {
    use hardening_core::Hardening;
    for hardening in [
        Hardening::strict(),
        Hardening::strict().dangerous_without_security_headers(),
    ] {
        let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
        let addr = serve(one_request_per_client("per-ip").layer(hardening)).await;
        let admitted = http_get(addr, "/", &[]).await;
        assert_eq!(admitted.status, 200);
        assert_eq!(
            (admitted.all("ratelimit"), admitted.all("ratelimit-policy")),
            (vec!["\"per-ip\";r=0;t=360"], vec!["\"per-ip\";q=10;w=3600"]),
            "the route's entries alone"
        );
        let refused = http_get(addr, "/", &[]).await;
        assert_eq!(refused.status, 429);
        assert_eq!(refused.json()["violated-policies"][0], "per-ip");
        assert_eq!(
            refused.all("ratelimit-policy"),
            ["\"per-ip\";q=10;w=3600"],
            "the entry of the limit that refused"
        );
        assert_eq!(
            refused
                .header("ratelimit")
                .unwrap()
                .matches("\"per-ip\"")
                .count(),
            1,
            "{refused:?}"
        );
        let warnings = captured.layer_warnings("Hardening");
        assert_eq!(warnings.len(), 1, "once: {warnings:?}");
        let message = warnings[0]["fields"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "policy `per-ip` of Hardening has the name of a policy of a rate limit further in"
            ),
            "names the policy and the layer: {message}"
        );
        assert!(
            message.contains("Give one of the two policies another name"),
            "says what to change: {message}"
        );
    }
}

/// The standalone layers join their fields the same way: an outer `RateLimitLayer` or
/// `CostLayer` whose limiter shares one of its two policy names with the limit further in
/// keeps only its other entry, and warns once.
#[tokio::test]
async fn nested_layers_sharing_a_policy_name_leave_one_entry_and_warn_once() {
    use hardening_core::ratelimit::{CostLayer, Estimate};
    use tower::ServiceExt;
    let hour = Quota::per_hour(NonZeroU32::new(10).unwrap());
    let minute = Quota::per_minute(NonZeroU32::new(100).unwrap());
    let inner = || {
        Router::new()
            .route("/", get(|| async { "hi" }))
            .layer(RateLimitLayer::new(RateLimiter::new([Policy::global(
                "everyone", hour,
            )])))
    };
    let outer = || {
        RateLimiter::new([
            Policy::global("everyone", minute),
            Policy::global("outer-only", minute),
        ])
    };
    for (layer, app) in [
        (
            "RateLimitLayer",
            inner().layer(RateLimitLayer::new(outer())),
        ),
        (
            "CostLayer",
            inner().layer(CostLayer::new(outer(), Estimate::fixed(1))),
        ),
    ] {
        let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
        for _ in 0..3 {
            let request = http::Request::get("/")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(
                response.headers()["ratelimit-policy"],
                "\"everyone\";q=10;w=3600, \"outer-only\";q=100;w=60",
                "{layer}"
            );
            let ratelimit = response.headers()["ratelimit"].to_str().unwrap();
            assert_eq!(ratelimit.matches("\"everyone\"").count(), 1, "{ratelimit}");
            assert!(ratelimit.contains("\"outer-only\";r="), "{ratelimit}");
        }
        let warnings = captured.layer_warnings(layer);
        assert_eq!(warnings.len(), 1, "once: {warnings:?}");
        assert_eq!(warnings[0]["fields"]["policies"], "[\"everyone\"]");
        let message = warnings[0]["fields"]["message"].as_str().unwrap();
        assert!(
            message.contains("Give one of the two policies another name"),
            "{message}"
        );
    }
}

/// A limit further in that did not count the request (a per-key policy, and a request
/// without the key) used to list its policy in `RateLimit-Policy` all the same, with no
/// `RateLimit` entry: an outer policy of the same name then lost its `RateLimit-Policy` entry
/// and kept its `RateLimit` one, `"api";r=99;t=1` read against `"api";q=10;w=3600`, two
/// limits' entries paired by name. The inner limit now writes neither field for a request it
/// did not count, so the outer entries stand whole, in both fields. Fields a handler set (one
/// `RateLimit-Policy` entry of that name and no `RateLimit` one) still leave the outer entries
/// of the name out of both. On every layer that joins its fields.
#[tokio::test]
async fn a_limit_further_in_that_did_not_count_leaves_the_fields_to_the_outer_one() {
    use hardening_core::Hardening;
    use hardening_core::ratelimit::{CostLayer, Estimate};
    use tower::ServiceExt;
    let hour = Quota::per_hour(NonZeroU32::new(10).unwrap());
    let minute = Quota::per_minute(NonZeroU32::new(100).unwrap());
    // Counts only requests with an API key; the requests below have none.
    let per_key = || {
        Router::new()
            .route("/", get(|| async { "hi" }))
            .layer(RateLimitLayer::new(RateLimiter::new([Policy::per_header(
                "api",
                hour,
                http::HeaderName::from_static("x-api-key"),
            )])))
    };
    // Writes a `RateLimit-Policy` entry named `api` itself, and no `RateLimit` entry.
    let handler_fields = || {
        Router::new().route(
            "/",
            get(|| async { ([("ratelimit-policy", "\"api\";q=10;w=3600")], "hi") }),
        )
    };
    let outer = || {
        RateLimiter::new([
            Policy::global("api", minute),
            Policy::global("outer-only", minute),
        ])
    };
    let (both, outer_only) = (
        "\"api\";q=100;w=60, \"outer-only\";q=100;w=60",
        "\"api\";q=10;w=3600, \"outer-only\";q=100;w=60",
    );
    for (layer, app, policies) in [
        (
            "RateLimitLayer",
            per_key().layer(RateLimitLayer::new(outer())),
            both,
        ),
        (
            "CostLayer",
            per_key().layer(CostLayer::new(outer(), Estimate::fixed(1))),
            both,
        ),
        (
            "RateLimitLayer around the handler's fields",
            handler_fields().layer(RateLimitLayer::new(outer())),
            outer_only,
        ),
    ] {
        let request = http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.headers()["ratelimit-policy"], policies, "{layer}");
        let ratelimit = response.headers()["ratelimit"].to_str().unwrap();
        assert_eq!(
            ratelimit.contains("\"api\""),
            policies == both,
            "{layer}: the outer limit's `api` entry: {ratelimit}"
        );
        assert!(
            ratelimit.contains("\"outer-only\";r="),
            "{layer}: {ratelimit}"
        );
    }
    let per_ip = || RateLimiter::new([Policy::per_client_ip("api", minute)]);
    for hardening in [
        Hardening::strict().rate_limit(per_ip()).unwrap(),
        Hardening::strict()
            .dangerous_without_security_headers()
            .rate_limit(per_ip())
            .unwrap(),
    ] {
        let addr = serve(per_key().layer(hardening.clone())).await;
        let reply = http_get(addr, "/", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.all("ratelimit-policy"), ["\"api\";q=100;w=60"]);
        let ratelimit = reply.all("ratelimit");
        assert_eq!(ratelimit.len(), 1, "{ratelimit:?}");
        assert!(ratelimit[0].starts_with("\"api\";r=99;"), "{ratelimit:?}");
        let addr = serve(handler_fields().layer(hardening)).await;
        let reply = http_get(addr, "/", &[]).await;
        assert_eq!(
            (reply.all("ratelimit"), reply.all("ratelimit-policy")),
            (vec![], vec!["\"api\";q=10;w=3600"]),
            "Hardening's `api` entry beside the handler's policy"
        );
    }
}

/// Two nested `Hardening::strict()` (one on a nested router, under the app's: a supported
/// pattern) have the same `per-ip` policy, `"per-ip";q=100;w=60` in both: the fields keep one
/// entry, and nothing is warned (a client reading them is not misled). They used to warn at
/// the first response that the name is shared, with advice ("give one of the two policies
/// another name") only replacing the default limiter could follow. An inner `Hardening` whose
/// `per-ip` is another definition still leaves the outer entry out, and still warns. On both
/// of the outer `Hardening`'s paths (with security headers and without).
#[tokio::test]
async fn nested_hardenings_warn_of_a_shared_name_only_for_different_definitions() {
    use hardening_core::Hardening;
    use tower::ServiceExt;
    let hour = Quota::per_hour(NonZeroU32::new(10).unwrap());
    let other_definition = || {
        Hardening::strict()
            .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", hour)]))
            .unwrap()
    };
    let outers = [Hardening::strict as fn() -> Hardening, || {
        Hardening::strict().dangerous_without_security_headers()
    }];
    for outer in outers {
        for (inner, policy, warned) in [
            (Hardening::strict(), "\"per-ip\";q=100;w=60", 0),
            (other_definition(), "\"per-ip\";q=10;w=3600", 1),
        ] {
            let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
            let api = Router::new()
                .route("/x", get(|| async { "x" }))
                .layer(inner);
            let app = Router::new().nest("/api", api).layer(outer());
            for _ in 0..2 {
                let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
                let request = http::Request::get("/api/x")
                    .extension(axum::extract::ConnectInfo(peer))
                    .body(axum::body::Body::empty())
                    .unwrap();
                let response = app.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let fields = |name| {
                    let lines = response.headers().get_all(name).iter();
                    lines.map(|v| v.to_str().unwrap()).collect::<Vec<_>>()
                };
                assert_eq!(fields("ratelimit-policy"), [policy], "one entry");
                let ratelimit = fields("ratelimit");
                assert_eq!(ratelimit.len(), 1, "{ratelimit:?}");
                assert_eq!(
                    ratelimit[0].matches("\"per-ip\"").count(),
                    1,
                    "{ratelimit:?}"
                );
            }
            let warnings = captured.layer_warnings("Hardening");
            assert_eq!(warnings.len(), warned, "{policy}: {warnings:?}");
            if warned > 0 {
                assert_eq!(warnings[0]["fields"]["policies"], "[\"per-ip\"]");
            }
        }
    }
}

/// A limit further in with `Hardening::strict()`'s `RateLimit-Policy` entry
/// (`"per-ip";q=100;w=60`, as the README's `RedisLimiter` beside `strict()` has) but a
/// larger burst: the client must not read requests left where the next one is refused. The
/// fields used to keep the inner entry, which said `r=50` on the response before strict's
/// 429 (burst 50). On both of `Hardening`'s paths (with security headers and without).
#[tokio::test]
async fn one_definition_in_two_layers_reports_the_fewer_requests_left() {
    use hardening_core::Hardening;
    let per_minute = Quota::per_minute(NonZeroU32::new(100).unwrap());
    let outers = [Hardening::strict as fn() -> Hardening, || {
        Hardening::strict().dangerous_without_security_headers()
    }];
    for outer in outers {
        let app = Router::new()
            .route("/", get(|| async { "hi" }))
            .layer(RateLimitLayer::new(RateLimiter::new([
                Policy::per_client_ip("per-ip", per_minute),
            ])))
            .layer(outer());
        let addr = serve(app).await;
        assert_eq!(refused_after_none_left(addr).await, 50);
    }
}

/// How many requests `GET /` took before a 429, each response's `RateLimit` having said
/// how many were left.
async fn refused_after_none_left(addr: std::net::SocketAddr) -> usize {
    let mut left = None;
    for i in 0..60 {
        let reply = http_get(addr, "/", &[]).await;
        let field = reply.header("ratelimit").unwrap_or_default().to_owned();
        assert_eq!(field.matches("\"per-ip\"").count(), 1, "{field}");
        if reply.status == 429 {
            assert_eq!(
                left,
                Some(0),
                "request {i} refused after a response said {left:?} left ({field})"
            );
            return i;
        }
        left = field
            .split(';')
            .find_map(|param| param.trim().strip_prefix("r="))
            .and_then(|r| r.parse::<u32>().ok());
    }
    panic!("strict()'s burst of 50 never refused");
}

/// `per-ip` (every request) and `signups`, a `Custom` key that counts `/signup` only (by
/// client IP) and skips every other route.
fn per_ip_and_signups() -> RateLimiter {
    use hardening_core::ratelimit::{KeyFn, KeyKind};
    let signups = KeyFn::new(|keys| {
        let ip = keys.client_ip.filter(|_| keys.route == Some("/signup"))?;
        Some(ip.to_string())
    });
    RateLimiter::new([
        Policy::per_client_ip("per-ip", Quota::per_minute(NonZeroU32::new(100).unwrap())),
        Policy::keyed(
            "signups",
            Quota::per_hour(NonZeroU32::new(10).unwrap()),
            KeyKind::Custom(signups),
        ),
    ])
}

/// `RateLimit-Policy` listed every policy of a limiter on every response, while `RateLimit`
/// had entries only for those that counted the request: `GET /` said
/// `"signups";q=10;w=3600`, a budget `/` never spent, with no `RateLimit` entry to pair it
/// with. Both fields now name only the policies that counted the request, on every layer
/// that writes them: `Hardening` (with security headers and without), `RateLimitLayer`,
/// `CostLayer`.
#[tokio::test]
async fn the_fields_name_only_the_policies_that_counted_the_request() {
    use hardening_core::Hardening;
    use hardening_core::ratelimit::{CostLayer, Estimate};
    let routes = || {
        Router::new()
            .route("/", get(|| async { "hi" }))
            .route("/signup", get(|| async { "welcome" }))
    };
    let apps = [
        (
            "Hardening",
            routes().layer(
                Hardening::strict()
                    .rate_limit(per_ip_and_signups())
                    .unwrap(),
            ),
        ),
        (
            "Hardening without security headers",
            routes().layer(
                Hardening::strict()
                    .dangerous_without_security_headers()
                    .rate_limit(per_ip_and_signups())
                    .unwrap(),
            ),
        ),
        (
            "RateLimitLayer",
            routes().layer(RateLimitLayer::new(per_ip_and_signups())),
        ),
        (
            "CostLayer",
            routes().layer(CostLayer::new(per_ip_and_signups(), Estimate::fixed(1))),
        ),
    ];
    for (layer, app) in apps {
        let addr = serve(app).await;
        let home = http_get(addr, "/", &[]).await;
        assert_eq!(home.status, 200, "{layer}: {home:?}");
        assert_eq!(
            home.all("ratelimit-policy"),
            ["\"per-ip\";q=100;w=60"],
            "{layer}: `signups` did not count `/`"
        );
        let ratelimit = home.all("ratelimit");
        assert_eq!(ratelimit.len(), 1, "{layer}: {ratelimit:?}");
        assert!(
            ratelimit[0].starts_with("\"per-ip\";r=") && !ratelimit[0].contains("signups"),
            "{layer}: {ratelimit:?}"
        );
        let signup = http_get(addr, "/signup", &[]).await;
        assert_eq!(signup.status, 200, "{layer}: {signup:?}");
        assert_eq!(
            signup.all("ratelimit-policy"),
            ["\"per-ip\";q=100;w=60, \"signups\";q=10;w=3600"],
            "{layer}: both counted `/signup`"
        );
        let ratelimit = signup.all("ratelimit").join(", ");
        assert!(
            ratelimit.contains("\"per-ip\";r=") && ratelimit.contains("\"signups\";r=9;"),
            "{layer}: {ratelimit}"
        );
    }
}

/// Answers `Hardening` gives before its limiter (a CORS preflight, an unknown host's 400, an
/// HTTPS redirect) are not counted, yet carried `RateLimit-Policy`: a client or a monitor
/// read the preflight as counted. They carry neither field now; the request after the
/// preflight still does. With security headers and without.
#[tokio::test]
async fn answers_before_the_limiter_carry_no_rate_limit_fields() {
    use hardening_core::headers::HttpsRedirect;
    use hardening_core::{Cors, Hardening};
    use hardening_tests::{exchange, request};
    let strict = || {
        Hardening::strict()
            .cors(Cors::allow_origins(["https://app.example.com"]).unwrap())
            .allowed_hosts(["localhost"])
            .unwrap()
    };
    for hardening in [strict(), strict().dangerous_without_security_headers()] {
        let routes = Router::new().route("/", get(|| async { "hi" }).post(|| async { "ok" }));
        let addr = serve(routes.clone().layer(hardening.clone())).await;
        let preflight = request(
            addr,
            "OPTIONS",
            "/",
            &[
                "origin: https://app.example.com",
                "access-control-request-method: POST",
            ],
        )
        .await;
        assert_eq!(preflight.status, 204, "{preflight:?}");
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        let unknown_host = exchange(
            addr,
            b"GET / HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(unknown_host.status, 400, "{unknown_host:?}");
        let redirecting = hardening.https_redirect(HttpsRedirect::new());
        let redirect_addr = serve(routes.layer(redirecting)).await;
        let redirect = http_get(redirect_addr, "/", &[]).await;
        assert_eq!(redirect.status, 301, "{redirect:?}");
        for reply in [&preflight, &unknown_host, &redirect] {
            assert_eq!(reply.header("ratelimit-policy"), None, "{reply:?}");
            assert_eq!(reply.header("ratelimit"), None, "{reply:?}");
        }
        let counted = request(addr, "POST", "/", &["origin: https://app.example.com"]).await;
        assert_eq!(counted.status, 200, "{counted:?}");
        assert_eq!(
            counted.header("ratelimit-policy"),
            Some("\"per-ip\";q=100;w=60")
        );
        assert!(counted.header("ratelimit").is_some(), "{counted:?}");
    }
}
