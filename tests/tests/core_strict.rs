//! `Hardening::strict()` end to end over real TCP on 127.0.0.1.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use hardening_core::{ClientIp, ConfigError, Cors, Hardening, RequestId};
use hardening_tests::{exchange, get as http_get, serve};

fn routes() -> Router {
    Router::new()
        .route(
            "/ip",
            get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
        )
        .route("/id", get(|id: RequestId| async move { id.to_string() }))
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }),
        )
        .route(
            "/slow-body",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/read-then-slow",
            post(|body: Bytes| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                body.len().to_string()
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("boom: password=hunter2");
                }
                "unreachable"
            }),
        )
        .route(
            "/hello",
            get(|| async { "hello" }).post(|| async { "posted" }),
        )
}

async fn strict() -> std::net::SocketAddr {
    serve(routes().layer(Hardening::strict())).await
}

fn assert_problem(reply: &hardening_tests::Reply, status: u16) -> serde_json::Value {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{reply:?}"
    );
    let body = reply.json();
    assert_eq!(body["status"], status);
    let id = reply.header("x-request-id").expect("x-request-id");
    assert_eq!(body["request_id"], id);
    assert!(!reply.body.contains("hunter2"), "{reply:?}");
    body
}

#[tokio::test]
async fn request_id_is_generated_and_only_trusted_proxies_may_set_it() {
    let addr = strict().await;
    let reply = http_get(addr, "/id", &["x-request-id: chosen-by-client"]).await;
    assert_eq!(reply.status, 200);
    assert_ne!(
        reply.body, "chosen-by-client",
        "an untrusted peer chose its request id"
    );
    assert_eq!(reply.header("x-request-id"), Some(reply.body.as_str()));
    assert!(RequestId::parse(&reply.body).is_ok());

    let trusting =
        serve(routes().layer(Hardening::strict().trusted_proxies(["127.0.0.1"]).unwrap())).await;
    let reply = http_get(trusting, "/id", &["x-request-id: from-the-proxy.1"]).await;
    assert_eq!(reply.body, "from-the-proxy.1");
    // Two ids, one of them perhaps the client's (a proxy that appends rather than
    // replaces): neither is believed.
    let reply = http_get(
        trusting,
        "/id",
        &[
            "x-request-id: chosen-by-client",
            "x-request-id: from-the-proxy.2",
        ],
    )
    .await;
    assert!(RequestId::parse(&reply.body).is_ok());
    assert!(
        reply.body != "chosen-by-client" && reply.body != "from-the-proxy.2",
        "{}",
        reply.body
    );
    let long = format!("x-request-id: {}", "a".repeat(65));
    for bad in [
        long.as_str(),
        "x-request-id: has space",
        "x-request-id: <script>",
    ] {
        let reply = http_get(trusting, "/id", &[bad]).await;
        assert_eq!(reply.status, 200);
        assert!(RequestId::parse(&reply.body).is_ok());
        assert!(
            !bad.contains(&reply.body),
            "malformed id {bad:?} was accepted"
        );
    }
}

#[tokio::test]
async fn spoofed_forwarding_headers_do_not_change_the_client_ip() {
    let addr = strict().await;
    for spoof in [
        "x-forwarded-for: 6.6.6.6",
        "forwarded: for=6.6.6.6",
        "x-real-ip: 6.6.6.6",
    ] {
        let reply = http_get(addr, "/ip", &[spoof]).await;
        assert_eq!(reply.body, "127.0.0.1", "{spoof}");
    }
    let behind_proxy = serve(
        routes().layer(
            Hardening::strict()
                .trusted_proxies(["127.0.0.0/8"])
                .unwrap(),
        ),
    )
    .await;
    let reply = http_get(
        behind_proxy,
        "/ip",
        &["x-forwarded-for: 6.6.6.6, 198.51.100.7"],
    )
    .await;
    assert_eq!(reply.body, "198.51.100.7", "right-most untrusted hop");
    // The proxy writes X-Forwarded-For (the default): a `Forwarded` is the client's own.
    let reply = http_get(behind_proxy, "/ip", &["forwarded: for=6.6.6.6"]).await;
    assert_eq!(reply.body, "127.0.0.1");
    let behind_rfc7239_proxy = serve(
        routes().layer(
            Hardening::strict()
                .trusted_proxies(["127.0.0.0/8"])
                .unwrap()
                .forwarded_header(hardening_core::ForwardedHeader::Forwarded),
        ),
    )
    .await;
    let reply = http_get(
        behind_rfc7239_proxy,
        "/ip",
        &["forwarded: for=6.6.6.6, for=\"[2001:db8::7]:443\""],
    )
    .await;
    assert_eq!(reply.body, "2001:db8::7");
    // ... and there an `X-Forwarded-For` is the client's own.
    let reply = http_get(
        behind_rfc7239_proxy,
        "/ip",
        &["x-forwarded-for: 6.6.6.6", "forwarded: for=198.51.100.7"],
    )
    .await;
    assert_eq!(reply.body, "198.51.100.7");
    // A quoted value a proxy passed on (the client's Host) may hold `,` and `;` (RFC 7239
    // §4): neither starts an element or a parameter that could name another client.
    for forwarded in [
        r#"forwarded: for=198.51.100.7;host="a,for=6.6.6.6""#,
        r#"forwarded: proto=http;host="a;for=6.6.6.6";for=198.51.100.7"#,
    ] {
        let reply = http_get(behind_rfc7239_proxy, "/ip", &[forwarded]).await;
        assert_eq!(reply.body, "198.51.100.7", "{forwarded}");
    }
}

/// Who says the client used HTTPS: behind `X-Forwarded-For` proxies the last
/// `X-Forwarded-Proto` value (the nearest proxy's; a client's own comes before it); behind
/// `Forwarded` proxies the `proto` of the element naming the client, never an
/// `X-Forwarded-Proto` (the client's own there). Plain HTTP gets no HSTS and is redirected.
#[tokio::test]
async fn only_the_trusted_proxys_word_makes_a_request_https() {
    let redirecting = |hardening: Hardening| {
        serve(
            routes().layer(hardening.https_redirect(hardening_core::headers::HttpsRedirect::new())),
        )
    };
    let behind_xff = redirecting(
        Hardening::strict()
            .trusted_proxies(["127.0.0.0/8"])
            .unwrap(),
    )
    .await;
    let behind_rfc7239 = redirecting(
        Hardening::strict()
            .trusted_proxies(["127.0.0.0/8"])
            .unwrap()
            .forwarded_header(hardening_core::ForwardedHeader::Forwarded),
    )
    .await;
    let plain = [
        (
            behind_xff,
            vec!["x-forwarded-proto: https", "x-forwarded-proto: http"],
        ),
        (behind_xff, vec!["x-forwarded-proto: https, http"]),
        (
            behind_rfc7239,
            vec![
                "forwarded: for=198.51.100.7;proto=http",
                "x-forwarded-proto: https",
            ],
        ),
        (
            behind_rfc7239,
            vec!["forwarded: for=6.6.6.6;proto=https, for=198.51.100.7"],
        ),
    ];
    for (addr, headers) in &plain {
        let reply = http_get(*addr, "/hello", headers).await;
        assert_eq!(reply.status, 301, "{headers:?}: {reply:?}");
        assert_eq!(
            reply.header("strict-transport-security"),
            None,
            "{headers:?}"
        );
    }
    let https = [
        (
            behind_xff,
            vec!["x-forwarded-proto: http", "x-forwarded-proto: https"],
        ),
        (
            behind_rfc7239,
            vec![
                "forwarded: for=198.51.100.7;proto=https",
                "x-forwarded-proto: http",
            ],
        ),
    ];
    for (addr, headers) in &https {
        let reply = http_get(*addr, "/hello", headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {reply:?}");
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=63072000; includeSubDomains"),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn body_limit_applies_to_declared_and_chunked_bodies() {
    let addr = serve(routes().layer(Hardening::strict().body_limit(1000).unwrap())).await;
    let small = exchange(
        addr,
        b"POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    assert_eq!((small.status, small.body.as_str()), (200, "5"));

    let declared = exchange(
        addr,
        b"POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 5000\r\n\r\n",
    )
    .await;
    assert_problem(&declared, 413);

    let mut chunked =
        b"POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'x'; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let reply = exchange(addr, &chunked).await;
    assert_problem(&reply, 413);
}

#[tokio::test]
async fn query_parameter_limit() {
    let addr = strict().await;
    let fifty: Vec<String> = (0..50).map(|i| format!("p{i}=1")).collect();
    let reply = http_get(addr, &format!("/hello?{}", fifty.join("&")), &[]).await;
    assert_eq!(reply.status, 200);
    let thousands: Vec<String> = (0..5000).map(|i| format!("p{i}")).collect();
    let reply = http_get(addr, &format!("/hello?{}", thousands.join("&")), &[]).await;
    let body = assert_problem(&reply, 400);
    assert!(body["detail"].as_str().unwrap().contains("at most 50"));
}

#[tokio::test]
async fn timeouts_answer_503_and_slow_bodies_408() {
    let hardening = Hardening::strict()
        .timeout(Duration::from_millis(200))
        .unwrap();
    let addr = serve(routes().layer(hardening)).await;
    let reply = http_get(addr, "/slow", &[]).await;
    let body = assert_problem(&reply, 503);
    assert_eq!(body["detail"], "the request took too long to process");

    // A client that declares a body and never sends it: its slowness, not the service's
    // (RFC 9110 §15.5.9), and the connection is closed.
    let reply = exchange(
        addr,
        b"POST /slow-body HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc",
    )
    .await;
    let body = assert_problem(&reply, 408);
    assert_eq!(body["detail"], "the request body arrived too slowly");
    assert!(
        reply
            .headers
            .iter()
            .any(|(name, value)| name == "connection" && value == "close"),
        "{reply:?}"
    );
    // A body read whole, then a slow handler: the service's slowness.
    let reply = exchange(
        addr,
        b"POST /read-then-slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 3\r\n\r\nabc",
    )
    .await;
    let body = assert_problem(&reply, 503);
    assert_eq!(body["detail"], "the request took too long to process");
}

#[tokio::test]
async fn panics_answer_500_without_the_message() {
    let addr = strict().await;
    let reply = http_get(addr, "/panic", &[]).await;
    let body = assert_problem(&reply, 500);
    assert!(!reply.body.contains("boom"), "{body}");
}

#[tokio::test]
async fn cors_allowlist() {
    let strict_addr = strict().await;
    let preflight = |origin: &'static str, method: &'static str| {
        format!(
            "OPTIONS /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\norigin: {origin}\r\n\
             access-control-request-method: {method}\r\n\r\n"
        )
    };
    // Strict: no cross-origin access at all.
    let reply = exchange(
        strict_addr,
        preflight("https://app.example.com", "POST").as_bytes(),
    )
    .await;
    assert_problem(&reply, 403);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    // Other cross-origin requests are served like any other, with no CORS headers.
    let reply = http_get(strict_addr, "/hello", &["origin: https://app.example.com"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("vary"), None);
    // `OPTIONS` with an `Origin` but no `Access-Control-Request-Method` is not a preflight:
    // it goes to the router (which allows only GET there), with no CORS headers.
    let reply = exchange(
        strict_addr,
        b"OPTIONS /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\norigin: https://app.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("access-control-allow-origin"), None);

    let cors = Cors::allow_origins(["https://app.example.com"]).unwrap();
    let addr = serve(routes().layer(Hardening::strict().cors(cors))).await;
    let reply = exchange(
        addr,
        preflight("https://app.example.com", "POST").as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        reply
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );

    let reply = exchange(addr, preflight("https://evil.example", "POST").as_bytes()).await;
    assert_problem(&reply, 403);
    assert_eq!(reply.header("access-control-allow-origin"), None);

    let reply = http_get(addr, "/hello", &["origin: https://app.example.com"]).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let reply = http_get(addr, "/hello", &["origin: https://evil.example"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("vary"), Some("origin"));
}

#[test]
fn misconfiguration_fails_at_build_time() {
    assert_eq!(
        Cors::allow_origins(["*"])
            .unwrap()
            .allow_credentials()
            .unwrap_err(),
        ConfigError::WildcardWithCredentials
    );
    let err = Hardening::strict()
        .trusted_proxies(["10.0.0.0/40"])
        .unwrap_err();
    assert!(
        err.to_string().contains("prefix length must be 0 to 32"),
        "{err}"
    );
    assert!(
        Hardening::strict()
            .allowed_hosts(["https://example.com"])
            .is_err()
    );
    assert!(Hardening::strict().body_limit(0).is_err());
    // A header with a setting of its own is not a fixed header; the message names the setting.
    let err = hardening_core::headers::HeaderPolicy::api()
        .header("Strict-Transport-Security", "max-age=0")
        .map_err(ConfigError::from)
        .unwrap_err();
    assert!(err.to_string().contains("hsts("), "{err}");
    // A policy keyed by principal would never count: Hardening runs before the auth layer.
    use hardening_core::ratelimit::{KeyKind, Policy, Quota, RateLimiter};
    let hour = Quota::per_hour(std::num::NonZeroU32::new(10).unwrap());
    for policy in [
        Policy::per_principal("per-user", hour),
        Policy::keyed(
            "per-user-route",
            hour,
            KeyKind::Composite(vec![KeyKind::Route, KeyKind::Principal]),
        ),
    ] {
        let name = policy.name().to_string();
        let err = Hardening::strict()
            .rate_limit(RateLimiter::new([
                Policy::per_client_ip("per-ip", hour),
                policy,
            ]))
            .unwrap_err();
        assert_eq!(err, ConfigError::PolicyNeedsPrincipal(name.clone()));
        assert!(
            err.to_string()
                .contains("RateLimitLayer inside the auth layer"),
            "{err}"
        );
    }
    // No policy would limit nothing; two of one name could not be told apart. Both were
    // taken without a word. A limiter cannot have either now: `try_new` refuses them, and
    // `?` makes that the setting's error.
    let with_policies = |policies: Vec<Policy>| -> Result<Hardening, ConfigError> {
        Hardening::strict().rate_limit(RateLimiter::try_new(policies)?)
    };
    let err = with_policies(Vec::new()).unwrap_err();
    assert_eq!(err, ConfigError::NoRateLimitPolicies);
    assert!(
        err.to_string().contains("dangerous_without_rate_limit"),
        "{err}"
    );
    let err = with_policies(vec![
        Policy::per_client_ip("api", hour),
        Policy::global("api", hour),
    ])
    .unwrap_err();
    assert_eq!(err, ConfigError::DuplicatePolicyName("api".to_owned()));
    assert_eq!(
        err.to_string(),
        "two rate-limit policies are named `api`: give each its own name (it is what the \
         RateLimit headers, 429 problems and logs report)"
    );
    let err = with_policies(vec![Policy::global(" ", hour)]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::RateLimit(message)
            if message.starts_with("rate-limit policy 1 (of 1) is named \" \", which is blank")),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_host_is_rejected() {
    let hardening = Hardening::strict()
        .allowed_hosts(["api.example.com"])
        .unwrap();
    let addr = serve(routes().layer(hardening)).await;
    let ok = exchange(
        addr,
        b"GET /hello HTTP/1.1\r\nhost: api.example.com:8080\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(ok.status, 200);
    for bad in [
        &b"GET /hello HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n"[..],
        // More than the allowed name: userinfo, a path, a second Host, another target; a
        // port no TCP connection has.
        b"GET /hello HTTP/1.1\r\nhost: api.example.com:@evil.example\r\nconnection: close\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nhost: api.example.com:99999\r\nconnection: close\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nhost: evil.example/api.example.com\r\nconnection: close\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nhost: api.example.com\r\nhost: evil.example\r\nconnection: close\r\n\r\n",
        b"GET http://evil.example/hello HTTP/1.1\r\nhost: api.example.com\r\nconnection: close\r\n\r\n",
    ] {
        let reply = exchange(addr, bad).await;
        assert_problem(&reply, 400);
    }
}

#[tokio::test]
async fn not_found_and_wrong_method_are_problems() {
    let addr = strict().await;
    let reply = http_get(addr, "/nowhere", &[]).await;
    assert_problem(&reply, 404);
    let reply = exchange(
        addr,
        b"DELETE /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_problem(&reply, 405);
}

/// A readiness check that blocks its thread (a synchronous driver's ping) cannot time itself
/// out; `/readyz` still answers 503 soon after the check timeout instead of waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_readiness_check_still_times_out() {
    let health = hardening_core::Health::new()
        .check("db", || async {
            std::thread::sleep(Duration::from_secs(3));
            Ok::<(), std::io::Error>(())
        })
        .check_timeout(Duration::from_millis(100))
        .unwrap();
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    let started = std::time::Instant::now();
    let reply = http_get(addr, "/readyz", &[]).await;
    let took = started.elapsed();
    assert_problem(&reply, 503);
    assert!(reply.body.contains("db"), "{reply:?}");
    assert!(
        took < Duration::from_millis(2_000),
        "a check with a 100 ms timeout held /readyz for {took:?}"
    );
}

#[tokio::test]
async fn health_endpoints() {
    let health = hardening_core::Health::new()
        .check("cache", || async { Ok::<(), std::io::Error>(()) })
        .check("database", || async {
            Err::<(), _>(std::io::Error::other("connection refused by db-7"))
        })
        .check("queue", || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<(), std::io::Error>(())
        })
        .check_timeout(Duration::from_millis(100))
        .unwrap();
    let hardening = Hardening::strict()
        .allowed_hosts(["api.example.com"])
        .unwrap()
        .health(health.clone());
    let addr = serve(routes().layer(hardening)).await;

    // Liveness answers whatever the Host (probes use IPs) and does no work.
    let live = http_get(addr, "/healthz", &[]).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.json()["status"], "ok");
    assert!(live.header("x-request-id").is_some());

    // Readiness from loopback: failed checks named, with detail.
    let ready = http_get(addr, "/readyz", &[]).await;
    let body = assert_problem(&ready, 503);
    assert_eq!(body["detail"], "readiness checks failed: database, queue");
    assert_eq!(body["checks"]["cache"], "ok");
    assert_eq!(
        body["checks"]["database"]["error"],
        "connection refused by db-7"
    );
    assert_eq!(body["checks"]["queue"]["error"], "timed out after 100 ms");

    // Outside the detail networks: names only.
    let hardening = Hardening::strict().health(health.detail_for(["10.0.0.0/8"]).unwrap());
    let addr = serve(routes().layer(hardening)).await;
    let ready = http_get(addr, "/readyz", &[]).await;
    let body = assert_problem(&ready, 503);
    assert!(body.get("checks").is_none(), "{body}");
    // (Not "db-7" alone: a request id holds "db-7" when its second group ends in "db".)
    assert!(!ready.body.contains("connection refused"), "{}", ready.body);

    // All checks passing.
    let ok =
        hardening_core::Health::new().check("cache", || async { Ok::<(), std::io::Error>(()) });
    let addr = serve(routes().layer(Hardening::strict().health(ok))).await;
    let ready = http_get(addr, "/readyz", &[]).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["checks"]["cache"], "ok");
}

/// A GET /readyz with this `Host` and extra header lines.
async fn ready_with(addr: std::net::SocketAddr, host: &str, headers: &[&str]) -> serde_json::Value {
    let mut req = format!("GET /readyz HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let reply = exchange(addr, req.as_bytes()).await;
    assert_problem(&reply, 503)
}

#[tokio::test]
async fn readiness_detail_needs_a_named_client_a_safe_host_and_hides_secrets() {
    let health = || {
        hardening_core::Health::new()
            .check("database", || async {
                Err::<(), _>(std::io::Error::other(
                    "connect postgres://app:hunter2@db-7.internal:5432 refused",
                ))
            })
            .check(
                "cache",
                || -> std::future::Ready<Result<(), std::io::Error>> {
                    panic!("pool not initialised")
                },
            )
    };
    let addr = serve(
        routes().layer(
            Hardening::strict()
                .allowed_hosts(["api.example.com"])
                .unwrap()
                .health(health()),
        ),
    )
    .await;
    // From loopback with a Host the allowlist accepts, an IP or `localhost`: the detail, its
    // secrets redacted; a check that panics before its future fails as a check.
    let port = addr.port();
    for host in [
        "api.example.com".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
    ] {
        let body = ready_with(addr, &host, &[]).await;
        assert_eq!(
            body["detail"], "readiness checks failed: database, cache",
            "{host}"
        );
        assert_eq!(
            body["checks"]["database"]["error"],
            "connect postgres://app:[redacted]@db-7.internal:5432 refused",
            "{host}"
        );
        assert_eq!(
            body["checks"]["cache"]["error"], "the check panicked",
            "{host}"
        );
    }
    // Another name (a DNS-rebinding page in a browser on this machine): names only.
    let body = ready_with(addr, "rebind.attacker.example", &[]).await;
    assert_eq!(body["detail"], "readiness checks failed: database, cache");
    assert!(body.get("checks").is_none(), "{body}");

    // Behind a trusted proxy on loopback that does not name the client: names only.
    let addr = serve(
        routes().layer(
            Hardening::strict()
                .trusted_proxies(["127.0.0.1"])
                .unwrap()
                .forwarded_header(hardening_core::ForwardedHeader::Forwarded)
                .health(health()),
        ),
    )
    .await;
    for hidden in [
        &[][..],
        &["forwarded: for=_hidden"][..],
        &["forwarded: for=unknown"][..],
        &["forwarded: for=\"1.2.3.4:_port\""][..],
        &["forwarded: for=6.6.6.6, for=_x"][..],
    ] {
        let body = ready_with(addr, "localhost", hidden).await;
        assert!(body.get("checks").is_none(), "{hidden:?}: {body}");
    }
    // One it names, inside the detail networks (loopback by default): the detail.
    let body = ready_with(addr, "localhost", &["forwarded: for=127.0.0.1"]).await;
    assert!(body["checks"]["database"].is_object(), "{body}");
    // One outside them: names only.
    let body = ready_with(addr, "localhost", &["forwarded: for=198.51.100.7"]).await;
    assert!(body.get("checks").is_none(), "{body}");
}

#[tokio::test]
async fn readiness_probes_together_or_within_the_window_share_one_run_of_the_checks() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let counted = |runs: &Arc<AtomicUsize>| {
        let runs = runs.clone();
        hardening_core::Health::new().check("database", move || {
            runs.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<(), std::io::Error>(())
            }
        })
    };
    // A long window, so that the test does not depend on how fast the host is.
    let runs = Arc::new(AtomicUsize::new(0));
    let health = counted(&runs).reuse_results_for(Duration::from_secs(600));
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    let together: Vec<_> = (0..10)
        .map(|_| tokio::spawn(async move { http_get(addr, "/readyz", &[]).await.status }))
        .collect();
    for probe in together {
        assert_eq!(probe.await.unwrap(), 200);
    }
    for _ in 0..5 {
        assert_eq!(http_get(addr, "/readyz", &[]).await.status, 200);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one run for 15 probes");

    // No window: every probe runs the checks.
    let runs = Arc::new(AtomicUsize::new(0));
    let health = counted(&runs).reuse_results_for(Duration::ZERO);
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    for _ in 0..3 {
        assert_eq!(http_get(addr, "/readyz", &[]).await.status, 200);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn security_headers_cookies_and_https() {
    let app = || {
        routes().route(
            "/cookie",
            get(|| async {
                (
                    [
                        ("set-cookie", "sid=abc; Path=/"),
                        ("server", "nginx/1.0"),
                        ("x-powered-by", "PHP/5"),
                    ],
                    "ok",
                )
            }),
        )
    };
    let addr = serve(app().layer(Hardening::strict())).await;
    let reply = http_get(addr, "/cookie", &["x-forwarded-proto: https"]).await;
    assert_eq!(reply.status, 200);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("x-dns-prefetch-control", "off"),
        ("x-permitted-cross-domain-policies", "none"),
    ] {
        assert_eq!(reply.header(name), Some(value), "{name}");
    }
    assert!(
        reply
            .header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert!(
        reply
            .header("permissions-policy")
            .unwrap()
            .contains("camera=()")
    );
    assert_eq!(reply.header("server"), None);
    assert_eq!(reply.header("x-powered-by"), None);
    assert_eq!(
        reply.header("set-cookie"),
        Some("sid=abc; Path=/; HttpOnly; SameSite=Lax; Secure")
    );
    assert_eq!(
        reply.header("strict-transport-security"),
        None,
        "an untrusted peer's X-Forwarded-Proto does not make a request HTTPS"
    );
    // Problems get the headers too.
    let reply = http_get(addr, "/nowhere", &["authorization: Bearer x"]).await;
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    // Behind a trusted proxy that terminates TLS: HSTS; and plain HTTP gets redirected.
    let hardening = Hardening::strict()
        .trusted_proxies(["127.0.0.1"])
        .unwrap()
        .https_redirect(hardening_core::headers::HttpsRedirect::new());
    let addr = serve(app().layer(hardening)).await;
    let reply = http_get(addr, "/cookie", &["x-forwarded-proto: https"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=63072000; includeSubDomains")
    );
    let reply = http_get(addr, "/cookie?a=1", &[]).await;
    assert_eq!(reply.status, 301);
    assert_eq!(
        reply.header("location"),
        Some("https://localhost/cookie?a=1")
    );
    assert_eq!(reply.header("strict-transport-security"), None);
    let reply = exchange(addr, b"POST /upload HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").await;
    assert_eq!(reply.status, 308);
    // A Host no redirect may go to (the browser would land on evil.example) is refused.
    let reply = exchange(
        addr,
        b"GET /cookie HTTP/1.1\r\nhost: localhost:@evil.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_problem(&reply, 400);
    assert_eq!(reply.header("location"), None);
    // Health checks are answered before the redirect.
    assert_eq!(http_get(addr, "/healthz", &[]).await.status, 200);
}

/// DESIGN §4: `no-store` on responses to authenticated requests, however they were
/// authenticated: an API key header, or a principal the service put on its response (a
/// signed link, a key in a header of the service's own naming).
#[tokio::test]
async fn authenticated_responses_are_not_stored_however_authenticated() {
    let app = Router::new()
        .route("/public", get(|| async { "for everyone" }))
        .route(
            "/me",
            get(|| async {
                (
                    axum::Extension(hardening_core::errors::PrincipalId::new("key-7")),
                    "account 7's data",
                )
            }),
        );
    let addr = serve(app.layer(Hardening::strict())).await;
    for (path, headers, stored) in [
        ("/public", vec![], true),
        ("/public", vec!["x-api-key: k-123"], false),
        ("/public", vec!["api-key: k-123"], false),
        ("/public", vec!["x-auth-token: t-1"], false),
        ("/me?sig=abc", vec![], false),
    ] {
        let reply = http_get(addr, path, &headers).await;
        assert_eq!(reply.status, 200, "{path} {headers:?}");
        let expected = if stored { None } else { Some("no-store") };
        assert_eq!(
            reply.header("cache-control"),
            expected,
            "{path} {headers:?}"
        );
    }
}

#[tokio::test]
async fn behind_tls_sends_hsts_over_the_plain_hop() {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let addr = serve(app.clone().layer(Hardening::strict().behind_tls())).await;
    let reply = http_get(addr, "/", &[]).await;
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=63072000; includeSubDomains")
    );
    let addr = serve(app.layer(Hardening::strict())).await;
    assert_eq!(
        http_get(addr, "/", &[])
            .await
            .header("strict-transport-security"),
        None
    );
}

#[tokio::test]
async fn html_preset_gives_each_response_its_own_nonce() {
    use hardening_core::headers::{CspNonce, HeaderPolicy};
    let app = Router::new().route(
        "/page",
        get(|nonce: CspNonce| async move { nonce.to_string() }),
    );
    let hardening = Hardening::strict()
        .security_headers(HeaderPolicy::html())
        .unwrap();
    let addr = serve(app.layer(hardening)).await;
    let a = http_get(addr, "/page", &[]).await;
    let b = http_get(addr, "/page", &[]).await;
    assert_ne!(a.body, b.body);
    for reply in [&a, &b] {
        let csp = reply.header("content-security-policy").unwrap();
        assert!(csp.contains(&format!("'nonce-{}'", reply.body)), "{csp}");
    }
}

/// A `Hardening` around a router that nests another (a supported set-up: the inner one
/// reuses the outer's request id), or around a `SecurityHeadersLayer`, or inside one: each
/// made its own nonce, the handler got the inner one, the browser the outer one's CSP, and
/// no script of the page ran. The outermost layer's nonce is now the one all of them use.
#[tokio::test]
async fn nested_hardening_csp_does_not_allow_the_handlers_nonce() {
    use hardening_core::headers::{CspNonce, HeaderPolicy, SecurityHeadersLayer};
    let page = || Router::new().route("/n", get(|n: CspNonce| async move { n.to_string() }));
    let html = || {
        Hardening::strict()
            .security_headers(HeaderPolicy::html())
            .unwrap()
    };
    let layer = || SecurityHeadersLayer::new(HeaderPolicy::html().build().unwrap());
    let apps = [
        (
            "Hardening in Hardening",
            Router::new()
                .nest("/app", page().layer(html()))
                .layer(html()),
        ),
        (
            "SecurityHeadersLayer in Hardening",
            Router::new()
                .nest("/app", page().layer(layer()))
                .layer(html()),
        ),
        (
            "Hardening in SecurityHeadersLayer",
            Router::new()
                .nest("/app", page().layer(html()))
                .layer(layer()),
        ),
    ];
    for (nesting, app) in apps {
        let addr = serve(app).await;
        let reply = http_get(addr, "/app/n", &[]).await;
        assert_eq!(reply.status, 200, "{nesting}: {reply:?}");
        let csp = reply.header("content-security-policy").unwrap();
        assert!(
            csp.contains(&format!("'nonce-{}'", reply.body)),
            "{nesting}: handler's nonce {} not in {csp}",
            reply.body
        );
    }
}

#[tokio::test]
async fn cross_site_cookie_posts_are_refused() {
    let addr = strict().await;
    let post = |headers: &str| {
        format!(
            "POST /hello HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 0\r\n{headers}\r\n"
        )
    };
    let blocked = exchange(
        addr,
        post("cookie: __Host-session=abc\r\nsec-fetch-site: cross-site\r\norigin: https://evil.example\r\n").as_bytes(),
    )
    .await;
    let body = assert_problem(&blocked, 403);
    assert!(body["detail"].as_str().unwrap().contains("cross-origin"));
    let same_origin = exchange(
        addr,
        post("cookie: __Host-session=abc\r\nsec-fetch-site: same-origin\r\n").as_bytes(),
    )
    .await;
    assert_eq!(
        (same_origin.status, same_origin.body.as_str()),
        (200, "posted")
    );
    let bearer = exchange(
        addr,
        post("cookie: a=1\r\nauthorization: Bearer t\r\nsec-fetch-site: cross-site\r\n").as_bytes(),
    )
    .await;
    assert_eq!(
        bearer.status, 200,
        "bearer-token requests are not CSRF-able"
    );
    let old_browser = exchange(
        addr,
        post("cookie: a=1\r\norigin: http://localhost\r\n").as_bytes(),
    )
    .await;
    assert_eq!(old_browser.status, 200, "Origin matching Host passes");
}

/// Login CSRF: another site's form posts the attacker's credentials to the login route so
/// that the victim ends up signed in to the attacker's account. It carries no cookie, but it
/// is a cross-site navigation, so it is refused; scripts' cross-origin calls are not.
#[tokio::test]
async fn cross_site_login_forms_without_cookies_are_refused() {
    let login_calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let calls = login_calls.clone();
    let app = Router::new()
        .route(
            "/login",
            post(move || async move {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                "signed in"
            }),
        )
        .route("/saml/acs", post(|| async { "assertion taken" }));
    let hardening = Hardening::strict().csrf(
        hardening_core::auth::Csrf::new()
            .trust_origins(["https://idp.example.com"])
            .unwrap()
            .dangerous_exempt_path("/saml/acs")
            .unwrap(),
    );
    let addr = serve(app.layer(hardening)).await;
    let post = |path: &str, headers: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: 28\r\n{headers}\r\n\
             user=attacker&password=pw123"
        )
    };
    let forged = exchange(
        addr,
        post(
            "/login",
            "sec-fetch-site: cross-site\r\nsec-fetch-mode: navigate\r\norigin: https://evil.example\r\n",
        )
        .as_bytes(),
    )
    .await;
    let body = assert_problem(&forged, 403);
    assert!(body["detail"].as_str().unwrap().contains("cross-origin"));
    assert!(!forged.body.contains("pw123"), "{forged:?}");
    assert_eq!(login_calls.load(std::sync::atomic::Ordering::SeqCst), 0);

    for (path, headers, why) in [
        (
            "/login",
            "sec-fetch-site: same-origin\r\nsec-fetch-mode: navigate\r\norigin: http://localhost\r\n",
            "this site's own login form",
        ),
        (
            "/login",
            "sec-fetch-site: cross-site\r\nsec-fetch-mode: cors\r\norigin: https://evil.example\r\n",
            "a script's call: a Lax cookie from its answer is not kept",
        ),
        (
            "/login",
            "sec-fetch-site: cross-site\r\nsec-fetch-mode: navigate\r\norigin: https://idp.example.com\r\n",
            "a trusted origin's form",
        ),
        ("/login", "", "not a browser"),
        (
            "/saml/acs",
            "sec-fetch-site: cross-site\r\nsec-fetch-mode: navigate\r\norigin: null\r\n",
            "an exempted path",
        ),
    ] {
        let reply = exchange(addr, post(path, headers).as_bytes()).await;
        assert_eq!(reply.status, 200, "{why}: {reply:?}");
    }
    assert_eq!(login_calls.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[tokio::test]
async fn behind_tls_a_plain_http_origin_of_this_host_cannot_post() {
    // An old browser (no Sec-Fetch-Site) on a page an active attacker injected into
    // http://localhost posts to the HTTPS site with its cookie: another origin.
    let addr = serve(routes().layer(Hardening::strict().behind_tls())).await;
    let post = |origin: &str| {
        format!(
            "POST /hello HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 0\r\ncookie: a=1\r\norigin: {origin}\r\n\r\n"
        )
    };
    let downgraded = exchange(addr, post("http://localhost").as_bytes()).await;
    assert_problem(&downgraded, 403);
    let same_origin = exchange(addr, post("https://localhost").as_bytes()).await;
    assert_eq!(same_origin.status, 200, "{same_origin:?}");
}

#[tokio::test]
async fn rate_limited_requests_get_429_problems_and_ietf_headers() {
    use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
    use std::num::NonZeroU32;
    let quota = Quota::per_hour(NonZeroU32::new(3).unwrap());
    let hardening = Hardening::strict()
        .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", quota)]))
        .unwrap();
    let addr = serve(routes().layer(hardening)).await;
    for remaining in ["2", "1", "0"] {
        let ok = http_get(addr, "/hello", &[]).await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.header("ratelimit-policy"), Some("\"per-ip\";q=3;w=3600"));
        assert!(
            ok.header("ratelimit")
                .unwrap()
                .contains(&format!(";r={remaining};")),
            "{ok:?}"
        );
    }
    let limited = http_get(addr, "/hello", &[]).await;
    let body = assert_problem(&limited, 429);
    assert_eq!(body["type"], hardening_core::errors::types::QUOTA_EXCEEDED);
    assert_eq!(body["violated-policies"][0], "per-ip");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1100..=1200).contains(&retry), "retry-after {retry}");
    assert!(limited.header("ratelimit").unwrap().contains(";r=0;"));
    // Health checks are not rate limited.
    assert_eq!(http_get(addr, "/healthz", &[]).await.status, 200);
}

#[tokio::test]
async fn concurrency_cap_holds_a_slot_until_the_response_is_done() {
    use hardening_core::ratelimit::ConcurrencyLimiter;
    use std::num::NonZeroU32;
    let app = Router::new().route(
        "/wait",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        }),
    );
    let cap = ConcurrencyLimiter::per_client(NonZeroU32::new(1).unwrap());
    let addr = serve(app.layer(Hardening::strict().concurrency_limit(cap.clone()))).await;
    let first = tokio::spawn(async move { http_get(addr, "/wait", &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = http_get(addr, "/wait", &[]).await;
    let body = assert_problem(&second, 429);
    assert_eq!(body["violated-policies"][0], "concurrency");
    assert_eq!(first.await.unwrap().status, 200);
    // Once the first response's body has been sent and dropped, the slot is free again.
    let mut released = false;
    for _ in 0..100 {
        if cap.in_flight() == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(released, "slot not released");
    assert_eq!(http_get(addr, "/wait", &[]).await.status, 200);
}

/// The slot is the response body's: held until the body has been read, not released when the
/// handler returns.
#[tokio::test]
async fn concurrency_slot_lives_as_long_as_the_response_body() {
    use hardening_core::ratelimit::ConcurrencyLimiter;
    use std::num::NonZeroU32;
    use tower::ServiceExt;
    let cap = ConcurrencyLimiter::per_client(NonZeroU32::new(1).unwrap());
    let app = Router::new()
        .route("/hello", get(|| async { "a chunk" }))
        .layer(Hardening::strict().concurrency_limit(cap.clone()));
    let mut req = http::Request::get("/hello")
        .body(axum::body::Body::empty())
        .unwrap();
    let peer: std::net::SocketAddr = ([127, 0, 0, 1], 40_000).into();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(cap.in_flight(), 1, "held while the body is unsent");
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"a chunk");
    assert_eq!(cap.in_flight(), 0, "released with the body");
}

/// Any tower service, not only an axum router: a panic in its `call` (not in its future) is
/// caught by the layer too, and answered as the same 500 problem.
#[tokio::test]
async fn a_panic_in_a_services_call_answers_500_without_the_message() {
    use tower::{Layer, ServiceExt};
    let panicking = tower::service_fn(
        |_: http::Request<axum::body::Body>| -> std::future::Ready<
            Result<http::Response<axum::body::Body>, std::convert::Infallible>,
        > { panic!("boom in call: password=hunter2") },
    );
    let res = Hardening::strict()
        .layer(panicking)
        .oneshot(http::Request::new(axum::body::Body::empty()))
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().contains_key("x-request-id"));
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        !body.contains("boom") && !body.contains("hunter2"),
        "{body}"
    );
}

/// A CSRF check in shadow mode refuses nothing: said once, when it is set up, as the other
/// loosenings are (before, only each request it let through said so).
#[test]
fn csrf_in_shadow_mode_is_logged_as_a_loosening() {
    let (captured, guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    let hardening = Hardening::strict().csrf(hardening_core::auth::Csrf::new().shadow());
    drop(guard);
    drop(hardening);
    let text = captured.text();
    let loosened: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("hardening loosened") && l.contains("Csrf::shadow"))
        .collect();
    assert_eq!(loosened.len(), 1, "{text}");
}

/// A CSRF check in shadow mode is for finding the routes it would break; its log line had no
/// request id, route or client (it ran before the request's span), so nothing said which
/// request it meant. Each request it would refuse is now a `csrf_shadow` security event with
/// the request's id, which the access log joins to its route, and the request goes on.
#[tokio::test]
async fn csrf_in_shadow_mode_reports_each_request_it_would_refuse_with_its_id() {
    let (captured, _guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    let hardening = Hardening::strict().csrf(hardening_core::auth::Csrf::new().shadow());
    let addr = serve(routes().layer(hardening)).await;
    let post = |headers: &str| {
        format!(
            "POST /hello HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
             cookie: sid=1\r\ncontent-length: 0\r\n{headers}\r\n"
        )
    };
    let cross = exchange(
        addr,
        post("sec-fetch-site: cross-site\r\norigin: https://evil.example\r\n").as_bytes(),
    )
    .await;
    assert_eq!((cross.status, cross.body.as_str()), (200, "posted"));
    let same = exchange(
        addr,
        post("sec-fetch-site: same-origin\r\norigin: http://localhost\r\n").as_bytes(),
    )
    .await;
    assert_eq!(same.status, 200);
    let events = captured.security_events();
    let shadowed: Vec<_> = events
        .iter()
        .filter(|(name, _)| name == "csrf_shadow")
        .collect();
    assert_eq!(shadowed.len(), 1, "{events:?}");
    let fields = &shadowed[0].1["fields"];
    assert_eq!(
        fields["request_id"].as_str(),
        cross.header("x-request-id"),
        "{fields}"
    );
    assert_eq!(fields["client.address"], "127.0.0.1", "{fields}");
    assert!(
        fields["message"].as_str().unwrap().contains("SecFetchSite"),
        "{fields}"
    );
    assert!(
        !events.iter().any(|(name, _)| name == "csrf_blocked"),
        "{events:?}"
    );
}

/// The `hardening loosened` warnings (setting, message) logged while `setup` builds a layer.
fn loosenings(setup: &dyn Fn() -> Hardening) -> Vec<(String, String)> {
    let (captured, guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    drop(setup());
    drop(guard);
    captured.loosenings()
}

/// A timeout longer than the default loosens it, and was taken without a word: it is logged
/// at start-up with the setting, the value and the default, set on the builder or through
/// `HARDENING_TIMEOUT_SECS`. The default and shorter ones are not logged.
#[test]
fn a_timeout_longer_than_the_default_is_logged_as_a_loosening() {
    use hardening_core::{DEFAULT_TIMEOUT, HardeningConfig};
    for quiet in [Duration::from_secs(5), DEFAULT_TIMEOUT] {
        let warnings = loosenings(&|| Hardening::strict().timeout(quiet).unwrap());
        assert_eq!(warnings, [], "{quiet:?}");
    }
    let long = || {
        Hardening::strict()
            .timeout(Duration::from_secs(120))
            .unwrap()
    };
    let from_env = || {
        HardeningConfig::from_vars([("HARDENING_TIMEOUT_SECS", "120")])
            .unwrap()
            .build()
            .unwrap()
    };
    // Set through the variable, the warning names it.
    for (setup, by) in [
        (&long as &dyn Fn() -> Hardening, ""),
        (&from_env, " by HARDENING_TIMEOUT_SECS"),
    ] {
        assert_eq!(
            loosenings(setup),
            [(
                "timeout".to_owned(),
                format!("hardening loosened{by}: timeout is 120s, longer than the default 30s")
            )]
        );
    }
}

/// A body or query-parameter limit above its default loosens it, and was taken without a
/// word (as timeouts were): each is logged at start-up, set on the builder or through its
/// variable. The defaults and lower limits are not logged.
#[test]
fn limits_above_their_defaults_are_logged_as_loosenings() {
    use hardening_core::{DEFAULT_BODY_LIMIT, DEFAULT_QUERY_PARAM_LIMIT, HardeningConfig};
    let quiet = loosenings(&|| {
        Hardening::strict()
            .body_limit(DEFAULT_BODY_LIMIT)
            .and_then(|h| h.body_limit(1024))
            .and_then(|h| h.query_param_limit(DEFAULT_QUERY_PARAM_LIMIT))
            .and_then(|h| h.query_param_limit(5))
            .unwrap()
    });
    assert_eq!(quiet, []);
    let expected = |body_by: &str, query_by: &str| {
        [
            (
                "body_limit".to_owned(),
                format!(
                    "hardening loosened{body_by}: body_limit is 10485760, larger than the \
                     default 1048576"
                ),
            ),
            (
                "query_param_limit".to_owned(),
                format!(
                    "hardening loosened{query_by}: query_param_limit is 500, more than the \
                     default 50"
                ),
            ),
        ]
    };
    let builder = || {
        Hardening::strict()
            .body_limit(10 * 1024 * 1024)
            .and_then(|h| h.query_param_limit(500))
            .unwrap()
    };
    let from_env = || {
        HardeningConfig::from_vars([
            ("HARDENING_BODY_LIMIT", "10485760"),
            ("HARDENING_QUERY_PARAM_LIMIT", "500"),
        ])
        .unwrap()
        .build()
        .unwrap()
    };
    assert_eq!(loosenings(&builder), expected("", ""));
    // Set through the variables, each warning names its own; the builder's steps after
    // `build` name none.
    assert_eq!(
        loosenings(&from_env),
        expected(
            " by HARDENING_BODY_LIMIT",
            " by HARDENING_QUERY_PARAM_LIMIT"
        )
    );
    let after = || from_env().timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(
        loosenings(&after)[2],
        (
            "timeout".to_owned(),
            "hardening loosened: timeout is 60s, longer than the default 30s".to_owned()
        )
    );
}

/// [`routes`] under `hardening`, and the warnings about `setting` that applying it gave.
fn warnings_applying(hardening: Hardening, setting: &str) -> (Vec<String>, Router) {
    let (captured, guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    // `with_state` applies the layer to every route now.
    let app: Router = routes().layer(hardening).with_state(());
    drop(guard);
    (captured.setting_warnings(setting), app)
}

/// `forwarded_header` is read only from trusted proxies: set without any, it was ignored
/// without a word (the client IP stays the peer). Applying the layer warns, once however
/// many routes it wraps; with trusted proxies, set before or after it, nothing is said.
#[tokio::test]
async fn a_forwarded_header_without_trusted_proxies_is_warned_of_once() {
    use hardening_core::ForwardedHeader::Forwarded;
    let warnings = |hardening| warnings_applying(hardening, "forwarded_header");
    let (warned, app) = warnings(Hardening::strict().forwarded_header(Forwarded));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("forwarded_header(ForwardedHeader::Forwarded) is ignored")
            && warned[0].contains("trusted_proxies(..)"),
        "{warned:?}"
    );
    let addr = serve(app).await;
    let reply = http_get(addr, "/ip", &["forwarded: for=198.51.100.7"]).await;
    assert_eq!(reply.body, "127.0.0.1", "the header is indeed not read");

    for quiet in [
        Hardening::strict(),
        Hardening::strict()
            .forwarded_header(Forwarded)
            .trusted_proxies(["10.0.0.0/8"])
            .unwrap(),
        Hardening::strict()
            .trusted_proxies(["10.0.0.0/8"])
            .unwrap()
            .forwarded_header(Forwarded),
    ] {
        assert_eq!(warnings(quiet).0, Vec::<String>::new());
    }
}

/// An HTTPS redirect to the request's own `Host` with no host allowlist goes wherever a
/// client's `Host` says; a shared cache keyed on the path alone could keep such a permanent
/// redirect for everyone. Applying the layer warns, once however many routes it wraps; with
/// an allowlist or a fixed host, nothing is said.
#[tokio::test]
async fn an_https_redirect_to_any_host_is_warned_of_once() {
    use hardening_core::headers::HttpsRedirect;
    let warnings = |hardening| warnings_applying(hardening, "https_redirect");
    let (warned, app) = warnings(Hardening::strict().https_redirect(HttpsRedirect::new()));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("allowed_hosts(..)") && warned[0].contains("to_host(..)"),
        "{warned:?}"
    );
    // What it warns of: the redirect goes to the host the client named.
    let addr = serve(app).await;
    let raw = b"GET /ip HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n";
    let reply = exchange(addr, raw).await;
    assert_eq!(reply.status, 301);
    assert_eq!(reply.header("location"), Some("https://evil.example/ip"));

    for quiet in [
        Hardening::strict()
            .https_redirect(HttpsRedirect::new())
            .allowed_hosts(["example.com"])
            .unwrap(),
        Hardening::strict().https_redirect(HttpsRedirect::new().to_host("example.com").unwrap()),
        Hardening::strict(),
    ] {
        assert_eq!(warnings(quiet).0, Vec::<String>::new());
    }
}

/// Over TCP: a streamed body that panics after its first chunk is cut off (no final chunk,
/// nothing of the panic on the wire), and the server goes on serving.
#[tokio::test]
async fn a_streamed_body_that_panics_is_cut_off_and_the_server_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (captured, _guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    let app = routes().route(
        "/stream",
        get(|| async { axum::body::Body::new(hardening_tests::PanicsAfterOneChunk::default()) }),
    );
    let addr = serve(app.layer(Hardening::strict())).await;
    let raw = tokio::time::timeout(Duration::from_secs(10), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /stream HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        // The server closes the connection (or resets it) after the error.
        let _ = stream.read_to_end(&mut raw).await;
        String::from_utf8_lossy(&raw).into_owned()
    })
    .await
    .expect("the server closed the connection");
    // Whatever of the response was flushed before the panic (hyper may have held the head
    // and the first chunk back), never a complete one.
    assert!(raw.is_empty() || raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        !raw.ends_with("0\r\n\r\n"),
        "the response was not cut off: {raw}"
    );
    assert!(!raw.contains("lost the stream"), "{raw}");
    assert_eq!(http_get(addr, "/hello", &[]).await.status, 200);
    // Caught where the body is polled (tokio would have caught it too, silently).
    assert_eq!(captured.security_event_names(), ["panicked"]);
}
