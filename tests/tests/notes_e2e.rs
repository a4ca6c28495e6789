//! example-notes end to end, over real TCP: the HTTP contract of the README, owner scoping
//! (the auth crate's IDOR probe across two users), cookies and CSRF, logout, login
//! throttling, the AI token budget, health and the HTML page.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use hardening_core::auth::{IdorRoutes, idor_probe};
use hardening_tests::notes::TempNotes;
use hardening_tests::{OverTcp, Reply, send};
use http::{HeaderName, HeaderValue};

/// A running example on a fresh SQLite file, removed when dropped.
struct Running {
    addr: SocketAddr,
    _notes: TempNotes,
}

async fn start(ai_daily_tokens: &str) -> Running {
    let notes = TempNotes::new(
        "e2e",
        &[
            ("ADMIN_EMAIL", "admin@example.com"),
            ("AI_DAILY_TOKENS", ai_daily_tokens),
        ],
    );
    Running {
        addr: notes.serve().await,
        _notes: notes,
    }
}

const PASSWORD: &str = "a long passphrase for tests";

async fn register(addr: SocketAddr, email: &str) -> Reply {
    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    send(addr, "POST", "/auth/register", &[], Some(&body)).await
}

/// Registers and logs in: (bearer token, session cookie pair `__Host-session=…`).
async fn user(addr: SocketAddr, email: &str) -> (String, String) {
    assert_eq!(register(addr, email).await.status, 201);
    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    let login = send(addr, "POST", "/auth/login", &[], Some(&body)).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (token, cookie)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], status);
    assert!(body["request_id"].is_string(), "{body}");
}

#[tokio::test]
async fn registration_and_login_follow_the_contract() {
    let app = start("2000").await;
    let addr = app.addr;
    assert_eq!(register(addr, "ada@example.com").await.status, 201);
    assert_problem(&register(addr, "ADA@example.com").await, 409);
    let weak = send(
        addr,
        "POST",
        "/auth/register",
        &[],
        Some(r#"{"email":"bob@example.com","password":"short"}"#),
    )
    .await;
    assert_problem(&weak, 422);
    assert_eq!(weak.json()["errors"][0]["pointer"], "/password");
    let huge = format!(
        r#"{{"email":"bob@example.com","password":"{}"}}"#,
        "x".repeat(2048)
    );
    assert_problem(
        &send(addr, "POST", "/auth/register", &[], Some(&huge)).await,
        422,
    );
    let bad_email = r#"{"email":"not an email","password":"a long passphrase"}"#;
    assert_problem(
        &send(addr, "POST", "/auth/register", &[], Some(bad_email)).await,
        422,
    );

    let ok = format!(r#"{{"email":"ada@example.com","password":"{PASSWORD}"}}"#);
    let login = send(addr, "POST", "/auth/login", &[], Some(&ok)).await;
    assert_eq!(login.status, 200);
    let body = login.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    let cookie = login.header("set-cookie").unwrap();
    for attribute in [
        "__Host-session=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains(body["access_token"].as_str().unwrap()),
        "the cookie is sealed"
    );

    // Wrong password and unknown account: the same 401.
    let wrong = send(
        addr,
        "POST",
        "/auth/login",
        &[],
        Some(r#"{"email":"ada@example.com","password":"not the password"}"#),
    )
    .await;
    let unknown = send(
        addr,
        "POST",
        "/auth/login",
        &[],
        Some(r#"{"email":"nobody@example.com","password":"not the password"}"#),
    )
    .await;
    assert_problem(&wrong, 401);
    assert_problem(&unknown, 401);
    let strip = |r: &Reply| {
        let mut v = r.json();
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(&wrong), strip(&unknown));
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let app = start("2000").await;
    assert_eq!(register(app.addr, "eve@example.com").await.status, 201);
    let wrong = r#"{"email":"eve@example.com","password":"guess guess guess"}"#;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(send(app.addr, "POST", "/auth/login", &[], Some(wrong)).await);
    }
    assert!(statuses[..5].iter().all(|r| r.status == 401));
    let throttled = statuses.last().unwrap();
    assert_problem(throttled, 429);
    assert!(throttled.header("retry-after").is_some());
    // Even the right password waits out the lockout.
    let right = format!(r#"{{"email":"eve@example.com","password":"{PASSWORD}"}}"#);
    assert_eq!(
        send(app.addr, "POST", "/auth/login", &[], Some(&right))
            .await
            .status,
        429
    );
}

#[tokio::test]
async fn notes_crud_with_a_bearer_token_or_the_session_cookie() {
    let app = start("2000").await;
    let addr = app.addr;
    let (token, cookie) = user(addr, "ada@example.com").await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    let created = send(
        addr,
        "POST",
        "/notes",
        &h,
        Some(r#"{"title":"a","body":"b"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/notes/{id}");
    assert_eq!(
        send(addr, "GET", &path, &h, None).await.json()["title"],
        "a"
    );
    let updated = send(
        addr,
        "PUT",
        &path,
        &h,
        Some(r#"{"title":"a2","body":"b2"}"#),
    )
    .await;
    assert_eq!(updated.json()["title"], "a2");
    let list = send(addr, "GET", "/notes", &h, None).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_problem(
        &send(addr, "POST", "/notes", &h, Some(r#"{"title":""}"#)).await,
        422,
    );
    assert_problem(&send(addr, "GET", "/notes", &[], None).await, 401);

    // The session cookie works too; unsafe requests from another site are refused (CSRF).
    let c = [("cookie", cookie.as_str())];
    assert_eq!(send(addr, "GET", &path, &c, None).await.status, 200);
    let same_site = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let note = r#"{"title":"from the page","body":""}"#;
    assert_eq!(
        send(addr, "POST", "/notes", &same_site, Some(note))
            .await
            .status,
        201
    );
    let cross = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ];
    assert_problem(&send(addr, "POST", "/notes", &cross, Some(note)).await, 403);
    assert_problem(&send(addr, "DELETE", &path, &cross, None).await, 403);

    assert_eq!(send(addr, "DELETE", &path, &h, None).await.status, 204);
    assert_problem(&send(addr, "GET", &path, &h, None).await, 404);
}

#[tokio::test]
async fn one_user_cannot_reach_another_users_notes() {
    let app = start("2000").await;
    let (alice, _) = user(app.addr, "alice@example.com").await;
    let (bob, _) = user(app.addr, "bob@example.com").await;
    let creds = |t: &str| {
        (
            HeaderName::from_static("authorization"),
            HeaderValue::from_str(&bearer(t)).unwrap(),
        )
    };
    let routes = IdorRoutes {
        create: (
            "/notes".into(),
            r#"{"title":"private","body":"alice only"}"#.into(),
        ),
        id_pointer: "/id".into(),
        item: "/notes/{id}".into(),
        update: r#"{"title":"changed by bob","body":""}"#.into(),
        list: Some("/notes".into()),
    };
    idor_probe(OverTcp(app.addr), creds(&alice), creds(&bob), &routes)
        .await
        .unwrap();
    // Ids that do not exist and ids that are not yours answer alike.
    let h = [("authorization", bearer(&bob))];
    let h = [(h[0].0, h[0].1.as_str())];
    let missing = send(app.addr, "GET", "/notes/999999", &h, None).await;
    let theirs = send(app.addr, "GET", "/notes/1", &h, None).await;
    assert_eq!((missing.status, theirs.status), (404, 404));
}

#[tokio::test]
async fn admin_listing_needs_the_admin_role() {
    let app = start("2000").await;
    let (user_token, _) = user(app.addr, "carol@example.com").await;
    let (admin_token, _) = user(app.addr, "admin@example.com").await;
    let as_user = bearer(&user_token);
    let as_admin = bearer(&admin_token);
    assert_problem(
        &send(
            app.addr,
            "GET",
            "/admin/users",
            &[("authorization", &as_user)],
            None,
        )
        .await,
        403,
    );
    let users = send(
        app.addr,
        "GET",
        "/admin/users",
        &[("authorization", &as_admin)],
        None,
    )
    .await;
    assert_eq!(users.status, 200);
    let list = users.json();
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["carol@example.com", "admin@example.com"]);
    assert!(!users.body.contains("argon2"), "no hashes in the listing");
}

#[tokio::test]
async fn logout_revokes_the_token_and_clears_the_cookie() {
    let app = start("2000").await;
    let (token, _) = user(app.addr, "dave@example.com").await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    assert_eq!(send(app.addr, "GET", "/notes", &h, None).await.status, 200);
    let out = send(app.addr, "POST", "/auth/logout", &h, None).await;
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(out.header("clear-site-data"), Some("\"cookies\""));
    assert_problem(&send(app.addr, "GET", "/notes", &h, None).await, 401);
    assert_problem(&send(app.addr, "GET", "/notes/1", &h, None).await, 401);
}

#[tokio::test]
async fn the_ai_route_reports_usage_and_stops_at_the_daily_budget() {
    let app = start("300").await;
    let (token, _) = user(app.addr, "erin@example.com").await;
    let auth = bearer(&token);
    let h = [("authorization", auth.as_str())];
    let ask = r#"{"prompt":"summarise my notes please","max_tokens":100}"#;
    let first = send(app.addr, "POST", "/ai/complete", &h, Some(ask)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let usage = &first.json()["usage"];
    assert_eq!(usage["prompt_tokens"], 4);
    assert_eq!(usage["completion_tokens"], 16);
    assert_eq!(usage["total_tokens"], 20);
    assert_eq!(
        first.json()["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        16
    );
    assert!(
        first
            .header("ratelimit")
            .unwrap()
            .contains("\"ai-tokens-per-day\"")
    );
    // 20 of 300 spent per call, and a call needs room for its reservation (4 + 100):
    // (300 - 104) / 20 + 1 = 10 calls fit.
    let mut statuses = vec![first.status];
    for _ in 0..20 {
        let r = send(app.addr, "POST", "/ai/complete", &h, Some(ask)).await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_problem(&r, 429);
            assert_eq!(r.json()["violated-policies"][0], "ai-tokens-per-day");
            assert!(
                r.json()["type"]
                    .as_str()
                    .unwrap()
                    .contains("quota-exceeded")
            );
            assert!(r.header("retry-after").is_some());
            assert!(
                r.header("ratelimit")
                    .unwrap()
                    .contains("\"ai-tokens-per-day\";r=")
            );
            assert!(
                r.header("ratelimit-policy")
                    .unwrap()
                    .contains("\"ai-tokens-per-day\";q=300")
            );
            break;
        }
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(admitted, 10, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
    // Without a token: 401, not a budget decision.
    assert_problem(
        &send(app.addr, "POST", "/ai/complete", &[], Some(ask)).await,
        401,
    );
}

#[tokio::test]
async fn health_and_the_page() {
    let app = start("2000").await;
    assert_eq!(
        send(app.addr, "GET", "/healthz", &[], None).await.status,
        200
    );
    let ready = send(app.addr, "GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let page = send(app.addr, "GET", "/", &[], None).await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    assert!(page.body.contains(&format!("<script nonce=\"{nonce}\">")));
    assert_eq!(
        page.body.matches("<script").count(),
        1,
        "one script, the nonce'd one"
    );
    assert!(page.header("x-request-id").is_some());
}
