//! An adversarial audit of the security headers behind `Hardening::strict()`, over TCP on
//! 127.0.0.1: a handler's own headers cannot weaken the policy, whatever the status, method
//! or body; responses shared caches must not keep stay out of them however the handler
//! spells its `Cache-Control` or `Content-Type`; every cookie goes out as strict as promised
//! or is dropped with a warning naming it (never its value); the CSP nonce is new per
//! response, the same in the header and the extractor, and one through nested layers;
//! HTTPS is believed only from a trusted proxy, and the redirect keeps to the request's
//! allowed host, its path and query, and 308 for other methods than GET and HEAD.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashSet;

use axum::Router;
use axum::body::Body;
use axum::http::header::SET_COOKIE;
use axum::response::{AppendHeaders, Html, IntoResponse, Response};
use axum::routing::{any, get};
use hardening_core::Hardening;
use hardening_core::headers::{CspNonce, HeaderPolicy, HttpsRedirect};
use hardening_tests::{Captured, Reply, UnknownSize, exchange, get as http_get, request, serve};

/// The preset's API policy, as every response must carry it.
const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A response with `status` and the handler's `headers`; its body of unknown size when
/// `streamed`.
fn respond(status: u16, headers: &[(&str, &str)], streamed: bool) -> Response {
    let page = bytes::Bytes::from_static(b"<p>hello</p>");
    let body = if streamed {
        Body::new(UnknownSize(Some(page)))
    } else {
        Body::from(page)
    };
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

/// Headers a handler (or an upstream it passes on) may send that would weaken the policy.
const WEAKENING: &[(&str, &str)] = &[
    ("content-security-policy", "default-src *"),
    ("Content-Security-Policy", "script-src 'unsafe-inline'"),
    ("content-security-policy-report-only", "default-src *"),
    ("X-Frame-Options", "ALLOWALL"),
    ("x-frame-options", ""),
    ("cross-origin-opener-policy", "unsafe-none"),
    ("Cross-Origin-Resource-Policy", "cross-origin"),
    ("referrer-policy", "unsafe-url"),
    ("x-content-type-options", ""),
    ("permissions-policy", "camera=*"),
    ("strict-transport-security", "max-age=0"),
    ("Strict-Transport-Security", "max-age=1; includeSubDomains"),
    ("SERVER", "nginx/1.2.3"),
    ("server", "Apache"),
    ("X-Powered-By", "PHP/8"),
    ("x-powered-by", ""),
    ("x-aspnet-version", "4.0"),
];

/// The policy's headers on `reply`, each exactly once with the preset's value, and none of
/// the handler's weakening ones; HSTS exactly once over HTTPS, never over plain HTTP.
fn assert_policy_wins(reply: &Reply, https: bool, case: &str) {
    for (name, value) in [
        ("content-security-policy", API_CSP),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(reply.all(name), [value], "{case}: {name}: {reply:?}");
    }
    assert!(
        reply
            .all("permissions-policy")
            .iter()
            .all(|v| v.contains("camera=()")),
        "{case}: {reply:?}"
    );
    assert_eq!(reply.all("permissions-policy").len(), 1, "{case}");
    for gone in [
        "content-security-policy-report-only",
        "server",
        "x-powered-by",
        "x-aspnet-version",
    ] {
        assert!(reply.all(gone).is_empty(), "{case}: {gone}: {reply:?}");
    }
    let hsts = reply.all("strict-transport-security");
    if https {
        assert_eq!(hsts, ["max-age=63072000; includeSubDomains"], "{case}");
    } else {
        assert!(hsts.is_empty(), "{case}: HSTS over plain HTTP: {reply:?}");
    }
    assert_eq!(reply.all("x-request-id").len(), 1, "{case}: {reply:?}");
}

/// A handler's CSP, report-only CSP, X-Frame-Options, COOP, HSTS, `Server` and the like, in
/// any case, repeated or empty, on a 200, 204, 304, redirect, 404 and 500 (made a problem),
/// streamed or not, to GET and HEAD, over plain HTTP and HTTPS: the policy's values go out,
/// once each, and the handler's weaker ones do not.
#[tokio::test]
async fn a_handler_cannot_weaken_the_policys_headers() {
    let routes = || {
        Router::new().route(
            "/{status}/{streamed}",
            any(
                |axum::extract::Path((status, streamed)): axum::extract::Path<(u16, bool)>| async move {
                    let mut headers = WEAKENING.to_vec();
                    if (300..400).contains(&status) && status != 304 {
                        headers.push(("location", "/elsewhere"));
                    }
                    respond(status, &headers, streamed)
                },
            ),
        )
    };
    for https in [false, true] {
        let hardening = if https {
            Hardening::strict().behind_tls()
        } else {
            Hardening::strict()
        };
        let addr = serve(routes().layer(hardening)).await;
        for status in [200, 204, 302, 304, 404, 500] {
            for streamed in [false, true] {
                for method in ["GET", "HEAD", "POST"] {
                    let case = format!("https {https}, {method} {status} streamed {streamed}");
                    let reply = request(addr, method, &format!("/{status}/{streamed}"), &[]).await;
                    assert_eq!(reply.status, status, "{case}: {reply:?}");
                    assert_policy_wins(&reply, https, &case);
                }
            }
        }
    }
}

/// Whether a shared cache may store a response with these `Cache-Control` values, as a
/// cache reads them: not with a `no-store` directive, nor with a bare `private` (in any
/// case, in any of the fields; a comma inside a quoted string splits nothing).
fn shared_caches_may_store(values: &[&str]) -> bool {
    let mut directives = Vec::new();
    for value in values {
        let mut quoted = false;
        let mut start = 0;
        for (i, b) in value.bytes().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    directives.push(&value[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        directives.push(&value[start..]);
    }
    !directives.iter().any(|directive| {
        let directive = directive.trim();
        let name = directive.split('=').next().unwrap_or_default().trim();
        name.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("private")
    })
}

/// Fields shared caches read instead of `Cache-Control`.
const SHARED_CACHE_FIELDS: &[&str] = &[
    "cdn-cache-control",
    "cloudflare-cdn-cache-control",
    "vercel-cdn-cache-control",
    "surrogate-control",
    "edge-control",
    "x-accel-expires",
];

/// `Cache-Control` values that would let shared caches keep a response, however spelt.
const TRICKS: &[&[&str]] = &[
    &[],
    &["public, max-age=600"],
    &["PUBLIC, S-MAXAGE=600"],
    &["s-maxage=600"],
    &["public, max-age=600, \"private\""],
    &["no-cache=\"no-store, private\", public, s-maxage=60"],
    &["private=\"set-cookie\", public"],
    &["no-storex, public, max-age=60"],
    &["public", "s-maxage=600"],
    &["public, private"],
    &["must-revalidate, max-age=600"],
    &[""],
];

/// A handler's `Cache-Control` that would let shared caches keep a response to a request
/// with credentials (an `Authorization`, a cookie, an API key), spelt oddly, quoted, split
/// over fields or beside `CDN-Cache-Control` and the like: the response goes out private,
/// on the one-walk path (only a `Content-Type`) and the general one, streamed or not.
#[tokio::test]
async fn a_credentialed_response_is_never_left_to_shared_caches() {
    let addr =
        serve(
            Router::new()
                .route(
                    "/{case}/{streamed}",
                    get(
                        |axum::extract::Path((case, streamed)): axum::extract::Path<(
                            usize,
                            bool,
                        )>| async move {
                            let mut headers: Vec<(&str, &str)> =
                                TRICKS[case].iter().map(|v| ("cache-control", *v)).collect();
                            headers.push(("content-type", "application/json"));
                            if case % 2 == 1 {
                                headers.extend(
                                    SHARED_CACHE_FIELDS.iter().map(|n| (*n, "max-age=600")),
                                );
                            }
                            respond(200, &headers, streamed)
                        },
                    ),
                )
                // 72 requests from one address: more than the default limit's burst.
                .layer(Hardening::strict().dangerous_without_rate_limit()),
        )
        .await;
    for credentials in ["authorization: Bearer x", "cookie: sid=1", "x-api-key: k-1"] {
        for (i, given) in TRICKS.iter().enumerate() {
            for streamed in [false, true] {
                let reply = http_get(addr, &format!("/{i}/{streamed}"), &[credentials]).await;
                let case = format!("{credentials}, {given:?}, streamed {streamed}: {reply:?}");
                assert_eq!(reply.status, 200, "{case}");
                assert!(
                    !shared_caches_may_store(&reply.all("cache-control")),
                    "{case}"
                );
                for field in SHARED_CACHE_FIELDS {
                    assert!(reply.all(field).is_empty(), "{field}: {case}");
                }
            }
        }
    }
}

/// The nonce of a CSP header value (`'nonce-…'`).
fn nonce_of(csp: &str) -> Option<&str> {
    let start = csp.find("'nonce-")? + "'nonce-".len();
    let len = csp[start..].find('\'')?;
    Some(&csp[start..start + len])
}

fn html_hardening() -> Hardening {
    Hardening::strict()
        .security_headers(HeaderPolicy::html())
        .unwrap()
}

/// A page whose CSP carries a nonce, with a `Content-Type` a browser reads as HTML although
/// the first field or the first element of a list says JSON (the Fetch standard's "extract a
/// MIME type" takes the last valid type of all the fields): a shared cache would give every
/// visitor that nonce. It goes out `no-store`, or the handler's
/// `Cache-Control` made private, as a page of one `text/html` does.
#[tokio::test]
async fn a_nonce_page_is_not_left_to_shared_caches_whatever_its_content_type_says_first() {
    let addr = serve(
        Router::new()
            .route(
                "/{case}",
                get(|axum::extract::Path(case): axum::extract::Path<usize>, nonce: CspNonce| async move {
                    let types: &[&str] = match case % 3 {
                        0 => &["application/json", "text/html"],
                        1 => &["application/json, text/html"],
                        _ => &["text/plain, text/html;charset=utf-8"],
                    };
                    let mut headers: Vec<(&str, &str)> =
                        types.iter().map(|t| ("content-type", *t)).collect();
                    if case >= 3 {
                        headers.push(("cache-control", "public, max-age=600"));
                    }
                    let page = format!(r#"<script nonce="{nonce}">alert(1)</script>"#);
                    let mut response = respond(200, &headers, false);
                    *response.body_mut() = Body::from(page);
                    response
                }),
            )
            .layer(html_hardening()),
    )
    .await;
    for case in 0..6 {
        let reply = http_get(addr, &format!("/{case}"), &[]).await;
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(nonce_of(csp).is_some(), "{case}: {reply:?}");
        assert!(
            !shared_caches_may_store(&reply.all("cache-control")),
            "{case}: types {:?}: {reply:?}",
            reply.all("content-type")
        );
    }
}

/// A page whose CSP carries a nonce, answered with a status browsers render rather than
/// follow: a `300 Multiple Choices` (the Fetch standard follows 301, 302, 303, 307 and 308
/// only), or a 301 without a `Location`. Shared caches may keep a 300 or a 301 without being
/// told (RFC 9110 §15.1), and would give every visitor the nonce: `no-store`, as for a 200.
/// A redirect a browser follows keeps the handler's `Cache-Control`.
#[tokio::test]
async fn a_nonce_page_at_a_status_browsers_render_is_not_left_to_shared_caches() {
    let addr = serve(
        Router::new()
            .route(
                "/{status}/{location}",
                get(
                    |axum::extract::Path((status, location)): axum::extract::Path<(u16, bool)>,
                     nonce: CspNonce| async move {
                        let mut headers = vec![("content-type", "text/html; charset=utf-8")];
                        if location {
                            headers.push(("location", "/elsewhere"));
                        }
                        let mut response = respond(status, &headers, false);
                        *response.body_mut() =
                            Body::from(format!(r#"<script nonce="{nonce}">alert(1)</script>"#));
                        response
                    },
                ),
            )
            .layer(html_hardening()),
    )
    .await;
    for (status, location) in [(300, true), (300, false), (301, false), (308, false)] {
        let reply = http_get(addr, &format!("/{status}/{location}"), &[]).await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert!(
            !shared_caches_may_store(&reply.all("cache-control")),
            "{status}, location {location}: {reply:?}"
        );
    }
    for status in [301, 302, 303, 307, 308] {
        let reply = http_get(addr, &format!("/{status}/true"), &[]).await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert!(reply.all("cache-control").is_empty(), "{status}: {reply:?}");
    }
}

/// A `304` carries the `Cache-Control` its 200 did (RFC 9110 §15.4.5), and a cache takes
/// it onto the response it stored (RFC 9111 §4.3.4): a 304 that says it revalidates a nonce
/// page (its `Content-Type`), or answers a request with credentials, must never let shared
/// caches keep what its 200 kept from them, though the handler gave both `public,
/// max-age=600`. A 304 that does not say keeps the handler's (it may revalidate an asset a
/// CDN keeps). A 304 without `Cache-Control` gets none, with credentials too: the stored
/// response keeps its 200's, which was made private or `no-store`.
#[tokio::test]
async fn a_304_never_lets_shared_caches_keep_what_its_200_kept_from_them() {
    let addr = serve(
        Router::new()
            .route(
                "/{cache}/{typed}",
                get(
                    |axum::extract::Path((cache, typed)): axum::extract::Path<(bool, bool)>,
                     request: http::HeaderMap,
                     nonce: CspNonce| async move {
                        let mut headers = vec![("etag", "\"v1\"")];
                        if cache {
                            headers.push(("cache-control", "public, max-age=600"));
                        }
                        let revalidated = request
                            .get("if-none-match")
                            .is_some_and(|tag| tag == "\"v1\"");
                        if !revalidated || typed {
                            headers.push(("content-type", "text/html; charset=utf-8"));
                        }
                        if revalidated {
                            let mut response = respond(304, &headers, false);
                            *response.body_mut() = Body::empty();
                            return response;
                        }
                        let mut response = respond(200, &headers, false);
                        *response.body_mut() =
                            Body::from(format!(r#"<script nonce="{nonce}">alert(1)</script>"#));
                        response
                    },
                ),
            )
            .layer(html_hardening()),
    )
    .await;
    for cache in [true, false] {
        for typed in [true, false] {
            for credentials in [None, Some("cookie: sid=1")] {
                let case =
                    format!("Cache-Control given {cache}, the 304 typed {typed}, {credentials:?}");
                let path = format!("/{cache}/{typed}");
                let mut request: Vec<&str> = credentials.into_iter().collect();
                let page = http_get(addr, &path, &request).await;
                assert_eq!(page.status, 200, "{case}: {page:?}");
                assert!(
                    !shared_caches_may_store(&page.all("cache-control")),
                    "{case}: {page:?}"
                );
                request.push("if-none-match: \"v1\"");
                let reply = http_get(addr, &path, &request).await;
                assert_eq!(reply.status, 304, "{case}: {reply:?}");
                let expected = if cache && (typed || credentials.is_some()) {
                    page.all("cache-control")
                } else if cache {
                    vec!["public, max-age=600"]
                } else {
                    Vec::new()
                };
                assert_eq!(reply.all("cache-control"), expected, "{case}: {reply:?}");
            }
        }
    }
}

/// Every response's nonce is new (128 bits from the thread's CSPRNG, 24 base64 characters),
/// the same in its CSP and in what the `CspNonce` extractor gave the handler, on a page and
/// on an error page; nested `Hardening` layers send one CSP with the handler's one nonce.
#[tokio::test]
async fn the_nonce_is_new_per_response_and_one_per_request() {
    let page = || {
        get(|nonce: CspNonce| async move { Html(format!(r#"<script nonce="{nonce}"></script>"#)) })
    };
    let inner = Router::new().route("/page", page()).layer(html_hardening());
    let flat = serve(Router::new().route("/page", page()).layer(html_hardening())).await;
    let nested = serve(Router::new().nest("/in", inner).layer(html_hardening())).await;
    let mut seen = HashSet::new();
    for (addr, path) in [(flat, "/page"), (nested, "/in/page")] {
        for _ in 0..25 {
            let reply = http_get(addr, path, &[]).await;
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
            let csps = reply.all("content-security-policy");
            assert_eq!(csps.len(), 1, "{path}: {reply:?}");
            let nonce = nonce_of(csps[0]).unwrap().to_owned();
            assert_eq!(
                reply.body,
                format!(r#"<script nonce="{nonce}"></script>"#),
                "{path}: the extractor's nonce is the header's"
            );
            assert_eq!(nonce.len(), 24, "{nonce}");
            assert!(nonce.ends_with("=="), "{nonce}: 16 bytes, base64");
            assert!(seen.insert(nonce.clone()), "{nonce} sent twice");
            assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        }
        // An error page has a nonce of its own too, never one sent before.
        let reply = http_get(addr, "/nowhere", &[]).await;
        let nonce = nonce_of(reply.header("content-security-policy").unwrap()).unwrap();
        assert!(seen.insert(nonce.to_owned()), "{nonce} sent twice");
    }
}

/// A cookie as a browser reads a `Set-Cookie` value: name, and the last value of each
/// attribute (lower-cased name), with `Secure`/`HttpOnly` present or not.
struct BrowserCookie {
    name: String,
    attributes: Vec<(String, String)>,
}

impl BrowserCookie {
    fn parse(value: &str) -> Self {
        let mut parts = value.split(';');
        let pair = parts.next().unwrap_or_default();
        let name = pair
            .split_once('=')
            .map_or("", |(n, _)| n)
            .trim()
            .to_owned();
        let attributes = parts
            .map(|attr| match attr.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
                None => (attr.trim().to_ascii_lowercase(), String::new()),
            })
            .collect();
        Self { name, attributes }
    }

    fn has(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|(k, _)| k == attribute)
    }

    fn last(&self, attribute: &str) -> Option<&str> {
        self.attributes
            .iter()
            .rev()
            .find(|(k, _)| k == attribute)
            .map(|(_, v)| v.as_str())
    }
}

/// The year of a cookie date written as `Wdy, DD Mon YYYY HH:MM:SS GMT`.
fn year_of(date: &str) -> Option<u64> {
    date.split_whitespace().nth(3)?.parse().ok()
}

/// Set-Cookie values a policy could miss (attributes in odd case or with spaces around `=`,
/// `Secure` as a name or a value or in quotes, `SameSite=None`, huge or repeated lifetimes,
/// far `Expires`, several cookies joined by commas, `__Host-`/`__Secure-` cookies, bytes
/// that are not UTF-8): each goes out with `Secure`, `HttpOnly`, `SameSite` `Lax` or
/// `Strict` and at most 30 days as a browser reads it, or is dropped with one warning that
/// names the cookie and not its value.
#[tokio::test]
async fn every_cookie_goes_out_strict_or_is_dropped_with_a_warning_naming_it() {
    const SECRET: &str = "s3cr3t-value";
    let app = Router::new().route(
        "/cookies",
        get(|| async {
            let mut response = AppendHeaders(
                [
                    "a=s3cr3t-value; secure = ; HTTPONLY ; samesite = none",
                    "Secure=s3cr3t-value; Path=/",
                    "b=Secure; HttpOnly",
                    "c=\"s3cr3t-value; Secure\"; Path=/",
                    "d=s3cr3t-value; SameSite=None",
                    "e=s3cr3t-value; Max-Age=99999999999999999999999999999999999999999",
                    "f=s3cr3t-value; Max-Age=60; max-age=999999999",
                    "g=s3cr3t-value; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
                    "h=s3cr3t-value; SameSite=Strict; Max-Age=1",
                    "i=1, j=s3cr3t-value; Path=/",
                    "__Secure-s=s3cr3t-value; Path=/",
                    "__Host-ok=s3cr3t-value; Path=/",
                    "__Host-domain=s3cr3t-value; Path=/; Domain=localhost",
                    "__Host-path=s3cr3t-value; Path=/a",
                    "__HOST-nopath=s3cr3t-value",
                    "__Host-long=s3cr3t-value; Path=/; Max-Age=99999999999; Domain=localhost",
                ]
                .map(|c| (SET_COOKIE, c)),
            )
            .into_response();
            response.headers_mut().append(
                SET_COOKIE,
                http::HeaderValue::from_bytes(b"bytes=s3cr3t-value\xff\xfe; Path=/").unwrap(),
            );
            response
        }),
    );
    let (captured, guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(app.layer(Hardening::strict())).await;
    let reply = http_get(addr, "/cookies", &[]).await;
    drop(guard);
    assert_eq!(reply.status, 200, "{reply:?}");

    let cap = 30 * 24 * 3600;
    let now_year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952;
    let mut sent = Vec::new();
    for value in reply.all("set-cookie") {
        let cookie = BrowserCookie::parse(value);
        assert!(cookie.has("secure"), "{value}");
        assert!(cookie.has("httponly"), "{value}");
        let same_site = cookie
            .last("samesite")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(same_site == "lax" || same_site == "strict", "{value}");
        match cookie.last("max-age") {
            Some(max_age) => assert!(max_age.parse::<u64>().unwrap() <= cap, "{value}"),
            None => {
                if let Some(expires) = cookie.last("expires") {
                    assert!(year_of(expires).unwrap() <= now_year + 1, "{value}");
                }
            }
        }
        if cookie.name.to_ascii_lowercase().starts_with("__host-") {
            assert_eq!(cookie.last("path"), Some("/"), "{value}");
            assert!(!cookie.has("domain"), "{value}");
        }
        sent.push(cookie.name);
    }
    assert_eq!(
        sent,
        [
            "a",
            "Secure",
            "b",
            "c",
            "d",
            "e",
            "f",
            "g",
            "h",
            "i",
            "__Secure-s",
            "__Host-ok"
        ],
        "{reply:?}"
    );

    // Each dropped cookie: one warning naming it, none quoting its value.
    let logs = captured.text();
    assert!(!logs.contains(SECRET), "{logs}");
    let named: Vec<String> = captured
        .json_lines()
        .into_iter()
        .filter(|e| {
            e["target"] == hardening_core::headers::LOG_TARGET
                && e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("dropped a Set-Cookie"))
        })
        .map(|e| {
            e["fields"]["cookie"]
                .as_str()
                .unwrap_or("<unnamed>")
                .to_owned()
        })
        .collect();
    assert_eq!(
        named,
        [
            "__Host-domain",
            "__Host-path",
            "__HOST-nopath",
            "__Host-long",
            "bytes"
        ],
        "{logs}"
    );
}

/// A peer that is not a trusted proxy cannot make a request HTTPS, however it writes
/// `X-Forwarded-Proto`: no HSTS, and the redirect answers. A trusted proxy's last value
/// counts, in any case.
#[tokio::test]
async fn x_forwarded_proto_is_believed_only_from_a_trusted_proxy() {
    let routes = || Router::new().route("/p", get(|| async { "ok" }));
    let redirect = || HttpsRedirect::new();
    let untrusting = serve(routes().layer(Hardening::strict().https_redirect(redirect()))).await;
    let trusting = serve(
        routes().layer(
            Hardening::strict()
                .trusted_proxies(["127.0.0.1"])
                .unwrap()
                .https_redirect(redirect()),
        ),
    )
    .await;
    for headers in [
        &["x-forwarded-proto: https"][..],
        &["X-Forwarded-Proto: HTTPS"],
        &["x-forwarded-proto: http", "x-forwarded-proto: https"],
        &["forwarded: proto=https", "x-forwarded-proto: https"],
    ] {
        let reply = http_get(untrusting, "/p", headers).await;
        assert_eq!(reply.status, 301, "{headers:?}: {reply:?}");
        assert!(
            reply.all("strict-transport-security").is_empty(),
            "{headers:?}"
        );
    }
    for (headers, https) in [
        (&["X-Forwarded-Proto: HTTPS"][..], true),
        (
            &["x-forwarded-proto: http", "x-forwarded-proto:  https "],
            true,
        ),
        (&["x-forwarded-proto: https, http"], false),
        (
            &["x-forwarded-proto: https", "x-forwarded-proto: http"],
            false,
        ),
        (&["x-forwarded-proto: https;"], false),
        (&["x-forwarded-proto: "], false),
    ] {
        let reply = http_get(trusting, "/p", headers).await;
        assert_eq!(
            reply.status,
            if https { 200 } else { 301 },
            "{headers:?}: {reply:?}"
        );
        assert_eq!(
            reply.all("strict-transport-security").len(),
            usize::from(https),
            "{headers:?}: {reply:?}"
        );
    }
}

/// The redirect never leaves the allowed hosts (another `Host`, an absolute-form target, two
/// `Host`s, userinfo, `//evil` and backslash paths), keeps the path and query byte for byte,
/// answers GET and HEAD 301 and every other method 308, and carries the policy's headers.
#[tokio::test]
async fn the_redirect_keeps_to_the_allowed_host_and_the_exact_target() {
    let addr = serve(
        Router::new().route("/p", get(|| async { "ok" })).layer(
            Hardening::strict()
                .allowed_hosts(["example.com"])
                .unwrap()
                .https_redirect(HttpsRedirect::new()),
        ),
    )
    .await;
    let send = |target: &str, host_lines: &[&str], method: &str| {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nconnection: close\r\n");
        for h in host_lines {
            raw.push_str(h);
            raw.push_str("\r\n");
        }
        raw.push_str("content-length: 0\r\n\r\n");
        raw
    };
    // Refused (400 problem), never redirected elsewhere.
    for (target, hosts) in [
        ("/p", &["host: evil.com"][..]),
        ("http://evil.com/p", &["host: example.com"]),
        ("http://example.com@evil.com/p", &["host: example.com"]),
        ("http://evil.com@example.com/p", &["host: example.com"]),
        ("/p", &["host: example.com", "host: evil.com"]),
        ("/p", &["host: example.com@evil.com"]),
        ("/p", &["host: evil.com\\.example.com"]),
        ("/p", &[]),
    ] {
        let reply = exchange(addr, send(target, hosts, "GET").as_bytes()).await;
        assert_eq!(reply.status, 400, "{target} {hosts:?}: {reply:?}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert!(reply.header("location").is_none(), "{target} {hosts:?}");
        assert!(reply.json()["request_id"].is_string(), "{reply:?}");
    }
    // Redirected to the same host, the target exactly as sent.
    for (method, status) in [
        ("GET", 301),
        ("HEAD", 301),
        ("POST", 308),
        ("PUT", 308),
        ("DELETE", 308),
        ("OPTIONS", 308),
        ("PATCH", 308),
    ] {
        for target in [
            "/p",
            "//evil.com/x",
            "///evil.com",
            "/%2F%2Fevil.com?next=//evil.com",
            "/a/../b/./c?x=1&x=2&y=%20+%2B;z",
            "/@evil.com",
            "/\\evil.com",
            "/p?",
            "http://example.com/q?r=1",
        ] {
            let reply = exchange(
                addr,
                send(target, &["host: Example.com:8080"], method).as_bytes(),
            )
            .await;
            let path = target.strip_prefix("http://example.com").unwrap_or(target);
            let case = format!("{method} {target}: {reply:?}");
            assert_eq!(reply.status, status, "{case}");
            assert_eq!(
                reply.header("location"),
                Some(format!("https://Example.com{path}").as_str()),
                "{case}"
            );
            assert!(reply.all("strict-transport-security").is_empty(), "{case}");
            assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{case}");
            assert_eq!(reply.all("x-request-id").len(), 1, "{case}");
        }
    }
}
