//! Audit of the health probes: checks that panic, hang or quote secrets, many probes at once,
//! who sees the detail (peers, trusted proxies, hosts), probe paths that collide with the
//! app's routes, methods other than GET, rate limits and the access log.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
use hardening_core::{Hardening, Health};
use hardening_tests::{Captured, exchange, get as http_get, serve, wait_until};
use http::{Request, StatusCode};
use tower::ServiceExt;

fn routes() -> Router {
    Router::new()
        .route("/other", get(|| async { "other" }))
        .route(
            "/status",
            get(|| async { "the app's status" }).post(|| async { "posted" }),
        )
}

fn ok() -> Result<(), std::io::Error> {
    Ok(())
}

/// A check that panics (with a secret in its message) and one that never answers fail on
/// their own, named, while the others pass; the panicking one runs again on the next probe.
/// (Each under a timeout of its own: a panic hook that prints a backtrace, with
/// `RUST_BACKTRACE=1` in a debug build, can take longer than a hanging check's short one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_panics_or_hangs_fails_alone_and_runs_again() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let panicking = Health::new()
        .check("boom", move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                panic!("pool broken: password=hunter2");
                #[allow(unreachable_code)]
                ok()
            }
        })
        .check("fine", || async { ok() })
        .check_timeout(Duration::from_secs(60))
        .unwrap()
        .reuse_results_for(Duration::ZERO);
    let hanging = Health::new()
        .check("stuck", || {
            std::future::pending::<Result<(), std::io::Error>>()
        })
        .check("fine", || async { ok() })
        .check_timeout(Duration::from_millis(50))
        .unwrap()
        .reuse_results_for(Duration::ZERO);
    for (health, failed, error) in [
        (panicking, "boom", "the check panicked"),
        (hanging, "stuck", "timed out after 50 ms"),
    ] {
        let addr = serve(routes().layer(Hardening::strict().health(health))).await;
        for probe in 1..=2 {
            let reply = http_get(addr, "/readyz", &[]).await;
            assert_eq!(reply.status, 503, "{reply:?}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
            let body = reply.json();
            assert_eq!(body["detail"], format!("readiness checks failed: {failed}"));
            assert_eq!(body["checks"][failed]["error"], error, "{body}");
            assert_eq!(body["checks"]["fine"], "ok");
            assert!(body["request_id"].is_string(), "{body}");
            assert!(!reply.body.contains("hunter2"), "{reply:?}");
            if failed == "boom" {
                assert_eq!(
                    runs.load(Ordering::SeqCst),
                    probe,
                    "the panicked check ran again"
                );
            }
        }
        // Liveness does no work, whatever the checks do.
        assert_eq!(http_get(addr, "/healthz", &[]).await.status, 200);
    }
}

/// A check's error quoting a secret shows in the detail with the secret redacted; outside the
/// detail networks no error text is shown at all.
#[tokio::test]
async fn check_errors_that_quote_secrets_are_redacted() {
    let errors: &[(&str, &str)] = &[
        (
            "pg",
            "connect postgres://app:hunter2@db-7.internal:5432/app refused",
        ),
        ("redis", "redis://:s3cr3t-redis@cache:6379 unreachable"),
        ("vault", "login failed: password=hunter3 user=app"),
        (
            "api",
            "upstream said 401 to Authorization: Bearer abcdef0123456789",
        ),
        (
            "cfg",
            r#"invalid config: DbConfig { user: "app", password: "hunter4" }"#,
        ),
    ];
    let mut health = Health::new();
    for (name, error) in errors {
        health = health.check(*name, move || async move {
            Err::<(), _>(std::io::Error::other(*error))
        });
    }
    let secrets = [
        "hunter2",
        "s3cr3t-redis",
        "hunter3",
        "abcdef0123456789",
        "hunter4",
    ];
    let app = routes().layer(Hardening::strict().health(health.clone()));
    let addr = serve(app).await;
    let reply = http_get(addr, "/readyz", &[]).await;
    let body = reply.json();
    assert_eq!(
        body["detail"],
        "readiness checks failed: pg, redis, vault, api, cfg"
    );
    for (name, _) in errors {
        let error = body["checks"][name]["error"].as_str().unwrap();
        assert!(error.contains("[redacted]"), "{name}: {error}");
    }
    for secret in secrets {
        assert!(!reply.body.contains(secret), "{secret}: {}", reply.body);
    }
    // Outside the detail networks: the names only.
    let health = health.detail_for(["10.0.0.0/8"]).unwrap();
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    let reply = http_get(addr, "/readyz", &[]).await;
    assert!(reply.json().get("checks").is_none(), "{reply:?}");
    // Each error's first word is no run of hex digits: the body holds a random request id.
    for (_, error) in errors {
        let quoted = error.split_whitespace().next().unwrap();
        assert!(!reply.body.contains(quoted), "{quoted}: {}", reply.body);
    }
}

/// Many probes at once while a check hangs past its timeout: every one answers 503 naming
/// it, and the check ran once for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_probes_while_a_check_hangs_share_one_timed_out_run() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let health = Health::new()
        .check("queue", move || {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), std::io::Error>>()
        })
        .check_timeout(Duration::from_millis(100))
        .unwrap()
        // Long, so that the test does not depend on how fast the host is.
        .reuse_results_for(Duration::from_secs(600));
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    let probes: Vec<_> = (0..40)
        .map(|i| {
            tokio::spawn(async move {
                let path = if i % 2 == 0 { "/readyz" } else { "/readyz?i=1" };
                http_get(addr, path, &[]).await
            })
        })
        .collect();
    for probe in probes {
        let reply = probe.await.unwrap();
        assert_eq!(reply.status, 503, "{reply:?}");
        assert_eq!(reply.json()["detail"], "readiness checks failed: queue");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one run for 40 probes");
}

/// Probes that arrive while the checks run get that run's results or the next run's, never a
/// queue of runs: with `reuse_results_for(Duration::ZERO)` each probe used to run the checks in
/// turn, so the last of N probes waited N runs (flooding `/readyz` made the orchestrator's own
/// probe time out). The first run is held until every probe has arrived; the check names its
/// run in its error, so each answer says which run it came from.
#[tokio::test]
async fn probes_arriving_during_a_run_share_it_or_the_next() {
    // The window; the runs that may answer the probes that arrived during the first.
    for (window, late_runs) in [
        (Duration::ZERO, &["run 2"][..]),
        (Duration::from_millis(1), &["run 1", "run 2"][..]),
        (Duration::from_secs(600), &["run 1"][..]),
    ] {
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (counted, gated) = (runs.clone(), gate.clone());
        let health = Health::new()
            .check("db", move || {
                let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
                let gate = gated.clone();
                async move {
                    gate.acquire().await.unwrap().forget();
                    Err::<(), _>(std::io::Error::other(format!("run {run}")))
                }
            })
            .check_timeout(Duration::from_secs(600))
            .unwrap()
            .reuse_results_for(window);
        // Outside the layer, which has the probe once this counts it (one thread: nothing
        // runs in between).
        let arrived = Arc::new(AtomicUsize::new(0));
        let counter = arrived.clone();
        let app = routes().layer(Hardening::strict().health(health)).layer(
            tower::util::MapRequestLayer::new(move |req: axum::extract::Request| {
                counter.fetch_add(1, Ordering::SeqCst);
                req
            }),
        );
        let addr = serve(app).await;
        let probe = || {
            tokio::spawn(async move {
                let body = http_get(addr, "/readyz", &[]).await.json();
                body["checks"]["db"]["error"].as_str().unwrap().to_owned()
            })
        };
        let first = probe();
        wait_until("the first run started", || runs.load(Ordering::SeqCst) == 1).await;
        let late: Vec<_> = (1..20).map(|_| probe()).collect();
        wait_until("every probe arrived", || {
            arrived.load(Ordering::SeqCst) == 20
        })
        .await;
        gate.add_permits(1000);
        assert_eq!(first.await.unwrap(), "run 1", "window {window:?}");
        let mut got = Vec::new();
        for probe in late {
            got.push(probe.await.unwrap());
        }
        assert!(
            got.iter().all(|run| late_runs.contains(&run.as_str())),
            "window {window:?}: the probes that arrived during run 1 got {got:?}"
        );
        let ran = runs.load(Ordering::SeqCst);
        assert!(ran <= 2, "window {window:?}: {ran} runs for 20 probes");
        // Results older than the window are not served: a window later, a new run.
        tokio::time::sleep(window.min(Duration::from_secs(1)) * 2).await;
        let expected = if window > Duration::from_secs(1) {
            "run 1".to_owned()
        } else {
            format!("run {}", ran + 1)
        };
        assert_eq!(probe().await.unwrap(), expected, "window {window:?}");
    }
}

/// Who sees the detail: a peer inside the detail networks, or a client a trusted proxy names
/// inside them, with a `Host` no other site can have; not a peer outside them, whatever it
/// claims, nor a client the proxy does not name.
#[tokio::test]
async fn the_detail_goes_to_clients_inside_the_networks_and_no_one_else() {
    let health = Health::new()
        .check("database", || async {
            Err::<(), _>(std::io::Error::other("db-7.internal refused"))
        })
        .detail_for(["10.0.0.0/8"])
        .unwrap();
    let hardening = Hardening::strict()
        .trusted_proxies(["10.9.9.9"])
        .unwrap()
        .health(health);
    let app = routes().layer(hardening);
    for (peer, host, xff, detail) in [
        ("10.0.0.5", "localhost", None, true),
        ("10.0.0.5", "10.0.0.1:8080", Some("203.0.113.7"), true),
        ("10.0.0.5", "rebind.attacker.example", None, false),
        ("203.0.113.7", "localhost", None, false),
        ("203.0.113.7", "localhost", Some("10.0.0.5"), false),
        ("10.9.9.9", "localhost", None, false),
        ("10.9.9.9", "localhost", Some("203.0.113.7"), false),
        (
            "10.9.9.9",
            "localhost",
            Some("10.0.0.5, 203.0.113.7"),
            false,
        ),
        ("10.9.9.9", "localhost", Some("10.0.0.5"), true),
        ("10.9.9.9", "localhost", Some("203.0.113.7, 10.0.0.5"), true),
        // Every hop trusted: the first is the client.
        ("10.9.9.9", "localhost", Some("10.9.9.9"), true),
    ] {
        let mut req = Request::get("/readyz").header("host", host);
        if let Some(xff) = xff {
            req = req.header("x-forwarded-for", xff);
        }
        let mut req = req.body(Body::empty()).unwrap();
        let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let res = app.clone().oneshot(req).await.unwrap();
        let case = format!("{peer} {host} {xff:?}");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{case}");
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["detail"], "readiness checks failed: database",
            "{case}"
        );
        assert_eq!(body.get("checks").is_some(), detail, "{case}: {body}");
        if !detail {
            assert!(
                !body.to_string().contains("db-7.internal"),
                "{case}: {body}"
            );
        }
    }
}

/// The host the detail goes by is every host the request names: for an absolute-form target
/// the server takes the target's (RFC 9112 §3.2.2), and the `Host` beside it must name the
/// same one. Reading `Host` alone showed the detail to `GET http://evil.example/readyz` with
/// `Host: 127.0.0.1`.
#[tokio::test]
async fn an_absolute_form_target_and_its_host_must_agree_for_the_detail() {
    let health = || {
        Health::new().check("database", || async {
            Err::<(), _>(std::io::Error::other("db-7.internal refused"))
        })
    };
    let any_host = serve(routes().layer(Hardening::strict().health(health()))).await;
    let allowlist = Hardening::strict()
        .allowed_hosts(["api.example.com"])
        .unwrap()
        .health(health());
    let allowlist = serve(routes().layer(allowlist)).await;
    for (addr, target, host, detail) in [
        (any_host, "/readyz", Some("127.0.0.1"), true),
        (
            any_host,
            "http://127.0.0.1/readyz",
            Some("127.0.0.1:80"),
            true,
        ),
        (
            any_host,
            "http://localhost:3000/readyz",
            Some("LOCALHOST"),
            true,
        ),
        (any_host, "http://[::1]/readyz", Some("[::1]"), true),
        (any_host, "/readyz", Some("localhost."), true),
        // Two `Host` fields, even alike: a bad request (RFC 9112 §3.2), no host to go by.
        (
            any_host,
            "/readyz",
            Some("127.0.0.1\r\nhost: 127.0.0.1"),
            false,
        ),
        (any_host, "http://127.0.0.1/readyz", None, true),
        (any_host, "/readyz", Some("evil.example"), false),
        (
            any_host,
            "http://evil.example/readyz",
            Some("127.0.0.1"),
            false,
        ),
        (
            any_host,
            "http://127.0.0.1/readyz",
            Some("evil.example"),
            false,
        ),
        (any_host, "http://10.0.0.1/readyz", Some("127.0.0.1"), false),
        (any_host, "http://evil.example/readyz", None, false),
        (
            any_host,
            "http://user@127.0.0.1/readyz",
            Some("127.0.0.1"),
            false,
        ),
        (
            allowlist,
            "http://api.example.com/readyz",
            Some("api.example.com"),
            true,
        ),
        (
            allowlist,
            "http://api.example.com/readyz",
            Some("127.0.0.1"),
            false,
        ),
        (
            allowlist,
            "http://127.0.0.1/readyz",
            Some("api.example.com"),
            false,
        ),
    ] {
        let host = host.map(|h| format!("host: {h}\r\n")).unwrap_or_default();
        let request = format!("GET {target} HTTP/1.1\r\n{host}connection: close\r\n\r\n");
        let reply = exchange(addr, request.as_bytes()).await;
        let case = format!("{request:?}");
        // Without the detail the probe still answers, with the names only.
        assert_eq!(reply.status, 503, "{case}: {reply:?}");
        let body = reply.json();
        assert_eq!(
            body["detail"], "readiness checks failed: database",
            "{case}"
        );
        assert_eq!(body.get("checks").is_some(), detail, "{case}: {body}");
        assert!(body["request_id"].is_string(), "{case}: {body}");
    }
}

/// Probe paths that are also the app's routes: GET and HEAD are probes (not rate-limited,
/// whatever the limiter says), other methods reach the app and its limits.
#[tokio::test]
async fn probe_paths_on_app_routes_take_get_and_head_only() {
    let quota = Quota::per_hour(NonZeroU32::new(1).unwrap());
    let hardening = Hardening::strict()
        .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", quota)]))
        .unwrap()
        .health(
            Health::new()
                .paths("/status", "/other")
                .unwrap()
                .check("db", || async { ok() }),
        );
    let addr = serve(routes().layer(hardening)).await;
    let request = |line: &str| {
        format!("{line} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
    };
    // The one request the quota allows.
    assert_eq!(
        exchange(addr, request("POST /status").as_bytes())
            .await
            .body,
        "posted"
    );
    for _ in 0..3 {
        for (line, status, body) in [
            ("GET /status", 200, r#"{"status":"ok"}"#),
            ("HEAD /status", 200, ""),
            // `Host: x` is no IP or `localhost`: no detail.
            ("GET /other", 200, r#"{"status":"ok"}"#),
            ("HEAD /other", 200, ""),
        ] {
            let reply = exchange(addr, request(line).as_bytes()).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (status, body),
                "{line}"
            );
            assert_eq!(reply.header("content-type"), Some("application/json"));
        }
    }
    for line in [
        "POST /status",
        "PUT /status",
        "DELETE /other",
        "POST /other",
    ] {
        let reply = exchange(addr, request(line).as_bytes()).await;
        assert_eq!(reply.status, 429, "{line}: {reply:?}");
    }
}

/// Probes are left out of the access log (and log no security event) unless
/// `Health::log_requests` is set; other requests are logged as ever.
#[tokio::test]
async fn probes_are_quiet_in_the_access_log_unless_asked() {
    let failing = || {
        Health::new().check("db", || async {
            Err::<(), _>(std::io::Error::other("down"))
        })
    };
    let access_events = |captured: &Captured| {
        captured
            .json_lines()
            .into_iter()
            .filter(|l| l["target"] == hardening_core::ACCESS_TARGET)
            .count()
    };
    for (health, probes_logged) in [(failing(), false), (failing().log_requests(), true)] {
        let (captured, guard) = Captured::json_logs(tracing::Level::INFO);
        let addr = serve(routes().layer(Hardening::strict().health(health))).await;
        for path in ["/healthz", "/readyz", "/healthz", "/readyz"] {
            http_get(addr, path, &[]).await;
        }
        let probes = access_events(&captured);
        assert_eq!(captured.security_event_names(), Vec::<String>::new());
        http_get(addr, "/other", &[]).await;
        let all = access_events(&captured);
        drop(guard);
        assert_eq!(
            probes,
            if probes_logged { 4 } else { 0 },
            "{}",
            captured.text()
        );
        assert_eq!(all, probes + 1, "{}", captured.text());
    }
}

/// A check that fails with this suite's own `Error::internal(cause)` (what an app's database
/// helper returns to its handlers too) showed "internal error" and nothing more in the
/// detail: `Error`'s text is generic on purpose, and its cause, the one thing the detail is
/// for, was left out. The detail shows the error with its sources, redacted.
#[tokio::test]
async fn a_check_error_is_shown_with_its_sources() {
    let health = Health::new().check("database", || async {
        Err::<(), _>(hardening_core::errors::Error::internal(
            std::io::Error::other("connect postgres://app:hunter2@db-7.internal:5432/app refused"),
        ))
    });
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    let reply = http_get(addr, "/readyz", &[]).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    let body = reply.json();
    let error = body["checks"]["database"]["error"].as_str().unwrap();
    assert!(error.contains("@db-7.internal:5432/app refused"), "{error}");
    assert!(!reply.body.contains("hunter2"), "{}", reply.body);
}

/// Why a check failed was shown only to a probe from a detail network: an orchestrator
/// probing from elsewhere (a kubelet on the node's address) got the names alone, and so did
/// the log, so no one could learn why the service was not ready. The run's warning carries
/// each failed check's error, redacted as the detail is.
#[tokio::test]
async fn a_failed_checks_error_is_logged_redacted() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let health = Health::new()
        .check("database", || async {
            Err::<(), _>(std::io::Error::other(
                "connect postgres://app:hunter2@db-7.internal:5432/app refused",
            ))
        })
        .check("cache", || async { ok() })
        .detail_for(["10.0.0.0/8"])
        .unwrap();
    let addr = serve(routes().layer(Hardening::strict().health(health))).await;
    let reply = http_get(addr, "/readyz", &[]).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.json().get("checks").is_none(), "{reply:?}");
    let logs = captured.text();
    assert!(logs.contains("readiness check failed"), "{logs}");
    assert!(
        logs.contains("database: connect postgres://app:[redacted]@db-7.internal:5432/app refused"),
        "{logs}"
    );
    assert!(!logs.contains("hunter2"), "{logs}");
    assert!(!logs.contains("cache:"), "{logs}");
}
