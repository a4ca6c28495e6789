//! `Health` end to end: what probes get besides the status, and checks that misbehave.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardening_core::{Hardening, Health};
use hardening_tests::{exchange, get as http_get, serve};

fn app(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "the app's own" }))
        .layer(Hardening::strict().health(health))
}

fn failing() -> Result<(), std::io::Error> {
    Err(std::io::Error::other("down"))
}

/// Probes get the security headers and a request id like every response, on custom paths
/// too; other methods, and the default paths once moved, reach the app.
#[tokio::test]
async fn probes_get_security_headers_and_request_ids() {
    let health = Health::new()
        .paths("/-/live", "/-/ready")
        .unwrap()
        .check("db", || async { failing() });
    let addr = serve(app(health)).await;
    for (request, status) in [
        ("GET /-/live", 200),
        ("GET /-/ready", 503),
        ("HEAD /-/ready", 503),
    ] {
        let reply = exchange(
            addr,
            format!("{request} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(reply.status, status, "{request}: {reply:?}");
        assert!(reply.header("x-request-id").is_some(), "{request}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let reply = http_get(addr, "/healthz", &[]).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "the app's own"));
    let reply = exchange(
        addr,
        b"POST /-/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 404);
}

/// `Duration::MAX` as the check timeout (no timeout) used to overflow the probe's deadline
/// and answer every probe 500.
#[tokio::test]
async fn a_check_timeout_of_duration_max_waits_for_the_checks() {
    let health = Health::new()
        .check("db", || async { Ok::<(), std::io::Error>(()) })
        .check_timeout(Duration::MAX)
        .unwrap();
    let addr = serve(app(health)).await;
    let reply = http_get(addr, "/readyz", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// A check timeout of zero failed every check that waited at all, so readiness answered 503
/// for good: refused when the health endpoints are built.
#[test]
fn a_check_timeout_of_zero_is_refused() {
    let refused = Health::new().check_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "check_timeout must be greater than zero"
    );
    assert!(Health::new().check_timeout(Duration::from_nanos(1)).is_ok());
}

/// Two checks of one name: the detail does not show "ok" for the name the 503 says failed.
#[tokio::test]
async fn a_failed_check_is_not_hidden_by_another_of_its_name() {
    let health = Health::new()
        .check("db", || async { failing() })
        .check("db", || async { Ok::<(), std::io::Error>(()) });
    let addr = serve(app(health)).await;
    let body = http_get(addr, "/readyz", &[]).await.json();
    assert_eq!(body["detail"], "readiness checks failed: db");
    assert_eq!(body["checks"]["db"]["error"], "down", "{body}");
}

/// A check that blocks its thread past the timeout (the first time) is not started again by
/// the next probes while it still runs (each would hold another thread): they report it
/// failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_still_blocking_its_thread_is_not_started_again() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let health = Health::new()
        .check("db", move || {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    std::thread::sleep(Duration::from_millis(1500));
                }
                Ok::<(), std::io::Error>(())
            }
        })
        .check_timeout(Duration::from_millis(50))
        .unwrap()
        .reuse_results_for(Duration::ZERO);
    let addr = serve(app(health)).await;
    let first = http_get(addr, "/readyz", &[]).await.json();
    assert_eq!(first["checks"]["db"]["error"], "timed out after 50 ms");
    for _ in 0..3 {
        let body = http_get(addr, "/readyz", &[]).await.json();
        assert_eq!(
            body["checks"]["db"]["error"], "still running since an earlier probe",
            "{body}"
        );
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the blocked check was started again"
    );
    // Once it has returned, it runs again.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if http_get(addr, "/readyz", &[]).await.status == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "the check never ran again");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// Probes are exempt from rate limits, yet their responses carried `RateLimit-Policy` (under
/// `Hardening::strict()`, whose `per-ip` policy is on): a client or monitor reading it took
/// the probe as counted. Now they carry neither `RateLimit` field; other responses still do.
#[tokio::test]
async fn probes_carry_no_rate_limit_fields() {
    let addr = serve(app(Health::new())).await;
    for path in ["/healthz", "/readyz"] {
        for _ in 0..3 {
            let reply = http_get(addr, path, &[]).await;
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
            assert_eq!(reply.header("ratelimit-policy"), None, "{path}: {reply:?}");
            assert_eq!(reply.header("ratelimit"), None, "{path}: {reply:?}");
        }
    }
    // The same without the security headers (their template writes the fields otherwise).
    let bare = Router::new().layer(
        Hardening::strict()
            .dangerous_without_security_headers()
            .health(Health::new()),
    );
    let addr_bare = serve(bare).await;
    let reply = http_get(addr_bare, "/healthz", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("ratelimit-policy"), None, "{reply:?}");
    // A request the limiter counted still says under which policy.
    let reply = http_get(addr, "/elsewhere", &[]).await;
    assert_eq!(reply.status, 404, "{reply:?}");
    assert!(reply.header("ratelimit-policy").is_some(), "{reply:?}");
    assert!(reply.header("ratelimit").is_some(), "{reply:?}");
}
