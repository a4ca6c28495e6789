//! Bad requests through an axum router wrapped by `ProblemLayer`: every one must come back as
//! an RFC 9457 problem with a request id, and none may carry internal text or echo the input.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Form, Path, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use hardening_errors::{Error, ProblemLayer, RequestId, Valid};
use hardening_tests::Captured;
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;

/// Strings that must never appear in a response body.
const SECRETS: &[&str] = &[
    "hunter2",
    "s3cr3t",
    "SELECT",
    "panicked",
    "connection refused",
    "lots-and-lots",
    "x_evil_field",
    "stack backtrace",
    "src/",
];

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NewUser {
    #[garde(length(min = 3))]
    name: String,
    #[garde(range(min = 13))]
    age: u8,
}

/// Tags by name, a name being any string: `.` and `[` included.
#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Tagged {
    #[garde(dive)]
    tags: std::collections::HashMap<String, Tag>,
    #[garde(length(min = 3))]
    r#type: String,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Tag {
    #[garde(length(max = 3))]
    v: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Search {
    q: String,
    limit: u32,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct OrgUser {
    org: String,
    id: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("loading user failed")]
struct LoadUser(#[source] DbError);

#[derive(Debug, thiserror::Error)]
#[error("connection refused: postgres://app:hunter2@db-7/users SELECT * FROM users")]
struct DbError;

fn app() -> Router {
    Router::new()
        .route("/users", post(|Json(_): Json<NewUser>| async { "created" }))
        .route(
            "/users/validated",
            post(|Valid(Json(_)): Valid<Json<NewUser>>| async { "created" }),
        )
        .route(
            "/users/validated-small",
            post(|Valid(Json(_)): Valid<Json<NewUser>>| async { "created" })
                .layer(DefaultBodyLimit::max(64)),
        )
        .route(
            "/tags",
            post(|Valid(Json(_)): Valid<Json<Tagged>>| async { "created" }),
        )
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move { id.to_string() }),
        )
        .route(
            "/orgs/{org}/users/{id}",
            get(|Path(p): Path<OrgUser>| async move { p.org }),
        )
        .route("/search", get(|Query(s): Query<Search>| async move { s.q }))
        .route("/form", post(|Form(_): Form<Search>| async { "ok" }))
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/upload",
            post(|body: bytes::Bytes| async move { body.len().to_string() })
                .layer(DefaultBodyLimit::max(64)),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler panicked: password=hunter2 at src/db.rs:42");
                }
                "unreachable"
            }),
        )
        .route(
            "/internal",
            get(|| async { Err::<String, _>(Error::internal(LoadUser(DbError))) }),
        )
        .route(
            "/plain-500",
            get(|| async {
                (
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "SELECT * FROM users WHERE password='hunter2'",
                )
            }),
        )
        .route(
            // A server error in someone else's problem format (a proxied upstream's): its
            // body may hold internals like any other 5xx body.
            "/foreign-problem-500",
            get(|| async {
                (
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    [("content-type", "application/problem+json")],
                    r#"{"title":"Internal Server Error","status":500,"trace":"at db.rs:42: SELECT password FROM users"}"#,
                )
            }),
        )
        .route(
            "/slow",
            get(std::future::pending::<&'static str>).layer(
                tower_http::timeout::TimeoutLayer::with_status_code(
                    http::StatusCode::REQUEST_TIMEOUT,
                    Duration::from_millis(20),
                ),
            ),
        )
        .layer(ProblemLayer::new())
}

struct Case {
    name: &'static str,
    method: &'static str,
    uri: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// Substrings the `detail` must contain.
    detail: &'static [&'static str],
}

fn case(name: &'static str, method: &'static str, uri: &'static str) -> Case {
    Case {
        name,
        method,
        uri,
        content_type: None,
        body: Vec::new(),
        status: 0,
        detail: &[],
    }
}

impl Case {
    fn json(mut self, body: &str) -> Self {
        self.content_type = Some("application/json");
        self.body = body.as_bytes().to_vec();
        self
    }
    fn typed(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }
    fn expect(mut self, status: u16, detail: &'static [&'static str]) -> Self {
        self.status = status;
        self.detail = detail;
        self
    }
}

fn cases() -> Vec<Case> {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let long_field = format!(
        r#"{{"name":"abc","age":20,"x_evil_field{}":1}}"#,
        "A".repeat(300)
    );
    vec![
        case("malformed JSON", "POST", "/users")
            .json(r#"{"name": "abc", "age": "#)
            .expect(400, &["not valid JSON", "line 1"]),
        case("JSON with trailing garbage", "POST", "/users")
            .json(r#"{"name":"abc","age":20} lots-and-lots"#)
            .expect(400, &["not valid JSON", "trailing characters"]),
        case("deeply nested JSON arrays", "POST", "/users")
            .json(&deep)
            .expect(422, &["found an array"]),
        case("wrong JSON type", "POST", "/users")
            .json(r#"{"name":"abc","age":"lots-and-lots"}"#)
            .expect(422, &["`age`", "expected u8", "found a string"]),
        case("JSON number out of range", "POST", "/users")
            .json(r#"{"name":"abc","age":300}"#)
            .expect(422, &["`age`", "expected u8"]),
        case("JSON array instead of object", "POST", "/users")
            .json(r#"["s3cr3t"]"#)
            .expect(
                422,
                &[
                    "invalid value in the JSON body",
                    "expected an object, found 1 element",
                ],
            ),
        case("missing JSON field", "POST", "/users")
            .json(r#"{"name":"abc"}"#)
            .expect(422, &["missing the required field `age`"]),
        case("unknown JSON field with a huge name", "POST", "/users")
            .json(&long_field)
            .expect(422, &["unknown field"]),
        case("missing content type", "POST", "/users")
            .expect(415, &["Content-Type: application/json"]),
        case("wrong content type", "POST", "/users")
            .typed("text/plain", r#"{"name":"abc","age":20}"#)
            .expect(415, &["Content-Type: application/json"]),
        case("form endpoint sent JSON", "POST", "/form")
            .json(r#"{"q":"a","limit":1}"#)
            .expect(415, &["application/x-www-form-urlencoded"]),
        case("bad number in a form", "POST", "/form")
            .typed(
                "application/x-www-form-urlencoded",
                "q=a&limit=lots-and-lots",
            )
            .expect(422, &["`limit`", "expected an integer"]),
        case("unknown route", "GET", "/no/such/route").expect(404, &["no resource"]),
        case("wrong method", "DELETE", "/users").expect(405, &["not allowed"]),
        case("invalid path parameter", "GET", "/users/lots-and-lots")
            .expect(400, &["path parameter must be a non-negative integer"]),
        case(
            "invalid named path parameter",
            "GET",
            "/orgs/acme/users/lots-and-lots",
        )
        .expect(400, &["path parameter must be a non-negative integer"]),
        case(
            // The value's first part would pass for a key name in axum's message.
            "path parameter whose value looks like a key",
            "GET",
            "/users/hunter2%60%20with%20value%20%60x",
        )
        .expect(400, &["path parameter must be a non-negative integer"]),
        case(
            "path parameter overflow",
            "GET",
            "/users/99999999999999999999",
        )
        .expect(400, &["path parameter must be a non-negative integer"]),
        case(
            "bad number in the query",
            "GET",
            "/search?q=a&limit=lots-and-lots",
        )
        .expect(400, &["query string", "`limit`", "expected an integer"]),
        case(
            "invalid UTF-8 in the query",
            "GET",
            "/search?q=a&limit=%FF%FE",
        )
        .expect(400, &["query string", "`limit`"]),
        case("missing query parameter", "GET", "/search?limit=5")
            .expect(400, &["missing the required field `q`"]),
        case("body is not UTF-8", "POST", "/echo")
            .typed("text/plain", vec![0xff, 0xfe, b'a'])
            .expect(400, &["not valid UTF-8"]),
        case("oversized body", "POST", "/upload")
            .typed("application/octet-stream", vec![b'x'; 1024])
            .expect(413, &["larger than this service accepts"]),
        case(
            "oversized body to a validated route",
            "POST",
            "/users/validated-small",
        )
        .json(&format!(r#"{{"name":"{}","age":20}}"#, "a".repeat(100)))
        .expect(413, &["larger than this service accepts"]),
        case("validation rules broken", "POST", "/users/validated")
            .json(r#"{"name":"ab","age":5}"#)
            .expect(422, &["see `errors`"]),
        case("handler panics", "GET", "/panic").expect(500, &["internal error", "request id"]),
        case("handler returns an internal error", "GET", "/internal")
            .expect(500, &["internal error", "request id"]),
        case("handler returns a plain 500 with SQL", "GET", "/plain-500")
            .expect(500, &["internal error"]),
        case("handler times out", "GET", "/slow").expect(408, &["too long"]),
        case("foreign problem for a 500", "GET", "/foreign-problem-500").expect(500, &[]),
    ]
}

#[tokio::test]
async fn every_bad_request_is_a_problem_without_leaks() {
    let table = cases();
    assert!(table.len() >= 20);
    for case in table {
        let mut req = http::Request::builder().method(case.method).uri(case.uri);
        if let Some(ct) = case.content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Body::from(case.body.clone())).unwrap();
        let res = app().oneshot(req).await.unwrap();
        let name = case.name;

        assert_eq!(res.status().as_u16(), case.status, "{name}: status");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{name}: content-type"
        );
        assert_eq!(res.headers()["cache-control"], "no-store", "{name}");
        let header_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        RequestId::parse(&header_id).unwrap_or_else(|e| panic!("{name}: bad request id: {e}"));

        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let body: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {text}"));

        // RFC 9457 shape.
        assert!(body["type"].is_string(), "{name}: type in {text}");
        assert!(body["title"].is_string(), "{name}: title in {text}");
        assert_eq!(body["status"], case.status, "{name}: status member");
        assert_eq!(body["request_id"], header_id.as_str(), "{name}: request_id");
        let detail = body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no detail: {text}"));
        eprintln!("{:>3} {name:<40} {detail}", case.status);
        for want in case.detail {
            assert!(
                detail.contains(want),
                "{name}: detail {detail:?} lacks {want:?}"
            );
        }
        assert!(
            text.len() < 1024,
            "{name}: body too large ({} bytes)",
            text.len()
        );
        for secret in SECRETS {
            assert!(
                !text.contains(secret),
                "{name}: body leaks {secret:?}: {text}"
            );
        }
    }
}

/// A handler that answers a problem under another status (`(StatusCode::CONFLICT,
/// Error::NotFound)`, a common axum idiom): the `status` member is the response's (RFC 9457
/// 3.1.2), and an `about:blank` problem's title follows it.
#[tokio::test]
async fn the_status_member_is_the_http_status() {
    let app = Router::new()
        .route(
            "/conflict",
            get(|| async { (http::StatusCode::CONFLICT, Error::NotFound) }),
        )
        .route(
            "/unavailable",
            get(|| async {
                (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    hardening_errors::Problem::new(http::StatusCode::BAD_REQUEST)
                        .with_detail("try again"),
                )
            }),
        )
        .layer(ProblemLayer::new());
    for (uri, status, title, detail) in [
        ("/conflict", 409, "Conflict", None),
        (
            "/unavailable",
            503,
            "Service Unavailable",
            Some("try again"),
        ),
    ] {
        let res = app
            .clone()
            .oneshot(http::Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{uri}");
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["status"], status, "{uri}: {body}");
        assert_eq!(body["title"], title, "{uri}: {body}");
        if let Some(detail) = detail {
            assert_eq!(body["detail"], detail, "{uri}: {body}");
        }
    }
}

/// Someone else's problem for a client error (a proxied upstream's, another library's) is
/// passed on as written for the client, with this request's id stamped in; one that is not a
/// JSON object is replaced by a problem of the same status.
#[tokio::test]
async fn a_foreign_client_problem_carries_the_request_id() {
    let foreign = |body: &'static str| {
        get(move || async move {
            (
                http::StatusCode::NOT_FOUND,
                [("content-type", "application/problem+json")],
                body,
            )
        })
    };
    let app = Router::new()
        .route(
            "/kept",
            foreign(
                r#"{"type":"https://upstream.example/no-order","title":"No such order","status":404,"request_id":"theirs","order":7}"#,
            ),
        )
        .route(
            // Media types are case-insensitive (RFC 9110 8.3.1).
            "/kept-any-case",
            get(|| async {
                (
                    http::StatusCode::NOT_FOUND,
                    [("content-type", "Application/Problem+JSON; charset=utf-8")],
                    r#"{"title":"No such order","status":404}"#,
                )
            }),
        )
        .route("/not-json", foreign("<h1>Not Found</h1> at src/orders.rs"))
        .route("/not-an-object", foreign(r#"["no such order"]"#))
        .layer(ProblemLayer::new());
    for (uri, title) in [
        ("/kept", "No such order"),
        ("/kept-any-case", "No such order"),
        ("/not-json", "Not Found"),
        ("/not-an-object", "Not Found"),
    ] {
        let res = app
            .clone()
            .oneshot(http::Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{uri}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json"),
            "{uri}"
        );
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {bytes:?}"));
        assert_eq!(body["request_id"], id.as_str(), "{uri}: {body}");
        assert_eq!(body["title"], title, "{uri}: {body}");
        assert_eq!(body["status"], 404, "{uri}: {body}");
        assert!(!body.to_string().contains("src/"), "{uri}: {body}");
    }
}

/// A server error's body is replaced because whatever wrote it may have put internals in
/// it; its headers of its own are dropped for the same reason. Protocol and security headers
/// stay.
#[tokio::test]
async fn a_replaced_server_error_drops_its_own_headers() {
    let app = Router::new()
        .route(
            "/upstream-503",
            get(|| async {
                (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    [
                        ("server", "nginx/1.18.0 (Ubuntu)"),
                        ("x-powered-by", "PHP/7.2.1"),
                        ("x-debug-token-link", "https://app.example/_profiler/1a2b3c"),
                        ("x-backend-error", "SELECT password FROM users"),
                        ("retry-after", "30"),
                        ("x-content-type-options", "nosniff"),
                    ],
                    "upstream down",
                )
            }),
        )
        .layer(ProblemLayer::new());
    let res = app
        .oneshot(
            http::Request::get("/upstream-503")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let headers = res.headers();
    for dropped in [
        "server",
        "x-powered-by",
        "x-debug-token-link",
        "x-backend-error",
    ] {
        assert!(
            !headers.contains_key(dropped),
            "{dropped} kept: {headers:?}"
        );
    }
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn wrong_method_keeps_allow_header() {
    let req = http::Request::delete("/users").body(Body::empty()).unwrap();
    let res = app().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");
}

/// POSTs `json` to `path`, expecting a 422: its problem, and its errors' pointers.
async fn validation_problem(path: &str, json: &str) -> (serde_json::Value, Vec<String>) {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(json.to_owned()))
        .unwrap();
    let res = app().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 422);
    let body: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let pointers = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect();
    (body, pointers)
}

#[tokio::test]
async fn validation_problem_lists_field_errors() {
    let (body, pointers) = validation_problem("/users/validated", r#"{"name":"ab","age":5}"#).await;
    assert_eq!(body["type"], hardening_errors::types::VALIDATION_ERROR);
    assert_eq!(pointers, ["#/age", "#/name"]);
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("13"));
}

/// Pointers into a map whose keys hold `.`, `[` or `/`, and to a raw identifier's field: one
/// reference token per key (RFC 6901, as a URI fragment), the field without its `r#`.
#[tokio::test]
async fn validation_pointers_name_map_keys_and_raw_fields_as_sent() {
    let body = serde_json::json!({
        "tags": { "a.b": { "v": "long" }, "x[0]": { "v": "long" }, "c/d": { "v": "long" } },
        "type": "t",
    });
    let (body, pointers) = validation_problem("/tags", &body.to_string()).await;
    assert_eq!(
        pointers,
        [
            "#/tags/a.b/v",
            "#/tags/c~1d/v",
            "#/tags/x%5B0%5D/v",
            "#/type"
        ],
        "{body}"
    );
}

/// A map key over 40 bytes is not echoed (as a rejection's over-long field name is not):
/// its error points at the map that holds it, and errors that thereby say the same thing
/// are listed once, so a body of many long keys is not reflected back key by key.
#[tokio::test]
async fn validation_pointers_leave_out_long_map_keys() {
    let long = |i: usize| format!("lots-and-lots-{}{i}", "A".repeat(300));
    let tags: serde_json::Map<String, serde_json::Value> = (0..50)
        .map(|i| (long(i), serde_json::json!({ "v": "long" })))
        .chain([("ok".to_owned(), serde_json::json!({ "v": "long" }))])
        .collect();
    let body = serde_json::json!({ "tags": tags, "type": "tag" });
    let (problem, pointers) = validation_problem("/tags", &body.to_string()).await;
    let text = problem.to_string();
    assert_eq!(pointers, ["#/tags", "#/tags/ok/v"], "{text}");
    assert!(!text.contains("lots-and-lots"), "{text}");
    assert!(text.len() < 1024, "{} bytes: {text}", text.len());
    // Exactly 40 bytes is still named.
    let forty = "k".repeat(40);
    let body = serde_json::json!({ "tags": { &forty: { "v": "long" } }, "type": "tag" });
    let (_, pointers) = validation_problem("/tags", &body.to_string()).await;
    assert_eq!(pointers, [format!("#/tags/{forty}/v")]);
}

async fn logs_of(uri: &str) -> (String, String) {
    let (captured, _guard) = Captured::json_logs(tracing::Level::ERROR);
    let req = http::Request::get(uri).body(Body::empty()).unwrap();
    let res = app().oneshot(req).await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    drop(res);
    let logs = captured.text();
    (id, logs)
}

#[tokio::test]
async fn internal_error_is_logged_once_with_request_id_and_chain() {
    let (id, logs) = logs_of("/internal").await;
    assert_eq!(logs.matches("ERROR").count(), 1, "logged once: {logs}");
    assert!(logs.contains(&id), "request id in {logs}");
    assert!(
        logs.contains(r#""error":"loading user failed: connection refused"#),
        "source chain in {logs}"
    );
    assert!(
        logs.contains("postgres://app:[redacted]@db-7") && !logs.contains("hunter2"),
        "the chain is logged without the password in its database URL: {logs}"
    );
}

#[tokio::test]
async fn panic_is_logged_with_request_id() {
    let (id, logs) = logs_of("/panic").await;
    assert_eq!(logs.matches("ERROR").count(), 1, "logged once: {logs}");
    assert!(
        logs.contains(&id) && logs.contains("handler panicked"),
        "{logs}"
    );
    assert!(
        logs.contains("password=[redacted]") && !logs.contains("hunter2"),
        "the panic text is logged with its secret redacted: {logs}"
    );
}
