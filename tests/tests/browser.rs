//! The security headers, proven in headless Chromium (Debian's `chromium` and
//! `chromium-driver`): nonce scripts run, injected and string-evaluated script does not and
//! is reported, nonce styles apply and other inline styles do not, HttpOnly cookies stay
//! out of `document.cookie`, and pages refuse framing; another site's login form (login
//! CSRF) is refused; and a single-page app on an origin CORS allows reads the request id,
//! `Retry-After` and `RateLimit` fields.
//! Run by `scripts/test-all.sh`; plain `cargo test` skips them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use hardening_core::Hardening;
use hardening_core::headers::{CookiePolicy, Csp, CspNonce, CspReports, HeaderPolicy};
use hardening_tests::webdriver::Browser;
use hardening_tests::{Captured, serve};

const PAGE: &str = r#"<!doctype html><html><head><title>t</title></head><body>
<div id="out"></div>
<script nonce="NONCE">
  window.marks = ["nonce-script-ran"];
  try { eval("1 + 1"); window.marks.push("eval-ran"); } catch (e) { window.marks.push("eval-refused"); }
  try { new Function("return 1")(); window.marks.push("function-ran"); } catch (e) { window.marks.push("function-refused"); }
  setTimeout('window.marks.push("string-timeout-ran")', 0);
  document.getElementById("out").innerHTML =
    '<img src="/missing.png" onerror="window.marks.push(\'onerror-ran\')">';
  const link = document.createElement("a");
  link.href = 'javascript:window.marks.push("javascript-url-ran")';
  document.body.appendChild(link);
  link.click();
  window.cookieSeen = document.cookie;
</script>
<script>window.marks.push("inline-without-nonce-ran");</script>
</body></html>"#;

const FRAMED: &str = r#"<!doctype html><html><body>framed
<script nonce="NONCE">fetch("/rendered", { method: "POST" });</script>
</body></html>"#;

fn hardened_app(rendered: Arc<AtomicUsize>) -> Router {
    let page = |template: &'static str| {
        move |nonce: CspNonce| async move { Html(template.replace("NONCE", nonce.as_str())) }
    };
    let app = Router::new()
        .route(
            "/page",
            get(move |nonce: CspNonce| async move {
                (
                    [
                        ("set-cookie", "session=s3cr3t-session; Path=/"),
                        ("set-cookie", "theme=dark; Path=/"),
                    ],
                    Html(PAGE.replace("NONCE", nonce.as_str())),
                )
            }),
        )
        .route("/framed", get(page(FRAMED)))
        .route(
            "/rendered",
            post(move || async move {
                rendered.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .merge(CspReports::new().router("/csp-report"));
    let policy = HeaderPolicy::html()
        .csp(Csp::html().report_uri("/csp-report"))
        .cookies(CookiePolicy::default().dangerous_script_readable("theme"));
    app.layer(Hardening::strict().security_headers(policy).unwrap())
}

/// One Chromium at a time: the tests of this file run on parallel threads, and two browsers
/// starting at once on a 2-core machine made chromedriver reset a session request.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `check` every 100 ms for up to 10 s.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver (scripts/test-all.sh installs them)"]
async fn csp_cookies_and_framing_hold_in_chromium() {
    let _one = ONE_BROWSER.lock().await;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);

    let rendered = Arc::new(AtomicUsize::new(0));
    let site = serve(hardened_app(rendered.clone())).await;
    let browser = Browser::start().await;

    // (a) + (b) + (c): the page's own checks.
    browser
        .goto(&format!("http://127.0.0.1:{}/page", site.port()))
        .await;
    for _ in 0..50 {
        let marks = browser.run("return (window.marks || []).length;").await;
        if marks.as_u64().is_some_and(|n| n >= 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give event handlers, timers and javascript: navigations their chance to run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let result = browser
        .run("return { marks: window.marks || [], cookie: window.cookieSeen };")
        .await;
    let marks: Vec<&str> = result["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        marks,
        ["nonce-script-ran", "eval-refused", "function-refused"],
        "{result}"
    );
    let cookie = result["cookie"].as_str().unwrap();
    assert!(
        cookie.contains("theme=dark"),
        "the script-readable cookie is visible: {cookie:?}"
    );
    assert!(
        !cookie.contains("s3cr3t"),
        "the HttpOnly cookie leaked to document.cookie: {cookie:?}"
    );

    // The violations reached the report endpoint.
    let reported = eventually(|| captured.text().contains("CSP violation reported")).await;
    assert!(reported, "no CSP report arrived:\n{}", captured.text());
    let logs = captured.text();
    assert!(logs.contains("script-src"), "{logs}");

    // (d) framing: rendered top-level, the page reports itself; framed by another origin, it
    // must not render at all.
    browser
        .goto(&format!("http://127.0.0.1:{}/framed", site.port()))
        .await;
    assert!(
        eventually(|| rendered.load(Ordering::SeqCst) == 1).await,
        "control: top-level render"
    );
    // The framing page (no CSP of its own) reports when its iframe has loaded, so the check
    // below waits for the browser instead of guessing.
    let framer_html = format!(
        r#"<!doctype html><html><body>
<iframe src="http://127.0.0.1:{}/framed" onload="fetch('/framer-loaded', {{ method: 'POST' }})"></iframe>
</body></html>"#,
        site.port()
    );
    let framer_loaded = Arc::new(AtomicUsize::new(0));
    let loaded = framer_loaded.clone();
    let framer = serve(
        Router::new()
            .route(
                "/",
                get(move || {
                    let html = framer_html.clone();
                    async move { Html(html) }
                }),
            )
            .route(
                "/framer-loaded",
                post(move || async move {
                    loaded.fetch_add(1, Ordering::SeqCst);
                }),
            ),
    )
    .await;
    browser
        .goto(&format!("http://localhost:{}/", framer.port()))
        .await;
    assert!(
        eventually(|| framer_loaded.load(Ordering::SeqCst) == 1).await,
        "the framing page never finished loading its iframe"
    );
    // A framed document that did render would have posted by now; give it a moment more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rendered.load(Ordering::SeqCst),
        1,
        "the page rendered inside a cross-origin frame"
    );
}

/// Opens `url`, submits its first form, and returns the text of the page it leads to once
/// that holds `expected` (or, after 10 s, whatever the page holds then).
async fn submit_first_form(browser: &Browser, url: &str, expected: &str) -> String {
    browser.goto(url).await;
    browser.run("document.forms[0].submit(); return 1;").await;
    let mut text = String::new();
    for _ in 0..100 {
        text = browser
            .run("return document.readyState === 'complete' ? document.body.innerText : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if text.contains(expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text
}

/// A login form on this site, for the control.
const LOGIN_FORM: &str = r#"<!doctype html><html><body>
<form method="post" action="/login"><input name="user" value="victim"></form>
</body></html>"#;

/// Login CSRF as a browser carries it out: a page on another site (`localhost` against
/// `127.0.0.1`) submits a form with the attacker's credentials to the login route. Chromium
/// sends it as a cross-site navigation without cookies, and strict refuses it with a 403
/// problem before the handler runs; the site's own form still signs in.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver (scripts/test-all.sh installs them)"]
async fn another_sites_login_form_is_refused_in_chromium() {
    let _one = ONE_BROWSER.lock().await;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let signed_in = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let users = signed_in.clone();
    let site = serve(
        Router::new()
            .route("/form", get(|| async { Html(LOGIN_FORM) }))
            .route(
                "/login",
                post(move |body: String| async move {
                    users.lock().unwrap().push(body);
                    "signed in"
                }),
            )
            .layer(Hardening::strict()),
    )
    .await;
    let attacker_html = format!(
        r#"<!doctype html><html><body>
<form method="post" action="http://127.0.0.1:{}/login"><input name="user" value="attacker"></form>
</body></html>"#,
        site.port()
    );
    let attacker = serve(Router::new().route(
        "/",
        get(move || {
            let html = attacker_html.clone();
            async move { Html(html) }
        }),
    ))
    .await;
    let browser = Browser::start().await;

    let attack = format!("http://localhost:{}/", attacker.port());
    let refused = submit_first_form(&browser, &attack, "status").await;
    let problem: serde_json::Value = serde_json::from_str(&refused)
        .unwrap_or_else(|e| panic!("not a problem ({e}): {refused:?}"));
    assert_eq!(problem["status"], 403, "{problem}");
    assert!(
        signed_in.lock().unwrap().is_empty(),
        "the forged login reached the handler: {:?}",
        signed_in.lock().unwrap()
    );
    assert_eq!(
        captured.security_event_names(),
        ["csrf_blocked"],
        "{}",
        captured.text()
    );

    // Control: the site's own form.
    let own = format!("http://127.0.0.1:{}/form", site.port());
    let answer = submit_first_form(&browser, &own, "signed in").await;
    assert_eq!(answer, "signed in");
    assert_eq!(*signed_in.lock().unwrap(), ["user=victim"]);
}

/// A page that lets the browser keep it and revalidate: its nonce script reports each run.
const REVALIDATED_PAGE: &str = r#"<!doctype html><html><body>
<script nonce="NONCE">fetch("/ran", { method: "POST" });</script>
</body></html>"#;

/// What the server saw of the revalidated page.
#[derive(Debug, Default)]
struct Revalidations {
    /// Full answers (200).
    full: AtomicUsize,
    /// `If-None-Match` answered with 304.
    not_modified: AtomicUsize,
    /// Runs of the page's nonce script.
    ran: AtomicUsize,
}

/// The page of [`REVALIDATED_PAGE`] under `cache_control` and an `ETag`, answering a matching
/// `If-None-Match` with 304, behind strict with a nonce CSP.
fn revalidated_app(cache_control: &'static str, seen: Arc<Revalidations>) -> Router {
    use axum::response::IntoResponse;
    use http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
    const TAG: &str = "\"v1\"";
    let counts = seen.clone();
    let page = get(
        move |nonce: CspNonce, headers: http::HeaderMap| async move {
            let cache = [(ETAG, TAG), (CACHE_CONTROL, cache_control)];
            if headers.get(IF_NONE_MATCH).is_some_and(|tag| tag == TAG) {
                counts.not_modified.fetch_add(1, Ordering::SeqCst);
                return (http::StatusCode::NOT_MODIFIED, cache).into_response();
            }
            counts.full.fetch_add(1, Ordering::SeqCst);
            let body = REVALIDATED_PAGE.replace("NONCE", nonce.as_str());
            (cache, Html(body)).into_response()
        },
    );
    let ran = post(move || async move {
        seen.ran.fetch_add(1, Ordering::SeqCst);
    });
    let policy = HeaderPolicy::html().csp(Csp::html().report_uri("/csp-report"));
    Router::new()
        .route("/page", page)
        .route("/ran", ran)
        .merge(CspReports::new().router("/csp-report"))
        .layer(Hardening::strict().security_headers(policy).unwrap())
}

/// A nonce page the handler lets the browser keep (`no-cache`, or `private, max-age=0`, with
/// an `ETag`) still runs its script when reloaded or opened again: the browser revalidates,
/// the server answers 304, and the stored page must keep the CSP whose nonce its body
/// carries. A 304 carrying a new nonce's CSP would replace the stored one (RFC 9111 §4.3.4)
/// and block the page's own script.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver (scripts/test-all.sh installs them)"]
async fn a_revalidated_nonce_page_still_runs_its_script_in_chromium() {
    let _one = ONE_BROWSER.lock().await;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let browser = Browser::start().await;
    for cache_control in ["no-cache", "private, max-age=0"] {
        let seen = Arc::new(Revalidations::default());
        let site = serve(revalidated_app(cache_control, seen.clone())).await;
        let url = format!("http://127.0.0.1:{}/page", site.port());
        for (runs, step) in [(1, "load"), (2, "reload"), (3, "navigate again")] {
            if step == "reload" {
                browser.reload().await;
            } else {
                browser.goto(&url).await;
            }
            let ran = eventually(|| seen.ran.load(Ordering::SeqCst) == runs).await;
            assert!(
                ran,
                "{cache_control}: the page's script did not run on {step} ({seen:?}):\n{}",
                captured.text()
            );
        }
        // The script ran from the stored page each time, revalidated by a 304.
        assert_eq!(
            seen.full.load(Ordering::SeqCst),
            1,
            "{cache_control}: {seen:?}"
        );
        assert_eq!(
            seen.not_modified.load(Ordering::SeqCst),
            2,
            "{cache_control}: {seen:?}"
        );
    }
    assert!(
        !captured.text().contains("CSP violation reported"),
        "{}",
        captured.text()
    );
}

/// A page with styles of its own: a `<style>` with the nonce, a style sheet from this origin,
/// and a `<style>` without the nonce and a `style` attribute, which a browser cannot tell from
/// injected ones. Its nonce script reads what applied once the page has loaded.
const STYLED_PAGE: &str = r#"<!doctype html><html><head><title>t</title>
<style nonce="NONCE">#nonced { color: rgb(0, 128, 0); }</style>
<link rel="stylesheet" href="/site.css">
<style>#plain { color: rgb(255, 0, 0); }</style>
</head><body>
<p id="nonced">nonced</p><p id="linked">linked</p><p id="plain">plain</p>
<p id="attribute" style="color: rgb(0, 0, 255)">attribute</p>
<script nonce="NONCE">
  addEventListener("load", () => {
    const color = (id) => getComputedStyle(document.getElementById(id)).color;
    window.colors = {
      nonced: color("nonced"), linked: color("linked"),
      plain: color("plain"), attribute: color("attribute"),
    };
  });
</script>
</body></html>"#;

/// Under `Csp::html()` a `<style>` carrying the response's nonce applies, as a style sheet
/// from this origin does; a `<style>` without it and a `style` attribute do not, and are
/// reported. The nonce went into `script-src` only: a page's own `<style nonce>` was blocked,
/// and nothing short of `'unsafe-inline'` let it apply.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver (scripts/test-all.sh installs them)"]
async fn a_nonce_style_applies_and_other_inline_styles_do_not_in_chromium() {
    let _one = ONE_BROWSER.lock().await;
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let policy = HeaderPolicy::html().csp(Csp::html().report_uri("/csp-report"));
    let app = Router::new()
        .route(
            "/page",
            get(
                |nonce: CspNonce| async move { Html(STYLED_PAGE.replace("NONCE", nonce.as_str())) },
            ),
        )
        .route(
            "/site.css",
            get(|| async {
                (
                    [("content-type", "text/css")],
                    "#linked { color: rgb(128, 0, 128); }",
                )
            }),
        )
        .merge(CspReports::new().router("/csp-report"))
        .layer(Hardening::strict().security_headers(policy).unwrap());
    let site = serve(app).await;
    let browser = Browser::start().await;
    browser
        .goto(&format!("http://127.0.0.1:{}/page", site.port()))
        .await;
    let mut colors = serde_json::Value::Null;
    for _ in 0..100 {
        colors = browser.run("return window.colors || null;").await;
        if !colors.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        colors.is_object(),
        "the page's nonce script never reported: {colors}"
    );
    let black = "rgb(0, 0, 0)";
    assert_eq!(
        colors["nonced"], "rgb(0, 128, 0)",
        "the nonce <style> was blocked: {colors}"
    );
    assert_eq!(
        colors["linked"], "rgb(128, 0, 128)",
        "this origin's style sheet: {colors}"
    );
    assert_eq!(
        colors["plain"], black,
        "a <style> without the nonce applied: {colors}"
    );
    assert_eq!(
        colors["attribute"], black,
        "a style attribute applied: {colors}"
    );

    // The two refused are reported, under the style directives, and nothing else is.
    let reported = |directive: &str| {
        captured
            .json_lines()
            .iter()
            .any(|line| line["fields"]["violated_directive"].as_str() == Some(directive))
    };
    assert!(
        eventually(|| reported("style-src-elem") && reported("style-src-attr")).await,
        "the refused styles were not reported:\n{}",
        captured.text()
    );
    let directives: Vec<serde_json::Value> = captured
        .json_lines()
        .iter()
        .filter(|line| line["fields"]["message"] == "CSP violation reported")
        .map(|line| line["fields"]["violated_directive"].clone())
        .collect();
    assert_eq!(directives.len(), 2, "{directives:?}");
}

/// A single-page app on another origin that CORS allows: it fetches the API twice, the
/// second time over its quota, and reports what its script could read of each response.
const SPA_PAGE: &str = r#"<!doctype html><html><body><script>
  const read = (r) => ({
    status: r.status,
    id: r.headers.get("x-request-id"),
    retryAfter: r.headers.get("retry-after"),
    rateLimit: r.headers.get("ratelimit"),
    rateLimitPolicy: r.headers.get("ratelimit-policy"),
  });
  (async () => {
    const first = read(await fetch("API/api"));
    const second = read(await fetch("API/api"));
    window.seen = [first, second];
  })().catch((e) => { window.seen = String(e); });
</script></body></html>"#;

/// A script on an origin CORS allows reads the headers `Hardening` writes: the request id it
/// should quote to support, and the `Retry-After` and `RateLimit` fields of the 429 it got.
/// Without `Access-Control-Expose-Headers` naming them, Chromium hands it `null` for each.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver (scripts/test-all.sh installs them)"]
async fn an_allowed_origins_script_reads_the_request_id_and_retry_after_in_chromium() {
    use hardening_core::Cors;
    use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
    use std::num::NonZeroU32;
    let _one = ONE_BROWSER.lock().await;
    let api_port = Arc::new(std::sync::OnceLock::<u16>::new());
    let port = api_port.clone();
    let page = serve(Router::new().route(
        "/",
        get(move || {
            let api = format!("http://127.0.0.1:{}", port.get().unwrap());
            async move { Html(SPA_PAGE.replace("API", &api)) }
        }),
    ))
    .await;
    // The page's origin, `localhost`, is another origin than the API's `127.0.0.1`.
    let page_origin = format!("http://localhost:{}", page.port());
    let quota = Quota::per_hour(NonZeroU32::new(1).unwrap());
    let api = serve(
        Router::new().route("/api", get(|| async { "ok" })).layer(
            Hardening::strict()
                .cors(Cors::allow_origins([page_origin.as_str()]).unwrap())
                .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", quota)]))
                .unwrap(),
        ),
    )
    .await;
    api_port.set(api.port()).unwrap();
    let browser = Browser::start().await;
    browser.goto(&format!("{page_origin}/")).await;
    let mut seen = serde_json::Value::Null;
    for _ in 0..100 {
        seen = browser.run("return window.seen || null;").await;
        if !seen.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let [first, second] = [&seen[0], &seen[1]];
    assert_eq!(first["status"], 200, "{seen}");
    assert_eq!(second["status"], 429, "{seen}");
    for response in [first, second] {
        let id = response["id"].as_str().unwrap_or_default();
        assert!(
            hardening_core::RequestId::parse(id).is_ok(),
            "no request id: {seen}"
        );
        assert!(response["rateLimit"].is_string(), "{seen}");
        assert!(response["rateLimitPolicy"].is_string(), "{seen}");
    }
    assert_ne!(first["id"], second["id"], "{seen}");
    let retry: u64 = second["retryAfter"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {seen}"));
    assert!(retry > 0, "{seen}");
}
