//! A server-rendered app's own error pages: `Hardening::strict()` makes a problem of every
//! error response, a handler's HTML page for a 404 included; with `keep_html_error_pages()`
//! a handler's `text/html` page for a client error reaches the browser, with the layer's
//! headers, request id, security event and access-log event, and everything else (server
//! errors, other client errors, a handler's `Problem` or `Error`, the layer's own
//! rejections) stays a problem. Over real TCP on 127.0.0.1, but for the streamed pages.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hardening_core::Hardening;
use hardening_core::errors::{Error, Problem};
use hardening_core::headers::HeaderPolicy;
use hardening_tests::{Captured, Reply, exchange, get as http_get, request, send, serve};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use http_body_util::BodyExt;
use tower::ServiceExt;

const NO_SUCH_NOTE: &str = "<h1>No such note</h1>";
const NOT_YOURS: &str = "<h1>Not your document</h1>";
const SIGN_IN: &str = "<h1>Sign in first</h1>";
const FORM_AGAIN: &str = "<form><p class=error>A title is required</p></form>";
/// What a server error's page may show, which no client may see.
const INTERNALS: &str = "<pre>connection to postgres://app@10.0.0.7/notes refused</pre>";

/// The media types of `/typed/{n}`'s 404, and whether each is an HTML page.
const MEDIA_TYPES: &[(&str, bool)] = &[
    ("text/html", true),
    ("text/html; charset=utf-8", true),
    ("TEXT/HTML;Charset=UTF-8", true),
    ("text/html ; charset=utf-8", true),
    ("text/htmlx", false),
    ("text/html5; charset=utf-8", false),
    ("text/plain; charset=utf-8", false),
    ("application/json", false),
    ("text/html, application/json", false),
];

/// A 4xx with `content_type`, or none, and this body.
fn page(status: StatusCode, content_type: Option<&str>, body: &'static str) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().remove(CONTENT_TYPE);
    if let Some(content_type) = content_type {
        res.headers_mut()
            .insert(CONTENT_TYPE, content_type.parse().unwrap());
    }
    res
}

fn routes() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { Html("<h1>Your notes</h1>") }).post(|| async { "posted" }),
        )
        .route(
            "/notes/{id}",
            get(|| async { (StatusCode::NOT_FOUND, Html(NO_SUCH_NOTE)) }),
        )
        .route(
            "/documents/1",
            get(|| async { (StatusCode::FORBIDDEN, Html(NOT_YOURS)) }),
        )
        .route(
            "/account",
            get(|| async { (StatusCode::UNAUTHORIZED, Html(SIGN_IN)) }),
        )
        .route(
            "/admin",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    [(http::header::WWW_AUTHENTICATE, r#"Basic realm="admin""#)],
                    Html(SIGN_IN),
                )
            }),
        )
        .route(
            "/notes",
            post(|| async { (StatusCode::UNPROCESSABLE_ENTITY, Html(FORM_AGAIN)) }),
        )
        .route(
            "/typed/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    page(StatusCode::NOT_FOUND, Some(MEDIA_TYPES[n].0), NO_SUCH_NOTE)
                },
            ),
        )
        .route(
            "/untyped",
            get(|| async { page(StatusCode::NOT_FOUND, None, NO_SUCH_NOTE) }),
        )
        .route(
            "/two-types",
            get(|| async {
                let mut res = page(StatusCode::NOT_FOUND, Some("text/html"), NO_SUCH_NOTE);
                res.headers_mut()
                    .append(CONTENT_TYPE, "text/plain".parse().unwrap());
                res
            }),
        )
        .route(
            "/server-error/{status}",
            get(
                |axum::extract::Path(status): axum::extract::Path<u16>| async move {
                    (StatusCode::from_u16(status).unwrap(), Html(INTERNALS))
                },
            ),
        )
        .route(
            "/problem",
            get(|| async { Problem::new(StatusCode::NOT_FOUND).with_detail("no such note") }),
        )
        .route("/error", get(|| async { Err::<(), _>(Error::Forbidden) }))
        .route(
            // A problem whose `Content-Type` says HTML (a layer inside rewrote it, say): the
            // problem in its extensions decides.
            "/problem-as-html",
            get(|| async {
                let mut res = page(StatusCode::NOT_FOUND, Some("text/html"), NO_SUCH_NOTE);
                res.extensions_mut()
                    .insert(Problem::new(StatusCode::NOT_FOUND));
                res
            }),
        )
        .route(
            "/json",
            post(|axum::Json(v): axum::Json<serde_json::Value>| async move { v.to_string() }),
        )
        .route(
            // Reads the body itself and answers an HTML page when it cannot.
            "/upload",
            post(|body: Body| async move {
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(bytes) => bytes.len().to_string().into_response(),
                    Err(_) => (
                        StatusCode::BAD_REQUEST,
                        Html("<h1>We could not read your upload</h1>"),
                    )
                        .into_response(),
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                (StatusCode::NOT_FOUND, Html(NO_SUCH_NOTE))
            }),
        )
}

fn kept() -> Hardening {
    Hardening::strict().keep_html_error_pages()
}

/// The reply is a problem of `status` (see [`Reply::problem`]) with nothing of a page or of
/// a server error's internals in it.
fn assert_problem(reply: &Reply, status: u16) -> serde_json::Value {
    let body = reply.problem(status);
    assert!(!reply.body.contains("<h1>"), "{reply:?}");
    assert!(!reply.body.contains("10.0.0.7"), "{reply:?}");
    body
}

/// The gap, and the default: behind `strict()` a handler's HTML page for a 404 reaches the
/// client as a problem. The option is explicit; without it nothing changes.
#[tokio::test]
async fn by_default_a_handlers_html_page_becomes_a_problem() {
    let addr = serve(routes().layer(Hardening::strict())).await;
    for (path, status) in [
        ("/notes/7", 404),
        ("/documents/1", 403),
        ("/account", 401),
        ("/typed/1", 404),
    ] {
        let reply = http_get(addr, path, &[]).await;
        assert_problem(&reply, status);
    }
    let reply = send(addr, "POST", "/notes", &[], None).await;
    assert_problem(&reply, 422);
}

/// With the option, each page arrives as the handler wrote it, with its status and its own
/// `Content-Type`, and with what the layer gives every response: `x-request-id`, the
/// security headers, the rate-limit headers, one access-log event with the status, and the
/// security event the status stands for (401 and 403; none for 404 and 422).
#[tokio::test]
async fn kept_pages_arrive_whole_with_the_layers_headers_and_events() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let addr = serve(routes().layer(kept())).await;
    let replies = [
        (http_get(addr, "/notes/7", &[]).await, 404, NO_SUCH_NOTE),
        (http_get(addr, "/documents/1", &[]).await, 403, NOT_YOURS),
        (http_get(addr, "/account", &[]).await, 401, SIGN_IN),
        (
            send(addr, "POST", "/notes", &[], None).await,
            422,
            FORM_AGAIN,
        ),
    ];
    let access = captured.wait_for_access_events(replies.len()).await;
    let mut ids = Vec::new();
    for (i, (reply, status, body)) in replies.iter().enumerate() {
        assert_eq!(reply.status, *status, "{reply:?}");
        assert_eq!(reply.body, *body, "{reply:?}");
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{reply:?}"
        );
        let id = reply.header("x-request-id").expect("x-request-id");
        assert!(!id.is_empty());
        ids.push(id.to_owned());
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert!(
            reply.header("content-security-policy").is_some(),
            "{reply:?}"
        );
        assert!(reply.header("ratelimit").is_some(), "{reply:?}");
        assert_eq!(
            reply.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(
            access[i]["http.response.status_code"], *status,
            "{access:?}"
        );
        assert_eq!(access[i]["request_id"], ids[i].as_str(), "{access:?}");
    }
    let events = captured.security_events();
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["forbidden", "unauthenticated"], "{events:?}");
    assert_eq!(events[0].1["fields"]["request_id"], ids[1].as_str());
    assert_eq!(events[1].1["fields"]["request_id"], ids[2].as_str());
}

/// Under `HeaderPolicy::html()`, a kept page gets the rules pages get: a CSP with this
/// request's nonce and the `Cache-Control` a nonce page needs, as the app's 200 page does.
#[tokio::test]
async fn kept_pages_get_the_nonce_csp_and_cache_rules_of_pages() {
    let hardening = kept().security_headers(HeaderPolicy::html()).unwrap();
    let addr = serve(routes().layer(hardening)).await;
    let ok = http_get(addr, "/", &[]).await;
    let missing = http_get(addr, "/notes/7", &[]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, NO_SUCH_NOTE);
    let nonce_free = |reply: &Reply| {
        let csp = reply.header("content-security-policy").unwrap();
        assert!(csp.contains("'nonce-"), "{reply:?}");
        csp.split(' ')
            .filter(|token| !token.starts_with("'nonce-"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(nonce_free(&missing), nonce_free(&ok));
    assert_ne!(
        missing.header("content-security-policy"),
        ok.header("content-security-policy"),
        "each request has its own nonce"
    );
    assert!(missing.header("cache-control").is_some(), "{missing:?}");
    assert_eq!(missing.header("cache-control"), ok.header("cache-control"));
}

/// `Content-Type` is parsed as a media type: `text/html` in any case and with any
/// parameters is a page; `text/htmlx`, a list, another type, none, or two fields (a browser
/// takes the last valid one) are not, and become problems.
#[tokio::test]
async fn only_a_text_html_media_type_is_a_page() {
    let addr = serve(routes().layer(kept())).await;
    for (n, (media_type, is_page)) in MEDIA_TYPES.iter().enumerate() {
        let reply = http_get(addr, &format!("/typed/{n}"), &[]).await;
        if *is_page {
            assert_eq!(reply.status, 404, "{media_type}: {reply:?}");
            assert_eq!(reply.header("content-type"), Some(*media_type));
            assert_eq!(reply.body, NO_SUCH_NOTE, "{media_type}");
        } else {
            assert_problem(&reply, 404);
        }
    }
    assert_problem(&http_get(addr, "/untyped", &[]).await, 404);
    assert_problem(&http_get(addr, "/two-types", &[]).await, 404);
}

/// A server error's page may show internals: it is replaced by a problem, with the option.
#[tokio::test]
async fn server_error_pages_stay_problems() {
    let addr = serve(routes().layer(kept())).await;
    for status in [500, 502, 503] {
        let reply = http_get(addr, &format!("/server-error/{status}"), &[]).await;
        assert_problem(&reply, status);
    }
}

/// A handler's `Problem` or `Error`, a problem whatever `Content-Type` it ends up with,
/// axum's own rejections (plain text, or no body) and the router's empty 404 and 405 stay
/// problems.
#[tokio::test]
async fn problems_and_framework_rejections_stay_problems() {
    let addr = serve(routes().layer(kept())).await;
    let body = assert_problem(&http_get(addr, "/problem", &[]).await, 404);
    assert_eq!(body["detail"], "no such note");
    assert_problem(&http_get(addr, "/error", &[]).await, 403);
    assert_problem(&http_get(addr, "/problem-as-html", &[]).await, 404);
    // Plain-text extractor rejections: no JSON content type (415), JSON that does not
    // parse (400).
    assert_problem(&send(addr, "POST", "/json", &[], Some("")).await, 400);
    let reply = request(addr, "POST", "/json", &["content-length: 0"]).await;
    assert_problem(&reply, 415);
    assert_problem(&http_get(addr, "/nowhere", &[]).await, 404);
    assert_problem(&request(addr, "DELETE", "/notes/7", &[]).await, 405);
}

/// The layer's own rejections are problems with the option, even on routes whose handler
/// answers HTML pages: the host allowlist, CORS, the rate limit, the query and body limits
/// (a streamed body cut off while the handler answers its own HTML 400 too), CSRF and the
/// timeout.
#[tokio::test]
async fn the_layers_own_rejections_stay_problems() {
    let hardening = kept()
        .allowed_hosts(["localhost"])
        .unwrap()
        .body_limit(16)
        .unwrap()
        .timeout(Duration::from_millis(200))
        .unwrap();
    let addr = serve(routes().layer(hardening)).await;
    // Host allowlist.
    let reply = exchange(
        addr,
        b"GET /notes/7 HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_problem(&reply, 400);
    // CORS: a preflight from an origin not allowed.
    let reply = request(
        addr,
        "OPTIONS",
        "/notes/7",
        &[
            "origin: https://evil.example",
            "access-control-request-method: GET",
        ],
    )
    .await;
    assert_problem(&reply, 403);
    // Query parameters over the limit.
    let query: Vec<String> = (0..51).map(|i| format!("p{i}=1")).collect();
    let reply = http_get(addr, &format!("/notes/7?{}", query.join("&")), &[]).await;
    assert_problem(&reply, 400);
    // A declared body over the limit.
    let reply = send(addr, "POST", "/notes", &[], Some(&"x".repeat(17))).await;
    assert_problem(&reply, 413);
    // A chunked body over the limit: the handler answers its HTML 400, the limit a 413.
    let reply = exchange(
        addr,
        b"POST /upload HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
          transfer-encoding: chunked\r\n\r\n20\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n0\r\n\r\n",
    )
    .await;
    assert_problem(&reply, 413);
    // CSRF: a cookie-carrying form post from another site.
    let reply = request(
        addr,
        "POST",
        "/",
        &[
            "cookie: __Host-session=abc",
            "sec-fetch-site: cross-site",
            "origin: https://evil.example",
            "content-length: 0",
        ],
    )
    .await;
    assert_problem(&reply, 403);
    // The timeout, on a route whose handler would have answered an HTML 404.
    assert_problem(&http_get(addr, "/slow", &[]).await, 503);
    // And the pages themselves still arrive.
    assert_eq!(http_get(addr, "/notes/7", &[]).await.body, NO_SUCH_NOTE);
}

/// The rate limiter's 429, with the option: a problem, with `Retry-After`.
#[tokio::test]
async fn the_rate_limiters_429_stays_a_problem() {
    use std::num::NonZeroU32;
    let one = NonZeroU32::new(1).unwrap();
    let limiter = hardening_core::ratelimit::RateLimiter::new([
        hardening_core::ratelimit::Policy::per_client_ip(
            "per-ip",
            hardening_core::ratelimit::Quota::per_hour(one),
        ),
    ]);
    let addr = serve(routes().layer(kept().rate_limit(limiter).unwrap())).await;
    assert_eq!(http_get(addr, "/notes/7", &[]).await.body, NO_SUCH_NOTE);
    let reply = http_get(addr, "/notes/7", &[]).await;
    assert_problem(&reply, 429);
    assert!(reply.header("retry-after").is_some(), "{reply:?}");
}

/// A kept page whose body is streamed (its size unknown) is passed on as a streamed success
/// is: logged when its body ends, and a panic in it is one `panicked` event.
#[tokio::test]
async fn a_streamed_page_is_passed_on_as_a_streamed_success_is() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let streamed = |body: Body| {
        let mut res = Response::new(body);
        *res.status_mut() = StatusCode::NOT_FOUND;
        res.headers_mut()
            .insert(CONTENT_TYPE, "text/html; charset=utf-8".parse().unwrap());
        res
    };
    let app = Router::new()
        .route(
            "/stream",
            get(move || async move {
                streamed(Body::new(hardening_tests::UnknownSize(Some(Bytes::from(
                    NO_SUCH_NOTE,
                )))))
            }),
        )
        .route(
            "/panics",
            get(move || async move {
                streamed(Body::new(hardening_tests::PanicsAfterOneChunk::default()))
            }),
        )
        .layer(kept());
    let get = |path: &str| {
        app.clone()
            .oneshot(http::Request::get(path).body(Body::empty()).unwrap())
    };
    let res = get("/stream").await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers().contains_key("x-request-id"));
    assert!(captured.access_events().is_empty(), "logged before its end");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, NO_SUCH_NOTE);
    let access = captured.access_events();
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0]["http.response.status_code"], 404);

    let res = get("/panics").await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.into_body().collect().await.is_err());
    assert_eq!(captured.security_event_names(), ["panicked"]);
}

/// The option is logged once, at INFO, when it is set, and not again for each router the
/// layer is applied to or each request.
#[tokio::test]
async fn the_option_is_logged_once_when_set() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::INFO);
    let hardening = kept();
    let addr = serve(routes().layer(hardening.clone())).await;
    let _other: Router = routes().layer(hardening);
    http_get(addr, "/notes/7", &[]).await;
    http_get(addr, "/notes/8", &[]).await;
    let said: Vec<serde_json::Value> = captured
        .json_lines()
        .into_iter()
        .filter(|line| line["fields"]["setting"] == "keep_html_error_pages")
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0]["level"], "INFO");
    assert_eq!(said[0]["target"], hardening_core::LOG_TARGET);
}

/// `ProblemLayer` alone has the same option, the same rule (one implementation), and
/// reports a kept page's rejection once, under the id the page carries.
#[tokio::test]
async fn problem_layer_keeps_the_same_pages_and_reports_their_rejections() {
    use hardening_core::errors::ProblemLayer;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(routes().layer(ProblemLayer::new().keep_html_error_pages())).await;
    let reply = http_get(addr, "/documents/1", &[]).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, NOT_YOURS);
    let id = reply.header("x-request-id").expect("x-request-id");
    let events = captured.security_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "forbidden");
    assert_eq!(events[0].1["fields"]["request_id"], id);
    for (n, (media_type, is_page)) in MEDIA_TYPES.iter().enumerate() {
        let reply = http_get(addr, &format!("/typed/{n}"), &[]).await;
        assert_eq!(
            reply.body == NO_SUCH_NOTE,
            *is_page,
            "{media_type}: {reply:?}"
        );
    }
    assert_problem(&http_get(addr, "/server-error/500", &[]).await, 500);
    assert_problem(&http_get(addr, "/problem-as-html", &[]).await, 404);
}

/// A kept 401 page still names a challenge, as RFC 9110 §15.5.2 requires of every 401: the
/// suite's `Bearer` when the handler named none, the handler's own when it did. Through
/// `Hardening` and through `ProblemLayer` alike.
#[tokio::test]
async fn a_kept_401_page_names_a_challenge() {
    use hardening_core::errors::ProblemLayer;
    let through_hardening = serve(routes().layer(kept())).await;
    let through_problem_layer =
        serve(routes().layer(ProblemLayer::new().keep_html_error_pages())).await;
    for addr in [through_hardening, through_problem_layer] {
        for (path, challenge) in [("/account", "Bearer"), ("/admin", r#"Basic realm="admin""#)] {
            let reply = http_get(addr, path, &[]).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (401, SIGN_IN),
                "{reply:?}"
            );
            assert_eq!(
                reply.header("www-authenticate"),
                Some(challenge),
                "{reply:?}"
            );
        }
        // A page for another status gets none.
        let reply = http_get(addr, "/documents/1", &[]).await;
        assert_eq!(reply.status, 403);
        assert_eq!(reply.header("www-authenticate"), None, "{reply:?}");
    }
}
