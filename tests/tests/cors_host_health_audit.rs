//! Audit of CORS, the host allowlist and the health probes through `Hardening::strict()`,
//! end to end over TCP on 127.0.0.1.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
use hardening_core::{Cors, Hardening, Health};
use hardening_tests::{Reply, exchange, get as http_get, serve};

const APP: &str = "https://app.example.com";

fn routes() -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async { ([("vary", "accept-encoding")], "hello") }),
        )
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/own-vary",
            get(|| async { ([("vary", "Accept, Origin")], "mine") }),
        )
        .route(
            "/teapot",
            get(|| async { (http::StatusCode::IM_A_TEAPOT, [("vary", "accept")], "no") }),
        )
}

fn cors() -> Cors {
    Cors::allow_origins([APP]).unwrap()
}

/// Every token of every `Vary` field, lower case.
fn vary(reply: &Reply) -> Vec<String> {
    reply
        .all("vary")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn raw(request: &str, host: &str, headers: &[&str]) -> String {
    let mut req = format!("{request} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

/// With listed origins, every response says it varies by `Origin` (a shared cache must not
/// hand one origin's answer to another), the errors of other steps included, whatever the
/// origin; the handler's own `Vary` is kept.
#[tokio::test]
async fn every_response_varies_by_origin_and_keeps_the_handlers_vary() {
    let quota = Quota::per_hour(NonZeroU32::new(5).unwrap());
    let hardening = Hardening::strict()
        .cors(cors())
        .allowed_hosts(["localhost", "x"])
        .unwrap()
        .body_limit(8)
        .unwrap()
        .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", quota)]))
        .unwrap();
    let addr = serve(routes().layer(hardening)).await;
    for origin in [APP, "https://evil.example"] {
        let o = format!("origin: {origin}");
        let reply = http_get(addr, "/hello", &[&o]).await;
        assert_eq!(reply.status, 200);
        let v = vary(&reply);
        assert!(v.contains(&"origin".into()), "{origin}: {reply:?}");
        assert!(v.contains(&"accept-encoding".into()), "{origin}: {reply:?}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            (origin == APP).then_some(APP)
        );
        let reply = http_get(addr, "/teapot", &[&o]).await;
        assert_eq!(reply.status, 418);
        assert!(vary(&reply).contains(&"origin".into()), "{reply:?}");
        assert!(vary(&reply).contains(&"accept".into()), "{reply:?}");
    }
    // An unknown host (400), before CORS.
    let reply = exchange(
        addr,
        raw("GET /hello", "evil.example", &[&format!("origin: {APP}")]).as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(vary(&reply).contains(&"origin".into()), "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), None);
    // 413 and 429, after CORS: the listed origin can read them.
    let reply = exchange(
        addr,
        format!(
            "POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\norigin: {APP}\r\n\
             content-length: 20\r\n\r\n01234567890123456789"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(vary(&reply).contains(&"origin".into()), "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    let reply = http_get(addr, "/hello", &[&format!("origin: {APP}")]).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    assert!(vary(&reply).contains(&"origin".into()), "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
}

/// A handler that already varies by `Origin` does not get it a second time.
#[tokio::test]
async fn a_handlers_vary_origin_is_not_repeated() {
    let addr = serve(routes().layer(Hardening::strict().cors(cors()))).await;
    for origin in [APP, "https://evil.example"] {
        let reply = http_get(addr, "/own-vary", &[&format!("origin: {origin}")]).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let v = vary(&reply);
        assert_eq!(v.iter().filter(|t| *t == "origin").count(), 1, "{reply:?}");
        assert!(v.contains(&"accept".into()), "{reply:?}");
    }
}

/// Preflights: answered with `Vary` naming what they depend on; `Access-Control-Request-Headers`
/// parsed as Fetch writes it; the method case-sensitive; no Private Network Access header
/// unless configured; `OPTIONS` without `Access-Control-Request-Method` reaches the router.
#[tokio::test]
async fn preflights() {
    let cors = cors()
        .allow_headers(["content-type", "x-trace"])
        .unwrap()
        .allow_credentials()
        .unwrap()
        .max_age(Duration::from_secs(60));
    let addr = serve(routes().layer(Hardening::strict().cors(cors))).await;
    let preflight = |origin: &str, method: &str, headers: Option<&str>| {
        let mut h = vec![
            format!("origin: {origin}"),
            format!("access-control-request-method: {method}"),
            "access-control-request-private-network: true".to_owned(),
        ];
        if let Some(headers) = headers {
            h.push(format!("access-control-request-headers: {headers}"));
        }
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        raw("OPTIONS /hello", "x", &h)
    };
    let reply = exchange(
        addr,
        preflight(APP, "POST", Some("content-type,x-trace")).as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("60"));
    assert_eq!(reply.header("access-control-allow-private-network"), None);
    let v = vary(&reply);
    assert_eq!(v.iter().filter(|t| *t == "origin").count(), 1, "{reply:?}");
    for name in [
        "origin",
        "access-control-request-method",
        "access-control-request-headers",
    ] {
        assert!(v.contains(&name.into()), "{name}: {reply:?}");
    }
    for (origin, method, headers) in [
        (APP, "post", None),
        (APP, "POST", Some("content-type, x-other")),
        (APP, "DELETE", None),
        ("https://evil.example", "GET", None),
        ("null", "GET", None),
        ("https://app.example.com.evil.com", "GET", None),
        ("https://evil-app.example.com", "GET", None),
    ] {
        let reply = exchange(addr, preflight(origin, method, headers).as_bytes()).await;
        assert_eq!(
            reply.status, 403,
            "{origin} {method} {headers:?}: {reply:?}"
        );
        assert_eq!(reply.header("access-control-allow-origin"), None);
        assert_eq!(reply.header("access-control-allow-credentials"), None);
    }
    // Not a preflight: the router answers (405: only GET there).
    let reply = exchange(
        addr,
        raw("OPTIONS /hello", "x", &[&format!("origin: {APP}")]).as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 405, "{reply:?}");
}

/// Host allowlist over the wire: port, trailing dot, case, IPv6; absolute-form targets are
/// judged by their authority; userinfo, empty and doubled `Host` refused.
#[tokio::test]
async fn host_allowlist_over_the_wire() {
    let hardening = Hardening::strict()
        .allowed_hosts(["api.example.com", "[::1]"])
        .unwrap();
    let addr = serve(routes().layer(hardening)).await;
    for (target, host, status) in [
        ("/hello", "api.example.com", 200),
        ("/hello", "API.Example.COM:8080", 200),
        ("/hello", "api.example.com.", 200),
        ("/hello", "[::1]:8080", 200),
        ("http://api.example.com/hello", "api.example.com", 200),
        ("http://evil.example/hello", "api.example.com", 400),
        ("http://api.example.com/hello", "evil.example", 400),
        ("/hello", "", 400),
        ("/hello", "a@api.example.com", 400),
        ("/hello", "evil.example", 400),
        ("/hello", "api.example.com.evil.example", 400),
    ] {
        let reply = exchange(addr, raw(&format!("GET {target}"), host, &[]).as_bytes()).await;
        assert_eq!(reply.status, status, "{target} {host:?}: {reply:?}");
        if status == 400 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
            assert!(!reply.body.contains("evil"), "{reply:?}");
        }
    }
}

fn failing_health() -> Health {
    Health::new().check("database", || async {
        Err::<(), _>(std::io::Error::other("db-7.internal refused"))
    })
}

/// Readiness detail: a spoofed `X-Forwarded-For` from a peer that is not a trusted proxy
/// does not put the client in the detail networks.
#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_unlock_the_detail() {
    let health = failing_health().detail_for(["10.0.0.0/8"]).unwrap();
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    for spoof in [
        "x-forwarded-for: 10.0.0.1",
        "forwarded: for=10.0.0.1",
        "x-real-ip: 10.0.0.1",
    ] {
        let reply = exchange(addr, raw("GET /readyz", "127.0.0.1", &[spoof]).as_bytes()).await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.json()["detail"], "readiness checks failed: database");
        // "db-7.internal", not "db-7": a request id holds "db-7" when its second group ends
        // in "db".
        assert!(!reply.body.contains("db-7.internal"), "{spoof}: {reply:?}");
    }
}

/// Only the exact probe paths are probes (a query is fine); others reach the router.
#[tokio::test]
async fn probe_paths_and_methods() {
    let addr = serve(routes().layer(Hardening::strict().health(failing_health()))).await;
    for (request, status) in [
        ("GET /healthz", 200),
        ("GET /healthz?x=1", 200),
        ("HEAD /healthz", 200),
        ("GET /readyz?verbose", 503),
        ("GET /healthz/", 404),
        ("GET /HEALTHZ", 404),
        ("GET /%68ealthz", 404),
        ("GET /healthz;x", 404),
    ] {
        let reply = exchange(addr, raw(request, "x", &[]).as_bytes()).await;
        assert_eq!(reply.status, status, "{request}: {reply:?}");
        if request.starts_with("HEAD") {
            assert!(reply.body.is_empty(), "{reply:?}");
        }
    }
}

/// A readiness probe whose client goes away while the checks run (a client that hangs up,
/// an orchestrator's probe timing out) does not make the next probe fail: the run it started
/// still counts, rather than leaving its checks "still running since an earlier probe".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_whose_client_hangs_up_does_not_fail_the_next_one() {
    use tokio::io::AsyncWriteExt;
    let health = Health::new().check("database", || async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<(), std::io::Error>(())
    });
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    let mut hang_up = tokio::net::TcpStream::connect(addr).await.unwrap();
    hang_up
        .write_all(raw("GET /readyz", "x", &[]).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(hang_up);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reply = http_get(addr, "/readyz", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// Probes are quiet in the logs and exempt from rate limits: a failing readiness check is
/// logged once per run of the checks, not once per probe (anyone can send probes as fast as
/// they like; within the reuse window they share one run).
#[tokio::test]
async fn a_failing_check_is_logged_once_per_run_not_once_per_probe() {
    let (captured, _guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    let health = failing_health().reuse_results_for(Duration::from_secs(600));
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    for _ in 0..10 {
        assert_eq!(http_get(addr, "/readyz", &[]).await.status, 503);
    }
    let logs = captured.text();
    assert_eq!(logs.matches("readiness check failed").count(), 1, "{logs}");
}
