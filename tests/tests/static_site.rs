//! A front end served as files (tower-http's `ServeDir`: a Vite or webpack build) under
//! `Hardening`: its `index.html` loads `/app.js` and `/app.css` and cannot carry a
//! per-response nonce. Under the strict default and under the nonce policy its script does not
//! run (headless Chromium shows it); under `Csp::static_site()` it does, an inline script in
//! the same page still does not, and the page and its assets stay cacheable.
//! The browser tests are run by `scripts/test-all.sh`; plain `cargo test` skips them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardening_core::headers::{Csp, HeaderPolicy};
use hardening_core::{ConfigError, Hardening};
use hardening_tests::webdriver::Browser;
use hardening_tests::{get as http_get, serve};
use serde_json::Value;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// The page a bundler writes: its script and stylesheet in files, plus an inline script and
/// an inline style of the kind an injection would add (or a tool might emit).
const INDEX: &str = r#"<!doctype html><html><head><title>before</title>
<link rel="stylesheet" href="/app.css">
<style>#inline-styled { color: rgb(255, 0, 0); }</style>
<script type="module" crossorigin src="/app.js"></script>
</head><body>
<div id="styled">styled</div><div id="inline-styled">inline</div><div id="out"></div>
<script>window.marks = (window.marks || []).concat("inline-ran");</script>
</body></html>"#;

const APP_JS: &str = r#"window.marks = (window.marks || []).concat("app-ran");
document.title = "app-ran";
fetch("/api/hello").then(r => r.text()).then(t => { document.getElementById("out").textContent = t; });
"#;

const APP_CSS: &str = "#styled { color: rgb(0, 128, 0); }\n";

/// A build directory with the three files, removed on drop.
struct Dist(PathBuf);

impl Dist {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hardening-static-site-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("index.html", INDEX),
            ("app.js", APP_JS),
            ("app.css", APP_CSS),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Self(dir)
    }
}

impl Drop for Dist {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The README's "Serving a static front end" example: an API route, the build's files, and
/// `index.html` for any other path (client-side routes), under `Csp::static_site()`.
fn front_end(dist: &Path) -> Result<Router, ConfigError> {
    let hardening =
        Hardening::strict().security_headers(HeaderPolicy::html().csp(Csp::static_site()))?;
    Ok(Router::new()
        .route("/api/hello", get(|| async { "hello from the API" }))
        .fallback_service(ServeDir::new(dist).fallback(ServeFile::new(dist.join("index.html"))))
        .layer(hardening))
}

/// The same files and route under another `Hardening`.
fn files_under(dist: &Path, hardening: Hardening) -> Router {
    Router::new()
        .route("/api/hello", get(|| async { "hello from the API" }))
        .fallback_service(ServeDir::new(dist).fallback(ServeFile::new(dist.join("index.html"))))
        .layer(hardening)
}

/// Without a nonce, the page and its files are the same for everyone: nothing makes them
/// uncacheable (the nonce pages' `no-store` does not apply), and a client-side route gets
/// the page.
#[tokio::test]
async fn the_static_site_policy_keeps_pages_and_assets_cacheable() {
    let dist = Dist::new();
    let addr = serve(front_end(&dist.0).unwrap()).await;
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               font-src 'self' data:; connect-src 'self'; manifest-src 'self'; \
               object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
    for (path, media_type) in [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/some/client/route", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let reply = http_get(addr, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert!(
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with(media_type)),
            "{path}: {reply:?}"
        );
        assert_eq!(reply.header("content-security-policy"), Some(csp), "{path}");
        assert_eq!(reply.header("cache-control"), None, "{path}: {reply:?}");
        assert!(reply.header("last-modified").is_some(), "{path}: {reply:?}");
    }
    assert_eq!(http_get(addr, "/api/hello", &[]).await.status, 200);

    // With a cookie, `no-store` (the credentials rule), unless the file has a
    // `Cache-Control` of its own, which is made `private`: the browser still keeps it.
    let page = http_get(addr, "/", &["cookie: session=1"]).await;
    assert_eq!(page.header("cache-control"), Some("no-store"), "{page:?}");
    let long_lived = Router::new()
        .fallback_service(ServeDir::new(&dist.0))
        .layer(SetResponseHeaderLayer::if_not_present(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("public, max-age=31536000, immutable"),
        ))
        .layer(
            Hardening::strict()
                .security_headers(HeaderPolicy::html().csp(Csp::static_site()))
                .unwrap(),
        );
    let long_lived = serve(long_lived).await;
    let asset = http_get(long_lived, "/app.js", &["cookie: session=1"]).await;
    assert_eq!(
        asset.header("cache-control"),
        Some("max-age=31536000, immutable, private"),
        "{asset:?}"
    );

    // `not_found_service` would answer client-side routes 404, which `Hardening` makes a
    // problem: hence `fallback`.
    let not_found = Router::new()
        .fallback_service(
            ServeDir::new(&dist.0).not_found_service(ServeFile::new(dist.0.join("index.html"))),
        )
        .layer(Hardening::strict());
    let not_found = serve(not_found).await;
    let route = http_get(not_found, "/some/client/route", &[]).await;
    assert_eq!(route.status, 404);
    assert_eq!(
        route.header("content-type"),
        Some("application/problem+json"),
        "{route:?}"
    );

    // Under the nonce policy the same page is made `no-store` (a shared cache would hand out
    // one nonce), though the file carries none: the reason to use `static_site` for it.
    let nonce = files_under(
        &dist.0,
        Hardening::strict()
            .security_headers(HeaderPolicy::html())
            .unwrap(),
    );
    let addr = serve(nonce).await;
    let page = http_get(addr, "/", &[]).await;
    assert_eq!(page.header("cache-control"), Some("no-store"), "{page:?}");
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("'nonce-")),
        "{page:?}"
    );
}

/// What the page ran, after it loaded (a module script runs before the load event, which
/// WebDriver's navigation waits for).
async fn page_state(browser: &Browser, url: &str) -> Value {
    browser.goto(url).await;
    browser
        .run(
            "return { title: document.title, marks: window.marks || [], \
             styled: getComputedStyle(document.getElementById('styled')).color, \
             inline: getComputedStyle(document.getElementById('inline-styled')).color };",
        )
        .await
}

/// One Chromium at a time (the browser tests of this file run on parallel threads).
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The strict default (`default-src 'none'`) and the nonce policy (`script-src 'nonce-…'
/// 'strict-dynamic'`) both stop the bundle's own script and stylesheet: a front end served
/// as files does not work under either.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver (scripts/test-all.sh installs them)"]
async fn a_bundle_does_not_run_under_the_strict_or_the_nonce_policy() {
    let _one = ONE_BROWSER.lock().await;
    let dist = Dist::new();
    let strict = serve(files_under(&dist.0, Hardening::strict())).await;
    let nonce = serve(files_under(
        &dist.0,
        Hardening::strict()
            .security_headers(HeaderPolicy::html())
            .unwrap(),
    ))
    .await;
    let browser = Browser::start().await;
    for (what, addr) in [("strict", strict), ("nonce", nonce)] {
        let state = page_state(&browser, &format!("http://127.0.0.1:{}/", addr.port())).await;
        assert_eq!(state["title"], "before", "{what}: {state}");
        assert_eq!(state["marks"], serde_json::json!([]), "{what}: {state}");
    }
    // The stylesheet too under `default-src 'none'`, which has no `style-src`.
    let state = page_state(&browser, &format!("http://127.0.0.1:{}/", strict.port())).await;
    assert_ne!(state["styled"], "rgb(0, 128, 0)", "{state}");
}

/// Under `Csp::static_site()` the bundle's script runs, its stylesheet applies and its
/// `fetch` reaches the API; the inline script and the inline style in the same page do not.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver (scripts/test-all.sh installs them)"]
async fn a_bundle_runs_under_the_static_site_policy_and_inline_script_does_not() {
    let _one = ONE_BROWSER.lock().await;
    let dist = Dist::new();
    let addr = serve(front_end(&dist.0).unwrap()).await;
    let browser = Browser::start().await;
    // A client-side route too: the page is the same.
    for path in ["/", "/some/client/route"] {
        let state = page_state(&browser, &format!("http://127.0.0.1:{}{path}", addr.port())).await;
        assert_eq!(state["title"], "app-ran", "{path}: {state}");
        assert_eq!(
            state["marks"],
            serde_json::json!(["app-ran"]),
            "{path}: {state}"
        );
        assert_eq!(state["styled"], "rgb(0, 128, 0)", "{path}: {state}");
        assert_ne!(state["inline"], "rgb(255, 0, 0)", "{path}: {state}");
        let mut fetched = Value::Null;
        for _ in 0..100 {
            fetched = browser
                .run("return document.getElementById('out').textContent;")
                .await;
            if fetched != "" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(fetched, "hello from the API", "{path}");
    }
}

/// Every file counts against `Hardening`'s per-IP limit (100 a minute, burst 50): a
/// code-split build's first load of more than 50 chunks met 429s (a new-user trial: 70 cold
/// GETs of one asset, 50 × 200 then 429). The README's remedy, the build's hashed assets
/// left out with `allow_route_without_rate_limit("/assets/{*path}")`, serves them all, while
/// the API routes keep the limit.
#[tokio::test]
async fn hashed_assets_left_out_of_the_limit_load_past_its_burst() {
    let dist = Dist::new();
    std::fs::create_dir_all(dist.0.join("assets")).unwrap();
    std::fs::write(dist.0.join("assets/app-3f9a1c.js"), APP_JS).unwrap();
    let strict = serve(files_under(&dist.0, Hardening::strict())).await;
    let statuses = |addr| async move {
        let mut statuses = Vec::new();
        for _ in 0..60 {
            statuses.push(http_get(addr, "/assets/app-3f9a1c.js", &[]).await.status);
        }
        statuses
    };
    let counted = statuses(strict).await;
    assert!(counted.contains(&429), "{counted:?}");
    let left_out = Hardening::strict()
        .allow_route_without_rate_limit("/assets/{*path}")
        .unwrap();
    let left_out = serve(files_under(&dist.0, left_out)).await;
    assert_eq!(statuses(left_out).await, [200; 60]);
    let mut api = Vec::new();
    for _ in 0..60 {
        api.push(http_get(left_out, "/api/hello", &[]).await.status);
    }
    assert!(api.contains(&429), "{api:?}");
}
