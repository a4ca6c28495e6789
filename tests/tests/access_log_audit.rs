//! Audit of what the access log, the security events and the panic log print of a request:
//! a secret in each place a request can carry one, and the secret's text looked for in every
//! captured log line.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::routing::get;
use hardening_core::{Cors, Hardening};
use hardening_tests::{Captured, exchange, get as http_get, serve};

/// The access-log events among the captured JSON lines, as their `fields`.
fn access_events(captured: &Captured) -> Vec<serde_json::Value> {
    captured
        .text()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["target"] == hardening_core::ACCESS_TARGET)
        .map(|v| v["fields"].clone())
        .collect()
}

fn assert_no_secret(captured: &Captured) {
    let logs = captured.text();
    assert!(
        !logs.contains("SECRET"),
        "a secret reached the logs:\n{logs}"
    );
}

fn app() -> Router {
    Router::new()
        .route("/a", get(|| async { "ok" }))
        .route("/reset/{token}", get(|| async { "ok" }))
        // No `MatchedPath` for either: the access log falls back on the raw path.
        .nest_service("/files", get(|| async { "file" }))
        .fallback(|| async { "spa" })
}

/// Query parameter names in every spelling a server may read them in: case, percent-encoded,
/// `+` for a space, brackets, `;` as a separator, repeated, without a value, and longer
/// names that contain a sensitive word. The fragment a client should not send is dropped.
#[tokio::test]
async fn query_names_in_every_spelling_are_redacted() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let addr = serve(app().layer(Hardening::strict())).await;
    let targets = [
        "/a?PassWord=SECRET-1&%70assword=SECRET-2&pass%77ord=SECRET-3&pass+word=SECRET-4",
        "/a?user[password]=SECRET-5&auth[token]=SECRET-6&page=2",
        "/a?x=1;access_token=SECRET-7;id_token=SECRET-8&refresh_token=SECRET-9",
        "/a?client_secret=SECRET-10&X-Amz-Signature=SECRET-11&sig=SECRET-12&signature=SECRET-13",
        "/a?jwt=SECRET-14&auth=SECRET-15&code=SECRET-16&session=SECRET-17&key=SECRET-18",
        "/a?api_key=SECRET-19&token=SECRET-20&token=SECRET-21&token&X-Goog-Signature=SECRET-22",
        "/a?AWSAccessKeyId=SECRET-23&X-Amz-Credential=SECRET-24&X-Amz-Security-Token=SECRET-25",
        "/a?a=1#token=SECRET-26",
        "/a?next=%2Fcb%3Ftoken%3DSECRET-27&q=Bearer%20SECRET-28&r=Basic+SECRET-29",
        "/reset/SECRET-30?step=2",
    ];
    for target in targets {
        assert_eq!(http_get(addr, target, &[]).await.status, 200, "{target}");
    }
    assert_no_secret(&captured);
    let access = access_events(&captured);
    assert_eq!(access.len(), targets.len());
    assert_eq!(
        access[1]["url.query"],
        "user[password]=[redacted]&auth[token]=[redacted]&page=2"
    );
    assert_eq!(access[7]["url.query"], "a=1", "no fragment");
    assert_eq!(access[9]["http.route"], "/reset/{token}");
    assert!(access[9]["url.path"].is_null());
}

/// Without a route template (a 404, a fallback, a nested service) the raw path is logged, as
/// OpenTelemetry's `url.path`: a secret in a path parameter (`;jsessionid=…`, servlet URL
/// rewriting) was logged whole, although the same in a logged `Referer`'s path is redacted.
#[tokio::test]
async fn a_path_parameter_secret_without_a_route_is_redacted() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let addr = serve(app().layer(Hardening::strict())).await;
    http_get(addr, "/nowhere;jsessionid=SECRET-jsession", &[]).await;
    http_get(addr, "/files/report.pdf;token=SECRET-file?page=2", &[]).await;
    assert_no_secret(&captured);
    let access = access_events(&captured);
    assert_eq!(access[0]["url.path"], "/nowhere;jsessionid=[redacted]");
    assert_eq!(access[1]["url.path"], "/files/report.pdf;token=[redacted]");
    assert_eq!(access[1]["url.query"], "page=2");
}

/// hyper and `http` refuse control characters in the request target, but not UTF-8: a raw
/// NEL (U+0085) or LINE SEPARATOR (U+2028), which line readers such as Python's
/// `str.splitlines` break lines at, and bidi overrides (U+202E) that make a log line read
/// otherwise, were printed as they came (the query unquoted by tracing-subscriber's text
/// format). The logged target is now ASCII, percent-encoded as a client should have sent it.
#[tokio::test]
async fn non_ascii_in_the_target_is_logged_percent_encoded() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let addr = serve(app().layer(Hardening::strict())).await;
    let reply = exchange(
        addr,
        b"GET /a?x=a\xc2\x85b&y=\xe2\x80\xa8&\xe2\x80\xaetoken=SECRET-bidi HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = exchange(
        addr,
        b"GET /n\xc2\x85o\xe2\x80\xae HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200, "the fallback's");
    assert_no_secret(&captured);
    let access = access_events(&captured);
    assert_eq!(access.len(), 2, "{}", captured.text());
    assert_eq!(
        access[0]["url.query"],
        "x=a%C2%85b&y=%E2%80%A8&%E2%80%AEtoken=[redacted]"
    );
    assert_eq!(access[1]["url.path"], "/n%C2%85o%E2%80%AE");
    for event in &access {
        assert!(event.to_string().is_ascii(), "{event}");
    }
}

/// With `log_request_headers`: credentials by header name, whatever its case or however many
/// fields, the query (and fragment) of URL-valued headers, and now a secret-named pair inside
/// any other header's value (W3C `baggage`, a proxy's copy of the query) as in error text.
#[tokio::test]
async fn logged_headers_carry_no_secret() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let addr = serve(app().layer(Hardening::strict().log_request_headers())).await;
    let reply = http_get(
        addr,
        "/a",
        &[
            "Authorization: Bearer SECRET-authz",
            "AUTHORIZATION: Basic SECRET-authz2",
            "proxy-authorization: Basic SECRET-proxy",
            "cookie: a=SECRET-cookie",
            "cookie: b=SECRET-cookie2",
            "x-api-key: SECRET-xapikey",
            "api-key: SECRET-apikey",
            "x-auth-token: SECRET-xauth",
            "x-csrf-token: SECRET-csrf",
            "x-hub-signature-256: sha256=SECRET-hub",
            "referer: https://app.example/cb?code=SECRET-ref#access_token=SECRET-frag",
            "x-forwarded-uri: /cb?token=SECRET-fwd",
            "baggage: userId=alice,session_token=SECRET-baggage",
            "x-original-query: password=SECRET-origq&page=2",
            "user-agent: audit/1.0",
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_no_secret(&captured);
    let access = access_events(&captured);
    let headers = access[0]["http.request.headers"].as_str().unwrap();
    assert!(
        headers.contains("baggage: userId=alice,session_token=[redacted]"),
        "{headers}"
    );
    assert!(
        headers.contains("x-original-query: password=[redacted]&page=2"),
        "{headers}"
    );
    assert_eq!(access[0]["user_agent.original"], "audit/1.0");
}

/// Security events carry the event's name, the request id and the client address, never
/// the target, `Host`, `Origin` or credentials; a panic's `key=value` secrets are redacted in
/// the log and its text never reaches the response.
#[tokio::test]
async fn security_events_and_panics_carry_no_request_data() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let app = app().route(
        "/panic",
        get(|| async {
            if true {
                panic!("login failed: password=SECRET-panic token: SECRET-panic2");
            }
            "unreachable"
        }),
    );
    let cors = Cors::allow_origins(["https://app.example"]).unwrap();
    let hardening = Hardening::strict()
        .allowed_hosts(["localhost"])
        .unwrap()
        .cors(cors)
        .query_param_limit(2)
        .unwrap();
    let addr = serve(app.layer(hardening)).await;

    let panicked = http_get(addr, "/panic?token=SECRET-q", &[]).await;
    assert_eq!(panicked.status, 500);
    assert!(!panicked.body.contains("SECRET"), "{}", panicked.body);
    let bad_host = exchange(
        addr,
        b"GET /a?token=SECRET-h HTTP/1.1\r\nhost: SECRET-host.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(bad_host.status, 400);
    let cors = exchange(
        addr,
        b"OPTIONS /a?token=SECRET-c HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\norigin: https://SECRET-origin.example\r\naccess-control-request-method: GET\r\n\r\n",
    )
    .await;
    assert_eq!(cors.status, 403);
    let many = http_get(
        addr,
        "/a?a=1&b=2&token=SECRET-many",
        &["referer: https://x.example/?token=SECRET-r"],
    )
    .await;
    assert_eq!(many.status, 400);

    assert_no_secret(&captured);
    assert_eq!(
        captured.security_event_names(),
        [
            "panicked",
            "bad_host",
            "cors_rejected",
            "too_many_query_params"
        ]
    );
    for (_, event) in captured.security_events() {
        let fields = event["fields"].as_object().unwrap();
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["client.address", "message", "request_id", "security.event"],
            "{event}"
        );
    }
}
