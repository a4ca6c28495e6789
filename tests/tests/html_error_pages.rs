//! A server-rendered app's own error pages: `Hardening::strict()` makes a problem of every
//! error response, a handler's HTML page for a 404 included. Over real TCP on 127.0.0.1.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hardening_core::Hardening;
use hardening_core::errors::{Error, Problem};
use hardening_tests::{Reply, get as http_get, send, serve};
use http::StatusCode;
use http::header::CONTENT_TYPE;

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
