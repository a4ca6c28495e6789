//! The access log and security events: one event per request, and no secret in any log line.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::routing::get;
use hardening_core::Hardening;
use hardening_tests::{Captured, get as http_get, serve};

const SECRETS: &[&str] = &[
    "SECRET-authz",
    "SECRET-proxy",
    "SECRET-cookie",
    "SECRET-apikey",
    "SECRET-authtoken",
    "SECRET-password",
    "SECRET-token",
    "SECRET-api_key",
    "SECRET-session",
    "SECRET-code",
    "SECRET-secret",
    "SECRET-key",
    "SECRET-setcookie",
    "SECRET-encoded",
    "SECRET-custom",
    "SECRET-cfjwt",
    "SECRET-iapjwt",
    "SECRET-oidc",
    "SECRET-principal",
    "SECRET-pass",
    "SECRET-pw",
    "SECRET-otp",
    "SECRET-assertion",
    "SECRET-saml",
];

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);

    let app = Router::new().route(
        "/account/{id}",
        get(|| async {
            (
                axum::Extension(hardening_core::errors::PrincipalId::new("user-7")),
                [("set-cookie", "sid=SECRET-setcookie; Path=/")],
                "ok",
            )
        }),
    );
    let hardening = Hardening::strict()
        .log_request_headers()
        .sensitive_query_params(["ssn"]);
    let addr = serve(app.layer(hardening)).await;

    let query = "password=SECRET-password&token=SECRET-token&api_key=SECRET-api_key\
                 &session=SECRET-session&code=SECRET-code&secret=SECRET-secret&key=SECRET-key\
                 &pass%77ord=SECRET-encoded&ssn=SECRET-custom&pass=SECRET-pass&pw=SECRET-pw\
                 &otp=SECRET-otp&client_assertion=SECRET-assertion&SAMLResponse=SECRET-saml\
                 &page=2";
    let reply = http_get(
        addr,
        &format!("/account/7?{query}"),
        &[
            "authorization: Bearer SECRET-authz",
            "proxy-authorization: Basic SECRET-proxy",
            "cookie: session=SECRET-cookie",
            "x-api-key: SECRET-apikey",
            "x-auth-token: SECRET-authtoken",
            // Identity-aware proxies' assertions (Cloudflare Access, Google IAP, AWS ALB,
            // Azure App Service): replayable identity tokens.
            "cf-access-jwt-assertion: SECRET-cfjwt",
            "x-goog-iap-jwt-assertion: SECRET-iapjwt",
            "x-amzn-oidc-data: SECRET-oidc",
            "x-ms-client-principal: SECRET-principal",
            "user-agent: log-test/1.0",
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    // A rejected request too: its security event must be as clean.
    let reply = http_get(
        addr,
        "/nowhere?token=SECRET-token",
        &["authorization: Bearer SECRET-authz"],
    )
    .await;
    assert_eq!(reply.status, 404);

    let logs = captured.text();
    for secret in SECRETS {
        assert!(!logs.contains(secret), "{secret} reached the logs:\n{logs}");
    }
    let access: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["target"] == hardening_core::ACCESS_TARGET)
        .collect();
    assert_eq!(access.len(), 2, "one access event per request:\n{logs}");
    let first = &access[0]["fields"];
    assert_eq!(first["http.request.method"], "GET");
    assert_eq!(first["http.route"], "/account/{id}");
    assert_eq!(first["http.response.status_code"], 200);
    assert_eq!(first["client.address"], "127.0.0.1");
    assert_eq!(first["user_agent.original"], "log-test/1.0");
    assert_eq!(first["enduser.id"], "user-7");
    assert!(
        first["url.path"].is_null(),
        "the path is not logged when the route is known"
    );
    assert!(
        first["url.query"].as_str().unwrap().ends_with("&page=2"),
        "{first}"
    );
    assert!(
        first["http.request.headers"]
            .as_str()
            .unwrap()
            .contains("authorization: [redacted]")
    );
    assert!(first["request_id"].is_string());
    assert!(first["http.server.request.duration"].as_f64().unwrap() >= 0.0);
    assert_eq!(access[1]["fields"]["url.path"], "/nowhere");
}

#[tokio::test]
async fn every_rejection_emits_one_security_event() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);

    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .route(
            "/401",
            get(|| async { hardening_core::errors::Error::Unauthenticated }),
        )
        .route(
            "/403",
            get(|| async { hardening_core::errors::Error::Forbidden }),
        );
    let hardening = Hardening::strict().allowed_hosts(["localhost"]).unwrap();
    let addr = serve(app.layer(hardening)).await;

    let many: Vec<String> = (0..60).map(|i| format!("p{i}")).collect();
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        ("/panic".into(), vec![], "panicked"),
        ("/401".into(), vec![], "unauthenticated"),
        ("/403".into(), vec![], "forbidden"),
        (
            format!("/hello?{}", many.join("&")),
            vec![],
            "too_many_query_params",
        ),
        (
            "/hello".into(),
            vec!["content-length: 2000000"],
            "body_too_large",
        ),
    ];
    for (path, headers, _) in &cases {
        http_get(addr, path, headers).await;
    }
    hardening_tests::exchange(
        addr,
        b"GET /hello HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    hardening_tests::exchange(
        addr,
        b"OPTIONS /hello HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\norigin: https://evil.example\r\naccess-control-request-method: GET\r\n\r\n",
    )
    .await;

    let events: Vec<String> = captured
        .security_events()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut expected: Vec<&str> = cases.iter().map(|(_, _, e)| *e).collect();
    expected.extend(["bad_host", "cors_rejected"]);
    assert_eq!(events, expected);
}

#[tokio::test]
async fn a_shadow_policy_admits_and_reports_and_its_loosening_is_logged() {
    use std::num::NonZeroU32;

    use hardening_core::ratelimit::{Policy, Quota, RateLimiter};

    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let one = NonZeroU32::new(1).unwrap();
    let limiter = RateLimiter::new([
        Policy::per_client_ip("per-ip", Quota::per_minute(NonZeroU32::new(100).unwrap())),
        Policy::per_client_ip("new-limit", Quota::per_hour(one)).shadow(),
    ]);
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .layer(Hardening::strict().rate_limit(limiter).unwrap());
    let addr = serve(app).await;
    let statuses = [
        http_get(addr, "/hello", &[]).await.status,
        http_get(addr, "/hello", &[]).await.status,
    ];
    assert_eq!(statuses, [200, 200], "shadow mode never refuses");
    let logs = captured.text();
    let events: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let loosened = events
        .iter()
        .filter(|e| e["fields"]["setting"] == "Policy::shadow")
        .count();
    assert_eq!(loosened, 1, "start-up warning: {logs}");
    let shadow: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["fields"]["security.event"] == "rate_limit_shadow")
        .collect();
    assert_eq!(
        shadow.len(),
        1,
        "only the second request would have been refused: {logs}"
    );
    assert!(
        shadow[0]["fields"]["policies"]
            .as_str()
            .unwrap()
            .contains("new-limit")
    );
}

#[tokio::test]
async fn the_handler_logs_inside_the_request_span() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    hardening_tests::assert_handler_event_in_request_span(&captured).await;
}

/// A streamed body that logs each chunk as it is polled for it (as a server-sent events
/// stream or a model's tokens run the handler's code while the response is sent): two chunks.
#[derive(Debug, Default)]
struct LogsEachChunk(u8);

impl http_body::Body for LogsEachChunk {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let chunk = self.0;
        if chunk == 2 {
            return std::task::Poll::Ready(None);
        }
        self.0 += 1;
        tracing::info!(target: "app", chunk, "sent a chunk");
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from(
            format!("chunk {chunk};"),
        )))))
    }
}

/// What a streamed body logs while it is sent, after the handler has returned its response
/// head, is in the request's span with its id, as the handler's own events are: a server-sent
/// events stream's or a model's token stream's logs, and a `TraceLayer` inside `Hardening`'s
/// `on_eos`, name the request they belong to.
#[tokio::test]
async fn a_streamed_bodys_logs_are_in_the_request_span() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let app = Router::new().route(
        "/events",
        get(|| async { axum::body::Body::new(LogsEachChunk::default()) }),
    );
    let addr = serve(app.layer(Hardening::strict())).await;
    let reply = http_get(addr, "/events", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "chunk 0;chunk 1;");
    let id = reply.header("x-request-id").unwrap();

    let logs = captured.text();
    let chunks: Vec<serde_json::Value> = captured
        .json_lines()
        .into_iter()
        .filter(|v| v["target"] == "app")
        .collect();
    assert_eq!(chunks.len(), 2, "one event per chunk:\n{logs}");
    for chunk in &chunks {
        assert_eq!(chunk["span"]["name"], "request", "{logs}");
        assert_eq!(chunk["span"]["request_id"], id, "{logs}");
    }
}

/// A panic's text is logged with its secrets redacted, also in a struct's `Debug` form and
/// under longer key names, and the rest of it kept.
#[tokio::test]
async fn panic_text_secrets_in_debug_form_or_key_names_do_not_reach_the_logs() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let app = Router::new().route(
        "/p",
        get(|| async {
            if true {
                panic!(
                    "called `Result::unwrap()` on an `Err` value: DbConfig {{ user: \"app\", password: \"SECRET-debug\" }}; \
                     AWS_SECRET_ACCESS_KEY=SECRET-aws private_key=SECRET-pk"
                );
            }
            "unreachable"
        }),
    );
    let addr = serve(app.layer(Hardening::strict())).await;
    let reply = http_get(addr, "/p", &[]).await;
    assert_eq!(reply.status, 500);

    let logs = captured.text();
    for secret in ["SECRET-debug", "SECRET-aws", "SECRET-pk"] {
        assert!(!logs.contains(secret), "{secret} reached the logs:\n{logs}");
    }
    let panic = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("the service panicked"))
        })
        .unwrap_or_else(|| panic!("no panic event:\n{logs}"));
    assert_eq!(
        panic["fields"]["panic"],
        "called `Result::unwrap()` on an `Err` value: DbConfig { user: \"app\", password: \"[redacted]\" }; \
         AWS_SECRET_ACCESS_KEY=[redacted] private_key=[redacted]"
    );
}

/// A logged `Referer`'s query is redacted like the request's own.
#[tokio::test]
async fn a_referer_query_token_does_not_reach_the_access_log() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let app = Router::new().route("/a", get(|| async { "ok" }));
    let addr = serve(app.layer(Hardening::strict().log_request_headers())).await;
    let reply = http_get(
        addr,
        "/a",
        &["referer: https://app.example/reset?token=SECRET-referer&step=2"],
    )
    .await;
    assert_eq!(reply.status, 200);

    let logs = captured.text();
    assert!(
        !logs.contains("SECRET-referer"),
        "the Referer's token reached the logs:\n{logs}"
    );
    let access: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["target"] == hardening_core::ACCESS_TARGET)
        .collect();
    assert_eq!(access.len(), 1, "{logs}");
    let headers = access[0]["fields"]["http.request.headers"]
        .as_str()
        .unwrap();
    assert!(
        headers.contains("referer: https://app.example/reset?token=[redacted]&step=2"),
        "{headers}"
    );
}

/// A `Hardening` on a nested router under another one logged a second access event, and
/// opened a second `request` span, for each request: now the outer layer's cover it, whichever
/// layer answers.
#[tokio::test]
async fn a_hardening_inside_another_logs_one_access_event_per_request() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let api = Router::new()
        .route(
            "/x",
            get(|| async {
                tracing::info!(target: "app", "handled");
                "x"
            }),
        )
        .layer(Hardening::strict().body_limit(4).unwrap());
    let app = Router::new().nest("/api", api).layer(Hardening::strict());
    let addr = serve(app).await;
    assert_eq!(http_get(addr, "/api/x", &[]).await.status, 200);
    // Refused by the inner layer's smaller limit.
    let refused = hardening_tests::exchange(
        addr,
        b"GET /api/x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    assert_eq!(refused.status, 413);

    let lines: Vec<serde_json::Value> = captured
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let access: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["target"] == hardening_core::ACCESS_TARGET)
        .map(|v| &v["fields"])
        .collect();
    assert_eq!(access.len(), 2, "one per request: {access:#?}");
    assert_eq!(access[0]["http.response.status_code"], 200);
    assert_eq!(access[0]["http.route"], "/api/x");
    assert_eq!(access[1]["http.response.status_code"], 413);
    let handled: Vec<&serde_json::Value> = lines.iter().filter(|v| v["target"] == "app").collect();
    assert_eq!(handled.len(), 1);
    let spans = handled[0]["spans"].as_array().unwrap();
    assert_eq!(
        spans.iter().filter(|s| s["name"] == "request").count(),
        1,
        "{spans:?}"
    );
}

/// A request whose client hung up before the response was not logged at all (its future is
/// dropped): it is logged without a status, as cancelled, with its redacted query.
#[tokio::test]
async fn a_request_whose_client_hangs_up_is_logged_as_cancelled() {
    use tokio::io::AsyncWriteExt;
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let (started, mut handler_started) = tokio::sync::mpsc::channel::<()>(1);
    let app = Router::new().route(
        "/slow",
        get(move || {
            let started = started.clone();
            async move {
                let _ = started.send(()).await;
                std::future::pending::<&str>().await
            }
        }),
    );
    let addr = serve(app.layer(Hardening::strict())).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /slow?password=hunter2 HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    handler_started.recv().await.unwrap();
    drop(stream);
    let access = async {
        loop {
            let access: Vec<serde_json::Value> = captured
                .text()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|v| v["target"] == hardening_core::ACCESS_TARGET)
                .map(|v| v["fields"].clone())
                .collect();
            if !access.is_empty() {
                return access;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let access = tokio::time::timeout(std::time::Duration::from_secs(10), access)
        .await
        .expect("the hung-up request was logged");
    assert_eq!(access.len(), 1, "{access:#?}");
    assert_eq!(access[0]["error.type"], "cancelled");
    assert!(access[0]["http.response.status_code"].is_null());
    assert_eq!(access[0]["http.route"], "/slow");
    assert_eq!(access[0]["url.query"], "password=[redacted]");
    assert!(access[0]["request_id"].is_string());
}

/// A plain-text rejection (as axum's are) whose body panics when the problem mapping reads it.
struct PanicsWhenRead;

impl http_body::Body for PanicsWhenRead {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        panic!("the rejection text is gone");
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(10)
    }
}

/// The ERROR lines `Hardening` writes about one request (a panic in the service's `call`, or
/// in a rejection body the problem mapping reads; a server error without a problem; a status
/// no response may end with; an `Error::Internal`'s chain) are in the request's span, as its
/// security event and the handler's own events are. Each carried the request id as a field
/// but was logged outside the span, when the response future ran the mapping.
#[tokio::test]
async fn the_error_logs_about_a_request_are_in_its_span() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use tower::Layer;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let panics_in_call = tower::service_fn(
        |_: axum::extract::Request| -> std::future::Ready<
            Result<axum::response::Response, std::convert::Infallible>,
        > { panic!("the service's call failed") },
    );
    let app = Router::new()
        .route(
            "/bad-gateway",
            get(|| async { (StatusCode::BAD_GATEWAY, "upstream 10.0.0.7 failed") }),
        )
        .route(
            "/no-such-status",
            get(|| async { (StatusCode::from_u16(600).unwrap(), "oops") }),
        )
        .route(
            "/internal",
            get(|| async {
                Err::<(), _>(hardening_core::errors::Error::internal(
                    "the database is down",
                ))
            }),
        )
        .route(
            "/unreadable-rejection",
            get(|| async {
                let mut res = axum::body::Body::new(PanicsWhenRead).into_response();
                *res.status_mut() = StatusCode::BAD_REQUEST;
                res.headers_mut()
                    .insert("content-type", "text/plain".parse().unwrap());
                res
            }),
        )
        .layer(Hardening::strict())
        .route_service("/panics-in-call", Hardening::strict().layer(panics_in_call));
    let addr = serve(app).await;
    let mut outside = Vec::new();
    for path in [
        "/bad-gateway",
        "/no-such-status",
        "/internal",
        "/unreadable-rejection",
        "/panics-in-call",
    ] {
        let reply = http_get(addr, path, &[]).await;
        let id = reply.header("x-request-id").unwrap();
        // At WARN: the security event and the ERROR line (the access log is not captured).
        let about_it: Vec<serde_json::Value> = captured
            .json_lines()
            .into_iter()
            .filter(|v| v["fields"]["request_id"] == id)
            .collect();
        assert!(
            about_it.iter().any(|v| v["level"] == "ERROR"),
            "{path}: no error logged: {about_it:?}"
        );
        outside.extend(
            about_it
                .into_iter()
                .filter(|v| v["span"]["name"] != "request" || v["span"]["request_id"] != id)
                .map(|v| format!("{path}: {v}")),
        );
    }
    assert!(
        outside.is_empty(),
        "outside the request's span:\n{}",
        outside.join("\n")
    );
}

/// A `Set-Cookie` the cookie rules drop (a `__Host-` cookie without `Path=/`) is warned of
/// in the request's span, as the security events and error lines about the request are: it
/// was logged outside, when the response future applied the security headers, so nothing
/// tied it to the request (a plain warning, target `hardening::headers`, not a security
/// event).
#[tokio::test]
async fn a_dropped_cookie_is_warned_of_in_the_requests_span() {
    use axum::http::header::SET_COOKIE;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let app = Router::new()
        .route(
            "/login",
            get(|| async { ([(SET_COOKIE, "__Host-sid=s3cret")], "ok") }),
        )
        .layer(Hardening::strict());
    let reply = http_get(serve(app).await, "/login", &[]).await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("set-cookie").is_none(), "{:?}", reply.headers);
    let id = reply.header("x-request-id").unwrap();
    let dropped: Vec<serde_json::Value> = captured
        .json_lines()
        .into_iter()
        .filter(|v| v["target"] == "hardening::headers" && v["fields"]["cookie"] == "__Host-sid")
        .collect();
    assert_eq!(dropped.len(), 1, "one warning: {dropped:?}");
    assert_eq!(
        (
            &dropped[0]["span"]["name"],
            &dropped[0]["span"]["request_id"]
        ),
        (&"request".into(), &id.into()),
        "not in the request's span: {}",
        dropped[0]
    );
    assert!(!dropped[0].to_string().contains("s3cret"), "{}", dropped[0]);
}
