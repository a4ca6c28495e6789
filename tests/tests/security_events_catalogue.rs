//! Every `security.event` name, each triggered through `Hardening::strict()` (or the layer
//! inside it that emits it) over loopback: exactly one event on `hardening::security`, with
//! the request id the response shows, inside the request's span (as the handler's own events
//! are, and a caught panic's ERROR line), the client address and none of the request's
//! secrets (a bearer token, a cookie, a `?token=`), counted once in
//! `hardening_security_events_total`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use hardening_core::auth::{AuthLayer, Authenticated, Csrf, Denylist, MemoryDenylist, TokenRef};
use hardening_core::errors::Error;
use hardening_core::ratelimit::{
    ConcurrencyLimiter, CostLayer, Estimate, Policy, Quota, RateLimitLayer, RateLimiter,
};
use hardening_core::{Hardening, Server};
use hardening_tests::jwt::{hs256_token, hs256_verifier};
use hardening_tests::security_counts::{Counts, recording};
use hardening_tests::{Captured, EXCHANGE_LIMIT, Reply, UnknownSize, exchange, read_reply, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

const BEARER: &str = "bearer-secret-7Qx2";
const COOKIE: &str = "cookie-secret-9Lm4";
const QUERY: &str = "query-secret-3Vb8";

/// Every name of `security_events!` in hardening-core/src/security_event.rs.
const NAMES: [&str; 19] = [
    "rate_limited",
    "unauthenticated",
    "forbidden",
    "csrf_blocked",
    "body_too_large",
    "bad_content_length",
    "bad_transfer_encoding",
    "bad_content_type",
    "too_many_query_params",
    "timed_out",
    "head_timed_out",
    "slow_read",
    "panicked",
    "bad_host",
    "load_shed",
    "cost_limit_unkeyed",
    "cors_rejected",
    "rate_limit_shadow",
    "csrf_shadow",
];

/// The same events emitted by the standalone layers inside `Hardening` (`event/layer`).
const INSIDE: [&str; 5] = [
    "rate_limited/RateLimitLayer",
    "rate_limit_shadow/RateLimitLayer",
    "rate_limited/CostLayer",
    "rate_limit_shadow/CostLayer",
    "body_too_large/CostLayer",
];

/// The same events from the auth guards, the auth layer's denylist and a streamed body
/// (`event/source`).
const ELSEWHERE: [&str; 5] = [
    "forbidden/require_role",
    "forbidden/require_scope",
    "unauthenticated/revoked",
    "panicked/streamed_body",
    "panicked/nested_streamed_body",
];

const SECRET: &[u8] = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj-events";

/// A request's head with the secrets on it: `method path?token=…` and the extra header lines
/// (each ending in CRLF), without the blank line that ends the head.
fn head(method: &str, path: &str, extra: &str) -> String {
    head_with(&format!("Bearer {BEARER}"), method, path, extra)
}

/// [`head`] with another `Authorization`: a token under another scheme (a bearer token
/// exempts a request from the CSRF check: `Basic`, which browsers send on their own, does
/// not), or a token that verifies.
fn head_with(authorization: &str, method: &str, path: &str, extra: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!(
        "{method} {path}{sep}token={QUERY} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         authorization: {authorization}\r\ncookie: sid={COOKIE}\r\n{extra}"
    )
}

/// [`head`], ended, with an empty body.
fn request(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{}content-length: 0\r\n\r\n", head(method, path, extra)).into_bytes()
}

/// What a case gives back: the response that carries the event (none for a connection cut
/// off before its head ended).
type Answer = Option<Reply>;

fn hi() -> Router {
    Router::new().route("/", get(|| async { "hi" }).post(|| async { "posted" }))
}

fn one_per_hour() -> Quota {
    Quota::per_hour(NonZeroU32::new(1).unwrap())
}

/// Serves `app` on loopback, sends `requests` in turn, and returns the last reply.
async fn last_reply(app: Router, requests: &[&[u8]]) -> Answer {
    let addr = serve(app).await;
    let mut last = None;
    for raw in requests {
        last = Some(exchange(addr, raw).await);
    }
    last
}

/// Runs the case for `event` (or `event/layer`).
async fn trigger(event: &str) -> Answer {
    let plain = request("GET", "/", "");
    match event {
        "rate_limited/RateLimitLayer" | "rate_limit_shadow/RateLimitLayer" => {
            let policy = Policy::per_client_ip("tiny", one_per_hour());
            let policy = if event.starts_with("rate_limited") {
                policy
            } else {
                policy.shadow()
            };
            let layer = RateLimitLayer::new(RateLimiter::new([policy]));
            last_reply(
                hi().layer(layer).layer(Hardening::strict()),
                &[&plain, &plain],
            )
            .await
        }
        "rate_limited/CostLayer" | "rate_limit_shadow/CostLayer" => {
            let policy = Policy::per_client_ip("tokens", one_per_hour());
            let policy = if event.starts_with("rate_limited") {
                policy
            } else {
                policy.shadow()
            };
            let layer = CostLayer::new(RateLimiter::new([policy]), Estimate::fixed(1));
            last_reply(
                hi().layer(layer).layer(Hardening::strict()),
                &[&plain, &plain],
            )
            .await
        }
        "body_too_large/CostLayer" => {
            let tokens = RateLimiter::new([Policy::per_client_ip("tokens", one_per_hour())]);
            let layer = CostLayer::new(tokens, Estimate::json_field("/max_tokens", 1).unwrap())
                .max_body(std::num::NonZeroUsize::new(10).unwrap());
            let raw = format!(
                "{}content-type: application/json\r\ncontent-length: 100\r\n\r\n{}",
                head("POST", "/", ""),
                " ".repeat(100)
            );
            last_reply(
                hi().layer(layer).layer(Hardening::strict()),
                &[raw.as_bytes()],
            )
            .await
        }
        "rate_limited" => {
            let limiter = RateLimiter::new([Policy::per_client_ip("tiny", one_per_hour())]);
            let app = hi().layer(Hardening::strict().rate_limit(limiter).unwrap());
            last_reply(app, &[&plain, &plain]).await
        }
        "rate_limit_shadow" => {
            let limiter =
                RateLimiter::new([Policy::per_client_ip("trial", one_per_hour()).shadow()]);
            let app = hi().layer(Hardening::strict().rate_limit(limiter).unwrap());
            last_reply(app, &[&plain, &plain]).await
        }
        "unauthenticated" => {
            let app = Router::new()
                .route("/", get(|_: Authenticated| async { "hi" }))
                .layer(AuthLayer::new(hs256_verifier(SECRET)))
                .layer(Hardening::strict());
            last_reply(app, &[&plain]).await
        }
        "forbidden" => {
            let app = Router::new()
                .route("/", get(|| async { Err::<(), _>(Error::Forbidden) }))
                .layer(Hardening::strict());
            last_reply(app, &[&plain]).await
        }
        "csrf_blocked" | "csrf_shadow" => {
            let csrf = match event {
                "csrf_shadow" => Csrf::new().shadow(),
                _ => Csrf::new(),
            };
            let cross = head_with(
                &format!("Basic {BEARER}"),
                "POST",
                "/",
                "sec-fetch-site: cross-site\r\norigin: https://evil.example\r\n",
            );
            let cross = format!("{cross}content-length: 0\r\n\r\n");
            let app = hi().layer(Hardening::strict().csrf(csrf));
            last_reply(app, &[cross.as_bytes()]).await
        }
        "body_too_large" => {
            let raw = format!(
                "{}content-length: 100\r\n\r\n{}",
                head("POST", "/", ""),
                "x".repeat(100)
            );
            let app = hi().layer(Hardening::strict().body_limit(10).unwrap());
            last_reply(app, &[raw.as_bytes()]).await
        }
        "bad_content_length" => bad_content_length().await,
        "bad_transfer_encoding" => {
            let raw = format!(
                "{}transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n0\r\n\r\n",
                head("POST", "/", "")
            );
            last_reply(hi().layer(Hardening::strict()), &[raw.as_bytes()]).await
        }
        "bad_content_type" => {
            let raw = format!(
                "{}content-type: application/json\r\ncontent-type: text/plain\r\n\
                 content-length: 2\r\n\r\n{{}}",
                head("POST", "/", "")
            );
            last_reply(hi().layer(Hardening::strict()), &[raw.as_bytes()]).await
        }
        "too_many_query_params" => {
            let raw = request("GET", "/?a=1&b=2", "");
            let app = hi().layer(Hardening::strict().query_param_limit(2).unwrap());
            last_reply(app, &[&raw]).await
        }
        "timed_out" => {
            let app = Router::new()
                .route(
                    "/",
                    get(|| async {
                        tokio::time::sleep(EXCHANGE_LIMIT).await;
                        "late"
                    }),
                )
                .layer(
                    Hardening::strict()
                        .timeout(Duration::from_millis(50))
                        .unwrap(),
                );
            last_reply(app, &[&plain]).await
        }
        "head_timed_out" => head_timed_out().await,
        "slow_read" => slow_read().await,
        "panicked" => {
            let app = Router::new()
                .route(
                    "/",
                    get(|| async {
                        panic!("handler failed; token=sk-live-panic");
                        #[allow(unreachable_code)]
                        "never"
                    }),
                )
                .layer(Hardening::strict());
            last_reply(app, &[&plain]).await
        }
        "bad_host" => {
            let app = hi().layer(
                Hardening::strict()
                    .allowed_hosts(["api.example.com"])
                    .unwrap(),
            );
            last_reply(app, &[&plain]).await
        }
        "load_shed" => load_shed().await,
        "cost_limit_unkeyed" => {
            let tokens = RateLimiter::new([Policy::per_principal(
                "tokens",
                Quota::per_hour(NonZeroU32::new(1_000).unwrap()),
            )]);
            let app = Router::new()
                .route("/", get(|| async { "hi" }))
                .layer(CostLayer::new(tokens, Estimate::fixed(1)))
                .layer(Hardening::strict());
            last_reply(app, &[&plain]).await
        }
        "cors_rejected" => {
            let preflight = request(
                "OPTIONS",
                "/",
                "origin: https://evil.example\r\naccess-control-request-method: POST\r\n",
            );
            last_reply(hi().layer(Hardening::strict()), &[&preflight]).await
        }
        "forbidden/require_role" | "forbidden/require_scope" => {
            let app = Router::new()
                .route(
                    "/role",
                    get(|user: Authenticated| async move {
                        user.require_role("admin").map(|()| "admin")
                    }),
                )
                .route(
                    "/scope",
                    get(|user: Authenticated| async move {
                        user.require_scope("notes:write").map(|()| "written")
                    }),
                )
                .layer(AuthLayer::new(hs256_verifier(SECRET)))
                .layer(Hardening::strict());
            let path = if event.ends_with("role") {
                "/role"
            } else {
                "/scope"
            };
            let token = hs256_token(SECRET, serde_json::json!({ "sub": "user-1" }));
            last_reply(app, &[&with_token(&token, path)]).await
        }
        "unauthenticated/revoked" => {
            let denylist = MemoryDenylist::new(16);
            let issued = std::time::SystemTime::now();
            denylist
                .revoke(
                    TokenRef::new("jti-1", "user-1", Some(issued)),
                    issued + Duration::from_secs(600),
                )
                .await
                .unwrap();
            let auth = AuthLayer::new(hs256_verifier(SECRET)).denylist(Arc::new(denylist));
            let app = Router::new()
                .route("/", get(|_: Authenticated| async { "hi" }))
                .layer(auth)
                .layer(Hardening::strict());
            let claims = serde_json::json!({ "sub": "user-1", "jti": "jti-1" });
            let token = hs256_token(SECRET, claims);
            last_reply(app, &[&with_token(&token, "/")]).await
        }
        "panicked/streamed_body" | "panicked/nested_streamed_body" => {
            let app = Router::new()
                .route(
                    "/",
                    get(|| async { Body::new(hardening_tests::PanicsAfterOneChunk::default()) }),
                )
                .layer(Hardening::strict());
            if event.starts_with("panicked/nested") {
                let outer = Router::new().nest("/api", app).layer(Hardening::strict());
                return cut_off(outer, &request("GET", "/api", "")).await;
            }
            cut_off(app, &plain).await
        }
        other => panic!("no case for `{other}`"),
    }
}

/// A `GET path` with `token` as its bearer token (and the other secrets), ended.
fn with_token(token: &str, path: &str) -> Vec<u8> {
    let head = head_with(&format!("Bearer {token}"), "GET", path, "");
    format!("{head}content-length: 0\r\n\r\n").into_bytes()
}

/// Serves `app`, sends `raw` and reads until the server closes the connection: for a
/// response cut off (its head may not have been flushed).
async fn cut_off(app: Router, raw: &[u8]) -> Answer {
    let addr = serve(app).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut rest = Vec::new();
    // Closed, or reset, after the body's error.
    let _ = tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut rest))
        .await
        .expect("the server closed the connection");
    None
}

/// A body of unknown size with a `Content-Length` that is not one length: hyper refuses that
/// on the wire, so this one is sent in-process, from a loopback peer.
async fn bad_content_length() -> Answer {
    let app = hi().layer(Hardening::strict());
    let raw = String::from_utf8(request("POST", "/", "")).unwrap();
    let target = raw.split(' ').nth(1).unwrap();
    let peer = SocketAddr::from(([127, 0, 0, 1], 40_000));
    let req = http::Request::post(target)
        .header("authorization", format!("Bearer {BEARER}"))
        .header("cookie", format!("sid={COOKIE}"))
        .header("content-length", "+5")
        .extension(axum::extract::ConnectInfo(peer))
        .body(Body::new(UnknownSize(Some(bytes::Bytes::from_static(
            b"hello",
        )))))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Some(Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    })
}

/// A client that begins a request, secrets included, and never ends its head: the server's
/// header-read timeout closes the connection, and reports it.
async fn head_timed_out() -> Answer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new()
        .header_read_timeout(Server::MIN_HEADER_READ_TIMEOUT)
        .unwrap();
    tokio::spawn(server.serve(listener, hi().layer(Hardening::strict())));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(head("GET", "/", "").as_bytes())
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(EXCHANGE_LIMIT, stream.read_to_end(&mut rest))
        .await
        .expect("the server kept a slow client's connection open")
        .unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // The event follows the close: let the connection's task finish.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    None
}

/// A client that asks, secrets included, for a response it then takes a few hundred bytes at
/// a time, below the server's minimum send rate (64 KiB/s here, with a 1-second send
/// timeout): the server closes the connection, and reports it.
async fn slow_read() -> Answer {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let listener = socket.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new()
        .send_timeout(Duration::from_secs(1))
        .unwrap()
        .min_send_rate(64 * 1024)
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { vec![b'x'; 16 * 1024 * 1024] }))
        .layer(Hardening::strict());
    tokio::spawn(server.serve(listener, app));
    let client = tokio::net::TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(4096).unwrap();
    let mut stream = client.connect(addr).await.unwrap();
    stream
        .write_all(format!("{}\r\n", head("GET", "/", "")).as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let read = async {
        while let Ok(1..) = stream.read(&mut buf).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the server kept serving a client below the minimum send rate");
    None
}

/// A request past the global concurrency cap while another holds the one slot.
async fn load_shed() -> Answer {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                e.notify_one();
                r.notified().await;
                "done"
            }),
        )
        .layer(
            Hardening::strict().concurrency_limit(
                ConcurrencyLimiter::per_client(NonZeroU32::new(10).unwrap())
                    .global(NonZeroU32::new(1).unwrap()),
            ),
        );
    let addr = serve(app).await;
    let raw = request("GET", "/", "");
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(&raw).await.unwrap();
    tokio::time::timeout(EXCHANGE_LIMIT, entered.notified())
        .await
        .expect("the first request reached its handler");
    let shed = exchange(addr, &raw).await;
    release.notify_one();
    let done = tokio::time::timeout(EXCHANGE_LIMIT, read_reply(&mut first))
        .await
        .unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    Some(shed)
}

/// The status each case's response has (shadow reports let the request through), if the
/// case has one to read.
fn expected_status(case: &str) -> Option<u16> {
    if case.ends_with("streamed_body") {
        return None;
    }
    let event = case.split('/').next().unwrap();
    Some(match event {
        "rate_limited" => 429,
        "unauthenticated" => 401,
        "forbidden" | "csrf_blocked" | "cors_rejected" => 403,
        "body_too_large" => 413,
        "bad_content_length"
        | "bad_transfer_encoding"
        | "bad_content_type"
        | "too_many_query_params"
        | "bad_host" => 400,
        "timed_out" | "load_shed" => 503,
        "panicked" | "cost_limit_unkeyed" => 500,
        "rate_limit_shadow" | "csrf_shadow" => 200,
        "head_timed_out" | "slow_read" => return None,
        other => panic!("no status for `{other}`"),
    })
}

#[test]
fn every_security_event_is_logged_once_with_the_ids_in_the_request_span_and_counted_once() {
    let mut failures = Vec::new();
    for case in NAMES.into_iter().chain(INSIDE).chain(ELSEWHERE) {
        let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
        let counts = Counts::default();
        let answer = recording(&counts, trigger(case));
        drop(guard);
        if let Err(why) = check(case, answer.as_ref(), &captured, &counts) {
            failures.push(format!("{case}: {why}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Checks one case: its response, its one event and its count.
fn check(
    case: &str,
    answer: Option<&Reply>,
    captured: &Captured,
    counts: &Counts,
) -> Result<(), String> {
    let event = case.split('/').next().unwrap();
    let events = captured.security_events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    if names != [event] {
        return Err(format!("logged {names:?}, not once\n{}", captured.text()));
    }
    let expected = HashMap::from([(event.to_owned(), 1)]);
    if counts.of() != expected {
        return Err(format!("counted {:?}, not once", counts.of()));
    }
    let line = &events[0].1;
    let fields = &line["fields"];
    if fields["client.address"] != "127.0.0.1" {
        return Err(format!("no client address: {line}"));
    }
    let text = line.to_string();
    for secret in [BEARER, COOKIE, QUERY, "sk-live"] {
        if text.contains(secret) {
            return Err(format!("the line has `{secret}`: {line}"));
        }
    }
    // Inside the request's span, as the handler's own events are (a client that never ended
    // its head made no request, and a slow reader is cut off by the server under its
    // requests: their events have no span).
    if !matches!(event, "head_timed_out" | "slow_read")
        && (line["span"]["name"] != "request" || line["span"]["request_id"] != fields["request_id"])
    {
        return Err(format!("not in the request's span: {line}"));
    }
    // So is every other line about the request (a caught panic's ERROR line, logged once);
    // the access log, outside any span, is not captured at WARN.
    let about_it: Vec<serde_json::Value> = captured
        .json_lines()
        .into_iter()
        .filter(|other| {
            other["target"] != hardening_core::SECURITY_TARGET
                && other["fields"]["request_id"] == fields["request_id"]
        })
        .collect();
    if event == "panicked" && about_it.len() != 1 {
        return Err(format!(
            "the panic logged {} times\n{}",
            about_it.len(),
            captured.text()
        ));
    }
    if let Some(outside) = about_it
        .iter()
        .find(|other| other["span"]["request_id"] != fields["request_id"])
    {
        return Err(format!(
            "a line about the request outside its span: {outside}"
        ));
    }
    let Some(reply) = answer else {
        return match expected_status(case) {
            None if fields["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()) =>
            {
                Ok(())
            }
            None => Err(format!("no request id: {line}")),
            Some(status) => Err(format!("no response, expected {status}")),
        };
    };
    if Some(reply.status) != expected_status(case) {
        return Err(format!("answered {}: {}", reply.status, reply.body));
    }
    let header_id = reply.header("x-request-id");
    if header_id.is_none() || fields["request_id"].as_str() != header_id {
        return Err(format!(
            "event id {} vs x-request-id {header_id:?}",
            fields["request_id"]
        ));
    }
    if reply.status >= 400 {
        let problem = reply.json();
        if problem["request_id"] != fields["request_id"] {
            return Err(format!(
                "event id {} vs problem {problem}",
                fields["request_id"]
            ));
        }
        if reply.header("content-type") != Some("application/problem+json") {
            return Err(format!("not a problem: {:?}", reply.header("content-type")));
        }
    }
    Ok(())
}
