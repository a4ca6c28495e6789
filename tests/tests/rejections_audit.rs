//! Bad request input behind `Hardening::strict()` over TCP: the problem it is answered with
//! stays small whatever the input's size, and secrets in it reach no log line.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{Form, Path, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use hardening_core::Hardening;
use hardening_errors::{RequestId, Valid};
use hardening_tests::{Captured, Reply, exchange, serve};
use serde::Deserialize;

const SECRET: &str = "Hunter2-Zebra-Quartz";

#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Login {
    #[garde(contains("@"))]
    email: String,
    #[garde(length(min = 30))]
    password: String,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Tags {
    #[garde(inner(length(min = 1)))]
    tags: Vec<String>,
}

/// A rule of the service's own whose message quotes the value, as custom rules often do.
#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Handle {
    #[garde(custom(not_taken))]
    handle: String,
}

fn not_taken(value: &str, _: &()) -> garde::Result {
    Err(garde::Error::new(format!("{value} is taken")))
}

/// Labels in groups in sections: three levels of map keys, each a client's.
#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Sections {
    #[garde(dive)]
    sections: HashMap<String, HashMap<String, HashMap<String, Label>>>,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Label {
    #[garde(length(max = 3))]
    v: String,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Search {
    #[garde(length(max = 10))]
    q: String,
    #[garde(skip)]
    limit: u32,
}

fn app() -> Router {
    Router::new()
        .route(
            "/login",
            post(|Valid(Json(_)): Valid<Json<Login>>| async { "ok" }),
        )
        .route("/login-plain", post(|Json(_): Json<Login>| async { "ok" }))
        .route(
            "/login-form",
            post(|Valid(Form(_)): Valid<Form<Login>>| async { "ok" }),
        )
        .route(
            "/tags",
            post(|Valid(Json(_)): Valid<Json<Tags>>| async { "ok" }),
        )
        .route(
            "/handle",
            post(|Valid(Json(_)): Valid<Json<Handle>>| async { "ok" }),
        )
        .route(
            "/sections",
            post(|Valid(Json(_)): Valid<Json<Sections>>| async { "ok" }),
        )
        .route(
            "/search",
            get(|Valid(Query(_)): Valid<Query<Search>>| async { "ok" }),
        )
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move { id.to_string() }),
        )
        .layer(Hardening::strict())
}

/// Sends `head` (request line and header lines) with `body`, closing the connection.
async fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut req = format!(
        "{head}\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    exchange(addr, &req).await
}

/// POSTs JSON to `path`: the reply, checked to be a problem of `status` with a request id
/// in its header and body.
async fn problem(addr: SocketAddr, path: &str, json: &str, status: u16) -> serde_json::Value {
    let reply = send(
        addr,
        &format!("POST {path} HTTP/1.1\r\ncontent-type: application/json"),
        json.as_bytes(),
    )
    .await;
    let shown: String = reply.body.chars().take(300).collect();
    assert_eq!(reply.status, status, "{path}: {shown}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let id = reply.header("x-request-id").unwrap();
    RequestId::parse(id).unwrap();
    let body = reply.json();
    assert_eq!(body["request_id"], id, "{shown}");
    body
}

/// A body of thousands of bad fields: one error each was listed, so that 900 KB of `"",`
/// was answered with an 18 MB problem. At most 100 are listed (the first by pointer), and
/// the detail says the list is cut.
#[tokio::test]
async fn a_body_of_thousands_of_invalid_fields_gets_a_bounded_problem() {
    let addr = serve(app()).await;
    let tags = vec![""; 300_000];
    let json = serde_json::json!({ "tags": tags }).to_string();
    let body = problem(addr, "/tags", &json, 422).await;
    let text = body.to_string();
    assert!(
        text.len() < 32 * 1024,
        "a {} KB body was answered with {} KB",
        json.len() / 1024,
        text.len() / 1024
    );
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 100, "{}", &text[..300]);
    assert_eq!(errors[0]["pointer"], "#/tags/0");
    assert_eq!(errors[1]["pointer"], "#/tags/1");
    assert_eq!(errors[2]["pointer"], "#/tags/10", "sorted by pointer");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("the first 100"), "{detail}");

    // 100 exactly: all listed, and the detail as it always was.
    let json = serde_json::json!({ "tags": vec![""; 100] }).to_string();
    let body = problem(addr, "/tags", &json, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 100);
    assert_eq!(
        body["detail"],
        "one or more fields are invalid; see `errors`"
    );
}

/// A field error's detail and pointer are bounded too: a rule's message that quotes a long
/// value is cut, and a pointer through long map keys names an ancestor instead. (A 100 KB
/// value came back whole in the detail; three 40-byte keys of `é` made a pointer of 700
/// bytes, their percent-encoding tripling them.)
#[tokio::test]
async fn long_field_error_details_and_pointers_are_cut() {
    let addr = serve(app()).await;
    let long = "x".repeat(100_000);
    let json = serde_json::json!({ "handle": long }).to_string();
    let body = problem(addr, "/handle", &json, 422).await;
    let error = &body["errors"][0];
    assert_eq!(error["pointer"], "#/handle");
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.len() <= 256, "a detail of {} bytes", detail.len());
    assert!(
        detail.starts_with("xxx") && detail.ends_with('…'),
        "{detail}"
    );

    let key = "é".repeat(20);
    let json = serde_json::json!({
        "sections": { &key: { &key: { &key: { "v": "long" } } } }
    })
    .to_string();
    let body = problem(addr, "/sections", &json, 422).await;
    let pointer = body["errors"][0]["pointer"].as_str().unwrap();
    assert!(pointer.len() <= 256, "a pointer of {} bytes", pointer.len());
    let encoded = "%C3%A9".repeat(20);
    assert_eq!(pointer, format!("#/sections/{encoded}/{encoded}"));
}

/// A secret in a request's body, path or query, in a field that breaks a rule, has the
/// wrong type or does not parse: each answered with a problem of the right status and a
/// request id, and the secret in no problem and no log line at any level (axum's own
/// rejection events left out, as `init_json_logs` and the capture leave them out).
#[tokio::test]
async fn secrets_in_bad_input_reach_no_problem_and_no_log() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let addr = serve(app()).await;
    let json = "content-type: application/json";
    let form = "content-type: application/x-www-form-urlencoded";
    let cases: Vec<(String, &str, String, u16)> = vec![
        // A garde rule broken by the password itself, and by the field next to it.
        (
            "POST /login".into(),
            json,
            format!(r#"{{"email":"a@b","password":"{SECRET}"}}"#),
            422,
        ),
        (
            "POST /login".into(),
            json,
            format!(r#"{{"email":"{SECRET}","password":"{SECRET}{SECRET}"}}"#),
            422,
        ),
        // The password of the wrong type, or the wrong type at the top.
        (
            "POST /login".into(),
            json,
            r#"{"email":"a@b","password":1234567890123456}"#.to_owned(),
            422,
        ),
        (
            "POST /login".into(),
            json,
            format!(r#"{{"email":"a@b","password":["{SECRET}"]}}"#),
            422,
        ),
        ("POST /login".into(), json, format!(r#""{SECRET}""#), 422),
        (
            "POST /login".into(),
            json,
            format!(r#"{{"email":"a@b","password":{{"{SECRET}":1}}}}"#),
            422,
        ),
        (
            "POST /login-plain".into(),
            json,
            format!(r#"{{"email":"a@b","password":["{SECRET}"]}}"#),
            422,
        ),
        // Malformed JSON around it, a byte-order mark, no body, the wrong media type, too much.
        (
            "POST /login".into(),
            json,
            format!(r#"{{"email":"a@b","password":"{SECRET}"#),
            400,
        ),
        (
            "POST /login".into(),
            json,
            format!("\u{feff}{{\"email\":\"a@b\",\"password\":\"{SECRET}\"}}"),
            400,
        ),
        ("POST /login".into(), json, String::new(), 400),
        (
            "POST /login".into(),
            "content-type: text/plain",
            format!(r#"{{"password":"{SECRET}"}}"#),
            415,
        ),
        (
            "POST /login".into(),
            json,
            format!(r#"{{"password":"{SECRET}","x":"{}"}}"#, "a".repeat(2 << 20)),
            413,
        ),
        // A form: the rule broken, the value not UTF-8, the field twice.
        (
            "POST /login-form".into(),
            form,
            format!("email=a%40b&password={SECRET}"),
            422,
        ),
        (
            "POST /login-form".into(),
            form,
            format!("email=a%40b&password=%FF{SECRET}"),
            422,
        ),
        (
            "POST /login-form".into(),
            form,
            format!("email=a&password={SECRET}&password={SECRET}"),
            422,
        ),
        // A path that does not parse; a query that does not, or does, with a password.
        (format!("GET /users/{SECRET}"), "", String::new(), 400),
        (
            format!("GET /search?q=a&limit=x&password={SECRET}"),
            "",
            String::new(),
            400,
        ),
        (
            format!("GET /search?password={SECRET}&q=a&limit=1"),
            "",
            String::new(),
            200,
        ),
    ];
    for (line, header, body, status) in cases {
        let mut head = format!("{line} HTTP/1.1");
        if !header.is_empty() {
            head = format!("{head}\r\n{header}");
        }
        let reply = send(addr, &head, body.as_bytes()).await;
        let shown: String = reply.body.chars().take(300).collect();
        assert_eq!(
            reply.status,
            status,
            "{line} {}: {shown}",
            &body[..body.len().min(80)]
        );
        assert!(!reply.body.contains(SECRET), "{line}: {shown}");
        if status != 200 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json"),
                "{line}"
            );
            assert_eq!(
                reply.json()["request_id"],
                reply.header("x-request-id").unwrap(),
                "{line}"
            );
        }
    }
    let lines = captured.json_lines();
    assert!(
        lines
            .iter()
            .any(|l| l["target"] == hardening_core::ACCESS_TARGET)
    );
    for line in lines {
        assert!(!line.to_string().contains(SECRET), "{line}");
    }
}
