//! `Set-Cookie` over real TCP under `Hardening::strict()`: attributes the cookie policy does
//! not set (`Priority`, ...) go out as the handler wrote them, also when the policy rewrites
//! the cookie; `__Http-` and `__Host-Http-` cookies (RFC 6265bis) go out only with `Secure`
//! and `HttpOnly`, even when the policy lets that name be script-readable.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::http::header::SET_COOKIE;
use axum::response::AppendHeaders;
use axum::routing::get;
use hardening_core::Hardening;
use hardening_core::headers::{CookiePolicy, HeaderPolicy};
use hardening_tests::{Captured, get as http_get, serve};

fn app() -> Router {
    Router::new().route(
        "/cookies",
        get(|| async {
            AppendHeaders(
                [
                    // Rewritten (a lifetime to cap): `Priority` and the unknown one stay.
                    "long=1; Priority=High; Max-Age=99999999999; Path=/; SameParty",
                    // Kept as it is, flags appended.
                    "short=1; Priority=Low; Path=/",
                    "__Http-a=1; Path=/",
                    "__Host-Http-b=1; Path=/; Max-Age=99999999999",
                    "__host-http-nopath=1",
                    "__HOST-HTTP-dom=1; Path=/; Domain=localhost",
                    // Named in dangerous_script_readable: no HttpOnly, so dropped.
                    "__Http-js=1; Path=/",
                    "__Host-Http-js=1; Path=/; Max-Age=99999999999",
                    // The same name sent with HttpOnly by the handler: kept.
                    "__Http-js2=1; Path=/; HttpOnly",
                    "theme=dark; Path=/",
                ]
                .map(|c| (SET_COOKIE, c)),
            )
        }),
    )
}

#[tokio::test]
async fn unknown_attributes_pass_and_http_prefixes_keep_http_only() {
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    let cookies = CookiePolicy::default()
        .dangerous_script_readable("theme")
        .dangerous_script_readable("__Http-js")
        .dangerous_script_readable("__Host-Http-js")
        .dangerous_script_readable("__Http-js2");
    let policy = HeaderPolicy::api().cookies(cookies);
    let addr = serve(app().layer(Hardening::strict().security_headers(policy).unwrap())).await;
    let reply = http_get(addr, "/cookies", &[]).await;
    drop(guard);
    assert_eq!(reply.status, 200);
    let sent = reply.all("set-cookie");
    assert_eq!(
        sent,
        [
            "long=1; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=2592000; Priority=High; \
             SameParty",
            "short=1; Priority=Low; Path=/; HttpOnly; SameSite=Lax; Secure",
            "__Http-a=1; Path=/; HttpOnly; SameSite=Lax; Secure",
            "__Host-Http-b=1; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=2592000",
            "__Http-js2=1; Path=/; HttpOnly; SameSite=Lax; Secure",
            "theme=dark; Path=/; SameSite=Lax; Secure",
        ]
    );

    // Start-up says the script-readable `__Http-`/`__Host-Http-` names cannot work; each
    // dropped cookie is logged, without its value.
    let text = captured.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let prefix_warnings = lines
        .iter()
        .filter(|e| {
            e["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("prefix needs HttpOnly"))
        })
        .count();
    assert_eq!(prefix_warnings, 3, "{text}");
    let dropped: Vec<&str> = lines
        .iter()
        .filter_map(|e| e["fields"]["message"].as_str())
        .filter(|m| m.starts_with("dropped a Set-Cookie"))
        .collect();
    assert_eq!(dropped.len(), 4, "{text}");
    assert!(
        dropped
            .iter()
            .all(|m| m.contains("__Http-") || m.contains("__Host-Http-")),
        "{dropped:?}"
    );
}

/// Cookies browsers accept and the policy dropped: non-ASCII UTF-8 (obs-text on the wire),
/// PHP-style and other non-token names, and a `__Host-` cookie with an empty `Domain`
/// (which browsers ignore). Through the layer over TCP, on both paths (as they are, and
/// rewritten for a lifetime to cap), they go out hardened with their names and values as
/// the handler wrote them; several are not taken for one cookie. Naming a `__Host-` cookie
/// in `dangerous_allow_insecure` warns at start-up, and the cookie still needs `Secure`.
#[tokio::test]
async fn utf8_and_php_style_cookies_pass_hardened() {
    let app = Router::new().route(
        "/cookies",
        get(|| async {
            AppendHeaders(
                [
                    "name=café; Path=/",
                    "名前=値; Max-Age=99999999999",
                    "a[b]=1; Path=/",
                    "a[c]=2; Path=/; Max-Age=99999999999",
                    "user(1)=x",
                    "__Host-d=1; Path=/; Domain=",
                    "__Host-e=1; Path=/; Domain= ; Max-Age=99999999999",
                    "__Host-f=1; Path=/; Domain=localhost",
                    "__Host-insecure=1; Path=/",
                ]
                .map(|c| (SET_COOKIE, c)),
            )
        }),
    );
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    let cookies = CookiePolicy::default().dangerous_allow_insecure("__Host-insecure");
    let policy = HeaderPolicy::api().cookies(cookies);
    let addr = serve(app.layer(Hardening::strict().security_headers(policy).unwrap())).await;
    let reply = http_get(addr, "/cookies", &[]).await;
    drop(guard);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.all("set-cookie"),
        [
            "name=café; Path=/; HttpOnly; SameSite=Lax; Secure",
            "名前=値; HttpOnly; SameSite=Lax; Secure; Max-Age=2592000",
            "a[b]=1; Path=/; HttpOnly; SameSite=Lax; Secure",
            "a[c]=2; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=2592000",
            "user(1)=x; HttpOnly; SameSite=Lax; Secure",
            "__Host-d=1; Path=/; Domain=; HttpOnly; SameSite=Lax; Secure",
            "__Host-e=1; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=2592000",
        ]
    );

    let text = captured.text();
    let messages: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|e| e["fields"]["message"].as_str().map(str::to_owned))
        .collect();
    let prefix_warnings = messages
        .iter()
        .filter(|m| m.contains("prefix needs Secure"))
        .count();
    assert_eq!(prefix_warnings, 1, "{text}");
    let dropped: Vec<&String> = messages
        .iter()
        .filter(|m| m.starts_with("dropped a Set-Cookie"))
        .collect();
    assert_eq!(dropped.len(), 2, "{text}");
    assert!(dropped.iter().all(|m| m.contains("__Host-")), "{dropped:?}");
}
