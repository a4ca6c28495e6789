//! CSRF and `Set-Cookie` hardening as an attacker probes them: `Hardening::strict()` over real
//! TCP on 127.0.0.1, requests written byte for byte as browsers (and forgers) send them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::http::header::SET_COOKIE;
use axum::response::AppendHeaders;
use axum::routing::{any, get};
use hardening_core::Hardening;
use hardening_tests::{Reply, exchange, serve};
use tower::ServiceExt;

/// A huge cookie: over the 4096 bytes browsers keep.
fn huge() -> String {
    format!("huge={}", "x".repeat(5000))
}

fn routes() -> Router {
    Router::new()
        .route("/reach", any(|| async { "reached" }))
        .route(
            "/cookies",
            get(|| async {
                AppendHeaders([
                    (SET_COOKIE, "sid=1".to_owned()),
                    (SET_COOKIE, "__Host-bad=1; Path=/app".to_owned()),
                    (
                        SET_COOKIE,
                        "__Host-dom=1; Path=/; Domain=localhost".to_owned(),
                    ),
                    (
                        SET_COOKIE,
                        "__host-lower=1; Secure; Domain=localhost".to_owned(),
                    ),
                    (SET_COOKIE, "__Host-ok=1; Path=/".to_owned()),
                    (SET_COOKIE, "__Secure-s=1".to_owned()),
                    (
                        SET_COOKIE,
                        "last_strict=1; SameSite=None; SameSite=Strict".to_owned(),
                    ),
                    (
                        SET_COOKIE,
                        "last_none=1; SameSite=Strict; SameSite=None".to_owned(),
                    ),
                    (SET_COOKIE, "gone=; Max-Age=0; Path=/".to_owned()),
                    (
                        SET_COOKIE,
                        "odd=1; secure; HTTPONLY; samesite=strict".to_owned(),
                    ),
                    (SET_COOKIE, "parent=1; Domain=localhost".to_owned()),
                    (SET_COOKIE, "=__Host-nameless".to_owned()),
                    (SET_COOKIE, huge()),
                ])
            }),
        )
}

async fn strict() -> std::net::SocketAddr {
    serve(routes().layer(Hardening::strict())).await
}

/// Sends `method /reach` with these header lines (each ending in `\r\n`) and an empty body.
async fn send(addr: std::net::SocketAddr, method: &str, headers: &str) -> Reply {
    let request = format!(
        "{method} /reach HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 0\r\n{headers}\r\n"
    );
    exchange(addr, request.as_bytes()).await
}

/// Whether the request was refused as cross-origin (403) or reached the handler (200).
async fn refused(addr: std::net::SocketAddr, method: &str, headers: &str) -> bool {
    let reply = send(addr, method, headers).await;
    match reply.status {
        403 => true,
        200 if reply.body == "reached" => false,
        _ => panic!("{method} {headers:?}: {reply:?}"),
    }
}

/// A cross-site page opening a WebSocket to this site: the handshake is a GET, and the
/// browser sends the cookies (SameSite=Lax ones from a sibling subdomain, SameSite=None ones
/// from anywhere). Without an `Origin` check the socket acts as the user (cross-site WebSocket
/// hijacking): the handshake is checked as an unsafe request is.
#[tokio::test]
async fn cross_site_websocket_handshakes_with_cookies_are_refused() {
    let addr = strict().await;
    let handshake = |extra: &str| {
        format!(
            "upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}"
        )
    };
    let mut wrong = Vec::new();
    for (extra, expect_refused) in [
        (
            "cookie: __Host-session=abc\r\nsec-fetch-site: same-site\r\norigin: http://evil.localhost\r\n",
            true,
        ),
        (
            "cookie: __Host-session=abc\r\nsec-fetch-site: cross-site\r\norigin: https://evil.example\r\n",
            true,
        ),
        // An older browser: Origin alone.
        (
            "cookie: __Host-session=abc\r\norigin: https://evil.example\r\n",
            true,
        ),
        (
            "cookie: __Host-session=abc\r\nsec-fetch-site: same-origin\r\norigin: http://localhost\r\n",
            false,
        ),
        (
            "cookie: __Host-session=abc\r\norigin: http://localhost\r\n",
            false,
        ),
        // Not a browser, or no cookie: nothing to hijack.
        ("cookie: __Host-session=abc\r\n", false),
        (
            "sec-fetch-site: cross-site\r\norigin: https://evil.example\r\n",
            false,
        ),
    ] {
        let got = refused(addr, "GET", &handshake(extra)).await;
        if got != expect_refused {
            wrong.push(format!("{extra:?}: refused {got}"));
        }
    }
    // A plain cross-site GET with cookies is a safe navigation: it passes.
    let link = "cookie: a=1\r\nsec-fetch-site: cross-site\r\norigin: https://evil.example\r\n";
    if refused(addr, "GET", link).await {
        wrong.push("a cross-site GET was refused".to_owned());
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Browsers attach cached HTTP authentication (Basic, Digest, Negotiate/Kerberos, NTLM) to a
/// cross-site form POST by themselves, as they do cookies: an admin page behind Basic auth
/// (often at the proxy) was open to CSRF when the request carried no cookie. Bearer tokens
/// and other schemes only scripts set stay exempt.
#[tokio::test]
async fn cross_site_posts_with_ambient_http_authentication_are_refused() {
    let addr = strict().await;
    let cross = "sec-fetch-site: cross-site\r\norigin: https://evil.example\r\n";
    let mut wrong = Vec::new();
    for (authorization, expect_refused) in [
        ("Basic YWRtaW46aHVudGVyMg==", true),
        ("basic YWRtaW46aHVudGVyMg==", true),
        ("Digest username=\"admin\", realm=\"r\"", true),
        ("Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnag", true),
        (
            "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
            true,
        ),
        ("Bearer t", false),
        ("Token t", false),
    ] {
        let headers = format!("authorization: {authorization}\r\n{cross}");
        let got = refused(addr, "POST", &headers).await;
        if got != expect_refused {
            wrong.push(format!("{authorization}: refused {got}"));
        }
    }
    // The same Basic request from this site, from an older browser on this site, or from a
    // client that is not a browser, passes.
    for headers in [
        "authorization: Basic YWRtaW46aHVudGVyMg==\r\nsec-fetch-site: same-origin\r\n",
        "authorization: Basic YWRtaW46aHVudGVyMg==\r\norigin: http://localhost\r\n",
        "authorization: Basic YWRtaW46aHVudGVyMg==\r\n",
    ] {
        if refused(addr, "POST", headers).await {
            wrong.push(format!("{headers:?} was refused"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// What already held, end to end: methods (hyper passes `post` on as an extension method,
/// which is unsafe), origins, `Sec-Fetch-Site`, and no content-type exemption.
#[tokio::test]
async fn unsafe_methods_origins_and_fetch_metadata() {
    let addr = strict().await;
    let cookie = "cookie: __Host-session=abc\r\n";
    let cross = "sec-fetch-site: cross-site\r\norigin: https://evil.example\r\n";
    let mut wrong = Vec::new();
    let mut expect = async |method: &str, headers: String, expect_refused: bool| {
        if refused(addr, method, &headers).await != expect_refused {
            wrong.push(format!(
                "{method} {headers:?}: expected refused {expect_refused}"
            ));
        }
    };
    for method in [
        "POST", "PUT", "PATCH", "DELETE", "post", "Delete", "PROPFIND", "FOO",
    ] {
        expect(method, format!("{cookie}{cross}"), true).await;
        expect(
            method,
            format!("{cookie}sec-fetch-site: same-origin\r\n"),
            false,
        )
        .await;
    }
    // Safe methods pass (HEAD too, but its reply has no body to tell it reached the handler).
    for method in ["GET", "OPTIONS"] {
        expect(method, format!("{cookie}{cross}"), false).await;
    }
    // Older browsers (no Sec-Fetch-Site): Origin against Host, exactly.
    for (origin, expect_refused) in [
        ("http://localhost", false),
        ("http://LOCALHOST", false),
        ("null", true),
        ("http://localhost:8080", true),
        ("http://localhost:80", true),
        ("http://localhost/", true),
        ("http://evil.localhost", true),
        ("http://localhost.evil.example", true),
        ("http://user@localhost", true),
        ("", true),
    ] {
        expect(
            "POST",
            format!("{cookie}origin: {origin}\r\n"),
            expect_refused,
        )
        .await;
    }
    // Fetch metadata decides: same-site is a sibling subdomain, not this origin; values are
    // matched exactly; `none` (typed in the address bar) passes, as in Go's
    // CrossOriginProtection.
    for (site, expect_refused) in [
        ("same-site", true),
        ("cross-site", true),
        ("Same-Origin", true),
        ("bogus", true),
        ("none", false),
    ] {
        let headers = format!("{cookie}sec-fetch-site: {site}\r\norigin: http://localhost\r\n");
        expect("POST", headers, expect_refused).await;
    }
    // A cookie the app does not read for authentication still counts: the check cannot know.
    expect("POST", format!("cookie: theme=dark\r\n{cross}"), true).await;
    // A text/plain form post of a JSON body is not exempt, nor is JSON itself.
    for content_type in ["text/plain", "application/json", "application/json;x=y"] {
        let headers = format!("{cookie}{cross}content-type: {content_type}\r\n");
        expect("POST", headers, true).await;
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Over HTTP/2 the request's own target says HTTPS (browsers speak it over TLS only), as
/// `Csrf::check` reads it. Served over TLS by an acceptor that adds no `Tls` marker, the
/// layer knew nothing more and compared no scheme: a page an active attacker injected into
/// http://localhost could post to the HTTPS site with the cookie (an old browser, without
/// Sec-Fetch-Site).
#[tokio::test]
async fn over_http2_a_plain_http_origin_of_this_host_cannot_post() {
    let app = routes().layer(Hardening::strict());
    let post = |origin: &str| {
        let mut req = http::Request::post("https://localhost/reach")
            .version(http::Version::HTTP_2)
            .header("cookie", "__Host-session=abc")
            .header("origin", origin)
            .body(axum::body::Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        app.clone().oneshot(req)
    };
    let downgraded = post("http://localhost").await.unwrap();
    assert_eq!(
        downgraded.status(),
        403,
        "an http:// page of this host posted over HTTP/2 with the cookie: {:?}",
        downgraded.headers()
    );
    let same_origin = post("https://localhost").await.unwrap();
    assert_eq!(same_origin.status(), 200, "{:?}", same_origin.headers());
}

/// Each `Set-Cookie` a handler sends, as the browser gets it.
#[tokio::test]
async fn set_cookie_is_hardened_end_to_end() {
    let addr = strict().await;
    let reply = exchange(
        addr,
        b"GET /cookies HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let sent = reply.all("set-cookie");
    assert_eq!(
        sent,
        [
            "sid=1; HttpOnly; SameSite=Lax; Secure",
            "__Host-ok=1; Path=/; HttpOnly; SameSite=Lax; Secure",
            "__Secure-s=1; HttpOnly; SameSite=Lax; Secure",
            // Browsers take the last SameSite.
            "last_strict=1; SameSite=None; SameSite=Strict; HttpOnly; Secure",
            "last_none=1; HttpOnly; SameSite=Lax; Secure",
            // A deletion still deletes.
            "gone=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure",
            "odd=1; secure; HTTPONLY; samesite=strict",
            // A parent-domain cookie is the app's choice; it gets the flags.
            "parent=1; Domain=localhost; HttpOnly; SameSite=Lax; Secure",
        ],
        "__Host- cookies with a Domain or another Path, a nameless cookie that would read \
         as __Host-, and one over 4096 bytes are dropped"
    );
}
