//! Audit of `CspReports`, the endpoint any page or client can POST violation reports to:
//! what reaches the log of a report carrying secrets or forged lines, how much one request
//! can log, and what every refusal looks like, alone and behind `Hardening::strict()`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use axum::Router;
use hardening_core::Hardening;
use hardening_core::headers::CspReports;
use hardening_tests::{Captured, Reply, exchange, serve};
use serde_json::{Value, json};

const PATH: &str = "/csp-report";

/// The endpoint alone, and behind `Hardening::strict()`.
fn apps(reports: CspReports) -> [(&'static str, Router); 2] {
    let alone = reports.clone().router(PATH);
    let hardened = reports.router(PATH).layer(Hardening::strict());
    [("alone", alone), ("behind Hardening", hardened)]
}

/// `POST /csp-report` with this content type (none if empty) and these bytes.
async fn post(addr: SocketAddr, content_type: &str, body: &[u8]) -> Reply {
    let mut request = format!("POST {PATH} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    if !content_type.is_empty() {
        request.push_str(&format!("content-type: {content_type}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    exchange(addr, &request).await
}

/// A `report-uri` report (`application/csp-report`) with these fields.
async fn post_report(addr: SocketAddr, fields: Value) -> Reply {
    let body = json!({ "csp-report": fields }).to_string();
    post(addr, "application/csp-report", body.as_bytes()).await
}

/// The fields of each event logged under `hardening::csp`.
fn csp_events(captured: &Captured) -> Vec<Value> {
    captured
        .json_lines()
        .into_iter()
        .filter(|line| line["target"] == "hardening::csp")
        .map(|line| line["fields"].clone())
        .collect()
}

/// The violation events among them.
fn violations(captured: &Captured) -> Vec<Value> {
    csp_events(captured)
        .into_iter()
        .filter(|fields| fields["message"] == "CSP violation reported")
        .collect()
}

/// Positive control: what Chromium sends, in both formats, is logged with its fields.
#[tokio::test]
async fn browser_reports_are_logged() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(CspReports::new().router(PATH)).await;
    let reply = post_report(
        addr,
        json!({
            "document-uri": "https://app.example/notes?page=2",
            "referrer": "",
            "violated-directive": "script-src-elem",
            "effective-directive": "script-src-elem",
            "original-policy": "script-src 'nonce-abc' 'strict-dynamic'; report-uri /csp-report",
            "disposition": "enforce",
            "blocked-uri": "https://cdn.example/lib.js?v=3",
            "status-code": 200,
            "script-sample": ""
        }),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let batch = json!([{
        "type": "csp-violation",
        "age": 10,
        "url": "https://app.example/notes",
        "user_agent": "Chrome",
        "body": {
            "documentURL": "https://app.example/notes",
            "blockedURL": "inline",
            "effectiveDirective": "script-src-elem",
            "disposition": "report",
            "originalPolicy": "script-src 'nonce-abc'",
            "sample": "",
            "statusCode": 200
        }
    }]);
    let reply = post(
        addr,
        "application/reports+json",
        batch.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let logged = violations(&captured);
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(logged[0]["document_uri"], "https://app.example/notes");
    assert_eq!(logged[0]["blocked_uri"], "https://cdn.example/lib.js");
    assert_eq!(logged[0]["violated_directive"], "script-src-elem");
    assert_eq!(logged[0]["disposition"], "enforce");
    assert_eq!(logged[1]["blocked_uri"], "inline");
    assert_eq!(logged[1]["disposition"], "report");
}

/// Secrets a report can carry, from a real browser (the page's URL, a sample of the page)
/// or not: none of them reaches the log.
#[tokio::test]
async fn secrets_in_a_report_do_not_reach_the_log() {
    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS1qd3Q";
    let secrets = [
        ("userinfo", "https://alice:Pa55userinfo@app.example/home"),
        (
            "password holding ?",
            "https://alice:Pa55?mark@app.example/home",
        ),
        (
            "token as user",
            "https://TokenAsUser9f8e7d@app.example/home",
        ),
        (
            "reset token",
            "https://app.example/reset/9f86d081884c7d659a2feaa0c55ad015",
        ),
        ("invite jwt", &format!("https://app.example/invite/{JWT}")),
        (
            "session id",
            "https://app.example/u/k3j4h5g6f7d8s9a0q1w2e3r4t5",
        ),
        (
            "uuid",
            "https://app.example/share/550e8400-e29b-41d4-a716-446655440000",
        ),
        (
            "jsessionid",
            "https://app.example/cart;jsessionid=A1B2C3D4E5F6SESS",
        ),
        ("query", "https://app.example/cb?code=QueryCode123"),
        (
            "fragment",
            "https://app.example/cb#access_token=FragToken123",
        ),
        (
            "data",
            "data:text/html;base64,PHNjcmlwdD5EYXRhU2VjcmV0PC9zY3JpcHQ+",
        ),
        ("javascript", "javascript:fetch('/steal?JsSecret42')"),
        (
            "blob",
            "blob:https://app.example/7c9e6679-7425-40de-944b-e07fc1f90ae7",
        ),
    ];
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    // All from this one client: past its default share of 10 a minute.
    let reports = CspReports::new().per_client(std::num::NonZeroU32::new(60).unwrap());
    let addr = serve(reports.router(PATH)).await;
    for (what, uri) in &secrets {
        for field in ["document-uri", "blocked-uri"] {
            let reply = post_report(
                addr,
                json!({ field: uri, "violated-directive": "script-src-elem" }),
            )
            .await;
            assert_eq!(reply.status, 204, "{what}: {reply:?}");
        }
    }
    // Fields that hold page content or the whole policy.
    let reply = post_report(
        addr,
        json!({
            "document-uri": "https://app.example/",
            "violated-directive": "script-src 'nonce-NonceInDirective'",
            "script-sample": "var apiKey = 'SampleSecret1'",
            "sample": "SampleSecret2",
            "referrer": "https://app.example/?t=ReferrerSecret",
            "original-policy": "script-src 'nonce-PolicyNonce'",
            "source-file": "https://app.example/a.js?sig=SourceSecret",
        }),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let logged = violations(&captured);
    assert_eq!(logged.len(), 2 * secrets.len() + 1, "{logged:?}");
    let text = captured.text();
    let marks = [
        "Pa55",
        "mark@",
        "TokenAsUser",
        "9f86d081884c7d659a2feaa0c55ad015",
        JWT,
        "k3j4h5g6f7",
        "550e8400",
        "SESS",
        "QueryCode",
        "FragToken",
        "PHNjcmlwdD5",
        "JsSecret",
        "7c9e6679",
        "NonceInDirective",
        "SampleSecret",
        "ReferrerSecret",
        "PolicyNonce",
        "SourceSecret",
    ];
    let leaked: Vec<&str> = marks.into_iter().filter(|m| text.contains(m)).collect();
    assert!(leaked.is_empty(), "logged: {leaked:?}\n{text}");
    // What is kept: the scheme alone for data:, javascript: and blob:, the host and the
    // rest of the path.
    let blocked: Vec<&str> = logged
        .iter()
        .filter_map(|fields| fields["blocked_uri"].as_str())
        .filter(|uri| !uri.is_empty())
        .collect();
    for kept in [
        "https://app.example/home",
        "https://app.example/reset/[redacted]",
        "https://app.example/cart",
        "data",
        "javascript",
        "blob",
    ] {
        assert!(blocked.contains(&kept), "{kept} not among {blocked:?}");
    }
}

/// Newlines, carriage returns, ANSI escapes, NEL, LINE SEPARATOR and bidi overrides, in
/// every field that is logged: a plain-text log (tracing's `fmt`) prints a URI field as it
/// is, so each would forge or hide a line. What is logged is printable ASCII.
#[tokio::test]
async fn report_fields_cannot_forge_log_lines() {
    let forged =
        "\r\n2026-01-01T00:00:00Z  INFO app: admin logged in\u{1b}[2K\u{85}\u{2028}\u{202e}\u{0}";
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(CspReports::new().router(PATH)).await;
    let reply = post_report(
        addr,
        json!({
            "document-uri": format!("https://app.example/a{forged}"),
            "blocked-uri": format!("inline{forged}"),
            "violated-directive": format!("script-src{forged}"),
            "disposition": format!("enforce{forged}"),
        }),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let logged = violations(&captured);
    assert_eq!(logged.len(), 1, "{logged:?}");
    for field in [
        "document_uri",
        "blocked_uri",
        "violated_directive",
        "disposition",
    ] {
        let value = logged[0][field].as_str().unwrap_or_default();
        assert!(
            value.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{field} = {value:?}"
        );
    }
}

/// A report's fields are as long as the body allows; each logged one is capped.
#[tokio::test]
async fn every_logged_field_is_capped() {
    let long = "x".repeat(7000);
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(CspReports::new().router(PATH)).await;
    for field in [
        "document-uri",
        "blocked-uri",
        "violated-directive",
        "disposition",
    ] {
        let reply = post_report(addr, json!({ field: format!("script-src-{long}") })).await;
        assert_eq!(reply.status, 204, "{reply:?}");
    }
    let logged = violations(&captured);
    assert_eq!(logged.len(), 4, "{logged:?}");
    for fields in &logged {
        for (name, value) in fields.as_object().unwrap() {
            let length = value.as_str().map_or(0, str::len);
            assert!(length <= 256, "{name} logged with {length} bytes");
        }
    }
}

/// A Reporting API batch is as many reports as fit in the body (hundreds in 8 KiB): the
/// rate limit counts reports, not requests, so one request cannot log more than it allows.
#[tokio::test]
async fn one_request_logs_no_more_reports_than_the_rate_limit() {
    let entry = json!({ "type": "csp-violation", "body": {} });
    let batch = Value::Array(vec![entry; 200]).to_string();
    assert!(batch.len() < 8 * 1024);
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(
        CspReports::new()
            .per_minute(std::num::NonZeroU32::new(5).unwrap())
            .router(PATH),
    )
    .await;
    let reply = post(addr, "application/reports+json", batch.as_bytes()).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let logged = violations(&captured).len();
    assert_eq!(logged, 5, "one request logged past the limit of 5 a minute");
}

/// A Reporting API endpoint can receive other types of report (deprecation, intervention):
/// they are not logged as CSP violations.
#[tokio::test]
async fn other_report_types_are_not_logged_as_violations() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(CspReports::new().router(PATH)).await;
    let batch = json!([
        { "type": "deprecation", "body": { "id": "x", "message": "m" } },
        { "type": "csp-violation", "body": { "blockedURL": "eval" } },
    ]);
    let reply = post(
        addr,
        "application/reports+json",
        batch.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let logged = violations(&captured);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["blocked_uri"], "eval");
}

/// Every refusal, alone or behind `Hardening`, is a problem with a request id, and quotes
/// nothing of the request or of axum's internals.
#[tokio::test]
async fn every_refusal_is_a_problem_with_a_request_id() {
    let nested = "[".repeat(6000);
    let oversized = format!(
        r#"{{"csp-report":{{"blocked-uri":"{}"}}}}"#,
        "x".repeat(9000)
    );
    let cases: [(&str, &str, &[u8], u16); 7] = [
        ("not JSON", "application/csp-report", b"MARK-not-json", 400),
        (
            "not UTF-8",
            "application/csp-report",
            b"{\"csp-report\":{\"a\":\"\xff\xfe\"}}",
            400,
        ),
        (
            "deeply nested",
            "application/csp-report",
            nested.as_bytes(),
            400,
        ),
        (
            "not a report",
            "application/csp-report",
            br#"{"MARK":1}"#,
            400,
        ),
        (
            "too large",
            "application/csp-report",
            oversized.as_bytes(),
            413,
        ),
        (
            "a form",
            "text/plain",
            br#"{"csp-report":{"blocked-uri":"MARK"}}"#,
            415,
        ),
        (
            "no content type",
            "",
            br#"{"csp-report":{"blocked-uri":"MARK"}}"#,
            415,
        ),
    ];
    for (setup, app) in apps(CspReports::new()) {
        let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
        let addr = serve(app).await;
        for (what, content_type, body, status) in cases {
            let reply = post(addr, content_type, body).await;
            assert_problem(&reply, status, &format!("{setup}, {what}"));
        }
        // A chunked body, which says no length, is cut off at the limit too.
        let chunk = "x".repeat(9000);
        let request = format!(
            "POST {PATH} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
             content-type: application/csp-report\r\ntransfer-encoding: chunked\r\n\r\n\
             {:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        );
        let reply = exchange(addr, request.as_bytes()).await;
        assert_problem(&reply, 413, &format!("{setup}, chunked"));
        let reply = exchange(
            addr,
            format!("GET {PATH} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_problem(&reply, 405, &format!("{setup}, GET"));
        assert_eq!(reply.header("allow"), Some("POST"), "{setup}");
        // Each 413 is one security event, with the id the client was given.
        let events = captured.security_events();
        assert_eq!(events.len(), 2, "{setup}: {events:?}");
        for (name, event) in events {
            assert_eq!(name, "body_too_large", "{setup}");
            assert!(
                event["fields"]["request_id"].is_string(),
                "{setup}: {event}"
            );
        }
    }
}

fn assert_problem(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{what}: {reply:?}"
    );
    let body = reply.json();
    let id = body["request_id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{what}: no request id in {body}");
    if let Some(header) = reply.header("x-request-id") {
        assert_eq!(header, id, "{what}");
    }
    for leak in [
        "MARK",
        "xxxx",
        "Failed to",
        "length limit",
        "serde",
        "line 1",
    ] {
        assert!(
            !reply.body.contains(leak),
            "{what}: {leak} in {}",
            reply.body
        );
    }
}
